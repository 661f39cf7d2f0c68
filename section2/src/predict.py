# Generated from solution/section2/src/predict.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Segment new hippocampus scans with a trained U-Net and report their volumes in mm3.

Run from this folder::

    python predict.py --model MODEL.pth --out-dir OUT INPUT...

INPUT: NIfTI files (.nii, .nii.gz) or folders of them (not searched recursively). For each
scan it writes ``OUT/labels/<file>`` (the predicted labels, uint8: 0 background, 1 anterior,
2 posterior, with the scan's affine and header), ``OUT/overlays/<case>.png`` (a few axis-0
slices with the labels coloured) and one row of ``OUT/volumes.csv``: anterior, posterior and
total volume in mm3 from the header's voxel spacing, and where the total sits against the
normal adult range of one hippocampus that section 1 cites. The model is loaded once and
segments hippocampus crops like MSD Task04's, not whole-brain scans.

A scan that cannot be segmented gets one line on stderr naming the file and what is wrong,
and a row in volumes.csv with that error; the other scans are still done.

Exit status: 0 when every scan was segmented; 1 when any scan failed or no NIfTI file was
found (volumes.csv says which and why); 2 when the command line or the model is unusable.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from tqdm import tqdm

from data_prep.HippocampusDatasetLoader import read_volume
from experiments.UNetExperiment import choose_device
from inference.UNetInferenceAgent import UNetInferenceAgent
from run_ml_pipeline import import_kit
from utils.hippocampus_volume import label_volumes_mm3
from utils.volume_stats import CLASS_NAMES

HERE = Path(__file__).resolve().parent
# Section 1 holds the header units and the normal adult range (and its source), and its
# overlay colours: one place for each. It sits beside section2/ in the kit and the release.
sys.path.append(str(HERE.parents[1] / "section1"))
from eda import MM_PER_UNIT, NORMAL_VOLUME_MM3, NORMAL_VOLUME_SOURCE  # noqa: E402
from eda_output import OVERLAY_ALPHA, OVERLAY_COLOURS  # noqa: E402

NIFTI_SUFFIXES = (".nii.gz", ".nii")
CSV_NAME = "volumes.csv"
CSV_COLUMNS = ("file", "anterior_mm3", "posterior_mm3", "total_mm3", "total_vs_normal",
               "labels", "overlay", "error")
OVERLAY_SLICES = 4  # axis-0 slices per overlay: enough to follow the hippocampus, one row
OVERLAY_PANEL_INCHES = (2.8, 2.2)  # width, height of one slice panel (crops are wider)
OVERLAY_MARGINS_INCHES = 1.0  # above the panels (two title lines) and below (the legend)
OVERLAY_GAP_PX = 2  # white voxels between two slices of the overlay
OVERLAY_DPI = 100  # a 4-panel overlay is about 1000 x 340 px: readable, small on disk
# Display range of the grey image: percentiles of the scan's intensities, so that a few
# very bright voxels do not leave the anatomy dark.
DISPLAY_PERCENTILES = (1.0, 99.0)


class ScanError(ValueError):
    """A scan that cannot be segmented; the message names the file and what is wrong."""


def case_name(path: Path) -> str:
    """The file name without its NIfTI suffix: ``hippocampus_001`` for its ``.nii.gz``."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def expand_inputs(inputs: list[Path]) -> list[tuple[Path, str]]:
    """The scans named on the command line: files as given, folders' NIfTI files sorted.

    Returns:
        ``(path, problem)`` pairs in command-line order; ``problem`` is "" for a file to
        segment, else one line saying why the path gives no scan (missing, empty folder).
    """
    scans = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
            scans += [(p, "") for p in found] or [
                (path, f"{path} holds no .nii or .nii.gz file")]
        elif path.is_file():
            scans.append((path, ""))
        else:
            scans.append((path, f"{path} does not exist"))
    return scans


def spacing_mm(header: nib.Nifti1Header) -> tuple[float, float, float]:
    """Voxel size along X, Y, Z in mm, from the header's zooms and spatial unit."""
    unit = header.get_xyzt_units()[0]
    return tuple(float(zoom) * MM_PER_UNIT[unit] for zoom in header.get_zooms()[:3])


def normal_range_position(total_mm3: float) -> str:
    """"below", "within" or "above" the normal adult range of one hippocampus."""
    low, high = NORMAL_VOLUME_MM3
    return "below" if total_mm3 < low else "above" if total_mm3 > high else "within"


def read_scan(path: Path) -> tuple[np.ndarray, nib.Nifti1Image]:
    """Read a 3-D NIfTI scan.

    Returns:
        (voxels [X, Y, Z] as stored, any real dtype; the NIfTI image, for affine and header).

    Raises:
        ScanError: when the file cannot be read as NIfTI, or is not 3-D.
    """
    try:
        image, _ = read_volume(path)  # the loader's own reading and 3-D check
    except ValueError as err:
        hint = "; give a NIfTI file (.nii or .nii.gz)" if err.__cause__ is not None else ""
        raise ScanError(f"{err}{hint}") from err
    nifti = nib.load(path)  # the header only: the file was just read
    if not isinstance(nifti, nib.Nifti1Image):  # nibabel also reads Analyze, MGH, ...
        raise ScanError(f"{path} is a {type(nifti).__name__}, not a NIfTI file")
    return image, nifti


def overlay_rgb(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One axis-0 slice as RGB: grey anatomy with the labels blended in their colours.

    Args:
        image: float [Y, Z], intensities already scaled to [0, 1].
        labels: int [Y, Z], values {0, 1, 2}.

    Returns:
        float [Y, Z, 3] in [0, 1]: (1 - alpha) * grey + alpha * colour where labelled.
    """
    rgb = np.repeat(image[..., None], 3, axis=-1)
    for label in CLASS_NAMES:
        where = labels == label
        colour = np.asarray(to_rgb(OVERLAY_COLOURS.colors[label - 1]))
        rgb[where] = (1 - OVERLAY_ALPHA) * rgb[where] + OVERLAY_ALPHA * colour
    return rgb


def plot_scan_overlay(image: np.ndarray, labels: np.ndarray, title: str) -> Figure:
    """A few axis-0 slices of a scan with its labels coloured, for a check at a glance.

    The slices are spread evenly over the axis-0 slices that hold labels (over the whole
    scan when none does), side by side in one picture (one axes draws fastest). Label 1
    (anterior) is orange, label 2 (posterior) blue, as in section 1's figures.

    Args:
        image: [X, Y, Z] raw intensities, any real dtype (grey, clipped to the scan's 1st
            and 99th percentiles).
        labels: uint8 [X, Y, Z], values {0, 1, 2}.
        title: the figure's title (file name and volumes).

    Returns:
        The matplotlib Figure (Agg canvas; save it with ``figure.savefig``). Each slice is
        shown with axis 1 across and axis 2 upwards, as in section 1.
    """
    labelled = np.flatnonzero(np.any(labels > 0, axis=(1, 2)))
    first, last = (labelled[0], labelled[-1]) if labelled.size else (0, labels.shape[0] - 1)
    count = min(OVERLAY_SLICES, last - first + 1)
    indices = np.unique(np.linspace(first, last, count + 2)[1:-1].round().astype(int))
    low, high = np.percentile(image, DISPLAY_PERCENTILES)
    grey = np.clip((image.astype(np.float32) - low) / max(high - low, np.finfo(np.float32).tiny),
                   0, 1)
    gap = np.ones((labels.shape[2], OVERLAY_GAP_PX, 3))  # white between slices
    tiles = [overlay_rgb(grey[index].T, labels[index].T) for index in indices]
    mosaic = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)

    width, height = OVERLAY_PANEL_INCHES
    figure = Figure(figsize=(width * len(indices), height + OVERLAY_MARGINS_INCHES),
                    dpi=OVERLAY_DPI)
    FigureCanvasAgg(figure)
    total = height + OVERLAY_MARGINS_INCHES
    axes = figure.add_axes((0.01, 0.3 / total, 0.98, 1 - 0.95 / total))
    axes.imshow(mosaic, origin="lower", interpolation="nearest", aspect="equal")
    axes.set_axis_off()
    tile_width = labels.shape[1] + OVERLAY_GAP_PX
    for position, index in enumerate(indices):
        axes.text((position + 0.5) * tile_width - OVERLAY_GAP_PX / 2, labels.shape[2] + 1,
                  f"axis-0 slice {index} of {labels.shape[0]}", ha="center", va="bottom",
                  fontsize="small")
    figure.legend(handles=[Patch(color=OVERLAY_COLOURS.colors[label - 1], alpha=OVERLAY_ALPHA,
                                 label=f"{label} {name}") for label, name in CLASS_NAMES.items()],
                  loc="lower center", ncol=len(CLASS_NAMES), fontsize="small", frameon=False)
    figure.suptitle(title, fontsize="medium")
    return figure


def segment_scan(path: Path, agent, out_dir: Path) -> dict[str, str]:
    """Segment one scan, write its labels and overlay, and return its volumes.csv row.

    Args:
        path: a 3-D NIfTI scan, in-plane no larger than the model's patch.
        agent: the ``UNetInferenceAgent`` holding the model.
        out_dir: receives ``labels/<file>`` and ``overlays/<case>.png``.

    Returns:
        The row: file, anterior_mm3, posterior_mm3, total_mm3 (mm3, one decimal),
        total_vs_normal, labels, overlay (paths relative to ``out_dir``), error ("").

    Raises:
        ScanError: when the scan is not readable NIfTI, not 3-D, larger in-plane than the
            model's patch, constant, holds non-finite voxels (NaN, inf), or its header's
            voxel spacing is not a size; or when the agent returns labels of another shape
            or with values other than {0, 1, 2}.
    """
    image, nifti = read_scan(path)
    try:
        labels = agent.single_volume_inference_unpadded(image)
    except ValueError as err:  # the agent's checks: size, non-finite voxels, constant
        raise ScanError(f"{path}: {err}") from err
    labels = np.asarray(labels)
    if labels.shape != image.shape:
        raise ScanError(f"{path}: the agent returned labels of shape {labels.shape} for a scan "
                        f"of shape {image.shape}; check single_volume_inference_unpadded")
    try:  # values other than {0, 1, 2}, or a header spacing that is not a size
        volumes = label_volumes_mm3(labels, spacing_mm(nifti.header))
    except ValueError as err:
        raise ScanError(f"{path}: {err}") from err
    labels = labels.astype(np.uint8)

    header = nifti.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)  # labels are stored as they are, never scaled
    labels_file = Path("labels") / path.name
    (out_dir / labels_file).parent.mkdir(parents=True, exist_ok=True)
    nib.save(type(nifti)(labels, nifti.affine, header), out_dir / labels_file)

    position = normal_range_position(volumes["total_mm3"])
    low, high = NORMAL_VOLUME_MM3
    title = (f"{path.name}\nanterior {volumes['anterior_mm3']:,.0f} + posterior "
             f"{volumes['posterior_mm3']:,.0f} = {volumes['total_mm3']:,.0f} mm3, {position} "
             f"the normal adult range {low:,.0f}-{high:,.0f} mm3")
    overlay_file = Path("overlays") / f"{case_name(path)}.png"
    (out_dir / overlay_file).parent.mkdir(parents=True, exist_ok=True)
    plot_scan_overlay(image, labels, title).savefig(out_dir / overlay_file)

    return {"file": str(path), **{key: f"{value:.1f}" for key, value in volumes.items()},
            "total_vs_normal": position, "labels": str(labels_file),
            "overlay": str(overlay_file), "error": ""}


def predict_scans(scans: list[tuple[Path, str]], agent, out_dir: Path) -> list[dict[str, str]]:
    """Segment every scan into ``out_dir`` and write ``out_dir/volumes.csv`` row by row.

    A scan that fails gets one line on stderr and a row with its error; the others go on.
    Each row is flushed as soon as its scan is done, so an interrupted batch keeps them.

    Args:
        scans: ``(path, problem)`` pairs from ``expand_inputs``.
        agent: the ``UNetInferenceAgent`` holding the model.
        out_dir: the output folder (created).

    Returns:
        The rows written, in order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, cases = [], set()
    with open(out_dir / CSV_NAME, "w", newline="", encoding="utf-8") as table:
        writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for path, problem in tqdm(scans, desc="scans", unit="scan", disable=None):
            try:
                if problem:
                    raise ScanError(problem)
                if case_name(path) in cases:
                    raise ScanError(f"{path}: an earlier input has the same name; its outputs "
                                    "would be overwritten, so rename one of them")
                cases.add(case_name(path))
                row = segment_scan(path, agent, out_dir)
            except ScanError as err:
                tqdm.write(f"error: {err}", file=sys.stderr)
                row = {"file": str(path), "error": str(err)}
            writer.writerow(row)
            table.flush()
            rows.append(row)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], allow_abbrev=False,
        epilog=f"Normal adult range of one hippocampus: {NORMAL_VOLUME_MM3[0]:.0f} to "
               f"{NORMAL_VOLUME_MM3[1]:.0f} mm3 ({NORMAL_VOLUME_SOURCE}). Exit status: 0 "
               "every scan segmented, 1 any scan failed, 2 unusable command line or model.")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="NIfTI files (.nii, .nii.gz) or folders of them")
    parser.add_argument("--model", type=Path, required=True,
                        help="model.pth of a training run (default: None, required)")
    parser.add_argument("--out-dir", type=Path, required=True,
                        help="folder for labels/, overlays/ and volumes.csv (default: None, "
                             "required)")
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda or cuda:N; auto picks CUDA when available "
                             "(default: auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch; 1 is fastest on a machine busy with "
                             "other jobs (default: None, torch's choice: one per core)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        device = choose_device(args.device)
        agent = UNetInferenceAgent(parameter_file_path=str(args.model), device=device)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = predict_scans(expand_inputs(args.inputs), agent, args.out_dir)
    failed = [row for row in rows if row["error"]]
    print(f"segmented {len(rows) - len(failed)} of {len(rows)} scans on {device}; volumes: "
          f"{args.out_dir / CSV_NAME}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    kit = import_kit()  # None only for a copy of section2/src outside the kit
    if kit is None:
        sys.exit(main(sys.argv[1:]))
    # an unfinished TASK of the skeleton ends in one line, not a traceback
    kit.run_script(lambda: sys.exit(main(sys.argv[1:])), HERE)

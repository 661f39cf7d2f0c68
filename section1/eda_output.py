# Generated from solution/section1/eda_output.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Write what the exploratory analysis found: file copies, a CSV table and two figures.

This module knows nothing about misfits or hippocampi; ``eda.py`` decides what to write and
calls these functions with plain paths, rows and numbers. Figures use matplotlib's
object-oriented API on an Agg canvas, so they work without a display and in a notebook.
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

logger = logging.getLogger(__name__)

DATA_SUFFIX = ".nii.gz"  # the files that --overwrite may delete in a destination folder
HISTOGRAM_BINS = 30  # about 7 cases per bin for the ~200 cases of MSD Task04
FIGURE_DPI = 120  # enough to read the axis labels of a 7 x 4 inch figure
OVERLAY_COLOURS = ListedColormap(["tab:orange", "tab:blue"])  # label 1, label 2
OVERLAY_ALPHA = 0.5  # the anatomy stays visible under the label


def copy_files(copies: list[tuple[Path, Path]], overwrite: bool = False) -> list[Path]:
    """Copy files byte for byte into fresh destination folders.

    Args:
        copies: (source, destination) file paths.
        overwrite: first delete the ``*.nii.gz`` files already in each destination folder
            (a previous run's), so that the folders hold exactly this run's copies.

    Returns:
        The destination paths, in the order given.

    Raises:
        FileExistsError: when a destination folder already holds ``*.nii.gz`` files and
            ``overwrite`` is False.
        ValueError: when a destination folder is also a source folder.
    """
    sources = {source.parent.resolve() for source, _ in copies}
    folders = sorted({destination.parent for _, destination in copies})
    for folder in folders:
        if folder.resolve() in sources:
            raise ValueError(f"{folder} is where the files are read from; choose another "
                             "--out-dir for the copy")
        old = sorted(folder.glob(f"*{DATA_SUFFIX}")) if folder.is_dir() else []
        if old and not overwrite:
            raise FileExistsError(f"{folder} already holds {len(old)} data files; pass "
                                  "--overwrite to replace them or choose another --out-dir")
        for path in old:
            path.unlink()
        folder.mkdir(parents=True, exist_ok=True)
    for source, destination in copies:
        shutil.copyfile(source, destination)
    logger.info("copied %d files into %s", len(copies), ", ".join(map(str, folders)))
    return [destination for _, destination in copies]


def write_csv(rows: list[dict[str, str]], columns: tuple[str, ...], path: Path) -> Path:
    """Write ``rows`` as a CSV table with a header line of ``columns``; returns ``path``.

    Raises:
        ValueError: when a row has a key that is not in ``columns``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_volume_histogram(totals_mm3: list[float], normal_mm3: tuple[float, float],
                          plausible_mm3: tuple[float, float], normal_source: str,
                          path: Path | None = None) -> Figure:
    """Histogram of hippocampus volumes with a normal range shaded and a plausible band dashed.

    Args:
        totals_mm3: one total volume per case, mm3.
        normal_mm3: (low, high) published normal range, mm3, shaded green.
        plausible_mm3: (low, high) band outside which a volume is implausible, mm3, dashed.
        normal_source: the citation of the normal range, shown in the legend.
        path: where to save the figure as PNG; None does not save.

    Returns:
        The matplotlib Figure.
    """
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.axvspan(*normal_mm3, color="tab:green", alpha=0.15,
                 label=f"normal adult range, one hippocampus\n({normal_source})")
    for limit in plausible_mm3:
        axes.axvline(limit, color="grey", linestyle="--", linewidth=1)
    axes.hist(totals_mm3, bins=HISTOGRAM_BINS, color="tab:blue",
              label=f"cases (n = {len(totals_mm3)})")
    axes.set_xlabel("total hippocampus volume, anterior + posterior (mm$^3$)")
    axes.set_ylabel("cases")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("One hippocampus per case; dashed: plausible band")
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=FIGURE_DPI)
    return figure


def plot_case_slices(image: np.ndarray, seg: np.ndarray, title: str = "") -> Figure:
    """One axis-0, axis-1 and axis-2 slice of a case, each through the most labelled voxels.

    Args:
        image: float or int [X, Y, Z], raw intensities (grey, scaled per slice).
        seg: int or float [X, Y, Z], values {0, 1, 2}, overlaid (1 orange, 2 blue).
        title: figure title, e.g. the case name.

    Returns:
        The matplotlib Figure. Each panel's horizontal axis is the lower of the two
        remaining array axes. Planes are not named: an identity-like affine does not say
        how the head lay in the scanner.

    Raises:
        ValueError: when image and seg are not 3-D arrays of the same shape.
    """
    if image.ndim != 3 or image.shape != seg.shape:
        raise ValueError(f"image {image.shape} and seg {seg.shape} must be 3-D of one shape")
    figure = Figure(figsize=(12, 4))
    FigureCanvasAgg(figure)
    for axis, axes in enumerate(figure.subplots(1, 3)):
        rest = tuple(other for other in range(3) if other != axis)
        index = int(np.argmax(np.count_nonzero(seg > 0, axis=rest)))
        labels = np.take(seg, index, axis=axis).T
        axes.imshow(np.take(image, index, axis=axis).T, cmap="gray", origin="lower")
        axes.imshow(np.ma.masked_equal(labels, 0), cmap=OVERLAY_COLOURS, vmin=1, vmax=2,
                    alpha=OVERLAY_ALPHA, origin="lower", interpolation="nearest")
        axes.set_title(f"axis-{axis} slice {index} of {seg.shape[axis]}")
        axes.set_xlabel(f"axis {rest[0]}")
        axes.set_ylabel(f"axis {rest[1]}")
    figure.suptitle(f"{title}  (orange: label 1, anterior; blue: label 2, posterior)")
    figure.tight_layout()
    return figure

# Generated from solution/section1/eda.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Exploratory analysis of the raw hippocampus data set, read natively from NIfTI headers.

Data: Medical Segmentation Decathlon, Task04 Hippocampus (Vanderbilt University Medical
Center; Antonelli et al., Nature Communications 13, 4128, 2022), in the course layout
``DATA_DIR/images/*.nii.gz`` and ``DATA_DIR/labels/*.nii.gz`` with matching file names. Each
case is ONE hippocampus (one hemisphere) cropped out of a 1 x 1 x 1 mm MRI; labels are
0 background, 1 anterior (head), 2 posterior (body and tail).

The analysis pairs images with labels, reads every file's header facts and voxels, measures
the hippocampus volume in mm3 and lists every misfit with its reasons; ``curate`` then copies
the clean pairs byte for byte into a curated data set, with ``cases.csv`` and a volume
histogram (written by the sibling module ``eda_output``). Run it all from this folder::

    python eda.py                       # data: as tools/hippocampus_kit.py finds it
    python eda.py --data-dir DATA_DIR --out-dir OUT_DIR --overwrite
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import nibabel as nib
import numpy as np
from eda_output import copy_files, plot_volume_histogram, write_csv
from nibabel.filebasedimages import ImageFileError

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
NIFTI_SUFFIX = ".nii.gz"
KIT_MODULE = Path("tools") / "hippocampus_kit.py"  # the kit's rule for where the data is
DEFAULT_OUT_DIR = HERE / "out" / "results" / "eda"  # git-ignored (**/out/results/)
# What nibabel and gzip raise on a file that is not NIfTI, truncated or corrupt.
READ_ERRORS = (ImageFileError, OSError, EOFError, zlib.error, ValueError)

LABEL_VALUES = (0, 1, 2)  # background, anterior, posterior (MSD Task04)
ANTERIOR, POSTERIOR = 1, 2
CLASS_NAMES = {ANTERIOR: "anterior", POSTERIOR: "posterior"}
# The data set's voxel spacing, mm (MSD Task04: every case is a 1 mm isotropic crop).
EXPECTED_SPACING_MM = (1.0, 1.0, 1.0)
# Headers store spacing and affines as float32: allow rounding, not a different grid (mm).
SPACING_TOLERANCE_MM = 1e-3
AFFINE_TOLERANCE_MM = 1e-3
# NIfTI spatial units (header.get_xyzt_units()[0]) in mm. "unknown" (xyzt_units = 0) is
# read as mm, as ITK and most tools do.
MM_PER_UNIT = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}

# Normal adult volume of ONE hippocampus, mm3: the span of values that MRI and histology
# studies of normal adults reported, as summarised by N. A. Honeycutt and C. D. Smith,
# "Hippocampal volume measurements using magnetic resonance imaging in normal young
# adults", J Neuroimaging 5(2), 95-100, 1995: 1.73 to 5.68 cm3 (their own 24 young adults
# averaged 2.90 cm3 right and 2.78 cm3 left). The spread mostly reflects where each
# tracing protocol draws the hippocampus' borders (Konrad et al., NeuroImage 47, 1185, 2009).
NORMAL_VOLUME_MM3 = (1730.0, 5680.0)
NORMAL_VOLUME_SOURCE = "Honeycutt and Smith, J Neuroimaging 1995"
# A label is implausible outside this band. It is NOT a published cut-off but a generous
# band around the normal range: about 40 % below its low end, so that strongly atrophied
# hippocampi stay in, and about 40 % above its high end, so that generous protocols stay in;
# a label beyond it is not one hippocampus (both sides, another structure, another data set).
PLAUSIBLE_VOLUME_MM3 = (1000.0, 8000.0)

# The course pipeline's patch, px: section 2 pads every axis-0 slice [Y, Z] into a square of
# Config.patch_size = 64 px (solution/section2/src/experiments/settings.py; the course starter's
# Config and med_reshape), and its loader skips a volume larger in-plane, because med_reshape
# cannot fit it. 64 because the U-Net's 4 poolings need a size divisible by 2**4. A case that
# the pipeline would skip does not belong in the curated set. tests/test_section1.py checks
# that this value is section 2's.
PATCH_SIZE_PX = 64

# Misfit kinds (stable names, used in cases.csv and by the tests) and what each one means.
MISFIT_KINDS = {
    "no_label": "image without a label of the same name",
    "no_image": "label without an image of the same name",
    "unreadable": "file that nibabel cannot read as a 3-D volume",
    "truncated": "file whose header reads but whose voxel data ends early or does not decompress",
    "non_finite": "image with NaN or infinite voxels (normalisation would spread them everywhere)",
    "constant_image": "image whose voxels all hold one value, e.g. all zero: no anatomy in it",
    "larger_than_patch": "image larger in-plane (axes 1 and 2) than the course pipeline's patch",
    "shape_mismatch": "image and label shapes differ",
    "affine_mismatch": "image and label affines differ (voxel spacing, orientation or origin)",
    "spacing": "voxel spacing other than the data set's 1 x 1 x 1 mm",
    "label_values": "label values outside {0, 1, 2}",
    "missing_class": "label without any anterior (1) or posterior (2) voxel",
    "implausible_volume": "hippocampus volume outside the plausible band for one hippocampus",
}
CSV_COLUMNS = ("case", "status", "reason", "shape", "spacing_mm", "dtype", "label_dtype",
               "axis_codes", "anterior_mm3", "posterior_mm3", "total_mm3")


class CasePair(NamedTuple):
    """The files of one case; a side is None when the data set lacks that file."""

    case: str  # file name without .nii.gz, e.g. "hippocampus_001"
    image_path: Path | None
    label_path: Path | None


class Misfit(NamedTuple):
    """One reason why a case cannot enter the curated data set."""

    kind: str  # a key of MISFIT_KINDS
    message: str  # names the file, the expected value and the value found


@dataclass(frozen=True, eq=False)  # eq=False: the affine is an array
class HeaderFacts:
    """What a NIfTI header says about one file (nothing here reads the voxel data)."""

    path: Path
    file_format: str  # e.g. "NIfTI-1 single file (magic n+1), gzip-compressed"
    shape: tuple[int, ...]  # voxels along each axis
    dtype: str  # on-disk data type, e.g. "uint8" or "float32"
    bits_per_voxel: int  # header field bitpix
    units: tuple[str, str]  # (space, time) units, e.g. ("mm", "sec")
    spacing_mm: tuple[float, ...]  # voxel size along each spatial axis, mm
    axis_codes: tuple[str, ...]  # direction each axis increases towards, e.g. ("R", "A", "S")
    affine: np.ndarray  # float64 [4, 4], voxel index -> scanner mm


@dataclass
class CaseReport:
    """Everything the analysis found about one case."""

    case: str
    image: HeaderFacts | None  # None when there is no image or it cannot be read
    label: HeaderFacts | None  # None when there is no label or it cannot be read
    misfits: list[Misfit]
    volume_mm3: dict[str, float] | None  # anterior, posterior, total; None without a label

    @property
    def status(self) -> str:
        """"ok" for a clean pair, "misfit" otherwise."""
        return "misfit" if self.misfits else "ok"

    @property
    def reason(self) -> str:
        """All misfits as one line, "kind: message; kind: message"; "" for a clean pair."""
        return "; ".join(f"{misfit.kind}: {misfit.message}" for misfit in self.misfits)


def case_name(path: Path) -> str:
    """The case name of a data file: its name without ``.nii.gz``."""
    return path.name[:-len(NIFTI_SUFFIX)] if path.name.endswith(NIFTI_SUFFIX) else path.stem


def import_kit() -> ModuleType | None:
    """The kit's ``tools/hippocampus_kit.py`` above this folder, or None outside a kit.

    The kit's one rule for its scripts (as section2/src/run_ml_pipeline.py's import_kit):
    the module is loaded by its path with importlib, once, under its own name, so every
    script and test shares one module object and no folder is added to sys.path.
    """
    for folder in HERE.parents:
        path = folder / KIT_MODULE
        if path.is_file():
            if KIT_MODULE.stem not in sys.modules:
                spec = importlib.util.spec_from_file_location(KIT_MODULE.stem, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[KIT_MODULE.stem] = module
                spec.loader.exec_module(module)
            return sys.modules[KIT_MODULE.stem]
    return None


def find_data_dir() -> Path | None:
    """The data folder by the kit's one rule (``HIPPOCAMPUS_DATA``, the kit's
    ``data/TrainingSet``, a shared copy; see tools/hippocampus_kit.py), or None."""
    kit = import_kit()
    return kit.find_training_set() if kit is not None else None


def pair_files(data_dir: Path) -> list[CasePair]:
    """Pair every image with the label of the same file name, keeping unpaired files.

    Args:
        data_dir: folder holding ``images/`` and ``labels/`` with ``*.nii.gz`` files.

    Returns:
        One CasePair per case name found in either folder, sorted by case name;
        ``image_path`` or ``label_path`` is None where that file is missing.

    Raises:
        FileNotFoundError: when ``data_dir/images`` or ``data_dir/labels`` is missing, or
            neither holds a ``.nii.gz`` file.
    """
    data_dir = Path(data_dir)
    for folder in (data_dir / "images", data_dir / "labels"):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist; pass --data-dir with the folder "
                                    "holding images/ and labels/ (tools/get_data.py makes it)")
    images = {case_name(path): path for path in (data_dir / "images").glob(f"*{NIFTI_SUFFIX}")}
    labels = {case_name(path): path for path in (data_dir / "labels").glob(f"*{NIFTI_SUFFIX}")}
    if not images and not labels:
        raise FileNotFoundError(f"no {NIFTI_SUFFIX} file in {data_dir / 'images'} or "
                                f"{data_dir / 'labels'}")
    # TASK S1.01: Pair each image with the label of the same case name, keeping the orphans.
    #   Why: a pair is the unit of everything that follows; an image without a label (or a
    #   label without an image) is the first kind of misfit, so it must not silently vanish.
    #   In: images, labels: dict case name -> Path. Out: list of CasePair(case, image_path,
    #   label_path) over every name in either dict, sorted by name, None for a missing side.
    #   Hint: the union of two dicts' keys is a set operation; dict.get returns None.
    #   Check: pytest grader -k S1.01  ({"a", "b"} images and {"b", "c"} labels give three
    #   pairs: a without label, b with both, c without image)
    raise NotImplementedError("TASK S1.01: Pair each image with the label of the same case name, keeping the orphans.")


def _file_format(nifti: nib.filebasedimages.FileBasedImage, path: Path) -> str:
    """A readable name of the file format, e.g. "NIfTI-1 single file (magic n+1), gzip"."""
    magic = bytes(nifti.header["magic"]).rstrip(b"\0").decode("ascii", "replace")
    layout = {"n+1": "NIfTI-1 single file", "ni1": "NIfTI-1 header/image pair",
              "n+2": "NIfTI-2 single file", "ni2": "NIfTI-2 header/image pair"}
    name = layout.get(magic, type(nifti).__name__)
    return f"{name} (magic {magic})" + (", gzip-compressed" if path.suffix == ".gz" else "")


def describe_header(header: nib.Nifti1Header, affine: np.ndarray) -> dict:
    """The facts a NIfTI header states about its voxels.

    Args:
        header: the file's NIfTI header (``nibabel.load(path).header``).
        affine: float64 [4, 4], the file's voxel-to-scanner affine, mm.

    Returns:
        ``{"shape": tuple of ints, "dtype": str, "bits_per_voxel": int, "units": (space,
        time) str, "spacing_mm": (3,) floats in mm, "axis_codes": (3,) one-letter str}``,
        the matching fields of HeaderFacts.
    """
    # TASK S1.02: Read the header facts: dtype, bits per voxel, units, spacing in mm, axis codes.
    #   Why: volumes in mm3 need the voxel spacing, and the spacing and orientation are only
    #   trustworthy if read from the header, never assumed. Convert the spacing to mm with
    #   MM_PER_UNIT of the spatial unit.
    #   In: header (nibabel NIfTI header), affine float64 [4, 4]. Out: dict with "shape"
    #   (tuple of ints), "dtype" (str, e.g. "uint8"), "bits_per_voxel" (int), "units"
    #   ((space, time) str), "spacing_mm" ((3,) floats, mm), "axis_codes" ((3,) str).
    #   Hint: header.get_data_shape(), get_data_dtype(), header["bitpix"],
    #   get_xyzt_units(), get_zooms(), and nibabel.aff2axcodes for the affine.
    #   Check: pytest grader -k S1.02  (a uint8 file saved with affine diag(-2, 1, 1, 1) has
    #   spacing (2.0, 1.0, 1.0) mm, 8 bits per voxel and axis codes ("L", "A", "S"))
    raise NotImplementedError("TASK S1.02: Read the header facts: dtype, bits per voxel, units, spacing in mm, axis codes.")


def read_header_facts(path: Path) -> tuple[HeaderFacts, nib.Nifti1Image]:
    """Read a NIfTI file's header (not its voxels) and describe it.

    Args:
        path: a NIfTI file, ``.nii`` or ``.nii.gz``.

    Returns:
        (facts, image): the HeaderFacts of the file, and the nibabel image whose
        ``dataobj`` reads the voxels on demand (see ``read_voxels``).

    Raises:
        ValueError: when the file cannot be read as NIfTI, or is not a 3-D volume; the
            message names the file.
    """
    path = Path(path)
    try:
        nifti = nib.load(path)
    except READ_ERRORS as err:
        raise ValueError(f"{path} cannot be read as NIfTI ({type(err).__name__}: {err})") from err
    if len(nifti.shape) != 3:
        raise ValueError(f"{path} has shape {nifti.shape}; expected a 3-D volume [X, Y, Z]")
    affine = np.asarray(nifti.affine, dtype=np.float64)
    facts = HeaderFacts(path=path, file_format=_file_format(nifti, path), affine=affine,
                        **describe_header(nifti.header, affine))
    return facts, nifti


def hippocampus_volume_mm3(seg: np.ndarray, spacing_mm: tuple[float, ...]) -> dict[str, float]:
    """Hippocampus volume of a label map, per class and in total.

    Args:
        seg: label map int or float [X, Y, Z], values {0, 1, 2} (other values are ignored).
        spacing_mm: (3,) floats, voxel size along X, Y, Z in mm.

    Returns:
        ``{"anterior": float, "posterior": float, "total": float}`` in mm3; total is
        anterior + posterior; 0.0 for a class with no voxel.
    """
    # TASK S1.03: Count the hippocampus voxels per label and turn them into mm3.
    #   Why: hippocampal volume is the number clinicians track in Alzheimer's disease, and
    #   the plausibility check and the histogram are built on it. A voxel count is not a
    #   volume: multiply by the volume of one voxel, from the header's spacing.
    #   In: seg int or float [X, Y, Z], values {0, 1, 2}; spacing_mm (3,) floats, mm.
    #   Out: dict of floats, mm3, keys "anterior" (label 1), "posterior" (label 2), "total".
    #   Hint: a boolean mask and np.count_nonzero; the voxel volume is the product of the spacing.
    #   Check: pytest grader -k S1.03  (a 2x2x2 block of label 1 at 1 mm spacing is 8 mm3; the
    #   same block at spacing (0.5, 1, 2) mm is also 8 mm3)
    raise NotImplementedError("TASK S1.03: Count the hippocampus voxels per label and turn them into mm3.")


def _mm(values: tuple[float, ...]) -> str:
    """Spacing as text, e.g. "0.734 x 0.734 x 5 mm"."""
    return " x ".join(f"{value:.3g}" for value in values) + " mm"


def header_misfits(image: HeaderFacts | None, label: HeaderFacts | None) -> list[Misfit]:
    """The misfits that the headers of one case reveal.

    Args:
        image: facts of the case's image, None when the data set has no image of this name.
        label: facts of the case's label, None when the data set has no label of this name.

    Returns:
        Misfits of kinds "no_label", "no_image", "shape_mismatch", "affine_mismatch" and
        "spacing" (one per file whose spacing is not EXPECTED_SPACING_MM), in that order;
        an empty list for a clean pair. Each message names the file.
    """
    # TASK S1.04: List the header misfits: a missing side, shape or affine mismatch, spacing.
    #   Why: the network learns from image and label voxel by voxel, so they must share one
    #   grid: same shape and same affine (AFFINE_TOLERANCE_MM); and a volume in mm3 is
    #   comparable across cases only at the data set's spacing (EXPECTED_SPACING_MM, within
    #   SPACING_TOLERANCE_MM). Check each file that exists; compare them when both do.
    #   In: image, label: HeaderFacts or None. Out: list of Misfit(kind, message), kinds from
    #   MISFIT_KINDS; messages name the file and give expected and found values, e.g.
    #   "labels/x.nii.gz: image shape (35, 51, 35) != label shape (34, 52, 35)".
    #   Hint: compare tuples with !=; np.allclose with atol for affines and spacings.
    #   Check: pytest grader -k S1.04  (an image alone gives one "no_label"; an image at
    #   1 mm with its label at 2 mm gives "affine_mismatch" and one "spacing")
    raise NotImplementedError("TASK S1.04: List the header misfits: a missing side, shape or affine mismatch, spacing.")


def label_misfits(seg: np.ndarray, spacing_mm: tuple[float, ...], path: Path) -> list[Misfit]:
    """The misfits that a label's voxels reveal.

    Args:
        seg: label map int or float [X, Y, Z], expected values {0, 1, 2}.
        spacing_mm: (3,) floats, the label's voxel size in mm.
        path: the label file, named in the messages.

    Returns:
        Misfits of kinds "label_values", "missing_class" and "implausible_volume" (total
        volume outside PLAUSIBLE_VOLUME_MM3), in that order; an empty list for a clean label.
    """
    # TASK S1.05: Check a label's values, that both classes occur, and that its volume is plausible.
    #   Why: a label from another data set or a broken export holds other values, lacks a
    #   class, or outlines something that is not one hippocampus; such a label would teach
    #   the network a wrong answer. Labels are class indices: never rescale them.
    #   In: seg int or float [X, Y, Z]; spacing_mm (3,) floats, mm; path. Out: list of
    #   Misfit(kind, message) with kinds "label_values", "missing_class", "implausible_volume";
    #   messages name the file and the values found, e.g. "... holds values [0, 1, 3]".
    #   Hint: np.unique and np.isin; hippocampus_volume_mm3 (TASK S1.03) and PLAUSIBLE_VOLUME_MM3.
    #   Check: pytest grader -k S1.05  (a label of only 0 and 1 gives "missing_class"; a
    #   12 x 12 x 12 mm block, half label 1 and half label 2 (1728 mm3), gives no misfit)
    raise NotImplementedError("TASK S1.05: Check a label's values, that both classes occur, and that its volume is plausible.")


def read_voxels(nifti: nib.Nifti1Image) -> np.ndarray:
    """The voxels of a NIfTI image that ``read_header_facts`` opened.

    Args:
        nifti: the image, as returned by ``read_header_facts``.

    Returns:
        array [X, Y, Z] in the file's data type; float when the header sets scl_slope or
        scl_inter (nibabel applies them).

    Raises:
        ValueError: when the file is truncated or corrupt; the message names the file.
    """
    try:
        return np.asanyarray(nifti.dataobj)
    except READ_ERRORS as err:
        raise ValueError(f"{nifti.get_filename()} is truncated or corrupt "
                         f"({type(err).__name__}: {err})") from err


def image_misfits(image: np.ndarray, path: Path,
                  patch_size_px: int = PATCH_SIZE_PX) -> list[Misfit]:
    """The misfits that an image's voxels and in-plane size reveal.

    Not a TASK: the course pipeline trains on every voxel of a curated image, so each is read
    once here. A NaN or infinite voxel turns the per-volume min-max normalisation into NaN
    or into a volume of zeros; a constant image (an empty export, all zero) has no anatomy
    and no intensity range to normalise; a slice larger than the patch cannot be padded into
    it (see PATCH_SIZE_PX).

    Args:
        image: voxels [X, Y, Z], any real dtype, as stored (``read_voxels``).
        path: the image file, named in the messages.
        patch_size_px: the pipeline's in-plane patch size, px.

    Returns:
        Misfits of kinds "non_finite" (with the count of NaN and of infinite voxels),
        "constant_image" (only checked when every voxel is finite) and "larger_than_patch",
        in that order; an empty list for a clean image.
    """
    misfits = []
    # Integers hold no NaN or inf; one np.isfinite pass clears a float image.
    finite = np.issubdtype(image.dtype, np.integer) or bool(np.isfinite(image).all())
    if not finite:
        nan_count = int(np.count_nonzero(np.isnan(image)))
        inf_count = int(np.count_nonzero(np.isinf(image)))
        misfits.append(Misfit("non_finite", f"{path} holds {nan_count} NaN and {inf_count} "
                                            f"infinite voxels out of {image.size}"))
    if finite and image.size and image.min() == image.max():
        misfits.append(Misfit("constant_image", f"{path}: every voxel is {image.flat[0]:g}; "
                                                "the image holds no anatomy"))
    in_plane = tuple(int(size) for size in image.shape[1:])
    if any(size > patch_size_px for size in in_plane):
        misfits.append(Misfit("larger_than_patch", f"{path}: in-plane size (axes 1, 2) "
                              f"{in_plane[0]} x {in_plane[1]} px exceeds the course pipeline's "
                              f"{patch_size_px} x {patch_size_px} px patch (Config.patch_size); "
                              "section 2 would skip it"))
    return misfits


def analyse_case(pair: CasePair, patch_size_px: int = PATCH_SIZE_PX) -> CaseReport:
    """Read one case's headers and voxels, measure its volume and list its misfits.

    Args:
        pair: the case's files.
        patch_size_px: the pipeline's in-plane patch size, px (see ``image_misfits``).

    Returns:
        The CaseReport. A file whose header cannot be read adds an "unreadable" misfit, one
        whose voxels cannot be read a "truncated" misfit, instead of raising; the header
        checks then wait until every file of the case can be read.
    """
    misfits: list[Misfit] = []
    facts: dict[str, HeaderFacts | None] = {"image": None, "label": None}
    voxels: dict[str, np.ndarray | None] = {"image": None, "label": None}
    for side, path in (("image", pair.image_path), ("label", pair.label_path)):
        if path is None:
            continue
        try:
            facts[side], nifti = read_header_facts(path)
        except ValueError as err:
            misfits.append(Misfit("unreadable", str(err)))
            continue
        try:
            voxels[side] = read_voxels(nifti)
        except ValueError as err:
            facts[side] = None
            misfits.append(Misfit("truncated", str(err)))
    seg = voxels["label"]
    if not misfits:
        misfits += header_misfits(facts["image"], facts["label"])
    if voxels["image"] is not None and facts["image"] is not None:
        misfits += image_misfits(voxels["image"], facts["image"].path, patch_size_px)
    volume_mm3 = None
    if seg is not None and facts["label"] is not None:
        volume_mm3 = hippocampus_volume_mm3(seg, facts["label"].spacing_mm)
        misfits += label_misfits(seg, facts["label"].spacing_mm, facts["label"].path)
    return CaseReport(pair.case, facts["image"], facts["label"], misfits, volume_mm3)


def analyse_data_set(data_dir: Path, patch_size_px: int = PATCH_SIZE_PX) -> list[CaseReport]:
    """Analyse every case of a data set; logs one INFO line per misfit case.

    Args:
        data_dir: folder holding ``images/`` and ``labels/``.
        patch_size_px: the pipeline's in-plane patch size, px (see ``image_misfits``).

    Returns:
        One CaseReport per case name, sorted by name.

    Raises:
        FileNotFoundError: see ``pair_files``.
    """
    reports = [analyse_case(pair, patch_size_px) for pair in pair_files(Path(data_dir))]
    for report in reports:
        if report.misfits:
            logger.info("misfit %s: %s", report.case, report.reason)
    logger.info("%d cases in %s, %d clean pairs", len(reports), data_dir,
                sum(report.status == "ok" for report in reports))
    return reports


def curated_copies(reports: list[CaseReport], out_dir: Path) -> list[tuple[Path, Path]]:
    """Where each file of the curated data set comes from and goes to.

    Args:
        reports: the analysis of every case.
        out_dir: the curated data set's folder; files go to ``out_dir/images`` and
            ``out_dir/labels`` under their original names.

    Returns:
        (source, destination) pairs: the image and the label of every clean pair, sorted by
        case, and nothing of a misfit case.
    """
    # TASK S1.06: Choose the files of the curated data set: both files of every clean pair.
    #   Why: section 2 trains on the curated set, so it must hold every clean pair and not one
    #   file of a misfit case (a lone image or label, or a pair with any misfit).
    #   In: reports (CaseReport with .status "ok" or "misfit", .image.path, .label.path);
    #   out_dir Path. Out: list of (source Path, destination Path), the image before the
    #   label of each case; destinations out_dir/"images"/name and out_dir/"labels"/name.
    #   Hint: filter on report.status; keep each file's name (Path.name).
    #   Check: pytest grader -k S1.06  (three clean cases and one misfit give six pairs)
    raise NotImplementedError("TASK S1.06: Choose the files of the curated data set: both files of every clean pair.")


def case_row(report: CaseReport) -> dict[str, str]:
    """One row of cases.csv (keys CSV_COLUMNS). Shape, spacing and dtype describe the image
    (the label where there is no image); volumes are empty where no label could be read."""
    facts = report.image or report.label
    volume = report.volume_mm3 or {}
    return {
        "case": report.case, "status": report.status, "reason": report.reason,
        "shape": "x".join(map(str, facts.shape)) if facts else "",
        "spacing_mm": "x".join(f"{value:g}" for value in facts.spacing_mm) if facts else "",
        "dtype": facts.dtype if facts else "",
        "label_dtype": report.label.dtype if report.label else "",
        "axis_codes": "".join(facts.axis_codes) if facts else "",
        **{f"{name}_mm3": f"{volume[name]:.2f}" if volume else ""
           for name in ("anterior", "posterior", "total")},
    }


def curate(reports: list[CaseReport], out_dir: Path, overwrite: bool = False) -> dict[str, Path]:
    """Write the curated data set: the clean pairs, cases.csv and the volume histogram.

    Args:
        reports: the analysis of every case (see ``analyse_data_set``).
        out_dir: receives ``images/`` and ``labels/`` (clean pairs copied byte for byte),
            ``cases.csv`` (one row per case, see ``case_row``) and ``volume_histogram.png``
            (clean cases' total volumes against NORMAL_VOLUME_MM3).
        overwrite: replace the data files a previous run left in ``out_dir``.

    Returns:
        ``{"images": Path, "labels": Path, "cases_csv": Path, "histogram": Path}``.

    Raises:
        FileExistsError: when ``out_dir/images`` or ``out_dir/labels`` holds data files and
            ``overwrite`` is False.
        ValueError: when ``out_dir`` is the raw data folder.
    """
    out_dir = Path(out_dir)
    written = {"images": out_dir / "images", "labels": out_dir / "labels",
               "cases_csv": out_dir / "cases.csv", "histogram": out_dir / "volume_histogram.png"}
    copy_files(curated_copies(reports, out_dir), overwrite=overwrite)
    for folder in (written["images"], written["labels"]):
        folder.mkdir(parents=True, exist_ok=True)  # present even when no pair is clean
    write_csv([case_row(report) for report in reports], CSV_COLUMNS, written["cases_csv"])
    totals = [report.volume_mm3["total"] for report in reports if report.status == "ok"]
    plot_volume_histogram(totals, NORMAL_VOLUME_MM3, PLAUSIBLE_VOLUME_MM3,
                          NORMAL_VOLUME_SOURCE, written["histogram"])
    return written


def summarise(reports: list[CaseReport]) -> str:
    """A few lines for a terminal: counts, header facts, volumes, then every misfit."""
    clean = [report for report in reports if report.status == "ok"]
    files = [report.image for report in clean] + [report.label for report in clean]
    kinds = Counter(f"{facts.dtype} ({facts.bits_per_voxel} bit), {_mm(facts.spacing_mm)}, "
                    f"units {'/'.join(facts.units)}, axis codes {''.join(facts.axis_codes)}"
                    for facts in files)
    misfit_cases = len(reports) - len(clean)
    lines = [f"{len(reports)} cases: {len(clean)} clean pairs, {misfit_cases} misfit cases"]
    lines += [f"  {number:4d} files: {text}" for text, number in sorted(kinds.items())]
    if clean:
        totals = np.array([report.volume_mm3["total"] for report in clean])
        lines.append(f"total volume of the clean cases: min {totals.min():.0f}, median "
                     f"{np.median(totals):.0f}, max {totals.max():.0f} mm3 (normal adult "
                     f"range {NORMAL_VOLUME_MM3[0]:.0f} to {NORMAL_VOLUME_MM3[1]:.0f} mm3, "
                     f"{NORMAL_VOLUME_SOURCE})")
    lines += [f"misfit {report.case}: {report.reason}" for report in reports if report.misfits]
    return "\n".join(lines)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, else an error naming the value."""
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of px")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python eda.py``."""
    default_data = find_data_dir()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--data-dir", type=Path, default=default_data,
                        help="folder holding images/ and labels/ (default: $HIPPOCAMPUS_DATA, "
                             "else the kit's data/TrainingSet, else a shared copy beside the "
                             f"kit; here {default_data})")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help="folder for the curated images/ and labels/, cases.csv and "
                             f"volume_histogram.png (default: {DEFAULT_OUT_DIR})")
    parser.add_argument("--patch-size", type=positive_int, default=PATCH_SIZE_PX,
                        help="the section 2 pipeline's in-plane patch size in px; a larger "
                             f"image is a misfit (default: {PATCH_SIZE_PX})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the data files a previous run left in the out dir "
                             "(default: False)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the whole analysis, print a summary and the misfits; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.data_dir is None:
        kit = import_kit()
        looked = (", ".join(map(str, kit.data_dir_candidates())) if kit is not None
                  else "no kit above this script")
        print(f"error: no data folder with images/ and labels/ found (looked in: {looked}); "
              "run tools/get_data.py or pass --data-dir", file=sys.stderr)
        return 2
    try:
        reports = analyse_data_set(args.data_dir, args.patch_size)
        written = curate(reports, args.out_dir, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summarise(reports))
    print(f"curated data set: {sum(report.status == 'ok' for report in reports)} pairs in "
          f"{args.out_dir}; table {written['cases_csv']}; histogram {written['histogram']}")
    return 0


if __name__ == "__main__":
    kit = import_kit()  # None only for a copy of section1 outside the kit
    if kit is None:
        sys.exit(main())
    kit.run_script(lambda: sys.exit(main()), HERE)  # an unfinished TASK: one line, exit 1

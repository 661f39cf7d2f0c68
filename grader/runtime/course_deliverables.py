"""Check the deliverables of a public course-starter submission (nd320-c3-3d-imaging-starter).

The course hands in other things than this kit for section 1 and for the section 2 report:

- Section 1: a notebook (``.ipynb``, or a ``.py`` that copies its TASK texts) and the curated
  data set, ``images/`` and ``labels/`` of NIfTI files with matching names, in
  ``section1/out``. The course's raw set holds 260 clean pairs plus misfits.
- Section 2: ``results.json`` as the course's ``run_ml_pipeline.py`` writes it
  (``volume_stats``: filename, dice, jaccard per test volume; ``overall``: mean_dice,
  mean_jaccard; ``config``), TensorBoard screenshots and, optionally, ``model.pth``.

A deliverable is graded in the course's way when the kit's file for it is absent: section 1
without ``eda.py``, section 2's out folder without the kit's report template
(``deliverable_layouts``). What only a person can judge (the notebook's answers, what the
screenshots show) is graded by hand. The checks here only read files; they never import or
run submission code.
"""

from __future__ import annotations

import functools
import json
import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib import image as mpl_image
from nibabel.filebasedimages import ImageFileError

from grader.runtime.layout import COURSE, KIT
from grader.runtime.report import TEMPLATE_TEXT, headings
from grader.runtime.submission import CodeUnderTest, find_real_data

SECTION1, REPORT = "section1", "report"  # the deliverables whose layout is detected here
KIT_EDA = "eda.py"  # the kit's section 1 module; the course has none

NIFTI_SUFFIXES = (".nii.gz", ".nii")
NOTEBOOK_SUFFIXES = (".ipynb", ".py")  # the course accepts a .py copy of the notebook
SCREENSHOT_SUFFIXES = (".png", ".jpg", ".jpeg")
READ_ERRORS = (ImageFileError, OSError, EOFError, zlib.error, ValueError)

# MSD Task04 (Antonelli et al., Nature Communications 13, 4128, 2022): labels 0 background,
# 1 anterior, 2 posterior; every case a 1 x 1 x 1 mm crop, image and label on one grid.
LABEL_VALUES = (0, 1, 2)
HIPPOCAMPUS_CLASSES = (1, 2)
EXPECTED_SPACING_MM = (1.0, 1.0, 1.0)
GRID_TOLERANCE_MM = 1e-3  # headers store float32: rounding, not another grid
CASE_NAME = re.compile(r"^hippocampus_\d{3}\.nii(\.gz)?$")  # the MSD Task04 file names
COURSE_CLEAN_PAIRS = 260  # clean pairs of the course's raw set (the curated set's size)

# results.json: Dice and Jaccard of the same masks satisfy J = D / (2 - D) exactly; students
# round or store float32, so allow 1e-3 (a Jaccard distance, 1 - J, is off by far more).
METRIC_TOLERANCE = 1e-3
PERFORMANCE_DICE = 0.85  # mean test Dice below this loses the performance points (R2.03)
MIN_TRAIN_AND_VAL_VOLUMES = 2  # a split keeps at least one training and one validation volume


class DeliverableError(ValueError):
    """A deliverable that is missing or cannot be read; the message says which and why."""


def _kit_template_headings() -> set[str]:
    return set(headings(TEMPLATE_TEXT))


def deliverable_layouts(code: CodeUnderTest) -> dict[str, str]:
    """The layout of each deliverable: ``{"section1": KIT | COURSE, "report": KIT | COURSE}``.

    Section 1 is the kit's when it holds ``eda.py``; the report is the kit's when
    ``section2/out/README.md`` keeps a heading of the kit's template. A deliverable whose
    folder is missing follows section 2's code (``code.layout``, see ``grader/runtime/layout.py``).
    The kit's own solution is the kit's layout throughout.
    """
    if code.is_kit:
        return {SECTION1: KIT, REPORT: KIT}
    fallback = code.layout
    if code.section1 is None:
        section1 = fallback
    else:
        section1 = KIT if (code.section1 / KIT_EDA).is_file() else COURSE
    readme = code.out / "README.md" if code.out is not None else None
    if readme is None:
        report = fallback
    elif readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        headings = {line[3:].strip() for line in text.splitlines() if line.startswith("## ")}
        report = KIT if headings & _kit_template_headings() else COURSE
    else:
        report = COURSE
    return {SECTION1: section1, REPORT: report}


# -- Section 1: the notebook and the curated data set ----------------------------------------

def find_notebooks(section1: Path | None) -> list[Path]:
    """The notebooks (``.ipynb``, or ``.py`` copies) handed in under ``section1``, sorted."""
    if section1 is None:
        return []
    return sorted(path for path in section1.rglob("*")
                  if path.is_file() and path.name.lower().endswith(NOTEBOOK_SUFFIXES))


def case_of(path: Path) -> str:
    """A NIfTI file's case name: its name without ``.nii.gz`` or ``.nii``."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[:-len(suffix)]
    return path.name


def nifti_files(folder: Path) -> dict[str, Path]:
    """``{case name: path}`` of the NIfTI files directly in ``folder``."""
    return {case_of(path): path for path in sorted(folder.iterdir())
            if path.is_file() and path.name.endswith(NIFTI_SUFFIXES)}


def find_curated_set(section1: Path | None) -> Path:
    """The folder of the curated data set: the ``images``/``labels`` pair with most files.

    Raises:
        DeliverableError: when section 1 holds no folder with both ``images/`` and
            ``labels/`` of NIfTI files.
    """
    candidates = []
    if section1 is not None:
        for images in section1.rglob("images"):
            if images.is_dir() and (images.parent / "labels").is_dir():
                count = len(nifti_files(images)) + len(nifti_files(images.parent / "labels"))
                if count:
                    candidates.append((count, str(images.parent), images.parent))
    if not candidates:
        raise DeliverableError(
            "no curated data set found: section1/out must hold images/ and labels/ with the "
            "clean pairs' NIfTI files (the notebook's last TASK copies them there)")
    return max(candidates)[2]


@dataclass
class CaseCheck:
    """What one case of a data set holds and what is wrong with it.

    Attributes:
        case: file name without suffix, e.g. "hippocampus_001".
        image, label: the case's files, None when the data set lacks one.
        problems: {kind: message}; kinds "no_label", "no_image", "unreadable" (pairing and
            reading), "grid" (shape, affine or spacing), "label_values" (values or classes).
    """

    case: str
    image: Path | None
    label: Path | None
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.problems


def _read(path: Path, voxels: bool) -> tuple[nib.Nifti1Image, np.ndarray | None]:
    """Open a NIfTI file; read its voxels too when ``voxels``.

    Raises:
        DeliverableError: when nibabel cannot read it as a 3-D volume; names the file.
    """
    try:
        nifti = nib.load(path)
        data = np.asanyarray(nifti.dataobj) if voxels else None
    except READ_ERRORS as err:
        raise DeliverableError(f"{path.name} cannot be read as NIfTI ({type(err).__name__}: "
                               f"{err})") from err
    if len(nifti.shape) != len(EXPECTED_SPACING_MM):
        raise DeliverableError(f"{path.name} has shape {nifti.shape}, not a 3-D volume")
    return nifti, data


def _mm(values) -> str:
    return " x ".join(f"{float(value):.3g}" for value in values) + " mm"


def check_case(case: str, image: Path | None, label: Path | None,
               read_image_voxels: bool = True) -> CaseCheck:
    """Check one case: both files there and readable, one 1 mm grid, label values {0, 1, 2}.

    Args:
        case: the case name.
        image, label: its files, None where missing.
        read_image_voxels: decompress the image's voxels too (proves it is not truncated).

    Returns:
        The CaseCheck; its problems name the file, the expected and the found value.
    """
    check = CaseCheck(case, image, label)
    if (image is None) != (label is None):  # one side only
        kind, folder, partner = (("no_label", "images", "label") if label is None
                                 else ("no_image", "labels", "image"))
        check.problems[kind] = f"{folder}/{(image or label).name} has no {partner} of the same name"
    opened = {}
    for side, path in (("image", image), ("label", label)):
        if path is None:
            continue
        try:
            opened[side] = _read(path, voxels=side == "label" or read_image_voxels)
        except DeliverableError as err:
            check.problems["unreadable"] = f"{path.parent.name}/{err}"
    grid = []
    for side, (nifti, _) in opened.items():
        spacing = tuple(float(zoom) for zoom in nifti.header.get_zooms()[:3])
        if not np.allclose(spacing, EXPECTED_SPACING_MM, atol=GRID_TOLERANCE_MM):
            grid.append(f"{side} spacing {_mm(spacing)} != {_mm(EXPECTED_SPACING_MM)}")
    if len(opened) == 2:
        (image_nifti, _), (label_nifti, _) = opened["image"], opened["label"]
        if image_nifti.shape != label_nifti.shape:
            grid.append(f"image shape {image_nifti.shape} != label shape {label_nifti.shape}")
        elif not np.allclose(image_nifti.affine, label_nifti.affine, atol=GRID_TOLERANCE_MM):
            grid.append("image and label affines differ (another grid)")
    if grid:
        check.problems["grid"] = f"{case}: " + "; ".join(grid)
    if "label" in opened:
        seg = opened["label"][1]
        values = np.unique(seg)
        wrong = [value for value in values.tolist() if value not in LABEL_VALUES]
        missing = [value for value in HIPPOCAMPUS_CLASSES if value not in values]
        if wrong or missing:
            check.problems["label_values"] = (
                f"labels/{label.name} holds values {values.tolist()[:10]}; a hippocampus label "
                f"holds {list(LABEL_VALUES)} with both classes 1 and 2")
    return check


def check_data_set(root: Path, read_image_voxels: bool = True) -> list[CaseCheck]:
    """Check every case of ``root/images`` and ``root/labels``, sorted by case name."""
    images, labels = nifti_files(root / "images"), nifti_files(root / "labels")
    return [check_case(case, images.get(case), labels.get(case), read_image_voxels)
            for case in sorted(set(images).union(labels))]


@functools.cache
def raw_data_checks() -> tuple[CaseCheck, ...] | None:
    """Every case of the grader's raw data set (``find_real_data``), checked once; None
    when the grader has no data set beside it. Image voxels are not read: headers suffice."""
    data = find_real_data()
    return None if data is None else tuple(check_data_set(data, read_image_voxels=False))


def problems_of(checks: list[CaseCheck], kinds: tuple[str, ...]) -> list[str]:
    """The messages of the given problem kinds over all cases."""
    return [check.problems[kind] for check in checks for kind in kinds if kind in check.problems]


def misfit_cases(checks: list[CaseCheck], kinds: tuple[str, ...]) -> set[str]:
    """Names of the cases with a problem of one of ``kinds``."""
    return {check.case for check in checks if any(kind in check.problems for kind in kinds)}


def clean_cases(checks: list[CaseCheck]) -> set[str]:
    """Names of the clean pairs."""
    return {check.case for check in checks if check.clean}


# -- Section 2: results.json and screenshots -------------------------------------------------

def find_course_results(out: Path | None) -> Path:
    """The results.json that the course pipeline wrote, under section2/out.

    The course writes ``<test_results_dir>/<time>_<name>/results.json``; a student may hand
    in that folder or the file alone. With several, the one whose folder sorts last (the
    latest run by its time prefix) is graded.

    Raises:
        DeliverableError: when no results.json holding ``volume_stats`` is found.
    """
    found = []
    if out is not None:
        for path in sorted(out.rglob("results.json")):
            try:
                payload = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(payload, dict) and "volume_stats" in payload:
                found.append(path)
    if not found:
        raise DeliverableError(
            "no results.json with 'volume_stats' under section2/out: hand in the results.json "
            "that run_ml_pipeline.py wrote into your test results folder")
    return max(found, key=lambda path: (path.parent.name, str(path)))


@dataclass(frozen=True)
class CourseResults:
    """The per-volume and mean metrics of a course results.json."""

    path: Path
    volumes: list[dict]  # {"filename": str, "dice": float, "jaccard": float}
    overall: dict


def load_course_results(out: Path | None) -> CourseResults:
    """Read the course results.json under ``out``.

    Raises:
        DeliverableError: when it is missing, or its volume_stats is not a non-empty list of
            objects with filename, dice and jaccard, or dice/jaccard are not numbers.
    """
    path = find_course_results(out)
    payload = json.loads(path.read_text())
    volumes = payload["volume_stats"]
    if not isinstance(volumes, list) or not volumes:
        raise DeliverableError(f"{path.name}: 'volume_stats' lists no test volume")
    for number, entry in enumerate(volumes):
        if not (isinstance(entry, dict) and {"filename", "dice", "jaccard"} <= entry.keys()):
            raise DeliverableError(f"{path.name}: volume_stats[{number}] lacks filename, dice "
                                   "or jaccard")
        for key in ("dice", "jaccard"):
            if isinstance(entry[key], bool) or not isinstance(entry[key], (int, float)):
                raise DeliverableError(f"{path.name}: volume_stats[{number}] {key} is "
                                       f"{entry[key]!r}, not a number")
    overall = payload.get("overall")
    return CourseResults(path, volumes, overall if isinstance(overall, dict) else {})


def range_problems(results: CourseResults) -> list[str]:
    """Per-volume Dice or Jaccard that is not a finite number in [0, 1]."""
    return [f"{entry['filename']}: {key} {entry[key]!r} is outside [0, 1]"
            for entry in results.volumes for key in ("dice", "jaccard")
            if not (math.isfinite(entry[key]) and 0.0 <= entry[key] <= 1.0)]


def consistency_problems(results: CourseResults) -> list[str]:
    """Volumes whose Jaccard is not Dice / (2 - Dice), as it is for the same two masks."""
    problems = []
    for entry in results.volumes:
        dice, jaccard = entry["dice"], entry["jaccard"]
        if not (math.isfinite(dice) and math.isfinite(jaccard)) or dice >= 2.0:
            continue  # range_problems reports these
        expected = dice / (2.0 - dice)
        if abs(jaccard - expected) > METRIC_TOLERANCE:
            problems.append(f"{entry['filename']}: Jaccard {jaccard:.4f} but Dice {dice:.4f} "
                            f"gives Jaccard {expected:.4f} (J = D / (2 - D) for the same masks)")
    return problems


def mean_problems(results: CourseResults) -> list[str]:
    """Differences between overall's means and the means of the listed volumes."""
    problems = []
    for key, mean_key in (("dice", "mean_dice"), ("jaccard", "mean_jaccard")):
        stated = results.overall.get(mean_key)
        listed = float(np.mean([entry[key] for entry in results.volumes]))
        if isinstance(stated, bool) or not isinstance(stated, (int, float)):
            problems.append(f"overall.{mean_key} is {stated!r}, not a number")
        elif not abs(stated - listed) <= METRIC_TOLERANCE:
            problems.append(f"overall.{mean_key} {stated:.4f} != {listed:.4f}, the mean over the "
                            f"{len(results.volumes)} listed volumes")
    return problems


def listed_cases(results: CourseResults) -> list[str]:
    """Case names of the listed volumes (file names without folder and suffix)."""
    return [case_of(Path(str(entry["filename"]))) for entry in results.volumes]


def name_problems(results: CourseResults, curated: set[str] | None, misfits: set[str],
                  known: set[str] | None) -> list[str]:
    """Listed file names that are no test volume of the data set.

    Args:
        results: the course results.
        curated: case names of the student's curated set (what they trained on), or None.
        misfits: case names that are misfits of the grader's raw data set.
        known: every clean case of the grader's data set when it is the full course set,
            else None (a subset proves nothing about a name it lacks).
    """
    problems = []
    for entry, case in zip(results.volumes, listed_cases(results), strict=True):
        name = Path(str(entry["filename"])).name
        if not CASE_NAME.match(name):
            problems.append(f"{name!r} is not a file name of the data set "
                            "(hippocampus_NNN.nii.gz)")
        elif case in misfits:
            problems.append(f"{name} is a misfit of the raw data set, not a clean test volume")
        elif curated is not None and case not in curated:
            problems.append(f"{name} is not in your curated data set (section1/out)")
        elif known is not None and case not in known:
            problems.append(f"{name} is not a case of the data set")
    return problems


def count_problems(results: CourseResults, n_volumes: int,
                   expected_test_count: int | None = None) -> list[str]:
    """A test set that lists a volume twice, or cannot be the test part of a split.

    Args:
        results: the course results.
        n_volumes: volumes of the data set the split was made from.
        expected_test_count: the size of the test split where it is known, else None.
    """
    cases = listed_cases(results)
    repeated = sorted({case for case in cases if cases.count(case) > 1})
    problems = [f"{case} is listed {cases.count(case)} times" for case in repeated]
    most = n_volumes - MIN_TRAIN_AND_VAL_VOLUMES
    if len(cases) > most:
        problems.append(f"{len(cases)} test volumes out of {n_volumes}: a split must keep "
                        "volumes for training and validation (testing on training volumes?)")
    if expected_test_count is not None and len(cases) != expected_test_count:
        problems.append(f"{len(cases)} test volumes listed, but the split's test part holds "
                        f"{expected_test_count}")
    return problems


def listed_mean_dice(results: CourseResults) -> float:
    """Mean Dice over the listed volumes.

    Raises:
        DeliverableError: when a listed Dice is not a finite number in [0, 1]: such a mean
            cannot be trusted.
    """
    dice = [entry["dice"] for entry in results.volumes]
    if not all(math.isfinite(value) and 0.0 <= value <= 1.0 for value in dice):
        raise DeliverableError(f"{results.path.name} lists a Dice outside [0, 1]; its mean "
                               "cannot be trusted (fix Dice3d and run the test again)")
    return float(np.mean(dice))


def find_screenshots(out: Path | None) -> tuple[list[Path], list[str]]:
    """Image files under section2/out: (readable ones, problems of unreadable ones)."""
    if out is None:
        return [], []
    readable, problems = [], []
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.suffix.lower() in SCREENSHOT_SUFFIXES:
            try:
                array = mpl_image.imread(path)
            except (OSError, ValueError, SyntaxError) as err:
                problems.append(f"{path.name} is not a readable image ({type(err).__name__})")
                continue
            if array.ndim < 2 or min(array.shape[:2]) < 1:
                problems.append(f"{path.name} holds no picture (shape {array.shape})")
            else:
                readable.append(path)
    return readable, problems

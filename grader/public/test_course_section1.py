"""Section 1 of a course-starter submission: the curated data set and the notebook.

The course's section 1 hands in a notebook and the curated data set in ``section1/out``
(``images/`` and ``labels/``, the clean pairs of the raw set). The curated set is graded
automatically under the kit's TASK ids, so that scores compare; the notebook's answers are
graded by hand (S1.02, S1.03). Checks of the set alone run everywhere; checks against the raw
data set run where the grader finds it (``../shared/data/hippocampus/TrainingSet``), which may
be a subset of the course's 260 clean pairs: a clean pair of the grader's set must be in the
curated set, and a misfit of it must not.

Each mistake costs one TASK: a file without its partner or an unreadable file costs S1.01
only (the other checks look at complete, readable pairs); a pair on two grids costs S1.04; a
label with other values costs S1.05; a clean pair left out costs S1.06.
"""

from __future__ import annotations

import pytest

from grader.runtime import course_deliverables as course

pytestmark = pytest.mark.deliverable("section1", "course")

HEADER_MISFITS = ("no_label", "no_image", "unreadable", "grid")  # kinds S1.04 leaves out
LABEL_MISFITS = ("label_values",)  # kinds S1.05 leaves out


@pytest.fixture(scope="session")
def raw_checks() -> list[course.CaseCheck]:
    """Every case of the grader's raw data set, checked (in the grader, not the submission)."""
    checks = course.raw_data_checks()
    if checks is None:
        pytest.skip("the raw data set is not beside the grader: the curated set is not "
                    "compared with it")
    return list(checks)


def curated_checks(code, read_image_voxels: bool = False) -> list[course.CaseCheck]:
    """The checked cases of the submission's curated set (call it in a test body). Image
    voxels are decompressed only where readability is graded; headers suffice elsewhere."""
    return course.check_data_set(course.find_curated_set(code.section1), read_image_voxels)


def complete_pairs(checks: list[course.CaseCheck]) -> list[course.CaseCheck]:
    """Cases with both files, each readable: the ones S1.04 and S1.05 look at."""
    return [check for check in checks
            if check.image and check.label and "unreadable" not in check.problems]


def listed(problems: list[str], limit: int = 5) -> str:
    more = f" and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


# --- S1.01 every file of the curated set has its partner, and reads -------------------------


@pytest.mark.task("S1.01", points=2)
def test_every_curated_image_has_its_label_and_every_label_its_image(code):
    problems = course.problems_of(curated_checks(code), ("no_label", "no_image"))
    assert not problems, ("the curated set must hold image and label of the same name for "
                          f"every case: {listed(problems)}")


@pytest.mark.task("S1.01", points=2)
def test_every_curated_file_reads_as_a_3d_nifti_volume(code):
    problems = course.problems_of(curated_checks(code, read_image_voxels=True), ("unreadable",))
    assert not problems, f"copy the files again, unchanged: {listed(problems)}"


# --- S1.04 no pair on two grids; no header misfit of the raw set ---------------------------


@pytest.mark.task("S1.04", points=3)
def test_curated_pairs_share_one_1_mm_grid(code):
    problems = course.problems_of(complete_pairs(curated_checks(code)), ("grid",))
    assert not problems, ("a clean pair has image and label of one shape on one 1 x 1 x 1 mm "
                          f"grid; leave these out: {listed(problems)}")


@pytest.mark.task("S1.04", points=2)
def test_no_header_misfit_of_the_raw_data_set_is_curated(code, raw_checks):
    misfits = course.misfit_cases(raw_checks, HEADER_MISFITS)
    found = sorted({check.case for check in complete_pairs(curated_checks(code))} & misfits)
    assert not found, f"misfits of the raw data set are in the curated set: {', '.join(found)}"


# --- S1.05 every curated label is a hippocampus label ---------------------------------------


@pytest.mark.task("S1.05", points=2)
def test_every_curated_label_holds_0_1_2_with_both_classes(code):
    problems = course.problems_of(complete_pairs(curated_checks(code)), LABEL_MISFITS)
    assert not problems, f"leave these labels out: {listed(problems)}"


@pytest.mark.task("S1.05", points=2)
def test_no_label_misfit_of_the_raw_data_set_is_curated(code, raw_checks):
    misfits = course.misfit_cases(raw_checks, LABEL_MISFITS)
    found = sorted({check.case for check in complete_pairs(curated_checks(code))} & misfits)
    assert not found, ("labels that are no hippocampus label are in the curated set: "
                       f"{', '.join(found)}")


# --- S1.06 the curated set holds the clean pairs --------------------------------------------


@pytest.mark.task("S1.06", points=1)
def test_curated_set_is_handed_in_with_at_most_the_courses_clean_pairs(code):
    checks = curated_checks(code)
    pairs = len(complete_pairs(checks))
    assert 0 < pairs <= course.COURSE_CLEAN_PAIRS, (
        f"the curated set holds {pairs} complete pairs; the course's raw set has "
        f"{course.COURSE_CLEAN_PAIRS} clean pairs")


@pytest.mark.task("S1.06", points=2)
def test_every_clean_pair_of_the_raw_data_set_is_curated(code, raw_checks):
    curated = {check.case for check in complete_pairs(curated_checks(code))}
    missing = sorted(course.clean_cases(raw_checks) - curated)
    assert not missing, (f"{len(missing)} clean pairs of the raw data set are not in the "
                         f"curated set: {', '.join(missing[:10])}"
                         f"{' ...' if len(missing) > 10 else ''}")


# --- S1.02, S1.03 the notebook's answers: graded by hand ------------------------------------


def notebooks_found(code) -> str:
    """The notebooks handed in, as text; fails when there is none."""
    notebooks = course.find_notebooks(code.section1)
    assert notebooks, ("no notebook (.ipynb, or a .py copy with the TASK texts) in section1: "
                       "there is nothing to grade by hand")
    return ", ".join(str(path.relative_to(code.section1)) for path in notebooks)


@pytest.mark.task("S1.02", points=4, by_hand="the notebook's answers on the NIfTI header: "
                  "file format, bits per pixel, units, grid spacing, which axes are the "
                  "axial, sagittal and coronal slices")
def test_notebook_header_answers_are_graded_by_hand(code):
    notebooks_found(code)


@pytest.mark.task("S1.03", points=6, by_hand="the notebook's hippocampus volume in mm3 "
                  "(about 2200 to 4500), the histogram of all volumes against the normal "
                  "population, and the outliers it shows")
def test_notebook_volume_and_histogram_are_graded_by_hand(code):
    notebooks_found(code)

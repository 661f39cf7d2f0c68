"""Section 2's deliverables of a course-starter submission: results.json and screenshots.

The course's pipeline writes ``results.json`` (per test volume: filename, dice, jaccard;
``overall`` means; ``config``) and asks for TensorBoard screenshots and ``model.pth``
(optional here). These tests check that the numbers are possible and agree with one
another, and take the performance points from the student's own mean test Dice (R2.03).
What the screenshots show is graded by hand.
"""

from __future__ import annotations

import pytest

from grader.runtime import course_deliverables as course

pytestmark = pytest.mark.deliverable("report", "course")


@pytest.fixture(scope="session")
def raw_checks() -> list[course.CaseCheck] | None:
    """Every case of the grader's raw data set, checked; None without it."""
    checks = course.raw_data_checks()
    return None if checks is None else list(checks)


def curated_cases(code) -> set[str] | None:
    """Case names of the student's curated set (complete pairs), None when none is handed in."""
    try:
        root = course.find_curated_set(code.section1)
    except course.DeliverableError:
        return None
    images, labels = course.nifti_files(root / "images"), course.nifti_files(root / "labels")
    return images.keys() & labels.keys()


# --- R2.01 screenshots ----------------------------------------------------------------------


@pytest.mark.task("R2.01", points=2)
def test_tensorboard_screenshots_are_handed_in_as_images(code):
    screenshots, problems = course.find_screenshots(code.out)
    assert not problems, "; ".join(problems)
    assert screenshots, ("no screenshot (.png or .jpg) in section2/out: hand in the "
                         "TensorBoard plots of the train and validation loss and the prediction "
                         "images")


@pytest.mark.task("R2.01", points=2, by_hand="what the TensorBoard screenshots show: train and "
                  "validation loss, and predictions at different stages of training")
def test_screenshots_content_is_graded_by_hand(code):
    screenshots, _ = course.find_screenshots(code.out)
    assert screenshots, "no screenshot in section2/out: there is nothing to grade by hand"


# --- R2.02 results.json is possible and agrees with itself ----------------------------------


@pytest.mark.task("R2.02", points=1)
def test_results_json_dice_and_jaccard_are_in_0_1(code):
    problems = course.range_problems(course.load_course_results(code.out))
    assert not problems, "a Dice or Jaccard is a number in [0, 1]: " + "; ".join(problems[:5])


@pytest.mark.task("R2.02", points=1)
def test_results_json_jaccard_agrees_with_dice_for_every_volume(code):
    problems = course.consistency_problems(course.load_course_results(code.out))
    assert not problems, "check Jaccard3d: " + "; ".join(problems[:5])


@pytest.mark.task("R2.02", points=1)
def test_results_json_means_are_the_means_of_its_volumes(code):
    problems = course.mean_problems(course.load_course_results(code.out))
    assert not problems, "; ".join(problems)


@pytest.mark.task("R2.02", points=1)
def test_results_json_file_names_are_clean_cases_of_the_data_set(code, raw_checks):
    results = course.load_course_results(code.out)
    misfits, known = set(), None
    if raw_checks is not None:
        misfits = {check.case for check in raw_checks if not check.clean}
        clean = course.clean_cases(raw_checks)
        known = clean if len(clean) >= course.COURSE_CLEAN_PAIRS else None
    problems = course.name_problems(results, curated_cases(code), misfits, known)
    assert not problems, "; ".join(problems[:5])


@pytest.mark.task("R2.02", points=1)
def test_results_json_lists_each_test_volume_once_and_fewer_than_the_data_set(code):
    curated = curated_cases(code)
    n_volumes = len(curated) if curated else course.COURSE_CLEAN_PAIRS
    problems = course.count_problems(course.load_course_results(code.out), n_volumes)
    assert not problems, "; ".join(problems)


# --- R2.03 performance ----------------------------------------------------------------------


@pytest.mark.task("R2.03", points=7)
def test_mean_test_dice_in_results_json_is_at_least_0_85(code):
    mean_dice = course.listed_mean_dice(course.load_course_results(code.out))
    assert mean_dice >= course.PERFORMANCE_DICE, (
        f"mean whole-hippocampus test Dice {mean_dice:.4f} < {course.PERFORMANCE_DICE}: the "
        "course expects about 0.90 with the default model; look for a bug before tuning")

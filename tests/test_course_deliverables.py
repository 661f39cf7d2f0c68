"""Grading a course-starter submission's deliverables (grader/runtime/course_deliverables.py).

The example deliverables here are written for these tests in the course's style: a curated
data set (``section1/out/images``, ``labels``), a notebook, the ``results.json`` that the
course's pipeline writes, and screenshots. The checks are first tested on tiny synthetic
NIfTI files and hand-written results; then whole submissions built from the real data (copied
and damaged in tmp dirs) are graded by the grader itself, on TASKs S1.xx and R2.xx only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest

from grader.batch.grade_all import STATUS_OK, grade_all
from grader.runtime import course_deliverables as course
from grader.runtime.layout import detect_layout
from grader.runtime.report import TEMPLATE_TEXT
from grader.runtime.results import ResultsWriter, TestResult, read_scores
from grader.runtime.submission import CodeUnderTest

REPO = Path(__file__).resolve().parents[1]

SHAPE = (6, 8, 7)  # [X, Y, Z] of a synthetic case
DELIVERABLE_TASKS = "S1.0 or R2.0"  # -k of the end-to-end gradings
GRADING_LIMIT_S = 300.0  # one end-to-end grading; each takes well under a minute


# -- course-style example deliverables -------------------------------------------------------

def hippocampus_label() -> np.ndarray:
    """uint8 [6, 8, 7]: label 1 in axis-0 slices 1-2, label 2 in slices 3-4, rows 2-5."""
    seg = np.zeros(SHAPE, np.uint8)
    seg[1:3, 2:6, 2:5] = 1
    seg[3:5, 2:6, 2:5] = 2
    return seg


def write_case(root: Path, case: str, image: np.ndarray | None = None,
               seg: np.ndarray | None = None, label_affine: np.ndarray | None = None,
               with_image: bool = True, with_label: bool = True) -> None:
    """Write ``root/images/<case>.nii.gz`` and ``root/labels/<case>.nii.gz`` (1 mm grid)."""
    image = np.random.default_rng(0).random(SHAPE).astype(np.float32) if image is None else image
    seg = hippocampus_label() if seg is None else seg
    for folder, array, affine, wanted in (("images", image, np.eye(4), with_image),
                                          ("labels", seg, label_affine, with_label)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        if wanted:
            nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine),
                     root / folder / f"{case}.nii.gz")


def course_results(dice: list[float], jaccard: list[float] | None = None,
                   names: list[str] | None = None, overall: dict | None = None) -> dict:
    """A results.json as the course's run_ml_pipeline.py writes it."""
    names = names or [f"hippocampus_{number:03d}.nii.gz" for number in range(1, len(dice) + 1)]
    jaccard = jaccard or [value / (2 - value) for value in dice]
    volumes = [{"filename": name, "dice": d, "jaccard": j}
               for name, d, j in zip(names, dice, jaccard, strict=True)]
    overall = overall or {"mean_dice": float(np.mean(dice)),
                          "mean_jaccard": float(np.mean(jaccard))}
    return {"volume_stats": volumes, "overall": overall,
            "config": {"name": "Basic_unet", "n_epochs": 10, "learning_rate": 0.0002,
                       "batch_size": 8, "patch_size": 64}}


def write_results(out: Path, payload: dict, session: str = "2026-03-01_0930_Basic_unet") -> Path:
    path = out / session / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path


def results_in(tmp_path: Path, payload: dict) -> course.CourseResults:
    write_results(tmp_path / "out", payload)
    return course.load_course_results(tmp_path / "out")


def write_notebook(path: Path) -> Path:
    """A small notebook in the course's style: a TASK cell answered with code."""
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Hippocampus data set\n"]},
             {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
              "source": ["# TASK: How many bits per pixel are used?\n",
                         "print(image_nifti.header['bitpix'])\n"]}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 2}))
    return path


def write_screenshot(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, np.linspace(0, 1, 64).reshape(8, 8), cmap="gray")
    return path


def code_of(root: Path, is_kit: bool = False) -> CodeUnderTest:
    section1, section2 = root / "section1", root / "section2" / "src"
    return CodeUnderTest(name="example", section2=section2,
                         section1=section1 if section1.is_dir() else None,
                         out=root / "section2" / "out" if (root / "section2" / "out").is_dir()
                         else None, is_kit=is_kit, layout=detect_layout(section2))


def write_course_code(src: Path) -> None:
    """A course-style section2/src: the course's TASK comments carry no kit id."""
    src.mkdir(parents=True, exist_ok=True)
    (src / "run_ml_pipeline.py").write_text(
        '"""Kicks off training and testing."""\n\n\nclass Config:\n'
        '    def __init__(self):\n        # TASK: fill in the directories\n'
        '        self.root_dir = "../../section1/out"\n')


# -- which layout ----------------------------------------------------------------------------

def test_notebook_and_curated_set_without_eda_py_are_the_course_layout(tmp_path):
    write_course_code(tmp_path / "section2" / "src")
    write_notebook(tmp_path / "section1" / "out" / "eda.ipynb")
    write_case(tmp_path / "section1" / "out", "hippocampus_001")
    write_screenshot(tmp_path / "section2" / "out" / "loss.png")
    assert course.deliverable_layouts(code_of(tmp_path)) == {"section1": "course",
                                                             "report": "course"}


def test_eda_py_and_the_kits_report_template_are_the_kit_layout(tmp_path):
    write_course_code(tmp_path / "section2" / "src")
    (tmp_path / "section1").mkdir()
    (tmp_path / "section1" / "eda.py").write_text('"""My analysis."""\n')
    (tmp_path / "section2" / "out").mkdir(parents=True)
    (tmp_path / "section2" / "out" / "README.md").write_text(TEMPLATE_TEXT)
    assert course.deliverable_layouts(code_of(tmp_path)) == {"section1": "kit", "report": "kit"}


def test_missing_deliverable_folders_follow_the_layout_of_section_2s_code(tmp_path):
    write_course_code(tmp_path / "course" / "section2" / "src")
    kit_src = tmp_path / "kit" / "section2" / "src"
    kit_src.mkdir(parents=True)
    (kit_src / "run_ml_pipeline.py").write_text("# TASK S2.01: the data and results paths\n")
    assert set(course.deliverable_layouts(code_of(tmp_path / "course")).values()) == {"course"}
    assert set(course.deliverable_layouts(code_of(tmp_path / "kit")).values()) == {"kit"}


# -- section 1: the curated set --------------------------------------------------------------

def test_clean_synthetic_pairs_have_no_problem(tmp_path):
    for case in ("hippocampus_001", "hippocampus_002"):
        write_case(tmp_path, case)
    checks = course.check_data_set(tmp_path)
    assert [check.case for check in checks] == ["hippocampus_001", "hippocampus_002"]
    assert all(check.clean for check in checks)


def test_each_misfit_of_a_curated_set_gives_its_own_problem_kind(tmp_path):
    write_case(tmp_path, "lone_image", with_label=False)
    write_case(tmp_path, "lone_label", with_image=False)
    write_case(tmp_path, "two_mm_label", label_affine=np.diag([2.0, 1.0, 1.0, 1.0]))
    write_case(tmp_path, "other_shape", seg=np.pad(hippocampus_label(), ((0, 1), (0, 0), (0, 0))))
    three = hippocampus_label()
    three[0, 0, 0] = 3
    write_case(tmp_path, "value_three", seg=three)
    write_case(tmp_path, "anterior_only", seg=np.minimum(hippocampus_label(), 1))
    (tmp_path / "images" / "truncated.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 not a volume")
    write_case(tmp_path, "truncated", with_image=False)
    kinds = {check.case: sorted(check.problems) for check in course.check_data_set(tmp_path)}
    assert kinds == {"anterior_only": ["label_values"], "lone_image": ["no_label"],
                     "lone_label": ["no_image"], "other_shape": ["grid"],
                     "truncated": ["unreadable"], "two_mm_label": ["grid"],
                     "value_three": ["label_values"]}


def test_curated_set_is_found_below_section1_out_and_its_absence_is_an_error(tmp_path):
    write_case(tmp_path / "section1" / "out" / "curated", "hippocampus_001")
    assert course.find_curated_set(tmp_path / "section1") == \
        tmp_path / "section1" / "out" / "curated"
    with pytest.raises(course.DeliverableError, match="no curated data set found"):
        course.find_curated_set(tmp_path / "empty")


def test_the_shared_data_sets_misfits_are_exactly_those_its_readme_lists(real_data_dir):
    checks = course.raw_data_checks()
    misfits = {check.case: sorted(check.problems) for check in checks if not check.clean}
    assert misfits == {"hippocampus_010": ["no_image"], "hippocampus_118": ["no_label"],
                       "hippocampus_281": ["grid", "label_values", "no_image"]}
    print(f"\nclean pairs in {real_data_dir}: {len(course.clean_cases(list(checks)))} "
          f"(the course's raw set: {course.COURSE_CLEAN_PAIRS})")


# -- section 2: results.json and screenshots -------------------------------------------------

def test_plausible_course_results_have_no_problem_and_dice_0_91_passes_the_floor(tmp_path):
    results = results_in(tmp_path, course_results([0.89, 0.91, 0.93]))
    assert course.range_problems(results) == []
    assert course.consistency_problems(results) == []
    assert course.mean_problems(results) == []
    assert course.name_problems(results, None, set(), None) == []
    assert course.count_problems(results, course.COURSE_CLEAN_PAIRS) == []
    assert course.listed_mean_dice(results) == pytest.approx(0.91)
    assert course.listed_mean_dice(results) >= course.PERFORMANCE_DICE


def test_dice_1_467_and_jaccard_2_80_are_out_of_range_and_their_mean_untrusted(tmp_path):
    results = results_in(tmp_path, course_results([1.467, 0.9], jaccard=[2.80, 0.9 / 1.1]))
    problems = course.range_problems(results)
    assert len(problems) == 2 and "dice 1.467" in problems[0] and "jaccard 2.8" in problems[1]
    with pytest.raises(course.DeliverableError, match="Dice outside"):
        course.listed_mean_dice(results)


def test_a_jaccard_that_is_the_jaccard_distance_disagrees_with_its_dice(tmp_path):
    dice = [0.9, 0.88]
    distance = [1 - d / (2 - d) for d in dice]  # scipy's jaccard is a distance
    results = results_in(tmp_path, course_results(dice, jaccard=distance))
    problems = course.consistency_problems(results)
    assert len(problems) == 2 and "J = D / (2 - D)" in problems[0]
    assert course.range_problems(results) == []


def test_means_other_than_the_mean_of_the_listed_volumes_are_reported(tmp_path):
    results = results_in(tmp_path, course_results(
        [0.8, 0.9], overall={"mean_dice": 0.95, "mean_jaccard": 0.8 / 1.2 / 2 + 0.9 / 1.1 / 2}))
    problems = course.mean_problems(results)
    assert len(problems) == 1 and problems[0].startswith("overall.mean_dice 0.9500 != 0.8500")


def test_unknown_file_names_and_misfits_are_no_test_volumes(tmp_path):
    names = ["hippocampus_001.nii.gz", "volume_7.nii.gz", "hippocampus_281.nii.gz",
             "/home/student/data/hippocampus_400.nii.gz"]
    results = results_in(tmp_path, course_results([0.9] * 4, names=names))
    problems = course.name_problems(results, curated={"hippocampus_001", "hippocampus_281"},
                                    misfits={"hippocampus_281"}, known=None)
    assert problems == [
        "'volume_7.nii.gz' is not a file name of the data set (hippocampus_NNN.nii.gz)",
        "hippocampus_281.nii.gz is a misfit of the raw data set, not a clean test volume",
        "hippocampus_400.nii.gz is not in your curated data set (section1/out)"]


def test_a_volume_listed_twice_or_a_test_set_as_large_as_the_data_set_is_reported(tmp_path):
    results = results_in(tmp_path, course_results(
        [0.9] * 3, names=["hippocampus_001.nii.gz", "hippocampus_001.nii.gz",
                          "hippocampus_002.nii.gz"]))
    assert course.count_problems(results, 100) == ["hippocampus_001 is listed 2 times"]
    assert "keep volumes for training" in course.count_problems(results, 4)[-1]
    assert course.count_problems(results, 100, expected_test_count=20)[-1] == \
        "3 test volumes listed, but the split's test part holds 20"


def test_the_latest_session_folders_results_json_is_graded(tmp_path):
    out = tmp_path / "out"
    write_results(out, course_results([0.5]), session="2026-03-01_0930_Basic_unet")
    latest = write_results(out, course_results([0.9]), session="2026-03-02_1015_Basic_unet")
    (out / "notes.json").write_text("{}")  # another JSON, not the pipeline's
    assert course.find_course_results(out) == latest


def test_results_json_whose_volume_stats_hold_no_numbers_is_an_error(tmp_path):
    write_results(tmp_path / "out", {"volume_stats": [{"filename": "hippocampus_001.nii.gz",
                                                       "dice": "0.9", "jaccard": 0.8}]})
    with pytest.raises(course.DeliverableError, match=r"dice is '0.9', not a number"):
        course.load_course_results(tmp_path / "out")


def test_screenshots_are_readable_images_and_a_broken_one_is_named(tmp_path):
    loss = write_screenshot(tmp_path / "loss.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    screenshots, problems = course.find_screenshots(tmp_path)
    assert screenshots == [loss]
    assert len(problems) == 1 and problems[0].startswith("broken.png is not a readable image")


# -- results: graded by hand -----------------------------------------------------------------

def test_a_by_hand_result_has_no_score_in_results_json_and_its_own_row_in_the_table(tmp_path):
    writer = ResultsWriter(tmp_path / "results.json", "example")
    writer.add(TestResult("S1.01 test_pairs", "S1.01", 2.0, 2.0, "passed", "", "visible"))
    writer.add(TestResult("S1.02 test_notebook", "S1.02", None, None, "failed",
                          "graded by hand (4 points): no notebook", "visible",
                          extra_data={"graded_by_hand": True, "points": 4.0}))
    payload = json.loads((tmp_path / "results.json").read_text())
    by_hand = payload["tests"][1]
    assert "score" not in by_hand and "max_score" not in by_hand
    assert by_hand["extra_data"] == {"graded_by_hand": True, "points": 4.0}
    assert (payload["score"], payload["max_score"]) == (2.0, 2.0)
    assert "S1.02 (4)" in payload["output"]
    table = (tmp_path / "results.txt").read_text()
    assert "S1.02    by hand       4  material missing: test_notebook" in table
    assert read_scores(tmp_path / "results.json") == {"S1.01": (2.0, 2.0)}


# -- whole course-style submissions, graded by the grader ------------------------------------

def copy_clean_pairs(data: Path, curated: Path, leave_out: tuple[str, ...] = ()) -> list[str]:
    """Copy every clean pair of the real data into ``curated``; return the case names."""
    cases = sorted(course.clean_cases(list(course.raw_data_checks())) - set(leave_out))
    for folder in ("images", "labels"):
        (curated / folder).mkdir(parents=True, exist_ok=True)
        for case in cases:
            shutil.copyfile(data / folder / f"{case}.nii.gz", curated / folder / f"{case}.nii.gz")
    return cases


def course_submission(root: Path, data: Path, leave_out: tuple[str, ...] = (),
                      notebook: bool = True, results: dict | None = None) -> Path:
    """A course-style submission: curated set, notebook, results.json and a screenshot."""
    write_course_code(root / "section2" / "src")
    cases = copy_clean_pairs(data, root / "section1" / "out", leave_out)
    if notebook:
        write_notebook(root / "section1" / "out" / "Final Project EDA.ipynb")
    test_cases = cases[:len(cases) // 5]  # an 80/20 split's test part
    dice = list(np.linspace(0.88, 0.94, len(test_cases)))  # mean 0.91
    write_results(root / "section2" / "out", results or course_results(
        dice, names=[f"{case}.nii.gz" for case in test_cases]))
    write_screenshot(root / "section2" / "out" / "tensorboard_loss.png")
    return root


def damage_a_label(curated: Path, case: str) -> None:
    """Give the curated label of ``case`` a voxel of value 3 (in the tmp copy)."""
    path = curated / "labels" / f"{case}.nii.gz"
    nifti = nib.load(path)
    seg = np.asanyarray(nifti.dataobj).copy()
    seg.flat[0] = 3
    nib.save(nib.Nifti1Image(seg, nifti.affine, nifti.header), path)


@pytest.fixture(scope="module")
def graded(real_data_dir, tmp_path_factory) -> dict[str, dict]:
    """{submission: {test name: its results.json entry}} of five gradings side by side."""
    root = tmp_path_factory.mktemp("course-submissions")
    submissions = root / "submissions"
    clean = sorted(course.clean_cases(list(course.raw_data_checks())))
    course_submission(submissions / "good", real_data_dir)
    misfits = course_submission(submissions / "misfits", real_data_dir)
    curated = misfits / "section1" / "out"
    shutil.copyfile(real_data_dir / "labels" / "hippocampus_281.nii.gz",
                    curated / "labels" / "hippocampus_281.nii.gz")
    damage_a_label(curated, clean[-1])
    course_submission(submissions / "missing_pair_no_notebook", real_data_dir,
                      leave_out=(clean[-1],), notebook=False)
    course_submission(submissions / "impossible_results", real_data_dir, results=course_results(
        [1.467, 0.9], jaccard=[2.80, 0.9 / 1.1], names=[f"{case}.nii.gz" for case in clean[:2]]))
    starter = submissions / "unfilled_starter"  # the course's hand-out, nothing done yet
    write_course_code(starter / "section2" / "src")
    write_notebook(starter / "section1" / "Final Project EDA.ipynb")
    (starter / "section1" / "out").mkdir()
    (starter / "section1" / "out" / "README.md").write_text("# Expected results\n")
    grades = grade_all(sorted(submissions.iterdir()), root / "grades", workers=2,
                       timeout_s=GRADING_LIMIT_S, keyword=DELIVERABLE_TASKS)
    found = {}
    for grade in grades:
        assert grade.status == STATUS_OK, f"{grade.name}: {grade.status}"
        tests = json.loads(grade.results_path.read_text())["tests"]
        found[grade.name] = {test["name"].split(" ", 1)[1]: test for test in tests}
    return found


def failed_tests(tests: dict[str, dict]) -> set[str]:
    """Automatic tests that lost their points."""
    return {name for name, test in tests.items() if "score" in test and test["status"] != "passed"}


def test_a_good_course_submission_scores_every_automatic_point_of_its_deliverables(graded):
    tests = graded["good"]
    automatic = [test for test in tests.values() if "score" in test]
    assert failed_tests(tests) == set()
    assert sum(test["score"] for test in automatic) == 30  # S1.01/04/05/06, R2.01 (2), R2.02, R2.03
    by_hand = {test["number"]: test for test in tests.values() if "score" not in test}
    assert sorted(by_hand) == ["R2.01", "S1.02", "S1.03"]
    assert all(test["status"] == "passed" and "graded by hand" in test["output"]
               for test in by_hand.values())


def test_an_orphan_label_and_a_damaged_label_cost_s1_01_and_s1_05_only(graded):
    assert failed_tests(graded["misfits"]) == {
        "test_every_curated_image_has_its_label_and_every_label_its_image",
        "test_every_curated_label_holds_0_1_2_with_both_classes"}


def test_a_missing_clean_pair_costs_s1_06_and_a_missing_notebook_is_still_graded_by_hand(graded):
    tests = graded["missing_pair_no_notebook"]
    assert failed_tests(tests) == {"test_every_clean_pair_of_the_raw_data_set_is_curated"}
    notebook = tests["test_notebook_header_answers_are_graded_by_hand"]
    assert "score" not in notebook and notebook["status"] == "failed"
    assert notebook["output"].startswith("graded by hand (4 points")


def test_dice_1_467_costs_the_plausibility_and_the_performance_points_only(graded):
    assert failed_tests(graded["impossible_results"]) == {
        "test_results_json_dice_and_jaccard_are_in_0_1",
        "test_results_json_jaccard_agrees_with_dice_for_every_volume",
        "test_mean_test_dice_in_results_json_is_at_least_0_85"}


def test_the_unfilled_course_starter_scores_0_and_keeps_its_notebook_for_grading_by_hand(
        graded):
    tests = graded["unfilled_starter"]
    automatic = [test for test in tests.values() if "score" in test]
    assert automatic and sum(test["score"] for test in automatic) == 0
    assert {test["number"] for test in tests.values() if "score" not in test} == {
        "S1.02", "S1.03", "R2.01"}

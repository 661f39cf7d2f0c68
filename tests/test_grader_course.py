"""The grader grades course-starter submissions against the course's own TASK texts.

Course-style example submissions (tests/course_submissions.py) are graded as real ones are,
``python -m pytest grader --submission=DIR``, side by side with grade_all: the finished one and
its correct variants, the unfilled starter, and one submission per known mistake. Only the
section-2 code TASKs (S2.xx) count here; section 1 and the report are graded apart.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest
from course_submissions import MISTAKES, VARIANTS, CourseSubmission, build, build_starter

from grader.batch.grade_all import STATUS_OK, Grade, grade_all
from grader.runtime.layout import COURSE, KIT, detect_layout

REPO = Path(__file__).resolve().parents[1]

SECTION2_PREFIX = "S2."  # the section-2 code TASKs
MIN_SHARE_OF_CORRECT = 0.95  # a correct course submission keeps at least this share
RUN_LIMIT_S = 900.0  # one grading run stopped after this is an error here
STARTER = "course_starter"
BASELINE = VARIANTS[0].name  # the finished course submission


def section2_tests(grade: Grade) -> dict[str, dict]:
    """{test name: Gradescope entry} of the section-2 code tests of a grading run."""
    if not grade.results_path.is_file():
        return {}
    tests = json.loads(grade.results_path.read_text())["tests"]
    return {test["name"]: test for test in tests if test["number"].startswith(SECTION2_PREFIX)}


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


@pytest.fixture(scope="module")
def grades(tmp_path_factory) -> dict[str, Grade]:
    """{name: Grade} of every course-style submission, graded in parallel."""
    root = tmp_path_factory.mktemp("course")
    folders = [build(submission, root / "submissions" / submission.name)
               for submission in (*VARIANTS, *MISTAKES)]
    folders.append(build_starter(root / "submissions" / STARTER))
    graded = grade_all(folders, root / "grades", timeout_s=RUN_LIMIT_S)
    return {grade.name: grade for grade in graded}


def test_course_submissions_are_detected_as_the_course_layout(tmp_path):
    finished = build(VARIANTS[0], tmp_path / "finished")
    starter = build_starter(tmp_path / "starter")
    assert detect_layout(finished / "section2" / "src") == COURSE
    assert detect_layout(starter / "section2" / "src") == COURSE
    assert detect_layout(REPO / "section2" / "src") == KIT
    assert detect_layout(REPO / "solution" / "section2" / "src") == KIT


def test_every_course_grading_finishes_and_reports_its_times(grades, capsys):
    seconds = [grade.seconds for grade in grades.values()]
    with capsys.disabled():
        print(f"\ngrading {len(grades)} course-style submissions, {os.cpu_count()} at a time: "
              f"median {statistics.median(seconds):.0f} s, max {max(seconds):.0f} s")
    problems = [f"{name}: {grade.status}" for name, grade in grades.items()
                if grade.status != STATUS_OK]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)
def test_a_correct_course_submission_keeps_its_section_2_points(variant, grades):
    tests = section2_tests(grades[variant.name])
    assert tests, f"no section-2 test ran on {variant.name}"
    score = sum(test["score"] for test in tests.values())
    max_score = sum(test["max_score"] for test in tests.values())
    failed = [f"{name}: {first_line(test['output'])}" for name, test in tests.items()
              if test["status"] != "passed"]
    assert score >= MIN_SHARE_OF_CORRECT * max_score, (
        f"{variant.name} ({variant.mistake}) scores {score:g} of {max_score:g}:\n"
        + "\n".join(failed))


def test_the_unfilled_course_starter_scores_zero(grades):
    tests = section2_tests(grades[STARTER])
    assert tests, "no section-2 test ran on the unfilled starter"
    scored = [f"{name}: {test['score']:g}" for name, test in tests.items() if test["score"]]
    assert not scored, "the unfilled course starter scores points:\n" + "\n".join(scored)


def lost_tests(mistake: CourseSubmission, grades: dict[str, Grade],
               own_task: bool) -> list[str]:
    """Tests the finished submission passes and ``mistake`` fails, of its TASK or others."""
    baseline, mutated = section2_tests(grades[BASELINE]), section2_tests(grades[mistake.name])
    lost = []
    for name, test in baseline.items():
        if (test["number"] == mistake.task) != own_task or test["status"] != "passed":
            continue
        after = mutated.get(name)
        if after is None or after["status"] != "passed":
            lost.append(f"{name}: {first_line(after['output']) if after else 'did not run'}")
    return lost


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda mistake: mistake.name)
def test_a_course_mistake_costs_points_of_its_own_task(mistake, grades, capsys):
    lost = lost_tests(mistake, grades, own_task=True)
    score = sum(test["score"] for test in section2_tests(grades[mistake.name]).values())
    with capsys.disabled():
        print(f"\n{mistake.name} ({mistake.task}): section 2 scores {score:g}; "
              f"{'; '.join(lost) or 'NOT CAUGHT'}")
    assert lost, f"no test of {mistake.task} notices '{mistake.mistake}'"


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda mistake: mistake.name)
def test_a_course_mistake_costs_no_point_of_another_task(mistake, grades):
    lost = lost_tests(mistake, grades, own_task=False)
    assert not lost, (f"'{mistake.mistake}' ({mistake.task}) also costs points of other "
                      "TASKs:\n" + "\n".join(lost))


def test_course_messages_name_no_kit_function_or_test(grades):
    """A course student never saw split_indices, normalize_intensity or the kit's TASK ids."""
    kit_words = ("split_indices", "normalize_intensity", "predict_logits", "complete TASK S2")
    found = [f"{grade.name}: {name}: {first_line(test['output'])}"
             for grade in grades.values() for name, test in section2_tests(grade).items()
             if any(word in test["output"] for word in kit_words)]
    assert not found, "\n".join(found)

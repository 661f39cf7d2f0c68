"""CI gates of the grader: it gives the solution full marks, the skeleton nothing, and every
known mistake (grader/mutants/) a loss on its own TASK and on no other.

The grader always runs as a subprocess (``python -m pytest grader --submission=DIR``), as it
does for a real submission; nothing of it is imported into this process but the mutant
builder and grade_all. Each grading runs once per module: the kit's solution alone (timed),
then the skeleton, an unchanged copy of the solution and every mutant side by side with
grade_all, os.cpu_count() at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.batch.grade_all import STATUS_OK, Grade, grade_all
from grader.mutants import (
    IGNORED,
    MUTANTS,
    Mutant,
    MutantError,
    apply_mutant,
    build_mutant,
    copy_solution,
)
from grader.runtime.results import load_manifest

REPO = Path(__file__).resolve().parents[1]

MAX_GRADING_S = 120.0  # one submission's grading on a CI runner; Gradescope allows more
RUN_LIMIT_S = 900.0  # a grading run stopped after this is an error here, not a slow pass
SKELETON = "skeleton"  # submission folder names in the batch; no mutant may take them
SOLUTION = "solution"


@dataclass(frozen=True)
class KitRun:
    """The grader's run over the kit itself (no --submission)."""

    exit_code: int
    output: str
    results: dict | None  # results.json, None when the run wrote none
    seconds: float


def to_terminal(text: str, capsys: pytest.CaptureFixture) -> None:
    """Print ``text`` on the terminal even while pytest captures output."""
    with capsys.disabled():
        print(text)


def load_tests(grade: Grade) -> dict[str, dict]:
    """{test name: its Gradescope entry} of a grading run's results.json ({} when none)."""
    if not grade.results_path.is_file():
        return {}
    return {test["name"]: test for test in json.loads(grade.results_path.read_text())["tests"]}


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory) -> KitRun:
    """``pytest grader`` over the kit's reference solution, as CI and instructors run it."""
    results = tmp_path_factory.mktemp("kit") / "results.json"
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "grader", f"--results={results}", "-q",
         "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    seconds = time.perf_counter() - start
    return KitRun(completed.returncode, completed.stdout + completed.stderr,
                  json.loads(results.read_text()) if results.is_file() else None, seconds)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict[str, Grade]:
    """{name: Grade} of the skeleton, an unchanged solution copy and every mutant."""
    root = tmp_path_factory.mktemp("gates")
    submissions = root / "submissions"
    # The skeleton as the student receives it: the generated files of the repository.
    shutil.copytree(REPO / "section2" / "src", submissions / SKELETON / "section2" / "src",
                    ignore=IGNORED)
    if (REPO / "section1").is_dir():
        shutil.copytree(REPO / "section1", submissions / SKELETON / "section1", ignore=IGNORED)
    copy_solution(submissions / SOLUTION)
    for mutant in MUTANTS:
        build_mutant(mutant, submissions / mutant.name)
    grades = grade_all(sorted(submissions.iterdir()), root / "grades", timeout_s=RUN_LIMIT_S)
    return {grade.name: grade for grade in grades}


# -- the mutants themselves: fast, no grading -------------------------------------------------
def test_mutant_names_do_not_clash_with_the_baseline_folders():
    assert not {mutant.name for mutant in MUTANTS} & {SKELETON, SOLUTION}


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.name)
def test_mutant_breaks_a_task_of_points_json(mutant):
    assert mutant.task in load_manifest()["tasks"], (
        f"grader/mutants/{mutant.name}.py: TASK {mutant.task} is not in grader/points.json")


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.name)
def test_mutant_applies_to_the_current_solution_and_changes_only_its_file(mutant, tmp_path):
    folder = build_mutant(mutant, tmp_path / mutant.name)
    solution = copy_solution(tmp_path / "solution")
    changed = [path.relative_to(folder).as_posix() for path in sorted(folder.rglob("*"))
               if path.is_file()
               and path.read_bytes() != (solution / path.relative_to(folder)).read_bytes()]
    assert changed == [f"section2/src/{mutant.file}"]


def fake_solution(root: Path, text: str) -> Path:
    """A solution folder whose only file is section2/src/utils/metric.py holding ``text``."""
    (root / "section2" / "src" / "utils").mkdir(parents=True)
    (root / "section2" / "src" / "utils" / "metric.py").write_text(text)
    return root


@pytest.mark.parametrize("text, count", [("x = 1\n", 0), ("y = 2\ny = 2\n", 2)])
def test_build_mutant_refuses_a_snippet_that_does_not_occur_exactly_once(text, count,
                                                                         tmp_path):
    mutant = Mutant(name="fake", task="S2.12", file="utils/metric.py", old="y = 2\n",
                    new="y = 3\n", mistake="a test mutant")
    source = fake_solution(tmp_path / "solution", text)
    with pytest.raises(MutantError, match=f"occurs {count} times .* update OLD and NEW"):
        build_mutant(mutant, tmp_path / "out", source=source)
    assert not (tmp_path / "out").exists()


def test_apply_mutant_refuses_a_change_that_does_not_parse():
    mutant = Mutant(name="fake", task="S2.12", file="metric.py", old="y = 2\n",
                    new="y = (\n", mistake="a test mutant")
    with pytest.raises(MutantError, match="no longer parses"):
        apply_mutant(mutant, "y = 2\n")


# -- (a) and (d): the kit's solution ----------------------------------------------------------
def test_the_solution_scores_every_point_of_every_collected_test(kit_run):
    assert kit_run.results is not None, f"the grader wrote no results.json:\n{kit_run.output}"
    # A test skipped for want of the real data is listed with its points and scores 0.
    skipped = [test for test in kit_run.results["tests"]
               if test["output"].startswith("skipped:")]
    failed = [f"{test['name']}: {first_line(test['output'])}"
              for test in kit_run.results["tests"]
              if test["status"] != "passed" and test not in skipped]
    assert not failed, "the reference solution fails grading tests:\n" + "\n".join(failed)
    assert kit_run.results["tests"], "no grading test was collected"
    assert kit_run.results["score"] == (kit_run.results["max_score"]
                                        - sum(test["max_score"] for test in skipped))


def test_every_kit_check_passes(kit_run):
    failed = [line for line in kit_run.output.splitlines() if line.startswith(("FAILED",
                                                                               "ERROR"))]
    assert kit_run.exit_code == 0, (f"pytest grader exited with {kit_run.exit_code}:\n"
                                    + "\n".join(failed or kit_run.output.splitlines()[-5:]))


def test_grading_one_submission_takes_under_two_minutes(kit_run, capsys):
    to_terminal(f"\ngrading the kit's solution (every grading test and kit check) took "
                f"{kit_run.seconds:.1f} s; the limit is {MAX_GRADING_S:g} s", capsys)
    assert kit_run.seconds < MAX_GRADING_S


def test_every_grading_of_the_batch_finishes_in_time(batch, capsys):
    times = ", ".join(f"{name} {grade.seconds:.0f} s" for name, grade in batch.items())
    to_terminal(f"\ngrading times, {os.cpu_count()} at a time: {times}", capsys)
    problems = [f"{name}: {grade.status}" for name, grade in batch.items()
                if grade.status != STATUS_OK]
    assert not problems, "\n".join(problems)


# -- (b): the skeleton ------------------------------------------------------------------------
def test_the_skeleton_scores_zero_on_every_task_test(batch):
    grade = batch[SKELETON]
    assert grade.status == STATUS_OK, grade.status
    tests = load_tests(grade)
    assert tests, "no grading test ran on the skeleton"
    scored = [f"{name}: {test['score']:g} of {test['max_score']:g}"
              for name, test in tests.items() if test["score"] != 0]
    assert not scored, "the unchanged skeleton scores points:\n" + "\n".join(scored)


# -- (c): the mutants -------------------------------------------------------------------------
def losses(mutant: Mutant, batch: dict[str, Grade], own_task: bool) -> list[str]:
    """Tests the unchanged solution passes and the mutant fails, of its TASK or the others.

    Returns:
        "name: first line of the failure" for each such test, "name [hidden]: ..." for a
        hidden one; a test of the solution run missing from the mutant's run counts as failed.
    """
    __tracebackhide__ = True
    baseline, mutated = batch[SOLUTION], batch[mutant.name]
    assert baseline.status == STATUS_OK, f"the unchanged solution: {baseline.status}"
    assert mutated.status == STATUS_OK, f"mutant {mutant.name}: {mutated.status}"
    mutant_tests = load_tests(mutated)
    lost = []
    for name, test in load_tests(baseline).items():
        if (test["number"] == mutant.task) != own_task or test["status"] != "passed":
            continue
        after = mutant_tests.get(name)
        if after is None or after["status"] != "passed":
            why = first_line(after["output"]) if after else "did not run"
            hidden = " [hidden]" if test["visibility"] != "visible" else ""
            lost.append(f"{name}{hidden}: {why}")
    return lost


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.name)
def test_mutant_fails_a_test_of_its_own_task(mutant, batch, capsys):
    caught = losses(mutant, batch, own_task=True)
    names = ", ".join(line.split(":")[0] for line in caught) or "NOT CAUGHT"
    to_terminal(f"\nmutant {mutant.name} ({mutant.task}) caught by: {names}", capsys)
    own = [name for name, test in load_tests(batch[SOLUTION]).items()
           if test["number"] == mutant.task]
    assert caught, (f"no test of TASK {mutant.task} notices the mistake '{mutant.mistake}' "
                    f"(grader/mutants/{mutant.name}.py); tests of {mutant.task}: "
                    f"{', '.join(own) or 'none yet'}")


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.name)
def test_mutant_loses_no_points_on_another_task(mutant, batch):
    lost = losses(mutant, batch, own_task=False)
    assert not lost, (f"the mistake of TASK {mutant.task} ({mutant.mistake}) also costs "
                      "points on tests of other TASKs; make those tests independent of "
                      f"TASK {mutant.task}'s code (their own inputs):\n" + "\n".join(lost))

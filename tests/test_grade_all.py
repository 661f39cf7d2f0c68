"""Tests of grader/batch/grade_all.py: a folder of submissions in, one row per submission out.

One run of ``python -m grader.batch.grade_all`` over four small submissions (the solution, a mutant,
one whose module exits on import, one without section2/src), graded on TASKs S2.12 and S2.13
only to stay fast; then the time limit and the process clean-up on their own.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from grader.batch import grade_all
from grader.mutants import MUTANTS, build_mutant, copy_solution
from grader.runtime.results import load_manifest

REPO = Path(__file__).resolve().parents[1]

KEYWORD = "S2.12 or S2.13"  # the TASKs graded here: Dice3d and Jaccard3d, fast tests
GRADED = ("S2.12", "S2.13")
MUTANT = next(mutant for mutant in MUTANTS if mutant.name == "dice_unbinarised")
RUN_LIMIT_S = 600  # the whole command; four small gradings take well under a minute


def exiting_submission(folder: Path) -> Path:
    """The solution, but utils/volume_stats.py ends the process as soon as it is imported."""
    copy_solution(folder)
    (folder / "section2" / "src" / "utils" / "volume_stats.py").write_text(
        "import os\n\nos._exit(3)  # a stray exit at import time\n")
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Run the command once; return its output, exit code and the rows of scores.csv."""
    root = tmp_path_factory.mktemp("grade-all")
    submissions, out = root / "submissions", root / "grades"
    copy_solution(submissions / "solution")
    build_mutant(MUTANT, submissions / MUTANT.name)
    exiting_submission(submissions / "exits_on_import")
    (submissions / "no_section2_src").mkdir()
    (submissions / "no_section2_src" / "notes.txt").write_text("handed in the wrong folder\n")
    (submissions / "README.txt").write_text("a file, not a submission\n")
    completed = subprocess.run(
        [sys.executable, "-m", "grader.batch.grade_all", str(submissions), "--out", str(out),
         "--workers", "2", "-k", KEYWORD],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    with open(out / grade_all.SCORES_FILE, newline="") as file:
        rows = list(csv.DictReader(file))
    with open(out / grade_all.SCORES_FILE, newline="") as file:
        header = next(csv.reader(file))
    return {"exit_code": completed.returncode, "stdout": completed.stdout,
            "stderr": completed.stderr, "header": header, "out": out,
            "rows": {row["submission"]: row for row in rows},
            "order": [row["submission"] for row in rows]}


def test_the_command_exits_zero_even_when_submissions_lose_points(graded):
    assert graded["exit_code"] == 0, graded["stderr"]


def test_scores_csv_has_one_row_per_submission_folder_in_name_order(graded):
    assert graded["order"] == ["dice_unbinarised", "exits_on_import", "no_section2_src",
                               "solution"]


def test_scores_csv_columns_are_the_tasks_of_points_json_then_total_max_status(graded):
    assert graded["header"] == ["submission", *load_manifest()["tasks"], "total", "max",
                                "status"]


def test_the_solution_scores_every_point_of_the_graded_tasks(graded):
    row = graded["rows"]["solution"]
    assert row["status"] == "ok"
    assert float(row["total"]) == float(row["max"]) > 0
    assert all(row[task] != "" for task in GRADED)


def test_tasks_without_a_graded_test_are_left_empty(graded):
    row = graded["rows"]["solution"]
    assert all(row[task] == "" for task in load_manifest()["tasks"] if task not in GRADED)


def test_a_mutant_loses_points_on_its_own_task_only(graded):
    solution, mutant = graded["rows"]["solution"], graded["rows"][MUTANT.name]
    assert mutant["status"] == "ok"
    assert float(mutant[MUTANT.task]) < float(solution[MUTANT.task])
    others = [task for task in GRADED if task != MUTANT.task]
    assert all(float(mutant[task]) == float(solution[task]) for task in others)


def test_a_module_that_exits_on_import_scores_zero_without_stopping_the_grading(graded):
    row, solution = graded["rows"]["exits_on_import"], graded["rows"]["solution"]
    assert row["status"] == "ok"
    assert float(row["total"]) == 0 and row["max"] == solution["max"]


def test_a_folder_without_section2_src_is_a_grader_error_with_the_reason(graded):
    row = graded["rows"]["no_section2_src"]
    assert row["status"].startswith("grader error: ")
    assert "section2/src" in row["status"]
    assert row["total"] == row["max"] == ""


def test_each_submission_gets_its_results_and_log(graded):
    for name in ("solution", "exits_on_import"):
        for file in (grade_all.RESULTS_FILE, "results.txt", grade_all.LOG_FILE):
            assert (graded["out"] / name / file).is_file(), f"{name}/{file}"


def test_the_command_prints_a_line_per_submission_and_the_wall_time(graded):
    lines = graded["stdout"].splitlines()
    for name in graded["order"]:
        assert sum(line.startswith(f"{name}: ") for line in lines) == 1, name
    assert lines[-1].startswith("graded 4 submissions (1 not ok) in ")


def test_a_grading_past_its_time_limit_is_stopped_and_reported(tmp_path):
    copy_solution(tmp_path / "solution")
    limit_s = 1.0  # far less than the grader needs to start
    start = time.perf_counter()
    grade = grade_all.grade_submission(tmp_path / "solution", tmp_path / "out", limit_s)
    assert grade.status == f"timed out after {limit_s:g} s"
    assert time.perf_counter() - start < limit_s + 10  # stopped, not waited for


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_session_also_kills_a_child_that_left_the_process_group():
    # As the grader's sandbox does: the run forks a test child that moves to its own group.
    script = ("import os, sys, time\n"
              "if os.fork() == 0:\n"
              "    os.setpgid(0, 0)\n"
              "    print(os.getpid(), flush=True)\n"
              "time.sleep(600)\n")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                           start_new_session=True)
    child = int(run.stdout.readline())
    try:
        assert grade_all.wait_unreaped(run.pid, 0.1) is False
        grade_all.stop_session(run.pid)
        run.wait(timeout=10)
        deadline = time.monotonic() + 10
        while is_running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not is_running(child)
    finally:
        for pid in (child, run.pid):  # only if the test failed half way
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
        run.stdout.close()
        run.wait()


def test_grade_all_refuses_two_submissions_of_the_same_name(tmp_path):
    with pytest.raises(ValueError, match="names must differ"):
        grade_all.grade_all([tmp_path / "a" / "alice", tmp_path / "b" / "alice"], tmp_path)


@pytest.mark.parametrize("make", [lambda root: root / "missing", lambda root: root],
                         ids=["missing", "empty"])
def test_the_command_refuses_a_folder_without_submissions(make, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        grade_all.main([str(make(tmp_path)), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "submission" in capsys.readouterr().err


def test_grading_also_writes_the_integrity_report(graded):
    with open(graded["out"] / "integrity.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    # The mutant is the solution with one line changed: the pair is reported as copied code.
    assert ("dice_unbinarised", "code-similarity", "solution") in {
        (row["submission"], row["check"], row["other"]) for row in rows}
    assert (graded["out"] / "integrity.md").is_file()

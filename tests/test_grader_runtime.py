"""The grader's runtime on Gradescope: hangs, forging, memory, skipped tests, results.json.

The end-to-end cases grade course-style submissions built from the kit's solution with one
change each, in a subprocess, as Gradescope's ``run_autograder`` does. Cases that switch to an
unprivileged user need root and skip, saying so, without it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from grader.mutants import copy_solution
from grader.runtime import containment
from grader.runtime.hangs import Hang, stuck_frame
from grader.runtime.limits import RunLimits
from grader.runtime.never_copied import copytree_ignore
from grader.runtime.sandbox import Confinement, run_isolated

REPO = Path(__file__).resolve().parents[1]

GRADING_LIMIT_S = 600  # Gradescope's default timeout for a whole grading
PER_TEST_S = 20  # these runs' per-test limit (the grader's default): the slowest honest test
# takes 1.4 s on 2 cores
STUDENT_UID = "64123"  # a bare uid no account uses: its processes are this test's alone
HANG = "    while True:\n        pass\n"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to a student user needs "
                                "root; the same runs without it are tested beside")


def change_function(folder: Path, relative: str, function: str, first_lines: str) -> None:
    """Insert ``first_lines`` at the top of ``function`` in ``section2/src/<relative>``."""
    path = folder / "section2" / "src" / relative
    text = path.read_text()
    changed = re.sub(rf"^(def {function}\(.*\).*:\n)", lambda m: m[1] + first_lines, text,
                     count=1, flags=re.MULTILINE)
    assert changed != text, f"def {function} not found in {relative}"
    path.write_text(changed)


def grade(submission: Path, results: Path, *options: str) -> subprocess.CompletedProcess:
    """Grade ``submission`` as run_autograder does; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "grader", f"--submission={submission}",
         f"--results={results}", f"--task-timeout={PER_TEST_S}", "-p", "no:cacheprovider",
         "-q", *options], cwd=REPO, capture_output=True, text=True, timeout=GRADING_LIMIT_S)


def processes_of(marker: str) -> list[psutil.Process]:
    """Processes whose command line mentions ``marker`` (a submission's unique path)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


# -- hangs -------------------------------------------------------------------------------------
def test_two_hanging_functions_cost_one_time_limit_each_and_every_other_task_keeps_its_points(
        tmp_path):
    submission = copy_solution(tmp_path / "two_hangs")
    change_function(submission, "utils/volume_stats.py", "Dice3d", HANG)
    change_function(submission, "utils/utils.py", "med_reshape", HANG)
    results = tmp_path / "results.json"
    started = time.monotonic()
    grade(submission, results)
    seconds = time.monotonic() - started
    graded = json.loads(results.read_text())
    outputs = {test["name"]: test["output"] for test in graded["tests"]
               if test["status"] != "passed"}
    timed_out = [name for name, output in outputs.items() if "timed out" in output]
    # One timeout per hanging function; every later test that needs it fails at once (a test
    # of those TASKs that never calls the function passes).
    assert sorted(name.split()[0] for name in timed_out) == ["S2.04", "S2.12"]
    for name, output in outputs.items():
        if name.startswith(("S2.04", "S2.12")) and name not in timed_out:
            assert re.search(r"skipped: utils/(volume_stats|utils)\.py: (Dice3d|med_reshape) "
                             rf"did not finish in {PER_TEST_S} s in test ", output), output
    others = [test for test in graded["tests"]
              if not test["number"].startswith(("S2.04", "S2.12", "R2."))]
    assert others and all(test["status"] == "passed" for test in others)
    assert seconds < GRADING_LIMIT_S
    assert graded["execution_time"] > 0


def test_a_function_that_hung_is_named_from_the_stuck_stack(tmp_path):
    code = tmp_path / "src"
    (code / "utils").mkdir(parents=True)
    dump = (f'Current thread 0x1 (most recent call first):\n'
            f'  File "/usr/lib/python3/numpy/core.py", line 3 in sum\n'
            f'  File "{code}/utils/volume_stats.py", line 30 in Dice3d\n'
            f'  File "/grader/hidden/test_volume_stats.py", line 9 in test_dice\n')
    file, function, shown = stuck_frame(dump, (code,))
    assert (function, shown) == ("Dice3d", "utils/volume_stats.py: Dice3d")
    assert stuck_frame(dump, (tmp_path / "elsewhere",)) is None


def test_the_time_budget_refuses_tests_once_spent_and_caps_the_last_one():
    limits = RunLimits(budget_s=30, test_timeout_s=20, started=time.monotonic() - 15)
    assert 14 < limits.timeout_for() <= 15
    assert limits.refusal("S2.12") is None
    spent = RunLimits(budget_s=30, test_timeout_s=20, started=time.monotonic() - 31)
    assert "time budget of 30 s was spent" in spent.refusal("S2.12")


def test_a_timeout_without_a_named_function_refuses_the_rest_of_its_task_only():
    limits = RunLimits()
    limits.record_timeout("S2.09", "test_a", 20, stuck=None)
    assert "an earlier test of TASK S2.09 (test_a) did not finish in 20 s" in limits.refusal(
        "S2.09")
    assert limits.refusal("S2.10") is None


def loops_in_a_submission_function(folder: Path):
    def body():
        sys.path.insert(0, str(folder))
        import hangs_here  # its function loops
        hangs_here.Dice3d()
    return body


def test_sandbox_names_the_stuck_function_then_refuses_it_at_once(tmp_path):
    (tmp_path / "hangs_here.py").write_text("def Dice3d():\n    while True:\n        pass\n")
    # 5 s: enough for the child to reach the loop even on a busy machine.
    first = run_isolated(loops_in_a_submission_function(tmp_path), timeout_s=5, memory_mb=512,
                         confinement=Confinement(code_dirs=(tmp_path,)))
    assert first.status == "failed" and "timed out after 5 s in hangs_here.py: Dice3d" in \
        first.output
    hang = Hang(first.stuck[0], first.stuck[1], "test_one", 5, first.stuck[2])
    started = time.monotonic()
    again = run_isolated(loops_in_a_submission_function(tmp_path), timeout_s=60, memory_mb=512,
                         confinement=Confinement(code_dirs=(tmp_path,), hangs=(hang,)))
    assert again.output == "skipped: hangs_here.py: Dice3d did not finish in 5 s in test test_one"
    assert time.monotonic() - started < 60


# -- forging -----------------------------------------------------------------------------------
# At import, a detached process (its own session, its parent gone) waits for the grader to
# exit, then rewrites the results with full marks; it also tries at once.
FORGER = '''
import json as _json, os as _os, time as _time
import psutil as _psutil
def _forge_results():
    grader = _os.getppid()
    args = _psutil.Process(grader).cmdline()
    path = [a.split("=", 1)[1] for a in args if a.startswith("--results=")][0]
    forged = {"score": 100.0, "max_score": 100.0, "tests": []}
    if _os.fork() == 0:
        _os.setsid()
        if _os.fork() == 0:
            for _ in range(2):
                try:
                    with open(path, "w") as stream:
                        _json.dump(forged, stream)
                except OSError:
                    pass
                while _psutil.pid_exists(grader):
                    _time.sleep(0.05)
            _os._exit(0)
        _os._exit(0)
_forge_results()
'''


@pytest.mark.parametrize("user", [None, pytest.param(STUDENT_UID, marks=needs_root)],
                         ids=["as-the-grader", "as-a-student-user"])
def test_a_detached_process_cannot_rewrite_the_graders_results(tmp_path, user):
    submission = copy_solution(tmp_path / f"forger_{user}")
    stats = submission / "section2" / "src" / "utils" / "volume_stats.py"
    stats.write_text(stats.read_text() + FORGER)
    results = tmp_path / "results" / "results.json"
    options = ["-k", "S2.12 or S2.13"] + ([f"--student-user={user}"] if user else [])
    grade(submission, results, *options)
    left = processes_of(str(submission))
    assert left == [], f"processes of the submission outlived the grader: {left}"
    graded = json.loads(results.read_text())
    assert graded["tests"], "the grader's results were replaced"
    assert graded["score"] == sum(test["score"] for test in graded["tests"])


@needs_root
def test_student_code_cannot_read_a_closed_file_or_write_the_results(tmp_path):
    secret = tmp_path / "grader" / "hidden.py"
    secret.parent.mkdir()
    secret.write_text("EXPECTED = 0.8137\n")
    secret.parent.chmod(0o700)
    results = tmp_path / "results"
    results.mkdir(mode=0o700)
    work = tmp_path / "work"
    work.mkdir()

    def body():
        assert os.geteuid() == int(STUDENT_UID)
        for action in (secret.read_text, lambda: (results / "results.json").write_text("{}")):
            with pytest.raises(PermissionError):
                action()
        (work / "model.pth").write_text("written")  # its own tmp_path stays writable

    user = containment.student_user(STUDENT_UID)
    outcome = run_isolated(body, timeout_s=20, memory_mb=512,
                           confinement=Confinement(user=user, writable=(work,)))
    assert outcome.status == "passed", outcome.output
    assert (work / "model.pth").stat().st_uid == 0  # handed back to root afterwards


def test_a_public_message_carries_one_short_line_of_what_student_code_raised():
    def body():
        raise ValueError("line one\n" + "hidden source " * 500)
    outcome = run_isolated(body, timeout_s=20, memory_mb=512)
    assert outcome.output.startswith("ValueError: line one")
    assert "hidden source" not in outcome.output


# -- memory ------------------------------------------------------------------------------------
@pytest.mark.parametrize("membership, files, limit", [
    ("0::/grading\n", {"grading/memory.max": "805306368\n"}, 768),
    ("0::/\n", {"memory.max": "max\n"}, None),
    ("4:memory:/job\n0::/\n", {"memory/job/memory.limit_in_bytes": "805306368\n"}, 768),
    ("4:memory:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),
])
def test_the_container_memory_limit_is_read_from_its_cgroup(tmp_path, membership, files,
                                                            limit):
    (tmp_path / "cgroup").write_text(membership)
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text)
    assert containment.container_memory_limit_mb(tmp_path / "cgroup", tmp_path / "fs") == limit


def test_a_test_gets_less_memory_than_the_container_leaves(tmp_path):
    (tmp_path / "cgroup").write_text("0::/\n")
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "memory.max").write_text(f"{768 * 2**20}\n")
    megabytes, why = containment.memory_per_test_mb(3072, tmp_path / "cgroup", tmp_path / "fs")
    held = psutil.Process().memory_info().rss // 2**20
    assert megabytes <= max(containment.MIN_TEST_MEMORY_MB, 768 - held)
    assert "768 MB" in why

    def allocates_the_container():
        bytearray(768 * 2**20)
    outcome = run_isolated(allocates_the_container, timeout_s=20, memory_mb=megabytes)
    assert outcome.output.startswith("ran out of memory")


# -- results.json ------------------------------------------------------------------------------
def test_a_skipped_test_is_listed_with_its_points_and_reason(tmp_path):
    kit = tmp_path / "kit"  # the grader alone, with no data set beside it
    shutil.copytree(REPO / "grader", kit / "grader",
                    ignore=copytree_ignore("kit"))
    (kit / "tools").mkdir()
    shutil.copy2(REPO / "tools" / "hippocampus_kit.py", kit / "tools")  # the data lookup
    env = {name: value for name, value in os.environ.items() if name != "HIPPOCAMPUS_DATA"}
    submission = copy_solution(tmp_path / "work")
    results = tmp_path / "results.json"
    subprocess.run([sys.executable, "-m", "pytest", "grader", f"--submission={submission}",
                    f"--results={results}", "-p", "no:cacheprovider", "-q",
                    "-k", "test_real_data_header_misfits or test_dice_of_a_mask_with_itself"],
                   cwd=kit, env=env, capture_output=True, text=True, timeout=GRADING_LIMIT_S)
    graded = json.loads(results.read_text())
    skipped = [test for test in graded["tests"] if test["output"].startswith("skipped:")]
    assert len(skipped) == 1 and "real MSD hippocampus data not found" in skipped[0]["output"]
    assert skipped[0]["score"] == 0 and skipped[0]["max_score"] > 0
    assert graded["max_score"] == sum(test["max_score"] for test in graded["tests"])
    assert graded["score"] == graded["max_score"] - skipped[0]["max_score"]
    assert isinstance(graded["execution_time"], float)

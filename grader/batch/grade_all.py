"""Grade a folder of submissions in parallel and write one table of scores.

    python -m grader.batch.grade_all SUBMISSIONS_DIR [--out OUT] [--workers N] [--timeout S]
        [--integrity-only] [--boilerplate DIR ...] [--data-dir DIR]

Every sub-folder of SUBMISSIONS_DIR is one submission (holding section2/src, optionally
section2/out and section1). Each is graded by its own run of the grader,
``python -m pytest grader --submission=SUB --results=OUT/<name>/results.json``, in a fresh
process, so a submission that breaks its grading run costs only its own row. The grader's
per-test time and memory limits stay; on top, each run has a wall-clock limit, after which it
is stopped together with every process it started.

Writes ``OUT/<name>/results.json`` and ``results.txt`` (the grader's), ``OUT/<name>/grader.log``
(the run's output) and ``OUT/scores.csv``: one row per submission with its score per TASK
(columns in grader/points.json order; empty where no test of that TASK ran), total, max and
status ("ok", "timed out after S s", or "grader error: <reason>").

Then the class-wide integrity checks (grader/batch/integrity/) write ``OUT/integrity.csv`` and
``OUT/integrity.md``; ``--integrity-only`` runs them without grading.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from tqdm import tqdm

from grader.batch.integrity import CSV_FILE, KIT_BOILERPLATE, MARKDOWN_FILE, check_class
from grader.runtime.results import load_manifest, read_scores
from grader.runtime.submission import REPO, find_real_data

DEFAULT_TIMEOUT_S = 900.0  # per submission; one full grading takes well under 2 minutes
DEFAULT_OUT = Path("grades")
RESULTS_FILE = "results.json"
LOG_FILE = "grader.log"
SCORES_FILE = "scores.csv"
# pytest's exit codes that mean "the run finished": 0 all tests passed, 1 some failed.
FINISHED_EXIT_CODES = (0, 1)
POLL_S = 0.1  # how often a waiting worker checks whether its grading run has ended
MAX_REASON_CHARS = 160  # a status cell stays readable in a spreadsheet
STATUS_OK = "ok"


@dataclass
class Grade:
    """The outcome of grading one submission.

    Attributes:
        name: the submission's folder name.
        status: "ok", "timed out after S s" or "grader error: <reason>".
        seconds: wall-clock time of the grading run, s.
        task_scores: {TASK id: (score, max score)} over the tests that ran; empty when the
            run wrote no results.
        results_path: the run's results.json (it may not exist after a grader error).
    """

    name: str
    status: str
    seconds: float
    results_path: Path
    task_scores: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Points scored over every test that ran."""
        return sum(score for score, _ in self.task_scores.values())

    @property
    def max_score(self) -> float:
        """Points available over every test that ran."""
        return sum(max_score for _, max_score in self.task_scores.values())


def find_submissions(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` (hidden ones excluded), sorted by name.

    Raises:
        NotADirectoryError: when ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of submissions")
    return sorted(path for path in folder.iterdir()
                  if path.is_dir() and not path.name.startswith("."))


def last_line(text: str) -> str:
    """The last non-empty line of ``text``, cut to MAX_REASON_CHARS; "" when there is none."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:MAX_REASON_CHARS] if lines else ""


def error_reason(output: str, exit_code: int) -> str:
    """A short reason for a grading run that did not finish, from its output.

    pytest prints a usage error (e.g. no section2/src) as "ERROR: ..." and an internal error
    as "INTERNALERROR> ..."; otherwise the last line says most.
    """
    for marker in ("ERROR: ", "INTERNALERROR> "):
        found = [line for line in output.splitlines() if line.startswith(marker)]
        if found:
            return found[-1][:MAX_REASON_CHARS]
    return last_line(output) or f"pytest exited with status {exit_code} and printed nothing"


def stop_session(session_id: int) -> None:
    """Kill every process of the session ``session_id`` (a grading run and its children).

    The grader runs each test in a forked child that moves to its own process group, so
    killing the run's process group alone would leave such a child running. All of them stay
    in the run's session: every process whose session id (``os.getsid``) is the run's.
    Call it while the run's own process is alive or an unreaped zombie, so that its id
    cannot have been reused.
    """
    pids = {session_id}
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == session_id:
                pids.add(pid)
        except OSError:  # the process ended while we looked
            continue
    try:
        os.killpg(session_id, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in sorted(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def wait_unreaped(pid: int, timeout_s: float) -> bool:
    """Wait until process ``pid`` exits, but leave it unreaped (a zombie keeps its id).

    Args:
        pid: a child process of this one.
        timeout_s: how long to wait, s.

    Returns:
        True when it exited within ``timeout_s``, False when it is still running.
    """
    deadline = time.monotonic() + timeout_s
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    while os.waitid(os.P_PID, pid, flags) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def grade_submission(submission: Path, out_dir: Path, timeout_s: float = DEFAULT_TIMEOUT_S,
                     keyword: str | None = None) -> Grade:
    """Grade one submission with its own run of the grader.

    Args:
        submission: folder holding section2/src (and optionally section2/out, section1).
        out_dir: folder for this submission's results.json, results.txt and grader.log.
        timeout_s: wall-clock limit of the whole run, s; the run and every process it
            started are killed after it.
        keyword: grade only the tests matching this pytest ``-k`` expression (None: all).

    Returns:
        The Grade. A run that times out keeps the scores of the tests that finished.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS_FILE
    for stale in (results_path, results_path.with_suffix(".txt")):
        stale.unlink(missing_ok=True)
    # "--submission=DIR" in one argument: with a space, pytest would take DIR for a test path
    # and load the submission's own conftest.py (the grader refuses that form).
    command = [sys.executable, "-m", "pytest", "grader", f"--submission={submission.resolve()}",
               f"--results={results_path.resolve()}", "-q", "-p", "no:cacheprovider"]
    if keyword is not None:
        command += ["-k", keyword]
    start = time.perf_counter()
    with open(out_dir / LOG_FILE, "w") as log:
        # Its own session: on a timeout, stop_session finds every process the run started.
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        finished = wait_unreaped(process.pid, timeout_s)
        # Also after a normal exit: a process that a test left behind must not keep running.
        stop_session(process.pid)
        exit_code = process.wait() if finished else None
    seconds = time.perf_counter() - start
    output = (out_dir / LOG_FILE).read_text(errors="replace")

    task_scores: dict[str, tuple[float, float]] = {}
    results_problem = ""
    if results_path.is_file():
        try:
            task_scores = read_scores(results_path)
        except (OSError, ValueError, KeyError, TypeError) as err:
            results_problem = f"{results_path.name} unreadable: {err}"
    if exit_code is None:
        status = f"timed out after {timeout_s:g} s"
    elif exit_code not in FINISHED_EXIT_CODES:
        status = f"grader error: {error_reason(output, exit_code)}"
    elif results_problem:
        status = f"grader error: {results_problem}"
    elif not results_path.is_file():
        status = "grader error: the run wrote no results.json (no grading test ran?)"
    else:
        status = STATUS_OK
    return Grade(name=submission.name, status=status, seconds=seconds,
                 results_path=results_path, task_scores=task_scores)


def write_scores(grades: Sequence[Grade], path: Path, tasks: Sequence[str]) -> None:
    """Write scores.csv: submission, one column per TASK, total, max, status.

    Args:
        grades: one Grade per submission, written in this order.
        path: the CSV file to write.
        tasks: TASK ids, in column order (grader/points.json order).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["submission", *tasks, "total", "max", "status"])
        for grade in grades:
            cells = [f"{grade.task_scores[task][0]:g}" if task in grade.task_scores else ""
                     for task in tasks]
            total, maximum = ((f"{grade.score:g}", f"{grade.max_score:g}") if grade.task_scores
                              else ("", ""))
            writer.writerow([grade.name, *cells, total, maximum, grade.status])


def grade_all(submissions: Sequence[Path], out_dir: Path, workers: int | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S, keyword: str | None = None,
              on_done: Callable[[Grade], None] | None = None) -> list[Grade]:
    """Grade submissions side by side and write ``out_dir/scores.csv``.

    Args:
        submissions: submission folders; their names must differ (each gets
            ``out_dir/<name>/``).
        out_dir: folder for the per-submission results and scores.csv.
        workers: grading runs at a time (None: os.cpu_count()).
        timeout_s: wall-clock limit per submission, s.
        keyword: pytest ``-k`` expression passed to every run (None: every test).
        on_done: called with each Grade as soon as its run ends (e.g. to print progress).

    Returns:
        One Grade per submission, in the order given.

    Raises:
        ValueError: when two submissions share a name, or workers or timeout_s is not positive.
    """
    names = [path.name for path in submissions]
    if len(set(names)) != len(names):
        raise ValueError(f"submission folder names must differ: {sorted(names)}")
    workers = workers or os.cpu_count() or 1
    if workers <= 0 or timeout_s <= 0:
        raise ValueError(f"workers ({workers}) and timeout ({timeout_s} s) must be positive")
    grades: dict[str, Grade] = {}
    # Threads only wait: each grading run is its own process.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(grade_submission, path, out_dir / path.name, timeout_s, keyword)
                   for path in submissions]
        for future in as_completed(futures):
            grade = future.result()
            grades[grade.name] = grade
            if on_done is not None:
                on_done(grade)
    ordered = [grades[name] for name in names]
    write_scores(ordered, out_dir / SCORES_FILE, list(load_manifest()["tasks"]))
    return ordered


def report_integrity(submissions: Sequence[Path], out_dir: Path,
                     boilerplate: Sequence[Path] | None, data_dir: Path | None,
                     workers: int | None = None) -> None:
    """Run the integrity checks (grader/batch/integrity/) and print where the report is."""
    findings = check_class(submissions, out_dir, boilerplate or KIT_BOILERPLATE,
                           data_dir=data_dir or find_real_data(), workers=workers)
    print(f"integrity: {len(findings)} findings (notes, not deductions): "
          f"{out_dir / CSV_FILE}, {out_dir / MARKDOWN_FILE}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 even when submissions lose points)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("submissions_dir", type=Path,
                        help="folder whose every sub-folder is one submission")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for results and {SCORES_FILE} (default: {DEFAULT_OUT})")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help=f"submissions graded at a time (default: {os.cpu_count()}, "
                             "the number of CPUs)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help="wall-clock seconds one submission's grading may take "
                             f"(default: {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("-k", "--keyword", default=None, metavar="EXPR",
                        help="grade only the tests matching this pytest -k expression, e.g. "
                             "S2.12 (default: None, every test)")
    parser.add_argument("--integrity-only", action="store_true",
                        help=f"write only {CSV_FILE} and {MARKDOWN_FILE}, without grading "
                             "(default: False, grade then check)")
    parser.add_argument("--boilerplate", type=Path, action="append", metavar="DIR",
                        help="folder of the code every student was given, left out of the "
                             "code similarity (repeat it; for course-starter submissions, the "
                             "starter's folder) (default: the kit's section2/src and section1)")
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="data set (images/ and labels/) against which the integrity checks "
                             "test file names and recompute Dice (default: the grader's real "
                             "data, if found)")
    args = parser.parse_args(argv)
    if args.workers <= 0 or args.timeout <= 0:
        parser.error("--workers and --timeout must be positive")
    for folder in args.boilerplate or []:
        if not folder.is_dir():
            parser.error(f"--boilerplate={folder} is not a folder")
    if args.data_dir is not None and not (args.data_dir / "images").is_dir():
        parser.error(f"--data-dir={args.data_dir} has no images/ folder")
    try:
        submissions = find_submissions(args.submissions_dir)
    except NotADirectoryError as err:
        parser.error(str(err))
    if not submissions:
        parser.error(f"{args.submissions_dir} holds no submission folders")

    start = time.perf_counter()
    if args.integrity_only:
        report_integrity(submissions, args.out, args.boilerplate, args.data_dir, args.workers)
        print(f"checked {len(submissions)} submissions in {time.perf_counter() - start:.1f} s")
        return 0
    progress = tqdm(total=len(submissions), desc="grading", unit="submission", disable=None)

    def report(grade: Grade) -> None:
        progress.write(f"{grade.name}: {grade.score:g}/{grade.max_score:g} | {grade.status} | "
                       f"{grade.seconds:.1f} s")
        progress.update()

    grades = grade_all(submissions, args.out, args.workers, args.timeout, args.keyword,
                       on_done=report)
    progress.close()
    report_integrity(submissions, args.out, args.boilerplate, args.data_dir, args.workers)
    failed = sum(grade.status != STATUS_OK for grade in grades)
    print(f"graded {len(grades)} submissions ({failed} not ok) in "
          f"{time.perf_counter() - start:.1f} s; scores: {args.out / SCORES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

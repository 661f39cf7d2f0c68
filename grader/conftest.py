"""The grader's pytest plugin: what is graded, points per TASK, isolation, Gradescope results.

    pytest grader/                          # check the kit: skeleton sound, solution full marks
    pytest grader/ --submission=DIR         # grade a student's folder (its section2/, section1/)
    pytest grader/ -k S2.04                 # one TASK (students: the public tests)

Every grading test carries ``@pytest.mark.task("<id>", points=<n>)``. Its body runs in a
forked child with a time and a memory limit (see ``grader/sandbox.py``), so a submission that
hangs, exits, crashes or fails to import costs only the tests that touch that code.
``results.json`` (Gradescope's format, path from ``--results``) and ``results.txt`` (a table)
are rewritten after every test.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

# Libraries the code under test uses, imported once here so that each forked child starts
# fast. The parent imports no submission code and runs no torch computation.
import matplotlib

matplotlib.use("Agg")
import medpy.metric  # noqa: E402, F401
import nibabel  # noqa: E402, F401
import numpy  # noqa: E402, F401
import pytest  # noqa: E402
import scipy.ndimage  # noqa: E402, F401
import matplotlib.pyplot  # noqa: E402, F401
import torch  # noqa: E402, F401
import torch._dynamo  # noqa: E402, F401 - the first optimiser imports it: 5 s per child
import torch.utils.tensorboard  # noqa: E402, F401
import tqdm  # noqa: E402, F401

import sys  # noqa: E402

# `--submission DIR` (with a space) would let pytest take DIR for a test path before this file
# registers the option, and load DIR's conftest.py and pytest.ini: a submission could grade
# itself. The same holds for every option below. Only `--option=value` is safe; refuse the
# other form before anything else runs.
GRADER_OPTIONS = ("--submission", "--results", "--task-timeout", "--memory-mb")
for _option in GRADER_OPTIONS:
    if _option in sys.argv[1:]:
        raise pytest.UsageError(f"write {_option}=VALUE (with '='): with a space, pytest "
                                "takes the value for a test path and may load a conftest.py "
                                "or pytest.ini from there")

from grader.cuda_on_cpu import run_with_cuda_on_cpu  # noqa: E402
from grader.layout import COURSE, COURSE_PLACES, KIT, LAYOUTS  # noqa: E402
from grader.results import ResultsWriter, TestResult, load_manifest  # noqa: E402
from grader.sandbox import run_isolated  # noqa: E402
from grader.submission import (CodeUnderTest, SubmissionError, copy_submission,  # noqa: E402
                               default_code, find_real_data)

DEFAULT_TIMEOUT_S = 60.0  # per test; the slowest public test takes a few seconds on 2 cores
DEFAULT_MEMORY_MB = 3072  # per test, beyond the libraries every child inherits
HIDDEN_FOLDER = "hidden"  # tests in grader/hidden/ never ship to students
GRADER_DIR = Path(__file__).resolve().parent

CODE = pytest.StashKey[CodeUnderTest]()
MANIFEST = pytest.StashKey[dict]()
WRITER = pytest.StashKey[ResultsWriter]()
# {TASK id: points of every collected test} of the kit's layout and of the course's, before
# -k or --deselect narrow the run.
COLLECTED_POINTS = pytest.StashKey[dict]()
COURSE_COLLECTED_POINTS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader")
    group.addoption("--submission", type=Path, default=None, metavar="DIR",
                    help="grade this student folder (holding section2/src, optionally "
                         "section2/out and section1) instead of the kit's solution "
                         "(default: None, the kit itself)")
    group.addoption("--results", type=Path, default=Path("results.json"), metavar="PATH",
                    help="Gradescope results file; a summary goes beside it as .txt "
                         "(default: results.json)")
    group.addoption("--task-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                    help=f"seconds one test may run (default: {DEFAULT_TIMEOUT_S:g})")
    group.addoption("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, metavar="MB",
                    help=f"memory one test may allocate (default: {DEFAULT_MEMORY_MB})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "task(id, points): a graded test of one TASK")
    config.addinivalue_line("markers", "kit: checks the kit itself; not run on a submission")
    config.addinivalue_line("markers", "layout(name): a grading test of one layout only, "
                                       "'kit' or 'course' (see grader/layout.py)")
    if config.getoption("--task-timeout") <= 0 or config.getoption("--memory-mb") <= 0:
        raise pytest.UsageError("--task-timeout and --memory-mb must be positive")
    folder = config.getoption("--submission")
    if folder is None:
        code = default_code()
    else:
        if not folder.is_dir():
            raise pytest.UsageError(f"--submission {folder}: no such folder")
        workspace = Path(tempfile.mkdtemp(prefix="grader-submission-"))
        config.add_cleanup(functools.partial(shutil.rmtree, workspace, ignore_errors=True))
        try:
            code = copy_submission(folder, workspace)
        except SubmissionError as err:
            raise pytest.UsageError(str(err)) from err
    config.stash[CODE] = code
    config.stash[MANIFEST] = load_manifest()
    config.stash[WRITER] = ResultsWriter(config.getoption("--results").resolve(), code.name)


def pytest_report_header(config: pytest.Config) -> list[str]:
    code = config.stash[CODE]
    data = find_real_data()
    return [f"grading: {code.name}",
            f"real data: {data if data else 'not found (tests that need it are skipped)'}"]


def layouts_of(item: pytest.Item) -> tuple[str, ...]:
    """The layouts a test grades: its ``layout`` marker's, or both when it has none."""
    marker = item.get_closest_marker("layout")
    if marker is None:
        return LAYOUTS
    unknown = set(marker.args) - set(LAYOUTS)
    if unknown or not marker.args:
        raise pytest.UsageError(f"{item.nodeid}: layout marker {marker.args} must name "
                                f"{' or '.join(LAYOUTS)}")
    return tuple(marker.args)


def task_of(item: pytest.Item) -> tuple[str, float] | None:
    """(TASK id, points) of a grading test, or None."""
    marker = item.get_closest_marker("task")
    if marker is None:
        return None
    return marker.args[0], float(marker.kwargs.get("points", 1))


@pytest.hookimpl(tryfirst=True)  # before -k, so that `-k S2.04` sees the TASK keywords
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    manifest, code = config.stash[MANIFEST], config.stash[CODE]
    kept, dropped = [], []
    collected = {KIT: config.stash.setdefault(COLLECTED_POINTS, {}),
                 COURSE: config.stash.setdefault(COURSE_COLLECTED_POINTS, {})}
    for item in items:
        task = task_of(item)
        if task is not None:
            for layout in layouts_of(item):
                collected[layout][task[0]] = collected[layout].get(task[0], 0.0) + task[1]
            if task[0] not in manifest["tasks"]:
                raise pytest.UsageError(f"{item.nodeid}: TASK {task[0]} is not in "
                                        "grader/points.json")
            item.extra_keyword_matches.add(task[0])
        elif item.get_closest_marker("kit") is None:
            raise pytest.UsageError(f"{item.nodeid} carries neither @pytest.mark.task nor "
                                    "@pytest.mark.kit")
        if ((item.get_closest_marker("kit") is not None and not code.is_kit)
                or (task is not None and code.layout not in layouts_of(item))):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def code(request: pytest.FixtureRequest) -> CodeUnderTest:
    """The code being graded (the kit's solution, or the copied submission)."""
    return request.config.stash[CODE]


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real MSD hippocampus TrainingSet, or skip with the reason."""
    data = find_real_data()
    if data is None:
        pytest.skip("real MSD hippocampus data not found beside the kit; run tools/get_data.py")
    return data


def is_hidden(item: pytest.Item) -> bool:
    """True for a test in grader/hidden/ (never shipped to students)."""
    return Path(str(item.path)).resolve().is_relative_to(GRADER_DIR / HIDDEN_FOLDER)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a grading test's body in an isolated child; other tests run as usual."""
    task = task_of(pyfuncitem)
    if task is None:
        return None
    marker = pyfuncitem.get_closest_marker("task")
    timeout = float(marker.kwargs.get("timeout", pyfuncitem.config.getoption("--task-timeout")))
    arguments = {name: pyfuncitem.funcargs[name]
                 for name in pyfuncitem._fixtureinfo.argnames}
    body = functools.partial(run_with_cuda_on_cpu, functools.partial(pyfuncitem.obj,
                                                                     **arguments))
    outcome = run_isolated(body, timeout_s=timeout,
                           memory_mb=pyfuncitem.config.getoption("--memory-mb"),
                           hide_details=is_hidden(pyfuncitem))
    if outcome.status == "skipped":
        pytest.skip(outcome.output)
    if outcome.status != "passed":
        code = pyfuncitem.config.stash[CODE]
        # A course student never saw the kit's TASK ids: name the course's file and function.
        where = (COURSE_PLACES.get(task[0], f"TASK {task[0]}") if code.layout == COURSE
                 else f"TASK {task[0]}")
        pytest.fail(f"{where}: {outcome.output}", pytrace=False)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    task = task_of(item)
    if task is None or report.skipped:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        output = "" if report.passed else report.longreprtext.strip()
        if report.when == "setup":
            output = f"the test could not be set up: {output.splitlines()[-1] if output else ''}"
        item.config.stash[WRITER].add(TestResult(
            name=f"{task[0]} {item.name}", number=task[0],
            score=task[1] if report.passed else 0.0, max_score=task[1],
            status="passed" if report.passed else "failed", output=output,
            visibility="after_published" if is_hidden(item) else "visible"))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    writer = config.stash.get(WRITER, None)
    if writer is not None and writer.tests:
        terminalreporter.write_sep("=", "grade")
        terminalreporter.write(writer.summary())
        terminalreporter.write_line(f"results: {writer.path}")

"""The grader's pytest plugin: what is graded, points per TASK, isolation, Gradescope results.

    pytest grader/                          # check the kit: skeleton sound, solution full marks
    pytest grader/ --submission=DIR         # grade a student's folder (its section2/, section1/)
    pytest grader/ -k S2.04                 # one TASK (students: the public tests)

Every grading test carries ``@pytest.mark.task("<id>", points=<n>)``. Its body runs in a
forked child with a time and a memory limit (see ``grader/runtime/sandbox.py``), as an unprivileged
user with ``--student-user``, so a submission that hangs, exits, crashes or fails to import
costs only the tests that touch that code. The run has a time budget and does not wait twice
on a function that hung (``grader/runtime/limits.py``). ``results.json`` (Gradescope's format, path
from ``--results``) and ``results.txt`` (a table) are rewritten after every test, skipped
tests included, and written a last time when every process of the student code is gone.

Section 1 and the report are graded in the kit's or in the course starter's way, by what the
submission hands in (``grader/runtime/course_deliverables.py``): a test marked
``@pytest.mark.deliverable(name, layout)`` runs only for that layout. A test marked
``task(..., by_hand="...")`` grades nothing itself: it records points that a person grades,
and passes when the material for them is handed in.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import tempfile
import time
from pathlib import Path

# Libraries the code under test uses, imported once here so that each forked child starts
# fast. The parent imports no submission code and runs no torch computation.
import matplotlib

matplotlib.use("Agg")
import sys

import matplotlib.pyplot
import medpy.metric  # noqa: F401
import nibabel  # noqa: F401
import numpy  # noqa: F401
import pytest
import scipy.ndimage  # noqa: F401
import torch
import torch._dynamo  # the first optimiser imports it: 5 s per child
import torch.utils.tensorboard  # noqa: F401
import tqdm  # noqa: F401

# `--submission DIR` (with a space) would let pytest take DIR for a test path before this file
# registers the option, and load DIR's conftest.py and pytest.ini: a submission could grade
# itself. The same holds for every option below. Only `--option=value` is safe; refuse the
# other form before anything else runs.
GRADER_OPTIONS = ("--submission", "--results", "--task-timeout", "--memory-mb",
                  "--time-budget", "--student-user")
for _option in GRADER_OPTIONS:
    if _option in sys.argv[1:]:
        raise pytest.UsageError(f"write {_option}=VALUE (with '='): with a space, pytest "
                                "takes the value for a test path and may load a conftest.py "
                                "or pytest.ini from there")

from grader.runtime import containment  # noqa: E402
from grader.runtime.course_deliverables import deliverable_layouts  # noqa: E402
from grader.runtime.cuda_on_cpu import run_with_cuda_on_cpu  # noqa: E402
from grader.runtime.layout import COURSE, COURSE_PLACES, LAYOUTS  # noqa: E402
from grader.runtime.limits import (  # noqa: E402
    DEFAULT_BUDGET_S,
    DEFAULT_TEST_TIMEOUT_S,
    RunLimits,
)
from grader.runtime.results import ResultsWriter, TestResult, load_manifest  # noqa: E402
from grader.runtime.sandbox import Confinement, run_isolated  # noqa: E402
from grader.runtime.submission import (  # noqa: E402
    CodeUnderTest,
    SubmissionError,
    copy_submission,
    default_code,
    find_real_data,
)

DEFAULT_MEMORY_MB = 3072  # per test, beyond the libraries every child inherits; a
# container's lower memory limit lowers it (grader/runtime/containment.py)
HIDDEN_FOLDER = "hidden"  # tests in grader/hidden/ never ship to students
PRELOAD_SKIPPED = ("mutants", "kit", "batch")  # never imported by a test body
GRADER_DIR = Path(__file__).resolve().parent

CODE = pytest.StashKey[CodeUnderTest]()
MANIFEST = pytest.StashKey[dict]()
WRITER = pytest.StashKey[ResultsWriter]()
LIMITS = pytest.StashKey[RunLimits]()
USER = pytest.StashKey["containment.StudentUser | None"]()
MEMORY = pytest.StashKey[tuple]()  # (MB per test, why)
# {layout: {TASK id: points}} of every collected test, before -k or --deselect narrow the run:
# what a submission whose code and deliverables all have that layout ("kit" or "course") is
# graded on, for the kit's check that both add up.
COLLECTED_POINTS = pytest.StashKey[dict]()
# {deliverable: layout} of the code under test (grader/runtime/course_deliverables.py).
DELIVERABLE_LAYOUTS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader")
    group.addoption("--submission", type=Path, default=None, metavar="DIR",
                    help="grade this student folder (holding section2/src, optionally "
                         "section2/out and section1) instead of the kit's solution "
                         "(default: None, the kit itself)")
    group.addoption("--results", type=Path, default=Path("results.json"), metavar="PATH",
                    help="Gradescope results file; a summary goes beside it as .txt "
                         "(default: results.json)")
    group.addoption("--task-timeout", type=float, default=DEFAULT_TEST_TIMEOUT_S, metavar="S",
                    help=f"seconds one test may run (default: {DEFAULT_TEST_TIMEOUT_S:g})")
    group.addoption("--time-budget", type=float, default=DEFAULT_BUDGET_S, metavar="S",
                    help="seconds all tests together may run; later tests fail as not run "
                         f"(default: {DEFAULT_BUDGET_S:g})")
    group.addoption("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, metavar="MB",
                    help="memory one test may allocate, lowered to fit the container's limit "
                         f"(default: {DEFAULT_MEMORY_MB})")
    group.addoption("--student-user", default=None, metavar="NAME",
                    help="run student code as this unprivileged user (a name or a numeric "
                         "uid; the grader must run as root) (default: None, as the grader)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "task(id, points): a graded test of one TASK")
    config.addinivalue_line("markers", "kit: checks the kit itself; not run on a submission")
    config.addinivalue_line("markers", "layout(name): a grading test of one layout of the "
                                       "section-2 code only, 'kit' or 'course' "
                                       "(grader/runtime/layout.py)")
    config.addinivalue_line("markers", "deliverable(name, layout): grades deliverable 'section1' "
                                       "or 'report' when it has that layout ('kit' or 'course')")
    if min(config.getoption("--task-timeout"), config.getoption("--memory-mb"),
           config.getoption("--time-budget")) <= 0:
        raise pytest.UsageError("--task-timeout, --time-budget and --memory-mb must be positive")
    config.stash[LIMITS] = RunLimits(config.getoption("--time-budget"),
                                     config.getoption("--task-timeout"))
    config.stash[USER] = student_user(config)
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
    if config.stash[USER] is not None:
        preload_grader_modules()
        for folder in (code.section2, code.section1, code.out):
            if folder is not None:
                containment.open_for_reading(folder)
    config.stash[MEMORY] = containment.memory_per_test_mb(config.getoption("--memory-mb"))
    config.stash[CODE] = code
    config.stash[DELIVERABLE_LAYOUTS] = deliverable_layouts(code)
    config.stash[MANIFEST] = load_manifest()
    config.stash[WRITER] = ResultsWriter(config.getoption("--results").resolve(), code.name)


def student_user(config: pytest.Config) -> containment.StudentUser | None:
    """The user of ``--student-user``, or None (the option not given, or not root)."""
    spec = config.getoption("--student-user")
    if spec is None:
        return None
    try:
        user = containment.student_user(spec)
    except ValueError as err:
        raise pytest.UsageError(str(err)) from err
    return user if os.geteuid() == 0 else None


def preload_grader_modules() -> None:
    """Import every grader module a test body may import late (e.g. grader.hidden.reference):
    the student user cannot read the grader's files, and test bodies run as that user."""
    for path in sorted(GRADER_DIR.rglob("*.py")):
        relative = path.relative_to(GRADER_DIR.parent).with_suffix("")
        if (path.name.startswith("test_") or path.name in ("conftest.py", "__main__.py")
                or relative.parts[1] in PRELOAD_SKIPPED):
            continue
        importlib.import_module(".".join(relative.parts).removesuffix(".__init__"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    code, limits = config.stash[CODE], config.stash[LIMITS]
    data = find_real_data()
    user = config.stash[USER]
    if user is not None:
        runs_as = f"student code runs as {user.name} (uid {user.uid})"
    elif config.getoption("--student-user") is not None:
        runs_as = (f"student code runs as uid {os.geteuid()}, not as "
                   f"{config.getoption('--student-user')}: switching users needs root, so the "
                   "student code can read the grader and write the results while it runs")
    else:
        runs_as = f"student code runs as uid {os.geteuid()} (no --student-user)"
    layouts = ", ".join(f"{name} {layout}" for name, layout
                        in config.stash[DELIVERABLE_LAYOUTS].items())
    return [f"grading: {code.name}", f"layout of the deliverables: {layouts}",
            f"real data: {data if data else 'not found (tests that need it are skipped)'}",
            runs_as,
            f"limits: {limits.test_timeout_s:g} s per test, {limits.budget_s:g} s in all, "
            f"memory {config.stash[MEMORY][1]}"]


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


def by_hand_of(item: pytest.Item) -> str | None:
    """What a person grades for this test's points (``task(..., by_hand="...")``), or None."""
    marker = item.get_closest_marker("task")
    return None if marker is None else marker.kwargs.get("by_hand")


def deliverable_of(item: pytest.Item) -> tuple[str, str] | None:
    """(deliverable, layout) that a test grades, or None for a test of every layout."""
    marker = item.get_closest_marker("deliverable")
    return None if marker is None else (marker.args[0], marker.args[1])


@pytest.hookimpl(tryfirst=True)  # before -k, so that `-k S2.04` sees the TASK keywords
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    manifest, code = config.stash[MANIFEST], config.stash[CODE]
    deliverable_layout = config.stash[DELIVERABLE_LAYOUTS]
    kept, dropped = [], []
    collected = config.stash.setdefault(COLLECTED_POINTS, {layout: {} for layout in LAYOUTS})
    for item in items:
        task, deliverable = task_of(item), deliverable_of(item)
        if task is not None:
            if task[0] not in manifest["tasks"]:
                raise pytest.UsageError(f"{item.nodeid}: TASK {task[0]} is not in "
                                        "grader/points.json")
            for layout in layouts_of(item):
                if deliverable is None or deliverable[1] == layout:
                    collected[layout][task[0]] = collected[layout].get(task[0], 0.0) + task[1]
            item.extra_keyword_matches.add(task[0])
        elif item.get_closest_marker("kit") is None:
            raise pytest.UsageError(f"{item.nodeid} carries neither @pytest.mark.task nor "
                                    "@pytest.mark.kit")
        if ((item.get_closest_marker("kit") is not None and not code.is_kit)
                or (task is not None and code.layout not in layouts_of(item))
                or (deliverable is not None
                    and deliverable_layout.get(deliverable[0]) != deliverable[1])):
            dropped.append(item)  # the kit's own checks, or another layout's test
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


def paths_in(values) -> list[Path]:
    """Existing folders among fixture values (a Path, or a tuple or list holding some)."""
    found = []
    for value in values:
        if isinstance(value, (tuple, list)):
            found += paths_in(value)
        elif isinstance(value, Path) and value.is_dir():
            found.append(value)
    return found


def confinement_of(item: pytest.Function) -> Confinement:
    """The user, folders and known hangs for one test's child. Every fixture of the test
    counts, also one it gets only through another fixture (a tmp_path a fixture wrote to)."""
    config, arguments = item.config, item.funcargs
    code, user = config.stash[CODE], config.stash[USER]
    writable = tuple(paths_in([arguments[name] for name in ("tmp_path",) if name in arguments]))
    readable = tuple(path for path in paths_in(arguments.values()) if path not in writable)
    code_dirs = tuple(folder for folder in (code.section2, code.section1) if folder is not None)
    return Confinement(user=user, writable=writable, readable=readable if user else (),
                       code_dirs=code_dirs, hangs=tuple(config.stash[LIMITS].hangs))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a grading test's body in an isolated child; other tests run as usual."""
    task = task_of(pyfuncitem)
    if task is None:
        return None
    limits = pyfuncitem.config.stash[LIMITS]
    refusal = limits.refusal(task[0])
    if refusal is not None:
        pytest.fail(f"TASK {task[0]}: {refusal}", pytrace=False)
    marker = pyfuncitem.get_closest_marker("task")
    timeout = limits.timeout_for(marker.kwargs.get("timeout"))
    arguments = {name: pyfuncitem.funcargs[name]
                 for name in pyfuncitem._fixtureinfo.argnames}
    body = functools.partial(run_with_cuda_on_cpu, functools.partial(pyfuncitem.obj,
                                                                     **arguments))
    outcome = run_isolated(body, timeout_s=timeout,
                           memory_mb=pyfuncitem.config.stash[MEMORY][0],
                           hide_details=is_hidden(pyfuncitem),
                           confinement=confinement_of(pyfuncitem))
    if outcome.output.startswith("timed out after"):
        limits.record_timeout(task[0], pyfuncitem.name, timeout, outcome.stuck)
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
    if task is None:
        return
    if report.skipped and report.when in ("setup", "call"):
        # A skip still lists the test, its points and the reason, scored 0.
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        output = f"skipped: {reason.removeprefix('Skipped: ')}"
    elif report.when == "call" or (report.when == "setup" and report.failed):
        output = "" if report.passed else report.longreprtext.strip()
        if report.when == "setup":
            output = f"the test could not be set up: {output.splitlines()[-1] if output else ''}"
    else:
        return
    by_hand = by_hand_of(item)
    if by_hand is not None:  # a person scores it; the test says whether there is material
        output = "\n".join(filter(None, (f"graded by hand ({task[1]:g} points, not in the "
                                          f"automatic score): {by_hand}", output)))
    item.config.stash[WRITER].add(TestResult(
        name=f"{task[0]} {item.name}", number=task[0],
        score=None if by_hand else (task[1] if report.passed else 0.0),
        max_score=None if by_hand else task[1],
        status="passed" if report.passed else "failed", output=output,
        visibility="after_published" if is_hidden(item) else "visible",
        extra_data={"graded_by_hand": True, "points": task[1]} if by_hand else None))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop whatever student code still runs, then write the results a last time: from here
    on, results.json is the grader's alone."""
    writer = session.config.stash.get(WRITER, None)
    if writer is None:
        return
    containment.kill_new_children(set())
    user = session.config.stash.get(USER, None)
    if user is not None:
        containment.remove_files_of(user)
    writer.execution_time_s = time.monotonic() - session.config.stash[LIMITS].started
    writer.write()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    writer = config.stash.get(WRITER, None)
    if writer is not None and writer.tests:
        terminalreporter.write_sep("=", "grade")
        terminalreporter.write(writer.summary())
        terminalreporter.write_line(f"results: {writer.path}")

"""The limits of one grading run: its time budget, each test's time limit, and the hangs seen.

A whole grading must fit Gradescope's default 10-minute timeout whatever the submission does,
because Gradescope shows no test at all when a run is stopped. So the run has a time budget;
each test gets at most its own limit and never more than what is left of the budget; and a
function (or, when none could be named, a TASK) that hung once fails the later tests that
need it at once instead of costing another full limit each (see ``grader/runtime/hangs.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from grader.runtime.hangs import Hang

# Gradescope's default timeout is 600 s. Interpreter and library start (about 20 s at
# 0.5 vCPU), collection and writing the results must fit beside the tests.
DEFAULT_BUDGET_S = 480.0
# Per test. The slowest honest test took 1.4 s on 2 shared cores (the kit's solution, every
# graded test measured with --durations) and 1.3 s in an emulated 0.5 vCPU Gradescope
# container (issue 15). 20 s leaves room for slow but correct student code and a busy machine.
DEFAULT_TEST_TIMEOUT_S = 20.0
MIN_TEST_S = 1.0  # a test is not started with less budget than this left


@dataclass
class RunLimits:
    """The time budget and the hangs of one grading run.

    Attributes:
        budget_s: seconds for all tests together, counted from ``started``.
        test_timeout_s: the time limit of one test, s.
        started: ``time.monotonic()`` at the start of the run.
        hangs: functions of the code under test that hung, in the order they did.
        hung_tasks: {TASK id: message} for timeouts where no function could be named.
    """

    budget_s: float = DEFAULT_BUDGET_S
    test_timeout_s: float = DEFAULT_TEST_TIMEOUT_S
    started: float = field(default_factory=time.monotonic)
    hangs: list[Hang] = field(default_factory=list)
    hung_tasks: dict[str, str] = field(default_factory=dict)

    def left_s(self) -> float:
        """Seconds left of the budget."""
        return self.budget_s - (time.monotonic() - self.started)

    def timeout_for(self, requested_s: float | None = None) -> float:
        """The time limit of the next test: its own (or the default), capped by the budget."""
        return min(requested_s or self.test_timeout_s, max(self.left_s(), 0.0))

    def refusal(self, task: str) -> str | None:
        """Why the next test of ``task`` must not run at all, or None when it may run."""
        if self.left_s() < MIN_TEST_S:
            return (f"not run: the grading time budget of {self.budget_s:g} s was spent "
                    "(earlier tests hung or ran far too slowly)")
        return self.hung_tasks.get(task)

    def record_timeout(self, task: str, test: str, seconds: float,
                       stuck: tuple[str, str, str] | None) -> None:
        """Note a test that timed out, with the function it was stuck in when known."""
        if stuck is None:
            self.hung_tasks[task] = (f"skipped: an earlier test of TASK {task} ({test}) did "
                                     f"not finish in {seconds:g} s")
            return
        file, function, shown = stuck
        if not any(hang.file == file and hang.function == function for hang in self.hangs):
            self.hangs.append(Hang(file, function, test, seconds, shown))

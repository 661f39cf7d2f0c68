"""Points per TASK, and the Gradescope ``results.json`` plus a readable summary table.

Gradescope's autograder format: https://gradescope-autograders.readthedocs.io/en/latest/specs/
(``score``, ``max_score``, ``tests`` with ``name``, ``number``, ``score``, ``max_score``,
``status``, ``output``, ``visibility``; ``execution_time`` in seconds). Both files are rewritten
after every test, atomically, so a grading run that dies half way still leaves the scores so
far. A skipped test is listed too, scored 0 of its points, its output starting "skipped:".
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "points.json"


def load_manifest(path: Path = MANIFEST) -> dict:
    """The points manifest: ``{"total": int, "tasks": {task id: {"points", "title"}}}``."""
    return json.loads(path.read_text())


@dataclass
class TestResult:
    """One graded test, in Gradescope's vocabulary."""

    __test__ = False  # a record, not a pytest test class

    name: str
    number: str  # the TASK id, e.g. "S2.04"
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str
    visibility: str  # "visible" (public tests) or "after_published" (hidden tests)


class ResultsWriter:
    """Collects test results and rewrites results.json and the summary after each one."""

    def __init__(self, path: Path, graded: str) -> None:
        self.path = path
        self.summary_path = path.with_suffix(".txt")
        self.graded = graded
        self.tests: list[TestResult] = []
        self.started = time.monotonic()
        self.execution_time_s: float | None = None  # set at the end; else the time so far

    def add(self, result: TestResult) -> None:
        """Record one result and rewrite both files."""
        self.tests.append(result)
        self.write()

    def scores_by_task(self) -> dict[str, tuple[float, float]]:
        """{task id: (score, max score)} over the tests recorded so far."""
        totals: dict[str, tuple[float, float]] = {}
        for test in self.tests:
            score, max_score = totals.get(test.number, (0.0, 0.0))
            totals[test.number] = (score + test.score, max_score + test.max_score)
        return dict(sorted(totals.items()))

    def summary(self) -> str:
        """A table: one row per TASK with its score, then the total."""
        rows = [f"Grading {self.graded}", "", f"{'TASK':<8}{'score':>8}{'max':>8}  failed tests"]
        for task, (score, max_score) in self.scores_by_task().items():
            failed = [t.name.removeprefix(f"{task} ") for t in self.tests
                      if t.number == task and t.status != "passed"]
            rows.append(f"{task:<8}{score:>8g}{max_score:>8g}  {', '.join(failed)}")
        score = sum(t.score for t in self.tests)
        max_score = sum(t.max_score for t in self.tests)
        rows += ["", f"{'total':<8}{score:>8g}{max_score:>8g}"]
        return "\n".join(rows) + "\n"

    def write(self) -> None:
        """Write results.json (Gradescope) and results.txt (the summary), atomically."""
        payload = {"score": sum(t.score for t in self.tests),
                   "max_score": sum(t.max_score for t in self.tests),
                   "execution_time": round(self.execution_time_s if self.execution_time_s
                                           is not None else time.monotonic() - self.started, 1),
                   "visibility": "visible", "stdout_visibility": "hidden",
                   "tests": [asdict(t) for t in self.tests]}
        for path, text in ((self.path, json.dumps(payload, indent=2) + "\n"),
                           (self.summary_path, self.summary())):
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(text)
            os.replace(temporary, path)

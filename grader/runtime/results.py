"""Points per TASK, and the Gradescope ``results.json`` plus a readable summary table.

Gradescope's autograder format: https://gradescope-autograders.readthedocs.io/en/latest/specs/
(``score``, ``max_score``, ``tests`` with ``name``, ``number``, ``score``, ``max_score``,
``status``, ``output``, ``visibility``; ``execution_time`` in seconds). Both files are rewritten
after every test, atomically, so a grading run that dies half way still leaves the scores so
far. A skipped test is listed too, scored 0 of its points, its output starting "skipped:".

A TASK graded by hand (a course notebook's answers) is an informational test, as the spec
allows: no ``score`` or ``max_score`` (so Gradescope neither adds nor deducts it), a status
that says whether the material is handed in, ``output`` saying "graded by hand" with its
points, and ``extra_data`` ``{"graded_by_hand": true, "points": n}``. The top-level
``output`` lists those points; Gradescope's manual grading adds them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[1] / "points.json"


def load_manifest(path: Path = MANIFEST) -> dict:
    """The points manifest, the one declaration of each TASK's points:
    ``{"tasks": {task id: {"points", "title"}}}``; the assignment's total is their sum."""
    return json.loads(path.read_text())


def scores_by_task(tests: Iterable[dict]) -> dict[str, tuple[float, float]]:
    """{TASK id: (score, max score)} summed over Gradescope test entries (results.json's
    ``tests``), sorted by TASK; an entry without ``score`` (graded by hand) counts nothing."""
    totals: dict[str, tuple[float, float]] = {}
    for test in tests:
        if "score" not in test:
            continue  # graded by hand: no automatic score
        score, max_score = totals.get(test["number"], (0.0, 0.0))
        totals[test["number"]] = (score + float(test["score"]),
                                  max_score + float(test["max_score"]))
    return dict(sorted(totals.items()))


def read_scores(results_path: Path) -> dict[str, tuple[float, float]]:
    """``scores_by_task`` of a Gradescope results.json.

    Raises:
        OSError: when the file cannot be read.
        ValueError: when it is not valid JSON (json.JSONDecodeError) or lacks ``tests``.
    """
    payload = json.loads(results_path.read_text())
    if not isinstance(payload, dict) or not isinstance(payload.get("tests"), list):
        raise ValueError(f"{results_path} has no list of tests")
    return scores_by_task(payload["tests"])


@dataclass
class TestResult:
    """One graded test, in Gradescope's vocabulary."""

    __test__ = False  # a record, not a pytest test class

    name: str
    number: str  # the TASK id, e.g. "S2.04"
    score: float | None  # None: graded by hand (left out of results.json)
    max_score: float | None  # None: graded by hand
    status: str  # "passed" or "failed"
    output: str
    visibility: str  # "visible" (public tests) or "after_published" (hidden tests)
    extra_data: dict | None = None  # {"graded_by_hand": True, "points": n} for a hand-graded one

    @property
    def by_hand_points(self) -> float:
        """Points a person grades for this test (0 for an automatic test)."""
        return float(self.extra_data["points"]) if self.score is None and self.extra_data else 0.0

    def to_json(self) -> dict:
        """The Gradescope test entry: fields that are None are left out."""
        return {key: value for key, value in asdict(self).items() if value is not None}


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

    def by_hand_points(self) -> dict[str, float]:
        """{task id: points graded by hand} over the tests recorded so far."""
        points: dict[str, float] = {}
        for test in self.tests:
            if test.by_hand_points:
                points[test.number] = points.get(test.number, 0.0) + test.by_hand_points
        return dict(sorted(points.items()))

    def by_hand_note(self) -> str:
        """One line naming the points graded by hand, or "" when there are none."""
        points = self.by_hand_points()
        if not points:
            return ""
        listed = ", ".join(f"{task} ({value:g})" for task, value in points.items())
        return (f"{sum(points.values()):g} points are graded by hand and are not in this "
                f"score: {listed}")

    def summary(self) -> str:
        """A table: one row per TASK with its score (or "by hand"), then the totals."""
        rows = [f"Grading {self.graded}", "", f"{'TASK':<8}{'score':>8}{'max':>8}  failed tests"]
        automatic = scores_by_task(test.to_json() for test in self.tests)
        by_hand = self.by_hand_points()
        for task in sorted(automatic.keys() | by_hand.keys()):
            failed = [t.name.removeprefix(f"{task} ") for t in self.tests
                      if t.number == task and t.status != "passed" and t.score is not None]
            if task in automatic:
                score, max_score = automatic[task]
                rows.append(f"{task:<8}{score:>8g}{max_score:>8g}  {', '.join(failed)}")
            if task in by_hand:
                missing = [t.name.removeprefix(f"{task} ") for t in self.tests
                           if t.number == task and t.status != "passed" and t.score is None]
                note = f"  material missing: {', '.join(missing)}" if missing else ""
                rows.append(f"{task:<8}{'by hand':>8}{by_hand[task]:>8g}{note}")
        score = sum(t.score for t in self.tests if t.score is not None)
        max_score = sum(t.max_score for t in self.tests if t.max_score is not None)
        rows += ["", f"{'total':<8}{score:>8g}{max_score:>8g}"]
        if by_hand:
            rows.append(f"{'by hand':<8}{'':>8}{sum(by_hand.values()):>8g}  not in the total")
        return "\n".join(rows) + "\n"

    def write(self) -> None:
        """Write results.json (Gradescope) and results.txt (the summary), atomically."""
        payload = {"score": sum(t.score for t in self.tests if t.score is not None),
                   "max_score": sum(t.max_score for t in self.tests if t.max_score is not None),
                   "execution_time": round(self.execution_time_s if self.execution_time_s
                                           is not None else time.monotonic() - self.started, 1),
                   "visibility": "visible", "stdout_visibility": "hidden",
                   "tests": [t.to_json() for t in self.tests]}
        if self.by_hand_note():
            payload["output"] = self.by_hand_note()
        for path, text in ((self.path, json.dumps(payload, indent=2) + "\n"),
                           (self.summary_path, self.summary())):
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(text)
            os.replace(temporary, path)

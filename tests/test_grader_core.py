"""The grader's machinery: isolation of a test body, the report checks, the results files."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.runtime import report as checks
from grader.runtime.results import ResultsWriter, TestResult
from grader.runtime.sandbox import run_isolated

REPO = Path(__file__).resolve().parents[1]


def passes() -> None:
    assert 1 + 1 == 2


def loops_forever() -> None:
    while True:
        time.sleep(0.01)


def exits() -> None:
    sys.exit(3)


def hard_exits() -> None:
    os._exit(4)


def segfaults() -> None:
    ctypes.string_at(0)


def allocates_too_much() -> None:
    bytearray(8 * 2**30)


def fails_an_assertion() -> None:
    assert 0.5 == 0.6667, "Jaccard must equal Dice / (2 - Dice)"


def hits_a_stub() -> None:
    raise NotImplementedError("TASK S2.04: Pad the image.")


def skips() -> None:
    pytest.skip("no real data here")


def leaves_a_sleeping_process() -> None:
    if os.fork() == 0:  # e.g. a DataLoader worker that outlives the test
        time.sleep(30)
        os._exit(0)


@pytest.mark.parametrize("body, status, words", [
    (passes, "passed", ""),
    (loops_forever, "failed", "timed out after 1 s"),
    (exits, "failed", "sys.exit(3)"),
    (hard_exits, "failed", "exit status 4"),
    (segfaults, "failed", "crashed (SIGSEGV)"),
    (allocates_too_much, "failed", "ran out of memory"),
    (hits_a_stub, "failed", "TASK S2.04 is not done yet"),
    (skips, "skipped", "no real data here"),
    (leaves_a_sleeping_process, "passed", ""),
])
def test_isolated_body_costs_only_its_own_outcome(body, status, words):
    outcome = run_isolated(body, timeout_s=1, memory_mb=512)
    assert outcome.status == status
    assert words in outcome.output


def test_hidden_test_reports_the_property_without_the_values():
    shown = run_isolated(fails_an_assertion, timeout_s=5, memory_mb=512, hide_details=True)
    assert shown.output == "Jaccard must equal Dice / (2 - Dice)"


def test_results_files_are_rewritten_after_every_test(tmp_path):
    writer = ResultsWriter(tmp_path / "results.json", "a submission")
    writer.add(TestResult("S2.04 test_a", "S2.04", 2, 2, "passed", "", "visible"))
    writer.add(TestResult("S2.04 test_b", "S2.04", 0, 3, "failed", "why", "after_published"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert (results["score"], results["max_score"], len(results["tests"])) == (2, 5, 2)
    assert set(results["tests"][1]) == {"name", "number", "score", "max_score", "status",
                                        "output", "visibility"}
    assert "S2.04          2       5  test_b" in (tmp_path / "results.txt").read_text()


TEMPLATE = checks.TEMPLATE.read_text()


def write_report(out: Path, text: str, overall: dict, figures=("loss.png",)) -> None:
    session = out / "results" / "2026_Basic_unet"
    session.mkdir(parents=True)
    (session / "results.json").write_text(json.dumps({"volume_stats": [], "overall": overall}))
    (out / "README.md").write_text(text)
    for name in figures:
        (out / name).write_bytes(b"\x89PNG")


def test_template_itself_is_incomplete_by_every_rule(tmp_path):
    write_report(tmp_path, TEMPLATE, {"mean_dice": 0.9, "mean_jaccard": 0.8})
    report = checks.load_report(tmp_path)
    problems = checks.structure_problems(report, TEMPLATE)
    assert problems and all("placeholder" in problem for problem in problems)
    assert any("not handed in" in p for p in checks.figure_problems(report, TEMPLATE))
    assert "the table gives no number for mean_dice" in checks.quote_problems(report)


def test_report_without_a_heading_and_with_a_wrong_number_is_flagged(tmp_path):
    text = ("## 1. Run\n| Dice (whole hippocampus) | `0.9100` |\n"
            "| Jaccard (whole hippocampus) | `0.8000` |\n"
            "![a](loss.png) ![b](loss.png) ![c](loss.png)\n")
    write_report(tmp_path, text, {"mean_dice": 0.8831, "mean_jaccard": 0.8})
    report = checks.load_report(tmp_path)
    assert "heading '## 5. Discussion' is missing" in checks.structure_problems(report, TEMPLATE)
    assert checks.quote_problems(report) == ["the table's mean_dice does not match results.json"]
    assert checks.figure_problems(report, TEMPLATE) == []


def test_report_without_results_is_an_error_that_says_what_to_hand_in(tmp_path):
    (tmp_path / "README.md").write_text(TEMPLATE)
    with pytest.raises(checks.ReportError, match="hand in the session folder"):
        checks.load_report(tmp_path)


def test_a_crashing_body_is_reported_without_a_fatal_python_error_dump():
    # pytest turns faulthandler on; a forked child inherits it, so a segfault printed
    # "Fatal Python error: Segmentation fault" and a stack dump into the grading output.
    script = ("import ctypes, faulthandler, sys\n"
              "import torch  # the grader imports it in the parent, never in a child\n"
              "faulthandler.enable()\n"
              f"sys.path.insert(0, {str(REPO)!r})\n"
              "from grader.runtime.sandbox import run_isolated\n"
              "outcome = run_isolated(lambda: ctypes.string_at(0), timeout_s=5, memory_mb=512)\n"
              "print(outcome.output)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert "crashed (SIGSEGV)" in done.stdout
    assert "Fatal Python error" not in done.stderr

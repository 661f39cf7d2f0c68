"""Write the integrity findings: integrity.csv for a spreadsheet, integrity.md to read."""

from __future__ import annotations

import csv
import html
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from grader.batch.integrity.findings import Finding

CSV_COLUMNS = ("submission", "check", "other", "evidence")
# What each check means, for the report's legend (README's table says the same).
CHECKS = {
    "code-similarity": "own code (starter or skeleton removed) largely the same as another's",
    "results-identical": "results.json byte-identical to another submission's",
    "results-near-identical": "results.json listing the same volumes and metrics as another's",
    "figures-identical": "figures byte-identical to another submission's",
    "impossible-metric": "a Dice or Jaccard outside [0, 1], or not a number",
    "jaccard-not-dice": "a volume's Jaccard is not Dice / (2 - Dice)",
    "mean-not-of-volumes": "an overall mean that is not the mean of the listed volumes",
    "file-not-in-data-set": "test volumes whose file names are not in the data set",
    "split-overlap": "test volumes that are also training or validation volumes",
    "volume-count": "a number of scored volumes that does not fit the split",
    "dice-recomputed": "a claimed Dice that the saved predictions do not give",
    "results-unreadable": "a results.json that is not a JSON object",
    "no-training-call": "run_ml_pipeline.py never calls .run() (training) on its experiment",
    "results-older-than-code": "results.json written long before the code last changed",
    "model-not-loadable": "a model.pth that does not load into the student's own UNet",
    "mutates-input": "a metric or reshape that changes the caller's arrays",
}


def write_csv(findings: Sequence[Finding], path: Path) -> None:
    """One row per finding: submission, check, other, evidence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for finding in findings:
            writer.writerow([finding.submission, finding.check, finding.other,
                             finding.evidence])


def side_by_side(passages: Sequence[tuple[str, str]], left: str, right: str) -> list[str]:
    """An HTML table (Markdown renders it) with one row per passage pair."""
    if not passages:
        return []
    lines = ["<table>", f"<tr><th>{html.escape(left)}</th><th>{html.escape(right)}</th></tr>"]
    for first, second in passages:
        lines.append(f"<tr><td><pre>{html.escape(first, quote=False)}</pre></td>"
                     f"<td><pre>{html.escape(second, quote=False)}</pre></td></tr>")
    return [*lines, "</table>", ""]


def write_markdown(findings: Sequence[Finding], path: Path, n_submissions: int) -> None:
    """integrity.md: a summary, the legend, then every finding with its evidence."""
    counts = Counter(finding.check for finding in findings)
    flagged = len({finding.submission for finding in findings}
                  | {finding.other for finding in findings if finding.other})
    lines = ["# Integrity report", "",
             f"{n_submissions} submissions, {len(findings)} findings, {flagged} submissions "
             "named. Findings are notes for the instructor to look at, never deductions.", ""]
    if counts:
        lines += ["| check | findings | what it means |", "|---|---|---|"]
        lines += [f"| {check} | {count} | {CHECKS.get(check, '')} |"
                  for check, count in sorted(counts.items())]
        lines.append("")
    else:
        lines += ["No findings.", ""]
    for finding in findings:
        title = (f"{finding.submission} ~ {finding.other}" if finding.other
                 else finding.submission)
        lines += [f"## {title}: {finding.check}", "", finding.evidence, ""]
        right = finding.other or "expected"
        lines += side_by_side(finding.passages, finding.submission, right)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))

"""Class-wide integrity report: copied work, results that do not hold up, code that cannot
have produced them, functions with side effects.

    python -m grader.grade_all SUBMISSIONS_DIR                    # grading, then this report
    python -m grader.grade_all SUBMISSIONS_DIR --integrity-only   # this report alone

Writes ``integrity.csv`` (``submission,check,other,evidence``: one row per finding; ``other``
is the second submission of a pair) and ``integrity.md`` (every finding, with the evidence side
by side). Findings are notes for the instructor, never deductions: scores.csv does not change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from grader.integrity.code_checks import check_code
from grader.integrity.findings import Finding, find_sessions
from grader.integrity.report_files import write_csv, write_markdown
from grader.integrity.results_checks import check_results
from grader.integrity.similarity import code_similarity, figure_similarity, results_similarity

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
# What every kit student is given: the generated skeleton (section 2) and section 1's files.
KIT_BOILERPLATE = (REPO / "section2" / "src", REPO / "section1")
CSV_FILE = "integrity.csv"
MARKDOWN_FILE = "integrity.md"


def check_class(submissions: Sequence[Path], out_dir: Path,
                boilerplate: Sequence[Path] = KIT_BOILERPLATE, data_dir: Path | None = None,
                sandbox: bool = True, show_progress: bool | None = None) -> list[Finding]:
    """Run every integrity check over a class and write integrity.csv and integrity.md.

    Args:
        submissions: submission folders (each holding section2/src, optionally section2/out
            and section1); their names must differ.
        out_dir: folder for integrity.csv and integrity.md.
        boilerplate: folders of code and figures every student was given: the kit's
            skeleton by default, the course starter's folder for course submissions.
        data_dir: the real data set (images/ and labels/) for file names and recomputed
            Dice; None leaves those two checks out.
        sandbox: also run the student's metrics, reshape and model loading in the grader's
            sandbox (side effects, model.pth).
        show_progress: tqdm's ``disable`` inverted: None shows the bar on a terminal only.

    Returns:
        Every finding, sorted by submission, check and other.

    Raises:
        ValueError: when two submissions share a name.
    """
    folders = {path.name: path for path in submissions}
    if len(folders) != len(submissions):
        raise ValueError(f"submission folder names must differ: "
                         f"{sorted(path.name for path in submissions)}")
    if sandbox:
        # The sandbox forks a child per submission: loaded here once, torch is shared by all.
        import torch  # noqa: F401
    disable = None if show_progress is None else not show_progress
    findings: list[Finding] = []
    with tqdm(total=2 * len(folders), desc="integrity", unit="step", disable=disable) as bar:
        sessions = {name: find_sessions(folder) for name, folder in folders.items()}
        for name, folder in folders.items():
            findings += check_results(name, sessions[name], data_dir)
            findings += check_code(name, folder, sessions[name], sandbox=sandbox)
            bar.update()
        findings += code_similarity(folders, list(boilerplate), progress=bar)
    findings += results_similarity(sessions) + figure_similarity(folders, list(boilerplate))
    findings.sort(key=lambda finding: (finding.submission, finding.check, finding.other))
    write_csv(findings, out_dir / CSV_FILE)
    write_markdown(findings, out_dir / MARKDOWN_FILE, len(folders))
    return findings

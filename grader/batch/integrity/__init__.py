"""Class-wide integrity report: copied work, results that do not hold up, code that cannot
have produced them, functions with side effects.

    python -m grader.batch.grade_all SUBMISSIONS_DIR                    # grading, then this report
    python -m grader.batch.grade_all SUBMISSIONS_DIR --integrity-only   # this report alone

Writes ``integrity.csv`` (``submission,check,other,evidence``: one row per finding; ``other``
is the second submission of a pair) and ``integrity.md`` (every finding, with the evidence side
by side). Findings are notes for the instructor, never deductions: scores.csv does not change.

Each submission is inspected in a worker process forked from this one (results, code, sandbox,
tokenising its code); the pairs are then compared here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grader.batch.integrity.code_checks import check_code
from grader.batch.integrity.findings import Finding, Session, find_sessions
from grader.batch.integrity.report_files import write_csv, write_markdown
from grader.batch.integrity.results_checks import check_results
from grader.batch.integrity.similarity import (
    CodeDocument,
    boilerplate_hashes,
    code_fingerprint,
    code_similarity,
    figure_similarity,
    results_similarity,
)

REPO = Path(__file__).resolve().parents[3]
# What every kit student is given: the generated skeleton (section 2) and section 1's files.
KIT_BOILERPLATE = (REPO / "section2" / "src", REPO / "section1")
CSV_FILE = "integrity.csv"
MARKDOWN_FILE = "integrity.md"


@dataclass(frozen=True)
class Inspection:
    """What one worker found in one submission."""

    name: str
    findings: list[Finding]
    sessions: list[Session]
    document: CodeDocument
    fingerprint: object  # copydetect.CodeFingerprint, or None without code


def inspect(name: str, folder: Path, boilerplate, data_dir: Path | None,
            sandbox: bool) -> Inspection:
    """Every per-submission check, and the submission's code fingerprint."""
    sessions = find_sessions(folder)
    findings = (check_results(name, sessions, data_dir)
                + check_code(name, folder, sessions, sandbox=sandbox))
    document, fingerprint = code_fingerprint(folder, boilerplate)
    return Inspection(name, findings, sessions, document, fingerprint)


def check_class(submissions: Sequence[Path], out_dir: Path,
                boilerplate: Sequence[Path] = KIT_BOILERPLATE, data_dir: Path | None = None,
                sandbox: bool = True, show_progress: bool | None = None,
                workers: int | None = None) -> list[Finding]:
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
        workers: worker processes (None: os.cpu_count()).

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
        # Loaded once here, torch is shared by every worker and sandbox child forked later.
        import torch  # noqa: F401
    known = boilerplate_hashes(list(boilerplate))
    disable = None if show_progress is None else not show_progress
    inspections: dict[str, Inspection] = {}
    # Forked workers share this process's string-hash salt, so their fingerprints compare.
    context = multiprocessing.get_context("fork")
    with (ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                              mp_context=context) as pool,
          tqdm(total=len(folders), desc="integrity", unit="submission",
               disable=disable) as bar):
        futures = [pool.submit(inspect, name, folder, known, data_dir, sandbox)
                   for name, folder in folders.items()]
        for future in as_completed(futures):
            inspection = future.result()
            inspections[inspection.name] = inspection
            bar.update()
    findings = [finding for inspection in inspections.values()
                for finding in inspection.findings]
    findings += code_similarity({name: item.document for name, item in inspections.items()},
                                {name: item.fingerprint for name, item in inspections.items()})
    findings += results_similarity({name: item.sessions for name, item in inspections.items()})
    findings += figure_similarity(folders, list(boilerplate))
    findings.sort(key=lambda finding: (finding.submission, finding.check, finding.other))
    write_csv(findings, out_dir / CSV_FILE)
    write_markdown(findings, out_dir / MARKDOWN_FILE, len(folders))
    return findings

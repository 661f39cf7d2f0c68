"""What an integrity check finds, and where a submission keeps what it handed in.

A finding is a note for the instructor, never a deduction: it names the submission, the check,
the second submission of a pair (if any) and the evidence, short for integrity.csv and side by
side for integrity.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.runtime.never_copied import is_never_copied

RESULTS_FILE = "results.json"
SPLIT_FILE = "split.json"  # the kit's session folder: {"train": [names], "val": [...], ...}
MODEL_FILE = "model.pth"
PREDICTIONS_DIR = "predictions"


@dataclass(frozen=True)
class Finding:
    """One integrity finding.

    Attributes:
        submission: the submission's folder name.
        check: the check that found it, e.g. "code-similarity" (see README's table).
        evidence: one line for integrity.csv: what was found, with the numbers.
        other: the second submission of a pair, else "".
        passages: side-by-side evidence for integrity.md: (this submission's text, the other's
            or the expected text) pairs, each a few lines.
    """

    submission: str
    check: str
    evidence: str
    other: str = ""
    passages: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Session:
    """One handed-in results.json and what lies beside it.

    Attributes:
        results_path: the results.json file.
        label: its path relative to the submission, for evidence.
        results: its parsed content (None when it is not a JSON object).
        problem: why it could not be parsed ("" when it could).
    """

    results_path: Path
    label: str
    results: dict | None
    problem: str = ""

    @property
    def folder(self) -> Path:
        """The session folder (the one holding results.json)."""
        return self.results_path.parent


def handed_in_files(submission: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``submission`` whose names end in one of ``suffixes``, sorted.

    Caches, notebooks' checkpoints, TensorBoard runs and symbolic links are left out.
    """
    return sorted(path for path in submission.rglob("*")
                  if path.name.lower().endswith(suffixes) and path.is_file()
                  and not path.is_symlink()
                  and not is_never_copied(path.relative_to(submission).parts))


def find_sessions(submission: Path) -> list[Session]:
    """Every results.json handed in under ``submission``, parsed.

    The kit writes ``section2/out/results/<time>_<name>/results.json``; a course-starter
    student writes it wherever ``Config.test_results_dir`` pointed, so the whole folder is
    searched.
    """
    sessions = []
    for path in handed_in_files(submission, (RESULTS_FILE,)):
        label = relative_name(submission, path)
        try:
            results = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError as err:
            sessions.append(Session(path, label, None, f"not valid JSON: {err}"))
            continue
        if not isinstance(results, dict):
            sessions.append(Session(path, label, None, "not a JSON object"))
            continue
        sessions.append(Session(path, label, results))
    return sessions


def relative_name(submission: Path, path: Path) -> str:
    """``path`` relative to ``submission``, as text for evidence."""
    try:
        return str(path.relative_to(submission))
    except ValueError:
        return str(path)

"""Similarity between submissions: code (copydetect), results.json files and figures.

Code: every ``.py`` a student handed in (section2/src and section1, tests left out) is joined
into one document per submission, so that moving a function to another file or reordering
functions changes nothing. copydetect (https://github.com/blingenf/copydetect) tokenises it
with pygments, replaces every name by one letter (renamed variables do not hide a copy),
fingerprints it by winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003) and drops every
fingerprint that also occurs in the boilerplate: the kit's skeleton, or the course starter the
instructor hands out. A pair is reported when either side shares CODE_THRESHOLD of its own
fingerprinted code with the other and the shared code is at least MIN_SHARED_CHARS long.

Results and figures: byte-identical results.json files, results.json files that list the same
volumes with the same metrics, and byte-identical figures that no boilerplate folder holds.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files

from grader.batch.integrity.findings import Finding, Session, handed_in_files

CODE_FOLDERS = (Path("section2") / "src", Path("section1"))  # where a student writes code
NOISE_CHARS = 25  # copydetect's noise threshold: shorter matches (of tokenised code) are noise
GUARANTEE_CHARS = 30  # copydetect's guarantee threshold: longer matches are always found
CODE_THRESHOLD = 0.5  # share of one submission's own code found in the other's
MIN_SHARED_CHARS = 400  # shared tokenised code below this (a few lines) is never reported
# Written between files of a joined document: tokenised ("V=0" ten times) it is longer than
# NOISE_CHARS, so no fingerprint spans two files, and the boilerplate, fingerprinted with it
# on both sides of each file, also holds the fingerprints at a file's start and end.
FILE_BOUNDARY = "_ = 0\n" * 10
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif")
METRIC_DECIMALS = 4  # results agreeing to this many decimals on every volume are "the same"
MAX_PASSAGES = 3  # matching passages quoted per pair
MAX_PASSAGE_LINES = 12
PATH_MARKERS = ("/", "\\")  # a config string holding one of these is a path
MAX_CONFIG_CHARS = 600  # of each results.json's config quoted side by side


@dataclass(frozen=True)
class CodeDocument:
    """One submission's code joined into one text, with where each file's own text starts.

    Attributes:
        text: every file's text, each preceded by a ``# file: <path>`` line.
        starts: (offset in text of the file's first line, file label) per file, in order.
    """

    text: str
    starts: tuple[tuple[int, str], ...]

    def pieces(self, start: int, end: int) -> list[tuple[str, int, str]]:
        """The whole lines of ``text[start:end]``, cut at file boundaries.

        Returns:
            (file label, 1-based first line in that file, the lines) per file touched.
        """
        bounds = [*(offset for offset, _ in self.starts), len(self.text)]
        found = []
        for (offset, label), next_offset in zip(self.starts, bounds[1:], strict=True):
            low, high = max(start, offset), min(end, next_offset)
            if low >= high:
                continue
            low = self.text.rfind("\n", offset, low) + 1 or offset  # back to a line start
            line_end = self.text.find("\n", high - 1)
            high = next_offset if line_end < 0 else min(line_end, next_offset)
            lines = self.text[low:high].strip("\n")
            if lines.strip():
                found.append((label, self.text.count("\n", offset, low) + 1, lines))
        return found


def code_files(folder: Path) -> list[Path]:
    """The Python files a student wrote under ``folder`` (tests and caches left out)."""
    return [path for path in handed_in_files(folder, (".py",))
            if not path.name.startswith("test_") and path.name != "conftest.py"]


def code_document(submission: Path) -> CodeDocument:
    """Join the submission's code files into one CodeDocument."""
    parts, starts, offset = [], [], 0
    for folder in CODE_FOLDERS:
        for path in code_files(submission / folder):
            label = str(path.relative_to(submission))
            header = f"{FILE_BOUNDARY}# file: {label}\n"
            text = f"{path.read_text(encoding='utf-8', errors='replace')}\n"
            starts.append((offset + len(header), label))
            parts.append(header + text)
            offset += len(header) + len(text)
    return CodeDocument("".join(parts), tuple(starts))


def fingerprint(text: str, boilerplate=None, window: int | None = None) -> CodeFingerprint:
    """copydetect's fingerprint of Python source ``text``."""
    window = window or GUARANTEE_CHARS - NOISE_CHARS + 1
    return CodeFingerprint("submission.py", NOISE_CHARS, window, boilerplate,
                           language="python", fp=io.StringIO(text))


def boilerplate_hashes(folders: list[Path]) -> np.ndarray:
    """Every fingerprint of the code under ``folders`` (copydetect's boilerplate: window 1)."""
    hashes: set = set()
    for folder in folders:
        for path in code_files(folder):
            text = path.read_text(encoding="utf-8", errors="replace")
            hashes |= fingerprint(f"{FILE_BOUNDARY}{text}\n{FILE_BOUNDARY}", window=1).hashes
    return np.unique(np.array(sorted(hashes)))


def passages(document: CodeDocument, slices) -> list[tuple[str, str]]:
    """The longest matching passages: ("file, lines a-b", the lines) each, longest first."""
    pieces = [piece for start, end in zip(slices[0].tolist(), slices[1].tolist(), strict=True)
              for piece in document.pieces(int(start), int(end))]
    quoted = []
    for label, first, text in sorted(pieces, key=lambda piece: -len(piece[2]))[:MAX_PASSAGES]:
        lines = text.splitlines()
        shown = "\n".join(lines[:MAX_PASSAGE_LINES]) + (
            f"\n... ({len(lines) - MAX_PASSAGE_LINES} more lines)"
            if len(lines) > MAX_PASSAGE_LINES else "")
        quoted.append((f"{label}, lines {first}-{first + len(lines) - 1}", shown))
    return quoted


def code_fingerprint(submission: Path, boilerplate) -> tuple[CodeDocument, CodeFingerprint | None]:
    """A submission's joined code and its fingerprint (None when it has no code).

    Python salts its string hash per interpreter: fingerprints are comparable only when
    computed in one process or in processes forked from it.
    """
    document = code_document(submission)
    return document, (fingerprint(document.text, boilerplate) if document.text else None)


def code_similarity(documents: dict[str, CodeDocument],
                    prints: dict[str, CodeFingerprint | None]) -> list[Finding]:
    """Pairs of submissions whose own code (boilerplate removed) largely matches.

    Args:
        documents: {name: the submission's joined code} (code_fingerprint).
        prints: {name: its fingerprint, boilerplate removed, or None}.

    Returns:
        One finding per pair above the threshold, on the first name of the pair, with the
        shares of each side's code and the longest matching passages.
    """
    findings = []
    names = sorted(name for name, value in prints.items() if value is not None)
    for first, second in itertools.combinations(names, 2):
        if not prints[first].hashes & prints[second].hashes:
            continue
        overlap, (share1, share2), (slices1, slices2) = compare_files(prints[first],
                                                                     prints[second])
        if overlap < MIN_SHARED_CHARS or max(share1, share2) < CODE_THRESHOLD:
            continue
        quoted1, quoted2 = passages(documents[first], slices1), passages(documents[second],
                                                                       slices2)
        pairs = tuple((f"{head1}\n{text1}", f"{head2}\n{text2}")
                      for (head1, text1), (head2, text2) in zip(quoted1, quoted2, strict=False))
        longest = (f"; longest match: {quoted1[0][0]} ~ {quoted2[0][0]}"
                   if quoted1 and quoted2 else "")
        findings.append(Finding(
            first, "code-similarity",
            f"{share1:.0%} of {first}'s own code matches {second}'s, {share2:.0%} the other "
            f"way ({overlap} tokenised characters; names ignored, boilerplate removed)"
            + longest, other=second, passages=pairs))
    return findings


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def paths_in(results: dict) -> list[str]:
    """Path-like strings of a results.json's config (a student's own folders)."""
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    return [value for value in config.values()
            if isinstance(value, str) and any(marker in value for marker in PATH_MARKERS)]


def metric_table(results: dict) -> tuple:
    """The volumes and their metrics, rounded to METRIC_DECIMALS; () when none are listed."""
    rows = []
    for entry in results.get("volume_stats") or []:
        if isinstance(entry, dict):
            rows.append(tuple(sorted(
                (key, round(value, METRIC_DECIMALS) if isinstance(value, float) else value)
                for key, value in entry.items() if not isinstance(value, (dict, list)))))
    return tuple(sorted(rows, key=repr))


def results_similarity(sessions: dict[str, list[Session]]) -> list[Finding]:
    """Pairs of submissions that hand in the same results.json, byte for byte or in numbers.

    Args:
        sessions: {submission name: its handed-in results}.
    """
    findings = []
    entries = [(name, session, digest(session.results_path))
               for name, found in sorted(sessions.items()) for session in found]
    for (name1, session1, hash1), (name2, session2, hash2) in itertools.combinations(entries, 2):
        if name1 == name2:
            continue
        if hash1 == hash2:
            shared = paths_in(session1.results or {})
            configs = tuple(json.dumps((session.results or {}).get("config", {}),
                                       indent=1)[:MAX_CONFIG_CHARS]
                            for session in (session1, session2))
            findings.append(Finding(
                name1, "results-identical",
                f"{session1.label} is byte-identical to {name2}'s {session2.label}"
                + (f"; both name the same paths: {', '.join(shared)}" if shared else ""),
                other=name2, passages=(configs,)))
        elif (session1.results and session2.results
              and metric_table(session1.results)
              and metric_table(session1.results) == metric_table(session2.results)):
            findings.append(Finding(
                name1, "results-near-identical",
                f"{session1.label} and {name2}'s {session2.label} list the same "
                f"{len(metric_table(session1.results))} volumes with the same metrics to "
                f"{METRIC_DECIMALS} decimals", other=name2,
                passages=((", ".join(paths_in(session1.results)) or "(no paths)",
                           ", ".join(paths_in(session2.results)) or "(no paths)"),)))
    return findings


def figure_similarity(submissions: dict[str, Path], boilerplate: list[Path]) -> list[Finding]:
    """Pairs of submissions that hand in byte-identical figures not given to every student."""
    given = {digest(path) for folder in boilerplate
             for path in handed_in_files(folder, FIGURE_SUFFIXES)}
    owners: dict[str, list[tuple[str, str]]] = {}
    for name, folder in sorted(submissions.items()):
        for path in handed_in_files(folder, FIGURE_SUFFIXES):
            key = digest(path)
            if key not in given:
                owners.setdefault(key, []).append((name, str(path.relative_to(folder))))
    shared: dict[tuple[str, str], list[str]] = {}
    for holders in owners.values():
        for (name1, label1), (name2, label2) in itertools.combinations(holders, 2):
            if name1 != name2:
                shared.setdefault((name1, name2), []).append(f"{label1} = {label2}")
    return [Finding(name1, "figures-identical",
                    f"{len(same)} byte-identical figures: {'; '.join(same[:MAX_PASSAGES])}",
                    other=name2)
            for (name1, name2), same in sorted(shared.items())]


"""Checks of one handed-in results.json: numbers that cannot be, or that its split contradicts.

Each check returns findings with the numbers as evidence. Tolerances are for rounding in a
JSON file, far below any real disagreement: a Jaccard of 0.80 belongs to a Dice of 0.889, not
0.90.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from grader.batch.integrity.findings import PREDICTIONS_DIR, SPLIT_FILE, Finding, Session
from grader.runtime.report import Report, ReportError, recomputed_dice

logger = logging.getLogger(__name__)

# Metrics of a volume that are fractions, so in [0, 1] when finite.
UNIT_METRICS = ("dice", "jaccard", "dice_anterior", "dice_posterior", "sensitivity",
                "specificity")
REQUIRED_METRICS = ("dice", "jaccard")  # never NaN: both are defined for every pair of masks
JACCARD_TOLERANCE = 1e-3  # |J - D / (2 - D)|: beyond JSON rounding, below any real mismatch
MEAN_TOLERANCE = 1e-3  # |stated mean - mean of the listed volumes|
RECOMPUTE_TOLERANCE = 1e-3  # |claimed Dice - Dice recomputed from a saved prediction|
SPLIT_PARTS = ("train", "val", "test")
MAX_LISTED = 5  # names quoted in one evidence line


def as_number(value: object) -> float | None:
    """``value`` as a float when it is a JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def volume_entries(results: dict) -> list[dict]:
    """The dict entries of results["volume_stats"] ([] when missing or malformed)."""
    entries = results.get("volume_stats")
    return [entry for entry in entries if isinstance(entry, dict)] \
        if isinstance(entries, list) else []


def listed(items: list[str]) -> str:
    """The first MAX_LISTED items, comma-separated, with how many more there are."""
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def impossible_values(name: str, session: Session) -> list[Finding]:
    """Dice-like metrics outside [0, 1], and a Dice or Jaccard that is NaN or infinite."""
    results, where = session.results, session.label
    bad = []
    overall = results.get("overall") if isinstance(results.get("overall"), dict) else {}
    values = [(f"overall {key}", overall.get(f"mean_{key}"), key) for key in UNIT_METRICS]
    for entry in volume_entries(results):
        values += [(f"{entry.get('filename', '?')} {key}", entry.get(key), key)
                   for key in UNIT_METRICS]
    for label, raw, key in values:
        value = as_number(raw)
        if value is None:
            continue
        if math.isfinite(value) and not 0.0 <= value <= 1.0:
            bad.append(f"{label} {value:.4g}")
        elif not math.isfinite(value) and key in REQUIRED_METRICS:
            bad.append(f"{label} {value}")
    if not bad:
        return []
    return [Finding(name, "impossible-metric",
                    f"{where}: {listed(bad)} (a Dice or Jaccard lies in [0, 1])")]


def jaccard_mismatches(name: str, session: Session) -> list[Finding]:
    """Volumes whose Jaccard is not Dice / (2 - Dice)."""
    bad, pairs = [], []
    for entry in volume_entries(session.results):
        dice, jaccard = as_number(entry.get("dice")), as_number(entry.get("jaccard"))
        if dice is None or jaccard is None or not 0.0 <= dice <= 1.0:
            continue
        expected = dice / (2.0 - dice)
        if not abs(jaccard - expected) <= JACCARD_TOLERANCE:
            bad.append(f"{entry.get('filename', '?')} Dice {dice:.4f} Jaccard {jaccard:.4f} "
                       f"(D/(2-D) = {expected:.4f})")
            pairs.append((json.dumps(entry)[:200], f"jaccard = {expected:.4f}"))
    if not bad:
        return []
    return [Finding(name, "jaccard-not-dice",
                    f"{session.label}: {len(bad)} volumes: {listed(bad)}",
                    passages=tuple(pairs[:MAX_LISTED]))]


def mean_mismatches(name: str, session: Session) -> list[Finding]:
    """Means in "overall" that are not the means of the listed volumes."""
    results, entries = session.results, volume_entries(session.results)
    overall = results.get("overall") if isinstance(results.get("overall"), dict) else {}
    bad = []
    for key, raw in overall.items():
        stated = as_number(raw)
        metric = key.removeprefix("mean_")
        values = [as_number(entry.get(metric)) for entry in entries]
        values = [value for value in values if value is not None and math.isfinite(value)]
        if not key.startswith("mean_") or stated is None or not values:
            continue
        mean = sum(values) / len(values)
        if not abs(stated - mean) <= MEAN_TOLERANCE:
            bad.append(f"{key} {stated:.4f} but the {len(values)} volumes average {mean:.4f}")
    if not bad:
        return []
    return [Finding(name, "mean-not-of-volumes",
                    f"{session.label}: {listed(bad)}")]


def unknown_files(name: str, session: Session, data_dir: Path | None) -> list[Finding]:
    """Test volumes whose file names are not images of the data set."""
    if data_dir is None:
        return []
    known = {path.name for path in (data_dir / "images").iterdir()}
    names = [str(entry.get("filename")) for entry in volume_entries(session.results)]
    missing = [Path(entry).name for entry in names if Path(entry).name not in known]
    if not missing:
        return []
    return [Finding(name, "file-not-in-data-set",
                    f"{session.label}: {len(missing)} of {len(names)} test volumes "
                    f"are not in {data_dir / 'images'}: {listed(missing)}")]


def load_split(session: Session) -> tuple[dict[str, list[str]], str] | None:
    """The student's split and where it was found, or None when it is not handed in.

    The kit writes split.json beside results.json (file names); a course-starter student may
    have stored ``split`` in results.json or its ``config`` (indices or names).
    """
    candidates = []
    split_path = session.folder / SPLIT_FILE
    if split_path.is_file():
        try:
            candidates.append((json.loads(split_path.read_text()),
                               str(Path(session.label).parent / SPLIT_FILE)))
        except json.JSONDecodeError:
            logger.warning("%s is not valid JSON; its split is not checked", split_path)
    config = session.results.get("config")
    candidates.append((session.results.get("split"), f"{session.label}'s split"))
    if isinstance(config, dict):
        candidates.append((config.get("split"), f"{session.label}'s config.split"))
    for split, where in candidates:
        if isinstance(split, dict) and all(isinstance(split.get(part), list)
                                           for part in SPLIT_PARTS):
            return {part: [str(item) for item in split[part]] for part in SPLIT_PARTS}, where
    return None


def split_problems(name: str, session: Session) -> list[Finding]:
    """Test volumes also in train or val, and a test count that differs from the results'."""
    found = load_split(session)
    if found is None:
        return []
    split, where = found
    findings = []
    seen = set(split["train"]) | set(split["val"])
    overlap = sorted(set(split["test"]) & seen)
    if overlap:
        findings.append(Finding(
            name, "split-overlap",
            f"{where}: {len(overlap)} of {len(split['test'])} test volumes are also in train "
            f"or val: {listed(overlap)}",
            passages=((f"test: {listed(split['test'])}",
                       f"train+val: {listed(sorted(seen & set(overlap)))}"),)))
    count = len(volume_entries(session.results))
    if count and count != len(split["test"]):
        findings.append(Finding(
            name, "volume-count",
            f"{session.label} scores {count} test volumes; {where} holds "
            f"{len(split['test'])} test volumes"))
    return findings


def recomputed_dice_mismatches(name: str, session: Session,
                               data_dir: Path | None) -> list[Finding]:
    """Per-volume Dice of the saved predictions (grader/runtime/report.py) against the claims."""
    if data_dir is None or not (session.folder / PREDICTIONS_DIR).is_dir():
        return []
    report = Report(path=session.results_path, text="", session=session.folder,
                    results=session.results)
    try:
        dice = recomputed_dice(report, data_dir / "labels")
    except (ReportError, OSError) as err:
        logger.warning("%s: predictions not recomputed: %s", name, err)
        return []
    claimed = {Path(str(entry.get("filename"))).name: as_number(entry.get("dice"))
               for entry in volume_entries(session.results)}
    bad = [f"{file} claims {claimed.get(file)} but scores {value:.4f}"
           for file, value in dice.items()
           if claimed.get(file) is None or not abs(claimed[file] - value) <= RECOMPUTE_TOLERANCE]
    if not bad:
        return []
    return [Finding(name, "dice-recomputed",
                    f"{len(bad)} of {len(dice)} saved predictions: {listed(bad)}")]


def check_results(name: str, sessions: list[Session], data_dir: Path | None) -> list[Finding]:
    """Every results check over every handed-in results.json of one submission.

    Args:
        name: the submission's name.
        sessions: its results.json files (find_sessions).
        data_dir: the real data set (images/ and labels/), or None when not at hand.

    Returns:
        The findings; a results.json that is not JSON is a finding too.
    """
    findings = []
    for session in sessions:
        if session.results is None:
            findings.append(Finding(name, "results-unreadable",
                                    f"{session.label}: {session.problem}"))
            continue
        findings += (impossible_values(name, session) + jaccard_mismatches(name, session)
                     + mean_mismatches(name, session) + unknown_files(name, session, data_dir)
                     + split_problems(name, session)
                     + recomputed_dice_mismatches(name, session, data_dir))
    return findings

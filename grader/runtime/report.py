"""Check a student's section 2 report (``section2/out/README.md``) against the kit's template.

The template (``section2/out/README.md`` of the kit) fixes the headings and the results table.
A handed-in report keeps every heading, replaces every ``<...>`` placeholder, quotes the means
of its session's ``results.json`` to four decimals, and references figures that exist. Where
the ground-truth labels are at hand, the session's saved predictions are scored again, so the
numbers cannot be typed in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from medpy.metric import binary

TEMPLATE = Path(__file__).resolve().parents[2] / "section2" / "out" / "README.md"
# Read once, at import: the grader imports this module before a test body runs as the
# student user (grader/conftest.py), who may not read the grader's source folder.
TEMPLATE_TEXT = TEMPLATE.read_text() if TEMPLATE.is_file() else ""
PLACEHOLDER = re.compile(r"<(?!!--|/?[a-z]+>|https?://)[^<>\n]{1,120}>")
FIGURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
# A slot of the template to fill, `<n>` included (PLACEHOLDER leaves out tag-like words).
TEMPLATE_SLOT = re.compile(r"<(?!!--)[^<>\n]{1,120}>")
TABLE_ROW = re.compile(r"^\|\s*(?P<label>[^|]+?)\s*\|\s*`?(?P<value>[^|`]*?)`?\s*\|\s*$")
# Results-table rows of the template -> keys of results.json's "overall".
TABLE_KEYS = {"Dice (whole hippocampus)": "mean_dice",
              "Jaccard (whole hippocampus)": "mean_jaccard",
              "Dice, anterior (label 1)": "mean_dice_anterior",
              "Dice, posterior (label 2)": "mean_dice_posterior",
              "Sensitivity": "mean_sensitivity", "Specificity": "mean_specificity"}
REQUIRED_KEYS = ("mean_dice", "mean_jaccard")
QUOTE_TOLERANCE = 0.00051  # the table quotes four decimals: rounding error at most 0.00005
RECOMPUTE_TOLERANCE = 0.001  # Dice recomputed from saved predictions, per volume and mean
PERFORMANCE_DICE = 0.85  # below this mean test Dice the report loses its performance points


class ReportError(ValueError):
    """A report that cannot be checked at all (missing file, unreadable results)."""


@dataclass(frozen=True)
class Report:
    """A parsed report: its text, its folder and its session's results."""

    path: Path
    text: str
    session: Path
    results: dict

    @property
    def folder(self) -> Path:
        return self.path.parent


def fill_template(template: str, overall: dict, figures: list[str],
                  answers: dict[str, list[str]] | None = None, default: str = "example") -> str:
    """The report template with every placeholder filled: the table's numbers from
    ``overall`` (results.json's means), each ``(<file.png>)`` with the next of ``figures``,
    the slots of a list item that starts with a key of ``answers`` with its answers in
    order, and every other placeholder with ``default`` (the instructions' text is kept)."""
    lines, figure_names = [], iter(figures)
    for line in template.splitlines():
        row = TABLE_ROW.match(line.strip())
        if row and row["label"] in TABLE_KEYS:
            line = f"| {row['label']} | `{overall[TABLE_KEYS[row['label']]]:.4f}` |"
        line = re.sub(r"\(<[^>]+>\)", lambda _: f"({next(figure_names)})", line)
        for start, values in (answers or {}).items():
            if line.lstrip("- ").startswith(start):
                given = iter(values)
                line = TEMPLATE_SLOT.sub(lambda match, given=given: next(given, default), line)
        slot = TEMPLATE_SLOT if line.lstrip().startswith(("-", "|")) else PLACEHOLDER
        lines.append(slot.sub(default, line))
    return "\n".join(lines) + "\n"


def headings(text: str) -> list[str]:
    """The ``## `` headings of a Markdown text, in order."""
    return [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]


def find_session(out: Path, text: str) -> Path:
    """The session folder the report names, else the only one under ``out``.

    Raises:
        ReportError: when no session folder with results.json is found, or several are and
            the report names none of them.
    """
    sessions = sorted(path.parent for path in out.rglob("results.json"))
    if not sessions:
        raise ReportError(f"no results.json under {out}; hand in the session folder of your "
                          "final run (section2/out/results/<time>_<name>/)")
    named = [session for session in sessions if session.name in text]
    if len(named) == 1 or len(sessions) == 1:
        return (named or sessions)[0]
    raise ReportError(f"{len(sessions)} session folders under {out} and the report's "
                      "'Session folder' line names none of them (or several)")


def load_report(out: Path) -> Report:
    """Read ``out/README.md`` and its session's results.json.

    Raises:
        ReportError: when the report or a usable results.json is missing.
    """
    path = out / "README.md"
    if not path.is_file():
        raise ReportError(f"{path} is missing; fill in the template section2/out/README.md")
    text = path.read_text(encoding="utf-8", errors="replace")
    session = find_session(out, text)
    try:
        results = json.loads((session / "results.json").read_text())
    except json.JSONDecodeError as err:
        raise ReportError(f"{session / 'results.json'} is not valid JSON: {err}") from err
    if not isinstance(results.get("overall"), dict):
        raise ReportError(f"{session / 'results.json'} has no 'overall' means")
    return Report(path=path, text=text, session=session, results=results)


def structure_problems(report: Report, template: str) -> list[str]:
    """Template headings missing and placeholders left (empty: every section is filled)."""
    problems = [f"heading '## {title}' is missing" for title in headings(template)
                if title not in headings(report.text)]
    return problems + [f"placeholder {match.group(0)} is still there"
                       for match in PLACEHOLDER.finditer(report.text)]


def figure_problems(report: Report, template: str) -> list[str]:
    """Figures fewer than the template asks for, or referenced but not handed in."""
    figures, asked = FIGURE.findall(report.text), len(FIGURE.findall(template))
    problems = [f"{len(figures)} figures referenced; the template asks for {asked}"
                ] if len(figures) < asked else []
    return problems + [f"figure {figure} is referenced but not handed in" for figure in figures
                       if not (report.folder / figure).is_file()]


def quoted_means(text: str) -> dict[str, float]:
    """The results table's numbers: {results.json key: value} for each filled row."""
    quoted = {}
    for line in text.splitlines():
        match = TABLE_ROW.match(line.strip())
        if match and match["label"] in TABLE_KEYS:
            try:
                quoted[TABLE_KEYS[match["label"]]] = float(match["value"])
            except ValueError:
                continue
    return quoted


def quote_problems(report: Report) -> list[str]:
    """Differences between the report's table and its results.json (empty: they agree)."""
    overall, quoted = report.results["overall"], quoted_means(report.text)
    problems = [f"the table gives no number for {key}" for key in REQUIRED_KEYS
                if key not in quoted]
    for key, value in quoted.items():
        if key in overall and abs(value - float(overall[key])) > QUOTE_TOLERANCE:
            problems.append(f"the table's {key} does not match results.json")
    return problems


def recomputed_dice(report: Report, labels_dir: Path) -> dict[str, float]:
    """Whole-hippocampus Dice of every saved prediction against its ground-truth label.

    Args:
        report: the parsed report; predictions are ``session/predictions/<case>.nii.gz``.
        labels_dir: folder of the ground-truth labels, same file names.

    Returns:
        {file name: Dice in [0, 1]} (medpy's dc on label > 0; empty/empty counts as 1.0).

    Raises:
        ReportError: when there are no saved predictions, or a prediction's label is missing
            or of another shape.
    """
    predictions = sorted((report.session / "predictions").glob("*.nii.gz"))
    if not predictions:
        raise ReportError(f"{report.session / 'predictions'} holds no saved predictions")
    dice = {}
    for path in predictions:
        label_path = labels_dir / path.name
        if not label_path.is_file():
            raise ReportError(f"prediction {path.name} has no ground-truth label in {labels_dir}")
        pred = np.asanyarray(nib.load(path).dataobj) > 0
        seg = np.asanyarray(nib.load(label_path).dataobj) > 0
        if pred.shape != seg.shape:
            raise ReportError(f"prediction {path.name} has shape {pred.shape}, its label "
                              f"{seg.shape}: predictions must be cropped to the original shape")
        dice[path.name] = 1.0 if not (pred.any() or seg.any()) else float(binary.dc(pred, seg))
    return dice


def recompute_problems(report: Report, labels_dir: Path) -> list[str]:
    """Differences between results.json and Dice recomputed from the saved predictions."""
    dice = recomputed_dice(report, labels_dir)
    stated = {entry.get("filename"): entry.get("dice")
              for entry in report.results.get("volume_stats", [])}
    problems = [f"{name}: results.json's Dice differs from the saved prediction's"
                for name, value in dice.items()
                if stated.get(name) is None
                or abs(float(stated[name]) - value) > RECOMPUTE_TOLERANCE]
    if abs(np.mean(list(dice.values())) - float(report.results["overall"]["mean_dice"])) \
            > RECOMPUTE_TOLERANCE:
        problems.append("mean_dice in results.json differs from the mean over the saved "
                        "predictions")
    return problems

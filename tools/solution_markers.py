"""How ``solution/`` marks the code and answers a student writes: the one parser of the markers.

In a Python file, every piece of code a student must write sits under a TASK comment::

    # TASK S2.04: Pad `image` with zeros to `new_shape`, keeping it in the top-left corner.
    #   Why: ... In: ... Out: ... Hint: ... Check: pytest grader -k S2.04
    # BEGIN SOLUTION
    ...the reference code...
    # END SOLUTION

or, for one line, ``code  # SOLUTION`` directly under its TASK comment. The TASK comment sits
at the marker's indent, directly above it (other comment lines may come between them). In a
notebook, cells tagged ``solution`` hold reference answers.

``tools/make_skeleton.py`` replaces each marked piece by a stub to write the student skeleton;
``tools/release.py`` looks for the marked lines, and for ``MARKER_TEXT``, in the student
release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
LINE_SUFFIX = "# SOLUTION"
TASK_LINE = re.compile(r"# TASK (?P<id>\S+): (?P<summary>\S.*)$")
TASK_ID = re.compile(r"S\d\.\d{2}$")  # section digit, two-digit number: S2.04
SOLUTION_TAG = "solution"  # notebook cells with this tag hold reference answers
# Marker text in any form (also inside a line, or without its "#"): never in a student file.
MARKER_TEXT = re.compile(r"(BEGIN|END)\s+SOLUTION|#\s*SOLUTION\s*$", re.MULTILINE)


class MarkerError(ValueError):
    """Solution markers that break the grammar; the message names the file and line."""


@dataclass(frozen=True)
class MarkedCode:
    """One marked piece of a solution file and the TASK it answers.

    Line numbers are 1-based lines of the solution file. ``first`` to ``last`` is what a
    skeleton replaces: the BEGIN line to the END line of a block, or the one marked line.
    """

    task_id: str
    summary: str
    task_line: int
    first: int
    last: int
    indent: str
    code: tuple[str, ...]  # the reference code without markers or line endings


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _task_above(lines: list[str], index: int, indent: str,
                where: str) -> tuple[str, str, int]:
    """The TASK comment above ``lines[index]``: (id, summary, its 1-based line).

    Raises:
        MarkerError: when no ``# TASK <id>: <summary>`` comment at ``indent`` sits in the
            comment lines directly above, or its id is not of the form S<digit>.<two digits>.
    """
    above = index - 1
    while (above >= 0 and lines[above].startswith(indent + "#")
           and lines[above].strip() not in (BEGIN, END)):
        match = TASK_LINE.fullmatch(lines[above][len(indent):].rstrip("\r\n"))
        if match:
            if not TASK_ID.match(match["id"]):
                raise MarkerError(f"{where}: TASK id {match['id']!r} is not of the form "
                                  "S<section>.<two digits>, e.g. S2.04")
            return match["id"], match["summary"].strip(), above + 1
        above -= 1
    raise MarkerError(f"{where}: solution marker without a '# TASK <id>: <summary>' "
                      "comment directly above it at the same indent")


def find_marked_code(source: str, path: str) -> list[MarkedCode]:
    """Every marked piece of a solution Python file, in order.

    Args:
        source: the solution file's text.
        path: its path, for messages.

    Returns:
        One ``MarkedCode`` per ``BEGIN``/``END`` block and per ``# SOLUTION`` line.

    Raises:
        MarkerError: on a block that is never closed, an END without a BEGIN, an END at
            another indent than its BEGIN, nested markers, a ``# SOLUTION`` that ends no
            code, or a marker without a well-formed TASK comment above it.
    """
    lines = source.splitlines(keepends=True)
    found: list[MarkedCode] = []
    block: tuple[int, str, tuple[str, str, int]] | None = None  # BEGIN index, indent, TASK
    for index, line in enumerate(lines):
        where = f"{path}:{index + 1}"
        stripped, indent = line.strip(), _indent(line)
        if stripped == BEGIN:
            if block is not None:
                raise MarkerError(f"{where}: '{BEGIN}' inside the block opened at line "
                                  f"{block[0] + 1}; blocks cannot nest")
            block = (index, indent, _task_above(lines, index, indent, where))
        elif stripped == END:
            if block is None:
                raise MarkerError(f"{where}: '{END}' without a '{BEGIN}' above it")
            start, begin_indent, task = block
            if indent != begin_indent:
                raise MarkerError(f"{where}: '{END}' is indented differently from the "
                                  f"'{BEGIN}' at line {start + 1}")
            code = tuple(text.rstrip("\r\n") for text in lines[start + 1:index])
            found.append(MarkedCode(*task, start + 1, index + 1, indent, code))
            block = None
        elif line.rstrip().endswith(LINE_SUFFIX):
            if block is not None:
                raise MarkerError(f"{where}: a '{LINE_SUFFIX}' line inside the block opened "
                                  f"at line {block[0] + 1}; blocks cannot nest")
            if stripped == LINE_SUFFIX:
                raise MarkerError(f"{where}: '{LINE_SUFFIX}' must end a line of code")
            task = _task_above(lines, index, indent, where)
            code = (line.rstrip()[: -len(LINE_SUFFIX)].rstrip(),)
            found.append(MarkedCode(*task, index + 1, index + 1, indent, code))
    if block is not None:
        raise MarkerError(f"{path}:{block[0] + 1}: '{BEGIN}' is never closed by '{END}'")
    return found


def is_solution_cell(cell: dict) -> bool:
    """True when a notebook cell (nbformat 4 JSON) is tagged ``solution``."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def cell_text(cell: dict) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)

"""Write the student skeleton from the reference solution, so that there is one source for both.

``solution/section2/src/`` becomes ``section2/src/`` and ``solution/section1/`` becomes
``section1/``. A student's ``out/`` folder holds their deliverables and run outputs: of it,
only the report template ``out/README.md`` is generated (from the solution's), and nothing in
it is ever removed. The solution marks what a student writes (the grammar is in
``tools/solution_markers.py``): each marked block or line becomes
``raise NotImplementedError("TASK S2.04: <the TASK's first line>")`` at its indent; the marker
lines and the solution code vanish; every other line (the TASK comments included) is kept
byte for byte. A ``README.md`` line ``<!-- TASKS -->`` becomes a table of the tree's TASKs.
In a notebook, cells tagged ``solution`` (reference answers) become blank answer cells.

Every file written starts with a header that names its solution file and says to edit that
one: a ``#`` comment in Python (after a shebang or encoding line), an HTML comment in Markdown,
and in a notebook a first Markdown cell (what Jupyter shows) plus a ``generated_from`` entry in
the notebook's metadata (what Jupyter keeps and tools read). ``tools/release.py`` removes the
header again (``remove_header``): students edit these files.

Nothing is written when a marker is unbalanced or nested, a block has no TASK comment, a TASK
id is malformed or used twice, an output file does not parse, marker text would survive, or a
file has a type that cannot carry the header.

Usage (from the repository root)::

    python tools/make_skeleton.py          # write the skeleton
    python tools/make_skeleton.py --check  # exit 1 with a unified diff if the skeleton is stale
    python tools/make_skeleton.py --list   # print every TASK: id, file, function, summary
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from solution_markers import (
    MARKER_TEXT,
    SOLUTION_TAG,
    MarkerError,
    find_marked_code,
    is_solution_cell,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # the grader: its rules of names never copied and of functions
from grader.runtime.never_copied import NEVER_COPIED, NEVER_COPIED_SUFFIXES  # noqa: E402
from grader.runtime.source_functions import source_functions  # noqa: E402

# (solution folder, student folder), relative to the repository root.
TREES = (("solution/section1", "section1"), ("solution/section2/src", "section2/src"))
# Never read from a solution tree nor written or removed in a student tree: the kit's rule
# of names never copied (caches, run outputs; grader/runtime/never_copied.py).
IGNORED_NAMES = NEVER_COPIED
IGNORED_SUFFIXES = frozenset(NEVER_COPIED_SUFFIXES)
STUDENT_FOLDER = "out"  # a student's deliverables and run outputs, never removed
HAND_IN_TEMPLATE = "out/README.md"  # the one file of out/ that is generated
TABLE_PLACEHOLDER = "<!-- TASKS -->"
BLANK_CELLS = {"markdown": "*Your answer here.*", "code": "# Your code here."}
NOTEBOOK_LAYOUT = {"indent": 1, "ensure_ascii": False}  # nbformat's own JSON layout
# The header of every generated file; {source} is the solution file, from the repository root.
GENERATED_NOTE = ("Generated from {source} by tools/make_skeleton.py; edit that file, then "
                  "run the tool.")
HEADER_LINES = {".py": "# {note}\n", ".md": "<!-- {note} -->\n"}
HEADER_CELL_ID = "generated-from-solution"  # the notebook's first cell, holding the note
HEADER_METADATA_KEY = "generated_from"  # notebook metadata: the solution file
# A shebang, or a PEP 263 encoding line: both must stay on the first two lines.
PREAMBLE_LINE = re.compile(r"#!|[ \t\f]*#.*?coding[:=]")


class SkeletonError(MarkerError):
    """A solution that cannot be turned into a skeleton; the message names file and line."""


@dataclass(frozen=True)
class Task:
    """One TASK of the solution: its id, one-line summary and where it lives."""

    id: str
    summary: str
    path: str  # relative to the student tree, e.g. "utils/utils.py"
    line: int  # 1-based line of the TASK comment in the solution file
    function: str  # enclosing function or method, e.g. "UNetExperiment.train"

    @property
    def stub(self) -> str:
        """The statement that replaces the block."""
        return stub_statement(self.id, self.summary)


def stub_statement(task_id: str, summary: str) -> str:
    """``raise NotImplementedError("TASK <id>: <summary>")`` as source."""
    return f"raise NotImplementedError({json.dumps(f'TASK {task_id}: {summary}')})"


def _functions_by_line(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function in ``source``."""
    return [(node.lineno, node.end_lineno, name)
            for name, node in source_functions(ast.parse(source))]


def _refuse_marker_text(text: str, path: str) -> None:
    """Raise SkeletonError when ``text`` holds solution marker text (see MARKER_TEXT)."""
    survivor = MARKER_TEXT.search(text)
    if survivor:
        line_number = text.count("\n", 0, survivor.start()) + 1
        raise SkeletonError(f"{path}: marker text {survivor.group(0)!r} would survive into the "
                            f"skeleton at its line {line_number}; markers work only on lines "
                            "of their own in Python files")


def strip_solution(source: str, path: str) -> tuple[str, list[Task]]:
    """Turn one solution Python file into its skeleton (without the generated header).

    Args:
        source: the solution file's text.
        path: its path for messages and for ``Task.path``.

    Returns:
        (skeleton text, the file's TASKs in order).

    Raises:
        MarkerError: on markers that break the grammar (see ``find_marked_code``).
        SkeletonError: on a skeleton that does not parse or marker text that survives.
    """
    lines = source.splitlines(keepends=True)
    kept: list[str] = []
    position = 0  # index of the first solution line not yet kept or replaced
    marked = find_marked_code(source, path)
    for piece in marked:
        kept += lines[position:piece.first - 1]
        kept.append(piece.indent + stub_statement(piece.task_id, piece.summary) + "\n")
        position = piece.last
    skeleton = "".join(kept + lines[position:])
    _refuse_marker_text(skeleton, path)
    try:
        ast.parse(skeleton, filename=path)
    except SyntaxError as err:
        raise SkeletonError(f"{path}: the skeleton does not parse at its line {err.lineno}: "
                            f"{err.msg}; check the markers' indent") from err

    spans = _functions_by_line(source)
    tasks = []
    for piece in marked:
        enclosing = [name for first, last, name in spans if first <= piece.task_line <= last]
        tasks.append(Task(piece.task_id, piece.summary, path, piece.task_line,
                          enclosing[-1] if enclosing else ""))
    return skeleton, tasks


def _dump_notebook(notebook: dict) -> str:
    return json.dumps(notebook, **NOTEBOOK_LAYOUT) + "\n"


def strip_notebook(source: str, path: str) -> str:
    """Turn a solution notebook into the student's: cells tagged "solution" become blanks.

    A markdown cell tagged ``solution`` (a reference answer) becomes "*Your answer here.*", a
    code cell tagged so becomes "# Your code here."; every other cell is kept as it is.

    Raises:
        SkeletonError: when the notebook is not valid JSON or marker text survives.
    """
    try:
        notebook = json.loads(source)
    except json.JSONDecodeError as err:
        raise SkeletonError(f"{path} is not a valid notebook: {err}") from err
    for cell in notebook.get("cells", []):
        if is_solution_cell(cell):
            tags = [tag for tag in cell["metadata"]["tags"] if tag != SOLUTION_TAG]
            if tags:
                cell["metadata"]["tags"] = tags
            else:
                del cell["metadata"]["tags"]
            cell["source"] = [BLANK_CELLS.get(cell["cell_type"], "")]
    text = _dump_notebook(notebook)
    _refuse_marker_text(text, path)
    return text


def task_table(tasks: list[Task]) -> str:
    """A Markdown table of TASKs: id, file, function, what to do."""
    rows = ["| TASK | file | function | what to do |", "|---|---|---|---|"]
    rows += [f"| {t.id} | `{t.path}` | `{t.function}` | {t.summary.replace('|', '/')} |"
             for t in tasks]
    return "\n".join(rows)


def source_path(target: str, trees=TREES) -> str:
    """The solution file a student file is generated from, e.g. ``section1/eda.py`` ->
    ``solution/section1/eda.py`` (both relative to the repository root).

    Raises:
        SkeletonError: when ``target`` is in no student tree.
    """
    for source_dir, target_dir in trees:
        if target.startswith(target_dir + "/"):
            return source_dir + target[len(target_dir):]
    raise SkeletonError(f"{target} is in no student folder of make_skeleton "
                        f"({', '.join(target_dir for _, target_dir in trees)})")


def _header_cell(note: str) -> dict:
    return {"cell_type": "markdown", "id": HEADER_CELL_ID, "metadata": {},
            "source": [f"*{note}*"]}


def _header_line(target: str, source: str) -> str:
    """The header line of a Python or Markdown file, with its line ending.

    Raises:
        SkeletonError: for a file type that cannot carry a header.
    """
    suffix = Path(target).suffix
    if suffix not in HEADER_LINES:
        raise SkeletonError(f"{source}: a {suffix or 'suffix-less'} file cannot say that it "
                            "is generated; make_skeleton writes .py, .md and .ipynb files")
    return HEADER_LINES[suffix].format(note=GENERATED_NOTE.format(source=source))


def _header_index(lines: list[str]) -> int:
    """Where a Python header goes: after a shebang and an encoding line, if any."""
    index = 0
    while index < min(len(lines), 2) and PREAMBLE_LINE.match(lines[index]):
        index += 1
    return index


def add_header(target: str, source: str, data: bytes) -> bytes:
    """A student file with the header that names its solution file (see the module docstring).

    Args:
        target: the student file's path, e.g. ``section1/eda.py``; its suffix picks the form.
        source: the solution file it is generated from, e.g. ``solution/section1/eda.py``.
        data: the file's content (UTF-8) without the header.

    Raises:
        SkeletonError: for a file type that cannot carry a header.
    """
    text = data.decode("utf-8")
    if target.endswith(".ipynb"):
        notebook = json.loads(text)
        notebook.setdefault("cells", []).insert(0, _header_cell(GENERATED_NOTE.format(
            source=source)))
        notebook.setdefault("metadata", {})[HEADER_METADATA_KEY] = source
        return _dump_notebook(notebook).encode("utf-8")
    lines = text.splitlines(keepends=True)
    index = _header_index(lines) if target.endswith(".py") else 0
    lines.insert(index, _header_line(target, source))
    return "".join(lines).encode("utf-8")


def remove_header(target: str, source: str, data: bytes) -> bytes:
    """The inverse of ``add_header``: the student file as a student gets it.

    Raises:
        SkeletonError: when ``data`` does not carry the header of ``source``.
    """
    text = data.decode("utf-8")
    if target.endswith(".ipynb"):
        notebook = json.loads(text)
        cells = notebook.get("cells", [])
        if (not cells or cells[0].get("id") != HEADER_CELL_ID
                or notebook.get("metadata", {}).pop(HEADER_METADATA_KEY, None) != source):
            raise SkeletonError(f"{target} lacks the generated header naming {source}")
        del cells[0]
        return _dump_notebook(notebook).encode("utf-8")
    lines = text.splitlines(keepends=True)
    index = _header_index(lines) if target.endswith(".py") else 0
    if lines[index:index + 1] != [_header_line(target, source)]:
        raise SkeletonError(f"{target} lacks the generated header naming {source} at its "
                            f"line {index + 1}")
    del lines[index]
    return "".join(lines).encode("utf-8")


def _tree_files(folder: Path, student_files: frozenset[str]) -> list[Path]:
    """Files under ``folder`` in a fixed order, without caches and run outputs; of the
    ``out/`` folder, only those in ``student_files`` (paths relative to ``folder``)."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if (path.is_file() and not IGNORED_NAMES.intersection(parts)
                and path.suffix not in IGNORED_SUFFIXES
                and (parts[0] != STUDENT_FOLDER
                     or path.relative_to(folder).as_posix() in student_files)):
            found.append(path)
    return found


def _student_file(path: Path, relative: str, source: str) -> tuple[bytes, list[Task]]:
    """One student file without its header, and the TASKs of its solution file.

    Raises:
        MarkerError: on any defect of the solution file (see ``strip_solution``).
    """
    text = path.read_bytes().decode("utf-8")
    if path.suffix == ".py":
        text, tasks = strip_solution(text, relative)
        return text.encode("utf-8"), tasks
    if path.suffix == ".ipynb":
        return strip_notebook(text, source).encode("utf-8"), []
    _refuse_marker_text(text, source)
    return text.encode("utf-8"), []


def build(repo: Path, trees=TREES) -> tuple[dict[str, bytes], list[Task]]:
    """Every student file as bytes, keyed by its path relative to ``repo``, and every TASK.

    Raises:
        MarkerError: on any defect of a solution file (see ``strip_solution``), a TASK id
            used twice, a missing solution folder, or a file that cannot carry a header.
    """
    outputs: dict[str, bytes] = {}
    all_tasks: list[Task] = []
    for source_dir, target_dir in trees:
        source_root = repo / source_dir
        if not source_root.is_dir():
            raise SkeletonError(f"solution folder {source_root} does not exist")
        tree_tasks: list[Task] = []
        for path in _tree_files(source_root, frozenset({HAND_IN_TEMPLATE})):
            relative = path.relative_to(source_root).as_posix()
            data, tasks = _student_file(path, relative, f"{source_dir}/{relative}")
            outputs[f"{target_dir}/{relative}"] = data
            tree_tasks += tasks
        table = task_table(tree_tasks).encode("utf-8")
        for target in outputs:
            if target.startswith(target_dir + "/") and Path(target).name == "README.md":
                outputs[target] = outputs[target].replace(TABLE_PLACEHOLDER.encode(), table)
        all_tasks += tree_tasks
    seen: dict[str, Task] = {}
    for task in all_tasks:
        if task.id in seen:
            raise SkeletonError(f"TASK {task.id} is used twice: {seen[task.id].path}:"
                                f"{seen[task.id].line} and {task.path}:{task.line}")
        seen[task.id] = task
    return {target: add_header(target, source_path(target, trees), data)
            for target, data in outputs.items()}, all_tasks


def stale_files(repo: Path, outputs: dict[str, bytes], trees=TREES) -> list[str]:
    """Files in the student folders that the generator would not write (to be removed);
    never a file of a student's ``out/`` folder."""
    stale = []
    for _, target_dir in trees:
        if (repo / target_dir).is_dir():
            stale += [path.relative_to(repo).as_posix()
                      for path in _tree_files(repo / target_dir, frozenset())
                      if path.relative_to(repo).as_posix() not in outputs]
    return stale


def out_of_date(repo: Path, outputs: dict[str, bytes], trees=TREES) -> list[str]:
    """The student files, relative to ``repo`` and sorted, that differ from ``outputs``: those
    missing or changed on disk, and those the generator would remove."""
    changed = [relative for relative, data in outputs.items()
               if not (repo / relative).is_file() or (repo / relative).read_bytes() != data]
    return sorted(changed + stale_files(repo, outputs, trees))


def differences(repo: Path, outputs: dict[str, bytes], trees=TREES) -> str:
    """A unified diff from the student files on disk to what the generator would write."""
    chunks = []
    for relative in out_of_date(repo, outputs, trees):
        if relative not in outputs:
            chunks.append(f"--- a/{relative}\n+++ /dev/null\n(file would be removed)\n")
            continue
        path = repo / relative
        old = path.read_bytes() if path.is_file() else None
        chunks += difflib.unified_diff(
            (old or b"").decode("utf-8", errors="replace").splitlines(keepends=True),
            outputs[relative].decode("utf-8", errors="replace").splitlines(keepends=True),
            fromfile=f"a/{relative}" if old is not None else "/dev/null",
            tofile=f"b/{relative}")
    return "".join(chunk if chunk.endswith("\n") else chunk + "\n" for chunk in chunks)


def write(repo: Path, outputs: dict[str, bytes], trees=TREES) -> list[str]:
    """Write the student files that changed and remove stale ones; return what changed."""
    changed = out_of_date(repo, outputs, trees)
    for relative in changed:
        path = repo / relative
        if relative in outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(outputs[relative])
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 with a diff if the skeleton is stale "
                             "(default: False)")
    action.add_argument("--list", action="store_true",
                        help="print every TASK and exit (default: False)")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help=f"repository root (default: {REPO})")
    args = parser.parse_args(argv)
    try:
        outputs, tasks = build(args.repo)
    except MarkerError as err:
        print(f"make_skeleton: nothing written: {err}", file=sys.stderr)
        return 2
    if args.list:
        for task in tasks:
            print(f"{task.id}\t{task.path}\t{task.function}\t{task.summary}")
        return 0
    if args.check:
        diff = differences(args.repo, outputs)
        if diff:
            print(diff, end="")
            print("make_skeleton: the student skeleton is stale; run "
                  "`python tools/make_skeleton.py` and commit the result", file=sys.stderr)
            return 1
        print(f"make_skeleton: skeleton up to date ({len(outputs)} files, {len(tasks)} TASKs)")
        return 0
    changed = write(args.repo, outputs)
    print(f"make_skeleton: {len(changed)} of {len(outputs)} files changed, {len(tasks)} TASKs")
    for relative in changed:
        print(f"  {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

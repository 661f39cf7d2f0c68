"""Write the student skeleton from the reference solution, so that there is one source for both.

``solution/section2/src/`` becomes ``section2/src/`` and ``solution/section1/`` becomes
``section1/`` (whose ``out/`` folder belongs to the student and is never touched). In a Python
file, every piece of code a student must write is marked in the solution::

    # TASK S2.04: Pad `image` with zeros to `new_shape`, keeping it in the top-left corner.
    #   Why: ... In: ... Out: ... Hint: ... Check: pytest grader -k S2.04
    # BEGIN SOLUTION
    ...the reference code...
    # END SOLUTION

or, for one line, ``code  # SOLUTION`` under its TASK comment. Each marked block becomes
``raise NotImplementedError("TASK S2.04: <the TASK's first line>")`` at the block's indent;
the marker lines and the solution code vanish; every other line (the TASK comments included) is
kept byte for byte. A ``README.md`` line ``<!-- TASKS -->`` becomes a table of the tree's TASKs.
In a notebook, cells tagged ``solution`` (reference answers) become blank answer cells. Other
files are copied as they are.

Nothing is written when a marker is unbalanced or nested, a block has no TASK comment, a TASK
id is malformed or used twice, an output file does not parse, or marker text would survive.

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

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # the grader: its rules of names never copied and of functions
from grader.runtime.never_copied import NEVER_COPIED, NEVER_COPIED_SUFFIXES  # noqa: E402
from grader.runtime.source_functions import source_functions  # noqa: E402

# (solution folder, student folder), relative to the repository root.
TREES = (("solution/section1", "section1"), ("solution/section2/src", "section2/src"))
# Never read from a solution tree nor written or removed in a student tree: the kit's rule
# (caches, run outputs) plus section 1's out/ (the student's deliverables).
IGNORED_NAMES = NEVER_COPIED | {"out"}
IGNORED_SUFFIXES = frozenset(NEVER_COPIED_SUFFIXES)

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
LINE_SUFFIX = "# SOLUTION"
TASK_LINE = re.compile(r"# TASK (?P<id>\S+): (?P<summary>\S.*)$")
TASK_ID = re.compile(r"S\d\.\d{2}$")  # section digit, two-digit number: S2.04
TABLE_PLACEHOLDER = "<!-- TASKS -->"
SOLUTION_TAG = "solution"  # notebook cells with this tag hold reference answers
BLANK_CELLS = {"markdown": "*Your answer here.*", "code": "# Your code here."}
# Marker text in any form that must not reach a student file.
SURVIVOR = re.compile(r"#\s*(BEGIN|END)\s+SOLUTION|#\s*SOLUTION\s*$", re.MULTILINE)


class SkeletonError(ValueError):
    """A solution file that cannot be turned into a skeleton; the message names file and line."""


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


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _task_above(kept: list[str], indent: str, where: str) -> tuple[str, str, int]:
    """The TASK comment directly above a block: (id, summary, index of its line in ``kept``).

    Raises:
        SkeletonError: when no ``# TASK <id>: <summary>`` comment at the block's indent sits
            directly above it.
    """
    index = len(kept) - 1
    while index >= 0 and kept[index].startswith(indent + "#"):
        match = TASK_LINE.fullmatch(kept[index][len(indent):].rstrip("\r\n"))
        if match:
            if not TASK_ID.match(match["id"]):
                raise SkeletonError(f"{where}: TASK id {match['id']!r} is not of the form "
                                    "S<section>.<two digits>, e.g. S2.04")
            return match["id"], match["summary"].strip(), index
        index -= 1
    raise SkeletonError(f"{where}: solution marker without a '# TASK <id>: <summary>' "
                        "comment directly above it at the same indent")


def _functions_by_line(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function in ``source``."""
    return [(node.lineno, node.end_lineno, name)
            for name, node in source_functions(ast.parse(source))]


def strip_solution(source: str, path: str) -> tuple[str, list[Task]]:
    """Turn one solution Python file into its skeleton.

    Args:
        source: the solution file's text.
        path: its path for messages and for ``Task.path``.

    Returns:
        (skeleton text, the file's TASKs in order).

    Raises:
        SkeletonError: on unbalanced or nested markers, a block without a TASK comment, a
            malformed TASK id, a skeleton that does not parse, or marker text that survives.
    """
    kept: list[str] = []
    found: list[tuple[str, str, int]] = []  # id, summary, 1-based solution line of the TASK
    solution_line_of: list[int] = []  # for each kept line, its line number in the solution
    block_start: tuple[int, str] | None = None  # (line number, indent) of an open BEGIN

    def replace_by_stub(number: int, indent: str, where: str) -> None:
        """Record the TASK above line ``number`` and keep its stub in place of the block."""
        task_id, summary, index = _task_above(kept, indent, where)
        found.append((task_id, summary, solution_line_of[index]))
        kept.append(indent + stub_statement(task_id, summary) + "\n")
        solution_line_of.append(number)

    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        where = f"{path}:{number}"
        stripped = line.strip()
        indent = _indent(line)
        if stripped == BEGIN:
            if block_start is not None:
                raise SkeletonError(f"{where}: '{BEGIN}' inside the block opened at line "
                                    f"{block_start[0]}; blocks cannot nest")
            replace_by_stub(number, indent, where)
            block_start = (number, indent)
        elif stripped == END:
            if block_start is None:
                raise SkeletonError(f"{where}: '{END}' without a '{BEGIN}' above it")
            if indent != block_start[1]:
                raise SkeletonError(f"{where}: '{END}' is indented differently from the "
                                    f"'{BEGIN}' at line {block_start[0]}")
            block_start = None
        elif line.rstrip().endswith(LINE_SUFFIX):
            if block_start is not None:
                raise SkeletonError(f"{where}: a '{LINE_SUFFIX}' line inside the block opened "
                                    f"at line {block_start[0]}; blocks cannot nest")
            if stripped == LINE_SUFFIX:
                raise SkeletonError(f"{where}: '{LINE_SUFFIX}' must end a line of code")
            replace_by_stub(number, indent, where)
        elif block_start is None:
            kept.append(line)
            solution_line_of.append(number)
    if block_start is not None:
        raise SkeletonError(f"{path}:{block_start[0]}: '{BEGIN}' is never closed by '{END}'")

    skeleton = "".join(kept)
    survivor = SURVIVOR.search(skeleton)
    if survivor:
        line_number = skeleton.count("\n", 0, survivor.start()) + 1
        raise SkeletonError(f"{path}: marker text {survivor.group(0)!r} would survive into the "
                            f"skeleton at its line {line_number}; put markers on lines of "
                            "their own")
    try:
        ast.parse(skeleton, filename=path)
    except SyntaxError as err:
        raise SkeletonError(f"{path}: the skeleton does not parse at its line {err.lineno}: "
                            f"{err.msg}; check the markers' indent") from err

    spans = _functions_by_line(source)
    tasks = []
    for task_id, summary, line in found:
        enclosing = [name for first, last, name in spans if first <= line <= last]
        tasks.append(Task(task_id, summary, path, line, enclosing[-1] if enclosing else ""))
    return skeleton, tasks


def strip_notebook(source: str, path: str) -> str:
    """Turn a solution notebook into the student's: cells tagged "solution" become blanks.

    A markdown cell tagged ``solution`` (a reference answer) becomes "*Your answer here.*", a
    code cell tagged so becomes "# Your code here."; every other cell is kept as it is.

    Raises:
        SkeletonError: when the notebook is not valid JSON or Python marker text survives.
    """
    try:
        notebook = json.loads(source)
    except json.JSONDecodeError as err:
        raise SkeletonError(f"{path} is not a valid notebook: {err}") from err
    for cell in notebook.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG in tags:
            cell["metadata"]["tags"] = [tag for tag in tags if tag != SOLUTION_TAG]
            if not cell["metadata"]["tags"]:
                del cell["metadata"]["tags"]
            cell["source"] = [BLANK_CELLS.get(cell["cell_type"], "")]
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"  # nbformat's own layout
    if SURVIVOR.search(text):
        raise SkeletonError(f"{path}: solution markers work only in Python files; they would "
                            "survive here")
    return text


def task_table(tasks: list[Task]) -> str:
    """A Markdown table of TASKs: id, file, function, what to do."""
    rows = ["| TASK | file | function | what to do |", "|---|---|---|---|"]
    rows += [f"| {t.id} | `{t.path}` | `{t.function}` | {t.summary.replace('|', '/')} |"
             for t in tasks]
    return "\n".join(rows)


def _source_files(folder: Path) -> list[Path]:
    """Files under ``folder`` that belong to the skeleton, in a fixed order."""
    return sorted(path for path in folder.rglob("*") if path.is_file()
                  and not IGNORED_NAMES.intersection(path.relative_to(folder).parts)
                  and path.suffix not in IGNORED_SUFFIXES)


def build(repo: Path, trees=TREES) -> tuple[dict[str, bytes], list[Task]]:
    """Every student file as bytes, keyed by its path relative to ``repo``, and every TASK.

    Raises:
        SkeletonError: on any defect of a solution file (see ``strip_solution``), a TASK id
            used twice, or a missing solution folder.
    """
    outputs: dict[str, bytes] = {}
    all_tasks: list[Task] = []
    for source_dir, target_dir in trees:
        source_root = repo / source_dir
        if not source_root.is_dir():
            raise SkeletonError(f"solution folder {source_root} does not exist")
        tree_tasks: list[Task] = []
        readmes = []
        for path in _source_files(source_root):
            relative = path.relative_to(source_root).as_posix()
            target = f"{target_dir}/{relative}"
            data = path.read_bytes()
            if path.suffix == ".py":
                text, tasks = strip_solution(data.decode("utf-8"), relative)
                tree_tasks += tasks
                data = text.encode("utf-8")
            elif path.suffix == ".ipynb":
                data = strip_notebook(data.decode("utf-8"), f"{source_dir}/{relative}").encode()
            elif SURVIVOR.search(data.decode("utf-8", errors="replace")):
                raise SkeletonError(f"{source_dir}/{relative}: solution markers work only in "
                                    "Python files; they would survive here")
            if path.name == "README.md":
                readmes.append(target)
            outputs[target] = data
        for target in readmes:
            text = outputs[target].decode("utf-8")
            outputs[target] = text.replace(TABLE_PLACEHOLDER, task_table(tree_tasks)).encode()
        all_tasks += tree_tasks
    seen: dict[str, Task] = {}
    for task in all_tasks:
        if task.id in seen:
            raise SkeletonError(f"TASK {task.id} is used twice: {seen[task.id].path}:"
                                f"{seen[task.id].line} and {task.path}:{task.line}")
        seen[task.id] = task
    return outputs, all_tasks


def stale_files(repo: Path, outputs: dict[str, bytes], trees=TREES) -> list[str]:
    """Files in the student folders that the generator would not write (to be removed)."""
    stale = []
    for _, target_dir in trees:
        if (repo / target_dir).is_dir():
            stale += [path.relative_to(repo).as_posix()
                      for path in _source_files(repo / target_dir)
                      if path.relative_to(repo).as_posix() not in outputs]
    return stale


def differences(repo: Path, outputs: dict[str, bytes], trees=TREES) -> str:
    """A unified diff from the student files on disk to what the generator would write."""
    chunks = []
    for relative, data in outputs.items():
        path = repo / relative
        old = path.read_bytes() if path.is_file() else None
        if old == data:
            continue
        chunks += difflib.unified_diff(
            (old or b"").decode("utf-8", errors="replace").splitlines(keepends=True),
            data.decode("utf-8", errors="replace").splitlines(keepends=True),
            fromfile=f"a/{relative}" if old is not None else "/dev/null",
            tofile=f"b/{relative}")
    for relative in stale_files(repo, outputs, trees):
        chunks.append(f"--- a/{relative}\n+++ /dev/null\n(file would be removed)\n")
    return "".join(chunk if chunk.endswith("\n") else chunk + "\n" for chunk in chunks)


def write(repo: Path, outputs: dict[str, bytes], trees=TREES) -> list[str]:
    """Write the student files that changed and remove stale ones; return what changed."""
    changed = []
    for relative in stale_files(repo, outputs, trees):
        (repo / relative).unlink()
        changed.append(relative)
    for relative, data in outputs.items():
        path = repo / relative
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            changed.append(relative)
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
    except SkeletonError as err:
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

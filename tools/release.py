"""Build the student release and the Gradescope autograder from this kit.

    python tools/release.py [--out dist]   # dist/student/, student.zip, autograder.zip

First the skeleton check of ``tools/make_skeleton.py``: a stale skeleton is refused and nothing
is written. ``student/`` (and ``student.zip``) holds the student README, ``requirements.txt``,
``section1/``, ``section2/`` without run outputs, ``tools/get_data.py`` and
``tools/hippocampus_kit.py`` (where the data is), the grader's runtime and public tests
(chosen by folder: ``GRADER_FOLDERS``), and a ``pytest.ini``; every text file in it is then
scanned for solution marker text and for the lines ``solution/`` marks as reference answers
(code blocks and lines, notebook answer cells: the grammar of ``tools/solution_markers.py``),
and a hit removes this run's output. The generated files of ``section1/`` and ``section2/src/``
ship without their "Generated from solution/..." header: it is a note for the kit's
maintainers, and students edit these files. ``autograder.zip`` follows Gradescope's layout
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): ``setup.sh`` and
``run_autograder`` at its root, the grader with its hidden tests, and what the grader reads at
run time. It holds no ``solution/``: a submission is graded without one, and the kit's own
tests (``grader/kit/``) never run on a submission. Both zips are deterministic (sorted entries,
fixed dates and modes). The templates live in ``tools/release/``.

``--data DIR`` ships a copy of the data set (DIR holds ``images/`` and ``labels/``, e.g. the
course's copy that the real-data tests were written for) in ``autograder.zip`` as
``data/TrainingSet/`` with a ``data/SHA256SUMS`` that ``setup.sh`` checks; without it,
``setup.sh`` downloads the MSD release.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import make_skeleton
from solution_markers import MARKER_TEXT, MarkerError, cell_text, find_marked_code, is_solution_cell

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
TEMPLATES = TOOLS / "release"
sys.path.append(str(REPO))  # the grader package: its rule of names never copied
from grader.runtime.never_copied import NEVER_COPIED  # noqa: E402

# Never shipped from any tree: NEVER_COPIED (caches, run outputs), and model weights and data.
CACHE_SUFFIXES = (".pyc",)
DATA_SUFFIXES = (".pyc", ".pth", ".tmp", ".nii", ".nii.gz", ".tar")
# Student release: folders shipped whole (less run outputs), single files, and templates
# (release name -> file in tools/release/).
STUDENT_TREES = ("section1", "section2/src", "section2/out")
RUN_OUTPUTS = ("section1/out/results/", "section2/out/results/")
STUDENT_FILES = ("requirements.txt", "tools/get_data.py", "tools/hippocampus_kit.py")
STUDENT_TEMPLATES = {"README.md": "student_README.md", "pytest.ini": "pytest.ini",
                     ".gitignore": "gitignore"}
HAND_IN_TEMPLATES = ("section1/out/README.md", "section2/out/README.md")
# The grader ships by folder (grader/README.md, "Layout"): the files directly in grader/ (the
# pytest plugin, points.json; not the instructors' README) and runtime/ go with every grading
# run, public/ to students too, hidden/ (tests and reference answers) only to the autograder;
# batch/, mutants/ and kit/ never leave the instructors.
GRADER = "grader"
GRADER_TOP_SUFFIXES = (".py", ".json")
GRADER_FOLDERS = {"student": ("runtime", "public"), "autograder": ("runtime", "public", "hidden")}
# Autograder: the grader, plus what it reads at run time.
AUTOGRADER_FILES = ("requirements.txt", "tools/get_data.py",
                    "tools/hippocampus_kit.py")  # and HAND_IN_TEMPLATES
AUTOGRADER_TEMPLATES = {name: name for name in ("setup.sh", "run_autograder", "pytest.ini",
                                                "README_autograder.md")}
EXECUTABLE = frozenset({"setup.sh", "run_autograder"})
# Paths that must never reach a student.
INSTRUCTOR_ONLY = ("solution/", "grader/hidden/", "grader/kit/", "grader/mutants/",
                   "grader/batch/", "tools/make_skeleton.py", "tools/solution_markers.py",
                   "tools/release.py", "tools/benchmark.py", "tools/benchmark_integrity.py",
                   "tools/release/")
MIN_LEAK_CHARS = 26  # shorter solution lines (`return dice`, `x = x.float()`) are too common
TORCH_PIN = re.compile(r"^torch==(?P<version>[\w.]+)\s*$", re.MULTILINE)
PLACEHOLDER = re.compile(r"@[A-Z_]+@")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
UNIX = 3  # zip "made by" system whose external_attr carries Unix permission bits


class ReleaseError(RuntimeError):
    """A release that must not be built; the message says why and what to do."""


def check_skeleton(repo: Path) -> set[str]:
    """Refuse a student skeleton that differs from what the solution generates.

    Returns:
        The generated files, relative to ``repo``.

    Raises:
        ReleaseError: when the skeleton is stale or the solution's markers are broken.
    """
    try:
        outputs, _ = make_skeleton.build(repo)
    except MarkerError as err:
        raise ReleaseError(f"the solution cannot be turned into a skeleton: {err}") from err
    stale = make_skeleton.out_of_date(repo, outputs)
    if stale:
        raise ReleaseError("the student skeleton is stale (these files differ from what "
                           f"the solution generates: {', '.join(stale)}); run "
                           "`python tools/make_skeleton.py`, review and commit the result")
    return set(outputs)


def shipped(repo: Path, paths: list[str], generated: set[str]) -> dict[str, bytes]:
    """The files ``paths`` of ``repo`` as they ship: a generated file without its header."""
    files = {path: (repo / path).read_bytes() for path in paths}
    return {path: make_skeleton.remove_header(path, make_skeleton.source_path(path), data)
            if path in generated else data for path, data in files.items()}


def files_under(repo: Path, folder: str, suffixes: tuple[str, ...] = DATA_SUFFIXES,
                skipped: tuple[str, ...] = ()) -> list[str]:
    """Files under ``repo/folder`` as sorted repo-relative paths, without caches and outputs."""
    found = []
    for path in (repo / folder).rglob("*"):
        relative = path.relative_to(repo).as_posix()
        if (path.is_file() and not path.is_symlink()
                and not NEVER_COPIED.intersection(path.relative_to(repo).parts)
                and not relative.endswith(suffixes) and not relative.startswith(skipped)):
            found.append(relative)
    return sorted(found)


def grader_files(repo: Path, release: str) -> list[str]:
    """The grader's files in ``release`` ("student" or "autograder"), by folder: those directly
    in grader/ with a suffix of ``GRADER_TOP_SUFFIXES``, and every file of the release's
    ``GRADER_FOLDERS``."""
    top = sorted(path.relative_to(repo).as_posix() for path in (repo / GRADER).iterdir()
                 if path.is_file() and path.name.endswith(GRADER_TOP_SUFFIXES))
    return top + [path for folder in GRADER_FOLDERS[release]
                  for path in files_under(repo, f"{GRADER}/{folder}", CACHE_SUFFIXES)]


def require(repo: Path, paths: list[str]) -> None:
    """Raise ReleaseError naming every path of ``paths`` that is not a file of ``repo``."""
    missing = [path for path in paths if not (repo / path).is_file()]
    if missing:
        raise ReleaseError(f"missing from {repo}: {', '.join(missing)}")


def template(name: str, values: dict[str, str]) -> bytes:
    """A file of ``tools/release/`` with its ``@KEY@`` placeholders filled in."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = PLACEHOLDER.search(text)
    if left:
        raise ReleaseError(f"tools/release/{name}: placeholder {left.group(0)} has no value")
    return text.encode("utf-8")


def points_table(repo: Path) -> str:
    """A Markdown table of ``grader/points.json``: TASK, points, what it is about."""
    manifest = json.loads((repo / "grader" / "points.json").read_text(encoding="utf-8"))
    rows = ["| TASK | points | what |", "|---|---|---|"]
    rows += [f"| {task} | {entry['points']} | {entry['title']} |"
             for task, entry in manifest["tasks"].items()]
    total = sum(entry["points"] for entry in manifest["tasks"].values())
    return "\n".join(rows + [f"| total | {total:g} | |"])


def student_files(repo: Path, generated: set[str]) -> dict[str, bytes]:
    """Every file of the student release, keyed by its path in the release; ``generated``
    names the files of make_skeleton (relative to ``repo``), which ship without their header.

    Raises:
        ReleaseError: when an instructor-only path would be shipped.
    """
    paths = [path for tree in STUDENT_TREES
             for path in files_under(repo, tree, skipped=RUN_OUTPUTS)]
    paths += list(STUDENT_FILES) + grader_files(repo, "student")
    require(repo, paths)
    instructor = sorted(path for path in paths if path.startswith(INSTRUCTOR_ONLY))
    if instructor:
        raise ReleaseError(f"instructor-only files would ship: {', '.join(instructor)} (they "
                           "sit in a student folder)")
    files = shipped(repo, paths, generated)
    values = {"POINTS_TABLE": points_table(repo)}
    files.update({name: template(source, values) for name, source in STUDENT_TEMPLATES.items()})
    return files


def autograder_files(repo: Path, generated: set[str]) -> dict[str, bytes]:
    """Every file of ``autograder.zip``, keyed by its path below ``/autograder/source``;
    ``generated`` as in ``student_files``.

    Raises:
        ReleaseError: when requirements.txt pins no torch version for setup.sh.
    """
    require(repo, list(AUTOGRADER_FILES))
    pin = TORCH_PIN.search((repo / "requirements.txt").read_text(encoding="utf-8"))
    if pin is None:
        raise ReleaseError("requirements.txt has no `torch==<version>` line; setup.sh installs "
                           "that version's CPU build")
    paths = grader_files(repo, "autograder") + list(AUTOGRADER_FILES)
    paths += [path for path in HAND_IN_TEMPLATES if (repo / path).is_file()]
    files = shipped(repo, paths, generated)
    values = {"TORCH_VERSION": pin["version"]}
    files.update({name: template(source, values) for name, source in AUTOGRADER_TEMPLATES.items()})
    return files


def data_files(folder: Path) -> dict[str, bytes]:
    """A data set's files for ``autograder.zip``: ``data/TrainingSet/{images,labels}/*.nii.gz``
    and ``data/SHA256SUMS`` (``sha256sum -c`` format, paths below TrainingSet/).

    Raises:
        ReleaseError: when ``folder`` lacks images/ or labels/, or they hold no NIfTI file.
    """
    paths = sorted(path for sub in ("images", "labels") if (folder / sub).is_dir()
                   for path in (folder / sub).glob("*.nii.gz"))
    if not (folder / "images").is_dir() or not (folder / "labels").is_dir() or not paths:
        raise ReleaseError(f"--data {folder}: expected images/ and labels/ holding .nii.gz "
                           "files (the course's TrainingSet folder)")
    files, sums = {}, []
    for path in paths:
        relative = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        files[f"data/TrainingSet/{relative}"] = data
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {relative}")
    files["data/SHA256SUMS"] = ("\n".join(sums) + "\n").encode()
    return files


def solution_lines(repo: Path) -> set[str]:
    """Stripped lines of every reference answer of ``solution/``: its marked code (blocks and
    ``# SOLUTION`` lines) and its notebooks' cells tagged ``solution``.

    Raises:
        MarkerError: on a solution file whose markers break the grammar.
    """
    lines = set()
    for path in sorted((repo / "solution").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for piece in find_marked_code(text, path.relative_to(repo).as_posix()):
            lines.update(line.strip() for line in piece.code)
    for path in sorted((repo / "solution").rglob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        for cell in filter(is_solution_cell, cells):
            lines.update(line.strip() for line in cell_text(cell).splitlines())
    return {line for line in lines if len(line) >= MIN_LEAK_CHARS}


def find_leaks(folder: Path, secret_lines: set[str]) -> list[str]:
    """Marker text or solution lines in the text files under ``folder``, one entry per hit."""
    leaks = []
    for path in sorted(folder.rglob("*")):
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
        except UnicodeDecodeError:
            continue  # a binary file (a figure) holds no source code
        relative = path.relative_to(folder).as_posix()
        leaks += [f"{relative}: marker text {hit.group(0)!r}" for hit in MARKER_TEXT.finditer(text)]
        leaks += [f"{relative}: solution line {line!r}" for line in sorted(secret_lines)
                  if line in text]
    return leaks


def write_zip(path: Path, files: dict[str, bytes]) -> None:
    """A deterministic zip: sorted entries, fixed date, mode 644 (755 for EXECUTABLE)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.create_system = UNIX
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if name in EXECUTABLE else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, files[name], compresslevel=9)


def remove(paths: list[Path]) -> None:
    """Remove this tool's outputs (never anything else in the output folder)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status (0 built, 1 refused)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for student/, student.zip and autograder.zip "
                             "(default: dist/ in the kit's root folder)")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="ship this copy of the data set (images/ and labels/) in "
                             "autograder.zip (default: None, setup.sh downloads the MSD set)")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help=f"the kit's root folder (default: {REPO})")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    out = args.out if args.out is not None else repo / "dist"
    try:
        generated = check_skeleton(repo)
        student = student_files(repo, generated)
        autograder = autograder_files(repo, generated)
        if args.data is not None:
            autograder.update(data_files(args.data.resolve()))
    except ReleaseError as err:
        print(f"release: nothing written: {err}", file=sys.stderr)
        return 1
    for missing in (name for name in HAND_IN_TEMPLATES if name not in student):
        print(f"release: warning: {missing} is missing, so students get no template for it",
              file=sys.stderr)
    outputs = [out / "student", out / "student.zip", out / "autograder.zip"]
    remove(outputs)
    for name, data in student.items():
        (outputs[0] / name).parent.mkdir(parents=True, exist_ok=True)
        (outputs[0] / name).write_bytes(data)
    leaks = find_leaks(outputs[0], solution_lines(repo))
    if leaks:
        remove(outputs)
        print("release: refused, output removed: solution text in the student release:\n  "
              + "\n  ".join(leaks), file=sys.stderr)
        return 1
    write_zip(outputs[1], student)
    write_zip(outputs[2], autograder)
    print(f"release: {outputs[0]} ({len(student)} files), {outputs[1]} "
          f"({outputs[1].stat().st_size // 1024} KiB), {outputs[2]} ({len(autograder)} files, "
          f"{outputs[2].stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

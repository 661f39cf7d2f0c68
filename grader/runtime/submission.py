"""What the grader grades: the kit's own solution, or a copy of a student's submission.

A submission folder holds ``section2/src`` (the course layout, or this kit's; see
``grader/runtime/layout.py``), optionally ``section3/src`` (the course's unpadded inference),
``section2/out`` (report and session folder) and ``section1``. Only the course files are
copied, into a fresh temporary tree: Python modules, the report, results and figures. A
submission's ``conftest.py``, tests and pytest settings never reach the grading run.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from grader.runtime.layout import KIT, detect_layout

REPO = Path(__file__).resolve().parents[2]
KIT_MODULE = REPO / "tools" / "hippocampus_kit.py"  # the kit's rule for where the data is
# What a submission may bring, per folder: course code and the report's material.
CODE_SUFFIXES = (".py",)
OUT_SUFFIXES = (".md", ".json", ".png", ".jpg", ".jpeg", ".svg", ".csv", ".log", ".gz")
# Section 1 also brings the course's notebook and its curated set (NIfTI, gzipped or not).
SECTION1_SUFFIXES = (".ipynb", ".nii")
# Never copied: a submission cannot change how it is graded.
FORBIDDEN_NAMES = ("conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini",
                   "sitecustomize.py", "usercustomize.py")
MAX_COPY_BYTES = 200 * 2**20  # a submission's out/ above 200 MB is not a course hand-in
# How deep below the upload a zipped folder may hold section2/src: my_work/ (a zip of the
# folder), repo-main/my_work/ (a GitHub download of a repository holding it).
MAX_ROOT_DEPTH = 2
# Never a student's root: macOS's zip metadata (__MACOSX/<name>/section2/src holds "._*" resource
# forks, not code) and hidden folders (.git, .venv).
IGNORED_ROOT_PARTS = ("__MACOSX",)


class SubmissionError(ValueError):
    """A submission folder that cannot be graded at all; the message says why."""


class SubmissionImportError(ImportError):
    """A submission module failed to import; the message names the file and the error."""


def kit_module() -> ModuleType:
    """tools/hippocampus_kit.py, which the grader ships with (see tools/release.py)."""
    spec = importlib.util.spec_from_file_location("hippocampus_kit", KIT_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def real_data_candidates() -> list[Path]:
    """The folders ``find_real_data`` tries, in order: the kit's one rule."""
    return kit_module().data_dir_candidates()


def find_real_data() -> Path | None:
    """The MSD hippocampus TrainingSet (images/ and labels/), by the kit's one rule
    ($HIPPOCAMPUS_DATA, the kit's data/TrainingSet, a shared copy beside it), or None."""
    return kit_module().find_training_set()


@dataclass(frozen=True)
class CodeUnderTest:
    """Folders of the code being graded.

    Attributes:
        name: what is graded, for the report header.
        section2: the folder of run_ml_pipeline.py and its packages.
        section1: section 1's folder (eda.py), or None when the submission has none.
        out: section 2's out folder (report, results), or None.
        is_kit: True when grading the kit's own solution (no --submission).
        layout: the text the code was written against: ``grader.runtime.layout.KIT`` or ``COURSE``.
        section3: the course layout's ``section3/src`` (its unpadded inference), or None.
    """

    name: str
    section2: Path
    section1: Path | None
    out: Path | None
    is_kit: bool
    layout: str = KIT
    section3: Path | None = None

    def import_module(self, name: str, section: int = 2) -> ModuleType:
        """Import a module of the code under test, e.g. ``"utils.volume_stats"``.

        Call it only inside a test body: tests run in a child process, so the import happens
        there and a broken module fails only the tests that use it.

        Raises:
            SubmissionImportError: when the module is missing or raises while importing.
        """
        folder = self.section2 if section == 2 else self.section1
        if folder is None:
            raise SubmissionImportError(f"the submission has no section {section} folder")
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        relative = Path(*name.split(".")).with_suffix(".py")
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as err:
            raise SubmissionImportError(f"{relative} not found, or it imports a module that is "
                                        f"missing: {err}") from err
        except SystemExit as err:
            raise SubmissionImportError(f"importing {relative} called sys.exit({err.code!r}); "
                                        "keep scripts under `if __name__ == '__main__':`") from err
        except Exception as err:  # any import-time error of submission code
            raise SubmissionImportError(f"importing {relative} failed: "
                                        f"{type(err).__name__}: {err}") from err


def default_code() -> CodeUnderTest:
    """What ``pytest grader/`` grades without --submission.

    In the instructors' kit (``solution/`` present) that is the reference solution; in the
    student release (no ``solution/``) it is the student's own section1/ and section2/.
    """
    solution = REPO / "solution"
    root, is_kit = (solution, True) if solution.is_dir() else (REPO, False)
    section1, out = root / "section1", REPO / "section2" / "out"
    return CodeUnderTest(
        name=f"the kit's reference solution ({solution})" if is_kit else f"your work in {REPO}",
        section2=root / "section2" / "src", section1=section1 if section1.is_dir() else None,
        out=None if is_kit or not out.is_dir() else out, is_kit=is_kit)


def _copy_tree(source: Path, target: Path, suffixes: tuple[str, ...]) -> int:
    """Copy the files of ``source`` with the given suffixes; return the bytes copied."""
    copied = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if (not path.is_file() or path.is_symlink() or path.name in FORBIDDEN_NAMES
                or path.name.startswith("test_") or "__pycache__" in relative.parts
                or not path.name.lower().endswith(suffixes)):
            continue
        copied += path.stat().st_size
        if copied > MAX_COPY_BYTES:
            raise SubmissionError(f"{source} holds more than {MAX_COPY_BYTES // 2**20} MB of "
                                  "course files; leave model weights and data out")
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / relative)
    return copied


def find_submission_root(upload: Path) -> Path | None:
    """The folder of an upload that holds ``section2/src``: the upload itself (a GitHub
    submission, or the folders uploaded one by one), else the shallowest such folder at most
    MAX_ROOT_DEPTH levels down (a zipped folder), never inside ``__MACOSX`` or a hidden folder;
    None when there is none."""
    candidates = []
    for depth in range(MAX_ROOT_DEPTH + 1):
        for source in sorted(upload.glob("/".join(["*"] * depth + ["section2", "src"]))):
            root = source.parent.parent
            parts = root.relative_to(upload).parts
            if source.is_dir() and not any(part in IGNORED_ROOT_PARTS or part.startswith(".")
                                           for part in parts):
                candidates.append(root)
        if candidates:
            return candidates[0]
    return None


def copy_submission(folder: Path, workspace: Path) -> CodeUnderTest:
    """Copy a submission's course files into ``workspace`` and describe them.

    Args:
        folder: the student's folder, holding ``section2/src`` (and optionally
            ``section2/out`` and ``section1``), itself or in a folder below it (see
            ``find_submission_root``).
        workspace: an empty temporary folder.

    Raises:
        SubmissionError: when ``folder`` has no ``section2/src``, or it is too large.
    """
    folder = find_submission_root(folder.resolve()) or folder.resolve()
    source2 = folder / "section2" / "src"
    if not source2.is_dir():
        raise SubmissionError(f"{folder} has no section2/src folder; point --submission at the "
                              "folder that holds section2/ (and section1/)")
    section2 = workspace / "section2" / "src"
    section2.mkdir(parents=True)
    _copy_tree(source2, section2, CODE_SUFFIXES)
    section3 = None
    if (folder / "section3" / "src").is_dir():  # the course's unpadded inference lives there
        section3 = workspace / "section3" / "src"
        section3.mkdir(parents=True)
        _copy_tree(folder / "section3" / "src", section3, CODE_SUFFIXES)
    out = None
    if (folder / "section2" / "out").is_dir():
        out = workspace / "section2" / "out"
        out.mkdir(parents=True)
        _copy_tree(folder / "section2" / "out", out, OUT_SUFFIXES)
    section1 = None
    if (folder / "section1").is_dir():
        section1 = workspace / "section1"
        section1.mkdir(parents=True)
        _copy_tree(folder / "section1", section1,
                   CODE_SUFFIXES + OUT_SUFFIXES + SECTION1_SUFFIXES)
    layout = detect_layout(section2)
    return CodeUnderTest(name=f"submission {folder} ({layout} layout)", section2=section2,
                         section1=section1, out=out, is_kit=False, layout=layout,
                         section3=section3)

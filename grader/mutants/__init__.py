"""Known-wrong versions of the reference solution, written from mistakes students make.

Each module of this package is one mutant and defines four strings: ``TASK`` (the TASK it
breaks, e.g. "S2.12"), ``FILE`` (the file it changes, relative to ``section2/src``), ``OLD``
(a snippet of the solution's file that must occur in it exactly once) and ``NEW`` (the wrong
code put in its place). Its one-line docstring names the mistake. The grader can be trusted
when every mutant loses points on a test of its own TASK and on no other TASK; the CI gate
``tests/test_grader_gates.py`` checks that.

A mutant whose ``OLD`` no longer matches the solution (someone changed the solution) raises
``MutantError`` when it is built, so mutants cannot rot silently.

Usage::

    from grader.mutants import MUTANTS, build_mutant
    folder = build_mutant(MUTANTS[0], Path("/tmp/mutant"))  # a submission folder to grade
    python -m grader.mutants DEST    # write every mutant as DEST/<name>/
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import shutil
from dataclasses import dataclass
from pathlib import Path

from grader.runtime.never_copied import copytree_ignore

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SOLUTION = REPO / "solution"  # holds section2/src and section1
SECTION2_SRC = Path("section2") / "src"
SECTION1 = Path("section1")
# Never copied into a mutant: the kit's rule (grader/runtime/never_copied.py) plus the
# solution's out/ (run outputs).
IGNORED = copytree_ignore("out")
FIELDS = ("TASK", "FILE", "OLD", "NEW")  # what every mutant module defines, all str


class MutantError(ValueError):
    """A mutant that is malformed or no longer fits the solution; the message says which."""


@dataclass(frozen=True)
class Mutant:
    """One known-wrong change to the reference solution.

    Attributes:
        name: the module's name, e.g. "dice_unbinarised"; also the submission folder's name.
        task: the TASK id the mistake belongs to, e.g. "S2.12".
        file: the changed file, relative to section2/src, e.g. "utils/volume_stats.py".
        old: the solution's snippet, which must occur exactly once in ``file``.
        new: the wrong code that replaces it.
        mistake: the mistake in words (the module's docstring).
    """

    name: str
    task: str
    file: str
    old: str
    new: str
    mistake: str


def load_mutant(name: str) -> Mutant:
    """Import the mutant module ``grader.mutants.<name>`` and check its fields.

    Args:
        name: module name inside this package.

    Returns:
        The Mutant it defines.

    Raises:
        MutantError: when a field is missing or not a str, the docstring is missing, or
            ``OLD`` is empty or equal to ``NEW``.
    """
    module = importlib.import_module(f"{__name__}.{name}")
    where = f"grader/mutants/{name}.py"
    values = {}
    for field in FIELDS:
        value = getattr(module, field, None)
        if not isinstance(value, str):
            raise MutantError(f"{where}: {field} must be a str, found {type(value).__name__}")
        values[field] = value
    mistake = (module.__doc__ or "").strip()
    if not mistake:
        raise MutantError(f"{where}: add a one-line docstring naming the mistake")
    if not values["OLD"] or values["OLD"] == values["NEW"]:
        raise MutantError(f"{where}: OLD must be a non-empty snippet that NEW changes")
    return Mutant(name=name, task=values["TASK"], file=values["FILE"], old=values["OLD"],
                  new=values["NEW"], mistake=mistake.splitlines()[0])


def discover_mutants() -> tuple[Mutant, ...]:
    """Every mutant module of this package (names not starting with "_"), sorted by name."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__)
                   if not info.name.startswith("_"))
    return tuple(load_mutant(name) for name in names)


MUTANTS = discover_mutants()


def copy_solution(dest: Path, source: Path = SOLUTION) -> Path:
    """Copy the reference solution into ``dest`` as a submission folder.

    Args:
        dest: folder to create or fill; it must not hold ``section2/src`` or ``section1`` yet.
        source: the solution folder, holding ``section2/src`` and optionally ``section1``.

    Returns:
        ``dest``, holding ``section2/src`` and (when the solution has it) ``section1``, without
        caches or run outputs.

    Raises:
        FileNotFoundError: when ``source`` has no ``section2/src``.
        FileExistsError: when ``dest`` already holds ``section2/src`` or ``section1``.
    """
    dest = Path(dest)
    if not (source / SECTION2_SRC).is_dir():
        raise FileNotFoundError(f"{source / SECTION2_SRC} does not exist; a mutant is built "
                                "from the kit's reference solution")
    shutil.copytree(source / SECTION2_SRC, dest / SECTION2_SRC, ignore=IGNORED)
    # Section 1 is copied unchanged so that a mutant differs from the solution in one TASK only.
    if (source / SECTION1).is_dir():
        shutil.copytree(source / SECTION1, dest / SECTION1, ignore=IGNORED)
    return dest


def apply_mutant(mutant: Mutant, text: str) -> str:
    """Replace the mutant's ``old`` snippet in ``text`` (the solution's ``file``) by ``new``.

    Raises:
        MutantError: when ``old`` does not occur exactly once, or the result is not valid
            Python.
    """
    count = text.count(mutant.old)
    if count != 1:
        raise MutantError(
            f"mutant {mutant.name} (TASK {mutant.task}): its OLD snippet occurs {count} times "
            f"in solution/section2/src/{mutant.file}, expected exactly once; the solution has "
            f"changed, so update OLD and NEW in grader/mutants/{mutant.name}.py to its code")
    mutated = text.replace(mutant.old, mutant.new)
    try:
        compile(mutated, mutant.file, "exec")
    except SyntaxError as err:
        raise MutantError(f"mutant {mutant.name}: {mutant.file} no longer parses after the "
                          f"change (line {err.lineno}: {err.msg}); fix NEW in "
                          f"grader/mutants/{mutant.name}.py") from err
    return mutated


def build_mutant(mutant: Mutant, dest: Path, source: Path = SOLUTION) -> Path:
    """Write a submission folder that is the reference solution with one mistake in it.

    Args:
        mutant: the mistake to make.
        dest: folder to create or fill (see ``copy_solution``).
        source: the solution folder, holding ``section2/src`` and optionally ``section1``.

    Returns:
        ``dest``, ready for ``pytest grader --submission=dest``.

    Raises:
        MutantError: when ``mutant.file`` does not exist in the solution, or its ``old``
            snippet does not occur there exactly once, or the mutated file does not parse.
        FileNotFoundError, FileExistsError: see ``copy_solution``.
    """
    path = source / SECTION2_SRC / mutant.file
    if not path.is_file():
        raise MutantError(f"mutant {mutant.name}: solution/section2/src/{mutant.file} does not "
                          f"exist; fix FILE in grader/mutants/{mutant.name}.py")
    # Bytes, not text mode: line endings and encoding stay exactly as in the solution.
    mutated = apply_mutant(mutant, path.read_bytes().decode("utf-8"))
    dest = copy_solution(Path(dest), source)
    (dest / SECTION2_SRC / mutant.file).write_bytes(mutated.encode("utf-8"))
    logger.info("built mutant %s (TASK %s) in %s", mutant.name, mutant.task, dest)
    return dest

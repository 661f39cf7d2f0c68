"""Names never copied, handed in or shipped: caches, editor and notebook leftovers, version
control, TensorBoard runs.

The one rule for every tool that copies or reads a tree of course files: the release
(``tools/release.py``), the skeleton generator (``tools/make_skeleton.py``, the rule plus the
students' ``out/``), the mutants (``grader/mutants``, the rule plus ``out/``) and the
integrity report's handed-in files (``grader/batch/integrity/findings.py``). It imports
only the standard library, so that the tools can import it alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

# A file or folder of these names, and everything below such a folder.
NEVER_COPIED = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache",
                          ".DS_Store", "runs"})
NEVER_COPIED_SUFFIXES = (".pyc",)  # bytecode left beside a module by older Pythons


def is_never_copied(parts: tuple[str, ...]) -> bool:
    """True when a path, given as its ``parts`` relative to the tree being copied, is one the
    rule leaves out: any part is in NEVER_COPIED, or the name ends in NEVER_COPIED_SUFFIXES."""
    return bool(NEVER_COPIED.intersection(parts)) or (
        bool(parts) and parts[-1].endswith(NEVER_COPIED_SUFFIXES))


def copytree_ignore(*more: str) -> Callable:
    """An ``ignore`` for ``shutil.copytree``: the rule, plus the glob patterns ``more`` (e.g.
    "out", a copy's own exception made explicit)."""
    suffixes = (f"*{suffix}" for suffix in NEVER_COPIED_SUFFIXES)
    return shutil.ignore_patterns(*NEVER_COPIED, *suffixes, *more)

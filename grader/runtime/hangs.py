"""A student function that hung once is not waited on again.

When a test times out, the grader asks the stuck child for its Python stack (``faulthandler``
on SIGUSR1, which answers even from inside a C call) and notes the deepest frame in the code
under test: that function did not finish. In every later test's child, that function is
replaced, as its module is imported, by one that fails at once with
"skipped: Dice3d did not finish in 20 s in test ...". A loop at a module's top level blocks
the import of that module the same way.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# One frame of faulthandler's dump: `  File "/path/x.py", line 12 in Dice3d`.
DUMP_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+ in (?P<function>\S+)\s*$',
                        re.MULTILINE)
MODULE_LEVEL = "<module>"


class HungBefore(RuntimeError):
    """Raised instead of running a function that already hung in an earlier test."""


@dataclass(frozen=True)
class Hang:
    """A function of the code under test that did not finish within a test's time limit.

    Attributes:
        file: the resolved path of its module.
        function: its name (``<module>`` for a module's top-level code).
        test: the test it hung in.
        seconds: that test's time limit, s.
        shown: how the message names it, e.g. ``utils/volume_stats.py: Dice3d``.
    """

    file: str
    function: str
    test: str
    seconds: float
    shown: str

    def message(self) -> str:
        """The text of every later test that needs this function."""
        return f"skipped: {self.shown} did not finish in {self.seconds:g} s in test {self.test}"


def stuck_frame(dump: str, code_dirs: tuple[Path, ...]) -> tuple[str, str, str] | None:
    """(file, function, shown name) of the most recent frame of ``dump`` (faulthandler's text,
    most recent call first) that lies in ``code_dirs``, or None."""
    roots = [folder.resolve() for folder in code_dirs]
    for match in DUMP_FRAME.finditer(dump):
        path = Path(match["file"]).resolve()
        for root in roots:
            if path.is_relative_to(root):
                shown = f"{path.relative_to(root).as_posix()}: {match['function']}"
                return str(path), match["function"], shown
    return None


def _refuser(message: str):
    def refuse(*args, **kwargs):
        raise HungBefore(message)
    return refuse


def block(module: ModuleType, hangs: list[Hang]) -> None:
    """Replace the module's functions (and its classes' methods) that hung."""
    for hang in hangs:
        for name, value in list(vars(module).items()):
            if inspect.isfunction(value) and value.__name__ == hang.function:
                setattr(module, name, _refuser(hang.message()))
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                for attribute, member in list(vars(value).items()):
                    if inspect.isfunction(member) and member.__name__ == hang.function:
                        setattr(value, attribute, _refuser(hang.message()))


class _BlockingLoader(importlib.machinery.SourceFileLoader):
    hangs: list[Hang] = []

    def exec_module(self, module: ModuleType) -> None:
        super().exec_module(module)
        block(module, self.hangs)


class HangBlocker(importlib.abc.MetaPathFinder):
    """Finds the modules that hold a hung function and loads them with it replaced."""

    def __init__(self, hangs: list[Hang]) -> None:
        self.by_file: dict[str, list[Hang]] = {}
        for hang in hangs:
            self.by_file.setdefault(hang.file, []).append(hang)

    def find_spec(self, fullname, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.origin is None:
            return None
        hangs = self.by_file.get(str(Path(spec.origin).resolve()))
        if not hangs or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        for hang in hangs:
            if hang.function == MODULE_LEVEL:
                raise HungBefore(hang.message())
        loader = _BlockingLoader(fullname, spec.origin)
        loader.hangs = hangs
        spec.loader = loader
        return spec


def install(hangs: list[Hang]) -> None:
    """Block every hung function in the modules this process imports from now on."""
    if hangs:
        sys.meta_path.insert(0, HangBlocker(hangs))

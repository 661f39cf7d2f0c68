"""Find answers to a TASK among the functions of a release: does any of them do what a TASK grades?

    python grader/kit/answers.py RELEASE_DIR FINDINGS_JSON

Imports every ``.py`` file below RELEASE_DIR (a student release: ``grader/``, ``section1/``,
``section2/src/``, ``tools/``), then calls every function and builds every class defined there
on each TASK's check inputs below, and compares what comes back with the reference answer of
``grader/hidden/reference.py``. A function that gives the reference's output answers that TASK,
however it is written or named, so a reworded copy is found where a line-by-line scan is not.
The skeleton's stubs raise ``NotImplementedError`` and answer nothing. FINDINGS_JSON receives a
list of ``{"task", "module", "name"}``, empty when the release holds no answer.

Run it as a script, in a fresh process with a scratch working folder: it calls code it does
not know, and the release's own ``grader`` package must be the one imported (the reference is
loaded from this kit by its path). A call that does not accept the inputs, fails, or runs past
``CALL_LIMIT_S`` answers nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

REFERENCE = Path(__file__).resolve().parents[1] / "hidden" / "reference.py"
CALL_LIMIT_S = 5  # one call on tiny arrays takes milliseconds; a longer one is no answer
# Folders of a release whose modules import as top-level names (the course layout), and the
# release root itself (the grader package).
IMPORT_ROOTS = ("section2/src", "section1", "tools", ".")
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Probe:
    """One TASK's check: the call's arguments and whether a result is the reference's."""

    task: str
    args: tuple
    matches: Callable[[object], bool]


def load_reference():
    """This kit's ``grader/hidden/reference.py``, imported by path (not as ``grader.*``)."""
    spec = importlib.util.spec_from_file_location("kit_reference_answers", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = load_reference()


def _image() -> np.ndarray:
    """int16 [2, 3, 4], values 1..24: a small volume with no zero in it."""
    return (np.arange(24, dtype=np.int16) + 1).reshape(2, 3, 4)


def _raw() -> np.ndarray:
    """float64 [3, 4, 5] in [-40, 900): raw intensities, neither in [0, 1] nor starting at 0."""
    return np.random.default_rng(0).uniform(-40.0, 900.0, size=(3, 4, 5))


def _labels(seed: int) -> np.ndarray:
    """uint8 [4, 5, 6], values {0, 1, 2}."""
    return np.random.default_rng(seed).integers(0, 3, size=(4, 5, 6), dtype=np.uint8)


def _volumes() -> list[dict]:
    """Two padded volumes [2, 4, 4] and [3, 4, 4] as the loader returns them."""
    rng = np.random.default_rng(1)
    return [{"image": rng.uniform(size=(depth, 4, 4)).astype(np.float32),
             "seg": rng.integers(0, 3, size=(depth, 4, 4)).astype(np.uint8),
             "filename": f"hippocampus_00{depth}.nii.gz"} for depth in (2, 3)]


def _header() -> tuple[nib.Nifti1Header, np.ndarray]:
    """(header, affine) of a uint8 [4, 5, 6] volume with 2 x 1 x 1 mm voxels, axes L, A, S."""
    affine = np.diag([-2.0, 1.0, 1.0, 1.0])
    nifti = nib.Nifti1Image(np.zeros((4, 5, 6), dtype=np.uint8), affine)
    nifti.header.set_xyzt_units("mm", "sec")
    return nifti.header, affine


# What TASK S1.02 reads from _header(), worked out by hand.
HEADER_FACTS = {"shape": (4, 5, 6), "dtype": "uint8", "bits_per_voxel": 8,
                "units": ("mm", "sec"), "spacing_mm": (2.0, 1.0, 1.0),
                "axis_codes": ("L", "A", "S")}


def _volume_labels() -> np.ndarray:
    """uint8 [2, 3, 4]: 5 voxels of label 1 (anterior), 7 of label 2 (posterior)."""
    seg = np.zeros(24, dtype=np.uint8)
    seg[:5], seg[5:12] = 1, 2
    return seg.reshape(2, 3, 4)


VOXEL_SPACING_MM = (2.0, 1.5, 1.0)  # 3 mm3 per voxel
# TASK S1.03 on _volume_labels() at VOXEL_SPACING_MM, worked out by hand: 5 and 7 voxels of 3 mm3.
VOLUME_MM3 = {"anterior": 15.0, "posterior": 21.0, "total": 36.0}


def _same_mapping(expected: dict) -> Callable[[object], bool]:
    def matches(result: object) -> bool:
        if not isinstance(result, dict) or set(result) != set(expected):
            return False
        for key, want in expected.items():
            got = result[key]
            if isinstance(want, float):
                if (not isinstance(got, (float, int, np.number))
                        or abs(float(got) - want) > TOLERANCE):
                    return False
            elif tuple(np.atleast_1d(got).tolist()) != tuple(np.atleast_1d(want).tolist()):
                return False
        return True
    return matches


def _same_array(expected: np.ndarray) -> Callable[[object], bool]:
    def matches(result: object) -> bool:
        array = np.asarray(result)
        return (array.shape == expected.shape and array.dtype != object
                and np.allclose(array, expected, atol=TOLERANCE))
    return matches


def _same_number(expected: float) -> Callable[[object], bool]:
    def matches(result: object) -> bool:
        return (isinstance(result, (float, int, np.number)) and not isinstance(result, bool)
                and abs(float(result) - expected) <= TOLERANCE)
    return matches


def _same_slices(volumes: list[dict]) -> Callable[[object], bool]:
    expected = reference.ReferenceSlices(volumes)

    def matches(result: object) -> bool:
        if len(result) != len(expected):  # type: ignore[arg-type]
            return False
        for index in range(len(expected)):
            item, want = result[index], expected[index]  # type: ignore[index]
            if not all(torch.is_tensor(item.get(key)) and tuple(item[key].shape) ==
                       tuple(want[key].shape) and torch.equal(item[key].to(want[key].dtype),
                                                              want[key])
                       for key in ("image", "seg")):
                return False
        return True
    return matches


def probes() -> list[Probe]:
    """The TASKs that one function or class can answer, each with its check inputs: section 2's
    against ``grader/hidden/reference.py``, S1.02 and S1.03 against values worked out by hand
    (S2.09-S2.11 need a model and an agent, S1.01 and S1.04-S1.06 files on disk: not probed)."""
    image, raw, a, b, volumes = _image(), _raw(), _labels(2), _labels(3), _volumes()
    new_shape = (3, 5, 6)
    return [
        Probe("S1.02", _header(), _same_mapping(HEADER_FACTS)),
        Probe("S1.03", (_volume_labels(), VOXEL_SPACING_MM), _same_mapping(VOLUME_MM3)),
        Probe("S2.03", (raw,), _same_array(reference.reference_normalize(raw))),
        Probe("S2.04", (image, new_shape),
              _same_array(reference.reference_med_reshape(image, new_shape))),
        Probe("S2.06", (volumes,), _same_slices(volumes)),
        Probe("S2.12", (a, b), _same_number(reference.reference_dice(a, b))),
        Probe("S2.13", (a, b), _same_number(reference.reference_jaccard(a, b))),
    ]


def module_names(release: Path) -> Iterator[str]:
    """Dotted names of the ``.py`` files below ``release``, each under its import root."""
    seen = set()
    for root in IMPORT_ROOTS:
        for path in sorted((release / root).rglob("*.py")):
            relative = path.relative_to(release)
            if relative in seen or (root == "." and relative.parts[0] != "grader"):
                continue
            seen.add(relative)
            parts = path.relative_to(release / root).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def candidates(module) -> Iterator[tuple[str, Callable]]:
    """(qualified name, callable) of the functions and classes ``module`` defines, and of the
    functions its classes define (called unbound: ``self`` takes the first input)."""
    for name, value in list(vars(module).items()):
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            yield name, value
        elif inspect.isclass(value):
            yield name, value
            for attribute, member in list(vars(value).items()):
                function = member.__func__ if isinstance(member, (staticmethod,
                                                                  classmethod)) else member
                if inspect.isfunction(function):
                    yield f"{name}.{attribute}", function


class _Timeout(BaseException):
    """A probed call ran past CALL_LIMIT_S."""


def _alarm(signum, frame) -> None:
    raise _Timeout


def answers(callable_: Callable, probe: Probe) -> bool:
    """True when ``callable_(*probe.args)`` returns the reference's result for that TASK."""
    try:
        inspect.signature(callable_).bind(*probe.args)
    except (TypeError, ValueError):
        return False
    signal.alarm(CALL_LIMIT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return bool(probe.matches(callable_(*probe.args)))
    except (Exception, SystemExit, _Timeout):  # not an answer: it does something else
        return False
    finally:
        signal.alarm(0)


def find_answers(release: Path) -> list[dict]:
    """Every (TASK, module, name) of ``release`` whose function or class answers the TASK.

    Raises:
        ImportError: when a module of the release does not import (so it was not checked).
    """
    release = release.resolve()
    sys.path[:0] = [str(release / root) for root in IMPORT_ROOTS]
    signal.signal(signal.SIGALRM, _alarm)
    checks = probes()
    found = []
    for name in module_names(release):
        try:
            module = importlib.import_module(name)
        except Exception as err:
            raise ImportError(f"{name} of {release} does not import, so it was not checked "
                              f"for answers: {type(err).__name__}: {err}") from err
        for qualified, callable_ in candidates(module):
            found += [{"task": probe.task, "module": name, "name": qualified}
                      for probe in checks if answers(callable_, probe)]
    return found


def main(argv: list[str] | None = None) -> int:
    """Command line: writes the findings and returns 0 (none found) or 1."""
    release, out = (Path(arg) for arg in (argv if argv is not None else sys.argv[1:]))
    found = find_answers(release)
    out.write_text(json.dumps(found, indent=1), encoding="utf-8")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

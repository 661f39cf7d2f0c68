"""Synthetic cases for the grading tests of section 1 (TASKs S1.01-S1.06, section1/eda.py).

Fixtures call the functions that write files (``write_nifti``, ``touch_cases``); they never
import the code under test. The functions that build eda.py's own records (``header_facts``,
``case_report``) take the imported module as an argument, so a test body calls them after
``code.import_module("eda", section=1)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np

NIFTI_SUFFIX = ".nii.gz"
SPACE_UNIT, TIME_UNIT = "mm", "sec"  # the units the MSD Task04 headers state


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None,
                units: tuple[str, str] = (SPACE_UNIT, TIME_UNIT)) -> Path:
    """Save ``array`` as a gzipped NIfTI-1 file and return its path.

    Args:
        path: the file to write, ``.nii.gz``; its folder is created.
        array: [X, Y, Z], stored in its own dtype.
        affine: float [4, 4] voxel-to-scanner mm; the identity (1 mm voxels, RAS) if None.
        units: (space, time) units written into the header's xyzt_units.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    nifti = nib.Nifti1Image(array, np.eye(4) if affine is None else affine)
    nifti.header.set_xyzt_units(*units)
    nib.save(nifti, path)
    return path


def touch_cases(root: Path, images: Iterable[str], labels: Iterable[str]) -> Path:
    """Empty files ``root/images/<name>.nii.gz`` and ``root/labels/<name>.nii.gz``.

    Pairing looks at file names only, so the files need no content. Returns ``root``.
    """
    for folder, names in (("images", images), ("labels", labels)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / f"{name}{NIFTI_SUFFIX}").touch()
    return root


def header_facts(eda: ModuleType, path: Path, shape: tuple[int, int, int] = (4, 5, 6),
                 affine: np.ndarray | None = None, dtype: str = "uint8") -> object:
    """An ``eda.HeaderFacts`` record for a file that need not exist.

    The spacing is the length of each affine column, and the axis codes come from nibabel,
    so that tests of TASK S1.04 do not depend on TASK S1.02.

    Args:
        eda: the imported eda module of the code under test.
        path: the file the record describes (named in misfit messages).
        shape: voxels [X, Y, Z].
        affine: float [4, 4], mm; the identity (1 mm voxels, RAS) if None.
        dtype: on-disk data type.
    """
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    column_lengths_mm = np.linalg.norm(affine[:3, :3], axis=0)
    return eda.HeaderFacts(
        path=Path(path), file_format="NIfTI-1 single file (magic n+1), gzip-compressed",
        shape=tuple(shape), dtype=dtype, bits_per_voxel=np.dtype(dtype).itemsize * 8,
        units=(SPACE_UNIT, TIME_UNIT), spacing_mm=tuple(float(v) for v in column_lengths_mm),
        axis_codes=tuple(nib.orientations.aff2axcodes(affine)), affine=affine)


def case_report(eda: ModuleType, root: Path, case: str, image: bool = True, label: bool = True,
                misfit_kinds: Iterable[str] = ()) -> object:
    """An ``eda.CaseReport`` of ``case`` with files under ``root/images`` and ``root/labels``.

    Args:
        eda: the imported eda module of the code under test.
        root: the raw data folder.
        case: the case name, e.g. "hippocampus_001".
        image, label: whether the case has that file.
        misfit_kinds: kinds of the case's misfits; none makes it a clean pair.
    """
    name = f"{case}{NIFTI_SUFFIX}"
    image_facts = header_facts(eda, root / "images" / name) if image else None
    label_facts = header_facts(eda, root / "labels" / name) if label else None
    misfits = [eda.Misfit(kind, f"{name}: synthetic {kind}") for kind in misfit_kinds]
    volume = {"anterior": 1500.0, "posterior": 1500.0, "total": 3000.0} if label else None
    return eda.CaseReport(case, image_facts, label_facts, misfits, volume)


def fix_volume(eda: ModuleType, volume_mm3: dict[str, float]) -> None:
    """Make ``eda.hippocampus_volume_mm3`` (TASK S1.03) return ``volume_mm3``, the true volume
    of the label a test passes in, so that a mistake in S1.03 costs no point of another TASK.

    Call it only in a test body: the body runs in its own child process.
    """
    def known_volume_mm3(seg: np.ndarray, spacing_mm: tuple[float, ...]) -> dict[str, float]:
        return dict(volume_mm3)

    eda.hippocampus_volume_mm3 = known_volume_mm3


def kinds_of(misfits: Iterable) -> list[str]:
    """The kinds of a list of misfits, sorted."""
    return sorted(misfit.kind for misfit in misfits)

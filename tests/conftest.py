"""Shared fixtures: the solution's modules on sys.path, real data, synthetic NIfTI pairs."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SOLUTION_SRC = REPO / "solution" / "section2" / "src"
# The course code imports its packages as top-level names (from utils.utils import ...).
sys.path.insert(0, str(SOLUTION_SRC))
from experiments.settings import Settings, build_settings  # noqa: E402
from grader.runtime.submission import find_real_data, real_data_candidates  # noqa: E402

# A U-Net and a run small enough to train in a second on the synthetic volumes, on the CPU.
TINY_RUN = {"initial_filter_size": 4, "num_downs": 2, "patch_size": 32, "n_epochs": 2,
            "batch_size": 4, "learning_rate": 0.01, "device": "cpu"}


def tiny_settings(out_dir: Path, preset: str | None = None, **overrides) -> Settings:
    """The pipeline's settings (``build_settings``, its one builder) for a test run writing
    into ``out_dir``: ``TINY_RUN`` (or ``preset``), then ``overrides``."""
    base = {} if preset is not None else TINY_RUN
    return build_settings(None, preset, **{**base, "tensorboard_dir": str(out_dir / "runs"),
                                            "out_dir": str(out_dir / "session"), **overrides})


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module on one torch thread: tiny tensors are fastest so, and do not stall when
    other jobs share the CPU. Restores the previous thread count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real hippocampus data (images/ and labels/), or skip with the reason."""
    data = find_real_data()
    if data is not None:
        return data
    pytest.skip("real MSD hippocampus data not found in "
                f"{' or '.join(map(str, real_data_candidates()))}; run tools/get_data.py")


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Save ``array`` as a NIfTI file (identity affine unless given) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


def synthetic_pair(shape=(6, 20, 18), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A raw image float32 [X, Y, Z] with a bright blob and its label uint8 in {0, 1, 2}."""
    rng = np.random.default_rng(seed)
    x, y, z = np.indices(shape)
    centre = np.array(shape) / 2
    blob = ((x - centre[0]) ** 2 / 4 + (y - centre[1]) ** 2 / 16 + (z - centre[2]) ** 2 / 16) < 1
    seg = np.zeros(shape, np.uint8)
    seg[blob & (y < centre[1])] = 1
    seg[blob & (y >= centre[1])] = 2
    image = (rng.normal(100, 10, shape) + 300 * blob).astype(np.float32)
    return image, seg


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    """A course-layout folder with three clean synthetic pairs, case_0..2.nii.gz."""
    for case in range(3):
        image, seg = synthetic_pair(seed=case)
        write_nifti(tmp_path / "images" / f"case_{case}.nii.gz", image)
        write_nifti(tmp_path / "labels" / f"case_{case}.nii.gz", seg)
    return tmp_path

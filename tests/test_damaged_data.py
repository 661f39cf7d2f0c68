"""Damaged copies of real volumes: a NaN or inf voxel is refused, named and counted."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import write_nifti

from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from inference.UNetInferenceAgent import UNetInferenceAgent
from networks.RecursiveUNet import UNet

DAMAGED_CASE = "hippocampus_003.nii.gz"  # a clean case of MSD Task04 (not a listed misfit)
CLEAN_CASE = "hippocampus_004.nii.gz"
PATCH_SIZE = 64  # px: holds every MSD Task04 slice and divides by 2**2
BAD_VALUES = pytest.mark.parametrize("bad_value", [np.inf, -np.inf, np.nan],
                                     ids=["inf", "minus-inf", "nan"])


def damaged_copy(real_data_dir: Path, folder: Path, bad_value: float) -> np.ndarray:
    """Copy DAMAGED_CASE and CLEAN_CASE into ``folder``, with one ``bad_value`` voxel in
    DAMAGED_CASE's image; returns that damaged image, float32 [X, Y, Z]."""
    for case in (DAMAGED_CASE, CLEAN_CASE):
        for kind in ("images", "labels"):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            shutil.copy(real_data_dir / kind / case, folder / kind / case)
    source = nib.load(real_data_dir / "images" / DAMAGED_CASE)
    image = np.asarray(source.dataobj, dtype=np.float32)
    image[image.shape[0] // 2, 5, 5] = bad_value
    write_nifti(folder / "images" / DAMAGED_CASE, image, source.affine)
    return image


@BAD_VALUES
def test_loader_skips_a_real_image_with_one_non_finite_voxel_naming_file_and_count(
        real_data_dir, tmp_path, caplog, bad_value):
    damaged_copy(real_data_dir, tmp_path, bad_value)
    with caplog.at_level(logging.WARNING):
        data = LoadHippocampusData(tmp_path, PATCH_SIZE, PATCH_SIZE)
    assert [volume["filename"] for volume in data] == [CLEAN_CASE]
    [warning] = [record.getMessage() for record in caplog.records
                 if record.levelno == logging.WARNING]
    assert DAMAGED_CASE in warning and "1 non-finite voxel " in warning
    assert "constant intensity" not in warning


@BAD_VALUES
def test_inference_refuses_a_real_volume_with_one_non_finite_voxel(real_data_dir, tmp_path,
                                                                    bad_value):
    image = damaged_copy(real_data_dir, tmp_path, bad_value)
    torch.manual_seed(0)
    agent = UNetInferenceAgent(model=UNet(initial_filter_size=4, num_downs=2),
                               patch_size=PATCH_SIZE)
    with pytest.raises(ValueError, match="1 non-finite voxel "):
        agent.single_volume_inference_unpadded(image)
    padded = np.zeros((image.shape[0], PATCH_SIZE, PATCH_SIZE), np.float32)
    padded[:, 5, 5] = bad_value  # a caller that normalised and padded a damaged volume itself
    with pytest.raises(ValueError, match=f"{image.shape[0]} non-finite voxels"):
        agent.single_volume_inference(padded)

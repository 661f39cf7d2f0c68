"""Public tests of SlicesDataset (TASK S2.06), data_prep/SlicesDataset.py."""

from __future__ import annotations

import numpy as np
import pytest

from grader.runtime.fixtures import is_course


def volume(depth: int, first_value: int, seg_dtype=np.uint8) -> dict:
    """A loaded volume [depth, 4, 5]: slice i of the image is filled with first_value + i."""
    values = np.arange(first_value, first_value + depth, dtype=np.float32)
    image = np.broadcast_to(values[:, None, None], (depth, 4, 5)).copy()
    seg = (np.arange(depth * 4 * 5).reshape(depth, 4, 5) % 3).astype(seg_dtype)
    return {"image": image / 10, "seg": seg, "filename": f"case_{first_value}.nii.gz"}


@pytest.mark.task("S2.06", points=2)
def test_slices_dataset_counts_every_slice_and_returns_the_slice_of_a_later_volume(code):
    module = code.import_module("data_prep.SlicesDataset")
    seg_dtype = np.int64 if is_course(code) else np.uint8  # what each layout's loader gives
    volumes = [volume(2, 0, seg_dtype), volume(3, 10, seg_dtype)]  # [2, 4, 5], [3, 4, 5]
    dataset = module.SlicesDataset(volumes)
    assert len(dataset) == 5
    item = dataset[3]  # the second slice of the second volume
    assert item["id"] == 3
    image, seg = np.asarray(item["image"]), np.asarray(item["seg"])
    assert image.shape == (1, 4, 5) and seg.shape == (1, 4, 5), (
        f"item shapes {image.shape} and {seg.shape}; expected [1, H, W] = (1, 4, 5)")
    assert np.allclose(image[0], volumes[1]["image"][1]), (
        f"item 3 holds image values {np.unique(image)}; slice 1 of volume 1 holds "
        f"{np.unique(volumes[1]['image'][1])}")
    assert np.array_equal(seg[0], volumes[1]["seg"][1])

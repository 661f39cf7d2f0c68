"""Hidden tests of SlicesDataset (TASK S2.06), data_prep/SlicesDataset.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.runtime.checks import check
from grader.runtime.fixtures import is_course

DEPTHS = (1, 3, 2)  # slices of the three volumes
SHAPE = (6, 4)  # [H, W]


def volumes(seg_dtype=np.uint8) -> list[dict]:
    """Three loaded volumes [X, 6, 4] whose image slices each hold distinct values."""
    rng = np.random.default_rng(0)
    return [{"image": rng.uniform(0, 1, (depth, *SHAPE)).astype(np.float32),
             "seg": rng.choice(3, size=(depth, *SHAPE)).astype(seg_dtype),
             "filename": f"case_{index}.nii.gz"} for index, depth in enumerate(DEPTHS)]


@pytest.mark.task("S2.06", points=1)
def test_every_index_gives_its_own_volume_and_slice(code):
    data = volumes(np.int64 if is_course(code) else np.uint8)  # each layout's loader's labels
    dataset = code.import_module("data_prep.SlicesDataset").SlicesDataset(data)
    check(len(dataset) == sum(DEPTHS), "len(SlicesDataset) must be the number of slices of "
                                       "all volumes together")
    pairs = [(volume, index) for volume in data for index in range(volume["image"].shape[0])]
    for idx, (volume, index) in enumerate(pairs):
        item = dataset[idx]
        check(item["id"] == idx, "item['id'] must be the index it was asked for")
        image, seg = np.asarray(item["image"]), np.asarray(item["seg"])
        check(image.shape == (1, *SHAPE) and seg.shape == (1, *SHAPE),
              "item['image'] and item['seg'] must be [1, H, W]")
        check(np.array_equal(image[0], volume["image"][index])
              and np.array_equal(seg[0], volume["seg"][index]),
              "item idx must be slice idx counted through volume 0's slices, then volume 1's, "
              "and so on (the first and the last index included)")


@pytest.mark.layout("course")
@pytest.mark.task("S2.06", points=1)
def test_course_items_are_float_image_and_seg_tensors_of_the_slice(code):
    data = volumes(np.int64)
    dataset = code.import_module("data_prep.SlicesDataset").SlicesDataset(data)
    for idx, (volume, index) in ((0, (data[0], 0)), (len(dataset) - 1, (data[-1], -1))):
        item = dataset[idx]
        check(isinstance(item["image"], torch.Tensor) and isinstance(item["seg"], torch.Tensor),
              "item['image'] and item['seg'] must be torch tensors (the TASK: \"put a Torch "
              "Tensor into your dictionary\")")
        # The course names no dtype: a float seg that train() casts to long is fine.
        check(item["image"].dtype.is_floating_point, "item['image'] must be a float tensor")
        check(np.array_equal(item["seg"].numpy()[0], volume["seg"][index]),
              "item['seg'] must hold the slice's labels unchanged")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.06", points=1)
def test_items_are_a_float32_image_and_an_integer_seg_tensor(code):
    dataset = code.import_module("data_prep.SlicesDataset").SlicesDataset(volumes())
    for idx in (0, len(dataset) - 1):
        item = dataset[idx]
        check(isinstance(item["image"], torch.Tensor) and isinstance(item["seg"], torch.Tensor),
              "item['image'] and item['seg'] must be torch tensors")
        check(item["image"].dtype == torch.float32, "item['image'] must be a float32 tensor")
        check(not item["seg"].dtype.is_floating_point and item["seg"].dtype != torch.bool,
              "item['seg'] must be an integer tensor (class indices), never float")

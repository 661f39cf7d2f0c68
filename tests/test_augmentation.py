"""SliceAugmentation: random rotation, scaling, shift and gamma of training slices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_prep.augmentation import SliceAugmentation
from utils.volume_stats import Dice3d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def items(n: int = 6, seed: int = 0) -> list[dict]:
    """Slices [1, 32, 24] whose image is bright exactly where the label is hippocampus."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(n):
        seg = np.zeros((1, 32, 24), np.int64)
        top, left = rng.integers(6, 14), rng.integers(5, 10)
        seg[0, top:top + 10, left:left + 4] = 1
        seg[0, top:top + 10, left + 4:left + 9] = 2
        image = np.where(seg > 0, 0.9, 0.1).astype(np.float32)
        out.append({"id": index, "image": torch.from_numpy(image), "seg": torch.from_numpy(seg)})
    return out


def test_batch_keeps_shapes_dtypes_and_value_ranges():
    batch = SliceAugmentation(generator=torch.Generator().manual_seed(0))(items())
    assert batch["image"].shape == batch["seg"].shape == (6, 1, 32, 24)
    assert batch["image"].dtype == torch.float32 and batch["seg"].dtype == torch.int64
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert set(batch["seg"].unique().tolist()) <= {0, 1, 2}
    assert batch["id"].tolist() == list(range(6))


def test_zero_ranges_give_back_the_slices_unchanged():
    identity = SliceAugmentation(rotation_degrees=0, scale=0, shift=0, log_gamma=0)
    batch, slices = identity(items()), items()
    torch.testing.assert_close(batch["image"], torch.stack([s["image"] for s in slices]))
    assert torch.equal(batch["seg"], torch.stack([s["seg"] for s in slices]))


def test_image_and_label_move_together():
    batch = SliceAugmentation(log_gamma=0, generator=torch.Generator().manual_seed(1))(items())
    moved = batch["seg"] != torch.stack([s["seg"] for s in items()])
    assert moved.any(), "the geometry did not change"
    for image, seg in zip(batch["image"][:, 0], batch["seg"][:, 0], strict=True):
        assert Dice3d((image > 0.5).numpy()[None], seg.numpy()[None]) > 0.85


def test_draws_repeat_with_the_seed_and_differ_between_batches():
    first = SliceAugmentation(generator=torch.Generator().manual_seed(2))
    second = SliceAugmentation(generator=torch.Generator().manual_seed(2))
    a, b = first(items()), second(items())
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["seg"], b["seg"])
    assert not torch.equal(first(items())["image"], a["image"])

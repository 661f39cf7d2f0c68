# Generated from solution/section2/src/data_prep/augmentation.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Random in-plane geometry and intensity changes of training slices, drawn per slice.

A model trained for a few epochs on 125 volumes starts to fit their particulars; showing each
slice slightly rotated, scaled, shifted and with another contrast every time keeps the
validation Dice rising for longer. The transforms are a mild subset of those nnU-Net trains
with (Isensee et al., "nnU-Net", Nature Methods 2021): rotation, scaling, gamma. There are no
mirrorings: a mirrored sagittal slice would put the anterior hippocampus at the back.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional
from torch.utils.data import default_collate


class SliceAugmentation:
    """A DataLoader ``collate_fn``: batch the slices, then transform each one at random.

    Every slice gets its own rotation in [-rotation_degrees, rotation_degrees] about the
    patch centre, scaling by a factor in [1 - scale, 1 + scale], shift by up to ``shift``
    of the patch size on each axis, and gamma correction ``image ** g`` with
    ``log g`` in [-log_gamma, log_gamma]. Images are resampled bilinearly and labels with
    the nearest neighbour, so labels stay in {0, 1, 2}; what moves in from outside the
    patch is zero (background).

    Args:
        rotation_degrees: largest rotation, degrees.
        scale: largest relative change of size.
        shift: largest shift, as a fraction of the patch size.
        log_gamma: largest |log| of the gamma exponent.
        generator: torch generator for the draws (seed it for repeatable runs).

    Call:
        items: ``SlicesDataset`` items ``{"id", "image" float32 [1, H, W] in [0, 1],
        "seg" int64 [1, H, W]}``. Returns the collated batch with ``image`` float32
        [B, 1, H, W] in [0, 1] and ``seg`` int64 [B, 1, H, W], both transformed alike.
    """

    def __init__(self, rotation_degrees: float = 15.0, scale: float = 0.15, shift: float = 0.05,
                 log_gamma: float = 0.3, generator: torch.Generator | None = None) -> None:
        self.rotation = math.radians(rotation_degrees)
        self.scale = scale
        self.shift = shift
        self.log_gamma = log_gamma
        self.generator = generator

    def uniform(self, *shape: int, bound: float) -> torch.Tensor:
        """Draws from U(-bound, bound) of ``shape``."""
        return (2.0 * torch.rand(*shape, generator=self.generator) - 1.0) * bound

    def __call__(self, items: list[dict]) -> dict:
        """Collate ``items`` and transform every slice (see the class docstring)."""
        batch = default_collate(items)
        image, seg = batch["image"], batch["seg"]
        n = len(image)
        angle = self.uniform(n, bound=self.rotation)
        zoom = 1.0 + self.uniform(n, bound=self.scale)
        # affine_grid maps output to input coordinates in [-1, 1]: a shift of 2 * s moves the
        # content by s of the patch size.
        offset = self.uniform(n, 2, bound=2.0 * self.shift)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], dim=1),
                             torch.stack([sin, cos, offset[:, 1]], dim=1)], dim=1)
        grid = functional.affine_grid(theta, list(image.shape), align_corners=False)
        image = functional.grid_sample(image, grid, mode="bilinear", align_corners=False)
        seg = functional.grid_sample(seg.to(image.dtype), grid, mode="nearest",
                                     align_corners=False)
        gamma = torch.exp(self.uniform(n, 1, 1, 1, bound=self.log_gamma))
        batch["image"] = image.clamp(0.0, 1.0) ** gamma
        batch["seg"] = seg.round().to(torch.int64)
        return batch

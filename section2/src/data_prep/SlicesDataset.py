"""A torch Dataset over every axis-0 slice of a list of loaded volumes."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class SlicesDataset(Dataset):
    """Every axis-0 slice of every volume, as one 2-D training example.

    Args:
        data: volumes from ``LoadHippocampusData``: dicts with ``image`` float32
            [X, H, W] in [0, 1] and ``seg`` uint8 [X, H, W] in {0, 1, 2}.

    Item ``idx`` is ``{"id": idx, "image": float32 tensor [1, H, W], "seg": int64 tensor
    [1, H, W]}``; slices are numbered volume by volume, in order.
    """

    def __init__(self, data: list[dict]) -> None:
        self.data = data
        depths = np.array([volume["image"].shape[0] for volume in data], dtype=np.int64)
        # Slice idx belongs to the volume whose cumulative end first exceeds idx.
        self.slice_ends = np.cumsum(depths)

    def __len__(self) -> int:
        """Total number of axis-0 slices."""
        return int(self.slice_ends[-1]) if len(self.slice_ends) else 0

    def __getitem__(self, idx: int) -> dict:
        """Return slice ``idx`` as a dict of [1, H, W] tensors (see class docstring).

        Raises:
            IndexError: when idx is outside [0, len(self)).
        """
        if not 0 <= idx < len(self):
            raise IndexError(f"slice index {idx} outside [0, {len(self)})")
        # TASK S2.06: Return slice `idx` of the data set as a dict of [1, H, W] tensors.
        #   Why: the training loop sees 2-D examples; slice idx counts through every axis-0
        #   slice of volume 0, then of volume 1, and so on (self.slice_ends holds the
        #   cumulative slice counts, e.g. [35, 71, ...]).
        #   Out: {"id": idx, "image": float32 tensor [1, H, W] in [0, 1], "seg": int64 tensor
        #   [1, H, W] in {0, 1, 2}}; the leading 1 is the channel axis the U-Net expects.
        #   Hint: np.searchsorted(self.slice_ends, idx, side="right") finds the volume;
        #   torch.from_numpy turns an array into a tensor, arr[None] adds an axis.
        #   Check: pytest grader -k S2.06  (item len(self) - 1 is the last slice of the last
        #   volume)
        raise NotImplementedError("TASK S2.06: Return slice `idx` of the data set as a dict of [1, H, W] tensors.")

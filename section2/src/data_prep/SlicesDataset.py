# Generated from solution/section2/src/data_prep/SlicesDataset.py by tools/make_skeleton.py; edit that file, then run the tool.
"""A torch Dataset over every axis-0 slice of a list of loaded volumes, and a sampler that
draws fewer of the slices that show no hippocampus."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


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


class ForegroundSliceSampler(Sampler[int]):
    """Every slice that shows hippocampus, plus a fresh random share of the empty ones.

    Many axis-0 slices of MSD Task04 are all background (38 % of the slices of the 208 clean
    volumes). They teach little after the first epoch, so each epoch draws a new
    ``empty_fraction`` of them: over a run the model still sees them all, at a fraction of
    the cost. The epoch's indices come in random order.

    Args:
        dataset: the ``SlicesDataset`` to sample; its slices are numbered volume by volume.
        empty_fraction: share of the all-background slices drawn per epoch, in [0, 1].
        generator: torch generator for the draw and the order (seed it for repeatable runs).

    Raises:
        ValueError: when ``empty_fraction`` is outside [0, 1].
    """

    def __init__(self, dataset: SlicesDataset, empty_fraction: float,
                 generator: torch.Generator | None = None) -> None:
        if not 0.0 <= empty_fraction <= 1.0:
            raise ValueError(f"empty_fraction must be in [0, 1], got {empty_fraction}")
        shows_foreground = np.concatenate(
            [volume["seg"].reshape(len(volume["seg"]), -1).any(axis=1) for volume in dataset.data]
            or [np.zeros(0, dtype=bool)])
        self.foreground = torch.from_numpy(np.flatnonzero(shows_foreground))
        self.empty = torch.from_numpy(np.flatnonzero(~shows_foreground))
        self.n_empty = round(empty_fraction * len(self.empty))
        self.generator = generator

    def __len__(self) -> int:
        """Slices per epoch: every foreground slice and ``n_empty`` empty ones."""
        return len(self.foreground) + self.n_empty

    def __iter__(self):
        """Yield this epoch's slice indices (ints) in random order."""
        empty = self.empty[torch.randperm(len(self.empty), generator=self.generator)]
        chosen = torch.cat([self.foreground, empty[:self.n_empty]])
        yield from chosen[torch.randperm(len(chosen), generator=self.generator)].tolist()

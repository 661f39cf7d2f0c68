"""Reference versions of TASK code, for the grader's own use: never shipped to students.

The grading tests swap these in for a submission's own helpers where a test grades one TASK
and must not lose points for another (see ``grader/runtime/fixtures.py``). They live under
``grader/hidden/`` because they are answers (S2.03, S2.04, S2.06, S2.12, S2.13); the student
release leaves this folder out, and the public tests then use the student's own code.
"""

from __future__ import annotations

import numpy as np
import torch


def reference_med_reshape(image: np.ndarray, new_shape: tuple[int, ...]) -> np.ndarray:
    """Zeros of ``new_shape`` (dtype kept) with ``image`` in the top-left corner."""
    reshaped = np.zeros(tuple(new_shape), dtype=image.dtype)
    reshaped[tuple(slice(0, size) for size in image.shape)] = image
    return reshaped


def reference_normalize(image: np.ndarray) -> np.ndarray:
    """float32 (image - min) / (max - min) of the whole volume."""
    image = np.asarray(image, dtype=np.float64)
    low, high = image.min(), image.max()
    return ((image - low) / (high - low)).astype(np.float32)


def reference_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of the foregrounds (label != 0); 1.0 when both are empty."""
    mask_a, mask_b = np.asarray(a) != 0, np.asarray(b) != 0
    total = np.count_nonzero(mask_a) + np.count_nonzero(mask_b)
    return 1.0 if total == 0 else 2.0 * np.count_nonzero(mask_a & mask_b) / total


def reference_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index of the foregrounds (label != 0); 1.0 when both are empty."""
    mask_a, mask_b = np.asarray(a) != 0, np.asarray(b) != 0
    union = np.count_nonzero(mask_a | mask_b)
    return 1.0 if union == 0 else np.count_nonzero(mask_a & mask_b) / union


class ReferenceSlices(torch.utils.data.Dataset):
    """Every axis-0 slice of ``volumes``, as the kit's SlicesDataset gives it.

    Item idx: ``{"id": idx, "image": float32 tensor [1, H, W], "seg": int64 tensor [1, H, W]}``.
    """

    def __init__(self, volumes: list[dict]) -> None:
        self.slices = [(volume, index) for volume in volumes
                       for index in range(volume["image"].shape[0])]

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, idx: int) -> dict:
        volume, index = self.slices[idx]
        return {"id": idx,
                "image": torch.from_numpy(volume["image"][index][None].astype(np.float32)),
                "seg": torch.from_numpy(volume["seg"][index][None].astype(np.int64))}


class ReferenceAgent:
    """An inference agent with the course's constructor whose single_volume_inference is the
    argmax of the model's logits over every axis-0 slice (TASKs S2.09, S2.10)."""

    def __init__(self, parameter_file_path: str = "", model: torch.nn.Module | None = None,
                 device="cpu", patch_size: int = 64, **kwargs) -> None:
        if model is None:
            raise ValueError("the reference agent needs a model")
        self.model, self.device, self.patch_size = model, device, patch_size

    def single_volume_inference(self, volume: np.ndarray) -> np.ndarray:
        """int64 labels [X, H, W] of a padded float volume [X, H, W]."""
        self.model.eval()
        slices = torch.from_numpy(np.asarray(volume, dtype=np.float32)[:, None])
        with torch.no_grad():
            return self.model(slices).argmax(dim=1).cpu().numpy()

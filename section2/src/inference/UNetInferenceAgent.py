# Generated from solution/section2/src/inference/UNetInferenceAgent.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Predict hippocampus label volumes with a trained U-Net, slice by axis-0 slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from networks.model_file import read_model_file
from utils.utils import med_reshape, normalize_intensity, patch_shape, require_finite

INFERENCE_BATCH_SIZE = 64  # slices per forward pass: a whole volume (<= 43 slices) at once
COURSE_PATCH_SIZE = 64  # px, the course's patch: for a model given without its model file


class UNetInferenceAgent:
    """Runs a U-Net over whole volumes.

    Args:
        parameter_file_path: a ``model.pth`` to load (networks/model_file.py); used when
            ``model`` is None.
        model: an already built U-Net (e.g. the one just trained).
        device: torch device for inference.
        patch_size: px of the patch the model was trained on, which volumes are padded to:
            one int for a square patch, or (rows, columns). None: the model.pth's own patch,
            or the course's 64 for a ``model``.
        batch_size: slices per forward pass.

    Attributes:
        patch_shape: (rows, columns) in px of the padded axis-0 slices, e.g. (64, 64).

    Raises:
        ValueError: when neither a model nor a parameter file is given.
    """

    def __init__(self, parameter_file_path: str | Path = "", model: nn.Module | None = None,
                 device: str | torch.device = "cpu",
                 patch_size: int | tuple[int, int] | None = None,
                 batch_size: int = INFERENCE_BATCH_SIZE) -> None:
        saved = {}
        if model is None:
            if not parameter_file_path:
                raise ValueError("give a model or the path of a model.pth")
            model, saved = read_model_file(parameter_file_path, device)
        self.model = model.to(device)
        self.device = torch.device(device)
        if patch_size is None:  # the patch the model file was trained on, else the course's
            patch_size = saved.get("patch_shape", COURSE_PATCH_SIZE)
        self.patch_size = patch_size
        self.patch_shape = patch_shape(patch_size)
        self.batch_size = batch_size

    def predict_logits(self, volume: np.ndarray) -> torch.Tensor:
        """Logits of every axis-0 slice of a padded, normalised volume.

        Args:
            volume: float [X, H, W] in [0, 1], H and W divisible by 2**num_downs.

        Returns:
            float32 tensor [X, C, H, W] on the CPU.
        """
        # TASK S2.09: Run the model over every axis-0 slice of `volume` and return the logits.
        #   Why: inference must not track gradients (memory, speed) and must put the model in
        #   eval mode (dropout off, normalisation layers in inference behaviour).
        #   In: volume float [X, H, W] in [0, 1]. Out: float32 tensor [X, C, H, W] on the CPU.
        #   Feed the slices as a [N, 1, H, W] batch, at most self.batch_size at a time, on
        #   self.device.
        #   Hint: self.model.eval(), torch.inference_mode(), torch.split, torch.cat.
        #   Check: pytest grader -k S2.09  (the logits equal model(slices) in eval mode)
        raise NotImplementedError("TASK S2.09: Run the model over every axis-0 slice of `volume` and return the logits.")

    def single_volume_inference(self, volume: np.ndarray) -> np.ndarray:
        """Predict the labels of a volume already normalised and padded to the patch.

        Args:
            volume: float [X, *patch_shape] in [0, 1], e.g. [X, 64, 64].

        Returns:
            uint8 of the same shape, values {0, 1, 2}: argmax of the logits.

        Raises:
            ValueError: when the in-plane shape is not ``patch_shape``, or a voxel is NaN or
                infinite.
        """
        if volume.ndim != 3 or volume.shape[1:] != self.patch_shape:
            raise ValueError(f"expected a volume [X, {self.patch_shape[0]}, "
                             f"{self.patch_shape[1]}], got {volume.shape}; use "
                             "single_volume_inference_unpadded")
        require_finite(volume)
        # TASK S2.10: Predict the label of every voxel of a padded volume.
        #   Why: the network outputs one score per class; the predicted label is the class
        #   with the highest score.
        #   In: volume float [X, *self.patch_shape] in [0, 1]. Out: uint8 of the same shape,
        #   values in {0, 1, 2}.
        #   Hint: self.predict_logits (TASK S2.09) and argmax over the class axis (dim=1).
        #   Check: pytest grader -k S2.10  (output shape equals input shape, labels in {0, 1, 2})
        raise NotImplementedError("TASK S2.10: Predict the label of every voxel of a padded volume.")

    def single_volume_inference_unpadded(self, volume: np.ndarray) -> np.ndarray:
        """Predict the labels of a raw volume of any in-plane size up to the patch.

        Normalises exactly as in training (per volume to [0, 1]), pads with ``med_reshape``,
        predicts, and crops back.

        Args:
            volume: [X, Y, Z] raw intensities, any real dtype, (Y, Z) <= patch_shape.

        Returns:
            uint8 [X, Y, Z], values {0, 1, 2}.

        Raises:
            ValueError: when the volume is not 3-D, exceeds the patch in-plane, is constant,
                or holds a NaN or infinite voxel (the message gives their count).
        """
        if volume.ndim != 3:
            raise ValueError(f"expected a 3-D volume [X, Y, Z], got shape {volume.shape}")
        x_size, y_size, z_size = volume.shape
        if y_size > self.patch_shape[0] or z_size > self.patch_shape[1]:
            raise ValueError(f"in-plane size {(y_size, z_size)} exceeds the patch "
                             f"{self.patch_shape} of this model: it segments hippocampus "
                             "crops like MSD Task04's, not whole-brain scans")
        # TASK S2.11: Predict a raw volume of any in-plane size: normalise, pad, predict, crop.
        #   Why: new scans are not padded; the prediction must match the scan voxel for voxel.
        #   Normalise exactly as the loader does in training, pad to [X, *self.patch_shape]
        #   (e.g. [X, 64, 64]) in the top-left corner, predict, and crop back to [X, Y, Z].
        #   In: volume [X, Y, Z] raw intensities. Out: uint8 [X, Y, Z] in {0, 1, 2}.
        #   Hint: normalize_intensity (TASK S2.03), med_reshape (TASK S2.04), then slicing.
        #   Check: pytest grader -k S2.11  (a [5, 40, 30] volume gives a [5, 40, 30] result)
        raise NotImplementedError("TASK S2.11: Predict a raw volume of any in-plane size: normalise, pad, predict, crop.")

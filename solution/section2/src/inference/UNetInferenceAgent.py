"""Predict hippocampus label volumes with a trained U-Net, slice by axis-0 slice."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from networks.RecursiveUNet import UNet
from utils.utils import med_reshape, normalize_intensity

INFERENCE_BATCH_SIZE = 64  # slices per forward pass: a whole volume (<= 43 slices) at once


def build_model(architecture: dict) -> UNet:
    """Build the U-Net described by a checkpoint's ``architecture`` dict (UNet's kwargs)."""
    return UNet(**architecture)


def load_model_file(path: str | Path, device: str | torch.device = "cpu") -> UNet:
    """Load a ``model.pth`` written by ``UNetExperiment.save_model_parameters``.

    Args:
        path: file holding ``{"architecture": UNet kwargs, "state_dict": weights}``.
        device: where to put the model.

    Returns:
        The U-Net with its weights, on ``device``, in eval mode.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not a PyTorch file, lacks those keys, or its weights do
            not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; train a model first")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    # What torch.load raises on a file that is not a PyTorch archive, or a damaged one.
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, KeyError) as err:
        raise ValueError(f"{path} is not a readable PyTorch file: {err!r}") from err
    if not isinstance(saved, dict) or not {"architecture", "state_dict"} <= saved.keys():
        raise ValueError(f"{path} lacks 'architecture' and 'state_dict'; write it with "
                         "UNetExperiment.save_model_parameters")
    model = build_model(saved["architecture"])
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the U-Net {saved['architecture']}: "
                         f"{err}") from err
    return model.to(device).eval()


class UNetInferenceAgent:
    """Runs a U-Net over whole volumes.

    Args:
        parameter_file_path: a ``model.pth`` to load; used when ``model`` is None.
        model: an already built U-Net (e.g. the one just trained).
        device: torch device for inference.
        patch_size: in-plane size (px) the model was trained on; volumes are padded to it.
        batch_size: slices per forward pass.

    Raises:
        ValueError: when neither a model nor a parameter file is given.
    """

    def __init__(self, parameter_file_path: str = "", model: nn.Module | None = None,
                 device: str | torch.device = "cpu", patch_size: int = 64,
                 batch_size: int = INFERENCE_BATCH_SIZE) -> None:
        if model is None:
            if not parameter_file_path:
                raise ValueError("give a model or the path of a model.pth")
            model = load_model_file(parameter_file_path, device)
        self.model = model.to(device)
        self.device = torch.device(device)
        self.patch_size = patch_size
        self.batch_size = batch_size

    def predict_logits(self, volume: np.ndarray) -> torch.Tensor:
        """Logits of every axis-0 slice of a padded, normalised volume.

        Args:
            volume: float [X, H, W] in [0, 1], H and W divisible by 2**num_downs.

        Returns:
            float32 tensor [X, C, H, W] on the CPU.
        """
        self.model.eval()  # no dropout, and normalisation layers in inference mode
        slices = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32)).unsqueeze(1)
        outputs = []
        with torch.inference_mode():
            for batch in torch.split(slices, self.batch_size):
                outputs.append(self.model(batch.to(self.device)).float().cpu())
        return torch.cat(outputs)

    def single_volume_inference(self, volume: np.ndarray) -> np.ndarray:
        """Predict the labels of a volume already normalised and padded to the patch size.

        Args:
            volume: float [X, patch_size, patch_size] in [0, 1].

        Returns:
            uint8 [X, patch_size, patch_size], values {0, 1, 2}: argmax of the logits.

        Raises:
            ValueError: when the in-plane shape is not (patch_size, patch_size).
        """
        if volume.ndim != 3 or volume.shape[1:] != (self.patch_size, self.patch_size):
            raise ValueError(f"expected a volume [X, {self.patch_size}, {self.patch_size}], "
                             f"got {volume.shape}; use single_volume_inference_unpadded")
        return self.predict_logits(volume).argmax(dim=1).numpy().astype(np.uint8)

    def single_volume_inference_unpadded(self, volume: np.ndarray) -> np.ndarray:
        """Predict the labels of a raw volume of any in-plane size up to the patch size.

        Normalises exactly as in training (per volume to [0, 1]), pads with ``med_reshape``,
        predicts, and crops back.

        Args:
            volume: [X, Y, Z] raw intensities, any real dtype, Y and Z <= patch_size.

        Returns:
            uint8 [X, Y, Z], values {0, 1, 2}.

        Raises:
            ValueError: when the volume is not 3-D, exceeds the patch in-plane, or is
                constant.
        """
        if volume.ndim != 3:
            raise ValueError(f"expected a 3-D volume [X, Y, Z], got shape {volume.shape}")
        x_size, y_size, z_size = volume.shape
        if y_size > self.patch_size or z_size > self.patch_size:
            raise ValueError(f"in-plane size {(y_size, z_size)} exceeds the patch size "
                             f"{self.patch_size}")
        padded = med_reshape(normalize_intensity(volume),
                             (x_size, self.patch_size, self.patch_size))
        return self.single_volume_inference(padded)[:, :y_size, :z_size]

# Generated from solution/section2/src/networks/model_file.py by tools/make_skeleton.py; edit that file, then run the tool.
"""The model file ``model.pth``: how training writes a U-Net and inference reads it back.

A model file is a ``torch.save``d dict:

- ``"architecture"``: the ``UNet`` keyword arguments (num_classes, in_channels,
  initial_filter_size, num_downs), so the file rebuilds its own network;
- ``"state_dict"``: the weights;
- ``"patch_shape"``: (rows, columns) in px of the padded axis-0 slices the model was trained
  on, so inference pads new volumes the same way.

Training's checkpoints (``checkpoints/last.pth``, ``best.pth``) are model files with the
training state added, so either can be read as a model file.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from networks.RecursiveUNet import UNet

MODEL_FILE = "model.pth"  # the file name in a session folder (the course's)
MODEL_FILE_KEYS = ("architecture", "state_dict")  # what every model file holds


def build_model(architecture: dict) -> UNet:
    """Build the U-Net described by a model file's ``architecture`` dict (UNet's kwargs)."""
    return UNet(**architecture)


def model_file_contents(architecture: dict, state_dict: dict,
                        patch_shape: tuple[int, int]) -> dict:
    """The dict a model file holds (see the module docstring).

    Args:
        architecture: UNet's keyword arguments.
        state_dict: the weights, as ``model.state_dict()`` returns them.
        patch_shape: (rows, columns) in px of the padded slices the model was trained on.
    """
    return {"architecture": dict(architecture), "state_dict": state_dict,
            "patch_shape": tuple(patch_shape)}


def save_atomically(contents: dict, path: str | Path) -> None:
    """Write ``contents`` with torch.save to a temporary file, then rename it onto ``path``.

    A kill at any moment leaves either the previous file or the new one, never half of one.
    """
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(contents, temporary)
    os.replace(temporary, path)


def read_model_file(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """Read a model file written with ``model_file_contents`` and ``save_atomically``.

    Args:
        path: the model file (or a checkpoint).
        device: where to put the model.

    Returns:
        (the U-Net with its weights, on ``device``, in eval mode; the file's whole dict).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not a PyTorch file, lacks ``architecture`` and
            ``state_dict``, or its weights do not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; train a model first")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    # What torch.load raises on a file that is not a PyTorch archive, or a damaged one.
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, KeyError) as err:
        raise ValueError(f"{path} is not a readable PyTorch file: {err!r}") from err
    if not isinstance(saved, dict) or not set(MODEL_FILE_KEYS) <= saved.keys():
        raise ValueError(f"{path} lacks 'architecture' and 'state_dict'; write it with "
                         "UNetExperiment.save_model_parameters")
    model = build_model(saved["architecture"])
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the U-Net {saved['architecture']}: "
                         f"{err}") from err
    return model.to(device).eval(), saved

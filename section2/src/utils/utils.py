# Generated from solution/section2/src/utils/utils.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Array helpers shared by the loader, the training loop and the inference agent.

``med_reshape`` pads a volume into the fixed in-plane patch the U-Net expects (``patch_shape``
reads the patch from the course's ``patch_size``);
``normalize_intensity`` is the one intensity normalisation used in training and inference;
the rest draws slices for TensorBoard and for the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen needed: figures go to files and TensorBoard
import matplotlib.pyplot as plt
import numpy as np
import torch

logger = logging.getLogger(__name__)

MAX_GRID_IMAGES = 16  # a 4 x 4 grid stays readable in TensorBoard and in a report
PANEL_IMAGES = 4  # slices per TensorBoard panel: enough to judge, cheap to write
NUM_CLASSES = 3  # background, anterior, posterior (MSD Task04 labels)

# TensorBoard scalar tags of the training pipeline, in one run. Every scalar's step is the
# number of training batches so far, so that validation points (one per epoch, at its last
# batch) share the x axis with the training loss (one per batch). TensorBoard's dashboards
# sort tag groups (the part before "/") by name, capitals first: "Dice" comes first, above
# the image panels ("Image", "Mask", ...), then "Learning rate" and "Loss".
TRAIN_LOSS_TAG = "Loss/train"
VALIDATION_LOSS_TAG = "Loss/validation"
VALIDATION_DICE_TAG = "Dice/validation"
LEARNING_RATE_TAG = "Learning rate"
# The Custom Scalars dashboard (http://localhost:6006/#custom_scalars) draws the tags of each
# chart as lines of ONE chart, in this order: validation Dice, then train and validation loss.
# Its tags are regular expressions: anchored, so that each matches its own tag only.
TENSORBOARD_LAYOUT = {
    "Training": {
        "Validation Dice (whole hippocampus, each epoch)": [
            "Multiline", [f"^{VALIDATION_DICE_TAG}$"]],
        "Loss: train (each batch) and validation (each epoch)": [
            "Multiline", [f"^{TRAIN_LOSS_TAG}$", f"^{VALIDATION_LOSS_TAG}$"]],
        "Learning rate (each batch)": ["Multiline", [f"^{LEARNING_RATE_TAG}$"]],
    },
}


def patch_shape(patch_size: int | tuple[int, int]) -> tuple[int, int]:
    """The (rows, columns) in px of the padded axis-0 slices, from a ``patch_size``.

    Args:
        patch_size: px; one int for a square patch (the course's 64), or (rows, columns)
            for a patch that is not square (a list, as JSON stores a pair, works too).

    Returns:
        (rows, columns), two ints.

    Raises:
        ValueError: when ``patch_size`` is neither an int nor a pair of ints.
    """
    if isinstance(patch_size, (int, np.integer)):
        return int(patch_size), int(patch_size)
    try:
        if isinstance(patch_size, str):  # "64" would unpack into 6 and 4
            raise TypeError("a str is not a size")
        rows, columns = (int(size) for size in patch_size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"patch_size {patch_size!r}: expected px as one int or a pair "
                         "(rows, columns)") from err
    return rows, columns


def med_reshape(image: np.ndarray, new_shape: tuple[int, ...]) -> np.ndarray:
    """Pad ``image`` with zeros to ``new_shape``, keeping it in the top-left corner.

    Args:
        image: array of any dtype, e.g. an image float32 [X, Y, Z] or a seg uint8 [X, Y, Z].
        new_shape: target shape, same rank as ``image`` and at least as large on every axis.

    Returns:
        A new array of ``new_shape`` and ``image.dtype``: zeros, with ``image`` written at
        index [0:X, 0:Y, 0:Z]. The input is not modified.

    Raises:
        ValueError: when the ranks differ or ``image`` is larger than ``new_shape`` on an axis.
    """
    new_shape = tuple(int(size) for size in new_shape)
    if image.ndim != len(new_shape):
        raise ValueError(f"cannot pad an array of rank {image.ndim} {image.shape} "
                         f"to rank {len(new_shape)} {new_shape}")
    if any(old > new for old, new in zip(image.shape, new_shape, strict=True)):
        raise ValueError(f"array shape {image.shape} is larger than the target {new_shape}; "
                         "raise the patch size or crop the volume")
    # TASK S2.04: Pad `image` with zeros to `new_shape`, keeping it in the top-left corner.
    #   Why: the U-Net takes slices of one fixed size, but the volumes differ in size; padding
    #   at the far end of each axis keeps index [0, 0, 0] in place, so crop-back is a slice.
    #   In: image [X, Y, Z] of any dtype; new_shape (X', Y', Z') >= image.shape on every axis.
    #   Out: a NEW array of new_shape and image.dtype (do not modify `image`).
    #   Hint: np.zeros with a dtype, then assign into a tuple of slice(0, size) objects.
    #   Check: pytest grader -k S2.04  (padding a [2, 3, 3] block of ones to [2, 4, 4] leaves
    #   9 * 2 = 18 ones, all at indices [0:2, 0:3, 0:3])
    raise NotImplementedError("TASK S2.04: Pad `image` with zeros to `new_shape`, keeping it in the top-left corner.")


def require_finite(image: np.ndarray) -> None:
    """Refuse a volume that holds a NaN or infinite voxel, saying how many it holds.

    One such voxel silently ruins everything downstream: min-max scaling turns the whole
    volume into zeros and NaN, and the network's output for it is meaningless.

    Args:
        image: array [X, Y, Z] of any real dtype.

    Raises:
        ValueError: when a voxel is NaN or infinite; the message gives their count.
    """
    n_bad = image.size - int(np.count_nonzero(np.isfinite(image)))
    if n_bad:
        raise ValueError(f"volume holds {n_bad} non-finite voxel{'s' * (n_bad > 1)} "
                         f"(NaN or inf) of {image.size}; it cannot be used")


def normalize_intensity(image: np.ndarray) -> np.ndarray:
    """Rescale one volume's intensities linearly to [0, 1] by its own minimum and maximum.

    MSD Task04 images differ in scale by four orders of magnitude between cases (maxima from
    about 120 to 1.7e6), so every volume is normalised on its own, as a whole (not per slice).

    Args:
        image: array [X, Y, Z] of any real dtype, raw scanner intensities.

    Returns:
        float32 [X, Y, Z] in [0, 1]: (image - min) / (max - min).

    Raises:
        ValueError: when the volume is empty, holds a non-finite voxel (NaN or inf: one of
            them turns the whole result into zeros and NaN), or has constant intensity.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.size == 0:
        raise ValueError("cannot normalise an empty volume")
    require_finite(image)
    # TASK S2.03: Rescale one volume linearly to [0, 1] by its own minimum and maximum.
    #   Why: scanner intensities differ by four orders of magnitude between cases; the network
    #   needs one scale. Normalise the whole volume at once, not slice by slice: per-slice
    #   scaling changes the contrast between neighbouring slices. Labels are never normalised.
    #   In: image float32 [X, Y, Z], raw intensities. Out: float32 [X, Y, Z], min 0.0, max 1.0.
    #   Raise ValueError when the volume has constant intensity (max == min): no image there.
    #   Hint: image.min() and image.max() of the whole array.
    #   Check: pytest grader -k S2.03  ([[[2, 4], [6, 10]]] becomes [[[0, 0.25], [0.5, 1]]])
    raise NotImplementedError("TASK S2.03: Rescale one volume linearly to [0, 1] by its own minimum and maximum.")


def mpl_image_grid(images: np.ndarray | torch.Tensor) -> plt.Figure:
    """Draw up to 16 slices in a square grid.

    Args:
        images: [N, H, W] or [N, 1, H, W] slices (float in [0, 1] or labels); only the first
            16 are drawn.

    Returns:
        A matplotlib figure; the caller closes or saves it.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    images = images[:MAX_GRID_IMAGES]
    side = max(1, int(np.ceil(np.sqrt(len(images)))))
    figure, axes = plt.subplots(side, side, figsize=(2 * side, 2 * side), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image in zip(axes.flat, images, strict=False):
        axis.imshow(image, cmap="gray")
    figure.tight_layout()
    return figure


def save_numpy_as_image(arr: np.ndarray, path: str | Path) -> None:
    """Save a 2-D array as a greyscale image, scaled to its own min and max.

    Args:
        arr: [H, W] array of any real dtype.
        path: output file; the format follows the suffix (e.g. ``.png``).

    Raises:
        ValueError: when ``arr`` is not 2-D.
    """
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D slice, got shape {arr.shape}")
    plt.imsave(str(path), arr, cmap="gray")


def log_to_tensorboard(writer, loss: float, data: torch.Tensor, target: torch.Tensor,
                       prediction_softmax: torch.Tensor, prediction: torch.Tensor,
                       counter: int, *, loss_tag: str = "Loss",
                       learning_rate: float | None = None) -> None:
    """Log the training loss and image panels of one batch to TensorBoard.

    Panels (first 4 slices of the batch, each scaled to [0, 1]): ``Image`` the input,
    ``Mask`` the ground truth, ``Probability map`` the foreground probability
    (1 - P(background)) and ``Prediction`` the argmax labels. Whole-tensor operations, no
    per-pixel loops. Called with the course's seven arguments, it logs the scalar "Loss"
    and the four panels; the pipeline calls it every few batches (panels cost
    milliseconds) and ``log_scalars_to_tensorboard`` on the batches in between.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter``.
        loss: the batch's loss (scalar).
        data: float32 [B, 1, H, W] images in [0, 1].
        target: int [B, 1, H, W] or [B, H, W] labels in {0, 1, 2}.
        prediction_softmax: float32 [B, C, H, W] class probabilities.
        prediction: int [B, H, W] or [B, 1, H, W] argmax labels.
        counter: global step (training batches so far).
        loss_tag: scalar tag of the loss; the pipeline uses TRAIN_LOSS_TAG.
        learning_rate: when given, also logged as LEARNING_RATE_TAG.
    """
    log_scalars_to_tensorboard(writer, loss, counter, loss_tag=loss_tag,
                               learning_rate=learning_rate)
    last_label = NUM_CLASSES - 1

    def as_panel(batch: torch.Tensor) -> torch.Tensor:
        batch = batch.detach()[:PANEL_IMAGES].float().cpu()
        return batch if batch.ndim == 4 else batch.unsqueeze(1)

    writer.add_images("Image", as_panel(data), counter)
    writer.add_images("Mask", as_panel(target) / last_label, counter)
    writer.add_images("Probability map", as_panel(1.0 - prediction_softmax[:, 0]), counter)
    writer.add_images("Prediction", as_panel(prediction) / last_label, counter)


def log_scalars_to_tensorboard(writer, loss: float, counter: int, *, loss_tag: str = "Loss",
                               learning_rate: float | None = None) -> None:
    """Log the scalars of ``log_to_tensorboard`` without its image panels.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter``.
        loss: the batch's loss (scalar).
        counter: global step (training batches so far).
        loss_tag: scalar tag of the loss; the pipeline uses TRAIN_LOSS_TAG.
        learning_rate: when given, also logged as LEARNING_RATE_TAG.
    """
    writer.add_scalar(loss_tag, loss, counter)
    if learning_rate is not None:
        writer.add_scalar(LEARNING_RATE_TAG, learning_rate, counter)


def log_validation_to_tensorboard(writer, val_loss: float, val_dice: float, step: int) -> None:
    """Log one epoch's validation loss and Dice beside the training loss of the same run.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter``.
        val_loss: mean validation loss per slice (the training loss function).
        val_dice: mean whole-hippocampus Dice over the validation volumes, in [0, 1].
        step: training batches so far, the x axis of the training loss.
    """
    writer.add_scalar(VALIDATION_LOSS_TAG, val_loss, step)
    writer.add_scalar(VALIDATION_DICE_TAG, val_dice, step)


def add_tensorboard_layout(writer) -> None:
    """Write TENSORBOARD_LAYOUT, the Custom Scalars dashboard's charts, into the run.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter``; call once per writer.
    """
    writer.add_custom_scalars(TENSORBOARD_LAYOUT)

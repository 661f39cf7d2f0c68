"""utils.utils: padding, intensity normalisation, figures and TensorBoard logging."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from utils.utils import (
    log_to_tensorboard,
    med_reshape,
    mpl_image_grid,
    normalize_intensity,
    patch_shape,
    save_numpy_as_image,
)

# --- med_reshape ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_med_reshape_places_the_input_top_left_and_zeros_elsewhere(dtype):
    image = np.arange(1, 2 * 3 * 2 + 1).reshape(2, 3, 2).astype(dtype)  # [2, 3, 2], no zeros
    out = med_reshape(image, (2, 5, 4))  # [2, 5, 4]
    assert out.shape == (2, 5, 4)
    np.testing.assert_array_equal(out[:2, :3, :2], image)
    padding = np.ones(out.shape, bool)
    padding[:2, :3, :2] = False
    assert (out[padding] == 0).all()
    assert padding.sum() == 2 * 5 * 4 - 2 * 3 * 2


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int64, np.float64])
def test_med_reshape_preserves_dtype(dtype):
    image = np.ones((1, 2, 2), dtype)  # [1, 2, 2]
    assert med_reshape(image, (1, 4, 4)).dtype == dtype


def test_med_reshape_does_not_mutate_the_input_and_returns_a_new_array():
    image = np.full((2, 2, 2), 7, np.float32)  # [2, 2, 2]
    before = image.copy()
    out = med_reshape(image, (2, 2, 2))  # same shape: still a copy
    out[...] = -1
    np.testing.assert_array_equal(image, before)
    assert not np.shares_memory(out, image)
    padded = med_reshape(image, (3, 4, 4))
    assert not np.shares_memory(padded, image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("image_shape, new_shape", [
    ((2, 3, 4), (2, 4)),         # rank 3 to rank 2
    ((3, 4), (3, 4, 4)),         # rank 2 to rank 3
    ((2, 3, 4, 1), (2, 4, 4)),   # rank 4 to rank 3
])
def test_med_reshape_rejects_rank_mismatch(image_shape, new_shape):
    with pytest.raises(ValueError, match="rank"):
        med_reshape(np.zeros(image_shape, np.float32), new_shape)


@pytest.mark.parametrize("image_shape, new_shape", [
    ((2, 70, 10), (2, 64, 64)),  # Y above the patch
    ((2, 10, 65), (2, 64, 64)),  # Z above the patch
    ((3, 4, 4), (2, 4, 4)),      # X above the target
])
def test_med_reshape_rejects_input_larger_than_target(image_shape, new_shape):
    with pytest.raises(ValueError, match="larger than the target"):
        med_reshape(np.zeros(image_shape, np.float32), new_shape)


@pytest.mark.parametrize("shape, target", [((3, 5, 7), (3, 8, 8)), ((1, 1, 1), (2, 2, 2)),
                                           ((4, 64, 64), (4, 64, 64))])
def test_med_reshape_pad_then_crop_returns_the_original_exactly(shape, target):
    rng = np.random.default_rng(1)
    image = rng.normal(size=shape).astype(np.float32)
    padded = med_reshape(image, target)
    cropped = padded[tuple(slice(0, size) for size in shape)]
    assert cropped.dtype == image.dtype
    np.testing.assert_array_equal(cropped, image)


# --- normalize_intensity -------------------------------------------------------------------

@pytest.mark.parametrize("image", [
    np.array([[[3, 10], [250, 7]]], np.uint8),                           # [1, 2, 2] uint8
    np.array([[[-5.0, 0.0], [2.5, 1.7e6]]], np.float32),                 # [1, 2, 2] huge range
    np.random.default_rng(0).normal(50, 20, (3, 4, 5)).astype(np.float64),  # [3, 4, 5]
    np.array([[[0, 1]], [[2, 3]]], np.int16),                            # [2, 1, 2] int16
])
def test_normalize_intensity_returns_float32_from_zero_to_one(image):
    out = normalize_intensity(image)
    assert out.dtype == np.float32
    assert out.shape == image.shape
    assert out.min() == 0.0
    assert out.max() == 1.0
    expected = (image.astype(np.float64) - image.min()) / (float(image.max()) - image.min())
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)


def test_normalize_intensity_on_uint8_does_not_wrap_around():
    image = np.array([[[0, 128, 255]]], np.uint8)  # [1, 1, 3]
    np.testing.assert_allclose(normalize_intensity(image), [[[0.0, 128 / 255, 1.0]]], rtol=1e-6)


def test_normalize_intensity_keeps_the_huge_range_linear():
    image = np.array([[[0.0, 0.85e6, 1.7e6]]], np.float32)  # [1, 1, 3], max as in MSD Task04
    np.testing.assert_allclose(normalize_intensity(image), [[[0.0, 0.5, 1.0]]], rtol=1e-6)


def test_normalize_intensity_scales_the_whole_volume_not_each_slice():
    # [2, 1, 2]: slice 0 spans 0..10, slice 1 spans 0..100.
    image = np.array([[[0.0, 10.0]], [[0.0, 100.0]]], np.float32)
    out = normalize_intensity(image)
    np.testing.assert_allclose(out[0], [[0.0, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(out[1], [[0.0, 1.0]], rtol=1e-6)
    assert out[0].max() < 1.0  # per-slice scaling would make this 1


def test_normalize_intensity_does_not_mutate_the_input():
    image = np.array([[[2.0, 4.0]]], np.float32)  # [1, 1, 2]
    normalize_intensity(image)
    np.testing.assert_array_equal(image, [[[2.0, 4.0]]])


@pytest.mark.parametrize("image, message", [
    (np.full((2, 3, 3), 5.0, np.float32), "constant intensity"),  # [2, 3, 3] constant
    (np.zeros((2, 3, 3), np.uint8), "constant intensity"),        # [2, 3, 3] all zero
    (np.zeros((0, 3, 3), np.float32), "empty"),                   # [0, 3, 3] empty
    (np.array([[[1.0, np.inf, 3.0]]]), "1 non-finite voxel "),    # [1, 1, 3], one inf
    (np.array([[[np.nan, 2.0, np.nan, 4.0]]]), "2 non-finite voxels"),  # [1, 1, 4], two NaN
])
def test_normalize_intensity_rejects_constant_empty_and_non_finite_volumes(image, message):
    with pytest.raises(ValueError, match=message):
        normalize_intensity(image)


# --- mpl_image_grid ------------------------------------------------------------------------

def axes_with_images(figure) -> int:
    """Number of axes of ``figure`` on which an image was drawn."""
    return sum(1 for axis in figure.axes if axis.images)


@pytest.mark.parametrize("count, drawn", [(1, 1), (5, 5), (16, 16), (20, 16)])
def test_mpl_image_grid_draws_at_most_sixteen_images(count, drawn):
    images = np.random.default_rng(0).random((count, 4, 4))  # [N, 4, 4]
    figure = mpl_image_grid(images)
    try:
        assert axes_with_images(figure) == drawn
    finally:
        plt.close(figure)


def test_mpl_image_grid_accepts_a_batch_tensor_with_a_channel_axis():
    images = torch.rand(6, 1, 4, 5)  # [N=6, 1, 4, 5]
    figure = mpl_image_grid(images)
    try:
        assert axes_with_images(figure) == 6
        first = next(axis for axis in figure.axes if axis.images).images[0].get_array()
        assert first.shape == (4, 5)
        np.testing.assert_allclose(first, images[0, 0].numpy())
    finally:
        plt.close(figure)


# --- save_numpy_as_image -------------------------------------------------------------------

def test_save_numpy_as_image_writes_a_png_readable_by_matplotlib(tmp_path):
    arr = np.zeros((6, 9), np.float32)  # [H=6, W=9]
    arr[:, 5:] = 1.0
    path = tmp_path / "slice.png"
    save_numpy_as_image(arr, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = plt.imread(path)  # [6, 9, 4] RGBA
    assert pixels.shape[:2] == (6, 9)
    grey = pixels[..., 0]
    # Grey colormap scaled to min..max: the zero half is black, the one half white.
    assert grey[:, :5].max() < 0.05
    assert grey[:, 5:].min() > 0.95


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,)])
def test_save_numpy_as_image_rejects_arrays_that_are_not_2d(tmp_path, shape):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match="2-D"):
        save_numpy_as_image(np.zeros(shape), path)
    assert not path.exists()


# --- log_to_tensorboard --------------------------------------------------------------------

def test_log_to_tensorboard_writes_the_loss_and_four_image_panels(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(0)
    batch, height, width = 6, 8, 8
    data = torch.rand(batch, 1, height, width)                      # [6, 1, 8, 8]
    target = torch.randint(0, 3, (batch, 1, height, width))         # [6, 1, 8, 8]
    softmax = torch.softmax(torch.randn(batch, 3, height, width), 1)  # [6, 3, 8, 8]
    prediction = softmax.argmax(dim=1)                              # [6, 8, 8]

    writer = SummaryWriter(log_dir=str(tmp_path))
    log_to_tensorboard(writer, 0.625, data, target, softmax, prediction, counter=7)
    writer.flush()
    writer.close()

    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert "Loss" in tags["scalars"]
    (loss_event,) = events.Scalars("Loss")
    assert loss_event.step == 7
    assert loss_event.value == pytest.approx(0.625)
    for tag in ("Image", "Mask", "Probability map", "Prediction"):
        assert tag in tags["images"], tag
        (image_event,) = events.Images(tag)
        assert image_event.step == 7
        assert image_event.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"

    # Each panel holds the first 4 slices side by side, scaled to [0, 1]: [8, 4 * 8].
    expected_panels = {
        "Image": data[:4, 0],
        "Mask": target[:4, 0].float() / 2,
        "Probability map": 1.0 - softmax[:4, 0],
        "Prediction": prediction[:4].float() / 2,
    }
    for tag, slices in expected_panels.items():
        (image_event,) = events.Images(tag)
        assert (image_event.height, image_event.width) == (height, 4 * width), tag
        panel = plt.imread(io.BytesIO(image_event.encoded_image_string), format="png")[..., 0]
        expected = torch.cat(list(slices), dim=1).numpy()  # [8, 32]
        np.testing.assert_allclose(panel, expected, atol=1.5 / 255, err_msg=tag)


@pytest.mark.parametrize("patch_size, expected", [(64, (64, 64)), ((64, 48), (64, 48)),
                                                  ([32, 24], (32, 24)),
                                                  (np.int64(16), (16, 16))])
def test_patch_shape_of_one_size_is_square_and_of_a_pair_is_rows_and_columns(patch_size,
                                                                             expected):
    assert patch_shape(patch_size) == expected


@pytest.mark.parametrize("patch_size", [(64, 48, 32), "64x48", "64", None])
def test_patch_shape_of_anything_but_a_size_or_a_pair_raises(patch_size):
    with pytest.raises(ValueError, match="expected px as one int or a pair"):
        patch_shape(patch_size)

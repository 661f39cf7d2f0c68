"""Public tests of LoadHippocampusData: image normalisation (TASK S2.03), labels (TASK S2.05).

Every synthetic volume here already has the patch's in-plane size, so no padding happens; the
tests also use the reference med_reshape (and, for S2.05, the reference normalisation), so that
each grades its own TASK.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.runtime.fixtures import (
    by_filename,
    is_course,
    use_reference_preprocessing,
    write_training_set,
)

PATCH = 8  # px: y_shape and z_shape of the loader; the volumes are [X, 8, 8]
LOADER = "data_prep.HippocampusDatasetLoader"


def slice_ranges(ranges: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """float32 [len(ranges), 8, 8]: slice i holds values in ranges[i], both ends included."""
    rng = np.random.default_rng(seed)
    slices = [rng.uniform(low, high, size=(PATCH, PATCH)) for low, high in ranges]
    for (low, high), image in zip(ranges, slices, strict=True):
        image[0, 0], image[-1, -1] = low, high
    return np.stack(slices).astype(np.float32)


def labels(depth: int, seed: int = 0) -> np.ndarray:
    """uint8 [depth, 8, 8] labels with values {0, 1, 2}."""
    seg = np.random.default_rng(seed).choice(3, size=(depth, PATCH, PATCH)).astype(np.uint8)
    seg[0, 0, 0], seg[0, 0, 1] = 1, 2
    return seg


def linear_fit_residual(raw: np.ndarray, image: np.ndarray) -> tuple[float, float]:
    """(slope, largest residual) of the least-squares line image = slope * raw + offset."""
    raw64, image64 = raw.astype(np.float64).ravel(), image.astype(np.float64).ravel()
    slope, offset = np.polyfit(raw64, image64, 1)
    return float(slope), float(np.abs(slope * raw64 + offset - image64).max())


def require_normalised_images(code, loader, tmp_path) -> None:
    """Skip a labels test of a course loader that does not normalise images yet.

    In the course, labels arrive as integers whatever the student does (the starter casts
    them); that they stay unnormalised means something only once the images are normalised.
    """
    if not is_course(code):
        return
    image = np.linspace(50.0, 900.0, 2 * PATCH * PATCH).reshape(2, PATCH, PATCH)  # [2, 8, 8]
    write_training_set(tmp_path / "probe", {"hippocampus_090.nii.gz": (image, labels(2))})
    loaded = np.asarray(by_filename(loader.LoadHippocampusData(
        str(tmp_path / "probe"), PATCH, PATCH))["hippocampus_090.nii.gz"]["image"])
    if not (np.issubdtype(loaded.dtype, np.floating) and loaded.min() >= 0
            and loaded.max() <= 1):
        pytest.skip("complete the TASK that normalises images in LoadHippocampusData first")


@pytest.mark.layout("course")
@pytest.mark.task("S2.03", points=2)
def test_course_loader_scales_each_image_linearly_into_zero_to_one(code, tmp_path):
    use_reference_preprocessing(code, LOADER, normalize=False)
    loader = code.import_module(LOADER)
    uneven = slice_ranges([(100, 200), (100, 1000), (550, 1000)])  # float32 [3, 8, 8]
    small = np.arange(2 * PATCH * PATCH).reshape(2, PATCH, PATCH).astype(np.int16) + 7
    write_training_set(tmp_path, {"hippocampus_001.nii.gz": (uneven, labels(3)),
                                  "hippocampus_002.nii.gz": (small, labels(2))})
    data = by_filename(loader.LoadHippocampusData(str(tmp_path), PATCH, PATCH))
    for name, raw in (("hippocampus_001.nii.gz", uneven), ("hippocampus_002.nii.gz", small)):
        image = np.asarray(data[name]["image"])
        assert image.shape == raw.shape, f"{name}: image shape {image.shape}, raw {raw.shape}"
        assert np.issubdtype(image.dtype, np.floating), (
            f"{name}: the image has dtype {image.dtype}; normalised values need a float type")
        assert image.min() >= 0 and image.max() <= 1, (
            f"TASK not done: {name}'s image spans [{image.min():g}, {image.max():g}]; "
            "normalise it so that its values are in [0, 1]")
        slope, residual = linear_fit_residual(raw, image)
        assert slope > 0 and residual < 1e-4, (
            f"{name}: the normalised image is not one linear map of the volume's raw values "
            f"(largest deviation {residual:.3g}); scale the whole volume at once, e.g. "
            "(image - min) / (max - min) or image / max, not slice by slice")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.03", points=2)
def test_loader_normalises_each_volume_by_its_own_minimum_and_maximum(code, tmp_path):
    use_reference_preprocessing(code, LOADER, normalize=False)
    loader = code.import_module(LOADER)
    # [3, 8, 8]: the slices span different ranges, so per-slice scaling gives another image
    uneven = slice_ranges([(100, 200), (100, 1000), (550, 1000)])
    small = np.arange(2 * PATCH * PATCH).reshape(2, PATCH, PATCH).astype(np.int16) + 7  # [2, 8, 8]
    write_training_set(tmp_path, {"hippocampus_001.nii.gz": (uneven, labels(3)),
                                  "hippocampus_002.nii.gz": (small, labels(2))})
    data = by_filename(loader.LoadHippocampusData(str(tmp_path), PATCH, PATCH))
    for name, raw in (("hippocampus_001.nii.gz", uneven), ("hippocampus_002.nii.gz", small)):
        image = np.asarray(data[name]["image"])
        assert image.shape == raw.shape
        assert np.issubdtype(image.dtype, np.floating), f"{name}: image dtype {image.dtype}"
        expected = (raw - raw.min()) / (float(raw.max()) - float(raw.min()))
        assert np.allclose(image, expected, atol=1e-5), (
            f"{name}: the image must be (raw - min) / (max - min) with min and max of the "
            f"whole volume; slice minima {image.min(axis=(1, 2))}, maxima "
            f"{image.max(axis=(1, 2))}, expected minima {expected.min(axis=(1, 2))}, "
            f"maxima {expected.max(axis=(1, 2))}")


@pytest.mark.task("S2.05", points=1)
def test_loader_keeps_float_stored_labels_as_integers_0_1_2(code, tmp_path):
    use_reference_preprocessing(code, LOADER)
    loader = code.import_module(LOADER)
    require_normalised_images(code, loader, tmp_path)
    seg = labels(3)  # [3, 8, 8], stored as float32 like cases 003 and 243
    write_training_set(tmp_path, {"hippocampus_003.nii.gz": (slice_ranges([(0, 9)] * 3),
                                                             seg.astype(np.float32))})
    loaded = np.asarray(by_filename(loader.LoadHippocampusData(str(tmp_path), PATCH, PATCH))[
        "hippocampus_003.nii.gz"]["seg"])
    assert np.issubdtype(loaded.dtype, np.integer), (
        f"seg has dtype {loaded.dtype}; labels must be an integer type")
    assert np.array_equal(loaded, seg), (
        f"seg values {np.unique(loaded)} differ from the file's labels {np.unique(seg)}; "
        "labels are never normalised")

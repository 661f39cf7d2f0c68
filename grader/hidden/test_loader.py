"""Hidden tests of LoadHippocampusData: normalisation (TASK S2.03), padding (TASK S2.04) and
labels (TASK S2.05)."""

from __future__ import annotations

import numpy as np
import pytest

from grader.hidden.reference import reference_med_reshape
from grader.public.test_loader import linear_fit_residual, require_normalised_images
from grader.runtime.checks import check
from grader.runtime.fixtures import (
    by_filename,
    is_course,
    use_reference_preprocessing,
    write_training_set,
)

PATCH = 8  # px: y_shape and z_shape of the loader
LOADER = "data_prep.HippocampusDatasetLoader"


def labels(shape: tuple[int, int, int], values=(0, 1, 2), seed: int = 0) -> np.ndarray:
    """uint8 labels of ``shape`` drawn from ``values``, each value present."""
    seg = np.random.default_rng(seed).choice(values, size=shape).astype(np.uint8)
    seg.flat[:len(values)] = values
    return seg


def load(code, root, **reference) -> dict[str, dict]:
    """Load ``root`` with the reference med_reshape or normalisation where ``reference`` says."""
    use_reference_preprocessing(code, LOADER, **reference)
    loader = code.import_module(LOADER)
    return by_filename(loader.LoadHippocampusData(str(root), PATCH, PATCH))


def load_extreme_scales(code, root) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Two raw volumes at the data set's intensity extremes, written to ``root`` and loaded
    with the student's own normalisation: ({file name: raw}, {file name: loaded dict})."""
    rng = np.random.default_rng(1)
    # [2, 8, 8] int32 up to 1.7e6 and [3, 8, 8] float64 up to 120: the data set's extremes
    cases = {"hippocampus_010.nii.gz": rng.integers(30_000, 1_700_000, (2, PATCH, PATCH),
                                                    dtype=np.int32),
             "hippocampus_011.nii.gz": rng.uniform(4.0, 120.0, (3, PATCH, PATCH))}
    write_training_set(root, {name: (raw, labels(raw.shape)) for name, raw in cases.items()})
    return cases, load(code, root, normalize=False)


@pytest.mark.layout("course")
@pytest.mark.task("S2.03", points=2)
def test_course_loader_puts_every_volume_into_zero_to_one_whatever_its_scale(code, tmp_path):
    cases, data = load_extreme_scales(code, tmp_path)
    for name, raw in cases.items():
        image = np.asarray(data[name]["image"])
        check(np.issubdtype(image.dtype, np.floating), "loaded images must be floating point")
        check(float(image.min()) >= 0.0 and float(image.max()) <= 1.0,
              "every loaded image must lie in [0, 1], whatever the scale of its raw values")
        slope, residual = linear_fit_residual(raw, image)
        check(slope > 0 and residual < 1e-4,
              "the image must be one increasing linear map of the volume's raw values")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.03", points=1)
def test_loader_maps_every_volume_onto_zero_to_one_whatever_its_scale(code, tmp_path):
    cases, data = load_extreme_scales(code, tmp_path)
    for name, raw in cases.items():
        image = np.asarray(data[name]["image"])
        check(np.issubdtype(image.dtype, np.floating), "loaded images must be floating point")
        check(abs(float(image.min())) < 1e-6 and abs(float(image.max()) - 1.0) < 1e-6,
              "every loaded image must span [0, 1]: its minimum 0 and its maximum 1")
        expected = (raw.astype(np.float64) - raw.min()) / (float(raw.max()) - float(raw.min()))
        check(np.allclose(image, expected, atol=1e-5),
              "the image must be (raw - min) / (max - min) of the whole volume")


@pytest.mark.task("S2.04", points=1)
def test_loader_pads_every_volume_to_the_patch_in_the_top_left_corner(code, tmp_path):
    rng = np.random.default_rng(2)
    raw = rng.uniform(10.0, 250.0, (3, 5, 6)).astype(np.float32)  # [3, 5, 6]
    raw[:, 0, 0], raw[:, -1, -1] = 10.0, 250.0  # every slice spans the volume's range
    seg = labels((3, 5, 6))
    write_training_set(tmp_path, {"hippocampus_020.nii.gz": (raw, seg)})
    volume = load(code, tmp_path, med_reshape=False)["hippocampus_020.nii.gz"]
    image, loaded_seg = np.asarray(volume["image"]), np.asarray(volume["seg"])
    check(image.shape == (3, PATCH, PATCH) and loaded_seg.shape == (3, PATCH, PATCH),
          "the loader must pad image and seg to [X, y_shape, z_shape]")
    if is_course(code):  # the course normalises inline, in the student's own way (S2.03)
        corner = image[:, :5, :6]
        outside = image.copy()
        outside[:, :5, :6] = 0
        fits = [linear_fit_residual(raw[index], corner[index]) for index in range(len(raw))]
        check(not np.any(outside) and all(slope > 0 and residual < 1e-4
                                          for slope, residual in fits),
              "the image must sit in the top-left corner [0:X, 0:Y, 0:Z] of the padded "
              "volume, zeros elsewhere")
    else:
        expected = reference_med_reshape((raw - 10.0) / 240.0, (3, PATCH, PATCH))
        check(np.allclose(image, expected, atol=1e-5),
              "the image must sit in the top-left corner [0:X, 0:Y, 0:Z] of the padded "
              "volume, zeros elsewhere")
    # How the labels' values are kept is S2.05's business: each label value must map to one
    # value in the corner, and the padding must be 0.
    seg_outside = loaded_seg.copy()
    seg_outside[:, :5, :6] = 0
    corner = loaded_seg[:, :5, :6]
    check(not np.any(seg_outside)
          and all(np.unique(corner[seg == value]).size == 1 for value in np.unique(seg)),
          "the seg must sit in the top-left corner [0:X, 0:Y, 0:Z] of the padded volume, "
          "zeros elsewhere")


@pytest.mark.task("S2.05", points=1)
def test_loader_never_normalises_labels(code, tmp_path):
    image = np.random.default_rng(3).uniform(0.0, 50.0, (2, PATCH, PATCH))  # [2, 8, 8]
    segs = {"hippocampus_030.nii.gz": labels((2, PATCH, PATCH)).astype(np.int16),
            "hippocampus_031.nii.gz": labels((2, PATCH, PATCH), values=(0, 2)),
            "hippocampus_032.nii.gz": labels((2, PATCH, PATCH), values=(0, 1)).astype(
                np.float64)}
    write_training_set(tmp_path, {name: (image, seg) for name, seg in segs.items()})
    use_reference_preprocessing(code, LOADER)
    require_normalised_images(code, code.import_module(LOADER), tmp_path)
    data = load(code, tmp_path)
    for name, seg in segs.items():
        loaded = np.asarray(data[name]["seg"])
        check(np.issubdtype(loaded.dtype, np.integer), "loaded labels must have an integer dtype")
        check(np.array_equal(loaded, seg),
              "loaded labels must keep the file's values {0, 1, 2}; never normalise them")

"""Hidden tests of UNetInferenceAgent (TASKs S2.09, S2.10, S2.11) and of the normalisation it
shares with the loader (TASK S2.03)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.public.test_inference import course_corner_check, course_unpadded
from grader.runtime.checks import check, done
from grader.runtime.fixtures import (
    COURSE_PATCH,
    PATCH,
    OracleModel,
    TinyNet,
    agent_for,
    is_course,
    oracle_image,
    patch_of,
    random_seg,
    raw_image,
    use_reference_preprocessing,
)


@pytest.mark.layout("kit")
@pytest.mark.task("S2.09", points=2)
def test_inference_tracks_no_gradients(code):
    torch.manual_seed(0)
    model = TinyNet()
    volume = np.random.default_rng(0).uniform(0, 1, (4, PATCH, PATCH)).astype(np.float32)
    agent_for(code, model).single_volume_inference(volume)  # [4, 16, 16]
    check(model.calls, "single_volume_inference must call the model")
    check(not any(call["grad_enabled"] for call in model.calls),
          "inference must run the model with gradient tracking off (torch.no_grad or "
          "torch.inference_mode)")
    check(all(parameter.grad is None for parameter in model.parameters()),
          "inference must leave the model's parameters without gradients")


@pytest.mark.task("S2.10", points=1)
def test_single_volume_inference_returns_integer_labels_for_every_slice(code):
    torch.manual_seed(1)
    model = TinyNet().eval()
    patch = patch_of(code)
    volume = np.random.default_rng(1).uniform(0, 1, (70, patch, patch)).astype(np.float32)
    with torch.no_grad():  # [70, P, P]: more slices than one batch of 64
        expected = model(torch.from_numpy(volume[:, None])).argmax(dim=1).numpy()
    labels = done(agent_for(code, model).single_volume_inference(volume),
                  "single_volume_inference(volume)")
    # The course asks for "a 3D Numpy array" with the mask, of no particular dtype.
    check(isinstance(labels, np.ndarray)
          and (is_course(code) or np.issubdtype(labels.dtype, np.integer)),
          "single_volume_inference must return a NumPy array of an integer dtype")
    check(labels.shape == volume.shape and np.array_equal(labels, expected),
          "single_volume_inference must return the argmax label of every voxel of every slice")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.11", points=1)
def test_unpadded_inference_normalises_by_the_volume_minimum_not_zero(code):
    use_reference_preprocessing(code, "inference.UNetInferenceAgent")
    seg = random_seg((3, 17, 9), seed=2)  # raw int32 [3, 17, 9] from 30000 to 1.7e6
    volume = raw_image(seg, low=30_000.0, high=1_700_000.0, dtype=np.int32)
    labels = agent_for(code, OracleModel(), patch_size=32).single_volume_inference_unpadded(
        volume)
    check(np.asarray(labels).shape == seg.shape,
          "single_volume_inference_unpadded must return labels of the input's shape")
    check(np.array_equal(labels, seg),
          "single_volume_inference_unpadded must normalise the raw volume by its own minimum "
          "and maximum before padding, then crop the prediction back")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.11", points=1)
def test_unpadded_inference_of_a_volume_of_the_patch_size_keeps_its_input(code):
    use_reference_preprocessing(code, "inference.UNetInferenceAgent")
    seg = random_seg((2, PATCH, PATCH), seed=3)
    volume = raw_image(seg, low=5.0, high=80.0)  # raw [2, 16, 16]: nothing to pad
    before = volume.copy()
    labels = agent_for(code, OracleModel()).single_volume_inference_unpadded(volume)
    check(np.array_equal(volume, before),
          "single_volume_inference_unpadded must leave its input volume unchanged")
    check(np.asarray(labels).shape == seg.shape and np.array_equal(labels, seg),
          "single_volume_inference_unpadded must predict a volume of the patch size as is")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.03", points=1)
def test_inference_normalises_a_raw_volume_as_the_loader_does(code):
    rng = np.random.default_rng(4)
    # raw [3, 16, 16]: slices in [20, 60], [20, 900] and [500, 900]
    volume = np.stack([rng.uniform(low, high, (PATCH, PATCH))
                       for low, high in ((20, 60), (20, 900), (500, 900))]).astype(np.float32)
    volume[0, 0, 0], volume[2, -1, -1] = 20.0, 900.0
    use_reference_preprocessing(code, "inference.UNetInferenceAgent", normalize=False)
    model = OracleModel(keep_inputs=True)
    agent_for(code, model).single_volume_inference_unpadded(volume)
    check(model.calls, "single_volume_inference_unpadded must call the model")
    inputs = model.recorded_inputs()
    check(inputs.shape == volume.shape and np.allclose(inputs, (volume - 20.0) / 880.0,
                                                       atol=1e-5),
          "the model must see the volume normalised as in training: (raw - min) / (max - min) "
          "of the whole volume")


@pytest.mark.layout("course")
@pytest.mark.task("S2.09", points=2)
def test_course_inference_feeds_the_model_every_slice_once_in_order(code):
    torch.manual_seed(0)
    model = TinyNet(keep_inputs=True)
    volume = np.random.default_rng(5).uniform(0, 1, (5, COURSE_PATCH, COURSE_PATCH)).astype(
        np.float32)  # [5, 64, 64]
    done(agent_for(code, model).single_volume_inference(volume),
         "single_volume_inference(volume)")
    check(model.calls, "single_volume_inference must run the model")
    inputs = model.recorded_inputs()
    check(inputs.shape == volume.shape and np.allclose(inputs, volume, atol=1e-6),
          "single_volume_inference must feed the model each axis-0 slice of the volume once, "
          "in order, as it is")


@pytest.mark.layout("course")
@pytest.mark.task("S2.11", points=1)
def test_course_unpadded_inference_of_a_volume_of_the_patch_size_keeps_its_input(code):
    seg = random_seg((2, COURSE_PATCH, COURSE_PATCH), seed=3)  # [2, 64, 64]: nothing to pad
    volume = oracle_image(seg)
    before = volume.copy()
    labels = course_unpadded(code, volume)
    check(np.array_equal(volume, before),
          "single_volume_inference_unpadded must leave its input volume unchanged")
    check(labels.shape == seg.shape and np.array_equal(labels, seg),
          "single_volume_inference_unpadded must predict a volume of the patch size as is")


@pytest.mark.layout("course")
@pytest.mark.task("S2.11", points=1)
def test_course_unpadded_inference_of_a_narrow_volume_keeps_its_axes(code):
    seg = random_seg((3, 47, 9), seed=2)  # [3, 47, 9]: Y and Z far apart, neither the patch
    labels = course_unpadded(code, oracle_image(seg))
    try:
        course_corner_check(labels, seg)
        correct = True
    except AssertionError:
        correct = False
    check(correct, "single_volume_inference_unpadded must pad Y and Z each to the patch size "
                   "and return each voxel's label at the voxel's own place")

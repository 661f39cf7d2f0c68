"""Public tests of UNetInferenceAgent: eval mode (TASK S2.09), argmax labels (TASK S2.10) and
raw volumes of any in-plane size (TASK S2.11), inference/UNetInferenceAgent.py.

The models here are tiny stand-ins for the U-Net (see grader/runtime/fixtures.py). The S2.11
tests use the reference med_reshape and normalisation, so they grade the agent's own steps
only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.runtime.checks import done
from grader.runtime.fixtures import (
    COURSE_PATCH,
    DropoutNet,
    OracleModel,
    TinyNet,
    agent_for,
    course_unpadded_agent_class,
    is_course,
    oracle_image,
    patch_of,
    random_seg,
    raw_image,
    use_reference_inference,
    use_reference_preprocessing,
)


def course_unpadded(code, volume: np.ndarray) -> np.ndarray:
    """A course student's single_volume_inference_unpadded of ``volume`` with OracleModel.

    ``volume`` is already in [0, 1] with minimum 0 and maximum 1, so that any normalisation a
    student adds (min-max, or division by the maximum) leaves it as it is: the course text
    asks only to pad to the patch and predict.
    """
    use_reference_preprocessing(code, "inference.UNetInferenceAgent", normalize=False)
    agent_class = course_unpadded_agent_class(code)
    assert hasattr(agent_class, "single_volume_inference_unpadded"), (
        "TASK not done: no single_volume_inference_unpadded in "
        "section3/src/inference/UNetInferenceAgent.py (nor in section 2's agent)")
    model = OracleModel()
    agent = agent_class(model=model, device="cpu", patch_size=COURSE_PATCH)
    use_reference_inference(agent)  # graded apart from single_volume_inference (S2.10)
    labels = done(agent.single_volume_inference_unpadded(volume),
                  "single_volume_inference_unpadded(volume)")
    sizes = sorted({call["shape"][2:] for call in model.calls})
    assert model.calls and sizes == [(COURSE_PATCH, COURSE_PATCH)], (
        f"the model got slices of in-plane size {sizes} from a {list(volume.shape)} volume; "
        f"pad Y and Z to the patch size ({COURSE_PATCH} x {COURSE_PATCH}) before predicting")
    return np.asarray(labels)


def course_corner_check(labels: np.ndarray, seg: np.ndarray) -> None:
    """The course's result: [X, Y, Z] labels, or the padded [X, 64, 64] prediction (the
    course text does not ask to crop back), holding the right labels in the top-left corner."""
    __tracebackhide__ = True
    x_size, y_size, z_size = seg.shape
    assert labels.shape in (seg.shape, (x_size, COURSE_PATCH, COURSE_PATCH)), (
        f"a {list(seg.shape)} volume gave a prediction of shape {list(labels.shape)}; expected "
        f"{list(seg.shape)} (or the padded [{x_size}, {COURSE_PATCH}, {COURSE_PATCH}])")
    corner = labels[:, :y_size, :z_size]
    wrong = int(np.count_nonzero(corner != seg))
    assert wrong == 0, (
        f"{wrong} of {seg.size} voxels of the volume got the wrong label: pad the volume "
        "with med_reshape (image in the top-left corner), predict every slice, and read the "
        "volume's voxels from the same corner")
    assert not np.any(labels[:, y_size:, :]) and not np.any(labels[:, :, z_size:]), (
        "the padding around the volume must stay background (0)")


@pytest.mark.task("S2.09", points=2)
def test_inference_runs_the_model_in_eval_mode(code):
    torch.manual_seed(0)
    model = DropoutNet()  # Dropout(p=0.9): training mode would zero 90 % of the input
    agent = agent_for(code, model)
    if not is_course(code):  # the course leaves model.eval() in __init__ or in inference
        model.train()  # as UNetExperiment.train() leaves it
    patch = patch_of(code)
    volume = np.random.default_rng(0).uniform(0, 1, (3, patch, patch)).astype(np.float32)
    agent.single_volume_inference(volume)  # [3, 16, 16] (course: [3, 64, 64])
    assert model.calls, "single_volume_inference never called the model"
    modes = ["train" if call["training"] else "eval" for call in model.calls]
    assert "train" not in modes, (
        f"the model ran in these modes: {modes}; call model.eval() before inference, so "
        "that dropout and normalisation layers behave as at test time")


@pytest.mark.task("S2.10", points=2)
def test_single_volume_inference_returns_the_argmax_label_of_every_voxel(code):
    torch.manual_seed(0)
    model = TinyNet().eval()
    patch = patch_of(code)
    volume = np.random.default_rng(1).uniform(0, 1, (3, patch, patch)).astype(np.float32)
    with torch.no_grad():  # [3, P, P] -> logits [3, 3, P, P] -> labels [3, P, P]
        expected = model(torch.from_numpy(volume[:, None])).argmax(dim=1).numpy()
    labels = np.asarray(done(agent_for(code, model).single_volume_inference(volume),
                             "single_volume_inference(volume)"))
    assert labels.shape == volume.shape, f"labels {labels.shape} for a volume {volume.shape}"
    assert np.array_equal(labels, expected), (
        f"{np.count_nonzero(labels != expected)} of {labels.size} voxels differ from the argmax "
        "over the class axis of the model's logits")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.11", points=1)
def test_unpadded_inference_returns_labels_of_the_input_shape(code):
    use_reference_preprocessing(code, "inference.UNetInferenceAgent")
    seg = random_seg((5, 40, 30), seed=0)
    volume = raw_image(seg, low=300.0, high=1000.0)  # raw [5, 40, 30]
    labels = np.asarray(agent_for(code, OracleModel(), patch_size=48)
                        .single_volume_inference_unpadded(volume))
    assert labels.shape == (5, 40, 30), (
        f"a [5, 40, 30] volume gave labels of shape {labels.shape}; crop the padded "
        "prediction back to the input's shape")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.11", points=2)
def test_unpadded_inference_normalises_pads_and_crops_back_voxel_for_voxel(code):
    use_reference_preprocessing(code, "inference.UNetInferenceAgent")
    # OracleModel labels a voxel by its normalised intensity: 0 -> 0, 0.5 -> 1, 1 -> 2, and
    # raw_image makes (raw - min) / (max - min) exactly that intensity.
    seg = random_seg((5, 40, 30), seed=1)
    volume = raw_image(seg, low=300.0, high=1000.0)  # raw [5, 40, 30], 300 to 1000
    labels = np.asarray(agent_for(code, OracleModel(), patch_size=48)
                        .single_volume_inference_unpadded(volume))
    assert labels.shape == seg.shape
    assert np.array_equal(labels, seg), (
        f"{np.count_nonzero(labels != seg)} of {seg.size} voxels are wrong: normalise the raw "
        "volume as the loader does, pad it into the top-left corner, predict, and crop the "
        "same corner back")


@pytest.mark.layout("course")
@pytest.mark.task("S2.11", points=1)
def test_course_unpadded_inference_gives_a_label_volume_for_a_volume_of_any_size(code):
    seg = random_seg((5, 40, 30), seed=0)  # [5, 40, 30]
    labels = course_unpadded(code, oracle_image(seg))
    assert labels.shape in (seg.shape, (5, COURSE_PATCH, COURSE_PATCH)), (
        f"a [5, 40, 30] volume gave a prediction of shape {list(labels.shape)}; expected "
        f"[5, 40, 30] (or the padded [5, {COURSE_PATCH}, {COURSE_PATCH}])")


@pytest.mark.layout("course")
@pytest.mark.task("S2.11", points=2)
def test_course_unpadded_inference_pads_and_predicts_voxel_for_voxel(code):
    # OracleModel labels a voxel by its intensity: 0 -> 0, 0.5 -> 1, 1 -> 2
    seg = random_seg((5, 40, 30), seed=1)  # [5, 40, 30]
    course_corner_check(course_unpadded(code, oracle_image(seg)), seg)

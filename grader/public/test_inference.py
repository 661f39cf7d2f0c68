"""Public tests of UNetInferenceAgent: eval mode (TASK S2.09), argmax labels (TASK S2.10) and
raw volumes of any in-plane size (TASK S2.11), inference/UNetInferenceAgent.py.

The models here are tiny stand-ins for the U-Net (see grader/fixtures.py). The S2.11 tests use
the reference med_reshape and normalisation, so they grade the agent's own steps only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.fixtures import (PATCH, DropoutNet, OracleModel, TinyNet, agent_for, random_seg,
                             raw_image, use_reference_preprocessing)


@pytest.mark.task("S2.09", points=2)
def test_inference_runs_the_model_in_eval_mode(code):
    torch.manual_seed(0)
    model = DropoutNet()  # Dropout(p=0.9): training mode would zero 90 % of the input
    agent = agent_for(code, model)
    model.train()  # as UNetExperiment.train() leaves it
    volume = np.random.default_rng(0).uniform(0, 1, (3, PATCH, PATCH)).astype(np.float32)
    agent.single_volume_inference(volume)  # [3, 16, 16]
    assert model.calls, "single_volume_inference never called the model"
    modes = ["train" if call["training"] else "eval" for call in model.calls]
    assert "train" not in modes, (
        f"the model ran in these modes: {modes}; call model.eval() before inference, so "
        "that dropout and normalisation layers behave as at test time")


@pytest.mark.task("S2.10", points=2)
def test_single_volume_inference_returns_the_argmax_label_of_every_voxel(code):
    torch.manual_seed(0)
    model = TinyNet().eval()
    volume = np.random.default_rng(1).uniform(0, 1, (3, PATCH, PATCH)).astype(np.float32)
    with torch.no_grad():  # [3, 16, 16] -> logits [3, 3, 16, 16] -> labels [3, 16, 16]
        expected = model(torch.from_numpy(volume[:, None])).argmax(dim=1).numpy()
    labels = np.asarray(agent_for(code, model).single_volume_inference(volume))
    assert labels.shape == volume.shape, f"labels {labels.shape} for a volume {volume.shape}"
    assert np.array_equal(labels, expected), (
        f"{np.count_nonzero(labels != expected)} of {labels.size} voxels differ from the argmax "
        "over the class axis of the model's logits")


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

"""Public tests of UNetExperiment: the training step (TASK S2.07), validation (TASK S2.08) and
run_test (TASKs S2.14, S2.15), experiments/UNetExperiment.py.

Each test builds the experiment from a config that carries the course's and the kit's settings,
then swaps in a tiny model (grader/runtime/fixtures.py) so that it runs in a second on a CPU.
So that each test grades its own TASK only, the training tests feed the experiment's
train_loader from a reference slice dataset, and the validation and run_test tests use the
reference Dice and Jaccard.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grader.runtime.fixtures import (
    OracleModel,
    RecordingOptimizer,
    TinyNet,
    build_experiment,
    framed_seg,
    loaded_volume,
    oracle_image,
    prepare_run_test,
    random_volume,
    shown_labels,
    use_reference_metrics,
    use_reference_train_loader,
    use_reference_val_loader,
)


def experiment_data(code, test_volumes: list[dict]) -> tuple[list[dict], dict]:
    """A training and a validation volume [4, 12, 12], padded as the layout's loader pads,
    then ``test_volumes``."""
    volumes = [random_volume(code, (4, 12, 12), 10, "hippocampus_101.nii.gz"),
               random_volume(code, (4, 12, 12), 11, "hippocampus_102.nii.gz"),
               *test_volumes]
    return volumes, {"train": [0], "val": [1], "test": list(range(2, len(volumes)))}


def batch_of(volume: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Every slice of a volume as a batch: images [X, 1, H, W] float32, labels [X, H, W] int64."""
    return (torch.from_numpy(volume["image"][:, None].astype(np.float32)),
            torch.from_numpy(volume["seg"].astype(np.int64)))


def noisy_test_volume(code, shape: tuple[int, int, int], seed: int, name: str) -> dict:
    """A test volume whose image shows a label map that differs from its seg in some voxels."""
    seg = framed_seg(code, shape, seed)
    return loaded_volume(code, seg, name, shape, image=oracle_image(shown_labels(seg, shape,
                                                                                 seed)))


@pytest.mark.task("S2.07", points=2)
def test_training_lowers_the_loss_on_one_fixed_batch(code, tmp_path):
    volumes, split = experiment_data(
        code, [random_volume(code, (2, 12, 12), 12, "t.nii.gz")])
    experiment = build_experiment(code, tmp_path, volumes, split, batch_size=8)
    torch.manual_seed(0)
    model = TinyNet()
    experiment.model = model
    experiment.optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    use_reference_train_loader(experiment, volumes[:1], batch_size=8)
    images, labels = batch_of(volumes[0])  # the one training batch: [4, 1, 16, 16]

    def loss() -> float:
        with torch.no_grad():
            return nn.CrossEntropyLoss()(model(images), labels).item()

    before = loss()
    for _ in range(8):
        experiment.train()
    after = loss()
    assert after < 0.6 * before, (
        f"eight epochs of train() on one batch took the cross-entropy from {before:.4f} to "
        f"{after:.4f}; expected it to fall below {0.6 * before:.4f}")


@pytest.mark.task("S2.07", points=2)
def test_training_gradient_is_that_of_cross_entropy_on_the_logits(code, tmp_path):
    volumes, split = experiment_data(
        code, [random_volume(code, (2, 12, 12), 12, "t.nii.gz")])
    experiment = build_experiment(code, tmp_path, volumes, split, batch_size=8)
    torch.manual_seed(1)
    model = TinyNet()
    experiment.model = model
    experiment.optimizer = RecordingOptimizer(model.parameters())  # keeps the weights
    use_reference_train_loader(experiment, volumes[:1], batch_size=8)
    experiment.train()  # one batch: the 4 slices of the training volume
    assert len(experiment.optimizer.grads) == 1, (
        f"train() over one batch called optimizer.step() "
        f"{len(experiment.optimizer.grads)} times; expected once")
    images, labels = batch_of(volumes[0])
    model.zero_grad()
    nn.CrossEntropyLoss()(model(images), labels).backward()
    grads = experiment.optimizer.grads[0]
    for (name, parameter), grad in zip(model.named_parameters(), grads, strict=True):
        assert grad is not None, f"{name} got no gradient: call loss.backward() on the loss"
        assert torch.allclose(grad, parameter.grad, rtol=1e-4, atol=1e-7), (
            f"the gradient of {name} differs from that of nn.CrossEntropyLoss()(model(data), "
            f"target) by up to {float((grad - parameter.grad).abs().max()):.3g}: compute the "
            "loss on the raw logits [B, 3, H, W] (no softmax) and the labels [B, H, W]")


@pytest.mark.task("S2.08", points=2)
def test_validation_runs_the_model_without_gradients(code, tmp_path):
    use_reference_metrics(code)
    volumes, split = experiment_data(
        code, [random_volume(code, (2, 12, 12), 12, "t.nii.gz")])
    experiment = build_experiment(code, tmp_path, volumes, split)
    torch.manual_seed(2)
    model = TinyNet()
    experiment.model = model
    experiment.optimizer = RecordingOptimizer(model.parameters())
    use_reference_val_loader(experiment, volumes[1:2], batch_size=8)
    experiment.validate()
    assert model.calls, "validate() never called the model"
    assert not any(call["grad_enabled"] for call in model.calls), (
        "validate() ran the model with gradient tracking on; use torch.no_grad() (or the "
        "inference agent, which does)")
    with_grad = [name for name, p in model.named_parameters() if p.grad is not None]
    assert not with_grad, f"validate() left gradients on {with_grad}"


@pytest.mark.task("S2.14", points=2)
def test_run_test_scores_a_perfect_model_with_dice_one_per_volume(code, tmp_path):
    prepare_run_test(code)
    test_volumes = [random_volume(code, (3, 12, 10), 20, "hippocampus_201.nii.gz"),
                    random_volume(code, (4, 16, 13), 21, "hippocampus_202.nii.gz")]
    volumes, split = experiment_data(code, test_volumes)
    experiment = build_experiment(code, tmp_path, volumes, split)
    experiment.model = OracleModel()  # predicts every label right
    results = experiment.run_test()
    stats = results["volume_stats"]
    assert sorted(entry["filename"] for entry in stats) == [
        "hippocampus_201.nii.gz", "hippocampus_202.nii.gz"], (
        f"volume_stats must hold one entry per test volume, found {len(stats)}")
    for entry in stats:
        assert float(entry["dice"]) == pytest.approx(1.0), entry
        assert float(entry["jaccard"]) == pytest.approx(1.0), entry


@pytest.mark.task("S2.15", points=1)
def test_run_test_overall_means_are_the_means_over_the_volumes(code, tmp_path):
    prepare_run_test(code)
    test_volumes = [noisy_test_volume(code, (3, 12, 10), seed=22, name="hippocampus_203.nii.gz"),
                    noisy_test_volume(code, (4, 16, 13), seed=23, name="hippocampus_204.nii.gz")]
    volumes, split = experiment_data(code, test_volumes)
    experiment = build_experiment(code, tmp_path, volumes, split)
    experiment.model = OracleModel()
    results = experiment.run_test()
    for metric in ("dice", "jaccard"):
        values = [float(entry[metric]) for entry in results["volume_stats"]]
        mean = float(results["overall"][f"mean_{metric}"])
        assert mean == pytest.approx(float(np.mean(values))), (
            f"overall mean_{metric} is {mean}; the mean of the volumes' {metric} {values} is "
            f"{np.mean(values)}")

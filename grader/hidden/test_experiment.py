"""Hidden tests of UNetExperiment: training step (TASK S2.07), validation (TASK S2.08) and
run_test (TASKs S2.14, S2.15)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from grader.hidden.reference import reference_dice, reference_jaccard
from grader.runtime.checks import check
from grader.runtime.fixtures import (
    OracleModel,
    RecordingLoss,
    RecordingOptimizer,
    TinyNet,
    build_experiment,
    frame_shape,
    framed_seg,
    is_finite_positive,
    loaded_volume,
    oracle_image,
    prepare_run_test,
    random_volume,
    returned_loss,
    shown_labels,
    use_reference_metrics,
    use_reference_train_loader,
    use_reference_val_loader,
)


def batch_of(*volumes: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Every slice of the volumes: images [N, 1, H, W] float32, labels [N, H, W] int64."""
    images = np.concatenate([volume["image"] for volume in volumes])[:, None]
    labels = np.concatenate([volume["seg"] for volume in volumes])
    return (torch.from_numpy(images.astype(np.float32)),
            torch.from_numpy(labels.astype(np.int64)))


def filler(code, seed: int, depth: int = 2) -> dict:
    return random_volume(code, (depth, 12, 12), seed, f"hippocampus_{300 + seed}.nii.gz")


@pytest.mark.task("S2.07", points=2)
def test_training_gradient_over_a_batch_of_two_volumes_is_that_of_cross_entropy(code, tmp_path):
    train = [random_volume(code, (3, 14, 9), 30, "hippocampus_330.nii.gz"),
             random_volume(code, (2, 16, 16), 31, "hippocampus_331.nii.gz")]
    volumes = [*train, filler(code, 32), filler(code, 33)]
    split = {"train": [0, 1], "val": [2], "test": [3]}
    experiment = build_experiment(code, tmp_path, volumes, split, batch_size=8)
    torch.manual_seed(3)
    model = TinyNet()
    experiment.model = model
    experiment.optimizer = RecordingOptimizer(model.parameters())
    use_reference_train_loader(experiment, train, batch_size=8)
    experiment.train()  # one batch holding all 5 training slices
    check(len(experiment.optimizer.grads) == 1,
          "train() must take one optimizer step per batch")
    images, labels = batch_of(*train)
    model.zero_grad()
    nn.CrossEntropyLoss()(model(images), labels).backward()
    for parameter, grad in zip(model.parameters(), experiment.optimizer.grads[0], strict=True):
        check(grad is not None and torch.allclose(grad, parameter.grad, rtol=1e-4, atol=1e-7),
              "the training gradient must be that of the cross-entropy of the raw logits and "
              "the labels over the whole batch")


@pytest.mark.task("S2.07", points=1)
def test_training_loss_gets_the_raw_logits_and_integer_class_indices(code, tmp_path):
    train = random_volume(code, (1, 12, 12), 34, "hippocampus_334.nii.gz")  # one slice
    volumes = [train, filler(code, 35), filler(code, 36)]
    split = {"train": [0], "val": [1], "test": [2]}
    experiment = build_experiment(code, tmp_path, volumes, split, batch_size=1)
    torch.manual_seed(4)
    model = TinyNet()
    experiment.model = model
    experiment.optimizer = RecordingOptimizer(model.parameters())
    experiment.loss_function = RecordingLoss()
    use_reference_train_loader(experiment, [train], batch_size=1)
    experiment.train()
    calls = experiment.loss_function.calls
    check(len(calls) == 1, "train() must compute each batch's loss with self.loss_function")
    images, labels = batch_of(train)
    with torch.no_grad():
        logits = model(images)
    prediction, target = calls[0]["prediction"], calls[0]["target"]
    check(prediction.shape == logits.shape and torch.allclose(prediction, logits, atol=1e-6),
          "the loss must get the model's raw logits [B, C, H, W], without softmax")
    check(target.dtype == torch.int64 and target.shape == labels.shape,
          "the loss must get the labels as int64 class indices [B, H, W] (no channel axis)")
    check(torch.equal(target, labels), "the loss must get the batch's own labels")


@pytest.mark.task("S2.08", points=1)
def test_validation_loss_is_the_cross_entropy_of_the_validation_slices(code, tmp_path):
    use_reference_metrics(code)
    val = random_volume(code, (4, 12, 12), 37, "hippocampus_337.nii.gz")
    volumes = [filler(code, 38), val, filler(code, 39)]
    split = {"train": [0], "val": [1], "test": [2]}
    experiment = build_experiment(code, tmp_path, volumes, split, batch_size=8)
    torch.manual_seed(5)
    model = TinyNet()
    experiment.model = model
    experiment.optimizer = RecordingOptimizer(model.parameters())
    experiment.loss_function = RecordingLoss()
    use_reference_val_loader(experiment, [val], batch_size=8)
    loss = returned_loss(experiment.validate())
    if loss is None:  # a course-starter validate() logs its loss and returns nothing
        calls = experiment.loss_function.calls
        check(calls, "validate() must compute the loss with self.loss_function or return it")
        loss = float(np.mean([call["loss"] for call in calls]))
    images, labels = batch_of(val)
    with torch.no_grad():
        expected = nn.CrossEntropyLoss()(model(images), labels).item()
    check(is_finite_positive(loss), "the validation loss must be finite and positive")
    check(math.isclose(loss, expected, rel_tol=1e-4),
          "the validation loss must be the mean cross-entropy of the model's logits over the "
          "validation slices")


@pytest.mark.task("S2.14", points=1)
def test_run_test_scores_each_volume_against_its_own_ground_truth(code, tmp_path):
    prepare_run_test(code)
    shapes = {"hippocampus_340.nii.gz": (3, 12, 10), "hippocampus_341.nii.gz": (5, 16, 11)}
    segs = {name: framed_seg(code, shape, seed)
            for seed, (name, shape) in zip((40, 41), shapes.items(), strict=True)}
    shown = {name: shown_labels(seg, shapes[name], seed)
             for seed, (name, seg) in enumerate(segs.items())}
    tests = [loaded_volume(code, seg, name, shapes[name], image=oracle_image(shown[name]))
             for name, seg in segs.items()]
    volumes = [filler(code, 42), filler(code, 43), *tests]
    split = {"train": [0], "val": [1], "test": [2, 3]}
    experiment = build_experiment(code, tmp_path, volumes, split)
    experiment.model = OracleModel()  # predicts the shown labels, not the true ones
    stats = experiment.run_test()["volume_stats"]
    check(sorted(str(entry["filename"]) for entry in stats) == sorted(segs),
          "volume_stats must hold one entry per test volume, named by its filename")
    for entry in stats:
        name = str(entry["filename"])
        check(isinstance(entry["dice"], (float, np.floating))
              and isinstance(entry["jaccard"], (float, np.floating)),
              "dice and jaccard in volume_stats must be floats")
        check(math.isclose(float(entry["dice"]), reference_dice(shown[name], segs[name]),
                           abs_tol=1e-6)
              and math.isclose(float(entry["jaccard"]),
                               reference_jaccard(shown[name], segs[name]), abs_tol=1e-6),
              "each volume's dice and jaccard must compare its prediction with its own seg")


@pytest.mark.task("S2.15", points=1)
def test_run_test_averages_over_volumes_not_over_pooled_voxels(code, tmp_path):
    prepare_run_test(code)
    small_shape, middle_shape = (1, 4, 4), (2, 8, 8)
    small = np.zeros(frame_shape(code, small_shape), dtype=np.uint8)  # [1, 4, 4] framed: Dice 0
    small[0, 0, :2] = 1
    small_shown = np.zeros_like(small)
    small_shown[0, 3, :2] = 2
    middle = framed_seg(code, middle_shape, 45)  # [2, 8, 8] framed: Dice below 1
    tests = [loaded_volume(code, small, "hippocampus_344.nii.gz", small_shape,
                           image=oracle_image(small_shown)),
             random_volume(code, (6, 16, 16), 44, "hippocampus_345.nii.gz"),  # Dice 1
             loaded_volume(code, middle, "hippocampus_346.nii.gz", middle_shape,
                           image=oracle_image(shown_labels(middle, middle_shape, 46)))]
    volumes = [filler(code, 47), filler(code, 48), *tests]
    split = {"train": [0], "val": [1], "test": [2, 3, 4]}
    experiment = build_experiment(code, tmp_path, volumes, split)
    experiment.model = OracleModel()
    results = experiment.run_test()
    overall = results["overall"]
    check(all(isinstance(overall[f"mean_{metric}"], (float, np.floating))
              for metric in ("dice", "jaccard")),
          "overall must hold mean_dice and mean_jaccard as floats")
    try:
        json.dumps(overall)
        serialisable = True
    except (TypeError, ValueError):
        serialisable = False
    check(serialisable, "overall must be JSON-serialisable (plain floats) for results.json")
    for metric in ("dice", "jaccard"):
        values = [float(entry[metric]) for entry in results["volume_stats"]]
        check(math.isclose(float(overall[f"mean_{metric}"]), float(np.mean(values)),
                           abs_tol=1e-6),
              f"overall mean_{metric} must be the plain mean of the volumes' {metric}, each "
              "volume counting once")

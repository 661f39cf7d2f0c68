"""The cpu preset's training recipe: the foreground slice sampler, cross-entropy plus soft Dice,
augmentation, a moving average of the weights, and a patch that is not square (64 x 48), from
the loader through model.pth to the agent."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import tiny_settings
from torch import nn

import run_ml_pipeline as pipeline
from data_prep.augmentation import SliceAugmentation
from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from data_prep.SlicesDataset import ForegroundSliceSampler, SlicesDataset
from experiments.UNetExperiment import CrossEntropyDiceLoss, UNetExperiment
from inference.UNetInferenceAgent import UNetInferenceAgent
from networks.RecursiveUNet import UNet
from utils.volume_stats import Dice3d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- ForegroundSliceSampler -----------------------------------------------------------------

def volumes_with_empty_slices() -> list[dict]:
    """Two volumes of 10 and 6 slices; slices 2, 3, 4 of the first and 1 of the second show
    hippocampus, the other 12 are all background."""
    first, second = np.zeros((10, 4, 4), np.uint8), np.zeros((6, 4, 4), np.uint8)
    first[2:5, 1, 1] = 1
    second[1, 2, 2] = 2
    return [{"image": seg.astype(np.float32), "seg": seg} for seg in (first, second)]


FOREGROUND_SLICES = {2, 3, 4, 11}  # slice numbers in SlicesDataset's order


@pytest.mark.parametrize("fraction, n_empty", [(0.0, 0), (0.25, 3), (0.5, 6), (1.0, 12)])
def test_sampler_draws_every_foreground_slice_and_its_share_of_the_empty_ones(fraction, n_empty):
    sampler = ForegroundSliceSampler(SlicesDataset(volumes_with_empty_slices()), fraction,
                                     torch.Generator().manual_seed(0))
    epoch = list(sampler)
    assert len(epoch) == len(sampler) == len(FOREGROUND_SLICES) + n_empty
    assert len(set(epoch)) == len(epoch), "a slice was drawn twice in one epoch"
    assert FOREGROUND_SLICES <= set(epoch)
    assert all(isinstance(index, int) and 0 <= index < 16 for index in epoch)


def test_sampler_draws_other_empty_slices_and_orders_in_each_epoch_and_repeats_with_its_seed():
    data = SlicesDataset(volumes_with_empty_slices())
    sampler = ForegroundSliceSampler(data, 0.25, torch.Generator().manual_seed(3))
    epochs = [list(sampler) for _ in range(6)]
    assert len({tuple(sorted(set(epoch) - FOREGROUND_SLICES)) for epoch in epochs}) > 1
    assert len({tuple(epoch) for epoch in epochs}) == len(epochs)
    again = ForegroundSliceSampler(data, 0.25, torch.Generator().manual_seed(3))
    assert [list(again) for _ in range(6)] == epochs


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_sampler_refuses_a_share_outside_0_and_1(fraction):
    with pytest.raises(ValueError, match="empty_fraction"):
        ForegroundSliceSampler(SlicesDataset(volumes_with_empty_slices()), fraction)


# --- CrossEntropyDiceLoss -------------------------------------------------------------------

def random_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 3, 8, 6, generator=generator)
    target = torch.randint(0, 3, (4, 8, 6), generator=generator)
    return logits, target


def test_loss_of_weight_zero_is_the_cross_entropy():
    logits, target = random_batch()
    torch.testing.assert_close(CrossEntropyDiceLoss(0.0)(logits, target),
                               nn.functional.cross_entropy(logits, target))


def test_soft_dice_term_of_confident_logits_is_one_minus_the_smoothed_hard_dice():
    _, target = random_batch(1)
    predicted = torch.roll(target, shifts=1, dims=-1)  # overlaps the truth only in part
    logits = 50.0 * nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float()
    a, b = predicted > 0, target > 0
    hard_dice = (2 * (a & b).sum().item() + 1) / (a.sum().item() + b.sum().item() + 1)
    term = CrossEntropyDiceLoss(2.0)(logits, target) - nn.functional.cross_entropy(logits, target)
    assert term.item() == pytest.approx(2.0 * (1.0 - hard_dice), abs=1e-5)


def test_soft_dice_term_pulls_the_foreground_probability_towards_the_truth():
    logits, target = random_batch(2)
    logits.requires_grad_(True)
    dice_only = CrossEntropyDiceLoss(1.0)(logits, target) - nn.functional.cross_entropy(
        logits, target)
    dice_only.backward()
    background_gradient = logits.grad[:, 0]
    # Raising the background logit of a hippocampus pixel must raise the loss, and the
    # other way round on background pixels.
    assert (background_gradient[target > 0] > 0).all()
    assert (background_gradient[target == 0] < 0).all()


# --- the experiment picks the recipe from its config ----------------------------------------

SPLIT = {"train": [0], "val": [1], "test": [2]}


def test_experiment_with_the_course_defaults_trains_on_every_slice_with_cross_entropy(
        tmp_path, synthetic_root):
    data = LoadHippocampusData(synthetic_root, 32, 32)
    experiment = UNetExperiment(tiny_settings(tmp_path, n_epochs=1), SPLIT, data)
    assert type(experiment.loss_function) is nn.CrossEntropyLoss
    assert len(experiment.train_loader.sampler) == len(data[0]["image"])


def test_experiment_samples_slices_and_adds_the_dice_term_when_configured(tmp_path,
                                                                          synthetic_root):
    data = LoadHippocampusData(synthetic_root, 32, 32)
    experiment = UNetExperiment(tiny_settings(tmp_path, n_epochs=1, empty_slice_fraction=0.0,
                                                dice_loss_weight=0.5), SPLIT, data)
    assert isinstance(experiment.loss_function, CrossEntropyDiceLoss)
    assert experiment.loss_function.dice_weight == 0.5
    foreground = int(data[0]["seg"].reshape(len(data[0]["seg"]), -1).any(axis=1).sum())
    assert 0 < foreground < len(data[0]["seg"])
    assert len(experiment.train_loader.sampler) == foreground
    assert np.isfinite(experiment.train())


# --- a patch that is not square -------------------------------------------------------------

def test_loader_pads_axis_2_to_z_shape(synthetic_root):
    data = LoadHippocampusData(synthetic_root, 32, 24)
    assert {volume["image"].shape[1:] for volume in data} == {(32, 24)}
    assert {volume["seg"].shape[1:] for volume in data} == {(32, 24)}


def test_agent_pads_an_unpadded_volume_to_a_patch_that_is_not_square():
    torch.manual_seed(0)
    model = UNet(initial_filter_size=4, num_downs=2)
    agent = UNetInferenceAgent(model=model, patch_size=(32, 24))
    assert agent.patch_shape == (32, 24)
    volume = np.random.default_rng(0).random((3, 20, 18)).astype(np.float32)
    labels = agent.single_volume_inference_unpadded(volume)
    assert labels.shape == (3, 20, 18)
    with pytest.raises(ValueError, match="32, 24"):
        agent.single_volume_inference(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="exceeds"):
        agent.single_volume_inference_unpadded(np.ones((3, 20, 30), np.float32))


def test_a_run_on_a_64_x_48_patch_writes_a_model_file_that_brings_its_patch_along(
        tmp_path, synthetic_root):
    out_dir = tmp_path / "out"
    results = pipeline.main(["--data-dir", str(synthetic_root), "--test-results-dir",
                             str(out_dir), "--filters", "4", "--num-downs", "2",
                             "--patch-size", "32x24", "--epochs", "1", "--batch-size", "4",
                             "--empty-fraction", "0.5", "--dice-weight", "1", "--device",
                             "cpu", "--tensorboard-dir", str(out_dir / "runs")])
    [session] = [path for path in out_dir.iterdir() if path.name != "runs"]
    assert json.loads((session / "config.json").read_text())["patch_size"] == [32, 24]
    agent = UNetInferenceAgent(parameter_file_path=str(session / "model.pth"))
    assert agent.patch_shape == (32, 24)
    [row] = results["volume_stats"]  # the agent from model.pth alone reproduces the test Dice
    raw = np.asarray(nib.load(synthetic_root / "images" / row["filename"]).dataobj)
    seg = np.asarray(nib.load(synthetic_root / "labels" / row["filename"]).dataobj)
    assert Dice3d(agent.single_volume_inference_unpadded(raw), seg) == pytest.approx(row["dice"])


@pytest.mark.parametrize("argv, message", [
    (["--patch-size", "64x44"], "--patch-size 64x44: each size must be divisible"),
    (["--empty-fraction", "1.5"], "--empty-fraction: 1.5: expected a number in [0, 1]"),
])
def test_invalid_recipe_flags_are_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        pipeline.parse_config(argv)
    assert message in capsys.readouterr().err


def test_experiment_with_a_moving_average_validates_tests_and_saves_the_averaged_weights(
        tmp_path, synthetic_root):
    data = LoadHippocampusData(synthetic_root, 32, 32)
    experiment = UNetExperiment(tiny_settings(tmp_path, n_epochs=1, ema_decay=0.5), SPLIT, data)
    experiment.train()
    averaged, trained = experiment.evaluated_model, experiment.model
    assert averaged is not trained
    first = next(iter(trained.state_dict()))
    assert not torch.equal(averaged.state_dict()[first], trained.state_dict()[first])
    assert experiment.inference_agent().model is averaged
    experiment.save_model_parameters()
    saved = torch.load(experiment.out_dir / "model.pth", weights_only=True)["state_dict"]
    torch.testing.assert_close(saved, averaged.state_dict())


def test_experiment_with_augment_transforms_its_training_batches(tmp_path, synthetic_root):
    data = LoadHippocampusData(synthetic_root, 32, 32)
    plain = UNetExperiment(tiny_settings(tmp_path / "plain", n_epochs=1), SPLIT, data)
    augmented = UNetExperiment(tiny_settings(tmp_path / "aug", n_epochs=1, augment=True), SPLIT,
                               data)
    assert isinstance(augmented.train_loader.collate_fn, SliceAugmentation)
    plain_batch = next(iter(plain.train_loader))
    augmented_batch = next(iter(augmented.train_loader))
    assert torch.equal(plain_batch["id"], augmented_batch["id"])  # same draw of slices
    assert not torch.equal(plain_batch["image"], augmented_batch["image"])

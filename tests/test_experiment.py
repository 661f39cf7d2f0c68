"""UNetExperiment: training step, validation, schedule, checkpoints, resume and test."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import TINY_RUN, tiny_settings

from data_prep.augmentation import SliceAugmentation
from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from experiments.settings import SESSION_NAME, Settings
from experiments.UNetExperiment import (
    LAST_CHECKPOINT,
    NonFiniteLossError,
    UNetExperiment,
    ema_warmup_decay,
)
from utils.volume_stats import volume_metrics

PATCH_SIZE = TINY_RUN["patch_size"]  # px: holds the 20 x 18 synthetic slices, divides by 2**2


@pytest.fixture
def tiny_data(synthetic_root: Path) -> list[dict]:
    return LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE)


SPLIT = {"train": [0], "val": [1], "test": [2]}


def new_experiment(tmp_path: Path, data: list[dict], seed: int = 0, **overrides) -> UNetExperiment:
    torch.manual_seed(seed)  # the weights' initialisation draws from the global generator
    return UNetExperiment(tiny_settings(tmp_path, **overrides), SPLIT, data)


def test_training_lowers_the_loss_on_a_fixed_volume(tmp_path, tiny_data):
    experiment = new_experiment(tmp_path, tiny_data, n_epochs=10)
    losses = [experiment.train() for _ in range(10)]
    assert losses[-1] < 0.75 * losses[0]


def test_scheduler_changes_the_learning_rate_within_one_epoch(tmp_path, tiny_data):
    experiment = new_experiment(tmp_path, tiny_data)
    first_rate = experiment.optimizer.param_groups[0]["lr"]
    experiment.train()
    assert experiment.optimizer.param_groups[0]["lr"] != pytest.approx(first_rate)


def test_validation_leaves_weights_and_gradients_untouched(tmp_path, tiny_data):
    experiment = new_experiment(tmp_path, tiny_data)
    experiment.train()
    before = {name: p.detach().clone() for name, p in experiment.model.named_parameters()}
    grads = {name: p.grad.clone() for name, p in experiment.model.named_parameters()}
    val_loss, val_dice = experiment.validate()
    assert val_loss > 0 and 0.0 <= val_dice <= 1.0
    for name, parameter in experiment.model.named_parameters():
        assert torch.equal(parameter, before[name])
        assert torch.equal(parameter.grad, grads[name])


def test_run_writes_a_checkpoint_per_epoch_and_a_model_file(tmp_path, tiny_data):
    experiment = new_experiment(tmp_path, tiny_data)
    experiment.run()
    checkpoint = torch.load(experiment.checkpoint_dir / LAST_CHECKPOINT, weights_only=True)
    assert checkpoint["epoch"] == 2 and len(checkpoint["history"]) == 2
    assert (experiment.out_dir / "model.pth").is_file()
    assert not list(experiment.out_dir.rglob("*.tmp")), "a temporary file was left behind"
    assert list((tmp_path / "runs").rglob("events.out.tfevents.*")), "no TensorBoard log"


CPU_RECIPE = {"empty_slice_fraction": 0.5, "augment": True, "dice_loss_weight": 1.0,
              "ema_decay": 0.9}  # every random draw and state the cpu preset adds


@pytest.mark.parametrize("recipe", [{}, CPU_RECIPE], ids=["course", "cpu-recipe"])
def test_resume_after_an_interrupted_epoch_matches_an_uninterrupted_run(tmp_path, tiny_data,
                                                                        monkeypatch, recipe):
    full = new_experiment(tmp_path / "full", tiny_data, n_epochs=3, **recipe)
    full.run()

    interrupted = new_experiment(tmp_path / "cut", tiny_data, n_epochs=3, **recipe)
    calls = {"n": 0}
    original_validate = interrupted.validate

    def validate_then_die():
        calls["n"] += 1
        if calls["n"] == 2:  # killed after training epoch 2, before its checkpoint
            raise KeyboardInterrupt
        return original_validate()

    monkeypatch.setattr(interrupted, "validate", validate_then_die)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    last = interrupted.checkpoint_dir / LAST_CHECKPOINT
    assert torch.load(last, weights_only=True)["epoch"] == 1

    torch.manual_seed(123)  # a different start: everything must come from the checkpoint
    resumed = UNetExperiment(tiny_settings(tmp_path / "cut", n_epochs=3, **recipe), SPLIT,
                             tiny_data, resume_from=last)
    assert resumed.epoch == 1
    resumed.run()
    state_full = torch.load(full.checkpoint_dir / LAST_CHECKPOINT, weights_only=True)
    state_resumed = torch.load(last, weights_only=True)
    assert state_resumed["epoch"] == 3
    for weights in ("state_dict", "trained_state_dict", "averaged_state_dict"):
        torch.testing.assert_close(state_resumed[weights], state_full[weights])


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path, tiny_data):
    experiment = new_experiment(tmp_path, tiny_data, n_epochs=1)
    experiment.run()
    with pytest.raises(ValueError, match="U-Net"):
        UNetExperiment(tiny_settings(tmp_path / "other", initial_filter_size=8), SPLIT, tiny_data,
                       resume_from=experiment.checkpoint_dir / LAST_CHECKPOINT)


def test_run_test_scores_cropped_predictions_written_with_the_original_affine(tmp_path,
                                                                               tiny_data):
    experiment = new_experiment(tmp_path, tiny_data, n_epochs=1)
    experiment.run()
    results = experiment.run_test()
    [stats] = results["volume_stats"]
    volume = tiny_data[2]
    assert stats["filename"] == volume["filename"]
    saved = nib.load(experiment.out_dir / "predictions" / volume["filename"])
    assert saved.shape == volume["original_shape"]
    np.testing.assert_array_equal(saved.affine, volume["affine"])
    crop = tuple(slice(0, size) for size in volume["original_shape"])
    recomputed = volume_metrics(np.asarray(saved.dataobj), volume["seg"][crop])
    assert {key: stats[key] for key in recomputed} == pytest.approx(recomputed, nan_ok=True)
    assert results["overall"]["mean_dice"] == pytest.approx(stats["dice"])


def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_last_good_checkpoint(
        tmp_path, tiny_data, monkeypatch):
    experiment = new_experiment(tmp_path, tiny_data, n_epochs=3)
    train_one_epoch = experiment.train

    def train_on_a_damaged_volume_from_epoch_2() -> float:
        if experiment.epoch == 1:  # SPLIT's one training volume gets NaN voxels
            tiny_data[0]["image"][:, 0, 0] = np.nan  # one voxel in each slice
        return train_one_epoch()

    monkeypatch.setattr(experiment, "train", train_on_a_damaged_volume_from_epoch_2)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 1 .*after epoch 1\) is kept"):
        experiment.run()
    last = torch.load(experiment.checkpoint_dir / LAST_CHECKPOINT, weights_only=True)
    assert last["epoch"] == 1
    for name, weights in experiment.model.state_dict().items():  # the NaN batch changed none
        torch.testing.assert_close(weights, last["trained_state_dict"][name])
    assert not (experiment.out_dir / "model.pth").exists()


def test_train_seconds_add_up_over_a_resumed_run(tmp_path, tiny_data, monkeypatch):
    interrupted = new_experiment(tmp_path, tiny_data, n_epochs=2)
    validate = interrupted.validate
    calls = {"n": 0}

    def validate_then_die():
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return validate()

    monkeypatch.setattr(interrupted, "validate", validate_then_die)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    last = interrupted.checkpoint_dir / LAST_CHECKPOINT
    first_part = torch.load(last, weights_only=True)["train_seconds"]
    assert first_part > 0
    resumed = UNetExperiment(tiny_settings(tmp_path, n_epochs=2), SPLIT, tiny_data,
                             resume_from=last)
    assert resumed.train_seconds == first_part
    resumed.run()
    assert resumed.train_seconds > first_part


def test_moving_average_decay_warms_up_from_one_tenth_to_the_configured_decay():
    assert ema_warmup_decay(0.99, 0) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert ema_warmup_decay(0.99, 60) == pytest.approx(61 / 70)
    assert ema_warmup_decay(0.99, 10_000) == 0.99


def test_moving_average_after_a_few_steps_is_near_the_trained_weights_not_the_initial_ones(
        tmp_path, tiny_data):
    experiment = new_experiment(tmp_path, tiny_data, n_epochs=3, ema_decay=0.99)
    initial = {name: weights.clone() for name, weights in experiment.model.state_dict().items()}
    for _ in range(3):  # 2 batches of 4 of the 6 training slices each: 6 steps
        experiment.train()
    averaged = experiment.evaluated_model.state_dict()
    trained = experiment.model.state_dict()

    def distance(a: dict, b: dict) -> float:
        return float(sum(torch.sum((a[name] - b[name]) ** 2) for name in a) ** 0.5)

    # Without a warm-up the step-1 weights (about the initial ones) keep 0.99**5 = 95 %.
    assert distance(averaged, trained) < 0.5 * distance(averaged, initial)


def test_a_course_config_of_seven_attributes_gets_a_new_session_folder_and_the_defaults(
        tmp_path, tiny_data, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default tensorboard_dir, runs/, is relative
    course_config = SimpleNamespace(  # the course starter's Config: these seven attributes
        name="Basic_unet", root_dir=str(tmp_path / "data"), n_epochs=1, learning_rate=0.01,
        batch_size=4, patch_size=PATCH_SIZE, test_results_dir=str(tmp_path / "results"))
    experiment = UNetExperiment(course_config, SPLIT, tiny_data)
    assert experiment.out_dir.parent == tmp_path / "results"
    assert SESSION_NAME.match(experiment.out_dir.name)
    assert experiment.out_dir.name.endswith("_Basic_unet")
    defaults = Settings()
    assert experiment.architecture["initial_filter_size"] == defaults.initial_filter_size
    assert experiment.architecture["num_downs"] == defaults.num_downs
    assert experiment.averaged_model is None  # no moving average: ema_decay 0
    assert not isinstance(experiment.train_loader.collate_fn, SliceAugmentation)

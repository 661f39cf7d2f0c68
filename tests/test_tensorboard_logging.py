"""TensorBoard logging of a training run: one run, scalars every batch, validation on the same
x axis, image panels every few batches, and the Custom Scalars layout that draws train and
validation loss in one chart. Read back from the event files with TensorBoard's own reader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from test_experiment import new_experiment, tiny_data  # noqa: F401 (tiny_data is a fixture)
from torch.utils.tensorboard import SummaryWriter

import experiments.UNetExperiment as unet_experiment
from experiments.UNetExperiment import IMAGES_EVERY_BATCHES
from utils.utils import (
    LEARNING_RATE_TAG,
    TRAIN_LOSS_TAG,
    VALIDATION_DICE_TAG,
    VALIDATION_LOSS_TAG,
    log_scalars_to_tensorboard,
    log_to_tensorboard,
)

EPOCHS = 3
PANELS = ("Image", "Mask", "Probability map", "Prediction")
EVENT_FILES = "events.out.tfevents.*"


def read_run(run_dir: Path) -> EventAccumulator:
    """Every event of one run folder, nothing sampled away."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0,
                                                           "tensors": 0})
    events.Reload()
    return events


@pytest.fixture
def trained_run(tmp_path, tiny_data):  # noqa: F811 (the fixture imported above)
    """A tiny experiment run for EPOCHS epochs; (experiment, its TensorBoard run folder)."""
    experiment = new_experiment(tmp_path, tiny_data, n_epochs=EPOCHS)
    experiment.run()
    experiment.tensorboard_writer.close()
    (run_dir,) = {path.parent for path in (tmp_path / "runs").rglob(EVENT_FILES)}
    return experiment, run_dir


def test_a_training_session_writes_one_run_with_the_pipeline_scalar_tags(trained_run):
    experiment, run_dir = trained_run
    assert run_dir.name == experiment.out_dir.name
    assert set(read_run(run_dir).Tags()["scalars"]) == {
        TRAIN_LOSS_TAG, LEARNING_RATE_TAG, VALIDATION_LOSS_TAG, VALIDATION_DICE_TAG}


def test_training_loss_and_learning_rate_have_one_point_per_batch(trained_run):
    experiment, run_dir = trained_run
    events = read_run(run_dir)
    assert experiment.global_step > EPOCHS  # more than one batch per epoch
    for tag in (TRAIN_LOSS_TAG, LEARNING_RATE_TAG):
        assert [event.step for event in events.Scalars(tag)] == list(
            range(experiment.global_step)), tag
    rates = [event.value for event in events.Scalars(LEARNING_RATE_TAG)]
    assert len(set(rates)) > 1, "the one-cycle schedule changes the rate every batch"


def test_validation_points_sit_at_each_epochs_last_batch_with_the_history_values(trained_run):
    experiment, run_dir = trained_run
    events = read_run(run_dir)
    batches_per_epoch = experiment.global_step // EPOCHS
    epoch_ends = [batches_per_epoch * epoch for epoch in range(1, EPOCHS + 1)]
    for tag, key in ((VALIDATION_LOSS_TAG, "val_loss"), (VALIDATION_DICE_TAG, "val_dice")):
        scalars = events.Scalars(tag)
        assert [event.step for event in scalars] == epoch_ends, tag
        assert [event.value for event in scalars] == pytest.approx(
            [epoch[key] for epoch in experiment.history]), tag


@pytest.mark.parametrize("every", [IMAGES_EVERY_BATCHES, 4])
def test_image_panels_are_drawn_only_every_images_every_batches(tmp_path, tiny_data,  # noqa: F811
                                                                 monkeypatch, every):
    monkeypatch.setattr(unet_experiment, "IMAGES_EVERY_BATCHES", every)
    experiment = new_experiment(tmp_path, tiny_data, n_epochs=EPOCHS)
    experiment.run()
    experiment.tensorboard_writer.close()
    events = read_run(tmp_path / "runs" / experiment.out_dir.name)
    expected_steps = list(range(0, experiment.global_step, every))
    for tag in PANELS:
        assert [event.step for event in events.Images(tag)] == expected_steps, tag
    assert len(events.Scalars(TRAIN_LOSS_TAG)) == experiment.global_step


def test_custom_scalars_layout_puts_dice_first_and_both_losses_in_one_chart(trained_run):
    _, run_dir = trained_run
    events = read_run(run_dir)
    (config,) = events.Tensors(custom_scalar_metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    charts = [chart for category in layout.category for chart in category.chart]
    scalar_tags = events.Tags()["scalars"]

    def tags_drawn(chart) -> set[str]:
        return {tag for pattern in chart.multiline.tag for tag in scalar_tags
                if re.fullmatch(pattern, tag)}

    assert tags_drawn(charts[0]) == {VALIDATION_DICE_TAG}
    assert {TRAIN_LOSS_TAG, VALIDATION_LOSS_TAG} in [tags_drawn(chart) for chart in charts]
    assert set().union(*map(tags_drawn, charts)) == set(scalar_tags), "a scalar in no chart"


def batch_tensors() -> tuple[torch.Tensor, ...]:
    """data [2, 1, 4, 4], target [2, 4, 4], probabilities [2, 3, 4, 4], prediction [2, 4, 4]."""
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(2, 3, 4, 4), dim=1)
    return torch.rand(2, 1, 4, 4), torch.randint(0, 3, (2, 4, 4)), probs, probs.argmax(dim=1)


def test_course_call_logs_the_scalar_loss_and_images_without_learning_rate(tmp_path):
    writer = SummaryWriter(log_dir=str(tmp_path))
    log_to_tensorboard(writer, 0.5, *batch_tensors(), 3)
    writer.close()
    tags = read_run(tmp_path).Tags()
    assert tags["scalars"] == ["Loss"] and sorted(tags["images"]) == sorted(PANELS)


def test_scalars_only_logging_writes_the_loss_and_learning_rate_and_no_image(tmp_path):
    writer = SummaryWriter(log_dir=str(tmp_path))
    log_scalars_to_tensorboard(writer, 0.5, 3, loss_tag=TRAIN_LOSS_TAG, learning_rate=0.002)
    writer.close()
    events = read_run(tmp_path)
    assert events.Tags()["images"] == []
    (rate,) = events.Scalars(LEARNING_RATE_TAG)
    (loss,) = events.Scalars(TRAIN_LOSS_TAG)
    assert (rate.step, rate.value, loss.step, loss.value) == (3, pytest.approx(0.002), 3, 0.5)

"""Hippocampus volume in mm3, predicted against true, and the test report's volume fields."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import tiny_settings

from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from experiments.settings import PRESETS
from experiments.UNetExperiment import VOLUME_AGREEMENT_PLOT, UNetExperiment
from utils.hippocampus_volume import (
    LIMITS_OF_AGREEMENT_SD,
    VOLUME_PARTS,
    add_volume_agreement,
    compare_volumes_mm3,
    label_volumes_mm3,
    plot_volume_agreement,
    volume_agreement,
)

CPU_PATCH = PRESETS["cpu"]["patch_size"]  # px (rows, columns): holds every MSD Task04 crop
REAL_SPLIT = {"train": [0], "val": [1], "test": [2, 3, 4]}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- label_volumes_mm3 -----------------------------------------------------------------------

def test_volumes_are_voxel_counts_times_the_voxel_volume():
    labels = np.zeros((2, 3, 4), np.uint8)  # [X, Y, Z]
    labels[0, 0, :3] = 1  # 3 anterior voxels
    labels[1, 2, :] = 2  # 4 posterior voxels
    volumes = label_volumes_mm3(labels, (0.5, 2.0, 3.0))  # 3 mm3 per voxel
    assert volumes == pytest.approx({"anterior_mm3": 9.0, "posterior_mm3": 12.0,
                                     "total_mm3": 21.0})


def test_an_empty_label_map_has_zero_volume():
    assert label_volumes_mm3(np.zeros((2, 2, 2), np.uint8), (1, 1, 1)) == {
        "anterior_mm3": 0.0, "posterior_mm3": 0.0, "total_mm3": 0.0}


@pytest.mark.parametrize("labels, spacing, message", [
    (np.full((2, 2, 2), 3), (1, 1, 1), r"values \[3\]"),
    (np.full((2, 2, 2), -1), (1, 1, 1), r"values \[-1\]"),
    (np.zeros((2, 2)), (1, 1, 1), "3-D"),
    (np.zeros((2, 2, 2)), (1, 0, 1), "spacing"),
    (np.zeros((2, 2, 2)), (1, np.nan, 1), "spacing"),
    (np.zeros((2, 2, 2)), (1, 1), "spacing"),
])
def test_volumes_refuse_labels_or_spacing_that_give_no_volume(labels, spacing, message):
    with pytest.raises(ValueError, match=message):
        label_volumes_mm3(labels, spacing)


# --- predicted against true -------------------------------------------------------------------

def test_comparison_gives_predicted_true_and_their_difference():
    seg = np.zeros((1, 2, 5), np.uint8)  # [X, Y, Z]
    seg[0, 0, :4] = 1  # 4 anterior
    seg[0, 1, :2] = 2  # 2 posterior
    pred = np.zeros_like(seg)
    pred[0, 0, :3] = 1  # 3 anterior
    pred[0, 1, :5] = 2  # 5 posterior
    comparison = compare_volumes_mm3(pred, seg, (2.0, 1.0, 1.0))  # 2 mm3 per voxel
    assert comparison == pytest.approx({
        "pred_anterior_mm3": 6, "true_anterior_mm3": 8, "diff_anterior_mm3": -2,
        "pred_posterior_mm3": 10, "true_posterior_mm3": 4, "diff_posterior_mm3": 6,
        "pred_total_mm3": 16, "true_total_mm3": 12, "diff_total_mm3": 4})


def comparison(pred_total: float, true_total: float) -> dict[str, float]:
    """A comparison whose every part has the given predicted and true volume."""
    return {f"{kind}_{part}_mm3": value for part in VOLUME_PARTS for kind, value in
            (("pred", pred_total), ("true", true_total), ("diff", pred_total - true_total))}


def test_agreement_means_absolute_and_relative_errors_and_bland_altman_limits():
    agreement = volume_agreement([comparison(110, 100), comparison(270, 300)])
    # differences +10 and -30: mean |error| 20 mm3; relative 0.10 and 0.10; bias -10,
    # sample SD of (10, -30) is 20 * sqrt(2)
    assert agreement["mean_abs_diff_total_mm3"] == pytest.approx(20)
    assert agreement["mean_rel_diff_total"] == pytest.approx(0.10)
    assert agreement["bias_total_mm3"] == pytest.approx(-10)
    half_width = LIMITS_OF_AGREEMENT_SD * 20 * np.sqrt(2)
    assert agreement["loa_low_total_mm3"] == pytest.approx(-10 - half_width)
    assert agreement["loa_high_total_mm3"] == pytest.approx(-10 + half_width)


def test_relative_error_leaves_out_volumes_without_true_hippocampus():
    agreement = volume_agreement([comparison(50, 0), comparison(90, 100)])
    assert agreement["mean_rel_diff_total"] == pytest.approx(0.10)
    assert np.isnan(volume_agreement([comparison(50, 0)])["mean_rel_diff_total"])


def test_metrics_not_one_dict_per_test_volume_are_left_as_they_are():
    labels = (np.ones((1, 1, 2), np.uint8), np.ones((1, 1, 2), np.uint8), (1, 1, 1))
    volume_stats, overall = [{"dice": 1.0}], {"mean_dice": 1.0}
    assert add_volume_agreement(volume_stats, overall, [labels, labels]) == []
    assert volume_stats == [{"dice": 1.0}] and overall == {"mean_dice": 1.0}


def test_a_prediction_with_a_label_outside_0_1_2_adds_no_volumes():
    pred = np.full((1, 1, 2), 7, np.uint8)
    volume_stats, overall = [{"dice": 1.0}], {"mean_dice": 1.0}
    assert add_volume_agreement(volume_stats, overall, [(pred, pred, (1, 1, 1))]) == []
    assert volume_stats == [{"dice": 1.0}]


def test_the_agreement_plot_marks_zero_the_bias_and_both_limits():
    comparisons = [comparison(110, 100), comparison(270, 300), comparison(3000, 3100)]
    [axes] = plot_volume_agreement(comparisons, title="session").axes
    levels = sorted(line.get_ydata()[0] for line in axes.lines if len(line.get_ydata()))
    agreement = volume_agreement(comparisons)
    assert levels == pytest.approx(sorted([0.0, agreement["bias_total_mm3"],
                                           agreement["loa_low_total_mm3"],
                                           agreement["loa_high_total_mm3"]]))
    [points] = axes.collections
    assert len(points.get_offsets()) == len(comparisons)


# --- results.json of a test run on real volumes ------------------------------------------------

def real_experiment(tmp_path: Path, data: list[dict]) -> UNetExperiment:
    torch.manual_seed(0)
    return UNetExperiment(tiny_settings(tmp_path, num_downs=3, patch_size=CPU_PATCH), REAL_SPLIT,
                          data)


@pytest.fixture(scope="module")
def real_volumes(real_data_dir) -> list[dict]:
    return LoadHippocampusData(real_data_dir, *CPU_PATCH, max_volumes=5)


class PaddedLabelAgent:
    """A perfect model: predicts each padded test image's own padded label."""

    def __init__(self, data: list[dict]) -> None:
        self.labels = {id(volume["image"]): volume["seg"] for volume in data}

    def single_volume_inference(self, image: np.ndarray) -> np.ndarray:
        return self.labels[id(image)]


def raw_label_volume_mm3(real_data_dir: Path, filename: str) -> dict[str, float]:
    label = nib.load(real_data_dir / "labels" / filename)
    seg = np.asarray(label.dataobj)
    voxel_mm3 = float(np.prod(label.header.get_zooms()[:3]))
    return {"anterior": np.count_nonzero(seg == 1) * voxel_mm3,
            "posterior": np.count_nonzero(seg == 2) * voxel_mm3,
            "total": np.count_nonzero(seg > 0) * voxel_mm3}


def test_a_perfect_model_predicts_the_true_volumes_of_real_test_scans(real_data_dir,
                                                                      real_volumes, tmp_path):
    experiment = real_experiment(tmp_path, real_volumes)
    experiment.inference_agent = lambda: PaddedLabelAgent(real_volumes)
    results = experiment.run_test()
    assert len(results["volume_stats"]) == len(REAL_SPLIT["test"])
    for stats in results["volume_stats"]:
        true = raw_label_volume_mm3(real_data_dir, stats["filename"])
        for part in VOLUME_PARTS:
            assert stats[f"true_{part}_mm3"] == pytest.approx(true[part])
            assert stats[f"pred_{part}_mm3"] == pytest.approx(true[part])
            assert stats[f"diff_{part}_mm3"] == 0
    overall = results["overall"]
    assert overall["mean_dice"] == 1.0
    assert overall["mean_abs_diff_total_mm3"] == 0 and overall["mean_rel_diff_total"] == 0
    assert (experiment.out_dir / VOLUME_AGREEMENT_PLOT).is_file()


def test_results_json_volumes_agree_with_the_saved_predictions(real_data_dir, real_volumes,
                                                               tmp_path):
    experiment = real_experiment(tmp_path, real_volumes)  # untrained: volumes far off
    results = json.loads(json.dumps(experiment.run_test()))  # as results.json holds them
    diffs, relative = [], []
    for stats in results["volume_stats"]:
        saved = nib.load(experiment.out_dir / "predictions" / stats["filename"])
        pred = np.asarray(saved.dataobj)
        true = raw_label_volume_mm3(real_data_dir, stats["filename"])
        voxel_mm3 = float(np.prod(saved.header.get_zooms()[:3]))
        assert stats["pred_total_mm3"] == pytest.approx(np.count_nonzero(pred) * voxel_mm3)
        assert stats["true_total_mm3"] == pytest.approx(true["total"])
        assert stats["diff_total_mm3"] == pytest.approx(stats["pred_total_mm3"] - true["total"])
        diffs.append(stats["diff_total_mm3"])
        relative.append(abs(stats["diff_total_mm3"]) / true["total"])
    overall = results["overall"]
    assert overall["mean_abs_diff_total_mm3"] == pytest.approx(np.mean(np.abs(diffs)))
    assert overall["mean_rel_diff_total"] == pytest.approx(np.mean(relative))
    assert overall["bias_total_mm3"] == pytest.approx(np.mean(diffs))
    assert overall["mean_dice"] == pytest.approx(np.mean([s["dice"] for s in
                                                          results["volume_stats"]]))

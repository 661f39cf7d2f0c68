"""volume_stats: Dice and Jaccard against medpy and by hand, and the per-volume report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from medpy.metric import binary

from utils.volume_stats import Dice3d, Jaccard3d, volume_metrics

SEEDS = [0, 1, 2]
DENSITIES = [0.1, 0.3, 0.7]  # fraction of voxels that carry a foreground label


def random_labels(seed: int, density: float, shape=(6, 8, 10)) -> np.ndarray:
    """Labels uint8 [6, 8, 10]: background 0, foreground split between labels 1 and 2."""
    rng = np.random.default_rng(seed)
    foreground = rng.random(shape) < density
    return np.where(foreground, rng.integers(1, 3, shape), 0).astype(np.uint8)


def random_pair(seed: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    return random_labels(seed, density), random_labels(seed + 100, density)


# --- against medpy -------------------------------------------------------------------------

@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_dice3d_matches_medpy_with_labels_one_and_two_as_foreground(seed, density):
    a, b = random_pair(seed, density)
    assert set(np.unique(a)) == {0, 1, 2}  # both foreground labels present
    assert Dice3d(a, b) == pytest.approx(binary.dc(a > 0, b > 0), abs=1e-12)


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_jaccard3d_matches_medpy_with_labels_one_and_two_as_foreground(seed, density):
    a, b = random_pair(seed, density)
    assert Jaccard3d(a, b) == pytest.approx(binary.jc(a > 0, b > 0), abs=1e-12)


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_jaccard_equals_dice_over_two_minus_dice(seed, density):
    a, b = random_pair(seed, density)
    dice = Dice3d(a, b)
    assert 0.0 < dice < 1.0
    assert Jaccard3d(a, b) == pytest.approx(dice / (2.0 - dice), abs=1e-12)


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
def test_metrics_treat_label_two_like_label_one(metric):
    a = random_labels(3, 0.4)  # [6, 8, 10]
    b = random_labels(4, 0.4)
    as_ones = (a > 0).astype(np.uint8)
    swapped = np.where(a == 1, 2, np.where(a == 2, 1, 0)).astype(np.uint8)
    assert metric(a, b) == metric(as_ones, b) == metric(swapped, b)


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, bool])
def test_metrics_accept_any_numeric_dtype(metric, dtype):
    a, b = random_pair(5, 0.3)
    assert metric(a.astype(dtype), b.astype(dtype)) == pytest.approx(metric(a, b))


# --- worked by hand ------------------------------------------------------------------------

@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
def test_metric_of_mask_with_itself_is_one(metric):
    a = random_labels(0, 0.3)  # [6, 8, 10]
    assert metric(a, a) == 1.0


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
def test_metric_of_disjoint_masks_is_zero(metric):
    a = np.zeros((2, 2, 2), np.uint8)  # [2, 2, 2]
    b = np.zeros((2, 2, 2), np.uint8)
    a[0] = 1
    b[1] = 2
    assert metric(a, b) == 0.0


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
def test_metric_of_two_empty_masks_is_one(metric):
    empty = np.zeros((2, 3, 4), np.uint8)  # [2, 3, 4]
    assert metric(empty, empty.copy()) == 1.0


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
def test_metric_with_exactly_one_empty_mask_is_zero(metric):
    empty = np.zeros((2, 3, 4), np.uint8)  # [2, 3, 4]
    full = np.ones((2, 3, 4), np.uint8)
    assert metric(empty, full) == 0.0
    assert metric(full, empty) == 0.0


def test_dice_and_jaccard_of_two_out_of_three_overlapping_voxels():
    # [1, 1, 4]: A = {0, 1, 2}, B = {1, 2, 3}; |A n B| = 2, |A| + |B| = 6, |A u B| = 4.
    a = np.array([[[1, 2, 1, 0]]], np.uint8)
    b = np.array([[[0, 1, 2, 2]]], np.uint8)
    assert Dice3d(a, b) == pytest.approx(2 * 2 / 6)
    assert Jaccard3d(a, b) == pytest.approx(2 / 4)


def test_dice_with_prediction_inside_larger_ground_truth():
    # [1, 2, 3]: prediction 2 voxels, truth 6 voxels, overlap 2 -> Dice 4/8, Jaccard 2/6.
    pred = np.array([[[1, 1, 0], [0, 0, 0]]], np.uint8)
    truth = np.ones((1, 2, 3), np.uint8)
    assert Dice3d(pred, truth) == pytest.approx(0.5)
    assert Jaccard3d(pred, truth) == pytest.approx(1 / 3)


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
def test_metrics_are_symmetric(metric):
    a, b = random_pair(7, 0.3)
    assert metric(a, b) == metric(b, a)


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
@pytest.mark.parametrize("shape_a, shape_b", [((2, 3, 4), (2, 3, 5)), ((2, 3, 4), (4, 3, 2))])
def test_metrics_reject_volumes_of_different_shapes(metric, shape_a, shape_b):
    with pytest.raises(ValueError, match="shapes differ"):
        metric(np.zeros(shape_a), np.zeros(shape_b))


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
@pytest.mark.parametrize("shape_a, shape_b", [((3, 4), (3, 4)), ((2, 3, 4), (3, 4)),
                                              ((1, 2, 3, 4), (1, 2, 3, 4))])
def test_metrics_reject_arrays_that_are_not_3d(metric, shape_a, shape_b):
    with pytest.raises(ValueError, match="3-D"):
        metric(np.ones(shape_a), np.ones(shape_b))


@pytest.mark.parametrize("metric", [Dice3d, Jaccard3d])
@pytest.mark.parametrize("seed, density", [(0, 0.0), (1, 0.2), (2, 0.9), (3, 1.0)])
def test_metrics_return_a_float_between_zero_and_one(metric, seed, density):
    a, b = random_pair(seed, density)
    value = metric(a, b)
    assert isinstance(value, (float, np.floating))
    assert 0.0 <= value <= 1.0


# --- volume_metrics ------------------------------------------------------------------------

# [1, 1, 10]: anterior (1) predicted exactly, posterior (2) predicted in the wrong place.
SEG = np.array([[[1, 1, 2, 2, 2, 0, 0, 0, 0, 0]]], np.uint8)
PRED = np.array([[[1, 1, 0, 0, 0, 2, 2, 0, 0, 0]]], np.uint8)
# Whole hippocampus: truth {0..4} (5 voxels), prediction {0, 1, 5, 6} (4), overlap {0, 1}.
# TP 2, FN 3, FP 2, TN 3.


def test_volume_metrics_reports_every_key():
    assert set(volume_metrics(PRED, SEG)) == {"dice", "jaccard", "dice_anterior",
                                              "dice_posterior", "sensitivity", "specificity"}


def test_volume_metrics_per_class_dice_when_anterior_is_right_and_posterior_wrong():
    metrics = volume_metrics(PRED, SEG)
    assert metrics["dice_anterior"] == pytest.approx(1.0)
    assert metrics["dice_posterior"] == pytest.approx(0.0)
    assert metrics["dice"] == pytest.approx(2 * 2 / (4 + 5))
    assert metrics["jaccard"] == pytest.approx(2 / 7)


def test_volume_metrics_sensitivity_and_specificity_match_hand_counts():
    metrics = volume_metrics(PRED, SEG)
    assert metrics["sensitivity"] == pytest.approx(2 / (2 + 3))  # TP / (TP + FN)
    assert metrics["specificity"] == pytest.approx(3 / (3 + 2))  # TN / (TN + FP)


def test_volume_metrics_swapped_classes_score_whole_dice_one_and_class_dice_zero():
    seg = np.array([[[1, 1, 2, 0]]], np.uint8)   # [1, 1, 4]
    pred = np.array([[[2, 2, 1, 0]]], np.uint8)  # anterior and posterior swapped
    metrics = volume_metrics(pred, seg)
    assert metrics["dice"] == 1.0
    assert metrics["dice_anterior"] == 0.0
    assert metrics["dice_posterior"] == 0.0


def test_volume_metrics_values_are_python_floats():
    assert all(type(value) is float for value in volume_metrics(PRED, SEG).values())


def test_volume_metrics_sensitivity_is_nan_when_ground_truth_has_no_foreground():
    seg = np.zeros((1, 2, 2), np.uint8)                 # [1, 2, 2] no foreground
    pred = np.array([[[0, 1], [0, 0]]], np.uint8)       # one false positive
    metrics = volume_metrics(pred, seg)
    assert math.isnan(metrics["sensitivity"])
    assert metrics["specificity"] == pytest.approx(3 / 4)
    assert metrics["dice"] == 0.0


def test_volume_metrics_specificity_is_nan_when_ground_truth_has_no_background():
    seg = np.full((1, 2, 2), 2, np.uint8)               # [1, 2, 2] all posterior
    pred = np.array([[[2, 2], [0, 1]]], np.uint8)
    metrics = volume_metrics(pred, seg)
    assert math.isnan(metrics["specificity"])
    assert metrics["sensitivity"] == pytest.approx(3 / 4)


def test_volume_metrics_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        volume_metrics(np.zeros((1, 2, 3), np.uint8), np.zeros((1, 3, 2), np.uint8))

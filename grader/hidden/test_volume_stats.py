"""Hidden tests of Dice3d (TASK S2.12) and Jaccard3d (TASK S2.13), utils/volume_stats.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from medpy.metric import binary

from grader.runtime.checks import check, done, expect_error

SEEDS = range(6)
# Dice and Jaccard as float32 differ from medpy's float64 by up to about 1e-7; the course never
# asks for more precision than that.
TOLERANCE = 1e-6
SHAPE = (4, 5, 6)  # [X, Y, Z] of the random label maps


def random_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two random label maps [4, 5, 6] with values {0, 1, 2}, neither empty."""
    rng = np.random.default_rng(seed)
    a = rng.choice(3, size=SHAPE, p=(0.5, 0.25, 0.25)).astype(np.uint8)
    b = rng.choice(3, size=SHAPE, p=(0.6, 0.2, 0.2)).astype(np.int64)
    a.flat[0], b.flat[0] = 1, 2
    return a, b


def is_unit_float(value) -> bool:
    return isinstance(value, (float, np.floating)) and 0.0 <= float(value) <= 1.0


@pytest.mark.layout("kit")
@pytest.mark.task("S2.12", points=1)
def test_dice_agrees_with_medpy_on_random_label_maps(code):
    stats = code.import_module("utils.volume_stats")
    for seed in SEEDS:
        a, b = random_pair(seed)
        dice = stats.Dice3d(a, b)
        check(is_unit_float(dice), "Dice3d must return a float in [0, 1]")
        check(math.isclose(float(dice), binary.dc(a != 0, b != 0), abs_tol=TOLERANCE),
              "Dice3d must equal medpy.metric.binary.dc of the foregrounds (label != 0, so "
              "labels 1 and 2 count as one hippocampus)")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.12", points=1)
def test_dice_of_empty_and_disjoint_volumes(code):
    stats = code.import_module("utils.volume_stats")
    empty = np.zeros((2, 3, 4), dtype=np.uint8)  # [2, 3, 4]
    full = np.full((2, 3, 4), 2, dtype=np.uint8)
    left = np.zeros((2, 3, 4), dtype=np.uint8)
    left[:, :, :2] = 1
    check(float(stats.Dice3d(empty, empty)) == pytest.approx(1.0),
          "Dice3d of two volumes without foreground must be 1.0 (they agree), as its "
          "docstring says")
    check(float(stats.Dice3d(empty, full)) == pytest.approx(0.0),
          "Dice3d must be 0.0 when only one volume has foreground")
    check(float(stats.Dice3d(left, 2 * (left == 0))) == pytest.approx(0.0),
          "Dice3d of two disjoint masks must be 0.0")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.12", points=0.5)
def test_dice_raises_on_volumes_of_equal_size_but_different_shape(code):
    stats = code.import_module("utils.volume_stats")
    expect_error(stats.Dice3d, np.ones((2, 3, 4)), np.ones((2, 4, 3)),
                 what="volumes of different shapes but the same size")
    expect_error(stats.Dice3d, np.ones((3, 4)), np.ones((3, 4)), what="2-D arrays")


@pytest.mark.task("S2.13", points=1)
def test_jaccard_agrees_with_medpy_and_with_dice_over_two_minus_dice(code):
    stats = code.import_module("utils.volume_stats")
    for seed in SEEDS:
        a, b = random_pair(seed)
        jaccard = done(stats.Jaccard3d(a, b), "Jaccard3d(a, b)")
        check(is_unit_float(jaccard), "Jaccard3d must return a float in [0, 1]")
        check(math.isclose(float(jaccard), binary.jc(a != 0, b != 0), abs_tol=TOLERANCE),
              "Jaccard3d must equal medpy.metric.binary.jc of the foregrounds (the index "
              "|A n B| / |A u B|, labels 1 and 2 both foreground)")
        dice = binary.dc(a != 0, b != 0)
        check(math.isclose(float(jaccard), dice / (2 - dice), abs_tol=TOLERANCE),
              "Jaccard3d must equal Dice / (2 - Dice) for the same pair")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.13", points=0.5)
def test_jaccard_of_empty_volumes_is_one_and_of_mismatched_shapes_raises(code):
    stats = code.import_module("utils.volume_stats")
    empty = np.zeros((2, 3, 4), dtype=np.uint8)  # [2, 3, 4]
    check(float(stats.Jaccard3d(empty, empty)) == pytest.approx(1.0),
          "Jaccard3d of two volumes without foreground must be 1.0, as its docstring says")
    expect_error(stats.Jaccard3d, np.ones((2, 3, 4)), np.ones((2, 4, 3)),
                 what="volumes of different shapes")


@pytest.mark.layout("course")
@pytest.mark.task("S2.13", points=0.5)
def test_jaccard_of_mismatched_shapes_raises(code):
    stats = code.import_module("utils.volume_stats")
    a, b = random_pair(0)
    done(stats.Jaccard3d(a, b), "Jaccard3d(a, b)")  # the starter's shape checks are given code
    expect_error(stats.Jaccard3d, np.ones((2, 3, 4)), np.ones((2, 4, 3)),
                 what="volumes of different shapes")


def leaves_inputs_unchanged(function, name: str) -> None:
    """Check that ``function(a, b)`` on random label maps changes neither array."""
    __tracebackhide__ = True
    a, b = random_pair(7)
    before_a, before_b = a.copy(), b.copy()
    done(function(a, b), f"{name}(a, b)")
    check(np.array_equal(a, before_a) and np.array_equal(b, before_b),
          f"{name} must leave its input arrays unchanged: it overwrote their labels (e.g. "
          "a[a > 0] = 1); binarise into new arrays (a != 0) instead")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.12", points=0.5)
def test_dice3d_leaves_its_input_arrays_unchanged(code):
    leaves_inputs_unchanged(code.import_module("utils.volume_stats").Dice3d, "Dice3d")


@pytest.mark.task("S2.13", points=0.5)
def test_jaccard3d_leaves_its_input_arrays_unchanged(code):
    leaves_inputs_unchanged(code.import_module("utils.volume_stats").Jaccard3d, "Jaccard3d")

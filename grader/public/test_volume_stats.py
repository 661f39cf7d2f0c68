"""Public tests of Dice3d (TASK S2.12) and Jaccard3d (TASK S2.13), utils/volume_stats.py."""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks import expect_error


def volume(*values: int) -> np.ndarray:
    """A [1, 1, N] label volume holding ``values``."""
    return np.array(values, dtype=np.uint8).reshape(1, 1, -1)


@pytest.mark.task("S2.12", points=1)
def test_dice_of_a_mask_with_itself_is_one(code):
    stats = code.import_module("utils.volume_stats")
    mask = volume(0, 1, 2, 2, 0)  # [1, 1, 5]
    assert stats.Dice3d(mask, mask) == pytest.approx(1.0)


@pytest.mark.task("S2.12", points=1)
def test_dice_counts_labels_one_and_two_as_one_hippocampus(code):
    stats = code.import_module("utils.volume_stats")
    # prediction says anterior where the truth says posterior: still the same hippocampus
    assert stats.Dice3d(volume(1, 2, 0, 0), volume(2, 0, 0, 0)) == pytest.approx(2 / 3)


@pytest.mark.task("S2.12", points=1)
def test_dice_of_volumes_of_different_shapes_raises(code):
    stats = code.import_module("utils.volume_stats")
    expect_error(stats.Dice3d, np.zeros((2, 3, 4)), np.zeros((2, 3, 5)),
                 what="volumes of shapes (2, 3, 4) and (2, 3, 5)")


@pytest.mark.task("S2.13", points=1)
def test_jaccard_of_the_dice_example_is_one_half(code):
    stats = code.import_module("utils.volume_stats")
    assert stats.Jaccard3d(volume(1, 2, 0, 0), volume(2, 0, 0, 0)) == pytest.approx(0.5)


@pytest.mark.task("S2.13", points=1)
def test_jaccard_of_a_mask_with_itself_is_one_not_a_distance(code):
    stats = code.import_module("utils.volume_stats")
    mask = volume(0, 1, 1, 2)
    assert stats.Jaccard3d(mask, mask) == pytest.approx(1.0)

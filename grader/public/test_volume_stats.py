"""Public tests of Dice3d (TASK S2.12) and Jaccard3d (TASK S2.13), utils/volume_stats.py.

The course starter gives Dice3d finished (not a TASK): its tests grade the kit's layout only.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.runtime.checks import done, expect_error


def volume(*values: int) -> np.ndarray:
    """A [1, 1, N] label volume holding ``values``."""
    return np.array(values, dtype=np.uint8).reshape(1, 1, -1)


@pytest.mark.layout("kit")
@pytest.mark.task("S2.12", points=1)
def test_dice_of_a_mask_with_itself_is_one(code):
    stats = code.import_module("utils.volume_stats")
    mask = volume(0, 1, 2, 2, 0)  # [1, 1, 5]
    assert stats.Dice3d(mask, mask) == pytest.approx(1.0)


@pytest.mark.layout("kit")
@pytest.mark.task("S2.12", points=1)
def test_dice_counts_labels_one_and_two_as_one_hippocampus(code):
    stats = code.import_module("utils.volume_stats")
    # prediction says anterior where the truth says posterior: still the same hippocampus
    assert stats.Dice3d(volume(1, 2, 0, 0), volume(2, 0, 0, 0)) == pytest.approx(2 / 3)


@pytest.mark.layout("kit")
@pytest.mark.task("S2.12", points=1)
def test_dice_of_volumes_of_different_shapes_raises(code):
    stats = code.import_module("utils.volume_stats")
    expect_error(stats.Dice3d, np.zeros((2, 3, 4)), np.zeros((2, 3, 5)),
                 what="volumes of shapes (2, 3, 4) and (2, 3, 5)")


@pytest.mark.task("S2.13", points=1)
def test_jaccard_of_three_foreground_voxels_sharing_two_is_two_thirds(code):
    stats = code.import_module("utils.volume_stats")
    # foregrounds {0, 1, 2} and {0, 2}: 2 shared of 3 in the union; the distance would be 1/3
    jaccard = done(stats.Jaccard3d(volume(1, 2, 1, 0), volume(2, 0, 1, 0)), "Jaccard3d(a, b)")
    assert float(jaccard) == pytest.approx(2 / 3), (
        f"Jaccard3d of masks with foregrounds {{0, 1, 2}} and {{0, 2}} returned {jaccard}, "
        "expected |A n B| / |A u B| = 2/3"
        + ("; 1/3 is the Jaccard distance (1 - index), not the similarity coefficient"
           if float(jaccard) == pytest.approx(1 / 3) else ""))


@pytest.mark.task("S2.13", points=1)
def test_jaccard_of_a_mask_with_itself_is_one_not_a_distance(code):
    stats = code.import_module("utils.volume_stats")
    mask = volume(0, 1, 1, 2)
    jaccard = done(stats.Jaccard3d(mask, mask), "Jaccard3d(a, a)")
    assert float(jaccard) == pytest.approx(1.0), (
        f"Jaccard3d of a mask with itself returned {jaccard}, expected 1.0"
        + ("; 0.0 is the Jaccard distance (e.g. scipy.spatial.distance.jaccard), not the "
           "similarity coefficient the TASK asks for" if float(jaccard) == 0.0 else ""))

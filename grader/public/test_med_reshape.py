"""Public tests of med_reshape (TASK S2.04), utils/utils.py."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.task("S2.04", points=2)
def test_med_reshape_keeps_the_image_in_the_top_left_corner(code):
    utils = code.import_module("utils.utils")
    image = np.arange(1, 19, dtype=np.float32).reshape(2, 3, 3)  # [2, 3, 3], values 1..18
    reshaped = np.asarray(utils.med_reshape(image, (3, 4, 5)))
    assert reshaped.shape == (3, 4, 5)
    assert np.array_equal(reshaped[:2, :3, :3], image), (
        "the image must sit at indices [0:2, 0:3, 0:3] of the result; found "
        f"{reshaped[:2, :3, :3].tolist()}")
    assert np.count_nonzero(reshaped) == image.size, "everything outside the image must be 0"

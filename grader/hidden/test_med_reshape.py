"""Hidden tests of med_reshape (TASK S2.04), utils/utils.py."""

from __future__ import annotations

import numpy as np
import pytest

from grader.runtime.checks import check, done
from grader.runtime.fixtures import is_course


@pytest.mark.task("S2.04", points=1)
def test_med_reshape_returns_a_new_array_of_the_image_dtype(code):
    utils = code.import_module("utils.utils")
    seg = np.array([[[1, 2, 0], [2, 2, 1]]] * 2, dtype=np.uint8)  # [2, 2, 3]
    image = np.linspace(0.1, 1.0, 12, dtype=np.float32).reshape(2, 2, 3)  # [2, 2, 3]
    for original in (seg, image):
        before = original.copy()
        reshaped = done(utils.med_reshape(original, (2, 4, 4)), "med_reshape(image, shape)")
        # The course's own first line, np.zeros(new_shape), gives float64: only the kit's
        # TASK text asks to keep the dtype.
        check(isinstance(reshaped, np.ndarray)
              and (is_course(code) or reshaped.dtype == original.dtype),
              "med_reshape must return an array of the input's dtype (uint8 labels stay "
              "uint8, float32 images stay float32)")
        check(np.array_equal(original, before) and not np.shares_memory(reshaped, original),
              "med_reshape must write into a new array and leave its input unchanged")
        check(reshaped.shape == (2, 4, 4) and np.array_equal(reshaped[:, :2, :3], original),
              "med_reshape must keep the image in the top-left corner")

"""Per-slice normalisation: every axis-0 slice rescaled by its own minimum and maximum."""

TASK = "S2.03"
FILE = "utils/utils.py"
OLD = "    return (image - low) / (high - low)\n"
# The constant-volume check above stays; a constant slice is left at 0 instead of dividing
# by zero, as careful students do.
NEW = ("    slice_low = image.min(axis=(1, 2), keepdims=True)\n"
       "    slice_range = image.max(axis=(1, 2), keepdims=True) - slice_low\n"
       "    return (image - slice_low) / np.where(slice_range > 0, slice_range, 1.0)\n")

"""Labels normalised like images: seg cast to float and divided by its maximum."""

TASK = "S2.05"
FILE = "data_prep/HippocampusDatasetLoader.py"
OLD = "    seg = seg.astype(np.uint8)\n"
# Values {0, 1, 2} become {0.0, 0.5, 1.0}: no longer class indices for the cross-entropy.
NEW = "    seg = seg.astype(np.float32) / max(float(seg.max()), 1.0)\n"

"""Dice on unbinarised labels: the intersection counts only voxels whose labels are equal."""

TASK = "S2.12"
FILE = "utils/volume_stats.py"
OLD = "    return 2.0 * np.count_nonzero(mask_a & mask_b) / total\n"
# Anterior (1) against posterior (2) no longer overlaps, although both are hippocampus.
NEW = "    return 2.0 * np.count_nonzero(mask_a & (np.asarray(a) == np.asarray(b))) / total\n"

"""Jaccard distance (1 - index) returned where the Jaccard index is asked for."""

TASK = "S2.13"
FILE = "utils/volume_stats.py"
OLD = "    return np.count_nonzero(mask_a & mask_b) / union\n"
NEW = "    return 1.0 - np.count_nonzero(mask_a & mask_b) / union\n"

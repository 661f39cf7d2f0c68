"""Dice binarises the caller's label maps in place: its value is right, the labels are lost."""

TASK = "S2.12"
FILE = "utils/volume_stats.py"
OLD = "    mask_a, mask_b = np.asarray(a) != 0, np.asarray(b) != 0\n    total = "
# The caller's arrays now hold {0, 1}: anterior and posterior can no longer be told apart.
NEW = ("    a[a != 0] = 1\n    b[b != 0] = 1\n"
       "    mask_a, mask_b = np.asarray(a) != 0, np.asarray(b) != 0\n    total = ")

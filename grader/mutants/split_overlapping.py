"""Overlapping split: the validation volumes are drawn from the training volumes."""

TASK = "S2.02"
FILE = "run_ml_pipeline.py"
OLD = "    parts = np.split(order, [n_train, n_train + n_val])\n"
# train takes the first 80 % of the permutation, val its last 20 % of those, test the rest:
# every index is used and the sizes look right, but val is a subset of train.
NEW = ("    parts = [order[:n_train + n_val], order[n_train:n_train + n_val],\n"
       "             order[n_train + n_val:]]\n")

"""No crop-back: the unpadded inference returns the padded [X, patch, patch] prediction."""

TASK = "S2.11"
FILE = "inference/UNetInferenceAgent.py"
OLD = "        return self.single_volume_inference(padded)[:, :y_size, :z_size]\n"
NEW = "        return self.single_volume_inference(padded)\n"

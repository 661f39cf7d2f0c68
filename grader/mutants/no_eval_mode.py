"""No model.eval() at inference: the model predicts in whatever mode it was left, e.g. training."""

TASK = "S2.09"
FILE = "inference/UNetInferenceAgent.py"
OLD = "        self.model.eval()\n"
NEW = ""

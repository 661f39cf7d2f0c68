"""Loss on the softmax output: cross-entropy of probabilities instead of raw logits."""

TASK = "S2.07"
FILE = "experiments/UNetExperiment.py"
OLD = "            loss = self.loss_function(prediction, target)\n"
# nn.CrossEntropyLoss applies log-softmax itself, so this is a softmax applied twice.
NEW = "            loss = self.loss_function(torch.softmax(prediction, dim=1), target)\n"

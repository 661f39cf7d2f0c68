"""The training, validation and test loop."""

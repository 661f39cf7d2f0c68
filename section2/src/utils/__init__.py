"""Array helpers, TensorBoard panels and overlap metrics."""

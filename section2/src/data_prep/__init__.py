"""Loading the NIfTI volumes and serving their axis-0 slices."""

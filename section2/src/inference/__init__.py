"""Whole-volume prediction with a trained U-Net."""

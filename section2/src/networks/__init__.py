"""The recursive 2D U-Net."""

"""Padding in the wrong corner: med_reshape writes the image into the bottom-right corner."""

TASK = "S2.04"
FILE = "utils/utils.py"
OLD = "    reshaped[tuple(slice(0, size) for size in image.shape)] = image\n"
NEW = ("    reshaped[tuple(slice(new - size, new)\n"
       "                   for size, new in zip(image.shape, new_shape))] = image\n")

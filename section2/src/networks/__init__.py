# Generated from solution/section2/src/networks/__init__.py by tools/make_skeleton.py; edit that file, then run the tool.
"""The recursive 2D U-Net."""

# Generated from solution/section2/src/inference/__init__.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Whole-volume prediction with a trained U-Net."""

# Generated from solution/section2/src/data_prep/__init__.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Loading the NIfTI volumes and serving their axis-0 slices."""

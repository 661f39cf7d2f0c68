# Generated from solution/section2/src/experiments/__init__.py by tools/make_skeleton.py; edit that file, then run the tool.
"""The training, validation and test loop."""

# Generated from solution/section2/src/utils/__init__.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Array helpers, TensorBoard panels and overlap metrics."""

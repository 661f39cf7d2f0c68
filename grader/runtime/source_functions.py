"""The functions a Python module defines, read from its source without running it.

The one walk over a syntax tree's functions: the layout check (``grader/runtime/layout.py``),
the kit's signature check (``grader/kit/test_kit.py``) and the skeleton generator
(``tools/make_skeleton.py``) all use it. It imports only the standard library.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def source_functions(tree: ast.AST) -> Iterator[tuple[str, FunctionNode]]:
    """(qualified name, node) of every function in ``tree``, outer before inner.

    A method is named ``Class.method``, a nested function ``outer.inner``; a function inside
    an ``if``, ``try`` or ``with`` block keeps the name of the scope around that block.
    """
    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, FunctionNode]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child
                yield from visit(child, name + ".")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")

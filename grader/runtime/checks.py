"""Assertion helpers for grading tests.

Hidden tests report only the property that failed (``check``), never an expected value. A
test that expects an exception uses ``expect_error``, so that a skeleton stub's
``NotImplementedError`` never counts as the right error.
"""

from __future__ import annotations

from collections.abc import Callable


def check(condition: object, violated: str) -> None:
    """Fail with ``violated`` (the property, in words) unless ``condition`` holds."""
    __tracebackhide__ = True
    if not condition:
        raise AssertionError(violated)


def expect_error(function: Callable, *args, what: str, **kwargs) -> Exception:
    """Call ``function`` and return the exception it raises; fail if it raises none.

    Args:
        function: the code under test.
        what: the situation, for the failure message ("volumes of different shapes").

    Raises:
        NotImplementedError: re-raised when it is a stub (the kit's "TASK ..." message, or
            the course starter's bare one): the TASK is not done.
        AssertionError: when nothing is raised.
    """
    __tracebackhide__ = True
    try:
        function(*args, **kwargs)
    except NotImplementedError as err:
        if str(err).startswith("TASK ") or not str(err).strip():  # a kit or a course stub
            raise
        return err
    except Exception as err:  # the course asks for "an exception"
        return err
    raise AssertionError(f"{getattr(function, '__name__', 'the function')} raised no "
                         f"exception for {what}")


def done(value, what: str):
    """``value``, or fail saying the TASK is not done when it is None.

    The course starter's stubs end in ``return`` (None) or leave the TASK's variable unset;
    a test first checks that the student's function returned something at all.

    Args:
        value: what the student's function returned.
        what: the call in the student's terms, e.g. "Jaccard3d(a, b)".
    """
    __tracebackhide__ = True
    if value is None:
        raise AssertionError(f"TASK not done: {what} returned None; write the TASK's code "
                             "and return its result")
    return value

"""Run one grading test in a forked child process, with a time limit and a memory limit.

A submission's code may hang, exit, crash or fail to import. Each test body runs in its own
child (``os.fork``), so whatever the code does costs only that test: an infinite loop hits the
time limit, ``sys.exit`` and ``os._exit`` end only the child, a segfault kills only the child,
and an allocation beyond the memory limit fails inside the child. The parent never imports
submission code and never runs a torch computation, so every child starts clean (OpenMP thread
pools do not survive a fork).

POSIX only (Linux, macOS): the grader's machines and Gradescope's containers are Linux.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sysconfig
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# A failing test's output is cut to this many characters: enough for the reason, not a dump.
MAX_OUTPUT_CHARS = 2000
CHILD_THREADS = 1  # torch threads per child: grading runs many children side by side
# Frames under these folders are the grader's or a library's, never the code under test.
LIBRARY_PREFIXES = tuple({str(Path(__file__).resolve().parent), sysconfig.get_paths()["stdlib"],
                          sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


END_OF_MESSAGE = b"\n"  # ends the child's JSON outcome (JSON text holds no raw newline)


@dataclass(frozen=True)
class Outcome:
    """What happened in the child: "passed", "failed" or "skipped"; ``output`` says why."""

    status: str
    output: str = ""


def describe(err: BaseException, hide_details: bool) -> str:
    """A short text for a failed test: the reason, and where in the code under test it failed.

    Args:
        err: the exception the test body raised.
        hide_details: keep only the first line of an assertion message (hidden tests must
            name the violated property, never the expected value that pytest would print).
    """
    if isinstance(err, SystemExit):
        return f"the code called sys.exit({err.code!r}); code under test must not exit"
    if isinstance(err, NotImplementedError) and str(err).startswith("TASK "):
        task, _, summary = str(err).partition(": ")
        return f"{task} is not done yet ({summary}); complete {task} first"
    if isinstance(err, NotImplementedError) and not str(err).strip():
        # The course starter's stubs raise a bare NotImplementedError: name the function.
        frames = traceback.extract_tb(err.__traceback__)
        where = f"{frames[-1].name} in {Path(frames[-1].filename).name}" if frames else "it"
        return f"TASK not done: {where} still raises NotImplementedError; write its code"
    if isinstance(err, AssertionError):
        text = str(err).strip() or "assertion failed"
        return text.splitlines()[0] if hide_details else text
    # Point at the deepest frame in the code under test: not the grader, not a library.
    frames = [frame for frame in traceback.extract_tb(err.__traceback__)
              if not frame.filename.startswith(LIBRARY_PREFIXES)]
    last = frames[-1] if frames else None
    where = f" (at {last.filename}:{last.lineno}, in {last.name})" if last else ""
    # The course starter's stubs leave the TASK's variables unset (`data = <YOUR CODE HERE>`).
    hint = "; is the TASK there done?" if isinstance(err, NameError) and last else ""
    return f"{type(err).__name__}: {err}{where}{hint}"


def _limit_memory(megabytes: int) -> None:
    """Cap the child's address space at its current size plus ``megabytes``."""
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = current + megabytes * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(body: Callable[[], None], write_fd: int, memory_mb: int, hide_details: bool) -> None:
    """Run ``body`` and report the outcome through ``write_fd``; never returns."""
    status = 1
    try:
        try:
            os.setpgid(0, 0)  # its own process group: a timeout kills what it started too
            if os.path.exists("/proc/self/statm"):
                _limit_memory(memory_mb)
            import torch  # imported by the parent already; this only sets the thread count

            torch.set_num_threads(CHILD_THREADS)
            body()
            outcome = Outcome("passed")
        except pytest.skip.Exception as skip:
            outcome = Outcome("skipped", str(skip.msg))
        except MemoryError:
            outcome = Outcome("failed", f"ran out of memory: the limit is {memory_mb} MB")
        except BaseException as err:  # noqa: BLE001 - everything the submission raises is reported
            outcome = Outcome("failed", describe(err, hide_details)[:MAX_OUTPUT_CHARS])
        os.write(write_fd, json.dumps(outcome.__dict__).encode() + END_OF_MESSAGE)
        status = 0
    finally:
        os._exit(status)


def _kill(pid: int) -> None:
    """Kill the process group ``pid`` leads (the child and what it started), if any is left."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_isolated(body: Callable[[], None], timeout_s: float, memory_mb: int,
                 hide_details: bool = False) -> Outcome:
    """Run ``body()`` in a forked child and return its outcome.

    Args:
        body: the test body, with its fixtures already bound.
        timeout_s: wall-clock limit in seconds; the child's process group is killed after it.
        memory_mb: memory the child may allocate beyond what it inherits, in MB.
        hide_details: see ``describe``.

    Returns:
        The child's Outcome, or a failed Outcome saying it timed out, exited, or crashed.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        _child(body, write_fd, memory_mb, hide_details)
    os.close(write_fd)
    chunks, deadline, timed_out = [], time.monotonic() + timeout_s, False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        chunks.append(chunk)
        # Done when the message is complete or the pipe closes; a process the test code
        # started may keep the pipe open long after the child has answered.
        if not chunk or chunk.endswith(END_OF_MESSAGE):
            break
    os.close(read_fd)
    if timed_out:
        _kill(pid)
    _, wait_status = os.waitpid(pid, 0)
    _kill(pid)  # whatever the test code left running in the child's process group
    if timed_out:
        return Outcome("failed", f"timed out after {timeout_s:g} s (an infinite loop, or far "
                                 "too slow); the test was stopped")
    message = b"".join(chunks)
    if message.endswith(END_OF_MESSAGE):
        return Outcome(**json.loads(message))
    if os.WIFSIGNALED(wait_status):
        name = signal.Signals(os.WTERMSIG(wait_status)).name
        return Outcome("failed", f"the process running the code crashed ({name})")
    return Outcome("failed", f"the process running the code ended early with exit status "
                             f"{os.WEXITSTATUS(wait_status)} (os._exit or similar) before the "
                             "test finished")

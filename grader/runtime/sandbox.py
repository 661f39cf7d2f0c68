"""Run one grading test in a forked child process, with a time limit and a memory limit.

A submission's code may hang, exit, crash or fail to import. Each test body runs in its own
child (``os.fork``), so whatever the code does costs only that test: an infinite loop hits the
time limit, ``sys.exit`` and ``os._exit`` end only the child, a segfault kills only the child,
and an allocation beyond the memory limit fails inside the child. The parent never imports
submission code and never runs a torch computation, so every child starts clean (OpenMP thread
pools do not survive a fork).

Given a ``StudentUser`` (and run as root), the child switches to that user before the test
body runs (``grader/runtime/containment.py``). After every test, each process the child started is
stopped, also one that left its session with setsid(), and the files that user left in the
shared temporary folders are removed. A function found stuck at a timeout is noted
(``grader/runtime/hangs.py``) so that later tests do not wait on it again.

POSIX only (Linux, macOS): the grader's machines and Gradescope's containers are Linux.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import select
import signal
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from grader.runtime import containment, hangs
from grader.runtime.containment import StudentUser
from grader.runtime.hangs import Hang, HungBefore

# A failing test's output is cut to this many characters: enough for the reason, not a dump.
MAX_OUTPUT_CHARS = 2000
# What the student's own code chose to say (an exception's text) is cut shorter and to one
# line: a public test's message must not become a channel for text the code read elsewhere.
MAX_STUDENT_TEXT_CHARS = 300
DUMP_WAIT_S = 2.0  # how long a timed-out child gets to write its stack
DUMP_QUIET_S = 0.2  # the dump is complete when the child has been silent this long
CHILD_THREADS = 1  # torch threads per child: grading runs many children side by side
# Frames under these folders are the grader's or a library's, never the code under test.
LIBRARY_PREFIXES = tuple({str(Path(__file__).resolve().parents[1]), sysconfig.get_paths()["stdlib"],
                          sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


END_OF_MESSAGE = b"\n"  # ends the child's JSON outcome (JSON text holds no raw newline)


@dataclass(frozen=True)
class Outcome:
    """What happened in the child: "passed", "failed" or "skipped"; ``output`` says why.

    ``stuck`` is, after a timeout, (file, function, shown name) of the function of the code
    under test that was running, when one was found.
    """

    status: str
    output: str = ""
    stuck: tuple[str, str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Confinement:
    """How a child is confined beyond its time and memory limits.

    Attributes:
        user: run the test body as this user (needs root), or None to stay as is.
        writable: folders the body may write (its tmp_path), given to ``user``.
        readable: folders the body reads (fixture data), opened to every user.
        code_dirs: the folders of the code under test, to name a function that hung.
        hangs: functions that hung in earlier tests; they fail at once here.
    """

    user: StudentUser | None = None
    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()
    code_dirs: tuple[Path, ...] = ()
    hangs: tuple[Hang, ...] = ()


def student_text(text: str) -> str:
    """The first line of ``text``, at most MAX_STUDENT_TEXT_CHARS characters."""
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= MAX_STUDENT_TEXT_CHARS else line[:MAX_STUDENT_TEXT_CHARS] + " ..."


def hung_before(err: BaseException) -> HungBefore | None:
    """The HungBefore that ``err`` is, or was raised from, if any."""
    while err is not None:
        if isinstance(err, HungBefore):
            return err
        err = err.__cause__ or err.__context__
    return None


def describe(err: BaseException, hide_details: bool) -> str:
    """A short text for a failed test: the reason, and where in the code under test it failed.

    Args:
        err: the exception the test body raised.
        hide_details: keep only the first line of an assertion message (hidden tests must
            name the violated property, never the expected value that pytest would print).
    """
    if hung_before(err) is not None:
        return str(hung_before(err))
    if isinstance(err, SystemExit):
        code = student_text(repr(err.code))
        return f"the code called sys.exit({code}); code under test must not exit"
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
    return f"{type(err).__name__}: {student_text(str(err))}{where}{hint}"


def _limit_memory(megabytes: int) -> None:
    """Cap the child's address space at its current size plus ``megabytes``."""
    limit = psutil.Process().memory_info().vms + megabytes * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(body: Callable[[], None], write_fd: int, dump_fd: int, memory_mb: int,
           hide_details: bool, confinement: Confinement) -> None:
    """Run ``body`` and report the outcome through ``write_fd``; never returns."""
    status = 1
    try:
        try:
            os.setpgid(0, 0)  # its own process group: a timeout kills what it started too
            # The parent reports a crash by its signal ("crashed (SIGSEGV)"); the traceback
            # dump that pytest's faulthandler would print reads as a crash of the grader.
            faulthandler.disable()
            # On SIGUSR1 (sent at a timeout) write the Python stack, even from a C call.
            faulthandler.register(signal.SIGUSR1, file=dump_fd, all_threads=True)
            if sys.platform == "linux":  # elsewhere RLIMIT_AS is not enforced, or not at all
                _limit_memory(memory_mb)
            hangs.install(list(confinement.hangs))
            if confinement.user is not None:
                containment.become(confinement.user, confinement.writable,
                                   confinement.readable)
            import torch  # imported by the parent already; this only sets the thread count

            torch.set_num_threads(CHILD_THREADS)
            body()
            outcome = Outcome("passed")
        except pytest.skip.Exception as skip:
            outcome = Outcome("skipped", student_text(str(skip.msg)))
        except MemoryError:
            outcome = Outcome("failed", f"ran out of memory: the limit is {memory_mb} MB")
        except BaseException as err:  # everything the submission raises is reported
            outcome = Outcome("failed", describe(err, hide_details)[:MAX_OUTPUT_CHARS])
        message = {"status": outcome.status, "output": outcome.output}
        os.write(write_fd, json.dumps(message).encode() + END_OF_MESSAGE)
        status = 0
    finally:
        os._exit(status)


def _kill(pid: int) -> None:
    """Kill the process group ``pid`` leads (the child and what it started), if any is left."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_dump(pid: int, dump_fd: int) -> str:
    """Ask the stuck child ``pid`` for its stack (SIGUSR1) and return what it wrote."""
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return ""
    chunks, deadline = [], time.monotonic() + DUMP_WAIT_S
    while (remaining := deadline - time.monotonic()) > 0:
        wait = DUMP_QUIET_S if chunks else remaining
        ready, _, _ = select.select([dump_fd], [], [], min(wait, remaining))
        if not ready:
            if chunks:
                break
            continue
        chunk = os.read(dump_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _clean_up(pid: int, known_children: set[int], confinement: Confinement) -> None:
    """Stop everything the child started and remove what its user left behind."""
    _kill(pid)  # whatever the test code left running in the child's process group
    containment.kill_new_children(known_children)  # also session leaders (setsid)
    if confinement.user is not None:
        containment.take_back(confinement.writable)
        containment.remove_files_of(confinement.user)


_SUBREAPER = {"on": False}


def run_isolated(body: Callable[[], None], timeout_s: float, memory_mb: int,
                 hide_details: bool = False,
                 confinement: Confinement = Confinement()) -> Outcome:
    """Run ``body()`` in a forked child and return its outcome.

    Args:
        body: the test body, with its fixtures already bound.
        timeout_s: wall-clock limit in seconds; the child's process group is killed after it.
        memory_mb: memory the child may allocate beyond what it inherits, in MB.
        hide_details: see ``describe``.
        confinement: the user, folders and known hangs of this test; see ``Confinement``.

    Returns:
        The child's Outcome, or a failed Outcome saying it timed out (with the stuck function
        in ``stuck`` when one of ``confinement.code_dirs`` was running), exited, or crashed.
        Every process the child started is gone when it returns.
    """
    if not _SUBREAPER["on"]:
        _SUBREAPER["on"] = containment.become_subreaper()
    known_children = {child.pid for child in psutil.Process().children()}
    read_fd, write_fd = os.pipe()
    dump_read_fd, dump_write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        os.close(dump_read_fd)
        _child(body, write_fd, dump_write_fd, memory_mb, hide_details, confinement)
    os.close(write_fd)
    os.close(dump_write_fd)
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
    stuck = None
    if timed_out:
        stuck = hangs.stuck_frame(_read_dump(pid, dump_read_fd), confinement.code_dirs)
        _kill(pid)
    os.close(dump_read_fd)
    _, wait_status = os.waitpid(pid, 0)
    _clean_up(pid, known_children, confinement)
    if timed_out:
        where = f" in {stuck[2]}" if stuck else ""
        return Outcome("failed", f"timed out after {timeout_s:g} s{where} (an infinite loop, or "
                                 "far too slow); the test was stopped", stuck)
    message = b"".join(chunks)
    if message.endswith(END_OF_MESSAGE):
        return Outcome(**json.loads(message))
    if os.WIFSIGNALED(wait_status):
        name = signal.Signals(os.WTERMSIG(wait_status)).name
        return Outcome("failed", f"the process running the code crashed ({name})")
    return Outcome("failed", f"the process running the code ended early with exit status "
                             f"{os.WEXITSTATUS(wait_status)} (os._exit or similar) before the "
                             "test finished")

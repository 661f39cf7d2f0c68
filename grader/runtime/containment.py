"""What keeps a submission's code inside its test: an unprivileged user, every process it
started stopped, its temporary files removed, and a memory limit below the container's.

Gradescope's best practices ask that student code run as an unprivileged user that cannot
read the autograder's source or write its results
(https://gradescope-autograders.readthedocs.io/en/latest/best_practices/). ``run_autograder``
sets the file permissions; this module switches a test's child process to that user and
cleans up after it. Processes are found through the grader being a "child subreaper"
(``prctl(PR_SET_CHILD_SUBREAPER)``, Linux): a process that leaves its session with
``setsid()`` and whose parent exits is handed to the grader instead of to init, so it is still
found, and stopped, among the grader's own children.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import resource
import shutil
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
# World-writable folders where student code can leave files for a later test to read.
SHARED_TEMP_DIRS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
# Processes (threads count too) the student user may run at once: a fork bomb stops here.
# DataLoader workers and torch's threads stay far below it.
MAX_STUDENT_PROCESSES = 256
KILL_ROUNDS = 5  # a process that forks while we kill is caught in a later round
# cgroup v2 and v1 files holding the container's memory limit, in bytes.
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_V2_LIMIT, CGROUP_V1_LIMIT = "memory.max", "memory.limit_in_bytes"
UNLIMITED_BYTES = 2**60  # cgroup v1 writes a huge number for "no limit"
# Kept free below the container's limit for the grader itself and the kernel's pages.
MEMORY_HEADROOM_MB = 96
MIN_TEST_MEMORY_MB = 64  # below this, no honest test can run; the limit then says so


@dataclass(frozen=True)
class StudentUser:
    """The unprivileged user that student code runs as (a name, or a bare uid)."""

    name: str
    uid: int
    gid: int


def student_user(spec: str) -> StudentUser:
    """The user named ``spec`` (from /etc/passwd), or the bare numeric uid ``spec``.

    A bare uid needs no account: its processes and files belong to nobody else, so the grader
    can find and remove them. Its group id is the same number.

    Raises:
        ValueError: when ``spec`` names no user and is no number, or it is root.
    """
    try:
        entry = pwd.getpwnam(spec)
        user = StudentUser(spec, entry.pw_uid, entry.pw_gid)
    except KeyError:
        if not spec.isdigit():
            raise ValueError(f"--student-user={spec}: no such user; create it (useradd "
                             f"--system {spec}) or give a numeric uid") from None
        user = StudentUser(f"uid {spec}", int(spec), int(spec))
    if user.uid == 0:
        raise ValueError(f"--student-user={spec} is root; student code must run unprivileged")
    return user


def _add_mode(path: Path, bits: int) -> None:
    """Add permission ``bits`` to ``path`` where missing; a read-only file system is left as
    it is (the test then fails on the file it cannot read, naming it)."""
    mode = path.lstat().st_mode
    if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & bits != bits:
        try:
            path.chmod(stat.S_IMODE(mode) | bits)
        except OSError as err:
            logger.warning("could not open %s to the student user: %s", path, err)


def open_for_reading(folder: Path) -> None:
    """Let every user read ``folder`` (a fixture's data, the submission's copy): o+rX."""
    for path in (folder, *folder.rglob("*")):
        _add_mode(path, stat.S_IROTH | stat.S_IXOTH if path.is_dir() else stat.S_IROTH)
    for parent in folder.parents:
        _add_mode(parent, stat.S_IXOTH)


def become(user: StudentUser, writable: tuple[Path, ...], readable: tuple[Path, ...]) -> None:
    """Switch this (child) process to ``user``, after giving it the folders in ``writable``
    and letting it read those in ``readable``.

    Every folder above one of them is made traversable (o+x), never listable or writable.
    Call it as root, in the forked child, just before the student's code runs.
    """
    for folder in readable:
        open_for_reading(folder)
    for folder in writable:
        for path in (folder, *folder.rglob("*")):
            os.chown(path, user.uid, user.gid, follow_symlinks=False)
        for parent in folder.parents:
            _add_mode(parent, stat.S_IXOTH)
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_STUDENT_PROCESSES, MAX_STUDENT_PROCESSES))
    os.environ["HOME"] = str(writable[0]) if writable else "/nonexistent"


def take_back(folders: tuple[Path, ...]) -> None:
    """Give the folders a test wrote in back to root and close them to everyone else, so
    that no later test's code can read what this test's code left there."""
    for folder in folders:
        if not folder.exists():
            continue
        for path in (folder, *folder.rglob("*")):
            os.chown(path, 0, 0, follow_symlinks=False)
        folder.chmod(stat.S_IRWXU)


def remove_files_of(user: StudentUser) -> list[Path]:
    """Remove what ``user`` left in the shared temporary folders; return what was removed."""
    removed = []
    for folder in SHARED_TEMP_DIRS:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            try:
                if path.lstat().st_uid != user.uid:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
            except OSError as err:  # it vanished meanwhile, or cannot be removed
                logger.warning("could not remove %s left by student code: %s", path, err)
    return removed


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def kill_new_children(known: set[int]) -> list[int]:
    """Kill every child of this process (and their descendants) not in ``known``, and reap
    them; return their pids. With ``become_subreaper`` on, this includes every process a test
    started, also those that called setsid() and lost their parent."""
    killed: list[int] = []
    for _ in range(KILL_ROUNDS):
        found = [child for child in psutil.Process().children(recursive=True)
                 if child.pid not in known]
        if not found:
            break
        for child in found:
            try:
                child.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                continue
            killed.append(child.pid)
        psutil.wait_procs(found, timeout=1)
    for pid in killed:  # direct children are zombies until waited for
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    return killed


def container_memory_limit_mb(proc_cgroup: Path = Path("/proc/self/cgroup"),
                              cgroup_root: Path = CGROUP_ROOT) -> int | None:
    """The memory limit of this process's cgroup (v2 memory.max or v1 limit_in_bytes) in MB,
    or None when there is none or it cannot be read.

    Args:
        proc_cgroup: the process's cgroup membership file (``/proc/self/cgroup``).
        cgroup_root: where the cgroup file systems are mounted.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":
            candidates = [cgroup_root / relative / CGROUP_V2_LIMIT, cgroup_root / CGROUP_V2_LIMIT]
        elif "memory" in controllers.split(","):
            candidates = [cgroup_root / "memory" / relative / CGROUP_V1_LIMIT,
                          cgroup_root / "memory" / CGROUP_V1_LIMIT]
        else:
            continue
        for candidate in candidates:
            try:
                text = candidate.read_text().strip()
            except OSError:
                continue
            if text != "max" and int(text) < UNLIMITED_BYTES:
                return int(text) // 2**20
    return None


def memory_per_test_mb(requested_mb: int, proc_cgroup: Path = Path("/proc/self/cgroup"),
                       cgroup_root: Path = CGROUP_ROOT) -> tuple[int, str]:
    """The memory one test may allocate: ``requested_mb``, or less where the container's
    limit minus what the grader already holds is lower. Returns (MB, why).

    Inside a 768 MB Gradescope container the test must hit this limit, and report "ran out of
    memory", before the container's own limit kills it with SIGKILL.
    """
    limit = container_memory_limit_mb(proc_cgroup, cgroup_root)
    if limit is None:
        return requested_mb, f"{requested_mb} MB (no container limit found)"
    held = psutil.Process().memory_info().rss // 2**20
    available = max(MIN_TEST_MEMORY_MB, limit - held - MEMORY_HEADROOM_MB)
    if available >= requested_mb:
        return requested_mb, f"{requested_mb} MB (container limit {limit} MB)"
    return available, (f"{available} MB: the container's {limit} MB less the grader's "
                       f"{held} MB and {MEMORY_HEADROOM_MB} MB headroom")

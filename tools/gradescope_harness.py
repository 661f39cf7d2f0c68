"""Grade one upload as Gradescope's harness would, on this machine.

    sudo python tools/gradescope_harness.py UPLOAD [--zip dist/autograder.zip] [--root DIR]

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/) unpacks
``autograder.zip`` into ``/autograder/source``, puts the upload in ``/autograder/submission``,
runs ``run_autograder`` as root under the assignment's memory limit, CPU share and timeout, and
reads ``/autograder/results/results.json``. This script builds that layout under ``--root``
(a temporary folder by default), uses this Python environment as ``/autograder/venv``, runs
``run_autograder`` in a cgroup with ``--memory-mb`` and ``--cpus`` where cgroups can be
written (v2, else v1), stops it after ``--timeout`` as Gradescope does, and prints a JSON
summary: score, seconds, whether it timed out, which limits were applied and which were not
(and why), and whether any process of the student user outlived the run.

UPLOAD is a folder or a .zip (unpacked as Gradescope does). Run as root to get the student
user and the cgroup; without root both are skipped and the summary says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
GRADESCOPE_TIMEOUT_S = 600  # Gradescope's default per-submission timeout
GRADESCOPE_MEMORY_MB = 768  # Gradescope's default container memory
GRADESCOPE_CPUS = 0.5  # Gradescope's default CPU share
CPU_PERIOD_US = 100_000  # cgroup CPU quota period
CGROUP = Path("/sys/fs/cgroup")
STUDENT_UID = "64123"  # run_autograder's student user when no `student` account exists


def make_cgroup(name: str, memory_mb: int, cpus: float | None) -> tuple[list[Path], str]:
    """Create cgroup(s) with the limits; return (cgroup.procs files to join, what was done)."""
    if os.geteuid() != 0:
        return [], "no cgroup: not root"
    if (CGROUP / "cgroup.controllers").is_file():  # v2
        group = CGROUP / name
        try:
            group.mkdir()
            (group / "memory.max").write_text(str(memory_mb * 2**20))
            (group / "memory.swap.max").write_text("0")
            if cpus:
                (group / "cpu.max").write_text(f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
        except OSError as err:
            return [], f"no cgroup: cgroup v2 not writable here ({err})"
        return [group / "cgroup.procs"], f"cgroup v2: memory {memory_mb} MB, cpus {cpus}"
    joined, done = [], []
    try:
        memory = CGROUP / "memory" / name
        memory.mkdir()
        (memory / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
        joined.append(memory / "cgroup.procs")
        done.append(f"memory {memory_mb} MB")
        if cpus:
            cpu = CGROUP / "cpu" / name
            cpu.mkdir()
            (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * CPU_PERIOD_US)))
            joined.append(cpu / "cgroup.procs")
            done.append(f"cpus {cpus}")
    except OSError as err:
        return joined, f"cgroup v1 partly: {', '.join(done) or 'nothing'} ({err})"
    return joined, f"cgroup v1: {', '.join(done)}"


def remove_cgroup(procs_files: list[Path]) -> None:
    for procs in procs_files:
        try:
            procs.parent.rmdir()
        except OSError:
            pass  # a process is still inside; the kernel frees it with the last one


def lay_out(root: Path, autograder_zip: Path, upload: Path) -> None:
    """/autograder/{source,submission,results,venv} under ``root``."""
    with zipfile.ZipFile(autograder_zip) as archive:
        for info in archive.infolist():
            archive.extract(info, root / "source")
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (root / "source" / info.filename).chmod(mode)
    if upload.suffix == ".zip":
        with zipfile.ZipFile(upload) as archive:
            archive.extractall(root / "submission")
    else:
        shutil.copytree(upload, root / "submission")
    (root / "results").mkdir()
    (root / "venv").symlink_to(Path(sys.prefix))


def run(root: Path, timeout_s: float, memory_mb: int, cpus: float | None) -> dict:
    """Run run_autograder under the limits; return the summary."""
    student = "student" if _has_user("student") else STUDENT_UID
    procs, cgroup = make_cgroup(f"gradescope-harness-{os.getpid()}", memory_mb, cpus)

    def enter() -> None:  # in the child, before bash starts
        os.setsid()
        for path in procs:
            path.write_text(str(os.getpid()))

    env = {**os.environ, "AUTOGRADER": str(root), "STUDENT_USER": student}
    started = time.monotonic()
    process = subprocess.Popen(["bash", str(root / "source" / "run_autograder")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               preexec_fn=enter)
    try:
        output, _ = process.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        timed_out = True
    seconds = time.monotonic() - started
    remove_cgroup(procs)
    results_path = root / "results" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else None
    left = [process.pid for process in psutil.process_iter(["uids"])
            if process.info["uids"] and str(process.info["uids"].real) == _uid(student)]
    return {"score": None if timed_out or results is None else results.get("score"),
            "max_score": None if results is None else results.get("max_score"),
            "seconds": round(seconds, 1), "timed_out": timed_out,
            "note": ("Gradescope shows no test after a timeout" if timed_out else ""),
            "limits": {"timeout_s": timeout_s, "cgroup": cgroup,
                       "student_user": student if os.geteuid() == 0 else
                       "not switched: not root"},
            "student_processes_left": left, "results_json": results,
            "output_tail": output.decode(errors="replace")[-2000:]}


def _has_user(name: str) -> bool:
    return subprocess.run(["id", "-u", name], capture_output=True).returncode == 0


def _uid(student: str) -> str:
    if student.isdigit():
        return student
    return subprocess.run(["id", "-u", student], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the summary as JSON, returns 0 (1 when the run timed out)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upload", type=Path, help="the student's upload: a folder or a .zip")
    parser.add_argument("--zip", type=Path, default=REPO / "dist" / "autograder.zip",
                        help="the autograder (default: dist/autograder.zip; build it with "
                             "python tools/release.py)")
    parser.add_argument("--root", type=Path, default=None,
                        help="where /autograder is laid out; must not exist (default: a new "
                             "temporary folder, removed afterwards)")
    parser.add_argument("--timeout", type=float, default=GRADESCOPE_TIMEOUT_S,
                        help=f"seconds (default: {GRADESCOPE_TIMEOUT_S})")
    parser.add_argument("--memory-mb", type=int, default=GRADESCOPE_MEMORY_MB,
                        help=f"container memory (default: {GRADESCOPE_MEMORY_MB})")
    parser.add_argument("--cpus", type=float, default=GRADESCOPE_CPUS,
                        help=f"CPU share; 0 for none (default: {GRADESCOPE_CPUS})")
    args = parser.parse_args(argv)
    if not args.zip.is_file():
        parser.error(f"--zip {args.zip}: no such file; run python tools/release.py first")
    if not args.upload.exists():
        parser.error(f"{args.upload}: no such folder or zip")
    temporary = args.root is None
    root = Path(tempfile.mkdtemp(prefix="autograder-")) if temporary else args.root
    if not temporary:
        root.mkdir(parents=True)
    try:
        lay_out(root, args.zip, args.upload.resolve())
        summary = run(root, args.timeout, args.memory_mb, args.cpus or None)
        if not temporary:
            summary["kept"] = str(root)
        print(json.dumps(summary, indent=2))
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if summary["timed_out"] else 0


if __name__ == "__main__":
    sys.exit(main())

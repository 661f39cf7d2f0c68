"""No answer to a TASK ships to students: grader/kit/answers.py runs every function and class of
the student release on each TASK's check inputs and compares with the reference answers
(grader/hidden/reference.py) or with values worked out by hand.

The release's leak scan (tools/release.py) compares lines word for word; this check compares
behaviour, so a copy that is reworded or renamed is found too. The two controls show that the
search finds what it looks for: every probed TASK in the solution, and a rewritten padding
function slipped into a shipped grader module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import release

REPO = Path(__file__).resolve().parents[1]
ANSWERS = REPO / "grader" / "kit" / "answers.py"
PROBED_TASKS = {"S1.02", "S1.03", "S2.03", "S2.04", "S2.06", "S2.12", "S2.13"}
SUBPROCESS_TIMEOUT_S = 300  # imports torch and every module once; takes about 10 s
# TASK S2.04 (med_reshape) written anew: other names, no line of the solution's.
REWORDED_PADDING = '''

def corner(volume, size):
    out = np.zeros(size, volume.dtype)
    out[tuple(slice(0, n) for n in volume.shape)] = volume
    return out
'''


def answers_in(folder: Path, scratch: Path) -> list[dict]:
    """The findings of grader/kit/answers.py over ``folder``, run from ``scratch``."""
    scratch.mkdir(exist_ok=True)
    out = scratch / "answers.json"
    result = subprocess.run([sys.executable, str(ANSWERS), str(folder), str(out)], cwd=scratch,
                            check=False, capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT_S)
    assert result.returncode in (0, 1) and out.is_file(), result.stdout + result.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def student_release(tmp_path_factory) -> Path:
    """The student release's files as tools/release.py chooses them, unpacked."""
    root = tmp_path_factory.mktemp("student")
    generated = release.check_skeleton(REPO)  # the skeleton's files ship without their header
    for name, data in release.student_files(REPO, generated).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_no_function_or_class_of_the_student_release_answers_a_task(student_release, tmp_path):
    assert (student_release / "grader" / "runtime" / "fixtures.py").is_file()
    assert answers_in(student_release, tmp_path) == []


def test_the_search_finds_every_probed_task_answered_in_the_solution(tmp_path):
    solution = tmp_path / "solution"
    for section in ("section1", "section2"):
        shutil.copytree(REPO / "solution" / section, solution / section)
    found = answers_in(solution, tmp_path / "scratch")
    assert {entry["task"] for entry in found} == PROBED_TASKS
    assert {"task": "S2.04", "module": "utils.utils", "name": "med_reshape"} in found


def test_a_reworded_padding_in_a_shipped_grader_module_is_found(student_release, tmp_path):
    leaky = tmp_path / "release"
    shutil.copytree(student_release, leaky)
    with (leaky / "grader" / "runtime" / "fixtures.py").open("a") as stream:
        stream.write(REWORDED_PADDING)
    assert answers_in(leaky, tmp_path / "scratch") == [
        {"task": "S2.04", "module": "grader.runtime.fixtures", "name": "corner"}]

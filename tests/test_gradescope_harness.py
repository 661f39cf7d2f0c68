"""tools/gradescope_harness.py: a forging, hanging, memory-hungry upload graded as on Gradescope.

One upload holds the three attacks (a detached process that rewrites the results after the
grader exits, two functions that loop forever, a 1.6 GB allocation), zipped on a Mac (with its
``__MACOSX/`` folder). It runs through ``run_autograder`` in the /autograder layout under a
temporary root, with Gradescope's 10-minute timeout and, where this machine lets root write
cgroups, its 768 MB memory limit. The CPU share is left out here (a CI runner's 2 cores graded
at 0.5 vCPU would take minutes); the harness applies it by default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.mutants import copy_solution
from grader.runtime.submission import find_submission_root
from tests.test_grader_runtime import FORGER, HANG, change_function

REPO = Path(__file__).resolve().parents[1]

HARNESS_LIMIT_S = 900  # the harness stops run_autograder at 600 s itself
BOMB = "    bytearray(1600 * 2**20)\n"  # 1.6 GB: twice Gradescope's default container


def zip_like_a_mac(folder: Path, target: Path) -> Path:
    """``folder`` zipped as macOS Finder does: my_work/... plus __MACOSX/my_work/._* files."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                relative = path.relative_to(folder)
                archive.write(path, f"my_work/{relative.as_posix()}")
                fork = relative.parent / f"._{relative.name}"
                archive.writestr(f"__MACOSX/my_work/{fork.as_posix()}", b"\x00\x05\x16\x07")
    return target


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(REPO / "tools" / "release.py"), "--out", str(out)],
                   check=True, capture_output=True, timeout=HARNESS_LIMIT_S)
    return out / "autograder.zip"


def test_forging_hanging_and_memory_bomb_upload_keeps_the_graders_score_inside_ten_minutes(
        autograder_zip, tmp_path, capsys):
    work = copy_solution(tmp_path / "attacks")
    change_function(work, "utils/volume_stats.py", "Dice3d", HANG)
    change_function(work, "utils/utils.py", "med_reshape", HANG)
    change_function(work, "utils/volume_stats.py", "Jaccard3d", BOMB)
    stats = work / "section2" / "src" / "utils" / "volume_stats.py"
    stats.write_text(stats.read_text() + FORGER)
    upload = zip_like_a_mac(work, tmp_path / "upload.zip")
    completed = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gradescope_harness.py"), str(upload),
         f"--zip={autograder_zip}", "--cpus=0"], capture_output=True, text=True,
        timeout=HARNESS_LIMIT_S)
    summary = json.loads(completed.stdout)
    with capsys.disabled():
        print(f"\nharness: {summary['seconds']} s, score {summary['score']} of "
              f"{summary['max_score']}, limits {summary['limits']}")
    assert not summary["timed_out"], summary["output_tail"]
    results = summary["results_json"]
    tests = {test["name"]: test for test in results["tests"]}
    assert tests, "the grader's results were replaced: " + json.dumps(results)[:300]
    assert results["score"] == sum(test["score"] for test in tests.values())
    timed_out = sorted(name.split()[0] for name, test in tests.items()
                       if "timed out" in test["output"])
    assert timed_out == ["S2.04", "S2.12"]
    untouched = [test for test in tests.values() if test["number"].startswith(("S1.", "S2.0"))
                 and test["number"] != "S2.04" and not test["output"].startswith("skipped:")]
    assert untouched and all(test["status"] == "passed" for test in untouched)
    if os.geteuid() == 0:
        assert summary["student_processes_left"] == []
    if "memory" in summary["limits"]["cgroup"]:
        jaccard = [test["output"] for test in tests.values() if test["number"] == "S2.13"]
        assert any("ran out of memory" in output for output in jaccard), jaccard
    else:
        with capsys.disabled():
            print(f"memory-bomb part not checked: {summary['limits']['cgroup']}")


@pytest.mark.parametrize("layout, root", [
    (["section2/src/a.py"], "."),  # a GitHub submission or folders uploaded one by one
    (["my_work/section2/src/a.py"], "my_work"),  # a zipped folder
    (["repo-main/my_work/section2/src/a.py"], "repo-main/my_work"),  # a downloaded repository
    (["__MACOSX/my_work/section2/src/._a.py", "my_work/section2/src/a.py"], "my_work"),
    ([".git/x/section2/src/a.py", "z/section2/src/a.py"], "z"),
])
def test_the_upload_root_is_the_shallowest_folder_holding_section2_src(tmp_path, layout, root):
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    assert find_submission_root(tmp_path) == tmp_path / root


def test_an_upload_without_section2_src_has_no_root(tmp_path):
    (tmp_path / "__MACOSX" / "w" / "section2" / "src").mkdir(parents=True)
    assert find_submission_root(tmp_path) is None

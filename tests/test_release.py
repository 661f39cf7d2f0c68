"""tools/release.py: the student release, the Gradescope autograder, and the release's refusals.

Every build runs on a copy of this kit (without data, caches and the environment), so the
tests see the files as they are and may break the copy on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import make_skeleton
from solution_markers import MARKER_TEXT, cell_text, find_marked_code, is_solution_cell

REPO = Path(__file__).resolve().parents[1]
# Not copied into the kit copy: data, outputs, caches, the environment and the git database.
COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", "data", "dist", "results", "runs",
                                      "__pycache__", "*.pyc", ".pytest_cache",
                                      ".ipynb_checkpoints")
INSTRUCTOR_ONLY = ("solution/", "grader/hidden/", "grader/kit/", "grader/mutants/",
                   "grader/batch/", "tools/make_skeleton.py", "tools/solution_markers.py",
                   "tools/release.py", "tools/benchmark.py", "tools/release/")
# The grader's folders by role (grader/README.md): what each release holds besides the files
# directly in grader/ (its README excepted).
STUDENT_GRADER = ("grader/runtime", "grader/public")
AUTOGRADER_GRADER = (*STUDENT_GRADER, "grader/hidden")
SUBPROCESS_TIMEOUT_S = 300  # one release or one grading run; each takes seconds


def copy_kit(target: Path) -> Path:
    """A copy of this kit at ``target``, without data, outputs and caches."""
    shutil.copytree(REPO, target, ignore=COPY_IGNORED)
    return target


def release(kit: Path, out: Path) -> subprocess.CompletedProcess:
    """Run the kit copy's tools/release.py into ``out``."""
    return subprocess.run([sys.executable, str(kit / "tools" / "release.py"), "--out", str(out)],
                          check=False, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S)


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    return copy_kit(tmp_path_factory.mktemp("release") / "kit")


@pytest.fixture(scope="module")
def built(kit: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """(output folder, the finished process) of one release of the kit copy."""
    out = kit.parent / "dist"
    return out, release(kit, out)


@pytest.fixture(scope="module")
def dist(built) -> Path:
    """The release's output folder; skips when the kit does not release (one test says why)."""
    out, result = built
    if result.returncode != 0:
        pytest.skip("the kit does not release; see test_this_kit_releases")
    return out


def zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def files_below(root: Path, folder: str) -> set[str]:
    """Files under root/folder relative to root, without caches and run outputs."""
    found = set()
    for path in (root / folder).rglob("*"):
        parts = path.relative_to(root).parts
        if (path.is_file() and not path.name.endswith(".pyc")
                and not {"__pycache__", "runs", ".ipynb_checkpoints"}.intersection(parts)
                and "out/results" not in "/".join(parts)):
            found.add("/".join(parts))
    return found


def grader_top_files(kit: Path) -> set[str]:
    """The files directly in grader/ (the plugin, points.json), less the instructors' README."""
    return {f"grader/{path.name}" for path in (kit / "grader").iterdir()
            if path.is_file() and path.name != "README.md"}


def expected_student_files(kit: Path) -> set[str]:
    """The student release by the rules: the sections, a few named files, the grader's runtime
    and public tests."""
    expected = {"README.md", "requirements.txt", "pytest.ini", ".gitignore", "tools/get_data.py",
                "tools/hippocampus_kit.py"} | grader_top_files(kit)
    for folder in ("section1", "section2/src", "section2/out", *STUDENT_GRADER):
        expected |= files_below(kit, folder)
    return expected


def solution_block_lines(kit: Path) -> set[str]:
    """Stripped lines longer than 25 characters of the marked code of solution/."""
    return {line.strip() for path in (kit / "solution").rglob("*.py")
            for piece in find_marked_code(path.read_text(), path.name)
            for line in piece.code if len(line.strip()) > 25}


def notebook_answer_lines(kit: Path) -> set[str]:
    """Stripped lines longer than 25 characters of the cells tagged solution in solution/."""
    return {line.strip() for path in (kit / "solution").rglob("*.ipynb")
            for cell in json.loads(path.read_text())["cells"] if is_solution_cell(cell)
            for line in cell_text(cell).splitlines() if len(line.strip()) > 25}


def test_this_kit_releases(built):
    out, result = built
    assert result.returncode == 0, f"tools/release.py refused:\n{result.stderr}"
    assert result.stderr == "", result.stderr  # no warning either, e.g. a missing template
    assert sorted(path.name for path in out.iterdir()) == ["autograder.zip", "student",
                                                          "student.zip"]


def test_student_release_holds_exactly_the_files_the_rules_name(kit, dist):
    files = zip_files(dist / "student.zip")
    on_disk = {path.relative_to(dist / "student").as_posix()
               for path in (dist / "student").rglob("*") if path.is_file()}
    assert set(files) == on_disk == expected_student_files(kit)
    assert all(files[name] == (dist / "student" / name).read_bytes() for name in files)
    for name in ("section2/src/run_ml_pipeline.py", "section2/out/README.md",
                 "grader/public/test_volume_stats.py", "tools/get_data.py", "requirements.txt"):
        assert name in files
    assert [name for name in files if name.startswith(INSTRUCTOR_ONLY)] == []


def test_student_release_holds_no_marker_text_and_no_solution_line(kit, dist):
    secret = solution_block_lines(kit) | notebook_answer_lines(kit)
    assert solution_block_lines(kit) and notebook_answer_lines(kit), (
        "solution/ has no solution block or answer cell: the scan below would prove nothing")
    for name, data in zip_files(dist / "student.zip").items():
        text = data.decode("utf-8", errors="replace")
        assert not MARKER_TEXT.search(text), name
        assert [line for line in secret if line in text] == [], name


def test_student_readme_and_pytest_ini_give_the_students_commands(dist):
    readme = (dist / "student" / "README.md").read_text()
    for command in ("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
                    "python tools/get_data.py", "python run_ml_pipeline.py --dry-run",
                    "python run_ml_pipeline.py --preset cpu", "pytest grader -k S2.04",
                    "tensorboard --logdir runs", "section1/out/README.md",
                    "section2/out/README.md", "| S2.12 |"):
        assert command in readme
    assert not re.search(r"@[A-Z_]+@", readme), "a template placeholder was not filled"
    assert re.search(r"^testpaths = grader$", (dist / "student" / "pytest.ini").read_text(),
                     re.MULTILINE)


def test_two_builds_give_byte_identical_zips(kit, dist, tmp_path):
    assert release(kit, tmp_path).returncode == 0
    for name in ("student.zip", "autograder.zip"):
        assert (tmp_path / name).read_bytes() == (dist / name).read_bytes(), name


def test_autograder_zip_has_gradescopes_layout_and_no_solution(kit, dist):
    with zipfile.ZipFile(dist / "autograder.zip") as archive:
        infos = {info.filename: info for info in archive.infolist()}
        scripts = {name: archive.read(name).decode() for name in ("setup.sh", "run_autograder")}
    for name in ("setup.sh", "run_autograder"):
        assert (infos[name].external_attr >> 16) & 0o111 == 0o111, f"{name} is not executable"
    names = set(infos)
    assert {"grader/conftest.py", "grader/points.json", "requirements.txt",
            "section2/out/README.md", "README_autograder.md"} <= names
    assert any(name.startswith("grader/hidden/") for name in names)
    assert any(name.startswith("grader/public/") for name in names)
    for prefix in ("solution/", "grader/mutants/", "grader/batch/", "grader/kit/"):
        assert not any(name.startswith(prefix) for name in names), prefix
    grader = {name for name in names if name.startswith("grader/")}
    assert grader == grader_top_files(kit).union(
        *(files_below(kit, folder) for folder in AUTOGRADER_GRADER))
    run = scripts["run_autograder"]
    assert "AUTOGRADER=${AUTOGRADER:-/autograder}" in run
    assert "SUBMISSION=$AUTOGRADER/submission" in run
    assert ('cd "$AUTOGRADER/source" && python3 -m pytest grader --submission="$SUBMISSION"'
            in run)
    assert "RESULTS=$AUTOGRADER/results/results.json" in run
    assert '--student-user="$STUDENT"' in run
    assert "useradd --system" in scripts["setup.sh"]
    assert run.rstrip().endswith("exit 0")
    torch = re.search(r"^torch==(\S+)$", (kit / "requirements.txt").read_text(), re.MULTILINE)
    assert (f'"torch=={torch[1]}" --index-url https://download.pytorch.org/whl/cpu'
            in scripts["setup.sh"])
    assert '"$PIP" install -r /autograder/source/requirements.txt' in scripts["setup.sh"]


def test_stale_skeleton_is_refused_and_nothing_is_written(kit, tmp_path):
    stale_kit = copy_kit(tmp_path / "kit")
    solution = stale_kit / "solution" / "section2" / "src" / "utils" / "volume_stats.py"
    solution.write_text(solution.read_text() + "\n# a change the skeleton has not seen\n")
    result = release(stale_kit, tmp_path / "out")
    assert result.returncode == 1
    assert "skeleton is stale" in result.stderr
    assert "section2/src/utils/volume_stats.py" in result.stderr
    assert "python tools/make_skeleton.py" in result.stderr
    assert not (tmp_path / "out").exists()


def test_generated_files_ship_as_committed_without_their_header(kit, dist):
    outputs, _ = make_skeleton.build(kit)
    files = zip_files(dist / "student.zip")
    assert set(outputs) <= set(files)
    for target, data in outputs.items():
        source = make_skeleton.source_path(target)
        assert files[target] == make_skeleton.remove_header(target, source, data), target
        assert b"make_skeleton" not in files[target], target


@pytest.mark.parametrize("shipped, added, reported", [
    ("tools/get_data.py", "# END SOLUTION\n", "tools/get_data.py: marker text"),
    ("grader/public/__init__.py", None, "grader/public/__init__.py: solution line"),
    ("grader/public/__init__.py", "notebook", "grader/public/__init__.py: solution line"),
])
def test_solution_text_in_the_release_is_refused_and_the_output_removed(kit, tmp_path, shipped,
                                                                         added, reported):
    leaky_kit = copy_kit(tmp_path / "kit")
    # A fresh skeleton, so that only the leak can stop this release.
    subprocess.run([sys.executable, str(leaky_kit / "tools" / "make_skeleton.py")], check=True,
                   capture_output=True, timeout=SUBPROCESS_TIMEOUT_S)
    if added is None:  # a comment quoting a solution line
        added = f"# {min(solution_block_lines(leaky_kit))}\n"
    elif added == "notebook":  # a comment quoting a reference answer of the notebook
        added = f"# {min(notebook_answer_lines(leaky_kit))}\n"
    with (leaky_kit / shipped).open("a") as stream:
        stream.write(added)
    out = tmp_path / "out"
    (out / "student").mkdir(parents=True)
    (out / "student" / "left_from_an_old_release.txt").write_text("old")
    result = release(leaky_kit, out)
    assert result.returncode == 1
    assert reported in result.stderr
    assert sorted(path.name for path in out.iterdir()) == []


def test_public_tests_run_standalone_in_the_unpacked_student_release(dist, tmp_path):
    with zipfile.ZipFile(dist / "student.zip") as archive:
        archive.extractall(tmp_path)
    result = subprocess.run([sys.executable, "-m", "pytest", "grader",
                             "-p", "no:cacheprovider", "-k", "S2.12"], check=False,
                            cwd=tmp_path, capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT_S)
    assert result.returncode == 1, result.stdout + result.stderr  # the skeleton's stubs fail
    assert f"grading: your work in {tmp_path}" in result.stdout
    assert "TASK S2.12" in result.stdout and " failed" in result.stdout
    assert json.loads((tmp_path / "results.json").read_text())["score"] == 0


def test_unpacked_autograder_grades_a_submission_without_the_solution_folder(kit, dist, tmp_path):
    autograder, submission = tmp_path / "autograder", tmp_path / "submission"
    with zipfile.ZipFile(dist / "autograder.zip") as archive:
        archive.extractall(autograder)
    shutil.copytree(kit / "solution" / "section2" / "src", submission / "section2" / "src")
    results = tmp_path / "results" / "results.json"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "grader", "-q",
                             f"--submission={submission}", f"--results={results}",
                             "-p", "no:cacheprovider", "-k", "S2.12 or S2.13"],
                            check=False, cwd=autograder, env=env, capture_output=True,
                            text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    graded = json.loads(results.read_text())
    assert graded["tests"] and all(test["status"] == "passed" for test in graded["tests"])
    assert any(test["visibility"] == "after_published" for test in graded["tests"])


def test_run_autograder_leaves_a_zero_score_results_json_when_the_grader_cannot_start(dist,
                                                                                      tmp_path):
    root = tmp_path / "autograder"  # stands in for /autograder
    with zipfile.ZipFile(dist / "autograder.zip") as archive:
        archive.extractall(root / "source")
    (root / "submission" / "notes").mkdir(parents=True)  # no section2/src anywhere
    script = root / "run_autograder"
    script.write_text((root / "source" / "run_autograder").read_text()
                      .replace("/autograder", str(root)))
    python_dir = Path(sys.executable).parent  # run_autograder calls python3 from PATH
    env = {**os.environ, "PATH": f"{python_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(script)], check=False, env=env, capture_output=True,
                            text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    graded = json.loads((root / "results" / "results.json").read_text())
    assert graded["score"] == 0
    assert "has no section2/src folder" in graded["output"]


def test_data_shipped_with_the_autograder_carries_checksums_that_setup_checks(kit, tmp_path):
    data = tmp_path / "TrainingSet"
    for name, content in (("images/hippocampus_001.nii.gz", b"image"),
                          ("labels/hippocampus_001.nii.gz", b"label")):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(kit / "tools" / "release.py"), "--out",
                             str(out), f"--data={data}"], check=False, capture_output=True,
                            text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    files = zip_files(out / "autograder.zip")
    assert files["data/TrainingSet/labels/hippocampus_001.nii.gz"] == b"label"
    unpacked = tmp_path / "source" / "data"
    for name in ("data/SHA256SUMS", "data/TrainingSet/images/hippocampus_001.nii.gz",
                 "data/TrainingSet/labels/hippocampus_001.nii.gz"):
        (tmp_path / "source" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "source" / name).write_bytes(files[name])
    check = ["sha256sum", "--check", "--quiet", "../SHA256SUMS"]
    assert subprocess.run(check, cwd=unpacked / "TrainingSet").returncode == 0
    (unpacked / "TrainingSet" / "labels" / "hippocampus_001.nii.gz").write_bytes(b"damaged")
    assert subprocess.run(check, cwd=unpacked / "TrainingSet",
                          capture_output=True).returncode != 0
    setup = files["setup.sh"].decode()
    assert "sha256sum --check --quiet ../SHA256SUMS" in setup

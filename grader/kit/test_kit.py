"""Checks of the kit itself (run by `pytest grader/` without --submission, never on a submission).

The student skeleton is well formed (every module imports, every TASK has its comment and
stub, every signature equals the solution's), and the points add up.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import make_skeleton  # tools/, on pytest's path (pyproject.toml)
from grader.conftest import COLLECTED_POINTS
from grader.runtime.layout import COURSE, COURSE_NOT_GRADED, KIT
from grader.runtime.results import load_manifest
from grader.runtime.source_functions import source_functions
from grader.runtime.submission import REPO

pytestmark = pytest.mark.kit


@pytest.fixture(scope="module")
def skeleton() -> tuple[dict[str, bytes], list]:
    """What tools/make_skeleton.py writes, and every TASK of the solution."""
    return make_skeleton.build(REPO)


def python_files(outputs: dict[str, bytes]) -> dict[str, str]:
    return {path: data.decode() for path, data in outputs.items() if path.endswith(".py")}


def test_every_skeleton_module_imports(skeleton):
    for _, target in make_skeleton.TREES:
        folder = REPO / target
        modules = [path.relative_to(target).with_suffix("").as_posix().replace("/", ".")
                   for path in map(Path, python_files(skeleton[0]))
                   if path.is_relative_to(target) and path.name != "__init__.py"]
        script = ("import importlib, sys\n"
                  "for name in sys.argv[1:]:\n    importlib.import_module(name)\n")
        result = subprocess.run([sys.executable, "-c", script, *modules], cwd=folder,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{target}: {result.stderr.strip().splitlines()[-1:]}"


def test_skeleton_holds_every_task_comment_and_stub(skeleton):
    outputs, tasks = skeleton
    for task in tasks:
        files = [data.decode() for path, data in outputs.items() if path.endswith("/" + task.path)]
        assert any(f"# TASK {task.id}: {task.summary}" in text and task.stub in text
                   for text in files), f"TASK {task.id}: comment or stub missing in {task.path}"


def signatures(source: str) -> dict[str, str]:
    """{qualified function name: its signature as source} of a module."""
    return {name: f"({ast.unparse(node.args)}) -> "
                  f"{ast.unparse(node.returns) if node.returns else ''}"
            for name, node in source_functions(ast.parse(source))}


def test_skeleton_signatures_equal_the_solutions(skeleton):
    for path, text in python_files(skeleton[0]).items():
        for source_dir, target in make_skeleton.TREES:
            if path.startswith(target + "/"):
                solution = (REPO / source_dir / path[len(target) + 1:]).read_text()
                assert signatures(text) == signatures(solution), f"{path}: signatures differ"


def test_points_of_the_tests_add_up_to_each_task_and_the_total(request):
    manifest = load_manifest()
    collected = request.config.stash.get(COLLECTED_POINTS, {}).get(KIT, {})
    if not set(collected) >= {"S2.12", "R2.01"}:
        pytest.skip("run the whole grader (`pytest grader/`) to add up the points")
    assert {task: collected.get(task, 0) for task in manifest["tasks"]} == {
        task: entry["points"] for task, entry in manifest["tasks"].items()}


def test_points_add_up_for_a_course_starter_submission_but_the_tasks_it_has_not(request):
    """A course submission's tests (automatic and by hand) give each TASK its points, but
    those the course does not ask for (grader/runtime/layout.py's COURSE_NOT_GRADED)."""
    manifest = load_manifest()
    collected = request.config.stash.get(COLLECTED_POINTS, {}).get(COURSE, {})
    if not set(collected) >= {"S2.13", "R2.01", "S1.01"}:
        pytest.skip("run the whole grader (`pytest grader/`) to add up the points")
    assert {task: collected.get(task, 0) for task in manifest["tasks"]} == {
        task: 0 if task in COURSE_NOT_GRADED else entry["points"]
        for task, entry in manifest["tasks"].items()}


def test_every_task_of_the_solution_has_points_and_a_test(skeleton, request):
    manifest = load_manifest()
    solution_ids = {task.id for task in skeleton[1]}
    assert solution_ids <= set(manifest["tasks"]), "TASKs without points in grader/points.json"
    collected = request.config.stash.get(COLLECTED_POINTS, {}).get(KIT, {})
    if not set(collected) >= {"S2.12", "R2.01"}:
        pytest.skip("run the whole grader (`pytest grader/`) to see every test")
    assert solution_ids <= set(collected), "TASKs without a grading test"

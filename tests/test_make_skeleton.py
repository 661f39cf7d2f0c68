"""tools/make_skeleton.py: solution files in, student skeleton out, refusals, --check, the
generated header; and the marker grammar of tools/solution_markers.py that it parses with."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

import make_skeleton
from make_skeleton import SkeletonError, build, remove_header, strip_solution
from solution_markers import MarkedCode, MarkerError, find_marked_code

REPO = Path(__file__).resolve().parents[1]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def stub(task_id: str, summary: str) -> str:
    return f'raise NotImplementedError("TASK {task_id}: {summary}")'


def test_block_becomes_stub_and_everything_else_is_kept_byte_for_byte():
    source = dedent('''
        """Module docstring."""
        import numpy as np


        def area(a: np.ndarray) -> int:
            """Docstring stays."""
            a = np.asarray(a)  # a comment stays
            # TASK S9.01: Count the foreground pixels.
            #   Hint: np.count_nonzero.
            # BEGIN SOLUTION
            total = np.count_nonzero(a)
            return total
            # END SOLUTION
    ''')
    skeleton, tasks = strip_solution(source, "area.py")
    assert skeleton == dedent(f'''
        """Module docstring."""
        import numpy as np


        def area(a: np.ndarray) -> int:
            """Docstring stays."""
            a = np.asarray(a)  # a comment stays
            # TASK S9.01: Count the foreground pixels.
            #   Hint: np.count_nonzero.
            {stub("S9.01", "Count the foreground pixels.")}
    ''')
    assert [(t.id, t.function, t.line) for t in tasks] == [("S9.01", "area", 8)]


@pytest.mark.parametrize("source, indent, function", [
    (dedent('''
        class Model:
            def forward(self, x):
                # TASK S9.02: Double x.
                # BEGIN SOLUTION
                return 2 * x
                # END SOLUTION
     '''), " " * 8, "Model.forward"),
    (dedent('''
        def outer():
            def inner(x):
                # TASK S9.02: Double x.
                # BEGIN SOLUTION
                return 2 * x
                # END SOLUTION
            return inner
     '''), " " * 8, "outer.inner"),
    (dedent('''
        def total(xs):
            s = 0
            for x in xs:
                if x:
                    # TASK S9.02: Double x.
                    # BEGIN SOLUTION
                    s += 2 * x
                    # END SOLUTION
            return s
     '''), " " * 12, "total"),
])
def test_stub_keeps_the_block_indent_in_classes_nested_functions_and_loops(source, indent,
                                                                           function):
    skeleton, tasks = strip_solution(source, "f.py")
    assert f"\n{indent}{stub('S9.02', 'Double x.')}\n" in skeleton
    assert "2 * x" not in skeleton and "SOLUTION" not in skeleton
    ast.parse(skeleton)
    assert tasks[0].function == function


def test_single_line_marker_becomes_a_stub_at_its_indent():
    source = dedent('''
        class Config:
            def __init__(self):
                self.name = "unet"
                # TASK S9.03: Set the data folder.
                self.root = "/data"  # SOLUTION
                self.epochs = 10
    ''')
    skeleton, tasks = strip_solution(source, "config.py")
    assert skeleton.splitlines()[4:6] == [
        "        " + stub("S9.03", "Set the data folder."), "        self.epochs = 10"]
    assert "/data" not in skeleton
    assert tasks[0].function == "Config.__init__"


def test_summary_with_quotes_gives_a_valid_string_literal():
    source = 'def f():\n    # TASK S9.04: Return "yes" or \'no\'.\n    return "yes"  # SOLUTION\n'
    skeleton, _ = strip_solution(source, "q.py")
    with pytest.raises(NotImplementedError, match="TASK S9.04: Return \"yes\" or 'no'."):
        namespace: dict = {}
        exec(compile(skeleton, "q.py", "exec"), namespace)
        namespace["f"]()


REFUSALS = {
    "begin_never_closed": ("def f():\n    # TASK S9.05: x.\n    # BEGIN SOLUTION\n"
                           "    return 1\n", "never closed"),
    "end_without_begin": ("def f():\n    return 1\n    # END SOLUTION\n", "without a"),
    "nested_begin": ("def f():\n    # TASK S9.05: x.\n    # BEGIN SOLUTION\n"
                     "    # TASK S9.06: y.\n    # BEGIN SOLUTION\n    return 1\n"
                     "    # END SOLUTION\n    # END SOLUTION\n", "cannot nest"),
    "line_marker_inside_block": ("def f():\n    # TASK S9.05: x.\n    # BEGIN SOLUTION\n"
                                 "    a = 1  # SOLUTION\n    return a\n    # END SOLUTION\n",
                                 "cannot nest"),
    "block_without_task": ("def f():\n    # just a comment\n    # BEGIN SOLUTION\n"
                           "    return 1\n    # END SOLUTION\n", "without a '# TASK"),
    "line_without_task": ("def f():\n    return 1  # SOLUTION\n", "without a '# TASK"),
    "task_at_other_indent": ("def f():\n# TASK S9.05: x.\n    # BEGIN SOLUTION\n"
                             "    return 1\n    # END SOLUTION\n", "without a '# TASK"),
    "malformed_id": ("def f():\n    # TASK 4: x.\n    # BEGIN SOLUTION\n    return 1\n"
                     "    # END SOLUTION\n", "not of the form"),
    "end_indent_differs": ("def f():\n    # TASK S9.05: x.\n    # BEGIN SOLUTION\n"
                           "    return 1\n# END SOLUTION\n", "indented differently"),
    "lone_line_marker": ("def f():\n    # TASK S9.05: x.\n    # SOLUTION\n", "must end"),
    "output_does_not_parse": ("def f():\n    x = 1\n        # TASK S9.05: x.\n"
                              "        # BEGIN SOLUTION\n        return x\n"
                              "        # END SOLUTION\n", "does not parse"),
    "marker_would_survive": ("def f():\n    # TASK S9.05: x.\n    x = 1  # BEGIN SOLUTION\n"
                             "    return x\n", "would survive"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_generator_refuses_a_defective_solution_file(name):
    source, message = REFUSALS[name]
    with pytest.raises(MarkerError, match=message) as caught:
        strip_solution(source, "bad.py")
    assert "bad.py" in str(caught.value)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """A tiny repository with solution/section1 and solution/section2/src."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in ("solution/section1", "solution/section2/src"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


GOOD = {
    "solution/section2/src/utils/metrics.py": ("def dice(a, b):\n    # TASK S2.01: Dice.\n"
                                               "    # BEGIN SOLUTION\n    return 1.0\n"
                                               "    # END SOLUTION\n"),
    "solution/section2/src/README.md": "# Tasks\n\n<!-- TASKS -->\n",
    "solution/section1/eda.py": ("def count(x):\n    # TASK S1.01: Count.\n"
                                 "    return 0  # SOLUTION\n"),
    "solution/section1/EDA.ipynb": '{\n "cells": [],\n "metadata": {}\n}\n',  # nbformat's layout
}


def test_tree_is_mapped_readme_gets_the_task_table_and_other_files_are_copied(tmp_path):
    repo = make_repo(tmp_path, GOOD)
    assert make_skeleton.main(["--repo", str(repo)]) == 0
    notebook = (repo / "section1/EDA.ipynb").read_bytes()
    assert remove_header("section1/EDA.ipynb", "solution/section1/EDA.ipynb",
                         notebook).decode() == GOOD["solution/section1/EDA.ipynb"]
    assert stub("S1.01", "Count.") in (repo / "section1/eda.py").read_text()
    readme = (repo / "section2/src/README.md").read_text()
    assert "| S2.01 | `utils/metrics.py` | `dice` | Dice. |" in readme
    assert "<!-- TASKS -->" not in readme


def test_two_runs_give_identical_output(tmp_path):
    repo = make_repo(tmp_path, GOOD)
    first, _ = build(repo)
    second, _ = build(repo)
    assert first == second and list(first) == list(second)


def test_nothing_is_written_when_one_file_is_defective(tmp_path, capsys):
    repo = make_repo(tmp_path, {**GOOD, "solution/section2/src/bad.py": REFUSALS[
        "block_without_task"][0]})
    assert make_skeleton.main(["--repo", str(repo)]) == 2
    assert not (repo / "section2").exists() and not (repo / "section1").exists()
    assert "nothing written" in capsys.readouterr().err


def test_a_task_id_used_twice_is_refused(tmp_path):
    twice = GOOD["solution/section2/src/utils/metrics.py"]
    repo = make_repo(tmp_path, {**GOOD, "solution/section2/src/other.py": twice})
    with pytest.raises(SkeletonError, match="S2.01 is used twice"):
        build(repo)


def test_markers_in_a_non_python_file_are_refused(tmp_path):
    repo = make_repo(tmp_path, {**GOOD, "solution/section1/notes.txt": "x  # SOLUTION\n"})
    with pytest.raises(SkeletonError, match="notes.txt"):
        build(repo)


def test_check_passes_when_fresh_and_fails_with_a_diff_when_stale(tmp_path, capsys):
    repo = make_repo(tmp_path, GOOD)
    make_skeleton.main(["--repo", str(repo)])
    capsys.readouterr()
    assert make_skeleton.main(["--repo", str(repo), "--check"]) == 0

    edited = repo / "section2/src/utils/metrics.py"
    edited.write_text(edited.read_text().replace("Dice.", "Dice!"))
    (repo / "section1/leftover.py").write_text("x = 1\n")
    before = edited.read_text()
    assert make_skeleton.main(["--repo", str(repo), "--check"]) == 1
    diff = capsys.readouterr().out
    assert "--- a/section2/src/utils/metrics.py" in diff and "+    # TASK S2.01: Dice." in diff
    assert "a/section1/leftover.py" in diff
    assert edited.read_text() == before  # --check writes nothing


def test_writing_removes_stale_files_but_keeps_the_students_out_folder(tmp_path):
    repo = make_repo(tmp_path, GOOD)
    (repo / "section1/out/results").mkdir(parents=True)
    (repo / "section1/out/results/cases.csv").write_text("case,status\n")
    (repo / "section1/out/notes.md").write_text("my notes\n")
    (repo / "section1/old.py").write_text("x = 1\n")
    make_skeleton.main(["--repo", str(repo)])
    assert not (repo / "section1/old.py").exists()
    assert (repo / "section1/out/results/cases.csv").read_text() == "case,status\n"
    assert (repo / "section1/out/notes.md").read_text() == "my notes\n"


def test_of_the_solutions_out_folder_only_the_report_template_is_generated(tmp_path):
    repo = make_repo(tmp_path, {**GOOD, "solution/section1/out/README.md": "# Report\n",
                                "solution/section1/out/results/cases.csv": "case\n"})
    outputs, _ = build(repo)
    assert outputs["section1/out/README.md"].decode().endswith("\n# Report\n")
    assert not [path for path in outputs if "results" in path]


def test_committed_skeleton_equals_the_generators_output():
    outputs, tasks = build(REPO)
    assert make_skeleton.differences(REPO, outputs) == "", (
        "the student skeleton is stale: run python tools/make_skeleton.py and commit it")
    assert tasks, "the solution marks no TASK"


def test_every_task_id_is_in_the_solution_and_the_skeleton():
    outputs, tasks = build(REPO)
    skeleton = b"".join(outputs.values()).decode("utf-8", errors="replace")
    for task in tasks:
        assert f"# TASK {task.id}: " in skeleton
        assert f'raise NotImplementedError("TASK {task.id}: ' in skeleton
    solution_ids = {task.id for task in tasks}
    assert {f"S2.{n:02d}" for n in range(1, 16)} <= solution_ids


def test_unfilled_skeleton_stops_at_the_first_task_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "run_ml_pipeline.py", "--dry-run",
                             "--test-results-dir", str(tmp_path)],
                            cwd=REPO / "section2" / "src", capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Unfinished TASK S2.01 in run_ml_pipeline.py, Config.__init__(): Set the "
        "data and results paths: root_dir and test_results_dir, as str."]


def test_notebook_cells_tagged_solution_become_blank_answer_cells():
    notebook = {"cells": [
        {"cell_type": "markdown", "id": "q", "metadata": {}, "source": ["Question?"]},
        {"cell_type": "markdown", "id": "a", "metadata": {"tags": ["solution"]},
         "source": ["The answer is 42."]},
        {"cell_type": "code", "id": "c", "metadata": {"tags": ["solution", "keep"]},
         "source": ["x = 42"], "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    student = json.loads(make_skeleton.strip_notebook(json.dumps(notebook), "EDA.ipynb"))
    assert [cell["source"] for cell in student["cells"]] == [
        ["Question?"], ["*Your answer here.*"], ["# Your code here."]]
    assert student["cells"][1]["metadata"] == {}
    assert student["cells"][2]["metadata"] == {"tags": ["keep"]}


def test_a_notebook_that_is_not_json_is_refused():
    with pytest.raises(SkeletonError, match="EDA.ipynb is not a valid notebook"):
        make_skeleton.strip_notebook("{not json", "EDA.ipynb")


def test_marked_code_gives_each_pieces_task_lines_and_reference_code():
    source = dedent('''
        def f(x):
            # TASK S9.07: Square x.
            #   Hint: **.
            # BEGIN SOLUTION
            y = x ** 2
            return y
            # END SOLUTION


        def g():
            # TASK S9.08: One.
            return 1  # SOLUTION
    ''')
    assert find_marked_code(source, "f.py") == [
        MarkedCode("S9.07", "Square x.", 2, 4, 7, "    ", ("    y = x ** 2", "    return y")),
        MarkedCode("S9.08", "One.", 11, 12, 12, "    ", ("    return 1",))]


# --- the generated header ---------------------------------------------------------------------

HEADER_CASES = {  # solution file -> its first lines in the skeleton
    "solution/section2/src/tool.py": (
        "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n\"\"\"Doc.\"\"\"\n"
        "from __future__ import annotations\n",
        ["#!/usr/bin/env python3", "# -*- coding: utf-8 -*-",
         "# Generated from solution/section2/src/tool.py by tools/make_skeleton.py; edit "
         "that file, then run the tool.", '"""Doc."""']),
    "solution/section2/src/plain.py": (
        '"""Doc."""\n', ["# Generated from solution/section2/src/plain.py by "
                         "tools/make_skeleton.py; edit that file, then run the tool.",
                         '"""Doc."""']),
    "solution/section1/notes.md": (
        "# Notes\n", ["<!-- Generated from solution/section1/notes.md by "
                      "tools/make_skeleton.py; edit that file, then run the tool. -->",
                      "# Notes"]),
}


@pytest.mark.parametrize("source", sorted(HEADER_CASES))
def test_each_generated_file_names_its_solution_file_and_keeps_docstring_and_shebang(
        tmp_path, source):
    text, first_lines = HEADER_CASES[source]
    outputs, _ = build(make_repo(tmp_path, {**GOOD, source: text}))
    target = source.removeprefix("solution/")
    generated = outputs[target].decode()
    assert generated.splitlines()[:len(first_lines)] == first_lines
    if target.endswith(".py"):
        module = ast.parse(generated)
        assert ast.get_docstring(module) == "Doc."
        compile(generated, target, "exec")  # `from __future__` is still allowed where it is
    assert remove_header(target, source, outputs[target]).decode() == text


def test_generated_notebook_shows_and_keeps_its_solution_file_and_stays_valid():
    outputs, _ = build(REPO)
    notebook = nbformat.reads(outputs["section1/EDA.ipynb"].decode(), as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["generated_from"] == "solution/section1/EDA.ipynb"
    assert notebook.cells[0].cell_type == "markdown"
    assert "solution/section1/EDA.ipynb" in notebook.cells[0].source
    assert "tools/make_skeleton.py" in notebook.cells[0].source


def test_every_committed_generated_file_carries_the_header_and_loses_only_it_on_removal():
    outputs, _ = build(REPO)
    for target, data in outputs.items():
        source = make_skeleton.source_path(target)
        assert source.encode() in data[:1000], target
        without = remove_header(target, source, data)
        assert len(data) > len(without) and source.encode() not in without, target


def test_a_file_type_that_cannot_carry_the_header_is_refused(tmp_path):
    repo = make_repo(tmp_path, {**GOOD, "solution/section1/table.csv": "a,b\n"})
    with pytest.raises(SkeletonError, match="solution/section1/table.csv.*cannot say"):
        build(repo)


def test_removing_a_header_that_is_not_there_is_refused():
    with pytest.raises(SkeletonError, match="lacks the generated header"):
        remove_header("section1/eda.py", "solution/section1/eda.py", b'"""Doc."""\n')


def test_gitattributes_marks_exactly_the_generated_files_as_generated():
    outputs, _ = build(REPO)
    students = ["section1/out/results/cases.csv", "section2/out/README.md",
                "solution/section1/eda.py", "tools/make_skeleton.py"]
    result = subprocess.run(["git", "check-attr", "linguist-generated", "--", *outputs,
                             *students], cwd=REPO, capture_output=True, text=True, check=True)
    marked = dict(line.rsplit(": linguist-generated: ", 1)
                  for line in result.stdout.splitlines())
    assert {path for path, value in marked.items() if value == "true"} == set(outputs)

"""Unit tests of the grader's course-layout helpers: layout detection, CUDA on the CPU, the
course's bare NotImplementedError stubs, and running a course ``__main__`` on stand-ins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.runtime.checks import expect_error
from grader.runtime.course_pipeline import run_course_main, split_as_lists
from grader.runtime.layout import COURSE, KIT, detect_layout
from grader.runtime.sandbox import describe

REPO = Path(__file__).resolve().parents[1]

COURSE_MAIN = '''
from experiments.UNetExperiment import UNetExperiment
from data_prep.HippocampusDatasetLoader import LoadHippocampusData

if __name__ == "__main__":
    data = LoadHippocampusData("somewhere", y_shape=64, z_shape=64)
    split = dict()
    {split_code}
    exp = UNetExperiment(None, split, data)
    {run_line}
    exp.run_test()
'''


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.mark.parametrize("files, layout", [
    ({"run_ml_pipeline.py": "def split_indices(n_volumes, seed):\n    pass\n"}, KIT),
    ({"run_ml_pipeline.py": "x = 1\n", "utils/utils.py": "# TASK S2.04: pad\n"}, KIT),
    ({"utils/utils.py": "x = 1\n"}, KIT),
    ({"run_ml_pipeline.py": "# TASK: create three keys\nsplit = dict()\n"}, COURSE),
])
def test_layout_is_the_kits_when_it_has_split_indices_or_a_kit_task_id(files, layout,
                                                                        tmp_path):
    assert detect_layout(write(tmp_path, files)) == layout


def test_cuda_only_code_runs_on_the_cpu_after_map_cuda_to_cpu():
    script = textwrap.dedent('''
        import torch
        from grader.runtime.cuda_on_cpu import map_cuda_to_cpu
        assert map_cuda_to_cpu() is not torch.cuda.is_available()
        model = torch.nn.Conv2d(1, 3, 3).cuda().to(torch.device("cuda:0"))
        x = torch.ones(2, 1, 4, 4).cuda().to("cuda").to(device="cuda")
        x = x.type(torch.cuda.FloatTensor).type("torch.cuda.FloatTensor")
        labels = torch.cuda.LongTensor([1, 2])
        assert model(x).device.type == "cpu" and labels.dtype == torch.int64
        assert x.to(torch.float64).dtype == torch.float64
        print("ok")
    ''')
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def course_stub():
    raise NotImplementedError


def test_a_bare_not_implemented_error_reads_as_a_task_not_done():
    with pytest.raises(NotImplementedError) as info:
        course_stub()
    assert describe(info.value, hide_details=False) == (
        "TASK not done: course_stub in test_grader_layout.py still raises "
        "NotImplementedError; write its code")


def test_expect_error_does_not_take_a_bare_stub_for_the_expected_error():
    with pytest.raises(NotImplementedError):
        expect_error(course_stub, what="anything")


def course_code(tmp_path: Path, split_code: str, run_line: str = "exp.run()"):
    section2 = write(tmp_path / "src", {"run_ml_pipeline.py": COURSE_MAIN.format(
        split_code=split_code, run_line=run_line)})
    return SimpleNamespace(section2=section2)


def test_a_course_main_gives_its_split_and_its_calls(tmp_path):
    code = course_code(tmp_path, 'split["train"], split["val"], split["test"] = '
                                 'list(range(6)), [6, 7], [8, 9]')
    run = run_course_main(code, 10, tmp_path / "work")
    assert run.error is None and run.calls == ["run", "run_test"]
    assert split_as_lists(run.split) == {"train": list(range(6)), "val": [6, 7],
                                         "test": [8, 9]}
    assert len(run.dataset) == 10


def test_a_course_main_with_run_commented_out_records_no_run(tmp_path):
    code = course_code(tmp_path, 'split.update(train=[0], val=[1], test=[2])', "# exp.run()")
    assert run_course_main(code, 3, tmp_path / "work").calls == ["run_test"]


def test_an_empty_course_split_reads_as_a_task_not_done(tmp_path):
    run = run_course_main(course_code(tmp_path, "pass"), 3, tmp_path / "work")
    with pytest.raises(AssertionError, match="TASK not done: `split` .* is empty"):
        split_as_lists(run.split)

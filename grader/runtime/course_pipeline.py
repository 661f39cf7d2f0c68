"""Run a course student's ``run_ml_pipeline.py`` ``__main__`` on stand-ins, to see its split.

The course starter builds the train/val/test split inside ``__main__`` (its TASK: "create
three keys in the dictionary: train, val and test"), from whatever the student wrote: a
permutation, slicing, scikit-learn's ``train_test_split``. Rather than guess from the text,
the grader runs that ``__main__`` as the student would (``python run_ml_pipeline.py``), with
two stand-ins put in ``sys.modules`` first:

- ``data_prep.HippocampusDatasetLoader.LoadHippocampusData`` returns ``n_volumes`` tiny
  volumes (an object array of dicts, as the course loader returns);
- ``experiments.UNetExperiment.UNetExperiment`` records the split it is given and which of its
  methods the pipeline calls (``run``, ``run_test``), and trains nothing.

Everything else (the student's Config, imports, prints, results.json) runs as written, inside
a temporary working folder. Call only inside a grading test body (a forked child).
"""

from __future__ import annotations

import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

SPLIT_PARTS = ("train", "val", "test")
STAND_IN_SHAPE = (2, 4, 4)  # [X, Y, Z] of each stand-in volume: only the count matters


@dataclass
class PipelineRun:
    """What a course ``__main__`` did with the stand-ins.

    Attributes:
        split: the split given to UNetExperiment, or None when none was built.
        calls: UNetExperiment's methods the pipeline called, in order ("run", "run_test", ...).
        error: the exception that stopped ``__main__`` before UNetExperiment was built, if any.
    """

    split: object = None
    calls: list[str] = field(default_factory=list)
    dataset: object = None
    error: BaseException | None = None


def stand_in_volumes(n_volumes: int) -> np.ndarray:
    """``n_volumes`` volumes as the course loader returns them: a 1-D object array of dicts."""
    data = np.empty(n_volumes, dtype=object)
    for index in range(n_volumes):
        data[index] = {"image": np.zeros(STAND_IN_SHAPE, dtype=np.float32),
                       "seg": np.zeros(STAND_IN_SHAPE, dtype=np.int64),
                       "filename": f"hippocampus_{index + 1:03d}.nii.gz"}
    return data


def _stand_ins(run: PipelineRun, n_volumes: int, out_dir: Path) -> dict[str, ModuleType]:
    """The two stand-in modules, recording into ``run``."""

    class RecordingExperiment:
        """Records the split and the calls; every method does nothing."""

        def __init__(self, config, split, dataset, *args, **kwargs) -> None:
            run.split, run.dataset = split, dataset
            self.out_dir = str(out_dir)
            self.split = split

        def run(self) -> None:
            run.calls.append("run")

        def run_test(self) -> dict:
            run.calls.append("run_test")
            return {"volume_stats": [], "overall": {"mean_dice": 0.0, "mean_jaccard": 0.0}}

        def __getattr__(self, name: str):
            def method(*args, **kwargs):
                run.calls.append(name)
            return method

    loader = ModuleType("data_prep.HippocampusDatasetLoader")
    loader.LoadHippocampusData = lambda *args, **kwargs: stand_in_volumes(n_volumes)
    experiment = ModuleType("experiments.UNetExperiment")
    experiment.UNetExperiment = RecordingExperiment
    return {loader.__name__: loader, experiment.__name__: experiment}


def run_course_main(code, n_volumes: int, work_dir: Path) -> PipelineRun:
    """Run ``run_ml_pipeline.py`` as ``__main__`` over ``n_volumes`` stand-in volumes.

    Args:
        code: the CodeUnderTest (course layout).
        n_volumes: how many volumes the stand-in loader returns.
        work_dir: an empty folder: the working folder and the experiment's out_dir.

    Returns:
        The PipelineRun. An exception raised after UNetExperiment was built (writing
        results.json to a folder of the student's machine, say) is not the split's business
        and is dropped; one raised before it is kept in ``error``.
    """
    run = PipelineRun()
    work_dir.mkdir(parents=True, exist_ok=True)
    saved_modules = {name: sys.modules.get(name) for name in _stand_ins(run, 0, work_dir)}
    sys.modules.update(_stand_ins(run, n_volumes, work_dir))
    if str(code.section2) not in sys.path:
        sys.path.insert(0, str(code.section2))
    saved_cwd, saved_argv = os.getcwd(), sys.argv
    os.chdir(work_dir)
    sys.argv = ["run_ml_pipeline.py"]
    try:
        runpy.run_path(str(code.section2 / "run_ml_pipeline.py"), run_name="__main__")
    except BaseException as err:  # the student's script may raise anything
        if run.split is None:
            run.error = err
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return run


def split_as_lists(split) -> dict[str, list[int]]:
    """The student's split as {part: [int index, ...]}.

    Raises:
        AssertionError: naming what is missing or not an index, in the course's words.
    """
    __tracebackhide__ = True
    if not isinstance(split, dict) or not split:
        raise AssertionError("TASK not done: `split` in run_ml_pipeline.py's __main__ is empty; "
                             "create its keys \"train\", \"val\" and \"test\", each holding "
                             "indices of volumes")
    missing = [part for part in SPLIT_PARTS if part not in split]
    if missing:
        raise AssertionError(f"`split` in run_ml_pipeline.py has keys {sorted(map(str, split))}; "
                             f"it lacks {missing} (expected \"train\", \"val\" and \"test\")")
    parts = {}
    for part in SPLIT_PARTS:
        try:
            values = np.asarray(list(split[part])).ravel()
        except TypeError as err:
            raise AssertionError(f"split[\"{part}\"] is {type(split[part]).__name__}, not an "
                                 "array or list of volume indices") from err
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise AssertionError(f"split[\"{part}\"] holds {values.dtype} values, not integer "
                                 "indices of volumes (UNetExperiment indexes the data with "
                                 "them: dataset[split[\"train\"]])")
        parts[part] = [int(value) for value in values]
    return parts

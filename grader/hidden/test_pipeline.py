"""Hidden tests of run_ml_pipeline.py: Config's paths (TASK S2.01) and the split (TASK S2.02)."""

from __future__ import annotations

import os
from pathlib import PurePath

import pytest

from grader.runtime.checks import check
from grader.runtime.course_pipeline import run_course_main, split_as_lists
from grader.runtime.fixtures import import_pipeline_module, is_course, kit_function
from grader.runtime.layout import COURSE_CONFIG_PLACEHOLDERS

SPLIT_PARTS = ("train", "val", "test")
N_VOLUMES = 260  # the course data set's size


def split_of(code, n_volumes: int, seed: int) -> dict[str, list[int]]:
    pipeline = code.import_module("run_ml_pipeline")
    split_indices = kit_function(pipeline, "split_indices", "S2.02",
                                 "split_indices(n_volumes, seed)")
    split = split_indices(n_volumes, seed)
    check(set(split) >= set(SPLIT_PARTS), "the split must have keys train, val and test")
    return {part: [int(index) for index in split[part]] for part in SPLIT_PARTS}


@pytest.mark.task("S2.01", points=1)
def test_config_root_dir_is_the_folder_above_images_and_labels(code):
    config = import_pipeline_module(code).Config()
    root, results = str(config.root_dir), str(config.test_results_dir)
    if is_course(code):
        check(root.strip() not in COURSE_CONFIG_PLACEHOLDERS
              and results.strip() not in COURSE_CONFIG_PLACEHOLDERS,
              "TASK not done: Config still holds the starter's placeholder paths")
    check(PurePath(root.rstrip("/\\")).name not in ("images", "labels"),
          "Config().root_dir must be the folder that holds images/ and labels/, not one of them")
    check(os.path.normpath(root) != os.path.normpath(results),
          "Config().test_results_dir must not be the data folder root_dir")


@pytest.mark.layout("course")
@pytest.mark.task("S2.02", points=1)
def test_course_pipeline_trains_then_tests_on_its_split(code, tmp_path):
    run = run_course_main(code, N_VOLUMES, tmp_path)
    check(run.error is None and run.split is not None,
          "run_ml_pipeline.py's __main__ must build UNetExperiment(c, split, data)")
    split_as_lists(run.split)
    check("run" in run.calls,
          "run_ml_pipeline.py's __main__ never calls exp.run() (is it commented out?): the "
          "model it tests would be untrained")
    check("run_test" in run.calls and run.calls.index("run") < run.calls.index("run_test"),
          "run_ml_pipeline.py's __main__ must call exp.run_test() after exp.run()")


@pytest.mark.layout("course")
@pytest.mark.task("S2.02", points=1)
def test_course_split_holds_integer_indices_of_the_loaded_data(code, tmp_path):
    run = run_course_main(code, N_VOLUMES, tmp_path)
    check(run.split is not None, "run_ml_pipeline.py's __main__ must build "
                                 "UNetExperiment(c, split, data)")
    split = split_as_lists(run.split)
    check(all(0 <= index < N_VOLUMES for part in split.values() for index in part)
          and all(split.values()),
          "each part of the split must be a non-empty list of indices into the loaded data")
    check(run.dataset is not None and len(run.dataset) == N_VOLUMES,
          "UNetExperiment must get every loaded volume as its dataset")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.02", points=1)
def test_split_is_seeded(code):
    first, again = split_of(code, N_VOLUMES, seed=3), split_of(code, N_VOLUMES, seed=3)
    check(first == again, "the same seed must give the same split")
    others = [split_of(code, N_VOLUMES, seed=seed) for seed in (4, 5, 6)]
    check(any(other != first for other in others), "different seeds must give different splits")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.02", points=1)
def test_split_is_random_and_sixty_twenty_twenty(code):
    for seed in (0, 1):
        split = split_of(code, N_VOLUMES, seed)
        sizes = [len(split[part]) for part in SPLIT_PARTS]
        check(abs(sizes[0] - 0.6 * N_VOLUMES) <= 2 and abs(sizes[1] - 0.2 * N_VOLUMES) <= 2
              and abs(sizes[2] - 0.2 * N_VOLUMES) <= 2,
              "the split must hold about 60 % train, 20 % val and 20 % test volumes")
        check(len(set().union(*map(set, split.values()))) == N_VOLUMES == sum(sizes),
              "the split must hold every volume exactly once")
        check(sorted(split["train"]) != list(range(sizes[0])),
              "the split must be random, not the first 60 % of the volumes in file order")

"""Public tests of run_ml_pipeline.py: Config's paths (TASK S2.01) and the split (TASK S2.02).

In the kit's layout the split is graded through ``split_indices(n_volumes, seed)``: it must
return ``{"train": [...], "val": [...], "test": [...]}``, lists of volume indices. In the
course starter's layout it is the ``split`` that ``__main__`` builds and gives to
UNetExperiment (see grader/runtime/course_pipeline.py).
"""

from __future__ import annotations

import pytest

from grader.runtime.checks import check
from grader.runtime.course_pipeline import SPLIT_PARTS, run_course_main, split_as_lists
from grader.runtime.fixtures import import_pipeline_module, is_course, kit_function
from grader.runtime.layout import COURSE_CONFIG_PLACEHOLDERS

COURSE_VOLUME_COUNTS = (10, 17, 260)  # a few volumes, an odd count, the curated set's size
# The course asks for no particular proportions; students use 60/20/20, 70/15/15, 80/10/10.
MIN_TRAIN_SHARE, MAX_TRAIN_SHARE = 0.5, 0.9
MIN_HELD_OUT_SHARE = 0.05  # val and test each hold at least this share of the volumes


def course_split(code, n_volumes: int, tmp_path) -> dict[str, list[int]]:
    """The split a course ``__main__`` builds over ``n_volumes`` stand-in volumes."""
    __tracebackhide__ = True
    run = run_course_main(code, n_volumes, tmp_path / f"run_{n_volumes}")
    if run.error is not None:
        raise AssertionError(f"run_ml_pipeline.py's __main__ stopped before building "
                             f"UNetExperiment: {type(run.error).__name__}: {run.error}")
    if run.split is None:
        raise AssertionError("run_ml_pipeline.py's __main__ never builds "
                             "UNetExperiment(c, split, data)")
    return split_as_lists(run.split)


def split_of(code, n_volumes: int, seed: int = 0) -> dict[str, list[int]]:
    pipeline = code.import_module("run_ml_pipeline")
    split_indices = kit_function(pipeline, "split_indices", "S2.02",
                                 "split_indices(n_volumes, seed)")
    split = split_indices(n_volumes, seed)
    assert set(split) >= set(SPLIT_PARTS), f"the split's keys are {sorted(split)}"
    return {part: [int(index) for index in split[part]] for part in SPLIT_PARTS}


@pytest.mark.task("S2.01", points=1)
def test_config_paths_are_non_empty_strings(code):
    config = import_pipeline_module(code).Config()
    for name in ("root_dir", "test_results_dir"):
        value = getattr(config, name, None)
        assert isinstance(value, str) and value.strip(), (
            f"Config().{name} must be a non-empty str (use str() of a Path), got {value!r}")
        if is_course(code):
            assert value.strip() not in COURSE_CONFIG_PLACEHOLDERS, (
                f"TASK not done: Config().{name} still holds the starter's placeholder "
                f"{value!r}; set it to your folder")


@pytest.mark.layout("course")
@pytest.mark.task("S2.02", points=2)
def test_course_split_is_disjoint_and_covers_every_volume(code, tmp_path):
    for n_volumes in COURSE_VOLUME_COUNTS:
        split = course_split(code, n_volumes, tmp_path)
        for first, second in ((0, 1), (0, 2), (1, 2)):
            a, b = SPLIT_PARTS[first], SPLIT_PARTS[second]
            shared = sorted(set(split[a]) & set(split[b]))
            assert not shared, (
                f"with {n_volumes} volumes, split[\"{a}\"] and split[\"{b}\"] share "
                f"{len(shared)} volumes (indices {shared[:5]}...): the parts overlap, so the "
                "model is tested on volumes it trained on; put each volume in one part only")
        indices = sorted(index for part in SPLIT_PARTS for index in split[part])
        assert len(indices) == len(set(indices)), (
            f"with {n_volumes} volumes, a part of the split lists a volume twice")
        left_out = sorted(set(range(n_volumes)) - set(indices))
        outside = sorted(set(indices) - set(range(n_volumes)))
        assert not outside, (f"with {n_volumes} volumes, the split holds indices {outside[:5]} "
                             f"that are not indices of the loaded data (0..{n_volumes - 1})")
        assert not left_out, (f"with {n_volumes} volumes, the split leaves out "
                              f"{len(left_out)} volumes (indices {left_out[:5]}...); every "
                              "volume belongs to train, val or test")


@pytest.mark.layout("course")
@pytest.mark.task("S2.02", points=1)
def test_course_split_trains_on_most_volumes_and_holds_out_val_and_test(code, tmp_path):
    for n_volumes in COURSE_VOLUME_COUNTS:
        sizes = {part: len(indices) for part, indices in
                 course_split(code, n_volumes, tmp_path).items()}
        total = max(sum(sizes.values()), 1)
        check(MIN_TRAIN_SHARE <= sizes["train"] / total <= MAX_TRAIN_SHARE,
              f"with {n_volumes} volumes the split's sizes are {sizes}: train should hold "
              f"{MIN_TRAIN_SHARE:.0%} to {MAX_TRAIN_SHARE:.0%} of the volumes (60/20/20, "
              "70/15/15 and 80/10/10 are all fine)")
        check(all(sizes[part] >= max(1, MIN_HELD_OUT_SHARE * total) for part in ("val", "test")),
              f"with {n_volumes} volumes the split's sizes are {sizes}: val and test each "
              f"need at least {MIN_HELD_OUT_SHARE:.0%} of the volumes")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.02", points=2)
def test_split_is_disjoint_and_covers_every_volume(code):
    for n_volumes in (3, 10, 17, 260):
        split = split_of(code, n_volumes)
        indices = [index for part in SPLIT_PARTS for index in split[part]]
        assert len(indices) == len(set(indices)), (
            f"{n_volumes} volumes: a volume is in two parts of the split: "
            f"{ {part: len(split[part]) for part in SPLIT_PARTS} }")
        assert sorted(indices) == list(range(n_volumes)), (
            f"{n_volumes} volumes: the split must hold every index 0..{n_volumes - 1} once")
        assert all(split[part] for part in SPLIT_PARTS), (
            f"{n_volumes} volumes: no part of the split may be empty")


@pytest.mark.layout("kit")
@pytest.mark.task("S2.02", points=1)
def test_split_of_ten_volumes_is_six_two_two(code):
    sizes = {part: len(indices) for part, indices in split_of(code, 10).items()}
    assert sizes == {"train": 6, "val": 2, "test": 2}

"""Public tests of run_ml_pipeline.py: Config's paths (TASK S2.01) and the split (TASK S2.02).

The split is graded through ``split_indices(n_volumes, seed)``: it must return
``{"train": [...], "val": [...], "test": [...]}``, lists of volume indices.
"""

from __future__ import annotations

import pytest

from grader.fixtures import kit_function

SPLIT_PARTS = ("train", "val", "test")


def split_of(code, n_volumes: int, seed: int = 0) -> dict[str, list[int]]:
    pipeline = code.import_module("run_ml_pipeline")
    split_indices = kit_function(pipeline, "split_indices", "S2.02",
                                 "split_indices(n_volumes, seed)")
    split = split_indices(n_volumes, seed)
    assert set(split) >= set(SPLIT_PARTS), f"the split's keys are {sorted(split)}"
    return {part: [int(index) for index in split[part]] for part in SPLIT_PARTS}


@pytest.mark.task("S2.01", points=1)
def test_config_paths_are_non_empty_strings(code):
    config = code.import_module("run_ml_pipeline").Config()
    for name in ("root_dir", "test_results_dir"):
        value = getattr(config, name, None)
        assert isinstance(value, str) and value.strip(), (
            f"Config().{name} must be a non-empty str (use str() of a Path), got {value!r}")


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


@pytest.mark.task("S2.02", points=1)
def test_split_of_ten_volumes_is_six_two_two(code):
    sizes = {part: len(indices) for part, indices in split_of(code, 10).items()}
    assert sizes == {"train": 6, "val": 2, "test": 2}

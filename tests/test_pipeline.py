"""run_ml_pipeline: configuration, split, session folder, resume and the real-data run."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

import run_ml_pipeline as pipeline
import settings_table
from experiments.settings import (
    PRESETS,
    Settings,
    build_settings,
    flag_fields,
    format_value,
    resolve_settings,
)
from utils.volume_stats import Dice3d, Jaccard3d

SESSION_FILES = ("config.json", "split.json", "model.pth", "results.json", "pipeline.log",
                 "checkpoints/last.pth", "checkpoints/best.pth")
E2E_MIN_DICE = 0.80  # whole-hippocampus mean test Dice the short CPU run must reach


def test_config_defaults_are_the_course_gpu_setting():
    config = pipeline.Config()
    assert (config.name, config.n_epochs, config.learning_rate, config.batch_size,
            config.patch_size, config.initial_filter_size) == ("Basic_unet", 10, 0.0002, 8, 64, 64)


# The course starter's Config: these seven attributes and nothing else.
COURSE_CONFIG = {"name": "Basic_unet", "root_dir": "data/TrainingSet", "n_epochs": 3,
                 "learning_rate": 0.001, "batch_size": 4, "patch_size": 64,
                 "test_results_dir": "out/results"}
# Flags of the command line that are not settings.
COMMAND_FLAGS = {"-h", "--help", "--preset", "--resume", "--dry-run"}


def test_every_flag_of_the_command_line_is_a_setting_of_the_settings_block():
    parser = pipeline.build_parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    from_block = {item.metadata["flag"] for item in flag_fields()}
    negations = {"--no-" + item.metadata["flag"][2:] for item in flag_fields()
                 if item.metadata["type"] is bool}
    assert flags - COMMAND_FLAGS == from_block | negations
    for action in parser._actions:
        if action.dest in {item.name for item in fields(Settings)}:
            assert action.help.endswith(")") and "(default: " in action.help, action.help


def test_every_setting_has_a_help_text():
    for item in fields(Settings):
        assert item.metadata["help"].strip(), f"{item.name} has no help text"


def test_a_course_config_with_its_seven_attributes_gets_every_other_setting_by_default():
    resolved = resolve_settings(SimpleNamespace(**COURSE_CONFIG, student_extra="kept out"))
    assert {name: getattr(resolved, name) for name in COURSE_CONFIG} == COURSE_CONFIG
    defaults = Settings()
    for item in fields(Settings):
        if item.name not in COURSE_CONFIG:
            assert getattr(resolved, item.name) == getattr(defaults, item.name), item.name


def test_a_saved_config_json_resolves_to_the_settings_it_was_written_from():
    settings = build_settings(None, "cpu", out_dir="session")
    saved = json.loads(json.dumps(settings.to_dict()))  # the patch pair becomes a JSON list
    assert resolve_settings(saved) == settings


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_value_is_one_its_flag_accepts(preset):
    for name, value in PRESETS[preset].items():
        [item] = [item for item in fields(Settings) if item.name == name]
        kind = item.metadata["type"]
        if kind not in (None, bool):
            assert kind(format_value(value)) == value, name


def test_build_settings_refuses_a_name_that_is_not_a_setting():
    with pytest.raises(TypeError, match="not a setting: patch_width"):
        build_settings(None, patch_width=48)


def test_the_readme_settings_table_is_the_one_the_settings_block_writes():
    readme = settings_table.README.read_text(encoding="utf-8")
    assert settings_table.readme_with_table(readme, settings_table.generated_table()) == readme, (
        "README.md's settings table is stale: run python tools/settings_table.py")


def test_explicit_flags_override_the_cpu_preset():
    config, resume = pipeline.parse_config(["--preset", "cpu", "--epochs", "3", "--filters", "4"])
    assert resume is None
    assert (config.n_epochs, config.initial_filter_size) == (3, 4)
    assert config.batch_size == pipeline.PRESETS["cpu"]["batch_size"]


@pytest.mark.parametrize("argv", [["--epoch", "3"], ["--epochs", "three"],
                                  ["--patch-size", "60"], ["--preset", "tpu"]])
def test_mistyped_or_invalid_overrides_are_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        pipeline.parse_config(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("n_volumes", [3, 10, 208])
def test_split_is_disjoint_covers_every_volume_and_is_60_20_20(n_volumes):
    split = pipeline.split_indices(n_volumes, seed=0)
    parts = [set(split[name]) for name in ("train", "val", "test")]
    assert sum(map(len, parts)) == n_volumes
    assert set().union(*parts) == set(range(n_volumes))
    assert all(parts), "every part needs at least one volume"
    if n_volumes >= 100:
        assert abs(len(parts[0]) / n_volumes - 0.6) < 0.01
        assert abs(len(parts[1]) / n_volumes - 0.2) < 0.01


def test_split_depends_on_the_seed_only():
    assert pipeline.split_indices(50, seed=1) == pipeline.split_indices(50, seed=1)
    assert pipeline.split_indices(50, seed=1) != pipeline.split_indices(50, seed=2)


def test_split_of_fewer_than_three_volumes_raises():
    with pytest.raises(ValueError, match="at least 3"):
        pipeline.split_indices(2, seed=0)


def tiny_argv(data_dir: Path, results_dir: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--test-results-dir", str(results_dir),
            "--filters", "4", "--num-downs", "2", "--patch-size", "32", "--epochs", "2",
            "--batch-size", "4",
            "--device", "cpu", "--tensorboard-dir", str(results_dir / "runs"), *extra]


def only_session(results_dir: Path) -> Path:
    [session] = [path for path in results_dir.iterdir() if path.name != "runs"]
    return session


def test_a_run_writes_every_file_of_its_session_folder(tmp_path, synthetic_root):
    results = pipeline.main(tiny_argv(synthetic_root, tmp_path / "out"))
    session = only_session(tmp_path / "out")
    for name in SESSION_FILES:
        assert (session / name).is_file(), f"{name} missing"
    split = json.loads((session / "split.json").read_text())
    [test_case] = split["test"]
    assert (session / "predictions" / test_case).is_file()
    assert json.loads((session / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["config"]["n_epochs"] == 2 and results["device"] == "cpu"


def test_resume_latest_finishes_an_interrupted_run(tmp_path, synthetic_root, monkeypatch):
    from experiments.UNetExperiment import UNetExperiment
    original_validate = UNetExperiment.validate
    calls = {"n": 0}

    def validate_then_die(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original_validate(self)

    monkeypatch.setattr(UNetExperiment, "validate", validate_then_die)
    results_dir = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        pipeline.main(tiny_argv(synthetic_root, results_dir))
    session = only_session(results_dir)
    assert not (session / "results.json").exists()
    results = pipeline.main(["--test-results-dir", str(results_dir), "--resume", "latest"])
    assert [row["epoch"] for row in results["history"]] == [1, 2]
    assert results["config"]["out_dir"] == str(session)


def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        pipeline.parse_config(["--test-results-dir", str(tmp_path), "--resume", "latest"])
    assert "no session folder" in capsys.readouterr().err


@pytest.mark.real_data
@pytest.mark.slow
def test_short_cpu_run_on_real_data_reaches_dice_and_keeps_its_results_consistent(
        tmp_path, real_data_dir):
    results_dir = tmp_path / "out"
    results = pipeline.main(["--preset", "cpu", "--data-dir", str(real_data_dir),
                             "--test-results-dir", str(results_dir), "--max-volumes", "100",
                             "--epochs", "6", "--batch-size", "16",
                             "--tensorboard-dir", str(tmp_path / "runs")])
    session = only_session(results_dir)
    for name in SESSION_FILES:
        assert (session / name).is_file(), f"{name} missing"
    stats = results["volume_stats"]
    assert results["overall"]["mean_dice"] >= E2E_MIN_DICE
    for metric in ("dice", "jaccard", "dice_anterior", "dice_posterior"):
        assert results["overall"][f"mean_{metric}"] == pytest.approx(
            np.mean([row[metric] for row in stats]))
    # Dice recomputed from the saved predictions against the raw labels.
    split = json.loads((session / "split.json").read_text())
    assert sorted(row["filename"] for row in stats) == sorted(split["test"])
    for row in stats:
        pred = np.asarray(nib.load(session / "predictions" / row["filename"]).dataobj)
        seg = np.asarray(nib.load(real_data_dir / "labels" / row["filename"]).dataobj)
        assert row["dice"] == pytest.approx(Dice3d(pred, seg))
        assert row["jaccard"] == pytest.approx(Jaccard3d(pred, seg))

"""run_ml_pipeline's command line and session folders: clear errors, dependable resume,
valid JSON; the skeleton's scripts end in one line; one rule for where the data is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, synthetic_pair, write_nifti

import hippocampus_kit
import run_ml_pipeline as pipeline
from experiments import settings
from experiments.UNetExperiment import LAST_CHECKPOINT, NonFiniteLossError, UNetExperiment

SCRIPT_TIMEOUT_S = 120


def tiny_argv(data_dir: Path, results_dir: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--test-results-dir", str(results_dir),
            "--filters", "4", "--num-downs", "2", "--patch-size", "32", "--epochs", "1",
            "--batch-size", "4", "--device", "cpu",
            "--tensorboard-dir", str(results_dir.parent / "runs"), *extra]


def sessions(results_dir: Path) -> list[Path]:
    return sorted(results_dir.iterdir()) if results_dir.is_dir() else []


@pytest.mark.parametrize("flag, value, allowed", [
    ("--batch-size", "0", ">= 1"), ("--batch-size", "eight", ">= 1"),
    ("--epochs", "0", ">= 1"), ("--epochs", "-1", ">= 1"),
    ("--learning-rate", "0", "> 0"), ("--learning-rate", "nan", "> 0"),
    ("--ema-decay", "1", "[0, 1)"), ("--ema-decay", "-0.5", "[0, 1)"),
    ("--seed", "-1", "[0, 4294967295]"), ("--filters", "0", ">= 1"),
    ("--device", "gpu", "auto, cpu, mps, cuda or cuda:N"),
    ("--dice-weight", "-1", ">= 0"), ("--max-volumes", "2", ">= 3"),
    ("--empty-fraction", "1.5", "[0, 1]"),
])
def test_an_invalid_flag_value_is_one_error_line_naming_flag_and_allowed_values(
        flag, value, allowed, capsys):
    with pytest.raises(SystemExit) as exit_info:
        pipeline.parse_config([flag, value])
    assert exit_info.value.code == 2
    [error] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert flag in error and allowed in error and "Traceback" not in error


@pytest.mark.parametrize("layout", ["missing", "empty", "no-usable-pair"])
def test_a_missing_or_empty_data_folder_is_one_error_line_and_leaves_no_session_folder(
        tmp_path, capsys, layout):
    data = tmp_path / "data"
    if layout != "missing":
        (data / "images").mkdir(parents=True)
        (data / "labels").mkdir()
    if layout == "no-usable-pair":  # an image without its label
        write_nifti(data / "images" / "case_0.nii.gz", synthetic_pair()[0])
    with pytest.raises(SystemExit) as exit_info:
        pipeline.main(tiny_argv(data, tmp_path / "out"))
    assert exit_info.value.code == 2
    assert "--data-dir: " in capsys.readouterr().err
    assert sessions(tmp_path / "out") == []


def test_two_runs_in_the_same_second_with_one_name_get_two_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(settings.time, "strftime", lambda fmt: "2026-01-01_120000")
    first = settings.new_session(tmp_path, "Basic_unet")
    second = settings.new_session(tmp_path, "Basic_unet")
    assert first != second and first.is_dir() and second.is_dir()
    assert sorted([first, second]) == [first, second]  # "latest" is the second


def test_a_session_with_a_test_volume_without_hippocampus_writes_null_not_nan(
        tmp_path):
    data = tmp_path / "data"
    for case in range(3):  # no hippocampus anywhere: sensitivity is undefined
        image, _ = synthetic_pair(seed=case)
        write_nifti(data / "images" / f"case_{case}.nii.gz", image)
        write_nifti(data / "labels" / f"case_{case}.nii.gz", np.zeros(image.shape, np.uint8))
    pipeline.main(tiny_argv(data, tmp_path / "out"))
    [session] = sessions(tmp_path / "out")

    def refuse(constant: str):
        raise ValueError(f"results.json holds a bare {constant}")

    results = json.loads((session / "results.json").read_text(), parse_constant=refuse)
    [row] = results["volume_stats"]
    assert row["sensitivity"] is None and results["overall"]["mean_sensitivity"] is None
    assert row["dice"] is not None


def test_write_json_refuses_an_infinite_number(tmp_path):
    with pytest.raises(ValueError):
        pipeline.write_json({"dice": float("inf")}, tmp_path / "bad.json")


def interrupted_session(data: Path, results_dir: Path, monkeypatch, *extra: str) -> Path:
    """A session killed after its first epoch's checkpoint, in its second epoch."""
    original_validate = UNetExperiment.validate
    calls = {"n": 0}

    def validate_then_die(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original_validate(self)

    with monkeypatch.context() as patch:
        patch.setattr(UNetExperiment, "validate", validate_then_die)
        before = set(sessions(results_dir))
        with pytest.raises(KeyboardInterrupt):
            pipeline.main(tiny_argv(data, results_dir, "--epochs", "2", *extra))
    [session] = set(sessions(results_dir)) - before
    return session


def test_resume_latest_refuses_a_newest_session_without_checkpoint_instead_of_an_older_one(
        tmp_path, synthetic_root, monkeypatch, capsys):
    results_dir = tmp_path / "out"
    older = interrupted_session(synthetic_root, results_dir, monkeypatch)
    newest = results_dir / "2999-01-01_000000_Basic_unet"  # killed in its first epoch
    newest.mkdir()
    (newest / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        pipeline.parse_config(["--test-results-dir", str(results_dir), "--resume", "latest"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert str(newest) in error and "no checkpoints/last.pth" in error
    assert not (older / "results.json").exists()


def test_resume_refuses_a_finished_session(tmp_path, synthetic_root, capsys):
    pipeline.main(tiny_argv(synthetic_root, tmp_path / "out"))
    with pytest.raises(SystemExit):
        pipeline.parse_config(["--test-results-dir", str(tmp_path / "out"), "--resume", "latest"])
    assert "is finished" in capsys.readouterr().err


def test_resume_with_flags_that_change_the_saved_settings_is_an_error_naming_them(
        tmp_path, synthetic_root, monkeypatch, capsys):
    results_dir = tmp_path / "out"
    interrupted_session(synthetic_root, results_dir, monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        pipeline.parse_config(["--test-results-dir", str(results_dir), "--resume", "latest",
                               "--epochs", "6", "--filters", "32"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--epochs sets n_epochs to 6, the session has 2" in error
    assert "--filters sets initial_filter_size to 32, the session has 4" in error
    config, _ = pipeline.parse_config(["--test-results-dir", str(results_dir), "--resume", "latest",
                                       "--epochs", "2", "--device", "cpu"])  # same, or movable
    assert config.n_epochs == 2


def test_resumed_run_reports_the_training_seconds_of_both_parts(tmp_path, synthetic_root,
                                                                 monkeypatch):
    results_dir = tmp_path / "out"
    session = interrupted_session(synthetic_root, results_dir, monkeypatch)
    first_part = torch.load(session / "checkpoints" / LAST_CHECKPOINT,
                            weights_only=True)["train_seconds"]
    results = pipeline.main(["--test-results-dir", str(results_dir), "--resume", "latest"])
    assert results["train_seconds"] > first_part > 0


def test_a_non_finite_loss_stops_the_run_without_results(tmp_path, synthetic_root,
                                                         monkeypatch):
    load = pipeline.LoadHippocampusData

    def load_then_damage(*args, **kwargs):
        volumes = load(*args, **kwargs)
        for volume in volumes:  # as if a damaged image had reached training
            volume["image"][:, 0, 0] = np.nan
        return volumes

    monkeypatch.setattr(pipeline, "LoadHippocampusData", load_then_damage)
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1"):
        pipeline.main(tiny_argv(synthetic_root, tmp_path / "out"))
    [session] = sessions(tmp_path / "out")
    assert not (session / "results.json").exists()


def run_script(script: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script.name, *args], cwd=script.parent,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S,
                          env={**os.environ, **(env or {})})


def test_skeleton_pipeline_help_prints_the_help_not_the_unfinished_task():
    result = run_script(REPO / "section2" / "src" / "run_ml_pipeline.py", "--help")
    assert result.returncode == 0, result.stderr
    assert "--epochs" in result.stdout and "--resume" in result.stdout
    assert "Unfinished TASK" not in result.stdout + result.stderr


def test_skeleton_eda_ends_with_the_one_line_task_message(synthetic_root, tmp_path):
    result = run_script(REPO / "section1" / "eda.py", "--data-dir", str(synthetic_root),
                        "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Unfinished TASK S1.") and "eda.py" in line


def test_pipeline_eda_and_grader_find_the_data_by_one_rule_honouring_hippocampus_data(
        tmp_path, synthetic_root, monkeypatch):
    monkeypatch.setenv(hippocampus_kit.DATA_ENV, str(synthetic_root))
    from grader.runtime.submission import find_real_data
    sys.path.insert(0, str(REPO / "solution" / "section1"))
    import eda
    assert hippocampus_kit.find_training_set() == synthetic_root
    assert Path(pipeline.Config().root_dir) == synthetic_root
    assert eda.find_data_dir() == synthetic_root
    assert find_real_data() == synthetic_root


def test_without_any_data_the_pipeline_names_the_kits_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(hippocampus_kit.DATA_ENV, str(tmp_path / "nothing"))
    monkeypatch.setattr(hippocampus_kit, "DATA_DEST", tmp_path / "kit" / "data")
    monkeypatch.setattr(hippocampus_kit, "SHARED_TRAINING_SET", tmp_path / "shared")
    assert hippocampus_kit.find_training_set() is None
    assert Path(pipeline.Config().root_dir) == tmp_path / "kit" / "data" / "TrainingSet"
    assert "solution" not in pipeline.Config().root_dir

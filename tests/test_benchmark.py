"""tools/benchmark.py: one row of figures per device and configuration."""

from __future__ import annotations

import re

import benchmark

# The printed rows: figures rounded for reading (a tiny synthetic epoch may print 0.0 s).
ROW = re.compile(r"^cpu +cpu +16 +64x48 +32 +[\d.]+ +[\d.]+ +[\d.]+ est\. +[\d.]+$")
PREDICT = re.compile(r"^predict\.py on cpu, cpu model: [\d.]+ ms per scan \(median\), of which "
                     r"the agent [\d.]+ ms; read, write labels and overlay -?[\d.]+ ms$")


def test_benchmark_measures_positive_unrounded_figures_and_prints_one_row_per_config(
        synthetic_root, tmp_path, capsys):
    args = benchmark.parse_args(["--data-dir", str(synthetic_root), "--devices", "cpu",
                                 "--configs", "cpu", "--steps", "2",
                                 "--out-dir", str(tmp_path / "bench")])
    [row], [predicted] = benchmark.measure(args)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["device", "config", "filters", "patch"]
    [printed] = [line for line in lines[2:] if line.startswith("cpu")]
    assert ROW.match(printed), printed
    assert printed == benchmark.format_row(row)
    # Durations of real work are never zero; only their rounded print can read 0.0.
    assert row["slices_per_second"] > 0 and row["ms_per_volume"] > 0
    assert row["seconds_per_epoch"] > 0 and row["epoch_estimated"]
    [predict_line] = [line for line in lines if line.startswith("predict.py")]
    assert PREDICT.match(predict_line), predict_line
    assert predict_line == benchmark.format_predict_row(predicted)
    assert predicted["ms_per_scan"] > 0 and predicted["agent_ms_per_scan"] > 0
    assert len(list((tmp_path / "bench" / "predict" / "labels").iterdir())) == 3

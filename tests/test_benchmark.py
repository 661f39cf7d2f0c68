"""tools/benchmark.py: one row of figures per device and configuration."""

from __future__ import annotations

import re
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import benchmark  # noqa: E402

ROW = re.compile(r"^cpu +cpu +16 +64x48 +32 +[\d.]+ +([\d.]+) +([\d.]+) est\. +([\d.]+)$")
PREDICT = re.compile(r"^predict\.py on cpu, cpu model: ([\d.]+) ms per scan \(median\), of which "
                     r"the agent ([\d.]+) ms; read, write labels and overlay (-?[\d.]+) ms$")


def test_benchmark_prints_positive_figures_for_the_cpu_preset(synthetic_root, tmp_path, capsys):
    assert benchmark.main(["--data-dir", str(synthetic_root), "--devices", "cpu",
                           "--configs", "cpu", "--steps", "2",
                           "--out-dir", str(tmp_path / "bench")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["device", "config", "filters", "patch"]
    [row] = [line for line in lines[2:] if line.startswith("cpu")]
    match = ROW.match(row)
    assert match, row
    slices_per_second, seconds_per_epoch, ms_per_volume = map(float, match.groups())
    assert slices_per_second > 0 and seconds_per_epoch > 0 and ms_per_volume > 0
    [predict_line] = [line for line in lines if line.startswith("predict.py")]
    match = PREDICT.match(predict_line)
    assert match, predict_line
    command_ms, agent_ms, _ = map(float, match.groups())
    assert command_ms > 0 and agent_ms > 0
    assert len(list((tmp_path / "bench" / "predict" / "labels").iterdir())) == 3

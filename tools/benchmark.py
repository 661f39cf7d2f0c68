"""Measure the pipeline's speed on real data: loading, training and inference.

Prints, per device (CPU, and CUDA where present) and per configuration (the ``cpu`` preset
and the course's ``gpu`` setting): training throughput in slices/s (median over timed steps),
seconds per epoch (a timed epoch with --full-epoch, else estimated from the throughput and
marked "est."), inference ms per volume (median over volumes) and data-loading seconds.
Then, per device, ``predict.py``'s time per scan (median over scans: read the NIfTI, segment,
write labels and overlay) with the first configuration's model, and the agent's share of it.

    python tools/benchmark.py                      # needs data/TrainingSet or --data-dir
    python tools/benchmark.py --full-epoch --configs cpu
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO / "solution" / "section2" / "src"
WARMUP_STEPS = 3  # first steps pay for allocation and kernel selection; not timed
INFERENCE_VOLUMES = 20  # volumes timed for the inference median
PREDICT_SCANS = 20  # scans timed for predict.py's median


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC,
                        help=f"section 2 source folder to measure (default: {DEFAULT_SRC})")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding images/ and labels/ (default: as the pipeline)")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="devices to measure (default: cpu, plus cuda when available)")
    parser.add_argument("--configs", nargs="+", default=["cpu", "gpu"],
                        help="pipeline presets to measure (default: cpu gpu)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "dist" / "benchmark",
                        help="scratch folder for the runs' files (default: dist/benchmark)")
    parser.add_argument("--steps", type=int, default=10,
                        help="timed training steps per configuration (default: 10)")
    parser.add_argument("--full-epoch", action="store_true",
                        help="time one whole training epoch instead of estimating it "
                             "(default: False)")
    return parser.parse_args(argv)


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work, so that wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_steps(experiment, steps: int) -> float:
    """Median slices/s over ``steps`` one-batch epochs of ``experiment.train()``, after a warm-up.

    Each call draws one batch through the experiment's own loader and sampler and runs its
    training step (loss, backward pass, optimiser and schedule), so the figure is the
    pipeline's own, data loading included.
    """
    experiment.config.max_batches_per_epoch = 1
    slices = min(experiment.config.batch_size, len(experiment.train_loader.sampler))
    rates = []
    for step in range(WARMUP_STEPS + steps):
        synchronize(experiment.device)
        start = time.perf_counter()
        experiment.train()
        synchronize(experiment.device)
        if step >= WARMUP_STEPS:
            rates.append(slices / (time.perf_counter() - start))
    experiment.config.max_batches_per_epoch = None
    return statistics.median(rates)


def time_inference(experiment, data: list[dict]) -> float:
    """Median milliseconds to predict one whole test volume."""
    agent = experiment.inference_agent()
    volumes = [data[i]["image"] for i in experiment.split["test"][:INFERENCE_VOLUMES]]
    agent.single_volume_inference(volumes[0])  # warm-up
    times = []
    for volume in volumes:
        synchronize(experiment.device)
        start = time.perf_counter()
        agent.single_volume_inference(volume)
        synchronize(experiment.device)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def time_predict(experiment, data_dir: Path, out_dir: Path) -> tuple[float, float]:
    """Median ms per scan of predict.py's work, and of its agent alone, on the same scans.

    The command's path: the model loaded once from model.pth, then per scan read, segment,
    write the labels NIfTI and the overlay PNG (``predict.segment_scan``). The agent alone is
    ``single_volume_inference_unpadded`` on the scan already in memory.
    """
    import nibabel as nib
    import numpy as np

    import predict
    from inference.UNetInferenceAgent import UNetInferenceAgent
    from networks.model_file import MODEL_FILE

    experiment.save_model_parameters()
    agent = UNetInferenceAgent(parameter_file_path=experiment.out_dir / MODEL_FILE,
                               device=experiment.device)
    scans = sorted((data_dir / "images").glob("*.nii.gz"))[:PREDICT_SCANS]
    predict.segment_scan(scans[0], agent, out_dir)  # warm-up
    command, alone = [], []
    for scan in scans:
        synchronize(experiment.device)
        start = time.perf_counter()
        predict.segment_scan(scan, agent, out_dir)
        synchronize(experiment.device)
        command.append(1000 * (time.perf_counter() - start))
        volume = np.asanyarray(nib.load(scan).dataobj)
        start = time.perf_counter()
        agent.single_volume_inference_unpadded(volume)
        synchronize(experiment.device)
        alone.append(1000 * (time.perf_counter() - start))
    return statistics.median(command), statistics.median(alone)


def measure(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """Measure every device and configuration of ``args``, printing one row as each finishes.

    Returns:
        The training rows, one dict per device and configuration: ``device``, ``config``,
        ``filters``, ``patch`` (rows, columns), ``batch_size``, ``load_seconds``,
        ``slices_per_second``, ``seconds_per_epoch``, ``epoch_estimated`` (True unless
        --full-epoch) and ``ms_per_volume``; then predict.py's rows, one per device (its first
        configuration's model): ``device``, ``config``, ``ms_per_scan``, ``agent_ms_per_scan``.
        All unrounded.
    """
    sys.path.insert(0, str(args.src.resolve()))
    import run_ml_pipeline as pipeline
    from data_prep.HippocampusDatasetLoader import LoadHippocampusData
    from experiments.settings import build_settings
    from experiments.UNetExperiment import UNetExperiment
    from utils.utils import patch_shape

    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    data_dir = args.data_dir or Path(pipeline.Config().root_dir)
    loaded = {}  # (rows, columns) of the patch -> (volumes, seconds to load them)
    rows = []
    predicting = {}  # device -> the first configuration's experiment, for predict.py
    print(f"data: {data_dir}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'device':8} {'config':7} {'filters':>7} {'patch':>7} {'batch':>5} {'load s':>6} "
          f"{'slices/s':>9} {'s/epoch':>12} {'ms/volume':>10}")
    for device in devices:
        for preset in args.configs:
            config = build_settings(pipeline.Config(), preset, device=device,
                                    out_dir=str(args.out_dir),
                                    tensorboard_dir=str(args.out_dir / "runs"))
            patch = patch_shape(config.patch_size)
            if patch not in loaded:
                start = time.perf_counter()
                volumes = LoadHippocampusData(data_dir, *patch)
                loaded[patch] = volumes, time.perf_counter() - start
            data, load_seconds = loaded[patch]
            split = pipeline.split_indices(len(data), seed=0)
            torch.manual_seed(0)
            experiment = UNetExperiment(config, split, data)
            rate = time_training_steps(experiment, args.steps)
            if args.full_epoch:
                synchronize(experiment.device)
                epoch_start = time.perf_counter()
                experiment.train()
                synchronize(experiment.device)
                epoch_seconds = time.perf_counter() - epoch_start
            else:  # the slices one epoch draws (all, or the sampler's share) at that rate
                epoch_seconds = len(experiment.train_loader.sampler) / rate
            row = {"device": device, "config": preset, "filters": config.initial_filter_size,
                   "patch": patch, "batch_size": config.batch_size,
                   "load_seconds": load_seconds, "slices_per_second": rate,
                   "seconds_per_epoch": epoch_seconds, "epoch_estimated": not args.full_epoch,
                   "ms_per_volume": time_inference(experiment, data)}
            rows.append(row)
            predicting.setdefault(device, (preset, experiment))
            print(format_row(row), flush=True)
    predict_rows = []
    for device, (preset, experiment) in predicting.items():
        command, alone = time_predict(experiment, data_dir, args.out_dir / "predict")
        predict_rows.append({"device": device, "config": preset, "ms_per_scan": command,
                             "agent_ms_per_scan": alone})
        print(format_predict_row(predict_rows[-1]), flush=True)
    return rows, predict_rows


def format_row(row: dict) -> str:
    """One printed row of ``measure``'s training figures, rounded for reading."""
    epoch = f"{row['seconds_per_epoch']:.1f}" + (" est." if row["epoch_estimated"] else "")
    return (f"{row['device']:8} {row['config']:7} {row['filters']:7d} "
            f"{row['patch'][0]:>3}x{row['patch'][1]:<3} {row['batch_size']:5d} "
            f"{row['load_seconds']:6.2f} {row['slices_per_second']:9.1f} {epoch:>12} "
            f"{row['ms_per_volume']:10.1f}")


def format_predict_row(row: dict) -> str:
    """One printed line of ``measure``'s predict.py figures, rounded for reading."""
    return (f"predict.py on {row['device']}, {row['config']} model: {row['ms_per_scan']:.1f} ms "
            f"per scan (median), of which the agent {row['agent_ms_per_scan']:.1f} ms; read, "
            f"write labels and overlay {row['ms_per_scan'] - row['agent_ms_per_scan']:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the figures and returns the exit status (0)."""
    measure(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())

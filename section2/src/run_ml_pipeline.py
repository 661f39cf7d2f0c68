"""Train a 2D U-Net on the hippocampus volumes, test it, and write one session folder.

Run from this folder: ``python run_ml_pipeline.py`` (course default, meant for a GPU) or
``python run_ml_pipeline.py --preset cpu`` (a laptop finishes it in minutes). Every run writes
``OUT_DIR/<time>_<name>/`` with config.json, split.json, model.pth, checkpoints/,
results.json, predictions/<case>.nii.gz and pipeline.log; TensorBoard logs go to runs/.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from experiments.UNetExperiment import LAST_CHECKPOINT, UNetExperiment

logger = logging.getLogger("run_ml_pipeline")

HERE = Path(__file__).resolve().parent
COURSE_DATA = Path("data") / "TrainingSet"  # where tools/get_data.py puts the data
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2}  # by volume; the test set gets the remaining 20 %


def find_data_dir() -> Path:
    """The nearest ``data/TrainingSet`` above this file (the repository's), else the first guess."""
    for folder in HERE.parents:
        if (folder / COURSE_DATA).is_dir():
            return folder / COURSE_DATA
    return HERE.parents[1] / COURSE_DATA


class Config:
    """Every setting of a run. The defaults are the course's GPU setting."""

    def __init__(self) -> None:
        self.name = "Basic_unet"  # suffix of the session folder's name
        # TASK S2.01: Set the data and results paths: root_dir and test_results_dir, as str.
        #   Why: the loader reads the image/label pairs from root_dir (the folder holding
        #   images/ and labels/); every run writes its session folder under test_results_dir.
        #   root_dir: find_data_dir() finds the data that tools/get_data.py wrote.
        #   test_results_dir: the results/ folder inside section2/out/ (HERE is this file's
        #   folder, section2/src/). --data-dir and --out-dir override both.
        #   Hint: pathlib.Path's / operator and .parent; str() of a Path.
        #   Check: pytest grader -k S2.01  (Config().root_dir ends in data/TrainingSet)
        raise NotImplementedError("TASK S2.01: Set the data and results paths: root_dir and test_results_dir, as str.")
        self.n_epochs = 10  # passes over the training slices (course default, on a GPU)
        self.learning_rate = 0.0002  # Adam's peak rate in the one-cycle schedule
        self.batch_size = 8  # slices per training step
        self.patch_size = 64  # px; in-plane pad size, must divide by 2**num_downs (64 / 16)
        self.patch_width = None  # px; axis-2 pad size of a patch that is not square; None: square
        self.initial_filter_size = 64  # filters of the first U-Net level (course default)
        self.num_downs = 4  # poolings: 64 px -> 4 px bottleneck
        self.seed = 0  # one seed for the split, initial weights and shuffling
        self.device = "auto"  # "auto" picks CUDA when available, else the CPU
        self.max_volumes = None  # load at most this many volumes (quick runs); None: all
        self.max_batches_per_epoch = None  # stop each epoch early (dry runs); None: all
        self.tensorboard_dir = "runs"  # TensorBoard logs, one sub-folder per session
        self.out_dir = None  # this run's session folder; set by the pipeline
        self.empty_slice_fraction = 1.0  # share of the all-background slices drawn per epoch
        self.dice_loss_weight = 0.0  # weight of a soft-Dice term added to the cross-entropy
        self.augment = False  # random rotation, scaling, shift and gamma of training slices
        self.ema_decay = 0.0  # per-step decay of a moving average of the weights; 0: none

    def to_dict(self) -> dict:
        """All settings as a JSON-ready dict."""
        return dict(vars(self))


PRESETS = {
    # The course's own setting: 64 filters for 10 epochs; minutes on a GPU, hours on a CPU.
    "gpu": {},
    # About 4.5 minutes on 2 CPU cores: 16 filters and 3 poolings; 64 x 48 slices, as MSD Task04
    # volumes are at most 47 px along axis 2 (64 x 64 adds a third of pure padding); every
    # slice that shows hippocampus but only a quarter of the empty ones per epoch; a soft-Dice
    # term; augmentation and a moving average of the weights, which keep validation Dice
    # rising in the last epochs.
    "cpu": {"initial_filter_size": 16, "num_downs": 3, "patch_width": 48, "n_epochs": 9,
            "batch_size": 32, "learning_rate": 0.004, "empty_slice_fraction": 0.25,
            "dice_loss_weight": 1.0, "augment": True, "ema_decay": 0.99},
    # One batch per epoch on a few volumes: checks the wiring in well under a minute.
    "dry-run": {"initial_filter_size": 8, "n_epochs": 1, "max_volumes": 10,
                "max_batches_per_epoch": 1, "device": "cpu"},
}

# flag -> (Config attribute, type, help); a bool gives the pair --flag / --no-flag
OVERRIDES = {
    "--data-dir": ("root_dir", str, "folder holding images/ and labels/"),
    "--out-dir": ("test_results_dir", str, "folder that receives the session folders"),
    "--epochs": ("n_epochs", int, "training epochs"),
    "--batch-size": ("batch_size", int, "slices per training step"),
    "--learning-rate": ("learning_rate", float, "peak learning rate of the one-cycle schedule"),
    "--patch-size": ("patch_size", int, "in-plane pad size in px, divisible by 2**num_downs"),
    "--patch-width": ("patch_width", int, "axis-2 pad size in px when not --patch-size"),
    "--filters": ("initial_filter_size", int, "filters of the first U-Net level"),
    "--num-downs": ("num_downs", int, "U-Net poolings"),
    "--seed": ("seed", int, "random seed of split, weights and shuffling"),
    "--device": ("device", str, "auto, cpu, cuda or cuda:N"),
    "--max-volumes": ("max_volumes", int, "load at most this many volumes"),
    "--tensorboard-dir": ("tensorboard_dir", str, "TensorBoard log folder"),
    "--name": ("name", str, "suffix of the session folder name"),
    "--empty-fraction": ("empty_slice_fraction", float,
                         "share of the all-background slices trained on per epoch, in [0, 1]"),
    "--dice-weight": ("dice_loss_weight", float, "weight of the soft-Dice loss term"),
    "--augment": ("augment", bool, "rotate, scale, shift and gamma-correct training slices"),
    "--ema-decay": ("ema_decay", float, "decay of the weights' moving average, 0: none"),
}


def parse_config(argv: list[str] | None = None) -> tuple[Config, Path | None]:
    """Build the run's Config from the defaults, a preset, and command-line overrides.

    Returns:
        (config, session folder to resume or None).
    """
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="gpu",
                        help="a named setting; explicit flags override it (default: gpu)")
    for flag, (attribute, kind, text) in OVERRIDES.items():
        text = f"{text} (default: {getattr(defaults, attribute)})"
        if kind is bool:  # --flag / --no-flag
            parser.add_argument(flag, dest=attribute, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(flag, dest=attribute, type=kind, default=None, help=text)
    parser.add_argument("--resume", metavar="SESSION", default=None,
                        help="continue an interrupted run: its session folder, or 'latest' "
                             "for the newest one in the out dir (default: None)")
    parser.add_argument("--dry-run", action="store_true",
                        help="same as --preset dry-run (default: False)")
    args = parser.parse_args(argv)

    config = Config()
    preset = "dry-run" if args.dry_run else args.preset
    for attribute, value in PRESETS[preset].items():
        setattr(config, attribute, value)
    for attribute, _, _ in OVERRIDES.values():
        if getattr(args, attribute) is not None:
            setattr(config, attribute, getattr(args, attribute))
    multiple = 2 ** config.num_downs
    for flag, size in (("--patch-size", config.patch_size), ("--patch-width", config.patch_width)):
        if size is not None and size % multiple:
            parser.error(f"{flag} {size} must be divisible by 2**num_downs = {multiple}")
    if not 0.0 <= config.empty_slice_fraction <= 1.0:
        parser.error(f"--empty-fraction {config.empty_slice_fraction} must be in [0, 1]")
    resume = None
    if args.resume is not None:
        resume = find_session(Path(config.test_results_dir), args.resume)
        if resume is None:
            parser.error(f"--resume {args.resume}: no session folder with "
                         f"checkpoints/{LAST_CHECKPOINT} found")
        saved = json.loads((resume / "config.json").read_text())
        # The resumed run keeps its settings; only where the data and the device are may move.
        keep = {name: getattr(config, name) for name in ("root_dir", "device")
                if getattr(args, name) is not None}
        for attribute, value in {**saved, **keep}.items():
            setattr(config, attribute, value)
    return config, resume


def find_session(results_dir: Path, name: str) -> Path | None:
    """The session folder named ``name`` ("latest": the newest in ``results_dir``)."""
    if name == "latest":
        sessions = sorted(results_dir.glob(f"*/checkpoints/{LAST_CHECKPOINT}"))
        return sessions[-1].parents[1] if sessions else None
    session = Path(name)
    return session if (session / "checkpoints" / LAST_CHECKPOINT).is_file() else None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) once, at the start of the run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_indices(n_volumes: int, seed: int) -> dict[str, list[int]]:
    """A seeded random 60/20/20 split of volume indices into train, val and test.

    Args:
        n_volumes: number of loaded volumes (at least 3).
        seed: seed of the permutation.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``: disjoint lists of indices that
        together cover range(n_volumes), each sorted.

    Raises:
        ValueError: when there are fewer than 3 volumes.
    """
    if n_volumes < 3:
        raise ValueError(f"need at least 3 volumes for train, val and test, got {n_volumes}")
    # TASK S2.02: Split the volume indices at random into train (60 %), val and test (20 %).
    #   Why: a model is judged on volumes it never saw. Split by volume, never by slice:
    #   neighbouring slices of one volume are nearly identical, so a slice split leaks.
    #   Out: {"train": [...], "val": [...], "test": [...]}: sorted lists of ints, disjoint,
    #   together exactly range(n_volumes), none empty; the same seed gives the same split.
    #   Hint: np.random.default_rng(seed).permutation, then cut it with np.split.
    #   Check: pytest grader -k S2.02  (10 volumes split into 6, 2 and 2)
    raise NotImplementedError("TASK S2.02: Split the volume indices at random into train (60 %), val and test (20 %).")


def split_from_names(names: dict[str, list[str]], data: list[dict]) -> dict[str, list[int]]:
    """Map a saved split of file names back to indices into ``data``.

    Raises:
        ValueError: when a file of the saved split was not loaded.
    """
    index = {volume["filename"]: i for i, volume in enumerate(data)}
    missing = sorted(set().union(*names.values()) - index.keys())
    if missing:
        raise ValueError(f"the saved split names files that were not loaded: {missing[:5]}")
    return {part: [index[name] for name in files] for part, files in names.items()}


def write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` as indented JSON."""
    path.write_text(json.dumps(obj, indent=2) + "\n")


def setup_logging(log_file: Path) -> None:
    """Send INFO logs to stderr and to ``log_file``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=[logging.StreamHandler(), logging.FileHandler(log_file)],
                        force=True)


def main(argv: list[str] | None = None) -> dict:
    """Run the pipeline end to end and return the results dict written to results.json."""
    start = time.perf_counter()
    c, resume = parse_config(argv)
    session = resume or Path(c.test_results_dir) / f"{time.strftime('%Y-%m-%d_%H%M%S')}_{c.name}"
    session.mkdir(parents=True, exist_ok=True)
    c.out_dir = str(session)
    setup_logging(session / "pipeline.log")
    seed_everything(c.seed)
    logger.info("config: %s", json.dumps(c.to_dict()))

    data = LoadHippocampusData(c.root_dir, y_shape=c.patch_size,
                               z_shape=c.patch_width or c.patch_size, max_volumes=c.max_volumes)
    if resume:
        split = split_from_names(json.loads((session / "split.json").read_text()), data)
    else:
        split = split_indices(len(data), c.seed)
        write_json(c.to_dict(), session / "config.json")
        write_json({part: [data[i]["filename"] for i in indices]
                    for part, indices in split.items()}, session / "split.json")
    logger.info("split by volume: %s", {part: len(indices) for part, indices in split.items()})

    exp = UNetExperiment(c, split, data, resume_from=session / "checkpoints" / LAST_CHECKPOINT
                         if resume else None)
    logger.info("training on %s, session folder %s", exp.device, session)
    exp.run()
    results = exp.run_test()
    results.update({"config": c.to_dict(), "device": str(exp.device),
                    "train_seconds": exp.train_seconds,
                    "wall_time_seconds": time.perf_counter() - start,
                    "history": exp.history})
    write_json(results, session / "results.json")
    overall = results["overall"]
    print(f"test volumes: {len(split['test'])} | mean Dice {overall['mean_dice']:.4f} | "
          f"mean Jaccard {overall['mean_jaccard']:.4f} | results: {session / 'results.json'}")
    return results


def unfinished_task(err: NotImplementedError) -> str | None:
    """One line naming the TASK, file and function that raised ``err``; None if no TASK stub.

    The student skeleton's stubs raise ``NotImplementedError("TASK <id>: <what to do>")``.
    """
    task, _, summary = str(err).partition(": ")
    if not task.startswith("TASK "):
        return None
    frame = list(traceback.walk_tb(err.__traceback__))[-1][0]
    file = Path(frame.f_code.co_filename).resolve()
    where = file.relative_to(HERE) if file.is_relative_to(HERE) else file
    return f"Unfinished {task} in {where}, {frame.f_code.co_qualname}(): {summary}"


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except NotImplementedError as err:
        line = unfinished_task(err)
        if line is None:
            raise
        sys.exit(line)

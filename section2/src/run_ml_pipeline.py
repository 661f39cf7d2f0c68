# Generated from solution/section2/src/run_ml_pipeline.py by tools/make_skeleton.py; edit that file, then run the tool.
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
import math
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from experiments.UNetExperiment import LAST_CHECKPOINT, NonFiniteLossError, UNetExperiment

logger = logging.getLogger("run_ml_pipeline")

HERE = Path(__file__).resolve().parent
KIT_MODULE = Path("tools") / "hippocampus_kit.py"  # the kit's rule for where the data is
COURSE_DATA = Path("data") / "TrainingSet"  # the course layout, outside a kit (a grader's copy)
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2}  # by volume; the test set gets the remaining 20 %
MIN_VOLUMES = 3  # one each for train, val and test
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
SESSION_TIME_FORMAT = "%Y-%m-%d_%H%M%S"
SESSION_NAME = re.compile(r"\d{4}-\d{2}-\d{2}_\d{6}_")  # how every session folder's name starts
# Settings a resumed run may change: where the data, the device and the logs are.
MOVABLE_ON_RESUME = ("root_dir", "device", "test_results_dir", "tensorboard_dir")


def import_kit() -> ModuleType | None:
    """The kit's ``tools/hippocampus_kit.py`` above this folder, or None outside a kit."""
    for folder in HERE.parents:
        if (folder / KIT_MODULE).is_file():
            if str(folder / KIT_MODULE.parent) not in sys.path:
                sys.path.insert(0, str(folder / KIT_MODULE.parent))
            import hippocampus_kit
            return hippocampus_kit
    return None


def find_data_dir() -> Path:
    """The data folder by the kit's one rule (``HIPPOCAMPUS_DATA``, ``data/TrainingSet``, a
    shared copy; see tools/hippocampus_kit.py), else the kit's ``data/TrainingSet``. Outside
    a kit: ``data/TrainingSet`` beside ``section2/``."""
    kit = import_kit()
    return kit.training_set_dir() if kit is not None else HERE.parents[1] / COURSE_DATA


class Config:
    """Every setting of a run. The defaults are the course's GPU setting."""

    def __init__(self) -> None:
        self.name = "Basic_unet"  # suffix of the session folder's name
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
        # TASK S2.01: Set the data and results paths: root_dir and test_results_dir, as str.
        #   Why: the loader reads the image/label pairs from root_dir (the folder holding
        #   images/ and labels/); every run writes its session folder under test_results_dir.
        #   root_dir: find_data_dir() finds the data (tools/get_data.py writes it).
        #   test_results_dir: the results/ folder inside section2/out/ (HERE is this file's
        #   folder, section2/src/). --data-dir and --out-dir override both.
        #   Hint: pathlib.Path's / operator and .parent; str() of a Path.
        #   Check: pytest grader -k S2.01  (Config().root_dir ends in TrainingSet)
        raise NotImplementedError("TASK S2.01: Set the data and results paths: root_dir and test_results_dir, as str.")

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


def checked(kind: type, allowed: Callable[[float], bool], description: str) -> Callable:
    """An argparse ``type`` that converts a flag's text with ``kind`` and refuses values
    outside ``allowed``, naming the allowed ones: argparse then prints one line, exit 2."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {description}") from None
        if not (math.isfinite(value) and allowed(value)):
            raise argparse.ArgumentTypeError(f"{text}: expected {description}")
        return value

    parse.__name__ = description
    return parse


def device_name(text: str) -> str:
    """An argparse ``type`` for --device: auto, cpu, mps, cuda or cuda:N."""
    if not DEVICE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected auto, cpu, mps, cuda or cuda:N")
    return text


POSITIVE_INT = checked(int, lambda value: value >= 1, "a whole number >= 1")
POSITIVE_FLOAT = checked(float, lambda value: value > 0, "a number > 0")
NON_NEGATIVE_FLOAT = checked(float, lambda value: value >= 0, "a number >= 0")
FRACTION = checked(float, lambda value: 0 <= value <= 1, "a number in [0, 1]")
DECAY = checked(float, lambda value: 0 <= value < 1, "a number in [0, 1), 0 for none")
SEED = checked(int, lambda value: 0 <= value <= MAX_SEED, f"a whole number in [0, {MAX_SEED}]")
VOLUME_COUNT = checked(int, lambda value: value >= MIN_VOLUMES,
                       f"a whole number >= {MIN_VOLUMES} (train, val and test)")

# flag -> (Config attribute, type, help); a bool gives the pair --flag / --no-flag
OVERRIDES = {
    "--data-dir": ("root_dir", str, "folder holding images/ and labels/"),
    "--out-dir": ("test_results_dir", str, "folder that receives the session folders"),
    "--epochs": ("n_epochs", POSITIVE_INT, "training epochs"),
    "--batch-size": ("batch_size", POSITIVE_INT, "slices per training step"),
    "--learning-rate": ("learning_rate", POSITIVE_FLOAT,
                        "peak learning rate of the one-cycle schedule"),
    "--patch-size": ("patch_size", POSITIVE_INT,
                     "in-plane pad size in px, divisible by 2**num_downs"),
    "--patch-width": ("patch_width", POSITIVE_INT, "axis-2 pad size in px when not --patch-size"),
    "--filters": ("initial_filter_size", POSITIVE_INT, "filters of the first U-Net level"),
    "--num-downs": ("num_downs", POSITIVE_INT, "U-Net poolings"),
    "--seed": ("seed", SEED, "random seed of split, weights and shuffling"),
    "--device": ("device", device_name, "auto, cpu, mps, cuda or cuda:N"),
    "--max-volumes": ("max_volumes", VOLUME_COUNT, "load at most this many volumes"),
    "--tensorboard-dir": ("tensorboard_dir", str, "TensorBoard log folder"),
    "--name": ("name", str, "suffix of the session folder name"),
    "--empty-fraction": ("empty_slice_fraction", FRACTION,
                         "share of the all-background slices trained on per epoch, in [0, 1]"),
    "--dice-weight": ("dice_loss_weight", NON_NEGATIVE_FLOAT,
                      "weight of the soft-Dice loss term, >= 0"),
    "--augment": ("augment", bool, "rotate, scale, shift and gamma-correct training slices"),
    "--ema-decay": ("ema_decay", DECAY, "decay of the weights' moving average in [0, 1), 0: none"),
}


def config_defaults() -> Config:
    """Config's defaults for the help texts. In the student skeleton, Config's last lines
    (the paths, TASK S2.01) may be unfinished: --help still lists every other default."""
    defaults = Config.__new__(Config)
    try:
        Config.__init__(defaults)
    except NotImplementedError:
        logger.debug("Config() is unfinished; --help shows its paths as unset")
    return defaults


def build_parser() -> argparse.ArgumentParser:
    """The command line: a preset, flags that override Config, --resume and --dry-run."""
    defaults = config_defaults()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], allow_abbrev=False,
        usage="%(prog)s [--preset NAME] [--resume SESSION] [flags]  (--help lists them)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="a named setting; explicit flags override it (default: gpu)")
    for flag, (attribute, kind, text) in OVERRIDES.items():
        text = f"{text} (default: {getattr(defaults, attribute, 'unset')})"
        if kind is bool:  # --flag / --no-flag
            parser.add_argument(flag, dest=attribute, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(flag, dest=attribute, type=kind, default=None, help=text)
    parser.add_argument("--resume", metavar="SESSION", default=None,
                        help="continue an interrupted run with its own settings: its session "
                             "folder, or 'latest' for the newest session folder in the out "
                             "dir, which must have a checkpoint and no results.json yet; only "
                             "--data-dir, --device, --out-dir and --tensorboard-dir may "
                             "change (default: None)")
    parser.add_argument("--dry-run", action="store_true",
                        help="same as --preset dry-run (default: False)")
    return parser


def parse_config(argv: list[str] | None = None) -> tuple[Config, Path | None]:
    """Build the run's Config from the defaults, a preset, and command-line overrides.

    On --resume, the session's saved config.json is the config; a flag or preset that would
    change a saved setting (other than MOVABLE_ON_RESUME) is an error naming it.

    Returns:
        (config, session folder to resume or None).

    Raises:
        SystemExit: with status 2 and one line on stderr for an invalid flag or session.
    """
    parser = build_parser()
    args = parser.parse_args(argv)

    config = Config()
    preset = "dry-run" if args.dry_run else args.preset or "gpu"
    explicit = {}  # attribute -> (what the user wrote, value)
    if args.dry_run or args.preset is not None:
        explicit.update({attribute: (f"--preset {preset}", value)
                         for attribute, value in PRESETS[preset].items()})
    for flag, (attribute, _, _) in OVERRIDES.items():
        if getattr(args, attribute) is not None:
            explicit[attribute] = (flag, getattr(args, attribute))
    for attribute, value in {**PRESETS[preset], **{name: value for name, (_, value)
                                                   in explicit.items()}}.items():
        setattr(config, attribute, value)
    multiple = 2 ** config.num_downs
    for flag, size in (("--patch-size", config.patch_size), ("--patch-width", config.patch_width)):
        if size is not None and size % multiple:
            parser.error(f"{flag} {size} must be divisible by 2**num_downs = {multiple}")
    if str(config.device).startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {config.device}: torch sees no CUDA device here; use auto or cpu")
    resume = None
    if args.resume is not None:
        try:
            resume = find_session(Path(config.test_results_dir), args.resume)
        except FileNotFoundError as err:
            parser.error(f"--resume {args.resume}: {err}")
        saved = json.loads((resume / "config.json").read_text())
        conflicts = [f"{written} sets {attribute} to {value!r}, the session has "
                     f"{saved.get(attribute)!r}"
                     for attribute, (written, value) in explicit.items()
                     if attribute not in MOVABLE_ON_RESUME and saved.get(attribute) != value]
        if conflicts:
            parser.error(f"--resume continues {resume} with its saved settings, but "
                         f"{'; '.join(conflicts)}. Drop those flags, or start a new run")
        moved = {name: getattr(config, name) for name in MOVABLE_ON_RESUME if name in explicit}
        for attribute, value in {**saved, **moved}.items():
            setattr(config, attribute, value)
    return config, resume


def find_session(results_dir: Path, name: str) -> Path:
    """The session folder to resume: ``name``, or for "latest" the newest in ``results_dir``.

    "latest" means the newest session, even when it cannot be resumed: a run killed in its
    first epoch is not silently passed over for an older one.

    Raises:
        FileNotFoundError: when there is no such session, it has no checkpoint (it stopped
            before its first epoch ended), or it is finished (it has a results.json).
    """
    if name == "latest":
        sessions = sorted(folder for folder in results_dir.glob("*")
                          if folder.is_dir() and SESSION_NAME.match(folder.name))
        if not sessions:
            raise FileNotFoundError(f"no session folder in {results_dir}")
        session = sessions[-1]
    else:
        session = Path(name)
        if not (session / "config.json").is_file():
            raise FileNotFoundError(f"{session} is not a session folder (no config.json)")
    if not (session / "checkpoints" / LAST_CHECKPOINT).is_file():
        raise FileNotFoundError(f"the session {session} has no checkpoints/{LAST_CHECKPOINT}: "
                                "it stopped before its first epoch ended, so start a new run"
                                + (" (or name an older session folder)" if name == "latest"
                                   else ""))
    if (session / "results.json").is_file():
        raise FileNotFoundError(f"the session {session} is finished (it has results.json); "
                                "nothing to resume")
    return session


def new_session(results_dir: Path, name: str) -> Path:
    """Create and return a new, empty session folder ``<time>_<name>`` in ``results_dir``;
    ``<time>_<name>-2`` (-3, ...) when a run started in the same second took that name."""
    stamp = time.strftime(SESSION_TIME_FORMAT)
    results_dir.mkdir(parents=True, exist_ok=True)
    attempt = 1
    while True:
        session = results_dir / (f"{stamp}_{name}" + (f"-{attempt}" if attempt > 1 else ""))
        try:
            session.mkdir()  # atomic: of two runs, only one creates it
            return session
        except FileExistsError:
            attempt += 1


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


def json_ready(value):
    """``value`` with every NaN float replaced by None (JSON's null), recursively.

    NaN marks a metric that is undefined for a volume (sensitivity without hippocampus);
    json.dumps would write it as a bare ``NaN``, which is not JSON.
    """
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` as indented JSON, NaN as null.

    Raises:
        ValueError: when ``obj`` holds an infinite float (JSON has none; no metric is one).
    """
    path.write_text(json.dumps(json_ready(obj), indent=2, allow_nan=False) + "\n")


def setup_logging(log_file: Path | None) -> None:
    """Send INFO logs to stderr and to ``log_file`` (None: stderr only)."""
    handlers = [logging.StreamHandler()] + ([logging.FileHandler(log_file)] if log_file else [])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)


def load_data(c: Config) -> list[dict]:
    """The volumes of ``c.root_dir`` (see LoadHippocampusData).

    Raises:
        SystemExit: with status 2 and one line naming the folder when it is missing or holds
            no usable image/label pair.
    """
    try:
        return LoadHippocampusData(c.root_dir, y_shape=c.patch_size,
                                   z_shape=c.patch_width or c.patch_size,
                                   max_volumes=c.max_volumes)
    except FileNotFoundError as err:
        build_parser().error(f"--data-dir: {err}")


def main(argv: list[str] | None = None) -> dict:
    """Run the pipeline end to end and return the results dict written to results.json.

    A start that fails before training (no data, too few volumes) removes its new session
    folder again; a run stopped later keeps its folder and checkpoints for --resume.

    Raises:
        SystemExit: status 2 for an invalid flag, session or data folder.
        NonFiniteLossError: when training meets a NaN or infinite loss; nothing is tested
            and no results.json is written.
    """
    start = time.perf_counter()
    c, resume = parse_config(argv)
    session = resume or new_session(Path(c.test_results_dir), c.name)
    c.out_dir = str(session)
    try:
        setup_logging(session / "pipeline.log")
        seed_everything(c.seed)
        logger.info("config: %s", json.dumps(c.to_dict()))
        data = load_data(c)
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
    except BaseException:
        if not resume:  # nothing was trained: leave no session folder behind
            setup_logging(None)  # closes pipeline.log
            shutil.rmtree(session, ignore_errors=True)
        raise
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


if __name__ == "__main__":
    kit = import_kit()  # None only for a copy of section2/src outside the kit
    try:
        if kit is None:
            main(sys.argv[1:])
        else:  # an unfinished TASK of the skeleton ends in one line, not a traceback
            kit.run_script(lambda: main(sys.argv[1:]), HERE)
    except NonFiniteLossError as err:
        sys.exit(f"error: {err}")

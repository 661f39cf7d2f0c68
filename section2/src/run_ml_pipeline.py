# Generated from solution/section2/src/run_ml_pipeline.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Train a 2D U-Net on the hippocampus volumes, test it, and write one session folder.

Run from this folder: ``python run_ml_pipeline.py`` (course default, meant for a GPU) or
``python run_ml_pipeline.py --preset cpu`` (a laptop finishes it in minutes). Every run writes
``TEST_RESULTS_DIR/<time>_<name>/`` with config.json, split.json, model.pth, checkpoints/,
results.json, predictions/<case>.nii.gz and pipeline.log; TensorBoard logs go to runs/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import random
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from experiments.settings import (
    DEFAULT_PRESET,
    MIN_VOLUMES,
    PRESETS,
    SESSION_NAME,
    Settings,
    build_settings,
    flag_fields,
    format_value,
    new_session,
)
from experiments.UNetExperiment import LAST_CHECKPOINT, NonFiniteLossError, UNetExperiment
from utils.utils import patch_shape

logger = logging.getLogger("run_ml_pipeline")

HERE = Path(__file__).resolve().parent
KIT_MODULE = Path("tools") / "hippocampus_kit.py"  # the kit's rule for where the data is
COURSE_DATA = Path("data") / "TrainingSet"  # the course layout, outside a kit (a grader's copy)
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2}  # by volume; the test set gets the remaining 20 %
# Settings a resumed run may change: where the data, the device and the logs are.
MOVABLE_ON_RESUME = ("root_dir", "device", "test_results_dir", "tensorboard_dir")


def import_kit() -> ModuleType | None:
    """The kit's ``tools/hippocampus_kit.py`` above this folder, or None outside a kit (a copy
    of section2/src on its own, as a grader makes).

    The kit's one rule for its scripts: the module is loaded by its path with importlib,
    once, under its own name, so every script and test shares one module object and no
    folder is added to sys.path.
    """
    for folder in HERE.parents:
        path = folder / KIT_MODULE
        if path.is_file():
            if KIT_MODULE.stem not in sys.modules:
                spec = importlib.util.spec_from_file_location(KIT_MODULE.stem, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[KIT_MODULE.stem] = module
                spec.loader.exec_module(module)
            return sys.modules[KIT_MODULE.stem]
    return None


def find_data_dir() -> Path:
    """The data folder by the kit's one rule (``HIPPOCAMPUS_DATA``, ``data/TrainingSet``, a
    shared copy; see tools/hippocampus_kit.py), else the kit's ``data/TrainingSet``. Outside
    a kit: ``data/TrainingSet`` beside ``section2/``."""
    kit = import_kit()
    return kit.training_set_dir() if kit is not None else HERE.parents[1] / COURSE_DATA


class Config(Settings):
    """Every setting of a run: the course's GPU setting, with the data and results paths.

    Each setting's default, unit, reason and flag is in experiments/settings.py (``Settings``);
    this class adds where the data and the results are.
    """

    def __init__(self) -> None:
        super().__init__()  # every default of experiments/settings.py
        # TASK S2.01: Set the data and results paths: root_dir and test_results_dir, as str.
        #   Why: the loader reads the image/label pairs from root_dir (the folder holding
        #   images/ and labels/); every run writes its session folder under test_results_dir.
        #   root_dir: find_data_dir() finds the data (tools/get_data.py writes it).
        #   test_results_dir: the results/ folder inside section2/out/ (HERE is this file's
        #   folder, section2/src/). --data-dir and --test-results-dir override both.
        #   Hint: pathlib.Path's / operator and .parent; str() of a Path.
        #   Check: pytest grader -k S2.01  (Config().root_dir ends in TrainingSet)
        raise NotImplementedError("TASK S2.01: Set the data and results paths: root_dir and test_results_dir, as str.")



def config_defaults() -> Config:
    """Config's defaults for the help texts. In the student skeleton, Config's last lines
    (the paths, TASK S2.01) may be unfinished: --help still lists every other default."""
    defaults = Config.__new__(Config)
    try:
        Config.__init__(defaults)
    except NotImplementedError:
        logger.debug("Config() is unfinished; --help shows its paths as None (TASK S2.01)")
    return defaults


def build_parser() -> argparse.ArgumentParser:
    """The command line: a preset, one flag per setting of experiments/settings.py (each
    overrides Config and the preset), --resume and --dry-run."""
    defaults = config_defaults()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], allow_abbrev=False,
        usage="%(prog)s [--preset NAME] [--resume SESSION] [flags]  (--help lists them)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="a named setting; explicit flags override it "
                             f"(default: {DEFAULT_PRESET})")
    for item in flag_fields():
        flag, kind = item.metadata["flag"], item.metadata["type"]
        default = getattr(defaults, item.name)
        text = f"{item.metadata['help']} (default: {format_value(default)})"
        if kind is bool:  # --flag / --no-flag
            parser.add_argument(flag, dest=item.name, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(flag, dest=item.name, type=kind, default=None, help=text)
    parser.add_argument("--resume", metavar="SESSION", default=None,
                        help="continue an interrupted run with its own settings: its session "
                             "folder, or 'latest' for the newest session folder in the test "
                             "results dir, which must have a checkpoint and no results.json "
                             "yet; only --data-dir, --device, --test-results-dir and "
                             "--tensorboard-dir may change (default: None)")
    parser.add_argument("--dry-run", action="store_true",
                        help="same as --preset dry-run (default: False)")
    return parser


def parse_config(argv: list[str] | None = None) -> tuple[Settings, Path | None]:
    """Build the run's settings from Config, a preset, and command-line overrides.

    On --resume, the session's saved config.json is the config; a flag or preset that would
    change a saved setting (other than MOVABLE_ON_RESUME) is an error naming it.

    Returns:
        (settings, session folder to resume or None).

    Raises:
        SystemExit: with status 2 and one line on stderr for an invalid flag or session.
    """
    parser = build_parser()
    args = parser.parse_args(argv)

    preset = "dry-run" if args.dry_run else args.preset
    explicit = {}  # setting -> (what the user wrote, value)
    if preset is not None:
        explicit.update({name: (f"--preset {preset}", value)
                         for name, value in PRESETS[preset].items()})
    for item in flag_fields():
        if getattr(args, item.name) is not None:
            explicit[item.name] = (item.metadata["flag"], getattr(args, item.name))
    config = build_settings(Config(), **{name: value for name, (_, value) in explicit.items()})
    multiple = 2 ** config.num_downs
    if any(size % multiple for size in patch_shape(config.patch_size)):
        parser.error(f"--patch-size {format_value(config.patch_size)}: each size must be "
                     f"divisible by 2**num_downs = {multiple}")
    if str(config.device).startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {config.device}: torch sees no CUDA device here; use auto or cpu")
    resume = None
    if args.resume is not None:
        try:
            resume = find_session(Path(config.test_results_dir), args.resume)
        except FileNotFoundError as err:
            parser.error(f"--resume {args.resume}: {err}")
        saved = build_settings(json.loads((resume / "config.json").read_text()))
        conflicts = [f"{written} sets {name} to {format_value(value)}, the session has "
                     f"{format_value(getattr(saved, name))}"
                     for name, (written, value) in explicit.items()
                     if name not in MOVABLE_ON_RESUME and getattr(saved, name) != value]
        if conflicts:
            parser.error(f"--resume continues {resume} with its saved settings, but "
                         f"{'; '.join(conflicts)}. Drop those flags, or start a new run")
        config = build_settings(saved, **{name: getattr(config, name)
                                          for name in MOVABLE_ON_RESUME if name in explicit})
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
    if n_volumes < MIN_VOLUMES:
        raise ValueError(f"need at least {MIN_VOLUMES} volumes for train, val and test, "
                         f"got {n_volumes}")
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


def load_data(c: Settings) -> list[dict]:
    """The volumes of ``c.root_dir`` (see LoadHippocampusData).

    Raises:
        SystemExit: with status 2 and one line naming the folder when it is missing or holds
            no usable image/label pair.
    """
    try:
        rows, columns = patch_shape(c.patch_size)
        return LoadHippocampusData(c.root_dir, y_shape=rows, z_shape=columns,
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

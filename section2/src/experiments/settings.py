# Generated from solution/section2/src/experiments/settings.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Every setting of a training run, in one commented block, the named presets, and the
session folder a run writes.

A setting is one field of ``Settings``: its default (the course's GPU setting), a comment
with its unit and the reason for the value, its command-line flag and its help text.
Everything else is derived from this block: run_ml_pipeline.py's flags and their
"(default: ...)", the checks of the presets, the settings table of the kit's README
(``settings_table``), and how ``UNetExperiment`` reads any config object, such as the
course's ``Config`` with only its seven attributes (``resolve_settings``). Adding a setting
is one field here.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MIN_VOLUMES = 3  # one each for train, val and test
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
PATCH_TEXT = re.compile(r"(\d+)(?:x(\d+))?")  # "64" (square) or "64x48" (rows x columns)
SESSION_TIME_FORMAT = "%Y-%m-%d_%H%M%S"
SESSION_NAME = re.compile(r"\d{4}-\d{2}-\d{2}_\d{6}_")  # how every session folder's name starts


# -- the argparse types of the flags: each converts a flag's text and refuses bad values ----
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


def patch_size_text(text: str) -> int | tuple[int, int]:
    """An argparse ``type`` for --patch-size: "64" for a square patch, "64x48" for rows x
    columns; every size >= 1 px."""
    match = PATCH_TEXT.fullmatch(text)
    sizes = [int(size) for size in match.groups() if size is not None] if match else [0]
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected px as SIZE or ROWSxCOLUMNS, "
                                         "each a whole number >= 1 (64 or 64x48)")
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


POSITIVE_INT = checked(int, lambda value: value >= 1, "a whole number >= 1")
POSITIVE_FLOAT = checked(float, lambda value: value > 0, "a number > 0")
NON_NEGATIVE_FLOAT = checked(float, lambda value: value >= 0, "a number >= 0")
FRACTION = checked(float, lambda value: 0 <= value <= 1, "a number in [0, 1]")
DECAY = checked(float, lambda value: 0 <= value < 1, "a number in [0, 1), 0 for none")
SEED = checked(int, lambda value: 0 <= value <= MAX_SEED, f"a whole number in [0, {MAX_SEED}]")
VOLUME_COUNT = checked(int, lambda value: value >= MIN_VOLUMES,
                       f"a whole number >= {MIN_VOLUMES} (train, val and test)")


def setting(default: Any, flag: str | None, kind: Callable | None, text: str) -> Any:
    """One field of ``Settings``: its default; its flag (None: no flag, a preset or the
    pipeline sets it); the argparse ``type`` of the flag (``bool`` gives --flag / --no-flag);
    its help text, to which --help adds "(default: ...)"."""
    return field(default=default, metadata={"flag": flag, "type": kind, "help": text})


@dataclass
class Settings:
    """Every setting of a run. The defaults are the course's GPU setting."""

    # -- the course's Config: the run's name, data, results and training schedule ----------
    name: str = setting("Basic_unet", "--name", str,
                        "suffix of the session folder's name")
    # Set by Config (TASK S2.01): the kit's data folder; None outside a Config.
    root_dir: str | None = setting(None, "--data-dir", str,
                                   "folder holding images/ and labels/; Config finds it")
    # Set by Config (TASK S2.01): section2/out/results; None outside a Config.
    test_results_dir: str | None = setting(
        None, "--test-results-dir", str, "folder that receives the session folders; Config sets it")
    n_epochs: int = setting(10, "--epochs", POSITIVE_INT,  # the course's, on a GPU
                            "passes over the training slices")
    learning_rate: float = setting(0.0002, "--learning-rate", POSITIVE_FLOAT,  # the course's
                                   "Adam's peak rate in the one-cycle schedule")
    batch_size: int = setting(8, "--batch-size", POSITIVE_INT,  # the course's
                              "slices per training step")
    # px: 64 holds every MSD Task04 slice and divides by 2**num_downs (64 / 16); a pair
    # (rows, columns) for a patch that is not square.
    patch_size: int | tuple[int, int] = setting(
        64, "--patch-size", patch_size_text,
        "px the slices are padded to: SIZE, or ROWSxCOLUMNS; each divisible by 2**num_downs")
    # -- the kit's additions -------------------------------------------------------------------
    initial_filter_size: int = setting(64, "--filters", POSITIVE_INT,  # the course's U-Net
                                       "filters of the first U-Net level")
    num_downs: int = setting(4, "--num-downs", POSITIVE_INT,  # 64 px -> 4 px bottleneck
                             "U-Net poolings")
    seed: int = setting(0, "--seed", SEED,
                        "one seed for the split, the initial weights and the shuffling")
    device: str = setting("auto", "--device", device_name,
                          "auto (CUDA when available, else the CPU), cpu, mps, cuda or cuda:N")
    max_volumes: int | None = setting(None, "--max-volumes", VOLUME_COUNT,  # quick runs
                                      "load at most this many volumes; None: all")
    max_batches_per_epoch: int | None = setting(None, None, None,  # dry runs
                                                "stop each epoch early; None: all")
    tensorboard_dir: str = setting("runs", "--tensorboard-dir", str,
                                   "TensorBoard logs, one sub-folder per session")
    # The pipeline sets it to the session folder it made; None: the experiment makes one.
    out_dir: str | None = setting(None, None, None,
                                  "this run's session folder, inside test_results_dir")
    empty_slice_fraction: float = setting(
        1.0, "--empty-fraction", FRACTION,  # 1: every slice, as the course
        "share of the all-background slices trained on per epoch")
    dice_loss_weight: float = setting(0.0, "--dice-weight", NON_NEGATIVE_FLOAT,  # 0: the course's
                                      "weight of a soft-Dice term added to the cross-entropy")
    augment: bool = setting(False, "--augment", bool,  # off: the course's
                            "random rotation, scaling, shift and gamma of training slices")
    ema_decay: float = setting(0.0, "--ema-decay", DECAY,  # 0: the course's
                               "per-step decay of a moving average of the weights; 0: none")

    def to_dict(self) -> dict:
        """All settings as a JSON-ready dict (a patch pair becomes a list in JSON)."""
        return asdict(self)


PRESETS = {
    # The course's own setting: 64 filters for 10 epochs; minutes on a GPU, hours on a CPU.
    "gpu": {},
    # About 4.5 minutes on 2 CPU cores: 16 filters and 3 poolings; 64 x 48 slices, as MSD Task04
    # volumes are at most 47 px along axis 2 (64 x 64 adds a third of pure padding); every
    # slice that shows hippocampus but only a quarter of the empty ones per epoch; a soft-Dice
    # term; augmentation and a moving average of the weights, which keep validation Dice
    # rising in the last epochs.
    "cpu": {"initial_filter_size": 16, "num_downs": 3, "patch_size": (64, 48), "n_epochs": 9,
            "batch_size": 32, "learning_rate": 0.004, "empty_slice_fraction": 0.25,
            "dice_loss_weight": 1.0, "augment": True, "ema_decay": 0.99},
    # One batch per epoch on a few volumes: checks the wiring in well under a minute.
    "dry-run": {"initial_filter_size": 8, "n_epochs": 1, "max_volumes": 10,
                "max_batches_per_epoch": 1, "device": "cpu"},
}
DEFAULT_PRESET = "gpu"  # the course's setting: what a run without --preset gets


def resolve_settings(config: object) -> Settings:
    """The settings of any config object, read once.

    Args:
        config: a ``Settings`` (the kit's ``Config`` is one), returned as it is; any other
            object, such as the course starter's ``Config`` with its seven attributes, or a
            mapping (a saved config.json): each setting it has is taken, every other one
            gets its default, and attributes that are not settings are ignored.

    Returns:
        A ``Settings``; a list (JSON's pair) becomes a tuple.
    """
    if isinstance(config, Settings):
        return config
    missing = object()
    values = {}
    for item in fields(Settings):
        value = (config.get(item.name, missing) if isinstance(config, Mapping)
                 else getattr(config, item.name, missing))
        if value is not missing:
            values[item.name] = tuple(value) if isinstance(value, list) else value
    return Settings(**values)


def build_settings(config: object | None = None, preset: str | None = None,
                   **overrides) -> Settings:
    """The one way to build a run's settings: ``config``, then a preset, then overrides.

    Args:
        config: what ``resolve_settings`` takes; None: the defaults.
        preset: a key of ``PRESETS``, or None for none.
        **overrides: settings by name, applied last.

    Returns:
        A new ``Settings``; ``config`` is left unchanged.

    Raises:
        KeyError: when ``preset`` is not a preset.
        TypeError: when an override is not a setting (the message names it).
    """
    base = resolve_settings(Settings() if config is None else config)
    changes = {**(PRESETS[preset] if preset is not None else {}), **overrides}
    unknown = sorted(set(changes) - {item.name for item in fields(Settings)})
    if unknown:
        raise TypeError(f"not a setting: {', '.join(unknown)} (see experiments/settings.py)")
    return Settings(**{**{item.name: getattr(base, item.name) for item in fields(Settings)},
                       **changes})


def flag_fields() -> list:
    """The fields of ``Settings`` that have a command-line flag, in the block's order."""
    return [item for item in fields(Settings) if item.metadata["flag"] is not None]


def format_value(value) -> str:
    """A setting's value as the command line writes it: 64x48 for a patch pair."""
    return "x".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def settings_table() -> str:
    """The README's settings table, in Markdown: one row per setting, the flag, its default
    and each preset's value (blank: the default)."""
    presets = [name for name in PRESETS if name != DEFAULT_PRESET]
    lines = ["| setting | flag | default | " + " | ".join(f"`--preset {name}`"
                                                        for name in presets) + " | what |",
             "|---" * (4 + len(presets)) + "|"]
    for item in fields(Settings):
        flag = item.metadata["flag"]
        flag = (f"`{flag}` / `--no-{flag[2:]}`" if item.metadata["type"] is bool
                else f"`{flag}`" if flag else "(none)")
        values = [f"`{format_value(PRESETS[name][item.name])}`" if item.name in PRESETS[name]
                  else "" for name in presets]
        lines.append(f"| `{item.name}` | {flag} | `{format_value(item.default)}` | "
                     + " | ".join(values) + f" | {item.metadata['help']} |")
    return "\n".join(lines) + "\n"


# -- the session folder: <time>_<name> in test_results_dir --------------------------------
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

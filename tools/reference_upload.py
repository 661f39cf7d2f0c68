"""Build a complete reference upload: the solution's code, a trained session, a filled report.

    python tools/reference_upload.py OUT [--data DIR] [--session DIR] [-- PIPELINE FLAGS]

``OUT`` receives ``section1/`` and ``section2/src`` of the kit's solution, then
``section2/out/`` with a session folder and a report filled in from the template
(``section2/out/README.md``): the table from the session's ``results.json``, a loss figure
from the session's log, a prediction figure from one saved test prediction, and the run's
command, device, time and split. By default it trains with ``--preset cpu`` (test Dice about
0.90 in about 4.5 minutes on 2 idle CPU cores); ``--session DIR`` reuses a finished session
folder instead. Zip ``OUT`` and press "Test Autograder" on Gradescope: it should score 100.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from grader.mutants import copy_solution  # noqa: E402
from grader.runtime import report as checks  # noqa: E402
from grader.runtime.submission import find_real_data  # noqa: E402

DEFAULT_PIPELINE_FLAGS = ("--preset", "cpu")
# One epoch line of the pipeline's log: "epoch   1/9 | train loss 1.4744 | val loss 1.5124 |".
EPOCH_LINE = re.compile(r"epoch\s+(?P<epoch>\d+)/\d+ \| train loss (?P<train>[\d.]+) \| "
                        r"val loss (?P<val>[\d.]+)")
LOG_NAMES = ("pipeline.log", "log.txt")
FIGURES = ("loss.png", "prediction.png")  # drawn here; the third is the session's own
AGREEMENT_FIGURE = "volume_agreement.png"  # UNetExperiment.VOLUME_AGREEMENT_PLOT
FIGURE_INCHES = (6, 4)


class UploadError(RuntimeError):
    """The reference upload cannot be built; the message says why."""


def train(src: Path, data: Path, out: Path, flags: list[str]) -> tuple[Path, str, float]:
    """Run the pipeline in ``src``; return (session folder, command, seconds)."""
    command = [sys.executable, "run_ml_pipeline.py", *flags, "--data-dir", str(data),
               "--test-results-dir", str(out / "results")]
    started = time.monotonic()
    log = out / "results" / "pipeline_stdout.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stream:
        completed = subprocess.run(command, cwd=src, stdout=stream, stderr=subprocess.STDOUT,
                                   check=False)
    if completed.returncode != 0:
        raise UploadError(f"the pipeline failed (exit {completed.returncode}); see {log}")
    sessions = sorted(path.parent for path in (out / "results").glob("*/results.json"))
    if not sessions:
        raise UploadError(f"the pipeline wrote no session folder under {out / 'results'}")
    shown = "python run_ml_pipeline.py " + " ".join(flags)
    return sessions[-1], shown, time.monotonic() - started


def loss_figure(session: Path, path: Path) -> None:
    """Train and validation loss per epoch, from the session's log."""
    text = "\n".join((session / name).read_text(errors="replace") for name in LOG_NAMES
                     if (session / name).is_file())
    epochs = [(int(m["epoch"]), float(m["train"]), float(m["val"]))
              for m in EPOCH_LINE.finditer(text)]
    if not epochs:
        raise UploadError(f"no epoch lines in {session}/{' or '.join(LOG_NAMES)}")
    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    axes.plot([e for e, _, _ in epochs], [t for _, t, _ in epochs], label="train")
    axes.plot([e for e, _, _ in epochs], [v for _, _, v in epochs], label="validation")
    axes.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    axes.legend()
    figure.savefig(path)
    plt.close(figure)


def prediction_figure(session: Path, data: Path, path: Path) -> None:
    """Middle axis-0 slice of the first test volume: image, ground truth, prediction."""
    predictions = sorted((session / "predictions").glob("*.nii.gz"))
    if not predictions:
        raise UploadError(f"no saved predictions in {session / 'predictions'}")
    name = predictions[0].name
    volumes = [nib.load(folder / name).get_fdata() for folder in
               (data / "images", data / "labels", session / "predictions")]
    middle = volumes[0].shape[0] // 2
    figure, axes = plt.subplots(1, 3, figsize=FIGURE_INCHES)
    for axis, volume, title in zip(axes, volumes, ("image", "ground truth", "prediction"),
                                   strict=True):
        axis.imshow(volume[middle], cmap="gray")
        axis.set(title=title)
        axis.axis("off")
    figure.suptitle(f"{name}, axis-0 slice {middle}")
    figure.savefig(path)
    plt.close(figure)


def fill_report(out: Path, session: Path, command: str, seconds: float | None) -> None:
    """Write ``out/README.md`` from the template, with the session's figures and numbers."""
    results = json.loads((session / "results.json").read_text())
    split = json.loads((session / "split.json").read_text())
    config = json.loads((session / "config.json").read_text())
    n_volumes = sum(len(names) for names in split.values())
    time_text = f"{seconds / 60:.1f} min" if seconds is not None else "see pipeline.log"
    answers = {
        "Command": [command],
        "Session folder": [session.relative_to(out).as_posix()],
        "Device and wall time": [f"{config.get('device', 'auto')}, {time_text}"],
        "Volumes loaded": [str(n_volumes), "the loader's warnings in pipeline.log: pairs "
                           "without image or label left out"],
        "Split": [str(config.get("seed", 0)), *(str(len(split[part]))
                                                for part in ("train", "val", "test"))],
    }
    agreement = session / AGREEMENT_FIGURE  # written by the session's run_test
    if not agreement.is_file():
        raise FileNotFoundError(f"{agreement} is missing: the report's third figure is the "
                                "volume agreement plot that this kit's run_test writes")
    text = checks.fill_template(checks.TEMPLATE_TEXT, results["overall"],
                                [*FIGURES, agreement.relative_to(out).as_posix()], answers,
                                default="reference run of the kit's solution")
    (out / "README.md").write_text(text)


def build(out: Path, data: Path, session: Path | None, flags: list[str]) -> Path:
    """The complete reference upload in ``out``; returns it."""
    copy_solution(out)
    section2_out = out / "section2" / "out"
    seconds = None
    if session is None:
        session, command, seconds = train(out / "section2" / "src", data, section2_out, flags)
    else:
        command = "python run_ml_pipeline.py (an earlier session)"
        session = Path(shutil.copytree(session, section2_out / "results" / session.name,
                                       ignore=shutil.ignore_patterns("*.pth", "checkpoints")))
    loss_figure(session, section2_out / FIGURES[0])
    prediction_figure(session, data, section2_out / FIGURES[1])
    fill_report(section2_out, session, command, seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="new folder for the upload")
    parser.add_argument("--data", type=Path, default=None,
                        help="TrainingSet folder (default: the one the grader finds)")
    parser.add_argument("--session", type=Path, default=None,
                        help="reuse this finished session folder instead of training "
                             "(default: None, train)")
    parser.add_argument("pipeline_flags", nargs="*",
                        help=f"flags for run_ml_pipeline.py after '--' (default: "
                             f"{' '.join(DEFAULT_PIPELINE_FLAGS)})")
    args = parser.parse_args(argv)
    data = args.data or find_real_data()
    if data is None:
        parser.error("no data set found; give --data DIR (the folder of images/ and labels/)")
    if args.out.exists():
        parser.error(f"{args.out} exists; give a new folder")
    try:
        build(args.out, data.resolve(), args.session,
              args.pipeline_flags or list(DEFAULT_PIPELINE_FLAGS))
    except UploadError as err:
        print(f"reference_upload: {err}", file=sys.stderr)
        return 1
    print(f"reference upload in {args.out}: zip it with "
          f"`cd {args.out} && zip -r ../reference.zip section1 section2`")
    return 0


if __name__ == "__main__":
    sys.exit(main())

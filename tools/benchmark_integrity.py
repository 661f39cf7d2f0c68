"""Time the class-wide integrity checks on a synthetic class: one line of figures.

    python tools/benchmark_integrity.py [--submissions 100] [--keep DIR]

Builds a worst case in a temporary folder: every submission is a copy of the kit's reference
solution (so every pair is reported as similar, with its passages), with a session folder of
its own numbers (results.json, split.json, config.json, three saved predictions, a model.pth)
over a synthetic data set of three label maps. Then runs
``python -m grader.batch.grade_all DIR --integrity-only`` in a fresh process, as an instructor
would, and prints: submissions, findings, seconds, seconds per submission.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "solution" / "section2" / "src"))
from grader.batch.integrity import CSV_FILE  # noqa: E402
from grader.mutants import copy_solution  # noqa: E402
from networks.RecursiveUNet import UNet  # noqa: E402

DEFAULT_SUBMISSIONS = 100  # the class size of the target (under 5 minutes on 2 cores)
VOLUMES = ("hippocampus_001.nii.gz", "hippocampus_004.nii.gz", "hippocampus_006.nii.gz")
LABEL_SHAPE = (35, 51, 35)  # [X, Y, Z], the size of a typical hippocampus crop
CPU_UNET = {"num_classes": 3, "in_channels": 1, "initial_filter_size": 16, "num_downs": 3}


def write_data_set(root: Path) -> Path:
    """images/ and labels/ of random label maps {0, 1, 2}, one per test volume."""
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True)
    for seed, name in enumerate(VOLUMES):
        seg = np.random.default_rng(seed).choice(3, size=LABEL_SHAPE, p=(0.9, 0.05, 0.05))
        nib.save(nib.Nifti1Image(seg.astype(np.uint8), np.eye(4)), root / "labels" / name)
        nib.save(nib.Nifti1Image(seg.astype(np.float32), np.eye(4)), root / "images" / name)
    return root


def write_submission(folder: Path, index: int, data_dir: Path, model: Path) -> None:
    """The solution plus a session folder whose predictions wipe axis-0 slice ``index``."""
    copy_solution(folder)
    session = folder / "section2" / "out" / "results" / f"2026-11-20_{index:04d}_Basic_unet"
    (session / "predictions").mkdir(parents=True)
    stats = []
    for name in VOLUMES:
        seg = np.asanyarray(nib.load(data_dir / "labels" / name).dataobj)
        pred = seg.copy()
        pred[index % LABEL_SHAPE[0]] = 0
        nib.save(nib.Nifti1Image(pred, np.eye(4)), session / "predictions" / name)
        both, total = np.count_nonzero((pred > 0) & (seg > 0)), np.count_nonzero(pred) + \
            np.count_nonzero(seg)
        dice = 2 * both / total
        stats.append({"filename": name, "dice": dice, "jaccard": dice / (2 - dice)})
    overall = {f"mean_{key}": float(np.mean([row[key] for row in stats]))
               for key in ("dice", "jaccard")}
    config = {"name": "Basic_unet", "root_dir": str(data_dir), **CPU_UNET}
    split = {"train": [f"hippocampus_{100 + i:03d}.nii.gz" for i in range(6)],
             "val": ["hippocampus_200.nii.gz"], "test": list(VOLUMES)}
    for file, content in (("results.json", {"volume_stats": stats, "overall": overall,
                                            "config": config}),
                          ("split.json", split), ("config.json", config)):
        (session / file).write_text(json.dumps(content, indent=2))
    os.link(model, session / "model.pth")  # one file on disk, a model.pth in every session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=DEFAULT_SUBMISSIONS,
                        help=f"class size (default: {DEFAULT_SUBMISSIONS})")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the class here and keep it (default: None, a temporary "
                             "folder)")
    args = parser.parse_args(argv)
    if args.submissions < 2:
        parser.error("--submissions must be at least 2")
    with tempfile.TemporaryDirectory(prefix="integrity-bench-") as temporary:
        root = args.keep or Path(temporary)
        data_dir = write_data_set(root / "TrainingSet")
        torch.manual_seed(0)
        model = root / "model.pth"
        torch.save({"architecture": CPU_UNET, "state_dict": UNet(**CPU_UNET).state_dict()},
                   model)
        for index in range(args.submissions):
            write_submission(root / "class" / f"student_{index:03d}", index, data_dir, model)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "grader.batch.grade_all", str(root / "class"),
                        "--out", str(root / "out"), "--integrity-only",
                        f"--data-dir={data_dir}"],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        with open(root / "out" / CSV_FILE, newline="") as file:
            findings = sum(1 for _ in csv.DictReader(file))
    print(f"{'submissions':>11} {'findings':>8} {'seconds':>8} {'s/submission':>12} cpus")
    print(f"{args.submissions:>11} {findings:>8} {seconds:>8.1f} "
          f"{seconds / args.submissions:>12.2f} {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

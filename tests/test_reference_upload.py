"""tools/reference_upload.py: a solution upload with a session folder and a filled report that
the report checks accept (the training itself is the pipeline's, tested elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

import reference_upload
from grader.runtime import report as checks

REPO = Path(__file__).resolve().parents[1]

SHAPE = (6, 8, 8)  # [X, Y, Z] of the synthetic volumes
CASES = ("hippocampus_001.nii.gz", "hippocampus_002.nii.gz", "hippocampus_003.nii.gz")


def fake_session(root: Path) -> tuple[Path, Path]:
    """(data folder, finished session folder) of a three-volume synthetic run."""
    data, session = root / "data", root / "2026-01-01_000000_Basic_unet"
    for folder in (data / "images", data / "labels", session / "predictions"):
        folder.mkdir(parents=True)
    seg = np.zeros(SHAPE, np.uint8)
    seg[2:4, 2:6, 2:6] = 1
    for case in CASES:
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random(SHAPE), np.eye(4)),
                 data / "images" / case)
        for folder in (data / "labels", session / "predictions"):
            nib.save(nib.Nifti1Image(seg, np.eye(4)), folder / case)
    overall = {"mean_dice": 1.0, "mean_jaccard": 1.0, "mean_dice_anterior": 1.0,
               "mean_dice_posterior": 1.0, "mean_sensitivity": 1.0, "mean_specificity": 1.0}
    (session / "results.json").write_text(json.dumps({"volume_stats": [], "overall": overall}))
    (session / "split.json").write_text(json.dumps({"train": [CASES[0]], "val": [CASES[1]],
                                                    "test": [CASES[2]]}))
    (session / "config.json").write_text(json.dumps({"device": "cpu", "seed": 3}))
    plt.imsave(session / "volume_agreement.png", np.zeros((4, 4)))  # run_test's Bland-Altman
    (session / "pipeline.log").write_text(
        "x INFO epoch   1/2 | train loss 1.2000 | val loss 1.3000 | val Dice 0.5 | 9.0 s\n"
        "x INFO epoch   2/2 | train loss 0.6000 | val loss 0.7000 | val Dice 0.8 | 9.0 s\n")
    return data, session


def test_reference_upload_from_a_session_passes_every_report_check(tmp_path):
    data, session = fake_session(tmp_path / "run")
    out = reference_upload.build(tmp_path / "upload", data, session, [])
    assert (out / "section2" / "src" / "run_ml_pipeline.py").is_file()
    report = checks.load_report(out / "section2" / "out")
    template = checks.TEMPLATE_TEXT
    assert checks.structure_problems(report, template) == []
    assert checks.figure_problems(report, template) == []
    assert checks.quote_problems(report) == []
    assert "seed `3`): train `1`, validation `1`, test `1`" in report.text

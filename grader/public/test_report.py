"""The section 2 report (R2.01-R2.03): complete, consistent with its results, good enough.

With ``--submission`` these check the student's ``section2/out``. Without it (checking the kit)
they check an example report filled in from the kit's template over a small synthetic session,
so the checks themselves are exercised and the template stays checkable.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest

from grader.runtime import report as checks
from grader.runtime.submission import find_real_data

# The kit's report deliverable; a course-starter one is graded by test_course_report.py.
pytestmark = pytest.mark.deliverable("report", "kit")

EXAMPLE_SHAPE = (4, 6, 5)  # [X, Y, Z] of the synthetic session's volumes
EXAMPLE_CASES = ("hippocampus_001.nii.gz", "hippocampus_002.nii.gz")


def build_example(root: Path) -> tuple[Path, Path]:
    """A filled report over a synthetic session; returns (out folder, labels folder)."""
    out, labels = root / "out", root / "labels"
    session = out / "results" / "2026-01-01_000000_Basic_unet"
    (session / "predictions").mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(0)
    stats = []
    for case in EXAMPLE_CASES:
        seg = rng.integers(0, 3, EXAMPLE_SHAPE).astype(np.uint8)
        pred = seg.copy()
        pred[0, 0] = 0  # a few missed voxels: Dice just below 1
        nib.save(nib.Nifti1Image(seg, np.eye(4)), labels / case)
        nib.save(nib.Nifti1Image(pred, np.eye(4)), session / "predictions" / case)
        a, b = pred > 0, seg > 0
        dice = 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
        stats.append({"filename": case, "dice": dice, "jaccard": dice / (2 - dice),
                      "dice_anterior": 0.9, "dice_posterior": 0.9, "sensitivity": 0.9,
                      "specificity": 0.99})
    overall = {f"mean_{key}": float(np.mean([s[key] for s in stats]))
               for key in stats[0] if key != "filename"}
    (session / "results.json").write_text(json.dumps({"volume_stats": stats,
                                                      "overall": overall}))
    figures = ["loss.png", "prediction.png", "volume_agreement.png"]
    for name in figures:
        plt.imsave(out / name, rng.random((8, 8)), cmap="gray")
    template = checks.TEMPLATE_TEXT
    (out / "README.md").write_text(checks.fill_template(template, overall, figures))
    return out, labels


@pytest.fixture(scope="session")
def handed_in(code, tmp_path_factory) -> tuple[Path | None, Path | None]:
    """(section2/out of the code under test, folder of its ground-truth labels or None)."""
    if code.is_kit:
        return build_example(tmp_path_factory.mktemp("example-report"))
    data = find_real_data()
    return code.out, (data / "labels") if data else None


def load(out: Path | None) -> checks.Report:
    if out is None:
        raise AssertionError("no section2/out folder handed in: the report, its session folder "
                             "and figures go there")
    return checks.load_report(out)


@pytest.mark.task("R2.01", points=2)
def test_report_keeps_every_heading_and_fills_every_placeholder(handed_in):
    problems = checks.structure_problems(load(handed_in[0]), checks.TEMPLATE_TEXT)
    assert not problems, "; ".join(problems)


@pytest.mark.task("R2.01", points=2)
def test_report_figures_are_referenced_and_handed_in(handed_in):
    problems = checks.figure_problems(load(handed_in[0]), checks.TEMPLATE_TEXT)
    assert not problems, "; ".join(problems)


@pytest.mark.task("R2.02", points=3)
def test_report_table_quotes_the_means_of_results_json(handed_in):
    problems = checks.quote_problems(load(handed_in[0]))
    assert not problems, "; ".join(problems)


@pytest.mark.task("R2.02", points=2)
def test_saved_predictions_give_the_dice_that_results_json_states(handed_in):
    out, labels = handed_in
    if labels is None:
        pytest.skip("ground-truth labels not at hand: Dice not recomputed")
    problems = checks.recompute_problems(load(out), labels)
    assert not problems, "mismatch: " + "; ".join(problems)


@pytest.mark.task("R2.03", points=7)
def test_mean_test_dice_is_at_least_0_85(handed_in):
    out, labels = handed_in
    report = load(out)
    if labels is not None:
        mean_dice = float(np.mean(list(checks.recomputed_dice(report, labels).values())))
    else:
        mean_dice = float(report.results["overall"]["mean_dice"])
    assert mean_dice >= checks.PERFORMANCE_DICE, (
        f"mean whole-hippocampus test Dice {mean_dice:.4f} < {checks.PERFORMANCE_DICE}: look "
        "for a bug (see the report template's 'Expected outcome') before tuning")

"""Tests of grader/batch/integrity: each planted problem is found with its evidence, honest
work is not.

The submissions are written for these tests (tests/integrity_cases.py): a course-style class
over a course-style starter, and kit-style students over the kit's own skeleton, with
synthetic labels and predictions [6, 7, 5] standing in for the data set.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import integrity_cases as cases
import nibabel as nib
import numpy as np
import pytest
import torch
from medpy.metric import binary

from grader.batch import grade_all
from grader.batch.integrity import CSV_FILE, KIT_BOILERPLATE, MARKDOWN_FILE, check_class
from grader.batch.integrity.code_checks import results_older_than_code
from grader.batch.integrity.findings import find_sessions
from grader.batch.integrity.report_files import CSV_COLUMNS
from grader.batch.integrity.results_checks import jaccard_mismatches
from networks.RecursiveUNet import UNet  # the solution's; the skeleton's is equal

SMALL_UNET = {"num_classes": 3, "in_channels": 1, "initial_filter_size": 4, "num_downs": 2}
DAY_S = 24 * 3600.0


def findings_of(findings, check: str, submission: str, other: str = "") -> list:
    """The findings of one check on one submission (and pair partner)."""
    return [finding for finding in findings if finding.check == check
            and finding.submission == submission and finding.other == other]


@pytest.fixture(scope="module")
def starter(tmp_path_factory) -> Path:
    return cases.write_starter(tmp_path_factory.mktemp("starter"))


@pytest.fixture(scope="module")
def course_class(tmp_path_factory, starter) -> dict:
    """The planted course-style class, checked once: its folders, findings and out dir."""
    root = tmp_path_factory.mktemp("course")
    folders = cases.planted_course_class(root / "class")
    out = root / "out"
    findings = check_class(list(folders.values()), out, [starter], show_progress=False)
    return {"folders": folders, "findings": findings, "out": out}


def save_prediction(session: Path, name: str, pred: np.ndarray) -> None:
    (session / "predictions").mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(pred.astype(np.uint8), np.eye(4)), session / "predictions" / name)


def kit_prediction(data_dir: Path, volume: str, wiped: int) -> np.ndarray:
    """The volume's label with axis-0 slice ``wiped`` set to background: a student's guess."""
    pred = np.asanyarray(nib.load(data_dir / "labels" / volume).dataobj).copy()
    pred[wiped] = 0
    return pred


def kit_student(root: Path, name: str, data_dir: Path, wiped: int, claimed_offset: float = 0.0,
                architecture: dict | None = None, split: dict | None = None) -> Path:
    """A kit student's skeleton and session folder: predictions (kit_prediction), the Dice
    they give (plus ``claimed_offset``), split.json and model.pth."""
    folder = cases.kit_submission(root / name)
    dice = {}
    for volume in cases.TEST_VOLUMES:
        seg = np.asanyarray(nib.load(data_dir / "labels" / volume).dataobj)
        dice[volume] = float(binary.dc(kit_prediction(data_dir, volume, wiped) > 0, seg > 0))
    claimed = {volume: min(value + claimed_offset, 1.0) for volume, value in dice.items()}
    split = split or {"train": ["hippocampus_010.nii.gz", "hippocampus_011.nii.gz"],
                      "val": ["hippocampus_012.nii.gz"], "test": list(cases.TEST_VOLUMES)}
    results = cases.write_results(folder, cases.results_payload(
        claimed, str(data_dir), str(folder / "section2" / "out" / "results")),
        extra={"split.json": split})
    session = results.parent
    for volume in cases.TEST_VOLUMES:
        save_prediction(session, volume, kit_prediction(data_dir, volume, wiped))
    torch.manual_seed(0)
    weights = UNet(**SMALL_UNET).state_dict()
    torch.save({"architecture": architecture or SMALL_UNET, "state_dict": weights},
               session / "model.pth")
    return folder


@pytest.fixture(scope="module")
def kit_class(tmp_path_factory) -> dict:
    """Kit-style students over a synthetic data set, checked once."""
    root = tmp_path_factory.mktemp("kit")
    data_dir = cases.fake_data_set(root / "TrainingSet")
    overlapping = {"train": ["hippocampus_001.nii.gz", "hippocampus_010.nii.gz"],
                   "val": ["hippocampus_006.nii.gz"], "test": list(cases.TEST_VOLUMES)}
    folders = {
        "kent": kit_student(root, "kent", data_dir, wiped=0),
        "mia": kit_student(root, "mia", data_dir, wiped=1),
        "grace": kit_student(root, "grace", data_dir, wiped=2, split=overlapping),
        "lena": kit_student(root, "lena", data_dir, wiped=3, claimed_offset=0.05,
                            architecture={**SMALL_UNET, "initial_filter_size": 8}),
    }
    nils = cases.kit_submission(root / "nils")
    payload = cases.results_payload({**cases.student_dice(3), "hippocampus_999.nii.gz": 0.9},
                                    "/home/nils/data", "/home/nils/out")
    payload["split"] = {"train": [0, 1, 2, 3], "val": [4], "test": [5, 6]}
    cases.write_results(nils, payload)
    folders["nils"] = nils
    out = root / "out"
    findings = check_class(list(folders.values()), out, KIT_BOILERPLATE, data_dir=data_dir,
                           show_progress=False)
    return {"folders": folders, "findings": findings, "data_dir": data_dir, "out": out}


def test_an_honest_course_class_sharing_only_the_starter_gives_no_finding(tmp_path, starter):
    folders = cases.honest_course_class(tmp_path / "class")
    assert check_class(list(folders.values()), tmp_path / "out", [starter],
                       show_progress=False) == []


def test_an_honest_kit_class_gives_no_finding(kit_class):
    named = [finding for finding in kit_class["findings"]
             if {finding.submission, finding.other} & {"kent", "mia"}]
    assert named == []


def test_honest_students_of_the_planted_class_appear_only_beside_who_copied_them(course_class):
    for finding in course_class["findings"]:
        honest = {finding.submission, finding.other} & {"alice", "bob", "oscar", "peggy"}
        assert not honest or finding.other in {"carol", "dave", "erin"}, finding


def test_a_verbatim_copy_is_found_with_its_matching_passages(course_class):
    [finding] = findings_of(course_class["findings"], "code-similarity", "alice", "carol")
    assert finding.evidence.startswith("100% of alice's own code matches carol's")
    left, right = finding.passages[0]
    assert left == right and "def _foreground" in "".join(
        text for pair in finding.passages for text in pair)


def test_a_copy_with_renamed_variables_and_reordered_functions_is_found(course_class):
    [finding] = findings_of(course_class["findings"], "code-similarity", "alice", "dave")
    share = int(finding.evidence.split("%")[0])
    assert share >= 90
    quoted_dave = "".join(right for _, right in finding.passages)
    assert "_mask_of" in quoted_dave and "_foreground" not in quoted_dave


def test_a_results_file_copied_with_its_paths_is_found(course_class):
    [finding] = findings_of(course_class["findings"], "results-identical", "bob", "erin")
    assert "byte-identical" in finding.evidence
    assert "/home/bob/nd320/data/TrainingSet" in finding.evidence


def test_impossible_metrics_are_found_with_their_values(course_class):
    [finding] = findings_of(course_class["findings"], "impossible-metric", "frank")
    assert "overall dice 1.467" in finding.evidence and "overall jaccard 2.8" in finding.evidence
    [means] = findings_of(course_class["findings"], "mean-not-of-volumes", "frank")
    assert "mean_dice 1.4670 but the 3 volumes average" in means.evidence


def test_a_commented_out_training_call_is_found(course_class):
    [finding] = findings_of(course_class["findings"], "no-training-call", "heidi")
    assert "# exp.run()" in finding.evidence and "results.json" in finding.evidence


def test_a_metric_that_mutates_its_input_is_found(course_class):
    found = findings_of(course_class["findings"], "mutates-input", "ivan")
    assert [finding.evidence.split(" argument ")[1][:2] for finding in found] == ["a:", "b:"]
    assert all("Dice3d" in finding.evidence for finding in found)


def test_an_overlapping_split_is_found_with_the_volumes(kit_class):
    [finding] = findings_of(kit_class["findings"], "split-overlap", "grace")
    assert "2 of 3 test volumes" in finding.evidence
    assert "hippocampus_001.nii.gz" in finding.evidence
    assert "hippocampus_006.nii.gz" in finding.evidence


def test_a_claimed_dice_that_the_saved_predictions_do_not_give_is_found(kit_class):
    [finding] = findings_of(kit_class["findings"], "dice-recomputed", "lena")
    assert finding.evidence.startswith("3 of 3 saved predictions")


def test_a_model_that_does_not_load_into_the_students_network_is_found(kit_class):
    [finding] = findings_of(kit_class["findings"], "model-not-loadable", "lena")
    assert "initial_filter_size=8" in finding.evidence and "model.pth" in finding.evidence


def test_file_names_outside_the_data_set_and_a_count_that_misfits_the_split(kit_class):
    [unknown] = findings_of(kit_class["findings"], "file-not-in-data-set", "nils")
    assert "1 of 4 test volumes" in unknown.evidence and "hippocampus_999" in unknown.evidence
    [count] = findings_of(kit_class["findings"], "volume-count", "nils")
    assert "scores 4 test volumes" in count.evidence and "holds 2 test volumes" in count.evidence


def test_a_jaccard_that_is_not_dice_over_two_minus_dice_is_found(tmp_path):
    payload = cases.results_payload({"hippocampus_001.nii.gz": 0.9}, "d", "o")
    payload["volume_stats"][0]["jaccard"] = 0.9  # Dice 0.9 gives Jaccard 0.818
    cases.write_results(tmp_path, payload)
    [finding] = jaccard_mismatches("x", find_sessions(tmp_path)[0])
    assert "Dice 0.9000 Jaccard 0.9000 (D/(2-D) = 0.8182)" in finding.evidence


@pytest.mark.parametrize("results_age_s, expected", [(2 * DAY_S, 1), (0.0, 0)],
                         ids=["two-days-older", "same-time"])
def test_results_older_than_the_code_are_found_only_when_file_times_differ(
        tmp_path, results_age_s, expected):
    folder = cases.course_submission(tmp_path / "sub", cases.ALICE)
    results = cases.write_results(folder, cases.results_payload(cases.student_dice(0), "d", "o"))
    now = time.time()
    for path in folder.rglob("*"):
        os.utime(path, (now, now))
    os.utime(results, (now - results_age_s, now - results_age_s))
    found = results_older_than_code("sub", folder, find_sessions(folder))
    assert len(found) == expected
    if expected:
        assert "48.0 h later" in found[0].evidence


def test_byte_identical_figures_not_in_the_boilerplate_are_found(tmp_path, starter):
    folders = cases.honest_course_class(tmp_path / "class")
    figure = np.random.default_rng(0).bytes(256)
    for name in ("oscar", "peggy"):
        (folders[name] / "section2" / "out" / "loss.png").write_bytes(figure)
    found = [finding for finding in check_class(list(folders.values()), tmp_path / "out",
                                                [starter], sandbox=False, show_progress=False)]
    assert [(finding.submission, finding.check, finding.other) for finding in found] == [
        ("oscar", "figures-identical", "peggy")]


def test_results_with_the_same_numbers_under_other_paths_are_near_identical(tmp_path, starter):
    folders = cases.honest_course_class(tmp_path / "class")
    copied = cases.results_payload(cases.student_dice(0), "/home/peggy/data", "/home/peggy/out")
    for path in (folders["peggy"] / "section2").rglob("results.json"):
        path.write_text(json.dumps(copied))  # alice's numbers (seed 0), peggy's own paths
    found = check_class(list(folders.values()), tmp_path / "out", [starter], sandbox=False,
                        show_progress=False)
    assert [(finding.submission, finding.check, finding.other) for finding in found] == [
        ("alice", "results-near-identical", "peggy")]
    assert "the same 3 volumes" in found[0].evidence

def test_integrity_csv_has_its_columns_and_one_row_per_finding(course_class):
    with open(course_class["out"] / CSV_FILE, newline="") as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == len(course_class["findings"])
    assert ["alice", "code-similarity", "carol"] == rows[1][:3]


def test_integrity_md_puts_the_passages_side_by_side(course_class):
    text = (course_class["out"] / MARKDOWN_FILE).read_text()
    assert "## alice ~ dave: code-similarity" in text
    assert "<tr><th>alice</th><th>dave</th></tr>" in text
    assert "never deductions" in text


def test_the_command_with_integrity_only_writes_the_reports_and_grades_nothing(
        tmp_path, starter, capsys):
    folders = cases.honest_course_class(tmp_path / "class")
    shutil.copytree(folders["bob"], tmp_path / "class" / "bob_again")
    out = tmp_path / "out"
    assert grade_all.main([str(tmp_path / "class"), "--out", str(out), "--integrity-only",
                           f"--boilerplate={starter}"]) == 0
    assert not (out / grade_all.SCORES_FILE).exists()
    rows = list(csv.DictReader(open(out / CSV_FILE, newline="")))
    assert {(row["submission"], row["check"], row["other"]) for row in rows} == {
        ("bob", "code-similarity", "bob_again"), ("bob", "results-identical", "bob_again")}
    assert capsys.readouterr().out.splitlines()[-1].startswith("checked 5 submissions in ")


def test_the_command_refuses_a_boilerplate_folder_that_does_not_exist(tmp_path, capsys):
    (tmp_path / "class" / "alice").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        grade_all.main([str(tmp_path / "class"), "--integrity-only",
                        f"--boilerplate={tmp_path / 'missing'}"])
    assert exit_info.value.code == 2
    assert "is not a folder" in capsys.readouterr().err



def test_the_benchmark_prints_one_row_of_positive_figures(capsys):
    import benchmark_integrity

    assert benchmark_integrity.main(["--submissions", "2"]) == 0
    header, row = capsys.readouterr().out.splitlines()[-2:]
    assert header.split() == ["submissions", "findings", "seconds", "s/submission", "cpus"]
    submissions, findings, seconds, per_submission, _ = row.split()
    # Two copies of the solution: one pair, reported as similar code.
    assert (int(submissions), int(findings)) == (2, 1)
    assert float(seconds) > 0 and float(per_submission) > 0

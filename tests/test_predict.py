"""predict.py: segment new scans from the command line, report volumes, refuse bad input."""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import synthetic_pair, write_nifti
from matplotlib.image import imread

import predict
from experiments.settings import PRESETS
from networks.model_file import model_file_contents, save_atomically
from networks.RecursiveUNet import UNet
from utils.hippocampus_volume import label_volumes_mm3

CASES = ("hippocampus_001.nii.gz", "hippocampus_003.nii.gz", "hippocampus_004.nii.gz")
TINY_UNET = {"num_classes": 3, "initial_filter_size": 4, "num_downs": 3}
CPU_PATCH = PRESETS["cpu"]["patch_size"]  # px (rows, columns): holds every MSD Task04 crop

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class LabelAgent:
    """A perfect model: predicts for each real scan its own ground-truth label."""

    def __init__(self, data_dir: Path, cases: tuple[str, ...]) -> None:
        self.labels = {digest(np.asanyarray(nib.load(data_dir / "images" / case).dataobj)):
                       np.asarray(nib.load(data_dir / "labels" / case).dataobj)
                       for case in cases}

    def single_volume_inference_unpadded(self, volume: np.ndarray) -> np.ndarray:
        return self.labels[digest(volume)]


def digest(volume: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(volume).tobytes()).hexdigest()


@pytest.fixture
def real_scans(real_data_dir: Path, tmp_path: Path) -> Path:
    """A folder with copies of three real scans."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for case in CASES:
        (folder / case).write_bytes((real_data_dir / "images" / case).read_bytes())
    return folder


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> Path:
    """An untrained 4-filter U-Net saved as UNetExperiment saves model.pth, cpu preset patch."""
    torch.manual_seed(0)
    model = UNet(**TINY_UNET)
    path = tmp_path / "model.pth"
    save_atomically(model_file_contents(TINY_UNET, model.state_dict(), CPU_PATCH), path)
    return path


def read_table(out_dir: Path) -> list[dict[str, str]]:
    with open(out_dir / "volumes.csv", newline="") as table:
        return list(csv.DictReader(table))


def perfect_agent(real_data_dir: Path) -> LabelAgent:
    return LabelAgent(real_data_dir, CASES)


# --- the command on real scans ---------------------------------------------------------------

def test_a_perfect_model_reports_label_voxel_count_times_voxel_volume(real_data_dir, real_scans,
                                                                      tmp_path):
    out_dir = tmp_path / "out"
    rows = predict.predict_scans(predict.expand_inputs([real_scans]), perfect_agent(real_data_dir),
                                 out_dir)
    assert [Path(row["file"]).name for row in rows] == sorted(CASES)
    for row in rows:
        label = nib.load(real_data_dir / "labels" / Path(row["file"]).name)
        seg = np.asarray(label.dataobj)
        voxel_mm3 = float(np.prod(label.header.get_zooms()[:3]))
        expected = {"anterior_mm3": np.count_nonzero(seg == 1) * voxel_mm3,
                    "posterior_mm3": np.count_nonzero(seg == 2) * voxel_mm3,
                    "total_mm3": np.count_nonzero(seg > 0) * voxel_mm3}
        assert {key: float(row[key]) for key in expected} == pytest.approx(expected, abs=0.05)
        assert row["error"] == ""
        low, high = predict.NORMAL_VOLUME_MM3
        assert row["total_vs_normal"] == ("within" if low <= expected["total_mm3"] <= high
                                          else "below" if expected["total_mm3"] < low
                                          else "above")


def test_labels_keep_the_scans_affine_and_header_as_uint8(real_data_dir, real_scans, tmp_path):
    out_dir = tmp_path / "out"
    [row, *_] = predict.predict_scans(predict.expand_inputs([real_scans]),
                                      perfect_agent(real_data_dir), out_dir)
    scan = nib.load(row["file"])
    saved = nib.load(out_dir / row["labels"])
    assert saved.shape == scan.shape
    assert saved.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(saved.affine, scan.affine)
    assert saved.header.get_zooms() == scan.header.get_zooms()
    assert saved.header.get_xyzt_units() == scan.header.get_xyzt_units()
    seg = np.asarray(nib.load(real_data_dir / "labels" / Path(row["file"]).name).dataobj)
    np.testing.assert_array_equal(np.asarray(saved.dataobj), seg)


def test_the_overlay_is_a_png_with_colour_where_the_labels_are(real_data_dir, real_scans,
                                                               tmp_path):
    out_dir = tmp_path / "out"
    rows = predict.predict_scans(predict.expand_inputs([real_scans]),
                                 perfect_agent(real_data_dir), out_dir)
    for row in rows:
        pixels = imread(out_dir / row["overlay"])  # float [H, W, 4] in [0, 1]
        red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        coloured = (np.abs(red - green) > 0.1) | (np.abs(green - blue) > 0.1)
        assert pixels.shape[1] > pixels.shape[0] and coloured.any(), row["overlay"]


def test_the_command_line_segments_real_scans_with_a_tiny_model(real_scans, tiny_model_file,
                                                                 tmp_path, capsys):
    out_dir = tmp_path / "out"
    status = predict.main(["--model", str(tiny_model_file), "--out-dir", str(out_dir),
                           "--device", "cpu", str(real_scans)])
    assert status == 0
    rows = read_table(out_dir)
    assert list(rows[0]) == list(predict.CSV_COLUMNS)
    assert {"file", "anterior_mm3", "posterior_mm3", "total_mm3", "error"} <= set(rows[0])
    assert len(rows) == len(CASES)
    for row in rows:
        scan = nib.load(row["file"])
        labels = np.asarray(nib.load(out_dir / row["labels"]).dataobj)
        assert labels.shape == scan.shape and set(np.unique(labels)) <= {0, 1, 2}
        volumes = label_volumes_mm3(labels, scan.header.get_zooms()[:3])
        assert {key: float(row[key]) for key in volumes} == pytest.approx(volumes, abs=0.05)
        assert (out_dir / row["overlay"]).is_file()
    assert f"segmented {len(CASES)} of {len(CASES)} scans" in capsys.readouterr().out


def test_a_missing_model_file_is_a_usage_error(tmp_path, capsys):
    status = predict.main(["--model", str(tmp_path / "none.pth"), "--out-dir",
                           str(tmp_path / "out"), str(tmp_path)])
    assert status == 2
    assert "none.pth does not exist" in capsys.readouterr().err


# --- bad input: one line naming the file, the other scans still done ------------------------

def not_nifti(scan: Path, damaged: Path) -> str:
    damaged.write_text("patient,volume\n1,3000\n")
    return "cannot be read"


def truncated(scan: Path, damaged: Path) -> str:
    data = scan.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    return "cannot be read"


def four_d(scan: Path, damaged: Path) -> str:
    image = np.asanyarray(nib.load(scan).dataobj)
    write_nifti(damaged, np.stack([image, image], axis=-1))
    return r"has shape \(\d+, \d+, \d+, 2\); expected a 3-D volume"


def non_finite(scan: Path, damaged: Path) -> str:
    nifti = nib.load(scan)
    image = np.asanyarray(nifti.dataobj).astype(np.float32)
    image[3, 10, 10], image[4, 11, 12] = np.nan, np.inf
    write_nifti(damaged, image, nifti.affine)
    return "holds 2 non-finite voxels"


def whole_brain_size(scan: Path, damaged: Path) -> str:
    nifti = nib.load(scan)
    image = np.asanyarray(nifti.dataobj)
    big = np.zeros((image.shape[0], 160, 192), image.dtype)  # a whole-brain field of view
    big[:, : image.shape[1], : image.shape[2]] = image
    write_nifti(damaged, big, nifti.affine)
    return r"in-plane size \(160, 192\) exceeds the patch .* not whole-brain scans"


@pytest.mark.parametrize("damage", [not_nifti, truncated, four_d, non_finite, whole_brain_size])
def test_a_damaged_scan_gets_one_error_line_and_the_others_are_done(
        damage, real_scans, tiny_model_file, tmp_path, capsys):
    damaged = tmp_path / "damaged" / "hippocampus_999.nii.gz"
    damaged.parent.mkdir()
    reason = damage(real_scans / CASES[0], damaged)
    out_dir = tmp_path / "out"
    good = real_scans / CASES[1]
    status = predict.main(["--model", str(tiny_model_file), "--out-dir", str(out_dir),
                           "--device", "cpu", str(damaged), str(good)])
    assert status == 1
    [line] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert str(damaged) in line
    assert re.search(reason, line), line
    bad_row, good_row = read_table(out_dir)
    assert bad_row["file"] == str(damaged) and re.search(reason, bad_row["error"])
    assert bad_row["total_mm3"] == ""
    assert good_row["file"] == str(good) and good_row["error"] == ""
    assert (out_dir / good_row["labels"]).is_file() and float(good_row["total_mm3"]) >= 0
    assert not (out_dir / "labels" / damaged.name).exists()


@pytest.mark.parametrize("make_input, reason", [
    (lambda root: root / "missing.nii.gz", "does not exist"),
    (lambda root: root, "holds no .nii or .nii.gz file"),
])
def test_an_input_without_scans_is_an_error_row(make_input, reason, tmp_path, tiny_model_file):
    empty = tmp_path / "empty"
    empty.mkdir()
    path = make_input(empty)
    status = predict.main(["--model", str(tiny_model_file), "--out-dir",
                           str(tmp_path / "out"), str(path)])
    [row] = read_table(tmp_path / "out")
    assert status == 1 and row["file"] == str(path) and reason in row["error"]


def test_two_inputs_of_the_same_name_do_not_overwrite_each_other(tmp_path, tiny_model_file):
    image, _ = synthetic_pair()
    first = write_nifti(tmp_path / "a" / "case.nii.gz", image)
    second = write_nifti(tmp_path / "b" / "case.nii.gz", image)
    status = predict.main(["--model", str(tiny_model_file), "--out-dir",
                           str(tmp_path / "out"), str(first), str(second)])
    rows = read_table(tmp_path / "out")
    assert status == 1
    assert rows[0]["error"] == "" and "same name" in rows[1]["error"]


# --- header handling -------------------------------------------------------------------------

def test_volumes_use_the_headers_spacing_and_unit(tmp_path):
    image, seg = synthetic_pair()  # [6, 20, 18]
    nifti = nib.Nifti1Image(image, np.diag([0.5, 0.8, 2.0, 1.0]))
    nifti.header.set_xyzt_units(xyz="mm")
    assert predict.spacing_mm(nifti.header) == pytest.approx((0.5, 0.8, 2.0))
    nifti.header.set_xyzt_units(xyz="meter")
    nifti.header.set_zooms((0.0005, 0.0008, 0.002))
    assert predict.spacing_mm(nifti.header) == pytest.approx((0.5, 0.8, 2.0))


def test_labels_of_a_scaled_scan_are_stored_unscaled(tmp_path):
    image, seg = synthetic_pair()
    nifti = nib.Nifti1Image(image.astype(np.int16), np.eye(4))
    nifti.header.set_slope_inter(2.0, 10.0)
    scan = tmp_path / "scaled.nii.gz"
    nib.save(nifti, scan)

    class SegAgent:
        def single_volume_inference_unpadded(self, volume):
            return seg

    row = predict.segment_scan(scan, SegAgent(), tmp_path / "out")
    np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "out" / row["labels"]).dataobj),
                                  seg)


def test_a_gzip_of_random_bytes_is_not_nifti(tmp_path):
    path = tmp_path / "noise.nii.gz"
    path.write_bytes(gzip.compress(np.random.default_rng(0).bytes(2000)))
    with pytest.raises(predict.ScanError, match="noise.nii.gz cannot be read"):
        predict.read_scan(path)


@pytest.mark.parametrize("returned, message", [
    (lambda volume: np.zeros(volume.shape[:2], np.uint8), "labels of shape"),
    (lambda volume: np.full(volume.shape, 300), r"values \[300\]"),
])
def test_an_agent_returning_impossible_labels_fails_that_scan_only(returned, message, tmp_path):
    image, _ = synthetic_pair()
    scan = write_nifti(tmp_path / "case.nii.gz", image)

    class BrokenAgent:
        def single_volume_inference_unpadded(self, volume):
            return returned(volume)

    [row] = predict.predict_scans([(scan, "")], BrokenAgent(), tmp_path / "out")
    assert re.search(message, row["error"]) and str(scan) in row["error"]

"""Section 1's exploratory analysis (solution/section1/eda.py): pairing, header facts,
volumes in mm3, misfits with their reasons, the curated copy, the command and the notebook."""

from __future__ import annotations

import csv
import filecmp
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import synthetic_pair, write_nifti

REPO = Path(__file__).resolve().parents[1]
SECTION1 = REPO / "solution" / "section1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_eda():
    """Import solution/section1/eda.py by path; it imports its sibling eda_output by name,
    as it does when run as a command or from the notebook in its folder."""
    if str(SECTION1) not in sys.path:
        sys.path.append(str(SECTION1))
    spec = importlib.util.spec_from_file_location("eda", SECTION1 / "eda.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["eda"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


eda = load_eda()

# --- synthetic cases -------------------------------------------------------------------------

SHAPE = (20, 24, 22)  # voxels [X, Y, Z] of a synthetic case
HALF_MM3 = 12 * 8 * 14  # 1344 voxels of 1 mm3 per class: 2688 mm3 in total, a plausible size


def hippocampus_pair(shape=SHAPE, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A plausible case: image float32 [X, Y, Z] and seg uint8 with a 12 x 16 x 14 block,
    label 1 in its first 8 voxels along axis 1 and label 2 in the other 8."""
    seg = np.zeros(shape, np.uint8)
    seg[2:14, 4:12, 4:18] = 1
    seg[2:14, 12:20, 4:18] = 2
    image = np.random.default_rng(seed).normal(100, 10, shape).astype(np.float32) + 200 * (seg > 0)
    return image, seg


def write_case(root: Path, name: str, image: np.ndarray | None, seg: np.ndarray | None,
               image_affine: np.ndarray | None = None,
               label_affine: np.ndarray | None = None) -> None:
    """Write root/images/name.nii.gz and root/labels/name.nii.gz; None leaves a file out."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    if image is not None:
        write_nifti(root / "images" / f"{name}.nii.gz", image, image_affine)
    if seg is not None:
        write_nifti(root / "labels" / f"{name}.nii.gz", seg, label_affine)


def shifted(offset_mm: float) -> np.ndarray:
    """Identity affine with its origin moved by ``offset_mm`` along every axis."""
    affine = np.eye(4)
    affine[:3, 3] = offset_mm
    return affine


def broken_file(root: Path) -> None:
    """An image that is not NIfTI at all, beside a clean label."""
    _, seg = hippocampus_pair()
    write_case(root, "bad", None, seg)
    (root / "images" / "bad.nii.gz").write_bytes(b"not a NIfTI file")


def four_d_image(root: Path) -> None:
    image, seg = hippocampus_pair()
    write_case(root, "bad", np.stack([image, image], axis=-1), seg)


def huge_label(root: Path) -> None:
    """A 25 x 25 x 25 mm block of labels 1 and 2: 15625 mm3, about 5 hippocampi."""
    seg = np.zeros((30, 30, 30), np.uint8)
    seg[:13, :25, :25] = 1
    seg[13:25, :25, :25] = 2
    image = np.random.default_rng(0).normal(100, 10, seg.shape).astype(np.float32)
    write_case(root, "bad", image, seg)


def truncated_image(root: Path) -> None:
    """A clean case whose image file keeps its header but loses the second half."""
    write_case(root, "bad", *hippocampus_pair())
    path = root / "images" / "bad.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def image_with(value: float) -> np.ndarray:
    """The image of a plausible case with ``value`` in its first voxel, float32 [X, Y, Z]."""
    image = hippocampus_pair()[0]
    image[0, 0, 0] = value
    return image


def larger_than_patch(root: Path) -> None:
    """A plausible case zero-padded to 80 x 80 voxels in-plane (axes 1 and 2)."""
    image, seg = hippocampus_pair()
    padding = ((0, 0), (0, 80 - SHAPE[1]), (0, 80 - SHAPE[2]))
    write_case(root, "bad", np.pad(image, padding), np.pad(seg, padding))


def with_value(value: float, seg: np.ndarray) -> np.ndarray:
    """A copy of ``seg`` (in its dtype) whose first voxel holds ``value``."""
    seg = seg.copy()
    seg[0, 0, 0] = value
    return seg


# Each scenario writes one defective case "bad"; the expected misfit kinds of that case.
MISFIT_SCENARIOS = {
    "image_without_label": (lambda root: write_case(root, "bad", hippocampus_pair()[0], None),
                            {"no_label"}),
    "label_without_image": (lambda root: write_case(root, "bad", None, hippocampus_pair()[1]),
                            {"no_image"}),
    "shape_mismatch": (lambda root: write_case(root, "bad", hippocampus_pair()[0],
                                               hippocampus_pair((20, 24, 23))[1]),
                       {"shape_mismatch"}),
    "affine_mismatch": (lambda root: write_case(root, "bad", *hippocampus_pair(),
                                                label_affine=shifted(5.0)),
                        {"affine_mismatch"}),
    "spacing_mismatch": (lambda root: write_case(root, "bad", *hippocampus_pair(),
                                                 label_affine=np.diag([1.0, 1.0, 2.0, 1.0])),
                         {"affine_mismatch", "spacing"}),
    "spacing_other_than_1_mm": (lambda root: write_case(
        root, "bad", *hippocampus_pair(), image_affine=np.diag([1.0, 1.0, 2.0, 1.0]),
        label_affine=np.diag([1.0, 1.0, 2.0, 1.0])), {"spacing"}),
    "label_value_3": (lambda root: write_case(
        root, "bad", hippocampus_pair()[0], with_value(3, hippocampus_pair()[1])),
        {"label_values"}),
    "label_value_1_5": (lambda root: write_case(
        root, "bad", hippocampus_pair()[0],
        with_value(1.5, hippocampus_pair()[1].astype(np.float32))), {"label_values"}),
    "no_posterior": (lambda root: write_case(root, "bad", hippocampus_pair()[0],
                                             np.minimum(hippocampus_pair()[1], 1)),
                     {"missing_class"}),
    "tiny_label": (lambda root: write_case(root, "bad", *synthetic_pair()),  # about 130 mm3
                   {"implausible_volume"}),
    "huge_label": (huge_label, {"implausible_volume"}),
    "unreadable_image": (broken_file, {"unreadable"}),
    "four_d_image": (four_d_image, {"unreadable"}),
    "truncated_image": (truncated_image, {"truncated"}),
    "nan_voxel": (lambda root: write_case(root, "bad", image_with(np.nan),
                                          hippocampus_pair()[1]), {"non_finite"}),
    "inf_voxel": (lambda root: write_case(root, "bad", image_with(np.inf),
                                          hippocampus_pair()[1]), {"non_finite"}),
    "all_zero_image": (lambda root: write_case(root, "bad", np.zeros(SHAPE, np.float32),
                                               hippocampus_pair()[1]), {"constant_image"}),
    "larger_than_patch": (larger_than_patch, {"larger_than_patch"}),
}


@pytest.fixture
def clean_root(tmp_path: Path) -> Path:
    """Three clean, plausible cases good_0..good_2 in the course layout."""
    for seed in range(3):
        write_case(tmp_path / "raw", f"good_{seed}", *hippocampus_pair(seed=seed))
    return tmp_path / "raw"


def misfit_kinds(reports) -> dict[str, set[str]]:
    """{case: set of misfit kinds} of the cases that have any."""
    return {report.case: {misfit.kind for misfit in report.misfits}
            for report in reports if report.misfits}


# --- pairing (S1.01) -------------------------------------------------------------------------

def test_pairing_lists_every_case_name_once_with_none_for_the_missing_file(tmp_path):
    for folder, names in (("images", ["a", "b"]), ("labels", ["b", "c"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.nii.gz").touch()
    pairs = eda.pair_files(tmp_path)
    assert [pair.case for pair in pairs] == ["a", "b", "c"]
    assert pairs[0].image_path == tmp_path / "images" / "a.nii.gz" and pairs[0].label_path is None
    assert pairs[1].label_path == tmp_path / "labels" / "b.nii.gz"
    assert pairs[2].image_path is None


@pytest.mark.parametrize("missing", ["images", "labels"])
def test_pairing_names_the_missing_folder(tmp_path, missing):
    for folder in {"images", "labels"} - {missing}:
        (tmp_path / folder).mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / missing))):
        eda.pair_files(tmp_path)


def test_pairing_of_empty_folders_says_no_nifti_file_was_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.nii\.gz file"):
        eda.pair_files(tmp_path)


def test_data_dir_follows_the_kits_rule_in_order(tmp_path, monkeypatch):
    hippocampus_kit = eda.import_kit()  # the module eda.find_data_dir asks
    kit_data = tmp_path / "kit" / "data"
    shared = tmp_path / "shared" / "data" / "hippocampus" / "TrainingSet"
    from_env = tmp_path / "elsewhere"
    monkeypatch.setattr(hippocampus_kit, "DATA_DEST", kit_data)
    monkeypatch.setattr(hippocampus_kit, "SHARED_TRAINING_SET", shared)
    monkeypatch.delenv(hippocampus_kit.DATA_ENV, raising=False)
    assert eda.find_data_dir() is None
    for root in (shared, kit_data / "TrainingSet", from_env):
        (root / "images").mkdir(parents=True)
        (root / "labels").mkdir(parents=True)
    assert eda.find_data_dir() == kit_data / "TrainingSet"  # the kit's copy before a shared one
    monkeypatch.setenv(hippocampus_kit.DATA_ENV, str(from_env))
    assert eda.find_data_dir() == from_env  # $HIPPOCAMPUS_DATA first


# --- header facts (S1.02) --------------------------------------------------------------------

def test_header_facts_read_spacing_axis_codes_dtype_and_bits_from_the_header(tmp_path):
    seg = np.zeros((4, 5, 6), np.uint8)  # [X, Y, Z]
    path = write_nifti(tmp_path / "a.nii.gz", seg, np.diag([-2.0, 1.0, 0.5, 1.0]))
    facts, nifti = eda.read_header_facts(path)
    assert facts.path == path
    assert facts.shape == (4, 5, 6)
    assert facts.dtype == "uint8" and facts.bits_per_voxel == 8
    assert facts.spacing_mm == pytest.approx((2.0, 1.0, 0.5))
    assert facts.axis_codes == ("L", "A", "S")
    assert facts.file_format.startswith("NIfTI-1 single file") and "gzip" in facts.file_format
    np.testing.assert_allclose(facts.affine, np.diag([-2.0, 1.0, 0.5, 1.0]))
    assert isinstance(nifti, nib.Nifti1Image)


@pytest.mark.parametrize("unit, zoom, spacing_mm", [("mm", 1.0, 1.0), ("micron", 1000.0, 1.0),
                                                     ("meter", 0.002, 2.0)])
def test_header_facts_convert_the_spacing_to_mm_from_the_header_unit(tmp_path, unit, zoom,
                                                                      spacing_mm):
    nifti = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.diag([zoom, zoom, zoom, 1.0]))
    nifti.header.set_xyzt_units(unit, "sec")
    nib.save(nifti, tmp_path / "a.nii.gz")
    facts, _ = eda.read_header_facts(tmp_path / "a.nii.gz")
    assert facts.units == (unit, "sec")
    assert facts.spacing_mm == pytest.approx(3 * (spacing_mm,))
    assert facts.dtype == "float32" and facts.bits_per_voxel == 32


def test_header_facts_of_a_file_that_is_not_nifti_raise_naming_the_file(tmp_path):
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(b"not a NIfTI file")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        eda.read_header_facts(path)


def test_header_facts_of_a_4d_file_raise_asking_for_a_3d_volume(tmp_path):
    path = write_nifti(tmp_path / "a.nii.gz", np.zeros((2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="3-D"):
        eda.read_header_facts(path)


# --- volume (S1.03) --------------------------------------------------------------------------

def block(label: int) -> np.ndarray:
    """[4, 4, 4] zeros with a 2 x 2 x 2 block of ``label``."""
    seg = np.zeros((4, 4, 4), np.uint8)
    seg[1:3, 1:3, 1:3] = label
    return seg


def two_blocks() -> np.ndarray:
    """[4, 4, 4]: 8 voxels of label 1 in one corner, 8 of label 2 in the opposite one."""
    seg = np.zeros((4, 4, 4), np.uint8)
    seg[:2, :2, :2] = 1
    seg[2:, 2:, 2:] = 2
    return seg


@pytest.mark.parametrize("seg, spacing_mm, expected", [
    (block(1), (1.0, 1.0, 1.0), {"anterior": 8.0, "posterior": 0.0, "total": 8.0}),
    (block(2), (1.0, 1.0, 1.0), {"anterior": 0.0, "posterior": 8.0, "total": 8.0}),
    (block(1), (0.5, 1.0, 2.0), {"anterior": 8.0, "posterior": 0.0, "total": 8.0}),
    (block(1), (2.0, 2.0, 2.0), {"anterior": 64.0, "posterior": 0.0, "total": 64.0}),
    (two_blocks(), (1.0, 1.0, 1.0), {"anterior": 8.0, "posterior": 8.0, "total": 16.0}),
    (two_blocks(), (1.0, 1.0, 3.0), {"anterior": 24.0, "posterior": 24.0, "total": 48.0}),
    (with_value(3, block(1)), (1.0, 1.0, 1.0), {"anterior": 8.0, "posterior": 0.0, "total": 8.0}),
    (np.zeros((3, 3, 3)), (1.0, 1.0, 1.0), {"anterior": 0.0, "posterior": 0.0, "total": 0.0}),
])
def test_volume_is_the_voxel_count_of_each_label_times_the_voxel_volume(seg, spacing_mm,
                                                                        expected):
    volume = eda.hippocampus_volume_mm3(seg, spacing_mm)
    assert volume == pytest.approx(expected)
    assert all(type(value) is float for value in volume.values())


def test_volume_of_a_float32_label_counts_the_same_voxels_as_uint8():
    _, seg = hippocampus_pair()  # [20, 24, 22], 1344 voxels per class
    expected = {"anterior": HALF_MM3, "posterior": HALF_MM3, "total": 2 * HALF_MM3}
    assert eda.hippocampus_volume_mm3(seg.astype(np.float32), (1, 1, 1)) == pytest.approx(expected)


# --- misfits on synthetic data (S1.04, S1.05) ------------------------------------------------

def test_a_clean_data_set_yields_no_misfit_and_plausible_volumes(clean_root):
    reports = eda.analyse_data_set(clean_root)
    assert [report.case for report in reports] == ["good_0", "good_1", "good_2"]
    assert misfit_kinds(reports) == {}
    for report in reports:
        assert report.status == "ok" and report.reason == ""
        assert report.volume_mm3 == pytest.approx(
            {"anterior": HALF_MM3, "posterior": HALF_MM3, "total": 2 * HALF_MM3})


@pytest.mark.parametrize("scenario", sorted(MISFIT_SCENARIOS))
def test_each_misfit_kind_is_found_with_a_reason_naming_the_file(clean_root, scenario):
    build, expected_kinds = MISFIT_SCENARIOS[scenario]
    build(clean_root)
    reports = eda.analyse_data_set(clean_root)
    assert misfit_kinds(reports) == {"bad": expected_kinds}
    (bad,) = [report for report in reports if report.case == "bad"]
    assert bad.status == "misfit"
    assert expected_kinds <= set(eda.MISFIT_KINDS)
    for misfit in bad.misfits:
        assert "bad.nii.gz" in misfit.message, misfit
        assert f"{misfit.kind}: {misfit.message}" in bad.reason


def test_spacing_misfit_is_reported_once_for_each_file_off_the_1_mm_grid(clean_root):
    MISFIT_SCENARIOS["spacing_other_than_1_mm"][0](clean_root)
    (bad,) = [report for report in eda.analyse_data_set(clean_root) if report.case == "bad"]
    messages = [misfit.message for misfit in bad.misfits if misfit.kind == "spacing"]
    assert len(messages) == 2
    assert "images" in messages[0] and "labels" in messages[1]
    assert all("1 x 1 x 2 mm" in message for message in messages)
    # Volumes follow the header's spacing: 2 mm3 per voxel.
    assert bad.volume_mm3["total"] == pytest.approx(4 * HALF_MM3)


def test_shape_mismatch_message_gives_both_shapes(clean_root):
    MISFIT_SCENARIOS["shape_mismatch"][0](clean_root)
    (bad,) = [report for report in eda.analyse_data_set(clean_root) if report.case == "bad"]
    assert "image shape (20, 24, 22) != label shape (20, 24, 23)" in bad.reason


@pytest.mark.parametrize("total_mm3, plausible", [(999.0, False), (1000.0, True),
                                                  (8000.0, True), (8001.0, False)])
def test_plausible_band_includes_its_limits_and_nothing_beyond(total_mm3, plausible):
    seg = np.zeros((1, 1, 2), np.uint8)  # one voxel per class, sized to give total_mm3
    seg[0, 0] = [1, 2]
    kinds = {misfit.kind for misfit in eda.label_misfits(seg, (total_mm3 / 2, 1.0, 1.0),
                                                         Path("x.nii.gz"))}
    assert ("implausible_volume" not in kinds) == plausible


def test_normal_range_lies_inside_the_plausible_band():
    low, high = eda.PLAUSIBLE_VOLUME_MM3
    assert low < eda.NORMAL_VOLUME_MM3[0] < eda.NORMAL_VOLUME_MM3[1] < high


# --- curated copy (S1.06) --------------------------------------------------------------------

def test_curated_copies_hold_image_then_label_of_each_clean_case_only(clean_root, tmp_path):
    MISFIT_SCENARIOS["label_value_3"][0](clean_root)
    copies = eda.curated_copies(eda.analyse_data_set(clean_root), tmp_path / "out")
    assert copies == [(clean_root / folder / f"good_{case}.nii.gz",
                       tmp_path / "out" / folder / f"good_{case}.nii.gz")
                      for case in range(3) for folder in ("images", "labels")]


def test_curate_copies_byte_for_byte_and_writes_the_table_and_histogram(clean_root, tmp_path):
    MISFIT_SCENARIOS["image_without_label"][0](clean_root)
    out = tmp_path / "out"
    written = eda.curate(eda.analyse_data_set(clean_root), out)
    for folder in ("images", "labels"):
        names = sorted(path.name for path in (out / folder).iterdir())
        assert names == [f"good_{case}.nii.gz" for case in range(3)]
        for name in names:
            assert filecmp.cmp(clean_root / folder / name, out / folder / name, shallow=False)
    with written["cases_csv"].open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert set(eda.CSV_COLUMNS) <= set(rows[0])
    assert [(row["case"], row["status"]) for row in rows] == [
        ("bad", "misfit"), ("good_0", "ok"), ("good_1", "ok"), ("good_2", "ok")]
    assert rows[0]["reason"].startswith("no_label: ") and rows[0]["total_mm3"] == ""
    assert rows[1]["shape"] == "20x24x22" and rows[1]["spacing_mm"] == "1x1x1"
    assert float(rows[1]["total_mm3"]) == 2 * HALF_MM3
    assert written["histogram"].read_bytes().startswith(PNG_MAGIC)


def test_curate_refuses_a_folder_with_old_data_unless_asked_to_overwrite(clean_root, tmp_path):
    reports = eda.analyse_data_set(clean_root)
    out = tmp_path / "out"
    write_nifti(out / "images" / "stale.nii.gz", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(FileExistsError, match="--overwrite"):
        eda.curate(reports, out)
    eda.curate(reports, out, overwrite=True)
    assert not (out / "images" / "stale.nii.gz").exists()
    assert len(list((out / "images").iterdir())) == 3


def test_curate_refuses_to_write_into_the_raw_data_folder(clean_root):
    with pytest.raises(ValueError, match="choose another --out-dir"):
        eda.curate(eda.analyse_data_set(clean_root), clean_root, overwrite=True)
    assert len(list((clean_root / "images").iterdir())) == 3


# --- command line ----------------------------------------------------------------------------

def test_command_writes_the_curated_set_and_prints_summary_and_misfits(clean_root, tmp_path):
    MISFIT_SCENARIOS["label_without_image"][0](clean_root)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(SECTION1 / "eda.py"), "--data-dir",
                             str(clean_root), "--out-dir", str(out)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "4 cases: 3 clean pairs, 1 misfit cases" in result.stdout
    assert "misfit bad: no_image:" in result.stdout
    assert (out / "cases.csv").is_file()
    assert (out / "volume_histogram.png").read_bytes().startswith(PNG_MAGIC)
    assert len(list((out / "labels").iterdir())) == 3


def test_command_with_a_missing_data_folder_fails_naming_it(tmp_path, capsys):
    assert eda.main(["--data-dir", str(tmp_path / "nowhere"), "--out-dir",
                     str(tmp_path / "out")]) == 2
    assert str(tmp_path / "nowhere" / "images") in capsys.readouterr().err


def test_command_help_ends_every_option_with_its_default():
    for action in eda.build_parser()._actions:
        if action.dest != "help":
            assert re.search(r"\(default: .+\)$", action.help), action.dest


# --- real data -------------------------------------------------------------------------------

REAL_MISFITS = {  # ../shared/data/hippocampus/README.md
    "hippocampus_118": {"no_label"},
    "hippocampus_010": {"no_image"},
    # Not a hippocampus label: 512 x 512 x 94 voxels at 0.73 x 0.73 x 5 mm, values {0, 1}.
    "hippocampus_281": {"no_image", "spacing", "missing_class", "implausible_volume"},
}
REAL_CLEAN_PAIRS = 208


@pytest.fixture(scope="module")
def real_run(real_data_dir, tmp_path_factory):
    """The command run once on the real data, and the analysis it printed."""
    out = tmp_path_factory.mktemp("eda_real")
    assert eda.main(["--data-dir", str(real_data_dir), "--out-dir", str(out)]) == 0
    return eda.analyse_data_set(real_data_dir), out


@pytest.mark.real_data
def test_real_data_misfits_are_exactly_those_the_data_readme_lists(real_run, real_data_dir):
    reports, _ = real_run
    assert misfit_kinds(reports) == REAL_MISFITS
    reasons = {report.case: report.reason for report in reports}
    assert str(real_data_dir / "images" / "hippocampus_118.nii.gz") in reasons["hippocampus_118"]
    assert str(real_data_dir / "labels" / "hippocampus_010.nii.gz") in reasons["hippocampus_010"]
    assert "0.734 x 0.734 x 5 mm" in reasons["hippocampus_281"]


@pytest.mark.real_data
def test_real_curated_set_holds_every_clean_pair_byte_for_byte_and_nothing_else(
        real_run, real_data_dir):
    _, out = real_run
    images = {path.name for path in (real_data_dir / "images").iterdir()}
    labels = {path.name for path in (real_data_dir / "labels").iterdir()}
    clean = sorted(images & labels)
    assert len(clean) == REAL_CLEAN_PAIRS
    for folder in ("images", "labels"):
        assert sorted(path.name for path in (out / folder).iterdir()) == clean
        match, mismatch, errors = filecmp.cmpfiles(real_data_dir / folder, out / folder, clean,
                                                   shallow=False)
        assert (len(match), mismatch, errors) == (REAL_CLEAN_PAIRS, [], [])


@pytest.mark.real_data
def test_real_cases_csv_has_one_row_per_case_name_and_a_png_histogram(real_run, real_data_dir):
    reports, out = real_run
    with (out / "cases.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    names = {eda.case_name(path) for folder in ("images", "labels")
             for path in (real_data_dir / folder).iterdir()}
    assert [row["case"] for row in rows] == sorted(names)
    assert sum(row["status"] == "ok" for row in rows) == REAL_CLEAN_PAIRS
    by_case = {report.case: report for report in reports}
    for row in rows:
        if row["status"] == "ok":
            assert float(row["total_mm3"]) == pytest.approx(
                by_case[row["case"]].volume_mm3["total"], abs=0.01)
    assert (out / "volume_histogram.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.real_data
def test_real_volumes_agree_with_an_independent_voxel_count(real_run):
    reports, _ = real_run
    clean = [report for report in reports if report.status == "ok"]
    assert len(clean) == REAL_CLEAN_PAIRS
    for report in clean:
        nifti = nib.load(report.label.path)
        values, counts = np.unique(np.asanyarray(nifti.dataobj), return_counts=True)
        voxel_mm3 = abs(np.linalg.det(nifti.affine[:3, :3]))
        count = dict(zip(values.tolist(), counts.tolist(), strict=True))
        expected = {"anterior": count.get(1, 0) * voxel_mm3,
                    "posterior": count.get(2, 0) * voxel_mm3}
        expected["total"] = expected["anterior"] + expected["posterior"]
        assert report.volume_mm3 == pytest.approx(expected), report.case
        # One hippocampus each, inside the published normal adult range.
        low, high = eda.NORMAL_VOLUME_MM3
        assert low <= report.volume_mm3["total"] <= high, report.case


@pytest.mark.real_data
def test_real_clean_headers_are_gzipped_nifti1_at_1_mm_with_ras_axis_codes(real_run):
    reports, _ = real_run
    bits = {"uint8": 8, "float32": 32}
    for report in reports:
        if report.status != "ok":
            continue
        for facts in (report.image, report.label):
            assert facts.file_format == "NIfTI-1 single file (magic n+1), gzip-compressed"
            assert facts.units == ("mm", "sec")
            assert facts.spacing_mm == (1.0, 1.0, 1.0)
            assert facts.axis_codes == ("R", "A", "S")
            assert facts.bits_per_voxel == bits[facts.dtype], facts.path


@pytest.mark.real_data
@pytest.mark.slow
def test_solution_notebook_runs_top_to_bottom_on_the_real_data(real_data_dir, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="pip install nbformat nbclient ipykernel")
    nbclient = pytest.importorskip("nbclient", reason="pip install nbclient ipykernel")
    pytest.importorskip("ipykernel", reason="the python3 kernel needs: pip install ipykernel")
    notebook = nbformat.read(SECTION1 / "EDA.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells), "commit it without outputs"
    (index,) = [number for number, cell in enumerate(notebook.cells)
                if "parameters" in cell.metadata.get("tags", [])]
    # Like papermill: override the parameters in a cell right after theirs.
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(
        f"DATA_DIR = Path({str(real_data_dir)!r})\nOUT_DIR = Path({str(tmp_path / 'eda')!r})"))
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(SECTION1)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2
    text = "".join(output.get("text", "") for output in outputs)
    assert f"{REAL_CLEAN_PAIRS} clean pairs, 3 misfit cases" in text
    assert len(list((tmp_path / "eda" / "labels").iterdir())) == REAL_CLEAN_PAIRS


# --- voxels of damaged copies of real volumes ------------------------------------------------

REAL_CASE = "hippocampus_001"  # a clean pair, float32 image [35, 51, 35]
PATCH_PLUS_PX = 80  # in-plane size above the 64 px patch: the course pipeline would skip it


def damaged_copies(real_data_dir: Path, root: Path) -> dict[str, str]:
    """Copy REAL_CASE clean and damaged five ways into root; {case: expected misfit kind}."""
    image_path = real_data_dir / "images" / f"{REAL_CASE}.nii.gz"
    label_path = real_data_dir / "labels" / f"{REAL_CASE}.nii.gz"
    nifti = nib.load(image_path)
    image = np.asanyarray(nifti.dataobj)
    seg = np.asanyarray(nib.load(label_path).dataobj)
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True)

    def save(case: str, case_image: np.ndarray, case_seg: np.ndarray = seg) -> Path:
        copy = nib.Nifti1Image(case_image, nifti.affine, nifti.header)
        copy.set_data_dtype(case_image.dtype)  # a float copy of a uint8 image keeps its NaN
        nib.save(copy, root / "images" / f"{case}.nii.gz")
        nib.save(nib.Nifti1Image(case_seg, nifti.affine), root / "labels" / f"{case}.nii.gz")
        return root / "images" / f"{case}.nii.gz"

    save("clean", image)
    truncated = save("truncated", image)
    truncated.write_bytes(truncated.read_bytes()[:truncated.stat().st_size // 2])
    with_nan = image.astype(np.float32)
    with_nan[10, 20:23, 15] = np.nan  # 3 NaN voxels
    save("nan", with_nan)
    with_inf = image.astype(np.float32)
    with_inf[5, 5, 5] = np.inf  # 1 infinite voxel
    save("inf", with_inf)
    save("zeros", np.zeros_like(image))
    padding = ((0, 0), (0, PATCH_PLUS_PX - image.shape[1]), (0, PATCH_PLUS_PX - image.shape[2]))
    save("large", np.pad(image, padding), np.pad(seg, padding))
    return {"truncated": "truncated", "nan": "non_finite", "inf": "non_finite",
            "zeros": "constant_image", "large": "larger_than_patch"}


@pytest.mark.real_data
def test_damaged_copies_of_a_real_volume_are_misfits_with_their_reason(real_data_dir,
                                                                         tmp_path):
    expected = damaged_copies(real_data_dir, tmp_path / "raw")
    reports = {report.case: report for report in eda.analyse_data_set(tmp_path / "raw")}
    assert {case: {misfit.kind for misfit in report.misfits}
            for case, report in reports.items()} == {
        "clean": set(), **{case: {kind} for case, kind in expected.items()}}
    assert "truncated or corrupt" in reports["truncated"].reason
    assert "3 NaN and 0 infinite voxels" in reports["nan"].reason
    assert "0 NaN and 1 infinite voxels" in reports["inf"].reason
    assert "every voxel is 0" in reports["zeros"].reason
    assert f"{PATCH_PLUS_PX} x {PATCH_PLUS_PX} px exceeds" in reports["large"].reason
    for case in expected:
        assert str(tmp_path / "raw" / "images" / f"{case}.nii.gz") in reports[case].reason


@pytest.mark.real_data
def test_damaged_copies_of_a_real_volume_stay_out_of_the_curated_set(real_data_dir, tmp_path):
    damaged_copies(real_data_dir, tmp_path / "raw")
    out = tmp_path / "curated"
    assert eda.main(["--data-dir", str(tmp_path / "raw"), "--out-dir", str(out)]) == 0
    for folder in ("images", "labels"):
        assert [path.name for path in (out / folder).iterdir()] == ["clean.nii.gz"]


@pytest.mark.real_data
def test_a_larger_patch_size_admits_the_80_px_copy(real_data_dir, tmp_path):
    damaged_copies(real_data_dir, tmp_path / "raw")
    reports = eda.analyse_data_set(tmp_path / "raw", patch_size_px=PATCH_PLUS_PX)
    assert [report.case for report in reports if report.status == "ok"] == ["clean", "large"]


# --- image voxels on hand-built arrays -------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_an_image_with_two_values_inside_the_patch_has_no_image_misfit(dtype):
    image = np.zeros((2, 64, 64), dtype)  # [2, 64, 64]: exactly the patch in-plane
    image[1] = 7
    assert eda.image_misfits(image, Path("a.nii.gz")) == []


def test_constant_nonzero_image_is_a_misfit_naming_its_value():
    (misfit,) = eda.image_misfits(np.full((2, 3, 4), 5.5, np.float32), Path("a.nii.gz"))
    assert misfit.kind == "constant_image" and "every voxel is 5.5" in misfit.message


def test_an_all_nan_image_is_non_finite_only_not_also_constant():
    (misfit,) = eda.image_misfits(np.full((2, 3, 4), np.nan, np.float32), Path("a.nii.gz"))
    assert misfit.kind == "non_finite"
    assert "24 NaN and 0 infinite voxels out of 24" in misfit.message


@pytest.mark.parametrize("shape, too_large", [((3, 64, 65), True), ((3, 65, 64), True),
                                              ((100, 64, 64), False)])
def test_only_the_in_plane_axes_1_and_2_are_compared_with_the_patch(shape, too_large):
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    kinds = [misfit.kind for misfit in eda.image_misfits(image, Path("a.nii.gz"))]
    assert kinds == (["larger_than_patch"] if too_large else [])


def test_patch_size_is_the_section_2_pipelines_default():
    import run_ml_pipeline  # solution/section2/src, on sys.path through conftest

    assert eda.PATCH_SIZE_PX == run_ml_pipeline.Config().patch_size


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_command_refuses_a_patch_size_that_is_not_a_positive_integer(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        eda.main(["--data-dir", str(tmp_path), "--patch-size", value])
    assert exit_info.value.code == 2
    assert "--patch-size" in capsys.readouterr().err

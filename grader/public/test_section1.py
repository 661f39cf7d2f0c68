"""Public tests of section 1's exploratory analysis, section1/eda.py (TASKs S1.01-S1.06).

Each TASK is tested on its own: header misfits (S1.04) get hand-built header records rather
than what S1.02 reads, and label misfits (S1.05) get the true volume of their label rather
than what S1.03 computes, so that one mistake costs the points of one TASK only.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from grader.runtime.fixtures_section1 import (
    case_report,
    fix_volume,
    header_facts,
    kinds_of,
    touch_cases,
    write_nifti,
)

# The kit's section1 deliverable; a course-starter one is graded by test_course_section1.py.
pytestmark = pytest.mark.deliverable("section1", "kit")

# --- S1.01 pair_files -----------------------------------------------------------------------


@pytest.fixture
def orphans_root(tmp_path: Path) -> Path:
    """images/ {a, b} and labels/ {b, c}: a has no label, c has no image."""
    return touch_cases(tmp_path / "raw", images=["a", "b"], labels=["b", "c"])


@pytest.mark.task("S1.01", points=1)
def test_pairing_keeps_an_image_without_label_and_a_label_without_image(code, orphans_root):
    eda = code.import_module("eda", section=1)
    pairs = {pair.case: pair for pair in eda.pair_files(orphans_root)}
    assert set(pairs) == {"a", "b", "c"}, "every case name of either folder gives one pair"
    assert pairs["a"].label_path is None, "image a has no label: its label_path must be None"
    assert pairs["c"].image_path is None, "label c has no image: its image_path must be None"


@pytest.mark.task("S1.01", points=1)
def test_pairing_gives_each_case_once_in_name_order_with_the_paths_of_its_files(
        code, orphans_root):
    eda = code.import_module("eda", section=1)
    pairs = eda.pair_files(orphans_root)
    found = [(pair.case, pair.image_path, pair.label_path) for pair in pairs]
    assert found == [
        ("a", orphans_root / "images" / "a.nii.gz", None),
        ("b", orphans_root / "images" / "b.nii.gz", orphans_root / "labels" / "b.nii.gz"),
        ("c", None, orphans_root / "labels" / "c.nii.gz"),
    ]


# --- S1.02 describe_header ------------------------------------------------------------------


@pytest.fixture
def flipped_2_mm_file(tmp_path: Path) -> Path:
    """uint8 [3, 4, 5] saved with affine diag(-2, 1, 1, 1): 2 mm along axis 0, towards Left."""
    return write_nifti(tmp_path / "flipped.nii.gz", np.zeros((3, 4, 5), np.uint8),
                       np.diag([-2.0, 1.0, 1.0, 1.0]))


@pytest.mark.task("S1.02", points=1)
def test_header_spacing_is_positive_mm_and_axis_codes_follow_the_affine(code, flipped_2_mm_file):
    eda = code.import_module("eda", section=1)
    nifti = nib.load(flipped_2_mm_file)
    facts = eda.describe_header(nifti.header, nifti.affine)
    assert tuple(facts["spacing_mm"]) == pytest.approx((2.0, 1.0, 1.0)), \
        "spacing_mm: voxel size in mm from the header, positive even where the axis is flipped"
    assert tuple(facts["axis_codes"]) == ("L", "A", "S"), \
        "axis_codes: the direction each axis increases towards, from the affine"


@pytest.mark.task("S1.02", points=1)
def test_header_facts_give_the_shape_dtype_bits_and_units_of_a_uint8_file(
        code, flipped_2_mm_file):
    eda = code.import_module("eda", section=1)
    nifti = nib.load(flipped_2_mm_file)
    facts = eda.describe_header(nifti.header, nifti.affine)
    assert tuple(facts["shape"]) == (3, 4, 5)
    assert np.dtype(facts["dtype"]) == np.uint8, "dtype: the on-disk data type"
    assert facts["bits_per_voxel"] == 8, "bits_per_voxel: the header's bitpix"
    assert tuple(facts["units"]) == ("mm", "sec"), "units: the header's (space, time) units"


# --- S1.03 hippocampus_volume_mm3 -----------------------------------------------------------


def block_of(label: int) -> np.ndarray:
    """uint8 [4, 4, 4] zeros with a 2 x 2 x 2 block (8 voxels) of ``label``."""
    seg = np.zeros((4, 4, 4), np.uint8)
    seg[1:3, 1:3, 1:3] = label
    return seg


@pytest.mark.task("S1.03", points=1)
def test_volume_of_a_2x2x2_block_of_label_1_at_1_mm_is_8_mm3(code):
    eda = code.import_module("eda", section=1)
    volume = eda.hippocampus_volume_mm3(block_of(1), (1.0, 1.0, 1.0))
    assert volume == pytest.approx({"anterior": 8.0, "posterior": 0.0, "total": 8.0})


@pytest.mark.task("S1.03", points=1)
def test_volume_counts_labels_1_and_2_separately_and_adds_them_up(code):
    eda = code.import_module("eda", section=1)
    seg = np.zeros((4, 4, 4), np.uint8)  # [4, 4, 4]
    seg[:2, :2, :2] = 1  # 8 voxels of label 1 (anterior)
    seg[2:, :, :] = 2  # 32 voxels of label 2 (posterior)
    volume = eda.hippocampus_volume_mm3(seg, (1.0, 1.0, 1.0))
    assert volume == pytest.approx({"anterior": 8.0, "posterior": 32.0, "total": 40.0})


@pytest.mark.task("S1.03", points=1)
def test_voxels_of_2_x_1_x_1_mm_double_the_volume(code):
    eda = code.import_module("eda", section=1)
    volume = eda.hippocampus_volume_mm3(block_of(2), (2.0, 1.0, 1.0))  # 8 voxels of 2 mm3
    assert volume == pytest.approx({"anterior": 0.0, "posterior": 16.0, "total": 16.0})


# --- S1.04 header_misfits -------------------------------------------------------------------


@pytest.mark.task("S1.04", points=1)
def test_an_image_without_label_and_a_label_without_image_are_misfits_naming_the_file(code):
    eda = code.import_module("eda", section=1)
    image = header_facts(eda, Path("raw/images/lone_image.nii.gz"))
    label = header_facts(eda, Path("raw/labels/lone_label.nii.gz"))
    for facts, missing, kind in ((image, "label", "no_label"), (label, "image", "no_image")):
        misfits = eda.header_misfits(image=facts if missing == "label" else None,
                                     label=facts if missing == "image" else None)
        assert kinds_of(misfits) == [kind], f"a file without {missing} gives one {kind!r}"
        assert facts.path.name in misfits[0].message, "the message names the file"


@pytest.mark.task("S1.04", points=1)
def test_image_and_label_of_different_shapes_are_a_shape_mismatch_giving_both_shapes(code):
    eda = code.import_module("eda", section=1)
    image = header_facts(eda, Path("raw/images/x.nii.gz"), shape=(35, 51, 35))
    label = header_facts(eda, Path("raw/labels/x.nii.gz"), shape=(34, 52, 35))
    misfits = eda.header_misfits(image, label)
    assert kinds_of(misfits) == ["shape_mismatch"]
    assert "(35, 51, 35)" in misfits[0].message and "(34, 52, 35)" in misfits[0].message, \
        "the message gives the image's and the label's shape"


@pytest.mark.task("S1.04", points=1)
def test_real_data_header_misfits_are_118_no_label_and_010_and_281_no_image(code, real_data):
    eda = code.import_module("eda", section=1)
    files = {folder: {path.name[:-len(".nii.gz")]: path
                      for path in (real_data / folder).glob("*.nii.gz")}
             for folder in ("images", "labels")}
    found = {}
    for case in sorted(files["images"].keys() | files["labels"].keys()):
        facts = {"image": None, "label": None}
        for folder, side in (("images", "image"), ("labels", "label")):
            path = files[folder].get(case)
            if path is not None:
                nifti = nib.load(path)  # the header only; the voxels stay on disk
                facts[side] = header_facts(eda, path, nifti.shape, nifti.affine,
                                           str(nifti.get_data_dtype()))
        misfits = eda.header_misfits(facts["image"], facts["label"])
        if misfits:
            found[case] = kinds_of(misfits)
    # 281: 512 x 512 x 94 voxels at 0.73 x 0.73 x 5 mm (../shared/data/hippocampus/README.md)
    assert found == {"hippocampus_010": ["no_image"], "hippocampus_118": ["no_label"],
                     "hippocampus_281": ["no_image", "spacing"]}


# --- S1.05 label_misfits --------------------------------------------------------------------


def half_and_half() -> np.ndarray:
    """uint8 [12, 12, 12]: label 1 in axis-0 slices 0-5, label 2 in slices 6-11 (864 voxels,
    864 mm3 at 1 mm, each), 1728 mm3 in all: a plausible hippocampus."""
    seg = np.ones((12, 12, 12), np.uint8)
    seg[6:] = 2
    return seg


@pytest.mark.task("S1.05", points=1)
def test_label_values_outside_0_1_2_are_a_label_values_misfit(code):
    eda = code.import_module("eda", section=1)
    for value, dtype in ((3, np.uint8), (1.5, np.float32)):
        seg = half_and_half().astype(dtype)
        seg[0, 0, 0] = value  # one anterior voxel fewer
        fix_volume(eda, {"anterior": 863.0, "posterior": 864.0, "total": 1727.0})
        misfits = eda.label_misfits(seg, (1.0, 1.0, 1.0), Path("raw/labels/odd.nii.gz"))
        assert kinds_of(misfits) == ["label_values"], \
            f"a {np.dtype(dtype)} label holding a voxel of value {value} is a misfit"
        assert "odd.nii.gz" in misfits[0].message, "the message names the file"


@pytest.mark.task("S1.05", points=1)
def test_a_label_without_posterior_is_a_missing_class_and_a_clean_label_has_no_misfit(code):
    eda = code.import_module("eda", section=1)
    fix_volume(eda, {"anterior": 864.0, "posterior": 864.0, "total": 1728.0})
    clean = eda.label_misfits(half_and_half(), (1.0, 1.0, 1.0), Path("labels/clean.nii.gz"))
    assert clean == [], "labels 0, 1 and 2 over 1728 mm3 make a clean label"
    fix_volume(eda, {"anterior": 1728.0, "posterior": 0.0, "total": 1728.0})
    anterior_only = np.minimum(half_and_half(), 1)  # values {1} only
    misfits = eda.label_misfits(anterior_only, (1.0, 1.0, 1.0), Path("labels/half.nii.gz"))
    assert kinds_of(misfits) == ["missing_class"], "a label without label 2 lacks a class"


# --- S1.06 curated_copies -------------------------------------------------------------------


def mixed_reports(eda, root: Path) -> list:
    """Three clean cases (c1, c2, c4) and a misfit of each sort: a lone image (c0), a lone
    label (c3), a pair with a label misfit (c5)."""
    return [case_report(eda, root, "c0", label=False, misfit_kinds=["no_label"]),
            case_report(eda, root, "c1"), case_report(eda, root, "c2"),
            case_report(eda, root, "c3", image=False, misfit_kinds=["no_image"]),
            case_report(eda, root, "c4"),
            case_report(eda, root, "c5", misfit_kinds=["label_values"])]


@pytest.mark.task("S1.06", points=1)
def test_curated_set_holds_both_files_of_every_clean_pair_and_nothing_else(code, tmp_path):
    eda = code.import_module("eda", section=1)
    raw, out = tmp_path / "raw", tmp_path / "curated"
    copies = eda.curated_copies(mixed_reports(eda, raw), out)
    assert {Path(source) for source, _ in copies} == {
        raw / folder / f"{case}.nii.gz" for case in ("c1", "c2", "c4")
        for folder in ("images", "labels")}, "the image and label of c1, c2, c4, and no other"


@pytest.mark.task("S1.06", points=1)
def test_curated_copies_keep_each_name_under_out_dir_images_and_labels_image_first(
        code, tmp_path):
    eda = code.import_module("eda", section=1)
    raw, out = tmp_path / "raw", tmp_path / "curated"
    copies = eda.curated_copies(mixed_reports(eda, raw), out)
    assert [(Path(source), Path(destination)) for source, destination in copies] == [
        (raw / folder / f"{case}.nii.gz", out / folder / f"{case}.nii.gz")
        for case in ("c1", "c2", "c4") for folder in ("images", "labels")]

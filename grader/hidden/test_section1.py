"""Hidden tests of section 1's exploratory analysis, section1/eda.py (TASKs S1.01-S1.06).

They never leave the instructors, and a failure names only the property violated (``check``),
never an expected value. As in the public tests, each TASK is tested on its own: header
misfits (S1.04) get hand-built header records, and label misfits (S1.05) get the true volume
of their label in place of TASK S1.03's.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from grader.runtime.checks import check
from grader.runtime.fixtures_section1 import (
    case_report,
    header_facts,
    kinds_of,
    touch_cases,
    write_nifti,
)

# The kit's section1 deliverable; a course-starter one is graded by test_course_section1.py.
pytestmark = pytest.mark.deliverable("section1", "kit")

# --- S1.01 pair_files -----------------------------------------------------------------------


@pytest.mark.task("S1.01", points=1)
def test_pairs_come_sorted_by_case_name_whatever_order_the_files_were_made_in(code, tmp_path):
    eda = code.import_module("eda", section=1)
    root = touch_cases(tmp_path / "raw", images=["hippocampus_118", "hippocampus_002",
                                                 "hippocampus_001"],
                       labels=["hippocampus_281", "hippocampus_010", "hippocampus_002",
                               "hippocampus_001"])
    pairs = eda.pair_files(root)
    names = [pair.case for pair in pairs]
    check(sorted(names) == ["hippocampus_001", "hippocampus_002", "hippocampus_010",
                            "hippocampus_118", "hippocampus_281"],
          "pair_files must give one pair per case name found in images/ or labels/")
    check(names == sorted(names), "pair_files must sort the pairs by case name")
    for pair in pairs:
        for folder, path in (("images", pair.image_path), ("labels", pair.label_path)):
            exists = (root / folder / f"{pair.case}.nii.gz").exists()
            check((path is None) == (not exists),
                  f"a pair's {folder[:-1]}_path must be None exactly when that file is missing")
            check(path is None or Path(path) == root / folder / f"{pair.case}.nii.gz",
                  f"a pair's {folder[:-1]}_path must be the {folder} file of its case")


@pytest.mark.task("S1.01", points=1)
def test_pairing_with_one_folder_empty_keeps_every_file_of_the_other(code, tmp_path):
    eda = code.import_module("eda", section=1)
    only_images = touch_cases(tmp_path / "only_images", images=["x", "y"], labels=[])
    pairs = eda.pair_files(only_images)
    check([pair.case for pair in pairs] == ["x", "y"]
          and all(pair.label_path is None and pair.image_path is not None for pair in pairs),
          "images without any label must each give a pair whose label_path is None")
    only_labels = touch_cases(tmp_path / "only_labels", images=[], labels=["z"])
    pairs = eda.pair_files(only_labels)
    check([pair.case for pair in pairs] == ["z"]
          and pairs[0].image_path is None and pairs[0].label_path is not None,
          "a label without any image must give a pair whose image_path is None")


# --- S1.02 describe_header ------------------------------------------------------------------


@pytest.mark.task("S1.02", points=1)
def test_header_spacing_is_converted_to_mm_from_the_header_unit(code):
    eda = code.import_module("eda", section=1)
    # (space unit, zooms in that unit, the spacing in mm); int16 [4, 5, 6] headers
    for unit, zooms, spacing_mm in (("micron", (500.0, 500.0, 1000.0), (0.5, 0.5, 1.0)),
                                    ("meter", (0.001, 0.001, 0.002), (1.0, 1.0, 2.0)),
                                    ("unknown", (0.75, 0.75, 3.0), (0.75, 0.75, 3.0))):
        header = nib.Nifti1Header()
        header.set_data_shape((4, 5, 6))
        header.set_data_dtype(np.int16)
        header.set_zooms(zooms)
        header.set_xyzt_units(unit, "sec")
        facts = eda.describe_header(header, np.diag([*spacing_mm, 1.0]))
        check(tuple(facts["spacing_mm"]) == pytest.approx(spacing_mm, rel=1e-5),
              f"spacing_mm must be the header's zooms converted from {unit!r} to mm")


@pytest.mark.task("S1.02", points=1)
def test_header_facts_of_permuted_anisotropic_int16_and_float32_files(code, tmp_path):
    eda = code.import_module("eda", section=1)
    # axis 0 -> -y (0.5 mm), axis 1 -> +z (2 mm), axis 2 -> +x (3 mm)
    permuted = np.array([[0.0, 0.0, 3.0, 0.0],
                         [-0.5, 0.0, 0.0, 0.0],
                         [0.0, 2.0, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 1.0]])
    for dtype, bits in ((np.int16, 16), (np.float32, 32)):
        path = write_nifti(tmp_path / f"{np.dtype(dtype)}.nii.gz",
                           np.zeros((3, 4, 5), dtype), permuted)  # [3, 4, 5]
        nifti = nib.load(path)
        facts = eda.describe_header(nifti.header, nifti.affine)
        check(tuple(facts["shape"]) == (3, 4, 5), "shape must be the header's data shape")
        check(np.dtype(facts["dtype"]) == np.dtype(dtype),
              "dtype must be the header's on-disk data type")
        check(facts["bits_per_voxel"] == bits, "bits_per_voxel must be the header's bitpix")
        check(tuple(facts["spacing_mm"]) == pytest.approx((0.5, 2.0, 3.0)),
              "spacing_mm must be the voxel size along each array axis, also for a permuted "
              "affine")
        check(tuple(facts["axis_codes"]) == ("P", "S", "R"),
              "axis_codes must follow the affine's columns, also for a permuted affine")


# --- S1.03 hippocampus_volume_mm3 -----------------------------------------------------------


def random_seg(dtype=np.uint8) -> np.ndarray:
    """[5, 6, 7] labels drawn from {0, 1, 2}, the same every call."""
    return np.random.default_rng(3).integers(0, 3, size=(5, 6, 7)).astype(dtype)


def counted_volume(seg: np.ndarray, spacing_mm: tuple[float, ...]) -> dict[str, float]:
    """The volume of labels 1 and 2 in mm3, counted independently of the code under test."""
    voxel_mm3 = spacing_mm[0] * spacing_mm[1] * spacing_mm[2]
    anterior, posterior = (float(np.sum(seg == label)) * voxel_mm3 for label in (1, 2))
    return {"anterior": anterior, "posterior": posterior, "total": anterior + posterior}


@pytest.mark.task("S1.03", points=1)
def test_volume_is_the_voxel_count_of_each_label_times_the_product_of_the_spacing(code):
    eda = code.import_module("eda", section=1)
    seg = random_seg()
    for spacing_mm in ((0.7, 1.3, 2.1), (1.0, 1.0, 5.0), (0.25, 0.5, 0.5)):
        volume = eda.hippocampus_volume_mm3(seg, spacing_mm)
        check(volume == pytest.approx(counted_volume(seg, spacing_mm)),
              "hippocampus_volume_mm3 must count labels 1 and 2 separately and scale with "
              "the volume of one voxel, the product of an anisotropic spacing")


@pytest.mark.task("S1.03", points=1)
def test_volume_of_a_float32_or_int64_label_equals_that_of_its_uint8_copy(code):
    eda = code.import_module("eda", section=1)
    expected = counted_volume(random_seg(), (1.0, 1.0, 1.0))
    for dtype in (np.float32, np.int64):
        volume = eda.hippocampus_volume_mm3(random_seg(dtype), (1.0, 1.0, 1.0))
        check(volume == pytest.approx(expected),
              f"hippocampus_volume_mm3 must give a {np.dtype(dtype)} label the volume of the "
              "same label stored as uint8")


@pytest.mark.task("S1.03", points=1)
def test_values_other_than_1_and_2_add_no_volume_and_an_empty_label_has_none(code):
    eda = code.import_module("eda", section=1)
    seg = np.zeros((3, 3, 3), np.uint8)  # [3, 3, 3]
    seg[0] = 1  # 9 voxels
    seg[1, 0] = 3  # 3 voxels of a value that is no class
    seg[2, 0] = 255
    volume = eda.hippocampus_volume_mm3(seg, (1.0, 1.0, 1.0))
    check(volume == pytest.approx({"anterior": 9.0, "posterior": 0.0, "total": 9.0}),
          "hippocampus_volume_mm3 must count only labels 1 and 2, never other values")
    empty = eda.hippocampus_volume_mm3(np.zeros((2, 3, 4), np.uint8), (1.0, 1.0, 1.0))
    check(empty == pytest.approx({"anterior": 0.0, "posterior": 0.0, "total": 0.0}),
          "hippocampus_volume_mm3 of a label without hippocampus must be 0.0 per class")


# --- S1.04 header_misfits -------------------------------------------------------------------


def grid(spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), flips=(1, 1, 1)) -> np.ndarray:
    """An affine [4, 4] with the given spacing (mm), origin (mm) and axis signs."""
    affine = np.diag([*(np.array(flips) * np.array(spacing_mm)), 1.0])
    affine[:3, 3] = origin_mm
    return affine


def pair_facts(eda, image_affine, label_affine, shape=(30, 40, 20)) -> tuple:
    """Header records of raw/images/case.nii.gz and raw/labels/case.nii.gz."""
    return (header_facts(eda, Path("raw/images/case.nii.gz"), shape, image_affine, "float32"),
            header_facts(eda, Path("raw/labels/case.nii.gz"), shape, label_affine))


@pytest.mark.task("S1.04", points=1)
def test_a_clean_pair_at_1_mm_yields_no_header_misfit_even_with_float32_rounding(code):
    eda = code.import_module("eda", section=1)
    rounded = grid(spacing_mm=(1.0, 1.0 + 2e-6, 1.0 - 3e-6), origin_mm=(1e-5, -2e-5, 0.0))
    lps = grid(origin_mm=(-12.0, 40.5, 7.0), flips=(-1, -1, 1))  # the same grid on both sides
    for image_affine, label_affine in ((grid(), grid()), (grid(), rounded), (lps, lps)):
        misfits = eda.header_misfits(*pair_facts(eda, image_affine, label_affine))
        check(misfits == [], "header_misfits must find no misfit in a pair of one shape "
                             "on one 1 mm grid (within float32 rounding)")


@pytest.mark.task("S1.04", points=1)
def test_a_label_on_another_grid_is_an_affine_mismatch_and_off_1_mm_a_spacing_misfit(code):
    eda = code.import_module("eda", section=1)
    # (what differs, image affine, label affine, the misfit kinds it gives)
    scenarios = (
        ("a label whose origin is shifted by 5 mm", grid(), grid(origin_mm=(5.0, 5.0, 5.0)),
         ["affine_mismatch"]),
        ("a label whose axis 0 is flipped", grid(), grid(flips=(-1, 1, 1)), ["affine_mismatch"]),
        ("a label at 1 x 1 x 2 mm beside an image at 1 mm", grid(), grid((1.0, 1.0, 2.0)),
         ["affine_mismatch", "spacing"]),
        ("an image and a label both at 1 x 1 x 2 mm", grid((1.0, 1.0, 2.0)),
         grid((1.0, 1.0, 2.0)), ["spacing", "spacing"]),
    )
    for what, image_affine, label_affine, kinds in scenarios:
        image, label = pair_facts(eda, image_affine, label_affine)
        misfits = eda.header_misfits(image, label)
        check(kinds_of(misfits) == kinds,
              f"header_misfits must give exactly the right kinds for {what}")
        check(all("case.nii.gz" in misfit.message for misfit in misfits),
              f"each header misfit's message must name the file ({what})")
    lone = header_facts(eda, Path("raw/images/lone.nii.gz"), (30, 40, 20), grid((2.0, 2.0, 2.0)))
    check(kinds_of(eda.header_misfits(lone, None)) == ["no_label", "spacing"],
          "header_misfits must check the spacing of a file that has no partner too")


# --- S1.05 label_misfits --------------------------------------------------------------------


def use_counted_volume(eda) -> None:
    """Give label_misfits the true volume (counted here) in place of TASK S1.03's."""
    eda.hippocampus_volume_mm3 = counted_volume


def block_label(shape, anterior_voxels: int, posterior_voxels: int) -> np.ndarray:
    """uint8 ``shape`` with the given numbers of label 1 then label 2 voxels, in C order."""
    seg = np.zeros(int(np.prod(shape)), np.uint8)
    seg[:anterior_voxels] = 1
    seg[anterior_voxels:anterior_voxels + posterior_voxels] = 2
    return seg.reshape(shape)


@pytest.mark.task("S1.05", points=1)
def test_a_label_far_too_small_or_too_large_for_one_hippocampus_is_implausible(code):
    eda = code.import_module("eda", section=1)
    use_counted_volume(eda)
    # (what, seg, spacing mm, whether its volume is implausible)
    scenarios = (
        ("125 voxels of 1 mm", block_label((6, 6, 6), 50, 75), (1.0, 1.0, 1.0), True),
        ("15625 voxels of 1 mm", block_label((30, 30, 30), 8125, 7500), (1.0, 1.0, 1.0), True),
        ("216 voxels of 2 x 2 x 2 mm", block_label((6, 6, 6), 108, 108), (2.0, 2.0, 2.0),
         False),
        ("216 voxels of 1 mm", block_label((6, 6, 6), 108, 108), (1.0, 1.0, 1.0), True),
    )
    for what, seg, spacing_mm, implausible in scenarios:
        misfits = eda.label_misfits(seg, spacing_mm, Path("raw/labels/case.nii.gz"))
        expected = ["implausible_volume"] if implausible else []
        check(kinds_of(misfits) == expected,
              f"label_misfits must judge the volume in mm3 at the label's spacing ({what})")
        check(all("case.nii.gz" in misfit.message for misfit in misfits),
              "each label misfit's message must name the file")


@pytest.mark.task("S1.05", points=1)
def test_real_label_281_is_no_hippocampus_label_and_float32_labels_003_243_are_clean(
        code, real_data):
    eda = code.import_module("eda", section=1)
    use_counted_volume(eda)
    for case, kinds in (("hippocampus_281", ["implausible_volume", "missing_class"]),
                        ("hippocampus_003", []), ("hippocampus_243", [])):
        path = real_data / "labels" / f"{case}.nii.gz"
        nifti = nib.load(path)
        seg = np.asanyarray(nifti.dataobj)
        spacing_mm = tuple(float(zoom) for zoom in nifti.header.get_zooms()[:3])
        misfits = eda.label_misfits(seg, spacing_mm, path)
        check(kinds_of(misfits) == kinds,
              f"label_misfits must give exactly the right kinds for the real label {case}")


# --- S1.06 curated_copies -------------------------------------------------------------------


@pytest.mark.task("S1.06", points=1)
def test_curated_set_leaves_out_every_misfit_case_and_is_empty_without_a_clean_pair(
        code, tmp_path):
    eda = code.import_module("eda", section=1)
    raw, out = tmp_path / "raw", tmp_path / "curated"
    misfit_cases = [case_report(eda, raw, "m0", label=False, misfit_kinds=["no_label"]),
                    case_report(eda, raw, "m1", image=False, misfit_kinds=["no_image"]),
                    case_report(eda, raw, "m2", misfit_kinds=["shape_mismatch"]),
                    case_report(eda, raw, "m3", misfit_kinds=["spacing", "implausible_volume"])]
    check(list(eda.curated_copies(misfit_cases, out)) == [],
          "curated_copies must hold no file of a misfit case")
    copies = eda.curated_copies(misfit_cases + [case_report(eda, raw, "ok")], out)
    check([(Path(source), Path(destination)) for source, destination in copies]
          == [(raw / "images" / "ok.nii.gz", out / "images" / "ok.nii.gz"),
              (raw / "labels" / "ok.nii.gz", out / "labels" / "ok.nii.gz")],
          "curated_copies must hold both files of the one clean pair, and nothing else")

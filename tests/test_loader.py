"""LoadHippocampusData and SlicesDataset on synthetic pairs, and one pass over the real data."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import synthetic_pair, write_nifti
from torch.utils.data import DataLoader

from data_prep.HippocampusDatasetLoader import LoadHippocampusData, UnusablePairError
from data_prep.SlicesDataset import SlicesDataset

PATCH_SIZE = 64  # px, the course patch size
LOGGER = "data_prep.HippocampusDatasetLoader"
GOOD_NAMES = ["case_0.nii.gz", "case_1.nii.gz", "case_2.nii.gz"]  # what synthetic_root holds
BAD = "bad.nii.gz"  # sorts after the good names


def loader_warnings(caplog) -> list[str]:
    """Messages of the WARNING records the loader logged."""
    return [record.getMessage() for record in caplog.records
            if record.name == LOGGER and record.levelno == logging.WARNING]


# --- clean pairs ---------------------------------------------------------------------------

def test_loader_returns_one_dict_per_pair_with_padded_float_image_and_uint8_seg(synthetic_root):
    data = LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE)
    assert [volume["filename"] for volume in data] == GOOD_NAMES
    for case, volume in enumerate(data):
        raw_image, raw_seg = synthetic_pair(seed=case)  # [6, 20, 18]
        assert set(volume) >= {"image", "seg", "filename", "original_shape", "affine"}
        assert volume["image"].dtype == np.float32
        assert volume["image"].shape == (6, PATCH_SIZE, PATCH_SIZE)
        assert volume["seg"].dtype == np.uint8
        assert volume["seg"].shape == (6, PATCH_SIZE, PATCH_SIZE)
        assert volume["original_shape"] == (6, 20, 18)
        np.testing.assert_array_equal(volume["affine"], np.eye(4))
        # Image: the whole volume rescaled by its own min and max.
        expected = (raw_image - raw_image.min()) / (raw_image.max() - raw_image.min())
        np.testing.assert_allclose(volume["image"][:, :20, :18], expected, atol=1e-6)
        assert volume["image"].min() == 0.0 and volume["image"].max() == 1.0
        # Seg: the labels as they were, never rescaled.
        np.testing.assert_array_equal(volume["seg"][:, :20, :18], raw_seg)
        assert set(np.unique(volume["seg"])) == {0, 1, 2}
        assert volume["seg"].max() == 2


def test_loader_pads_image_and_seg_with_zeros_outside_the_original_volume(synthetic_root):
    for volume in LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE):
        for key in ("image", "seg"):
            array = volume[key]  # [6, 64, 64], original [6, 20, 18] top-left
            assert (array[:, 20:, :] == 0).all(), key
            assert (array[:, :, 18:] == 0).all(), key


def test_loader_keeps_the_affine_of_the_image_file(tmp_path):
    affine = np.diag([0.5, 2.0, 3.0, 1.0])
    affine[:3, 3] = [10.0, -4.0, 7.5]
    image, seg = synthetic_pair(seed=4)
    write_nifti(tmp_path / "images" / "a.nii.gz", image, affine)
    write_nifti(tmp_path / "labels" / "a.nii.gz", seg, affine)
    (volume,) = LoadHippocampusData(tmp_path, PATCH_SIZE, PATCH_SIZE)
    assert volume["affine"].dtype == np.float64
    np.testing.assert_allclose(volume["affine"], affine)


def test_loader_sorts_volumes_by_file_name(tmp_path):
    for seed, name in enumerate(["m.nii.gz", "c.nii.gz", "x.nii.gz", "a.nii.gz"]):
        image, seg = synthetic_pair(shape=(seed + 2, 8, 8), seed=seed)
        write_nifti(tmp_path / "images" / name, image)
        write_nifti(tmp_path / "labels" / name, seg)
    data = LoadHippocampusData(tmp_path, 16, 16)
    assert [volume["filename"] for volume in data] == ["a.nii.gz", "c.nii.gz", "m.nii.gz",
                                                        "x.nii.gz"]
    # Each volume's content goes with its own name: depth seed + 2 as written.
    assert [volume["image"].shape[0] for volume in data] == [5, 3, 2, 4]


@pytest.mark.parametrize("max_volumes, expected", [(1, GOOD_NAMES[:1]), (2, GOOD_NAMES[:2]),
                                                   (3, GOOD_NAMES), (10, GOOD_NAMES),
                                                   (None, GOOD_NAMES)])
def test_loader_loads_at_most_max_volumes(synthetic_root, max_volumes, expected):
    data = LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE, max_volumes=max_volumes)
    assert [volume["filename"] for volume in data] == expected


def test_loader_warns_about_nothing_on_clean_pairs(synthetic_root, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE)
    assert loader_warnings(caplog) == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_labels_stored_as_other_numeric_types_with_values_0_1_2_load_as_uint8(tmp_path, dtype):
    image, seg = synthetic_pair(seed=0)  # [6, 20, 18]
    write_nifti(tmp_path / "images" / "a.nii.gz", image)
    write_nifti(tmp_path / "labels" / "a.nii.gz", seg.astype(dtype))
    (volume,) = LoadHippocampusData(tmp_path, PATCH_SIZE, PATCH_SIZE)
    assert volume["seg"].dtype == np.uint8
    np.testing.assert_array_equal(volume["seg"][:, :20, :18], seg)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64])
def test_images_stored_as_any_real_type_load_as_float32_in_zero_one(tmp_path, dtype):
    image, seg = synthetic_pair(seed=0)
    image = np.clip(image, 0, 255).astype(dtype)
    write_nifti(tmp_path / "images" / "a.nii.gz", image)
    write_nifti(tmp_path / "labels" / "a.nii.gz", seg)
    (volume,) = LoadHippocampusData(tmp_path, PATCH_SIZE, PATCH_SIZE)
    assert volume["image"].dtype == np.float32
    assert volume["image"].min() == 0.0 and volume["image"].max() == 1.0


# --- unusable pairs ------------------------------------------------------------------------

def _write_random_bytes(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).bytes(600))


def _write_truncated(path: Path, array: np.ndarray) -> None:
    write_nifti(path, array)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def make_defect(root: Path, kind: str) -> None:
    """Add the pair ``bad.nii.gz`` with the defect ``kind`` to a course folder."""
    image, seg = synthetic_pair(seed=7)  # [6, 20, 18]
    images, labels = root / "images" / BAD, root / "labels" / BAD
    if kind == "image without label":
        write_nifti(images, image)
    elif kind == "label without image":
        write_nifti(labels, seg)
    elif kind == "shape mismatch":
        write_nifti(images, image)
        write_nifti(labels, seg[:, :, :16])
    elif kind == "label value 3":
        seg[0, 0, 0] = 3
        write_nifti(images, image)
        write_nifti(labels, seg)
    elif kind == "float label 1.5":
        seg = seg.astype(np.float32)
        seg[0, 0, 0] = 1.5
        write_nifti(images, image)
        write_nifti(labels, seg)
    elif kind == "in-plane above patch":
        big_image, big_seg = synthetic_pair(shape=(4, 70, 30), seed=7)
        write_nifti(images, big_image)
        write_nifti(labels, big_seg)
    elif kind == "unreadable image":
        _write_random_bytes(images)
        write_nifti(labels, seg)
    elif kind == "unreadable label":
        write_nifti(images, image)
        _write_random_bytes(labels)
    elif kind == "truncated image":
        _write_truncated(images, image)
        write_nifti(labels, seg)
    elif kind == "truncated label":
        write_nifti(images, image)
        _write_truncated(labels, np.random.default_rng(1).integers(0, 3, image.shape)
                         .astype(np.uint8))
    elif kind == "constant image":
        write_nifti(images, np.full(image.shape, 42.0, np.float32))
        write_nifti(labels, seg)
    elif kind == "4-D image":
        write_nifti(images, np.stack([image, image], axis=-1))  # [6, 20, 18, 2]
        write_nifti(labels, seg)
    else:
        raise AssertionError(kind)


DEFECTS = {  # kind: what the message must say
    "image without label": r"image has no label",
    "label without image": r"label has no image",
    "shape mismatch": r"image shape \(6, 20, 18\) != label shape \(6, 20, 16\)",
    "label value 3": r"holds values \[0, 1, 2, 3\]",
    "float label 1.5": r"holds values \[0\.0, 1\.0, 1\.5, 2\.0\]",
    "in-plane above patch": r"in-plane size \(70, 30\) exceeds the patch size \(64, 64\)",
    "unreadable image": r"cannot be read",
    "unreadable label": r"cannot be read",
    "truncated image": r"cannot be read",
    "truncated label": r"cannot be read",
    "constant image": r"constant intensity",
    "4-D image": r"expected a 3-D volume",
}


@pytest.mark.parametrize("kind, reason", DEFECTS.items(), ids=list(DEFECTS))
def test_unusable_pair_is_skipped_with_one_warning_naming_file_and_reason(synthetic_root, caplog,
                                                                         kind, reason):
    make_defect(synthetic_root, kind)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE)
    assert [volume["filename"] for volume in data] == GOOD_NAMES
    (message,) = loader_warnings(caplog)
    assert BAD in message
    assert re.search(reason, message), message


@pytest.mark.parametrize("kind, reason", DEFECTS.items(), ids=list(DEFECTS))
def test_unusable_pair_raises_unusable_pair_error_when_strict(synthetic_root, kind, reason):
    make_defect(synthetic_root, kind)
    with pytest.raises(UnusablePairError, match=reason) as error:
        LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE, strict=True)
    assert BAD in str(error.value)


def test_truncated_gzip_still_has_a_readable_header(synthetic_root):
    # The truncated-file cases above must fail on the voxel data, not already on the header.
    make_defect(synthetic_root, "truncated image")
    header_only = nib.load(synthetic_root / "images" / BAD)
    assert header_only.shape == (6, 20, 18)


def test_several_unusable_pairs_give_one_warning_each(synthetic_root, caplog):
    image, seg = synthetic_pair(seed=9)
    write_nifti(synthetic_root / "images" / "lonely_image.nii.gz", image)
    write_nifti(synthetic_root / "labels" / "lonely_label.nii.gz", seg)
    write_nifti(synthetic_root / "images" / "flat.nii.gz", np.zeros(seg.shape, np.float32))
    write_nifti(synthetic_root / "labels" / "flat.nii.gz", seg)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE)
    assert [volume["filename"] for volume in data] == GOOD_NAMES
    messages = loader_warnings(caplog)
    assert len(messages) == 3
    for name in ("lonely_image.nii.gz", "lonely_label.nii.gz", "flat.nii.gz"):
        assert sum(name in message for message in messages) == 1, name


@pytest.mark.parametrize("missing", ["images", "labels"])
def test_missing_images_or_labels_folder_raises_file_not_found_naming_it(synthetic_root,
                                                                         missing):
    folder = synthetic_root / missing
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with pytest.raises(FileNotFoundError, match=f"{folder}"):
        LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE)


def test_folder_with_no_usable_pair_raises(tmp_path, caplog):
    image, seg = synthetic_pair()
    write_nifti(tmp_path / "images" / "a.nii.gz", image)
    write_nifti(tmp_path / "labels" / "b.nii.gz", seg)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with pytest.raises(FileNotFoundError, match="no usable image/label pair"):
        LoadHippocampusData(tmp_path, PATCH_SIZE, PATCH_SIZE)
    assert len(loader_warnings(caplog)) == 2


def test_empty_course_folders_raise(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(FileNotFoundError, match="no usable image/label pair"):
        LoadHippocampusData(tmp_path, PATCH_SIZE, PATCH_SIZE)


# --- SlicesDataset -------------------------------------------------------------------------

def numbered_volumes(depths=(3, 1, 4), size=(4, 5)) -> list[dict]:
    """Volumes whose slice k of volume v has image value v + k / 10 and seg value (v + k) % 3."""
    data = []
    for v, depth in enumerate(depths):
        image = np.empty((depth, *size), np.float32)  # [depth, 4, 5]
        seg = np.empty((depth, *size), np.uint8)
        for k in range(depth):
            image[k] = v + k / 10
            seg[k] = (v + k) % 3
        seg[:, 0, 0] = 0  # a different value at one pixel: the slice is not transposed away
        data.append({"image": image, "seg": seg})
    return data


def test_slices_dataset_length_is_the_total_number_of_slices():
    assert len(SlicesDataset(numbered_volumes((3, 1, 4)))) == 8
    assert len(SlicesDataset(numbered_volumes((5,)))) == 5


def test_slices_dataset_item_is_a_dict_of_one_channel_tensors():
    item = SlicesDataset(numbered_volumes())[2]
    assert set(item) == {"id", "image", "seg"}
    assert item["id"] == 2
    assert item["image"].dtype == torch.float32
    assert item["image"].shape == (1, 4, 5)
    assert item["seg"].dtype == torch.int64
    assert item["seg"].shape == (1, 4, 5)


# depths (3, 1, 4): idx 0..2 -> volume 0, idx 3 -> volume 1, idx 4..7 -> volume 2.
@pytest.mark.parametrize("idx, volume, slice_", [(0, 0, 0), (2, 0, 2), (3, 1, 0), (4, 2, 0),
                                                 (5, 2, 1), (7, 2, 3)])
def test_slices_dataset_maps_each_index_to_its_volume_and_slice(idx, volume, slice_):
    data = numbered_volumes((3, 1, 4))
    item = SlicesDataset(data)[idx]
    np.testing.assert_array_equal(item["image"][0].numpy(), data[volume]["image"][slice_])
    np.testing.assert_array_equal(item["seg"][0].numpy(), data[volume]["seg"][slice_])
    assert item["image"][0, 1, 1].item() == pytest.approx(volume + slice_ / 10)


def test_slices_dataset_visits_every_slice_once_in_order():
    data = numbered_volumes((3, 1, 4))
    dataset = SlicesDataset(data)
    got = np.stack([dataset[idx]["image"][0].numpy() for idx in range(len(dataset))])
    np.testing.assert_array_equal(got, np.concatenate([volume["image"] for volume in data]))


@pytest.mark.parametrize("idx", [8, 100, -1])
def test_slices_dataset_rejects_out_of_range_index(idx):
    with pytest.raises(IndexError, match="outside"):
        SlicesDataset(numbered_volumes((3, 1, 4)))[idx]


def test_slices_dataset_batches_to_b_1_h_w_with_a_dataloader(synthetic_root):
    data = LoadHippocampusData(synthetic_root, PATCH_SIZE, PATCH_SIZE)  # 3 volumes of 6 slices
    dataset = SlicesDataset(data)
    assert len(dataset) == 18
    batches = list(DataLoader(dataset, batch_size=4, shuffle=False))
    assert len(batches) == 5
    first = batches[0]
    assert first["image"].shape == (4, 1, PATCH_SIZE, PATCH_SIZE)
    assert first["image"].dtype == torch.float32
    assert first["seg"].shape == (4, 1, PATCH_SIZE, PATCH_SIZE)
    assert first["seg"].dtype == torch.int64
    assert first["id"].tolist() == [0, 1, 2, 3]
    assert batches[-1]["image"].shape == (2, 1, PATCH_SIZE, PATCH_SIZE)
    # Batch 1 holds slices 4, 5 of volume 0 and slices 0, 1 of volume 1.
    expected = np.concatenate([data[0]["seg"][4:6], data[1]["seg"][0:2]])[:, None]
    np.testing.assert_array_equal(batches[1]["seg"].numpy(), expected)


# --- real data -----------------------------------------------------------------------------

@pytest.mark.real_data
def test_real_data_loads_every_clean_pair_and_warns_for_exactly_the_three_misfits(
        real_data_dir, caplog):
    images = set(os.listdir(real_data_dir / "images"))
    labels = set(os.listdir(real_data_dir / "labels"))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = LoadHippocampusData(real_data_dir, PATCH_SIZE, PATCH_SIZE)
    assert [volume["filename"] for volume in data] == sorted(images & labels)
    messages = loader_warnings(caplog)
    assert len(messages) == 3, messages
    for misfit in ("images/hippocampus_118.nii.gz", "labels/hippocampus_010.nii.gz",
                   "labels/hippocampus_281.nii.gz"):
        assert sum(misfit in message for message in messages) == 1, misfit
    for volume in data:
        image, seg = volume["image"], volume["seg"]
        assert image.dtype == np.float32 and image.shape[1:] == (PATCH_SIZE, PATCH_SIZE)
        assert image.min() == 0.0
        assert image.max() == 1.0, volume["filename"]
        assert seg.dtype == np.uint8
        assert set(np.unique(seg)) == {0, 1, 2}, volume["filename"]

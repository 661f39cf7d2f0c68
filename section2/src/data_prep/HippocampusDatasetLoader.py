# Generated from solution/section2/src/data_prep/HippocampusDatasetLoader.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Load the hippocampus image/label pairs of the course layout into memory.

Data: Medical Segmentation Decathlon, Task04 Hippocampus (Vanderbilt University Medical
Center; Antonelli et al., Nature Communications 13, 4128, 2022), in the course layout
``root_dir/images/*.nii.gz`` and ``root_dir/labels/*.nii.gz`` with matching file names.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from utils.utils import med_reshape, normalize_intensity

logger = logging.getLogger(__name__)

LABEL_VALUES = (0, 1, 2)  # background, anterior, posterior (MSD Task04)
NIFTI_SUFFIX = ".nii.gz"
# What nibabel and gzip raise on a file that is not NIfTI, truncated or corrupt.
READ_ERRORS = (ImageFileError, OSError, EOFError, zlib.error, ValueError)


class UnusablePairError(ValueError):
    """An image/label pair that the pipeline cannot use; the message names file and reason."""


def read_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3-D NIfTI volume and its affine, raising UnusablePairError on any defect."""
    try:
        nifti = nib.load(path)
        array = np.asanyarray(nifti.dataobj)
    except READ_ERRORS as err:
        raise UnusablePairError(f"{path} cannot be read ({type(err).__name__}: {err})") from err
    if array.ndim != 3:
        raise UnusablePairError(f"{path} has shape {array.shape}; expected a 3-D volume")
    return array, nifti.affine


def load_pair(image_path: Path, label_path: Path, y_shape: int, z_shape: int) -> dict:
    """Load, check, normalise and pad one image/label pair.

    Args:
        image_path: NIfTI image, any real dtype, 3-D [X, Y, Z].
        label_path: NIfTI label of the same shape, values in {0, 1, 2} (any numeric dtype).
        y_shape: padded size of axis 1 (the patch size, px).
        z_shape: padded size of axis 2 (the patch size, px).

    Returns:
        ``{"image": float32 [X, y_shape, z_shape] in [0, 1], "seg": uint8 [X, y_shape,
        z_shape] in {0, 1, 2}, "filename": str, "original_shape": (X, Y, Z),
        "affine": float64 [4, 4]}``.

    Raises:
        UnusablePairError: when a file cannot be read, the shapes differ, the label holds
            other values than {0, 1, 2}, the image has constant intensity, or Y or Z exceeds
            the padded size.
    """
    image, affine = read_volume(image_path)
    seg, _ = read_volume(label_path)
    if image.shape != seg.shape:
        raise UnusablePairError(f"{image_path.name}: image shape {image.shape} != "
                                f"label shape {seg.shape}")
    values = np.unique(seg)
    if not np.isin(values, LABEL_VALUES).all():
        raise UnusablePairError(f"{label_path} holds values {values.tolist()[:10]}; "
                                f"expected only {list(LABEL_VALUES)}")
    if image.shape[1] > y_shape or image.shape[2] > z_shape:
        raise UnusablePairError(f"{image_path.name}: in-plane size {image.shape[1:]} exceeds "
                                f"the patch size ({y_shape}, {z_shape}); raise --patch-size "
                                "(ROWSxCOLUMNS for a patch that is not square)")
    try:
        image = normalize_intensity(image)
    except ValueError as err:
        raise UnusablePairError(f"{image_path}: {err}") from err
    # TASK S2.05: Cast the label volume to an 8-bit unsigned integer type, unchanged in value.
    #   Why: some labels are stored as float32 (cases 003 and 243). Question for your report:
    #   why must labels be an integer type, and why are they never normalised like images?
    #   (Think of what the cross-entropy loss does with them.)
    #   In: seg [X, Y, Z] of any numeric dtype, values {0, 1, 2}. Out: uint8 [X, Y, Z], same
    #   values {0, 1, 2}.
    #   Hint: ndarray.astype.
    #   Check: pytest grader -k S2.05  (every loaded "seg" has dtype uint8 and values {0, 1, 2})
    raise NotImplementedError("TASK S2.05: Cast the label volume to an 8-bit unsigned integer type, unchanged in value.")
    padded_shape = (image.shape[0], y_shape, z_shape)
    return {
        "image": med_reshape(image, padded_shape),
        "seg": med_reshape(seg, padded_shape),
        "filename": image_path.name,
        "original_shape": tuple(int(size) for size in image.shape),
        "affine": np.asarray(affine, dtype=np.float64),
    }


def LoadHippocampusData(root_dir: str | Path, y_shape: int, z_shape: int, strict: bool = False,
                        max_volumes: int | None = None) -> list[dict]:
    """Load every usable image/label pair under ``root_dir``, sorted by file name.

    Images are cast to float32 and normalised to [0, 1] per volume; labels are cast to uint8
    and never normalised; both are zero-padded to [X, y_shape, z_shape] with ``med_reshape``.
    A pair that cannot be used (image without label, label without image, shape mismatch,
    label values outside {0, 1, 2}, in-plane size above the patch, unreadable or truncated
    file) is skipped with one warning naming the file and the reason, or raises if ``strict``.

    Args:
        root_dir: folder holding ``images/`` and ``labels/`` with matching ``.nii.gz`` names.
        y_shape: padded size of axis 1 (px).
        z_shape: padded size of axis 2 (px).
        strict: raise on the first unusable pair instead of skipping it.
        max_volumes: load at most this many usable pairs (for quick runs); None loads all.

    Returns:
        A list of dicts, see ``load_pair``.

    Raises:
        FileNotFoundError: when ``root_dir/images`` or ``root_dir/labels`` is missing, or no
            usable pair is found.
        UnusablePairError: with ``strict=True``, for the first unusable pair.
    """
    root = Path(root_dir)
    image_dir, label_dir = root / "images", root / "labels"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist; get the data with "
                                    "`python tools/get_data.py` or pass --data-dir")
    image_names = {path.name for path in image_dir.glob(f"*{NIFTI_SUFFIX}")}
    label_names = {path.name for path in label_dir.glob(f"*{NIFTI_SUFFIX}")}

    def reject(message: str) -> None:
        if strict:
            raise UnusablePairError(message)
        logger.warning("skipping %s", message)

    for name in sorted(label_names - image_names):
        reject(f"{label_dir / name}: label has no image in {image_dir}")
    data = []
    for name in sorted(image_names):
        if max_volumes is not None and len(data) >= max_volumes:
            break
        if name not in label_names:
            reject(f"{image_dir / name}: image has no label in {label_dir}")
            continue
        try:
            data.append(load_pair(image_dir / name, label_dir / name, y_shape, z_shape))
        except UnusablePairError as err:
            reject(str(err))
    if not data:
        raise FileNotFoundError(f"no usable image/label pair in {root}")
    n_slices = sum(volume["image"].shape[0] for volume in data)
    logger.info("loaded %d volumes, %d axis-0 slices of %d x %d from %s",
                len(data), n_slices, y_shape, z_shape, root)
    return data

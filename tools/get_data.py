#!/usr/bin/env python3
"""Fetch the hippocampus MRI data set into the course layout.

The data is Task04 "Hippocampus" of the Medical Segmentation Decathlon: MRI volumes cropped
around the hippocampus, acquired at Vanderbilt University Medical Center, with the hippocampus
head (label 1) and body (label 2) labelled.

* Antonelli et al., "The Medical Segmentation Decathlon", Nature Communications 13, 4128
  (2022).
* Simpson et al., "A large annotated medical image dataset for the development and evaluation
  of segmentation algorithms", arXiv:1902.09063 (2019).
* Licence: CC BY-SA 4.0 (credit the authors; share derived data alike).

``python tools/get_data.py`` downloads ``Task04_Hippocampus.tar`` from the public mirror that
MONAI's ``DecathlonDataset`` uses (pooch fetches it and checks its MD5) and unpacks the
labelled training cases into::

    DEST/TrainingSet/images/hippocampus_XXX.nii.gz
    DEST/TrainingSet/labels/hippocampus_XXX.nii.gz

``--from PATH`` (or the ``HIPPOCAMPUS_DATA`` environment variable) imports a local copy
instead: a folder in the course layout (``images/`` + ``labels/``), a folder in the MSD layout
(``imagesTr/`` + ``labelsTr/``), either one's parent, or a local ``.tar`` / ``.tar.gz`` of the
MSD download. Files are copied byte for byte; nothing is filtered but macOS ``._*`` metadata
files, so the raw set's misfits (for example images without a label) arrive as they are, and
the unpaired ones are named in a warning.

Every file is then checked: it must be a complete gzip stream whose NIfTI header nibabel
reads. The new ``TrainingSet`` is assembled in a temporary folder inside DEST and renamed into
place only when everything succeeded, so a failed run never leaves half-written data.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

import nibabel
import pooch
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

import hippocampus_kit

LOGGER = logging.getLogger(__name__)

# The public mirror of the MSD archive that MONAI's DecathlonDataset downloads, and the MD5
# its DecathlonDataset.md5 table lists (monai/apps/datasets.py, Project-MONAI/MONAI).
DEFAULT_URL = "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar"
DEFAULT_MD5 = "9d24dba78a72977dbd1d2e110310f31b"
TAR_NAME = "Task04_Hippocampus.tar"  # the download's name inside DEST
DEFAULT_DEST = hippocampus_kit.DATA_DEST  # the kit's data rule lives in hippocampus_kit.py
ENV_SOURCE = hippocampus_kit.DATA_ENV
TRAINING_DIR = hippocampus_kit.TRAINING_DIR
NIFTI_SUFFIX = ".nii.gz"
KINDS = ("images", "labels")  # the course layout's folders
MSD_TO_COURSE = {"imagesTr": "images", "labelsTr": "labels"}  # imagesTs/ has no labels
# A local copy's layout -> (its folder -> the course folder it fills).
LAYOUTS = {"course": {kind: kind for kind in KINDS}, "MSD": MSD_TO_COURSE}
MSD_FOLDER = "Task04_Hippocampus"  # the MSD archive's top folder
MACOS_METADATA_PREFIX = "._"  # AppleDouble files that macOS adds to archives
GZIP_READ_BYTES = 1 << 20  # 1 MiB per read while checking a gzip stream to its end
SHOWN_PROBLEMS = 5  # files named in one verification error; the rest are counted


class GetDataError(Exception):
    """A problem the user can act on; the command line prints it as one line."""


def is_nifti_name(name: str) -> bool:
    """True for a ``*.nii.gz`` file name that is not macOS metadata (``._*``)."""
    return name.endswith(NIFTI_SUFFIX) and not name.startswith(MACOS_METADATA_PREFIX)


def has_data(training_dir: Path) -> bool:
    """True when ``images/`` or ``labels/`` of ``training_dir`` holds a ``*.nii.gz`` file."""
    return any((training_dir / kind).is_dir()
               and any((training_dir / kind).glob(f"*{NIFTI_SUFFIX}")) for kind in KINDS)


def download_archive(url: str, folder: Path, md5: str | None = DEFAULT_MD5,
                     progressbar: bool = False) -> Path:
    """Download the MSD archive into ``folder`` as ``TAR_NAME`` with pooch.

    pooch writes to a temporary file in ``folder``, checks the MD5 and only then renames it,
    so a failed download leaves nothing behind. A file already there whose MD5 matches (any
    file, when ``md5`` is None) is reused; one that does not match is downloaded again.

    Args:
        url: the archive's ``https://`` or ``http://`` address.
        folder: where the archive is kept; created if needed.
        md5: its expected MD5 as 32 hex digits, or None to accept any file.
        progressbar: show pooch's tqdm bar on stderr.

    Returns:
        The archive's path.

    Raises:
        GetDataError: when the download fails or the MD5 does not match.
    """
    try:
        path = pooch.retrieve(url, known_hash=f"md5:{md5.lower()}" if md5 else None,
                              fname=TAR_NAME, path=folder, progressbar=progressbar)
    except (OSError, ValueError) as err:  # requests' errors are OSErrors; a bad MD5 a ValueError
        raise GetDataError(f"could not download {url}: {err}; if you have a copy of the data, "
                           f"import it with --from PATH (or set {ENV_SOURCE})") from err
    return Path(path)


def _copy_niftis(src_dir: Path, out_dir: Path) -> int:
    """Copy the ``*.nii.gz`` files of ``src_dir`` (not its sub-folders) into ``out_dir``.

    Returns:
        The number of files copied.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [path for path in sorted(src_dir.iterdir())
             if path.is_file() and is_nifti_name(path.name)]
    for path in paths:
        shutil.copy2(path, out_dir / path.name)
    LOGGER.info("Copied %d files from %s", len(paths), src_dir)
    return len(paths)


def _require_folders(src: Path, layout: str) -> None:
    """Raise GetDataError naming the first folder of ``layout`` that ``src`` lacks."""
    if not src.is_dir():
        raise GetDataError(f"{src} is not a folder")
    for name in LAYOUTS[layout]:
        if not (src / name).is_dir():
            raise GetDataError(f"{src} has no {name}/ folder (expected the {layout} layout)")


def import_folder(src: Path, dest: Path, layout: str) -> None:
    """Copy a local copy's NIfTI files into a new ``TrainingSet`` folder.

    Args:
        src: the local copy.
        dest: the new ``TrainingSet`` folder.
        layout: ``"course"`` (``images/``, ``labels/``) or ``"MSD"`` (``imagesTr/``,
            ``labelsTr/``).

    Raises:
        GetDataError: when ``src`` lacks one of the layout's folders.
    """
    _require_folders(src, layout)
    for src_name, kind in LAYOUTS[layout].items():
        _copy_niftis(src / src_name, dest / kind)


def _training_kind(member: tarfile.TarInfo) -> str | None:
    """``"images"`` or ``"labels"`` for a NIfTI file directly in ``imagesTr/`` or
    ``labelsTr/`` of the archive; None for everything else (``imagesTs/``, ``._*`` files)."""
    path = PurePosixPath(member.name)
    return MSD_TO_COURSE.get(path.parent.name) if is_nifti_name(path.name) else None


def _refuse_unsafe_members(archive: tarfile.TarFile, tar_path: Path, folder: Path) -> None:
    """Refuse the whole archive when tarfile's ``data`` filter rejects any member (a path
    that leaves ``folder``, a link pointing out of it, a device file).

    Raises:
        GetDataError: naming the archive and the member.
    """
    for member in archive.getmembers():
        try:
            tarfile.data_filter(member, str(folder))
        except tarfile.FilterError as err:
            raise GetDataError(f"{tar_path}: refusing the archive: {err}") from err


def _extract_training_members(tar_path: Path, scratch: Path) -> list[tuple[str, str]]:
    """Extract the archive's training NIfTI files into ``scratch`` with the ``data`` filter.

    Returns:
        (member path below ``scratch``, course folder) of each file extracted.

    Raises:
        GetDataError: when the archive is unreadable or has an unsafe member.
    """
    try:
        with tarfile.open(tar_path, "r:*") as archive:
            _refuse_unsafe_members(archive, tar_path, scratch)
            wanted = []
            for member in archive.getmembers():
                kind = _training_kind(member)
                if kind is not None and not member.isfile():
                    LOGGER.warning("Skipping %s in %s: not a regular file", member.name,
                                   tar_path)
                elif kind is not None:
                    wanted.append((member, kind))
            scratch.mkdir(parents=True, exist_ok=True)
            archive.extractall(scratch, members=[member for member, _ in wanted],
                               filter="data")
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise GetDataError(f"{tar_path} is not a readable tar archive ({err})") from err
    return [(member.name, kind) for member, kind in wanted]


def extract_msd_tar(tar_path: Path, dest: Path) -> None:
    """Unpack the training NIfTI files of an MSD archive into the course layout.

    Only regular ``*.nii.gz`` files directly in ``imagesTr/`` or ``labelsTr/`` are extracted
    (never ``._*`` files or ``imagesTs/``), with tarfile's ``data`` filter; an archive with
    any member that filter rejects is refused as a whole.

    Args:
        tar_path: the ``.tar`` or ``.tar.gz`` of the MSD download.
        dest: the new ``TrainingSet`` folder.

    Raises:
        GetDataError: when the file is missing or not a readable tar archive, holds an
            unsafe member, or holds two training files of the same name.
    """
    if not tar_path.is_file():
        raise GetDataError(f"{tar_path} does not exist or is not a file")
    scratch = dest / ".extract"
    try:
        extracted = _extract_training_members(tar_path, scratch)
        for kind in KINDS:
            (dest / kind).mkdir(parents=True, exist_ok=True)
        for name, kind in extracted:
            target = dest / kind / PurePosixPath(name).name
            if target.exists():
                raise GetDataError(f"{tar_path}: two training files are named {target.name}")
            os.replace(scratch / name, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    LOGGER.info("Extracted %d training files from %s", len(extracted), tar_path)


def detect_source(path: Path) -> tuple[str, Path]:
    """What kind of local copy ``path`` is.

    Args:
        path: a course-layout folder, an MSD folder, a parent of either (``.../TrainingSet``
            or ``.../Task04_Hippocampus`` below it), or an MSD tar.

    Returns:
        (kind, folder or file), kind being a key of ``LAYOUTS`` or ``"tar"``.

    Raises:
        GetDataError: when ``path`` is missing or matches no layout; a partly right folder
            gets a message naming the folder it lacks.
    """
    if not path.exists():
        raise GetDataError(f"{path} does not exist")
    if path.is_file():
        if tarfile.is_tarfile(path):
            return "tar", path
        raise GetDataError(f"{path} is not a tar archive (expected the MSD "
                           f"{TAR_NAME} or a folder)")
    for folder in (path, path / TRAINING_DIR, path / MSD_FOLDER):
        for layout, folders in LAYOUTS.items():
            if all((folder / name).is_dir() for name in folders):
                return layout, folder
    for layout, folders in LAYOUTS.items():
        if any((path / name).is_dir() for name in folders):
            _require_folders(path, layout)
    raise GetDataError(f"{path} has no images/ and labels/ folders (course layout) and no "
                       "imagesTr/ and labelsTr/ folders (MSD layout)")


def nifti_problem(path: Path) -> str | None:
    """Why a ``.nii.gz`` file is unusable, or None when it is a complete gzip stream whose
    NIfTI header nibabel reads with a non-empty shape."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(GZIP_READ_BYTES):  # to the end: a truncated file fails its CRC
                pass
    except (OSError, EOFError, zlib.error) as err:
        return f"not a readable gzip file ({err})"
    try:
        shape = nibabel.load(path).shape  # reads the header only
    except (ImageFileError, HeaderDataError, OSError, ValueError, EOFError) as err:
        return f"NIfTI header does not load ({type(err).__name__}: {err})"
    if not shape or min(shape) < 1:
        return f"NIfTI header has an empty shape {shape}"
    return None


def verify_course_layout(training_dir: Path) -> dict[str, int | list[str]]:
    """Check every file of a ``TrainingSet`` folder and count what it holds.

    Unpaired files (an image without a label or the reverse) are kept: they are the raw set's
    misfits, which section 1 examines; a warning names them.

    Args:
        training_dir: a folder holding ``images/`` and ``labels/``.

    Returns:
        ``images``, ``labels`` and ``paired`` counts, and the sorted file names in
        ``unpaired_images`` and ``unpaired_labels``.

    Raises:
        GetDataError: when a folder is missing or empty, or a file is unusable (see
            ``nifti_problem``); the message names the files.
    """
    names: dict[str, set[str]] = {}
    problems = []
    for kind in KINDS:
        folder = training_dir / kind
        if not folder.is_dir():
            raise GetDataError(f"{folder} is missing")
        paths = sorted(path for path in folder.glob(f"*{NIFTI_SUFFIX}") if path.is_file())
        if not paths:
            raise GetDataError(f"{folder} holds no {NIFTI_SUFFIX} files")
        names[kind] = {path.name for path in paths}
        problems += [f"{path}: {problem}" for path in paths
                     if (problem := nifti_problem(path)) is not None]
    if problems:
        more = len(problems) - SHOWN_PROBLEMS
        raise GetDataError(f"{len(problems)} file(s) failed verification: "
                           + "; ".join(problems[:SHOWN_PROBLEMS])
                           + (f"; and {more} more" if more > 0 else ""))
    paired = names["images"] & names["labels"]
    summary = {"images": len(names["images"]), "labels": len(names["labels"]),
               "paired": len(paired), "unpaired_images": sorted(names["images"] - paired),
               "unpaired_labels": sorted(names["labels"] - paired)}
    for key, what in (("unpaired_images", "Images without a label"),
                      ("unpaired_labels", "Labels without an image")):
        if summary[key]:
            LOGGER.warning("%s: %s", what, ", ".join(summary[key]))
    return summary


def fill_training_set(source: Path | None, staging: Path, dest: Path, url: str,
                      md5: str | None, progressbar: bool = False) -> None:
    """Fill ``staging`` with ``images/`` and ``labels/`` from a local copy or the download.

    Args:
        source: the local copy to import (see ``detect_source``), or None to download.
        staging: the empty folder that becomes the new ``TrainingSet``.
        dest: DEST, where a downloaded archive is kept.
        url, md5, progressbar: as in ``download_archive``.

    Raises:
        GetDataError: when the copy or the download is unusable.
    """
    if source is None:
        extract_msd_tar(download_archive(url, dest, md5, progressbar), staging)
        return
    kind, path = detect_source(source)
    LOGGER.info("Importing %s (%s)", path, kind)
    if kind == "tar":
        extract_msd_tar(path, staging)
    else:
        import_folder(path, staging, kind)


def install(staging: Path, training_dir: Path) -> None:
    """Rename a finished ``staging`` folder to ``training_dir``, replacing an old one only
    once the new one is in place (the old one comes back if that rename fails)."""
    old = None
    if training_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{TRAINING_DIR}.old-", dir=training_dir.parent))
        old.rmdir()  # a free name beside it, so that the rename cannot cross file systems
        os.replace(training_dir, old)
    try:
        os.replace(staging, training_dir)
    except OSError:
        if old is not None:
            os.replace(old, training_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    """The process umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fetch_training_set(source: Path | None, dest: Path, url: str = DEFAULT_URL,
                       md5: str | None = DEFAULT_MD5,
                       progressbar: bool = False) -> dict[str, int | list[str]]:
    """Write ``dest/TrainingSet`` from a local copy or the download, all or nothing.

    Args:
        source: the local copy to import, or None to download (see ``fill_training_set``).
        dest: the folder that receives ``TrainingSet/`` (and the download).
        url, md5, progressbar: as in ``download_archive``.

    Returns:
        ``verify_course_layout``'s summary of the new ``TrainingSet``.

    Raises:
        GetDataError: when ``dest`` is a file, or the copy or download is unusable; an
            existing ``TrainingSet`` is then left as it was, and a ``dest`` this call created
            is removed again.
        OSError: when a file cannot be written.
    """
    if dest.exists() and not dest.is_dir():
        raise GetDataError(f"--dest {dest} exists and is not a folder")
    created_dest = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{TRAINING_DIR}.incoming-", dir=dest))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0o700 would hide the data from others
        fill_training_set(source, staging, dest, url, md5, progressbar)
        summary = verify_course_layout(staging)
        install(staging, dest / TRAINING_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created_dest and not any(dest.iterdir()):
            dest.rmdir()
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser; every help text ends with its default."""
    parser = argparse.ArgumentParser(
        prog="get_data.py",
        description="Fetch the Medical Segmentation Decathlon Task04 Hippocampus data "
                    "(CC BY-SA 4.0) into DEST/TrainingSet/images and DEST/TrainingSet/labels.",
        epilog=f"Environment: {ENV_SOURCE}=PATH sets the default for --from, so a shared "
               "copy is imported instead of downloading.")
    parser.add_argument("--from", dest="source", metavar="PATH", type=Path, default=None,
                        help="import a local copy instead of downloading: a folder with "
                             "images/ and labels/, a folder with imagesTr/ and labelsTr/, or "
                             f"the MSD .tar/.tar.gz (default: ${ENV_SOURCE} if set, otherwise "
                             "download)")
    parser.add_argument("--dest", metavar="DIR", type=Path, default=DEFAULT_DEST,
                        help="folder that receives TrainingSet/ and the downloaded archive "
                             f"(default: {DEFAULT_DEST})")
    parser.add_argument("--force", action="store_true",
                        help="replace DEST/TrainingSet even if it already holds data "
                             "(default: off)")
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"address of the MSD archive to download (default: {DEFAULT_URL})")
    parser.add_argument("--md5", default=DEFAULT_MD5,
                        help="expected MD5 of the download; pass '' to skip the check "
                             f"(default: {DEFAULT_MD5})")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every step (default: off)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status: 0 done (or data already there), 1 an error,
    printed as one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s: %(message)s")
    LOGGER.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    source = args.source
    if source is None and os.environ.get(ENV_SOURCE):
        source = Path(os.environ[ENV_SOURCE])
        LOGGER.info("Using %s=%s", ENV_SOURCE, source)
    dest = args.dest.expanduser().absolute()
    if has_data(dest / TRAINING_DIR) and not args.force:
        print(f"{dest / TRAINING_DIR} already holds data; nothing to do (use --force to "
              "replace it).")
        return 0
    try:
        summary = fetch_training_set(source.expanduser() if source else None, dest, args.url,
                                     args.md5 or None, progressbar=sys.stderr.isatty())
    except (GetDataError, OSError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    print(f"{dest / TRAINING_DIR}: {summary['images']} images, {summary['labels']} labels, "
          f"{summary['paired']} paired")
    return 0


if __name__ == "__main__":
    sys.exit(main())

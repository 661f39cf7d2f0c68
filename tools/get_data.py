#!/usr/bin/env python3
"""Fetch the hippocampus MRI data set into the course layout.

The data is Task04 "Hippocampus" of the Medical Segmentation Decathlon:
MRI volumes cropped around the hippocampus, acquired at Vanderbilt University
Medical Center, with the hippocampus head and body labelled.

* Antonelli et al., "The Medical Segmentation Decathlon",
  Nature Communications 13, 4128 (2022).
* Simpson et al., "A large annotated medical image dataset for the development
  and evaluation of segmentation algorithms", arXiv:1902.09063 (2019).
* Licence: CC BY-SA 4.0 (credit the authors; share derived data alike).

Running ``python tools/get_data.py`` downloads ``Task04_Hippocampus.tar`` from
the public mirror that MONAI's ``DecathlonDataset`` uses, checks its MD5, and
unpacks the labelled training cases into::

    DEST/TrainingSet/images/hippocampus_XXX.nii.gz
    DEST/TrainingSet/labels/hippocampus_XXX.nii.gz

``--from PATH`` (or the ``HIPPOCAMPUS_DATA`` environment variable) imports a
local copy instead: a folder in the course layout (``images/`` + ``labels/``),
a folder in the MSD layout (``imagesTr/`` + ``labelsTr/``), or a local
``.tar`` / ``.tar.gz`` of the MSD download. Files are copied byte for byte;
nothing is filtered except macOS ``._*`` metadata files, so the raw set's
misfits (for example images without a label) arrive as they are.

Every file is checked afterwards: it must be a complete gzip stream whose
NIfTI header nibabel can read. The new ``TrainingSet`` is assembled in a
temporary folder inside DEST and renamed into place only when everything
succeeded, so a failed or interrupted run never leaves half-written data.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # hippocampus_kit.py is beside it
import hippocampus_kit  # noqa: E402

try:
    import nibabel
except ImportError:  # reported as a clear error when verification needs it
    nibabel = None

LOGGER = logging.getLogger("get_data")

#: Public mirror of the MSD archive used by MONAI's ``DecathlonDataset``.
DEFAULT_URL = "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar"
#: MD5 of that archive as listed in MONAI's ``DecathlonDataset.md5`` table
#: (monai/apps/datasets.py in github.com/Project-MONAI/MONAI).
DEFAULT_MD5 = "9d24dba78a72977dbd1d2e110310f31b"
#: File name the downloaded archive is stored under inside DEST.
TAR_NAME = "Task04_Hippocampus.tar"
#: Default destination: ``data/`` at the repository root (the kit's data rule lives in
#: hippocampus_kit.py: the pipeline, eda.py and the grader look there).
DEFAULT_DEST = hippocampus_kit.DATA_DEST
#: Environment variable naming a local copy to import instead of downloading.
ENV_SOURCE = hippocampus_kit.DATA_ENV

TRAINING_DIR = hippocampus_kit.TRAINING_DIR
NIFTI_SUFFIX = ".nii.gz"
#: MSD folder name -> course folder name.
MSD_TO_COURSE = {"imagesTr": "images", "labelsTr": "labels"}
KINDS = ("images", "labels")

_CHUNK = 1 << 16
_TIMEOUT_S = 60


class GetDataError(Exception):
    """A problem the user can act on; ``main`` prints it as one line."""


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #
def is_nifti_name(name: str) -> bool:
    """Tell whether a file name is a data file worth importing.

    Args:
        name: Bare file name (no folder).

    Returns:
        True for ``*.nii.gz`` names that are not macOS ``._*`` metadata files.
    """
    return name.endswith(NIFTI_SUFFIX) and not name.startswith("._")


def md5sum(path: Path) -> str:
    """Compute the MD5 hex digest of a file, reading it in chunks.

    Args:
        path: File to hash.

    Returns:
        Lower-case hexadecimal MD5 digest.
    """
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def has_data(training_dir: Path) -> bool:
    """Tell whether a ``TrainingSet`` folder already holds NIfTI files.

    Args:
        training_dir: The ``DEST/TrainingSet`` folder.

    Returns:
        True if ``images/`` or ``labels/`` contains at least one ``*.nii.gz``.
    """
    return any(
        (training_dir / kind).is_dir() and any((training_dir / kind).glob("*" + NIFTI_SUFFIX))
        for kind in KINDS
    )


def _current_umask() -> int:
    """Return the process umask without changing it."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- #
# Download
# --------------------------------------------------------------------------- #
def download_tar(url: str, dest_file: Path, md5: str | None = DEFAULT_MD5) -> Path:
    """Download a file to ``dest_file`` atomically and check its MD5.

    The bytes go to ``dest_file`` + ``.part`` first; only after the download
    completed and the checksum matched is that file renamed to ``dest_file``.
    On any failure the ``.part`` file is removed.

    Args:
        url: Address to fetch (``https://``, ``http://`` or ``file://``).
        dest_file: Final path of the downloaded file.
        md5: Expected MD5 hex digest, or None to skip the check.

    Returns:
        ``dest_file``.

    Raises:
        GetDataError: On network failure or checksum mismatch.
    """
    dest_file = Path(dest_file)
    dest_file.parent.mkdir(parents=True, exist_ok=True)
    part = dest_file.with_name(dest_file.name + ".part")
    LOGGER.info("Downloading %s -> %s", url, dest_file)
    try:
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with open(part, "wb") as out, tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest_file.name,
                    disable=None,  # no bar when stderr is not a terminal
                ) as bar:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GetDataError(
                f"could not download {url}: {reason}; if you have a copy of the data, "
                f"import it with --from PATH (or set {ENV_SOURCE})"
            ) from exc
        if md5:
            got = md5sum(part)
            if got != md5.lower():
                raise GetDataError(
                    f"MD5 mismatch for {url}: expected {md5.lower()}, got {got}; "
                    "the download is corrupt or the file changed upstream (nothing was kept)"
                )
        os.replace(part, dest_file)
    finally:
        part.unlink(missing_ok=True)
    LOGGER.info("Downloaded %s (%d bytes)", dest_file, dest_file.stat().st_size)
    return dest_file


# --------------------------------------------------------------------------- #
# Importers: each fills ``dest/images`` and ``dest/labels``
# --------------------------------------------------------------------------- #
def _copy_niftis(src_dir: Path, out_dir: Path) -> int:
    """Copy every ``*.nii.gz`` file of ``src_dir`` into ``out_dir``.

    Args:
        src_dir: Folder to copy from (not searched recursively).
        out_dir: Folder to copy into; created if needed.

    Returns:
        Number of files copied.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(src_dir.iterdir()):
        if not path.is_file():
            continue
        if path.name.startswith("._"):
            LOGGER.debug("Skipping macOS metadata file %s", path)
            continue
        if path.name.endswith(NIFTI_SUFFIX):
            shutil.copy2(path, out_dir / path.name)
            count += 1
    LOGGER.info("Copied %d files from %s", count, src_dir)
    return count


def _require_dirs(src: Path, names: tuple[str, ...], layout: str) -> None:
    """Raise a clear error unless ``src`` holds every folder in ``names``."""
    if not src.is_dir():
        raise GetDataError(f"{src} is not a folder")
    for name in names:
        if not (src / name).is_dir():
            raise GetDataError(f"{src} has no {name}/ folder (expected {layout} layout)")


def import_course_folder(src: Path, dest: Path) -> None:
    """Copy a course-layout folder (``images/`` + ``labels/``) byte for byte.

    Args:
        src: Folder holding ``images/`` and ``labels/``.
        dest: New ``TrainingSet`` folder to fill.

    Raises:
        GetDataError: If ``src`` lacks ``images/`` or ``labels/``.
    """
    src = Path(src)
    _require_dirs(src, KINDS, "course")
    for kind in KINDS:
        _copy_niftis(src / kind, Path(dest) / kind)


def import_msd_folder(src: Path, dest: Path) -> None:
    """Copy an unpacked MSD folder (``imagesTr/`` + ``labelsTr/``) into the course layout.

    ``imagesTs/`` (unlabelled test images) and ``dataset.json`` are ignored.

    Args:
        src: Folder holding ``imagesTr/`` and ``labelsTr/``.
        dest: New ``TrainingSet`` folder to fill.

    Raises:
        GetDataError: If ``src`` lacks ``imagesTr/`` or ``labelsTr/``.
    """
    src = Path(src)
    _require_dirs(src, tuple(MSD_TO_COURSE), "MSD")
    for msd_name, kind in MSD_TO_COURSE.items():
        _copy_niftis(src / msd_name, Path(dest) / kind)


def _member_escapes(name: str, root: Path) -> bool:
    """Tell whether a tar member name would land outside ``root``.

    Args:
        name: Member name as stored in the archive.
        root: Folder the archive would be extracted into.

    Returns:
        True for absolute names, names with ``..`` parts, or names that
        resolve outside ``root``.
    """
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name.startswith(("/", "\\")):
        return True
    root = root.resolve()
    return not (root / name).resolve().is_relative_to(root)


def _msd_member_kind(name: str) -> str | None:
    """Map a tar member name to ``"images"``/``"labels"``, or None to skip it.

    Args:
        name: Member name, e.g. ``Task04_Hippocampus/imagesTr/hippocampus_001.nii.gz``.

    Returns:
        The course folder for training NIfTI files, None for everything else
        (``imagesTs/``, ``dataset.json``, ``._*`` files, folders).
    """
    pure = PurePosixPath(name)
    if not is_nifti_name(pure.name):
        return None
    return MSD_TO_COURSE.get(pure.parent.name)


def _extract_training_members(tar_path: Path, scratch: Path) -> list[tuple[tarfile.TarInfo, str]]:
    """Extract the training NIfTI members of an archive into ``scratch``.

    Args:
        tar_path: Archive to read.
        scratch: Empty folder to extract into (keeps the archive's paths).

    Returns:
        The extracted members, each with its course folder name.

    Raises:
        GetDataError: If the archive is unreadable or has an unsafe member path.
    """
    try:
        with tarfile.open(tar_path, "r:*") as archive:
            wanted: list[tuple[tarfile.TarInfo, str]] = []
            for member in archive.getmembers():
                if _member_escapes(member.name, scratch):
                    raise GetDataError(
                        f"{tar_path}: refusing archive: member {member.name!r} "
                        "points outside the destination folder"
                    )
                kind = _msd_member_kind(member.name)
                if kind is None:
                    LOGGER.debug("Skipping %s", member.name)
                    continue
                if not member.isfile():
                    LOGGER.warning("Skipping %s in %s: not a regular file", member.name, tar_path)
                    continue
                wanted.append((member, kind))
            scratch.mkdir(parents=True, exist_ok=True)
            selected = [member for member, _ in wanted]
            if hasattr(tarfile, "data_filter"):
                archive.extractall(scratch, members=selected, filter="data")
            else:  # Python without extraction filters; members were vetted above
                archive.extractall(scratch, members=selected)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise GetDataError(f"{tar_path} is not a readable tar archive ({exc})") from exc
    except OSError as exc:
        raise GetDataError(f"could not read {tar_path}: {exc}") from exc
    return wanted


def extract_msd_tar(tar_path: Path, dest: Path) -> None:
    """Unpack the training NIfTI files of an MSD archive into the course layout.

    Only regular ``*.nii.gz`` members directly inside ``imagesTr/`` or
    ``labelsTr/`` are extracted (never ``._*`` files or ``imagesTs/``).
    An archive containing any member whose path would escape the
    destination is refused as a whole. Extraction uses tarfile's ``"data"``
    filter where Python provides it.

    Args:
        tar_path: ``.tar`` or ``.tar.gz`` file of the MSD download.
        dest: New ``TrainingSet`` folder to fill.

    Raises:
        GetDataError: If the file is not a readable tar archive, contains an
            unsafe member path, or holds two training files of the same name.
    """
    tar_path, dest = Path(tar_path), Path(dest)
    if not tar_path.is_file():
        raise GetDataError(f"{tar_path} does not exist or is not a file")
    scratch = dest / ".extract"
    try:
        wanted = _extract_training_members(tar_path, scratch)
        for kind in KINDS:
            (dest / kind).mkdir(parents=True, exist_ok=True)
        for member, kind in wanted:
            target = dest / kind / PurePosixPath(member.name).name
            if target.exists():
                raise GetDataError(f"{tar_path}: two training files are named {target.name}")
            os.replace(scratch / member.name, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    LOGGER.info("Extracted %d training files from %s", len(wanted), tar_path)


# --------------------------------------------------------------------------- #
# Source detection
# --------------------------------------------------------------------------- #
def detect_source(path: Path) -> tuple[str, Path]:
    """Work out what kind of local copy ``path`` is.

    Args:
        path: A course-layout folder, an MSD folder, a parent of either
            (``.../TrainingSet`` or ``.../Task04_Hippocampus``), or an MSD tar.

    Returns:
        ``(kind, folder_or_file)`` with kind ``"course"``, ``"msd"`` or ``"tar"``.

    Raises:
        GetDataError: If the path is missing or matches no known layout.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise GetDataError(f"{path} does not exist")
    if path.is_file():
        if tarfile.is_tarfile(path):
            return "tar", path
        raise GetDataError(
            f"{path} is not a tar archive (expected the MSD Task04_Hippocampus.tar or a folder)"
        )
    candidates = [path, path / TRAINING_DIR, path / "Task04_Hippocampus"]
    for folder in candidates:
        if all((folder / kind).is_dir() for kind in KINDS):
            return "course", folder
        if all((folder / name).is_dir() for name in MSD_TO_COURSE):
            return "msd", folder
    # Partly right layouts get a message naming the missing folder.
    if any((path / kind).is_dir() for kind in KINDS):
        _require_dirs(path, KINDS, "course")
    if any((path / name).is_dir() for name in MSD_TO_COURSE):
        _require_dirs(path, tuple(MSD_TO_COURSE), "MSD")
    raise GetDataError(
        f"{path} has no images/ and labels/ folders (course layout) "
        "and no imagesTr/ and labelsTr/ folders (MSD layout)"
    )


# --------------------------------------------------------------------------- #
# Verification
# --------------------------------------------------------------------------- #
def _check_nifti(path: Path) -> str | None:
    """Check one file; return None if fine, else a short reason."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):  # decompress fully: catches truncation (CRC)
                pass
    except (OSError, EOFError, zlib.error) as exc:
        return f"not a readable gzip file ({exc})"
    try:
        image = nibabel.load(path)  # reads the header only
        shape = tuple(image.shape)
    except Exception as exc:  # noqa: BLE001 - any nibabel failure means "unreadable"
        return f"NIfTI header does not load ({type(exc).__name__}: {exc})"
    if not shape or min(shape) < 1:
        return f"NIfTI header has an empty shape {shape}"
    return None


def verify_course_layout(dest: Path) -> dict[str, Any]:
    """Check a ``TrainingSet`` folder and summarise what it holds.

    Every ``*.nii.gz`` under ``images/`` and ``labels/`` must be a complete
    gzip stream whose NIfTI header nibabel can read. Unpaired files (an image
    without a label or the reverse) are reported as warnings, not errors.

    Args:
        dest: Folder holding ``images/`` and ``labels/``.

    Returns:
        Dict with ``images``, ``labels`` and ``paired`` counts, and sorted
        lists ``unpaired_images`` and ``unpaired_labels`` of file names.

    Raises:
        GetDataError: If a folder is missing, either is empty, or any file
            fails the checks (the message names the files).
    """
    if nibabel is None:
        raise GetDataError("nibabel is not installed; install the course requirements first")
    dest = Path(dest)
    names: dict[str, set[str]] = {}
    problems: list[str] = []
    for kind in KINDS:
        folder = dest / kind
        if not folder.is_dir():
            raise GetDataError(f"{folder} is missing")
        files = sorted(p for p in folder.glob("*" + NIFTI_SUFFIX) if p.is_file())
        if not files:
            raise GetDataError(f"{folder} holds no {NIFTI_SUFFIX} files")
        names[kind] = {p.name for p in files}
        for path in files:
            reason = _check_nifti(path)
            if reason is not None:
                problems.append(f"{path}: {reason}")
    if problems:
        shown = "; ".join(problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise GetDataError(f"{len(problems)} file(s) failed verification: {shown}{more}")

    paired = names["images"] & names["labels"]
    summary = {
        "images": len(names["images"]),
        "labels": len(names["labels"]),
        "paired": len(paired),
        "unpaired_images": sorted(names["images"] - paired),
        "unpaired_labels": sorted(names["labels"] - paired),
    }
    if summary["unpaired_images"]:
        LOGGER.warning("Images without a label: %s", ", ".join(summary["unpaired_images"]))
    if summary["unpaired_labels"]:
        LOGGER.warning("Labels without an image: %s", ", ".join(summary["unpaired_labels"]))
    return summary


# --------------------------------------------------------------------------- #
# Putting it together
# --------------------------------------------------------------------------- #
def fill_training_set(source: Path | None, staging: Path, dest: Path, url: str, md5: str | None) -> None:
    """Fill ``staging`` with images/ and labels/ from a local copy or the download.

    Args:
        source: Local copy to import, or None to download.
        staging: Empty folder that becomes the new ``TrainingSet``.
        dest: DEST folder (where a downloaded archive is kept).
        url: Download address used when ``source`` is None.
        md5: Expected MD5 of the download, or None to skip the check.
    """
    if source is not None:
        kind, path = detect_source(source)
        LOGGER.info("Importing %s (%s layout)", path, kind)
        if kind == "course":
            import_course_folder(path, staging)
        elif kind == "msd":
            import_msd_folder(path, staging)
        else:
            extract_msd_tar(path, staging)
        return
    tar_file = dest / TAR_NAME
    if tar_file.is_file() and (not md5 or md5sum(tar_file) == md5.lower()):
        LOGGER.info("Reusing the archive already downloaded at %s", tar_file)
    else:
        download_tar(url, tar_file, md5)
    extract_msd_tar(tar_file, staging)


def install(staging: Path, training_dir: Path) -> None:
    """Rename a finished ``staging`` folder to ``training_dir``, replacing any old one.

    Args:
        staging: Fully written and verified new ``TrainingSet``.
        training_dir: Final ``DEST/TrainingSet`` path.
    """
    old: Path | None = None
    if training_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{TRAINING_DIR}.old-", dir=training_dir.parent))
        old.rmdir()
        os.replace(training_dir, old)
    try:
        os.replace(staging, training_dir)
    except OSError:
        if old is not None:
            os.replace(old, training_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The configured ``argparse.ArgumentParser``.
    """
    parser = argparse.ArgumentParser(
        prog="get_data.py",
        description=(
            "Fetch the Medical Segmentation Decathlon Task04 Hippocampus data "
            "(CC BY-SA 4.0) into DEST/TrainingSet/images and DEST/TrainingSet/labels."
        ),
        epilog=(
            f"Environment: {ENV_SOURCE}=PATH sets the default for --from, so a "
            "shared copy is imported instead of downloading."
        ),
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="PATH",
        type=Path,
        default=None,
        help=(
            "import a local copy instead of downloading: a folder with images/ and "
            "labels/, a folder with imagesTr/ and labelsTr/, or the MSD .tar/.tar.gz "
            f"(default: ${ENV_SOURCE} if set, otherwise download)"
        ),
    )
    parser.add_argument(
        "--dest",
        metavar="DIR",
        type=Path,
        default=DEFAULT_DEST,
        help=f"folder that receives TrainingSet/ and the downloaded archive (default: {DEFAULT_DEST})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace DEST/TrainingSet even if it already holds data (default: off)",
    )
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help=f"address of the MSD archive to download (default: {DEFAULT_URL})",
    )
    parser.add_argument(
        "--md5",
        default=DEFAULT_MD5,
        help=f"expected MD5 of the download; pass '' to skip the check (default: {DEFAULT_MD5})",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every step, including skipped files (default: off)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line tool.

    Args:
        argv: Arguments without the program name; None means ``sys.argv[1:]``.

    Returns:
        Process exit code: 0 on success or when data is already present,
        1 on error (a one-line message is printed to stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s: %(message)s")
    LOGGER.setLevel(logging.DEBUG if args.verbose else logging.INFO)

    source = args.source
    if source is None and os.environ.get(ENV_SOURCE):
        source = Path(os.environ[ENV_SOURCE])
        LOGGER.info("Using %s=%s", ENV_SOURCE, source)
    dest = Path(args.dest).expanduser().absolute()
    training_dir = dest / TRAINING_DIR

    if has_data(training_dir) and not args.force:
        print(f"{training_dir} already holds data; nothing to do (use --force to replace it).")
        return 0

    created_dest = not dest.exists()
    staging: Path | None = None
    try:
        if dest.exists() and not dest.is_dir():
            raise GetDataError(f"--dest {dest} exists and is not a folder")
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{TRAINING_DIR}.incoming-", dir=dest))
        os.chmod(staging, 0o777 & ~_current_umask())
        fill_training_set(source, staging, dest, args.url, args.md5 or None)
        summary = verify_course_layout(staging)
        install(staging, training_dir)
    except GetDataError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if created_dest and dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()

    print(
        f"{training_dir}: {summary['images']} images, {summary['labels']} labels, "
        f"{summary['paired']} paired"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

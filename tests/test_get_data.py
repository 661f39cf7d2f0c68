"""Tests for tools/get_data.py, the data download/import tool.

Everything runs offline on tiny synthetic NIfTI files; the download runs for real, through
pooch, from an HTTP server on this machine. One test imports the shared course copy of the
real data when it is present on this machine.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import get_data

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TRAINING_SET = REPO_ROOT.parent / "shared" / "data" / "hippocampus" / "TrainingSet"


# --------------------------------------------------------------------------- #
# Builders for synthetic data
# --------------------------------------------------------------------------- #
def write_nifti(path: Path, seed: int, label: bool = False) -> Path:
    """Write a tiny 4x5x6 NIfTI volume (label volumes hold 0/1/2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if label:
        data = rng.integers(0, 3, size=(4, 5, 6)).astype(np.uint8)
    else:
        data = rng.normal(size=(4, 5, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def make_course_folder(root: Path, images=("001", "002", "003"), labels=("001", "002")) -> Path:
    """Course layout: images/ and labels/ with hippocampus_XXX.nii.gz."""
    for i, case in enumerate(images):
        write_nifti(root / "images" / f"hippocampus_{case}.nii.gz", seed=i)
    for i, case in enumerate(labels):
        write_nifti(root / "labels" / f"hippocampus_{case}.nii.gz", seed=100 + i, label=True)
    return root


def make_msd_folder(root: Path) -> Path:
    """MSD layout with the extras of the real archive: imagesTs, dataset.json, ._ files."""
    for i, case in enumerate(("001", "002")):
        write_nifti(root / "imagesTr" / f"hippocampus_{case}.nii.gz", seed=i)
        write_nifti(root / "labelsTr" / f"hippocampus_{case}.nii.gz", seed=50 + i, label=True)
    write_nifti(root / "imagesTs" / "hippocampus_267.nii.gz", seed=99)
    (root / "imagesTr" / "._hippocampus_001.nii.gz").write_bytes(b"\x00\x05\x16\x07 macOS junk")
    (root / "labelsTr" / "._hippocampus_001.nii.gz").write_bytes(b"\x00\x05\x16\x07 macOS junk")
    (root / "dataset.json").write_text('{"name": "Hippocampus"}')
    return root


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add an in-memory file under an arbitrary (possibly hostile) member name."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_msd_tar(tmp_path: Path, mode: str = "w", suffix: str = ".tar", extra=()) -> Path:
    """A synthetic Task04_Hippocampus archive; ``extra`` is (name, bytes) members to add."""
    msd = make_msd_folder(tmp_path / "build" / "Task04_Hippocampus")
    tar_path = tmp_path / f"Task04_Hippocampus{suffix}"
    with tarfile.open(tar_path, mode) as archive:
        archive.add(msd, arcname="Task04_Hippocampus")
        for name, data in extra:
            add_bytes(archive, name, data)
    return tar_path


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging each request to stderr."""

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """(folder, base URL): a local HTTP server serving the files put into ``folder``."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # requests must not send it to a proxy
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def serve_msd_tar(tmp_path: Path, served) -> tuple[Path, str]:
    """A synthetic MSD archive on the local server: (its file, its URL)."""
    folder, base_url = served
    tar_path = make_msd_tar(tmp_path)
    (folder / tar_path.name).write_bytes(tar_path.read_bytes())
    return tar_path, f"{base_url}/{tar_path.name}"


def nifti_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.nii.gz"))


@pytest.fixture(autouse=True)
def no_env_source(monkeypatch):
    """Tests must not pick up a HIPPOCAMPUS_DATA set in the developer's shell."""
    monkeypatch.delenv("HIPPOCAMPUS_DATA", raising=False)


# --------------------------------------------------------------------------- #
# Importing local copies
# --------------------------------------------------------------------------- #
def test_import_from_course_folder_copies_files_byte_for_byte(tmp_path, capsys):
    src = make_course_folder(tmp_path / "src")
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(src), "--dest", str(dest)]) == 0

    for kind in ("images", "labels"):
        copied = dest / "TrainingSet" / kind
        assert nifti_names(copied) == nifti_names(src / kind)
        for original in (src / kind).iterdir():
            assert (copied / original.name).read_bytes() == original.read_bytes()
    assert "3 images, 2 labels, 2 paired" in capsys.readouterr().out


def test_import_from_course_folder_keeps_unpaired_files_and_warns_by_name(tmp_path, caplog):
    src = make_course_folder(tmp_path / "src", images=("001", "002"), labels=("001", "002", "009"))
    dest = tmp_path / "data"

    with caplog.at_level("WARNING", logger="get_data"):
        assert get_data.main(["--from", str(src), "--dest", str(dest)]) == 0

    assert (dest / "TrainingSet" / "labels" / "hippocampus_009.nii.gz").is_file()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("hippocampus_009.nii.gz" in message for message in warnings)


def test_import_from_parent_of_training_set_finds_the_course_layout(tmp_path):
    make_course_folder(tmp_path / "hippocampus" / "TrainingSet")
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(tmp_path / "hippocampus"), "--dest", str(dest)]) == 0

    assert len(nifti_names(dest / "TrainingSet" / "images")) == 3


def test_import_from_msd_folder_skips_test_images_and_macos_junk(tmp_path, capsys):
    src = make_msd_folder(tmp_path / "Task04_Hippocampus")
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(src), "--dest", str(dest)]) == 0

    training = dest / "TrainingSet"
    expected = ["hippocampus_001.nii.gz", "hippocampus_002.nii.gz"]
    assert nifti_names(training / "images") == expected
    assert nifti_names(training / "labels") == expected
    assert sorted(p.name for p in training.iterdir()) == ["images", "labels"]
    assert (training / "images" / "hippocampus_001.nii.gz").read_bytes() == (
        src / "imagesTr" / "hippocampus_001.nii.gz"
    ).read_bytes()
    assert "2 images, 2 labels, 2 paired" in capsys.readouterr().out


@pytest.mark.parametrize(("mode", "suffix"), [("w", ".tar"), ("w:gz", ".tar.gz")])
def test_import_from_msd_tar_extracts_only_training_niftis(tmp_path, mode, suffix):
    tar_path = make_msd_tar(tmp_path, mode, suffix)
    with tarfile.open(tar_path) as archive:  # the junk really is in the archive
        names = archive.getnames()
    assert "Task04_Hippocampus/imagesTr/._hippocampus_001.nii.gz" in names
    assert "Task04_Hippocampus/imagesTs/hippocampus_267.nii.gz" in names
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(tar_path), "--dest", str(dest)]) == 0

    training = dest / "TrainingSet"
    expected = ["hippocampus_001.nii.gz", "hippocampus_002.nii.gz"]
    assert nifti_names(training / "images") == expected
    assert nifti_names(training / "labels") == expected
    assert not list(training.rglob("._*"))
    assert not list(training.rglob("hippocampus_267.nii.gz"))
    assert sorted(p.name for p in training.iterdir()) == ["images", "labels"]
    source = tmp_path / "build" / "Task04_Hippocampus" / "labelsTr" / "hippocampus_002.nii.gz"
    assert (training / "labels" / "hippocampus_002.nii.gz").read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "evil_name",
    [
        "../evil.nii.gz",
        "Task04_Hippocampus/imagesTr/../../../evil.nii.gz",
        "../imagesTr/evil.nii.gz",
    ],
)
def test_tar_with_path_traversal_member_is_rejected_and_writes_nothing_outside_dest(
    tmp_path, capsys, evil_name
):
    payload = write_nifti(tmp_path / "payload.nii.gz", seed=7).read_bytes()
    tar_path = make_msd_tar(tmp_path, extra=[(evil_name, payload)])
    dest = tmp_path / "deep" / "data"

    assert get_data.main(["--from", str(tar_path), "--dest", str(dest)]) == 1

    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert evil_name in err and "outside" in err
    assert not list(tmp_path.rglob("evil.nii.gz"))
    assert not (dest / "TrainingSet").exists()


def test_tar_with_a_link_out_of_the_destination_is_rejected(tmp_path, capsys):
    tar_path = make_msd_tar(tmp_path)
    with tarfile.open(tar_path, "a") as archive:
        link = tarfile.TarInfo("Task04_Hippocampus/imagesTr/hippocampus_009.nii.gz")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(tar_path), "--dest", str(dest)]) == 1

    err = capsys.readouterr().err
    assert "hippocampus_009.nii.gz" in err and "refusing the archive" in err
    assert not (dest / "TrainingSet").exists()


def test_an_absolute_member_name_is_taken_relative_so_nothing_lands_outside(tmp_path):
    outside = tmp_path / "outside.nii.gz"  # where the member's name points
    payload = write_nifti(tmp_path / "payload.nii.gz", seed=7).read_bytes()
    tar_path = make_msd_tar(tmp_path, extra=[(str(outside), payload)])
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(tar_path), "--dest", str(dest)]) == 0

    assert not outside.exists()
    assert nifti_names(dest / "TrainingSet" / "images") == ["hippocampus_001.nii.gz",
                                                           "hippocampus_002.nii.gz"]


def test_extract_msd_tar_never_writes_outside_dest_when_called_directly(tmp_path):
    tar_path = make_msd_tar(tmp_path, extra=[("../evil.nii.gz", b"x")])
    dest = tmp_path / "out" / "TrainingSet"
    dest.mkdir(parents=True)

    with pytest.raises(get_data.GetDataError, match="outside"):
        get_data.extract_msd_tar(tar_path, dest)

    assert not list(tmp_path.rglob("evil.nii.gz"))
    assert list(dest.iterdir()) == []


def test_a_file_that_is_not_a_tar_gives_a_clear_error(tmp_path, capsys):
    bogus = tmp_path / "Task04_Hippocampus.tar"
    bogus.write_text("this is not an archive\n" * 100)

    assert get_data.main(["--from", str(bogus), "--dest", str(tmp_path / "data")]) == 1

    err = capsys.readouterr().err
    assert str(bogus) in err and "not a tar" in err
    assert not (tmp_path / "data").exists()


def test_a_missing_source_path_gives_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nowhere"

    assert get_data.main(["--from", str(missing), "--dest", str(tmp_path / "data")]) == 1

    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err


def test_folder_without_images_gives_a_clear_error_naming_the_path(tmp_path, capsys):
    src = tmp_path / "src"
    write_nifti(src / "labels" / "hippocampus_001.nii.gz", seed=1, label=True)
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(src), "--dest", str(dest)]) == 1

    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(src) in err and "images/" in err
    assert "Traceback" not in err
    assert not (dest / "TrainingSet").exists()


def test_folder_with_neither_layout_gives_a_clear_error(tmp_path, capsys):
    src = tmp_path / "empty"
    src.mkdir()

    assert get_data.main(["--from", str(src), "--dest", str(tmp_path / "data")]) == 1

    err = capsys.readouterr().err
    assert str(src) in err and "images/" in err and "imagesTr/" in err


def test_hippocampus_data_environment_variable_is_the_default_source(tmp_path, monkeypatch):
    src = make_course_folder(tmp_path / "shared")
    monkeypatch.setenv("HIPPOCAMPUS_DATA", str(src))
    dest = tmp_path / "data"

    assert get_data.main(["--dest", str(dest), "--url", "http://127.0.0.1:9/no.tar"]) == 0

    assert nifti_names(dest / "TrainingSet" / "images") == nifti_names(src / "images")


# --------------------------------------------------------------------------- #
# Verification
# --------------------------------------------------------------------------- #
def test_corrupt_nifti_fails_verification_naming_the_file(tmp_path, capsys):
    src = make_course_folder(tmp_path / "src")
    (src / "images" / "hippocampus_002.nii.gz").write_bytes(b"not gzip at all")
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(src), "--dest", str(dest)]) == 1

    err = capsys.readouterr().err
    assert "hippocampus_002.nii.gz" in err and "gzip" in err
    assert not (dest / "TrainingSet").exists()
    assert not dest.exists()  # the run created it, so it cleans it up again


def test_truncated_gzip_fails_verification_even_when_the_header_still_loads(tmp_path):
    training = make_course_folder(tmp_path / "TrainingSet")
    victim = training / "labels" / "hippocampus_001.nii.gz"
    data = np.random.default_rng(3).integers(0, 3, size=(40, 40, 40)).astype(np.uint8)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(victim))
    victim.write_bytes(victim.read_bytes()[:-8])  # drop the gzip trailer (CRC + size)
    assert nib.load(victim).shape == (40, 40, 40)  # a header-only check would miss it

    with pytest.raises(get_data.GetDataError, match="hippocampus_001.nii.gz"):
        get_data.verify_course_layout(training)


def test_gzip_that_is_not_nifti_fails_verification(tmp_path):
    training = make_course_folder(tmp_path / "TrainingSet")
    victim = training / "images" / "hippocampus_003.nii.gz"
    victim.write_bytes(gzip.compress(b"plain text, no NIfTI header here" * 20))

    with pytest.raises(get_data.GetDataError, match="hippocampus_003.nii.gz.*NIfTI"):
        get_data.verify_course_layout(training)


def test_verify_course_layout_reports_counts_and_unpaired_names(tmp_path):
    training = make_course_folder(tmp_path / "TrainingSet", images=("001", "002", "004"),
                                  labels=("001", "005"))

    summary = get_data.verify_course_layout(training)

    assert summary["images"] == 3 and summary["labels"] == 2 and summary["paired"] == 1
    assert summary["unpaired_images"] == ["hippocampus_002.nii.gz", "hippocampus_004.nii.gz"]
    assert summary["unpaired_labels"] == ["hippocampus_005.nii.gz"]


def test_empty_labels_folder_fails_verification(tmp_path):
    training = make_course_folder(tmp_path / "TrainingSet", labels=())
    (training / "labels").mkdir()

    with pytest.raises(get_data.GetDataError, match="labels"):
        get_data.verify_course_layout(training)


# --------------------------------------------------------------------------- #
# Idempotence and --force
# --------------------------------------------------------------------------- #
def test_existing_data_without_force_exits_zero_and_leaves_files_alone(tmp_path, capsys):
    dest = tmp_path / "data"
    existing = make_course_folder(dest / "TrainingSet", images=("001",), labels=("001",))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in existing.rglob("*.nii.gz")}
    other = make_course_folder(tmp_path / "other", images=("007", "008"), labels=("007",))

    assert get_data.main(["--from", str(other), "--dest", str(dest)]) == 0

    assert "already holds data" in capsys.readouterr().out
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in existing.rglob("*.nii.gz")}
    assert after == before
    assert sorted(p.name for p in dest.iterdir()) == ["TrainingSet"]


def test_force_replaces_existing_data(tmp_path):
    dest = tmp_path / "data"
    make_course_folder(dest / "TrainingSet", images=("001",), labels=("001",))
    other = make_course_folder(tmp_path / "other", images=("007", "008"), labels=("007",))

    assert get_data.main(["--from", str(other), "--dest", str(dest), "--force"]) == 0

    training = dest / "TrainingSet"
    assert nifti_names(training / "images") == ["hippocampus_007.nii.gz", "hippocampus_008.nii.gz"]
    assert nifti_names(training / "labels") == ["hippocampus_007.nii.gz"]
    assert sorted(p.name for p in dest.iterdir()) == ["TrainingSet"]  # no temp folders left


def test_failed_forced_import_keeps_the_old_data(tmp_path):
    dest = tmp_path / "data"
    existing = make_course_folder(dest / "TrainingSet", images=("001",), labels=("001",))
    before = {p: p.read_bytes() for p in existing.rglob("*.nii.gz")}
    broken = make_course_folder(tmp_path / "broken")
    (broken / "labels" / "hippocampus_001.nii.gz").write_bytes(b"garbage")

    assert get_data.main(["--from", str(broken), "--dest", str(dest), "--force"]) == 1

    assert {p: p.read_bytes() for p in existing.rglob("*.nii.gz")} == before
    assert sorted(p.name for p in dest.iterdir()) == ["TrainingSet"]


# --------------------------------------------------------------------------- #
# Download
# --------------------------------------------------------------------------- #
def test_download_fetches_over_http_and_leaves_only_the_archive(tmp_path, served):
    tar_path, url = serve_msd_tar(tmp_path, served)
    folder = tmp_path / "downloads"

    result = get_data.download_archive(url, folder, md5_of(tar_path))

    assert result == folder / "Task04_Hippocampus.tar"
    assert result.read_bytes() == tar_path.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["Task04_Hippocampus.tar"]


def test_an_archive_already_downloaded_with_the_right_md5_is_not_fetched_again(tmp_path,
                                                                                served):
    tar_path, url = serve_msd_tar(tmp_path, served)
    folder = tmp_path / "downloads"
    get_data.download_archive(url, folder, md5_of(tar_path))
    (served[0] / tar_path.name).unlink()  # a second download would now fail

    result = get_data.download_archive(url, folder, md5_of(tar_path))

    assert result.read_bytes() == tar_path.read_bytes()


def test_download_with_wrong_md5_raises_and_keeps_nothing(tmp_path, served):
    _, url = serve_msd_tar(tmp_path, served)
    folder = tmp_path / "downloads"

    with pytest.raises(get_data.GetDataError, match="MD5 hash .* does not match"):
        get_data.download_archive(url, folder, "0" * 32)

    assert list(folder.iterdir()) == []


def test_download_failure_names_the_url_and_suggests_using_from(tmp_path, served):
    folder = tmp_path / "downloads"
    url = f"{served[1]}/missing.tar"

    with pytest.raises(get_data.GetDataError, match="--from") as caught:
        get_data.download_archive(url, folder, None)

    assert url in str(caught.value) and "404" in str(caught.value)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_main_downloads_verifies_and_unpacks_when_no_source_is_given(tmp_path, capsys, served):
    tar_path, url = serve_msd_tar(tmp_path, served)
    dest = tmp_path / "data"

    code = get_data.main(["--dest", str(dest), "--url", url, "--md5", md5_of(tar_path)])

    assert code == 0
    assert "2 images, 2 labels, 2 paired" in capsys.readouterr().out
    assert (dest / "Task04_Hippocampus.tar").read_bytes() == tar_path.read_bytes()
    assert nifti_names(dest / "TrainingSet" / "images") == ["hippocampus_001.nii.gz",
                                                           "hippocampus_002.nii.gz"]
    assert sorted(p.name for p in dest.iterdir()) == ["Task04_Hippocampus.tar", "TrainingSet"]


def test_main_reports_md5_mismatch_as_one_line_error(tmp_path, capsys, served):
    _, url = serve_msd_tar(tmp_path, served)
    dest = tmp_path / "data"

    code = get_data.main(["--dest", str(dest), "--url", url, "--md5", "f" * 32])

    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not match the known hash" in err
    assert not dest.exists()


def test_default_download_settings_match_monai_decathlon_dataset():
    assert get_data.DEFAULT_URL == ("https://msd-for-monai.s3-us-west-2.amazonaws.com/"
                                    "Task04_Hippocampus.tar")
    assert get_data.DEFAULT_MD5 == "9d24dba78a72977dbd1d2e110310f31b"
    assert get_data.DEFAULT_DEST == REPO_ROOT / "data"


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def test_every_help_text_ends_with_its_default():
    parser = get_data.build_parser()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help.rstrip().endswith(")") and "(default: " in action.help, action.dest
    assert "HIPPOCAMPUS_DATA" in parser.format_help()


def test_unknown_option_exits_with_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        get_data.main(["--no-such-option"])
    assert caught.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# Real data (only where the shared course copy exists)
# --------------------------------------------------------------------------- #
@pytest.mark.real_data
@pytest.mark.skipif(
    not SHARED_TRAINING_SET.is_dir(),
    reason=f"shared course copy of the data not found at {SHARED_TRAINING_SET}",
)
def test_import_of_the_shared_real_data_keeps_every_file(tmp_path, capsys):
    dest = tmp_path / "data"

    assert get_data.main(["--from", str(SHARED_TRAINING_SET), "--dest", str(dest)]) == 0

    for kind in ("images", "labels"):
        assert nifti_names(dest / "TrainingSet" / kind) == nifti_names(SHARED_TRAINING_SET / kind)
    n_images = len(nifti_names(SHARED_TRAINING_SET / "images"))
    n_labels = len(nifti_names(SHARED_TRAINING_SET / "labels"))
    assert f"{n_images} images, {n_labels} labels" in capsys.readouterr().out

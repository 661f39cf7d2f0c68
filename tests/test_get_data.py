"""Tests for tools/get_data.py, the data download/import tool.

Everything runs offline on tiny synthetic NIfTI files; the download path is
exercised for real through ``file://`` URLs. One test imports the shared
course copy of the real data when it is present on this machine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOL_PATH = REPO_ROOT / "tools" / "get_data.py"
SHARED_TRAINING_SET = REPO_ROOT.parent / "shared" / "data" / "hippocampus" / "TrainingSet"


def _load_tool():
    spec = importlib.util.spec_from_file_location("get_data", TOOL_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["get_data"] = module
    spec.loader.exec_module(module)
    return module


get_data = _load_tool()


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
        "/tmp/get_data_test_evil.nii.gz",
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
    assert not Path("/tmp/get_data_test_evil.nii.gz").exists()
    assert not (dest / "TrainingSet").exists()


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

    assert get_data.main(["--dest", str(dest), "--url", "file:///does/not/exist.tar"]) == 0

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
    import gzip

    training = make_course_folder(tmp_path / "TrainingSet")
    victim = training / "images" / "hippocampus_003.nii.gz"
    victim.write_bytes(gzip.compress(b"plain text, no NIfTI header here" * 20))

    with pytest.raises(get_data.GetDataError, match="hippocampus_003.nii.gz.*NIfTI"):
        get_data.verify_course_layout(training)


def test_verify_course_layout_reports_counts_and_unpaired_names(tmp_path):
    training = make_course_folder(tmp_path / "TrainingSet", images=("001", "002", "004"), labels=("001", "005"))

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
def test_download_tar_fetches_a_file_url_and_leaves_no_part_file(tmp_path):
    tar_path = make_msd_tar(tmp_path)
    target = tmp_path / "downloads" / "Task04_Hippocampus.tar"

    result = get_data.download_tar(tar_path.as_uri(), target, md5_of(tar_path))

    assert result == target
    assert target.read_bytes() == tar_path.read_bytes()
    assert not target.with_name(target.name + ".part").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["Task04_Hippocampus.tar"]


def test_download_tar_with_wrong_md5_raises_and_keeps_nothing(tmp_path):
    tar_path = make_msd_tar(tmp_path)
    target = tmp_path / "downloads" / "Task04_Hippocampus.tar"

    with pytest.raises(get_data.GetDataError, match="MD5 mismatch"):
        get_data.download_tar(tar_path.as_uri(), target, "0" * 32)

    assert list(target.parent.iterdir()) == []


def test_download_failure_suggests_using_from(tmp_path):
    target = tmp_path / "downloads" / "Task04_Hippocampus.tar"
    url = (tmp_path / "missing.tar").as_uri()

    with pytest.raises(get_data.GetDataError, match="--from") as caught:
        get_data.download_tar(url, target, None)

    assert url in str(caught.value)
    assert list(target.parent.iterdir()) == []


def test_main_downloads_verifies_and_unpacks_when_no_source_is_given(tmp_path, capsys):
    tar_path = make_msd_tar(tmp_path)
    dest = tmp_path / "data"

    code = get_data.main(["--dest", str(dest), "--url", tar_path.as_uri(), "--md5", md5_of(tar_path)])

    assert code == 0
    assert "2 images, 2 labels, 2 paired" in capsys.readouterr().out
    assert (dest / "Task04_Hippocampus.tar").read_bytes() == tar_path.read_bytes()
    assert nifti_names(dest / "TrainingSet" / "images") == ["hippocampus_001.nii.gz", "hippocampus_002.nii.gz"]
    assert not list(dest.glob("*.part"))


def test_main_reports_md5_mismatch_as_one_line_error(tmp_path, capsys):
    tar_path = make_msd_tar(tmp_path)
    dest = tmp_path / "data"

    code = get_data.main(["--dest", str(dest), "--url", tar_path.as_uri(), "--md5", "f" * 32])

    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "MD5 mismatch" in err
    assert not dest.exists()


def test_default_download_settings_match_monai_decathlon_dataset():
    assert get_data.DEFAULT_URL == "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar"
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

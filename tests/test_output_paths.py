"""Output paths refused before any work: exists, directory, missing or unwritable parent,
over-long name, unknown type, missing writer package."""
from __future__ import annotations

import builtins
import os

import pytest

from bossnet_onnx.errors import OutputError, OutputPathError
from bossnet_onnx.run.output_paths import IMAGE_SUFFIXES, check_output


def test_a_fresh_path_passes(tmp_path):
    for suffix in (".fits", ".fits.gz", ".csv", ".ecsv", ".parquet"):
        assert check_output(tmp_path / f"cat{suffix}") == tmp_path / f"cat{suffix}"
    assert check_output(tmp_path / "k.png", suffixes=IMAGE_SUFFIXES)
    assert list(tmp_path.iterdir()) == []  # the writability probe leaves nothing behind


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "cat.fits"
    out.write_bytes(b"precious")
    with pytest.raises(OutputPathError, match=r"cat\.fits already exists; pass --overwrite"):
        check_output(out)
    assert check_output(out, overwrite=True) == out
    assert check_output(out, allow_existing=True) == out
    assert out.read_bytes() == b"precious"
    os.symlink(tmp_path / "nowhere.fits", tmp_path / "dangling.fits")
    with pytest.raises(OutputPathError, match="already exists"):
        check_output(tmp_path / "dangling.fits")


def test_directory_missing_parent_and_unknown_type(tmp_path):
    (tmp_path / "d.fits").mkdir()
    with pytest.raises(OutputPathError, match=r"d\.fits is a directory; give a file name"):
        check_output(tmp_path / "d.fits", overwrite=True)
    with pytest.raises(OutputPathError, match=r"output directory .*nope does not exist"):
        check_output(tmp_path / "nope" / "cat.fits")
    with pytest.raises(OutputPathError, match=r"cat\.txt: unknown output type; name it with one "
                                              r"of \.csv, \.ecsv, \.fit, \.fits"):
        check_output(tmp_path / "cat.txt")
    with pytest.raises(OutputPathError, match="unknown output type"):
        check_output(tmp_path / ".fits")
    with pytest.raises(OutputPathError, match=r"unknown output type; name it with one of "
                                              r"\.pdf, \.png, \.svg"):
        check_output(tmp_path / "k.fits", suffixes=IMAGE_SUFFIXES)
    assert issubclass(OutputPathError, OutputError)


def test_over_long_name_counts_the_progress_and_lock_files(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    room = len(".partial") + len(".lock")
    fits_ok = "a" * (limit - room - len(".fits")) + ".fits"
    assert check_output(tmp_path / fits_ok)
    too_long = "a" + fits_ok
    with pytest.raises(OutputPathError, match=rf"file name too long \({limit - room + 1} bytes; "
                                              rf"at most {limit - room} here"):
        check_output(tmp_path / too_long)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_directory(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match=r"cannot create files in .*ro \(Permission "
                                                  r"denied\); choose a writable place"):
            check_output(locked / "cat.fits")
    finally:
        locked.chmod(0o700)


def test_parquet_without_pyarrow_is_refused_before_work(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(OutputPathError, match=r"cat\.parquet: writing parquet needs pyarrow: "
                                              r"pip install 'bossnet-onnx\[parquet\]'"):
        check_output(tmp_path / "cat.parquet")
    assert check_output(tmp_path / "cat.csv")


def test_read_only_mount_is_refused_even_for_root(tiny_tmpfs):
    readonly = tiny_tmpfs("ro", "size=64k,ro")
    with pytest.raises(OutputPathError, match=r"cannot create files in .*ro \(Read-only file "
                                              r"system\); choose a writable place"):
        check_output(readonly / "cat.fits")

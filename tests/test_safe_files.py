"""safe_files: what a planted name can and cannot make us do (real links, FIFOs, hard links)."""
from __future__ import annotations

import os
import threading

import pytest

from bossnet_onnx.safe_files import (
    UnsafeFileError,
    inside,
    open_fd,
    open_file,
    regular_file_size,
)


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_bytes(b"precious")
    return path


@pytest.mark.parametrize("mode", ["wb", "ab", "r+b", "rb"])
def test_a_link_is_never_followed(tmp_path, victim, mode):
    link = tmp_path / "x.lock"
    link.symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="is a symbolic link; refusing"):
        open_file(link, mode)
    assert victim.read_bytes() == b"precious"


def test_a_dangling_link_creates_nothing(tmp_path):
    link = tmp_path / "x.part"
    link.symlink_to(tmp_path / "created-elsewhere")
    with pytest.raises(UnsafeFileError):
        open_file(link, "wb")
    assert not (tmp_path / "created-elsewhere").exists()


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.lock"
    os.mkfifo(fifo)
    done = []

    def attempt():
        for mode in ("wb", "r+b", "rb"):
            with pytest.raises(UnsafeFileError, match="is a FIFO"):
                open_file(fifo, mode)
        done.append(True)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    assert done == [True]  # a plain open(fifo, "wb") blocks until a reader comes
    with pytest.raises(UnsafeFileError, match="is a FIFO"):
        regular_file_size(fifo)


def test_a_second_hard_link_is_not_written(tmp_path, victim):
    os.link(victim, tmp_path / "x.part")
    with pytest.raises(UnsafeFileError, match="has other hard links"):
        open_file(tmp_path / "x.part", "ab")
    with open_file(tmp_path / "x.part", "rb") as fh:  # reading it is harmless
        assert fh.read() == b"precious"


def test_plain_files_behave_like_open(tmp_path):
    path = tmp_path / "a.bin"
    with open_file(path, "wb") as fh:
        fh.write(b"12345")
    with open_file(path, "ab") as fh:
        fh.write(b"67")
    with open_file(path, "r+b") as fh:
        assert fh.read() == b"1234567"
    with open_file(path, "wb") as fh:  # truncates only after the checks
        fh.write(b"x")
    assert path.read_bytes() == b"x" and oct(path.stat().st_mode & 0o777) != "0o0"
    fd = open_fd(path, os.O_RDONLY)
    assert os.get_blocking(fd)
    os.close(fd)
    with pytest.raises(UnsafeFileError, match="is a folder"):
        regular_file_size(tmp_path)


def test_inside_resolves_links(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"")
    (tmp_path / "m" / "out").symlink_to(tmp_path / "elsewhere")
    assert inside(tmp_path / "m" / "w", tmp_path / "m")
    assert not inside(tmp_path / "m" / "out", tmp_path / "m")
    assert not inside(tmp_path / "m" / ".." / "w", tmp_path / "m")

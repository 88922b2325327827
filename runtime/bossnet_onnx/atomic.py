"""Atomic file writes: a temporary file in the target's directory, then one rename.

The one home for "nothing half-written is left behind": catalogues, images and models all
appear complete or not at all, and a failed write removes its temporary file.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["publish", "write_atomically"]


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a finished temporary file into place with normal permissions.

    mkstemp creates files readable by their owner only; a catalogue or model is meant to be
    shared like any file the user writes, so apply the umask as open() would.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_atomically(path: str | os.PathLike, write: Callable[[str], None],
                     suffix: str = ".partial") -> Path:
    """Call `write(tmp_name)` for a temporary file beside `path`, then rename it to `path`.

    Any exception (KeyboardInterrupt included) removes the temporary file and propagates.
    `suffix` lets writers that choose a format by file name (matplotlib) see the right one.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".bossnet-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path

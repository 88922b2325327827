"""Opening files in folders a user controls without following what someone planted there.

Locks, download parts, cache entries and outputs are created under names anyone with write
access to the folder can predict (`locks/NAME.lock`, `NAME.part`, `cat.fits.lock`). A symbolic
link planted under such a name would make a plain `open()` truncate or append to the link's
target, which may be any file the user can write. Every file we create or rewrite in such a
folder is therefore opened here: `O_NOFOLLOW` (a link is refused by the kernel, not by a check
that could race), `O_NONBLOCK` for the open itself (a planted FIFO cannot hang us), then the
opened descriptor must be a regular file with one link (a hard link to another file is refused
too). Truncation happens only after those checks, on the descriptor. Readers of user-named
files use `regular_file_size` for the same checks without opening anything.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO

__all__ = ["UnsafeFileError", "open_fd", "open_file", "regular_file_size", "inside"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MODES = {
    "rb": os.O_RDONLY,
    "r+b": os.O_RDWR | os.O_CREAT,
    "wb": os.O_WRONLY | os.O_CREAT,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}


class UnsafeFileError(OSError):
    """The name is a symbolic link, a FIFO, a device, a folder or a hard link: not ours to use.

    An OSError, so every caller's existing "cannot write X (reason)" path reports it as one line.
    """

    def __init__(self, path: str | os.PathLike, what: str) -> None:
        super().__init__(errno.EPERM, f"{what}; refusing to use it (remove it if you did not "
                                      f"put it there)", str(path))


def _kind(st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if stat.S_ISFIFO(st.st_mode):
        return "is a FIFO"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "is a device"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    return "has other hard links"


def open_fd(path: str | os.PathLike, flags: int, mode: int = 0o644, *,
            truncate: bool = False) -> int:
    """`os.open` that never follows a link at the last component and opens only a regular file
    with a single link; `truncate` empties it after those checks. UnsafeFileError otherwise."""
    flags &= ~os.O_TRUNC
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(path, "is a symbolic link") from None
        if exc.errno == errno.ENXIO:  # write-only open of a FIFO with no reader
            raise UnsafeFileError(path, "is a FIFO") from None
        raise
    try:
        st = os.fstat(fd)
        writing = flags & (os.O_WRONLY | os.O_RDWR)
        if not stat.S_ISREG(st.st_mode) or (writing and st.st_nlink > 1):
            raise UnsafeFileError(path, _kind(st))
        if _NONBLOCK:
            os.set_blocking(fd, True)
        if truncate:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(path: str | os.PathLike, mode: str = "rb", perms: int = 0o644) -> IO[bytes]:
    """A binary file object for `path` (modes rb, r+b, wb, ab) opened by `open_fd`; "wb"
    truncates only after the checks, "r+b" and "ab" create the file if absent."""
    fd = open_fd(path, _MODES[mode], perms, truncate=mode == "wb")
    return os.fdopen(fd, mode)


def regular_file_size(path: str | os.PathLike) -> int:
    """Size of `path` if it is a regular file (links followed: the file is only read);
    UnsafeFileError for a FIFO, device or folder, which a read would block on or never end."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(path, _kind(st))
    return st.st_size


def inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True if `path`, all links resolved, lies inside `folder` (also resolved)."""
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real == root or root in real.parents

"""One writer per output: a lock file beside the catalogue, taken before any work.

`cat.fits` is guarded by `cat.fits.lock`, held with `fcntl.flock` for the whole run and holding
the holder's pid, host and start time (JSON) so a refused second run can name it. The operating
system drops a flock when its process dies, however it dies (even SIGKILL): a lock file left
behind by a dead run is therefore never "stale" in the sense of blocking anyone; the next run
simply takes it over. The file itself is removed on every normal exit path. A link, FIFO or
other non-regular file planted under the lock's name is refused (`safe_files`), never followed. On file systems
where flock is not supported (some network mounts), the lock cannot be taken and the run says
so rather than proceeding unguarded.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from ..errors import OutputError, OutputLockedError
from ..safe_files import open_fd
from ..textsafe import printable

__all__ = ["OutputLock", "lock_path"]


def lock_path(output: str | os.PathLike) -> Path:
    """`cat.fits` -> `cat.fits.lock`."""
    output = Path(output)
    return output.with_name(output.name + ".lock")


def _holder_text(raw: str) -> str:
    try:
        info = json.loads(raw)
        return (f"pid {int(info['pid'])} on {printable(info['host'])} since "
                f"{printable(info['started'])}")
    except (ValueError, KeyError, TypeError):
        return "another process (lock file unreadable)"


class OutputLock:
    """Context manager: exclusive lock on `output` (OutputLockedError naming the holder)."""

    def __init__(self, output: str | os.PathLike):
        self.output = Path(output)
        self.path = lock_path(output)
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no flock; run unguarded
            return self
        while True:
            try:
                fd = open_fd(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot create lock file {printable(self.path)}: "
                                  f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raw = os.read(fd, 4096).decode("utf-8", "replace")
                os.close(fd)
                raise OutputLockedError(
                    f"{printable(self.output)} is being written by {_holder_text(raw)} (lock "
                    f"{printable(self.path)}); wait for that run, or stop it, before rerunning"
                ) from None
            except OSError as exc:
                os.close(fd)
                raise OutputError(f"cannot lock {printable(self.path)} ({exc.strerror or exc}); "
                                  f"this file system may not support locks: write elsewhere"
                                  ) from None
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a deleted inode; start again on the current file.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:  # the holder text is for messages only: a full disk must not stop the run here
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
        except OSError:
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it, so no one locks a file we delete
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

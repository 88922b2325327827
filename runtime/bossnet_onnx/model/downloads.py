"""The only module that touches the network: fetch a published file and prove it is that file.

A weight chunk is ~29 MB and a user's connection, a site proxy or GitHub itself may fail half-way,
so each file goes to `<name>.part` first. A failed attempt keeps the part; the next attempt (or
the next `models pull`) asks for the rest with an HTTP Range request. Transient failures
(timeouts, refused connections, 5xx, truncated bodies) are retried with exponential backoff;
permanent ones (404, 403) stop at once. Nothing is trusted because of where it came from: the
finished part must have the git blob id the registry pins, else it is deleted and the pull
stops, and only a verified file is renamed to its final name.

Nothing a server sends can hold a pull or a disk indefinitely: each file has a size cap (the
registry's pinned size, see `RegistryModel.size_cap`) and an overall deadline of
`policy.deadline_slack` seconds plus the cap at `policy.min_rate` bytes per second, across
all attempts and waits (the per-read timeout alone lets a 1 byte / 2 s server run forever).
A part that grows past the cap is deleted, not kept for a resume. Parts and lock files are
opened through `safe_files`, so a link planted under their name is refused, not written
through.

Files taken from a local clone (`--from`, for clusters without internet) go through the same
verification, so the rest of the pull cannot tell the two sources apart.
"""
from __future__ import annotations

import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import DownloadError, VerificationError
from ..safe_files import UnsafeFileError, open_file, regular_file_size
from .registry import git_blob_id

__all__ = ["MODELS_URL_ENV", "DEFAULT_MODELS_URL", "RetryPolicy", "ByteProgress", "models_url",
           "file_url", "fetch_verified", "copy_verified", "verify_file"]

MODELS_URL_ENV = "BOSSNET_ONNX_MODELS_URL"
#: Raw files of the reference repository: {root}/{commit}/{path}.
DEFAULT_MODELS_URL = "https://raw.githubusercontent.com/hutchresearch/BOSSNet"
BLOCK = 1 << 20
PART_SUFFIX = ".part"
#: HTTP statuses worth asking again: the server may answer next time.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Timeout of one network wait (seconds) and how often and how patiently to retry."""

    timeout: float = 30.0
    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    #: Slowest average transfer a file may take (bytes/s), and the seconds allowed on top.
    min_rate: float = 16_000.0
    deadline_slack: float = 120.0

    def deadline(self, cap: int | None) -> float:
        """Seconds one file may take in all (every attempt and wait) for at most `cap` bytes."""
        return self.deadline_slack + (cap or 0) / self.min_rate

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt + 1` (doubling from `backoff`)."""
        return min(self.max_backoff, self.backoff * (2 ** attempt))


@dataclass
class FetchResult:
    """A verified file and how it arrived (bytes over the wire, where a resume started)."""

    path: Path
    size: int
    transferred: int
    resumed_from: int  # size of the .part found when the call started (0: fresh start)
    attempts: int


def models_url() -> str:
    """Root of the raw files: `$BOSSNET_ONNX_MODELS_URL` (a mirror), else GitHub's raw host."""
    return (os.environ.get(MODELS_URL_ENV) or DEFAULT_MODELS_URL).rstrip("/")


def file_url(root: str, commit: str, path: str) -> str:
    """`{root}/{commit}/{path}`, the layout of raw.githubusercontent.com (and of mirrors)."""
    return f"{root.rstrip('/')}/{commit}/{quote(path)}"


class ByteProgress:
    """A rich progress bar in bytes on stderr, one line per file; silent when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> ByteProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def start(self, label: str, total: int | None, completed: int = 0) -> Callable[[int], None]:
        """Begin a file; returns the function to call with each block's byte count."""
        if self._progress is None:
            return lambda n: None
        task = self._progress.add_task(label, total=total, completed=completed)
        return lambda n: self._progress.advance(task, n)


class _Retry(Exception):
    """An attempt failed in a way worth retrying; the text says how."""


class _Late(Exception):
    """The file's overall deadline passed; args[0] is the bytes the part holds."""


NETWORK_HINT = f"a damaged download or a wrong mirror: try again, or check {MODELS_URL_ENV}"
CLONE_HINT = "the clone holds another version of it: check out the registry's commit there"


def verify_file(path: Path, expected_blob: str, label: str, hint: str = NETWORK_HINT) -> None:
    """Delete `path` and raise VerificationError unless its git blob id is `expected_blob`."""
    actual = git_blob_id(path)
    if actual != expected_blob:
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        raise VerificationError(
            f"{label}: git blob id {actual} ({size} bytes) differs from the registry's "
            f"{expected_blob}; this is not the published file, so it was deleted and nothing "
            f"was installed ({hint})"
        )


def _disk_error(path: Path, exc: OSError) -> DownloadError:
    if isinstance(exc, UnsafeFileError):
        return DownloadError(f"{path}: {exc.strerror}")
    return DownloadError(
        f"{path}: cannot write ({exc.strerror or exc}); free some space there or point "
        f"BOSSNET_ONNX_HOME elsewhere; the part already fetched is kept and the next pull "
        f"resumes it"
    )


def _part_size(part: Path, cap: int | None) -> int:
    """Bytes of a kept part worth resuming; a part over the cap, or anything but a regular
    file under the part's name (a planted link), is removed first."""
    try:
        st = os.lstat(part)
    except FileNotFoundError:
        return 0
    import stat as stat_mod

    if not stat_mod.S_ISREG(st.st_mode) or st.st_nlink > 1 or (cap is not None
                                                                  and st.st_size > cap):
        part.unlink()
        return 0
    return st.st_size


def _oversize(url: str, part: Path, cap: int) -> DownloadError:
    part.unlink(missing_ok=True)
    return DownloadError(f"{url}: the server sends more than the {cap:,} bytes the registry "
                         f"pins for this file; the part was deleted and nothing was installed "
                         f"({NETWORK_HINT})")


def _attempt(url: str, part: Path, policy: RetryPolicy, progress: ByteProgress,
             label: str, counted: list[int], cap: int | None = None,
             deadline: float = float("inf")) -> int:
    """One request: append to (or restart) `part`; returns the offset it resumed from.

    Bytes received are added to `counted[0]` as they arrive, failed attempts included. More
    than `cap` bytes in all deletes the part (DownloadError); passing the monotonic `deadline`
    stops the attempt (DownloadError, the part kept for a later resume).
    """
    offset = _part_size(part, cap)
    from .. import __version__

    headers = {"User-Agent": f"bossnet-onnx/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        wait = max(0.1, min(policy.timeout, deadline - time.monotonic()))
        response = urllib.request.urlopen(request, timeout=wait)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return offset  # the part is already whole: verification decides
        if exc.code in RETRYABLE_STATUS:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(
            f"{url}: HTTP {exc.code} {exc.reason}; the file is not at this address (check "
            f"{MODELS_URL_ENV}, or the registry's commit and path)"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Retry(f"cannot connect ({reason})") from None
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        if status == 206 and offset:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise _Retry(f"server answered the resume with range {content_range!r}")
            mode = "ab"
        elif status == 200:
            mode, offset = "wb", 0
        else:
            raise _Retry(f"unexpected HTTP {status}")
        total = offset + int(length) if length and length.isdigit() else None
        if cap is not None and total is not None and total > cap:
            raise _oversize(url, part, cap)
        advance = progress.start(label, total, completed=offset)
        received = 0
        try:
            with open_file(part, mode) as handle:
                while True:
                    if time.monotonic() > deadline:
                        raise _Late(offset + received)
                    try:
                        # read1: what has arrived, so a stall keeps the bytes before it.
                        block = response.read1(BLOCK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Retry(f"connection lost after {offset + received} bytes "
                                     f"({type(exc).__name__})") from None
                    if not block:
                        break
                    if cap is not None and offset + received + len(block) > cap:
                        handle.close()
                        raise _oversize(url, part, cap)
                    try:
                        handle.write(block)
                    except OSError as exc:
                        raise _disk_error(part, exc) from None
                    received += len(block)
                    counted[0] += len(block)
                    advance(len(block))
        except OSError as exc:  # opening or closing (flushing) the part
            raise _disk_error(part, exc) from None
        if total is not None and offset + received < total:
            raise _Retry(f"truncated response: {offset + received} of {total} bytes")
    return offset


def fetch_verified(url: str, dest: str | os.PathLike, expected_blob: str, *,
                   policy: RetryPolicy = RetryPolicy(), progress: ByteProgress | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   max_bytes: int | None = None) -> FetchResult:
    """Download `url` to `dest` (via `dest.part`, resumed if present) and verify its blob id.

    Raises DownloadError after `policy.attempts` failed tries or past the overall deadline
    (`policy.deadline(max_bytes)`; the part is kept for the next call), at once for a permanent
    HTTP error or a body longer than `max_bytes` (the part is deleted), and VerificationError
    if the finished bytes are not the registry's (the part is deleted).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + PART_SUFFIX)
    progress = progress or ByteProgress(False)
    counted, problem = [0], ""
    first_offset = _part_size(part, max_bytes)
    allowed = policy.deadline(max_bytes)
    deadline = time.monotonic() + allowed
    for attempt in range(policy.attempts):
        if attempt:
            pause = policy.delay(attempt - 1)
            if time.monotonic() + pause > deadline:
                break
            sleep(pause)
        try:
            _attempt(url, part, policy, progress, dest.name, counted, max_bytes, deadline)
        except _Retry as exc:
            problem = str(exc)
            continue
        except _Late as exc:
            raise DownloadError(
                f"{url}: not finished within {allowed:.0f} s (the deadline for "
                f"{max_bytes or 0:,} bytes at {policy.min_rate / 1e3:.0f} kB/s or more); the "
                f"server is too slow: try again later or set {MODELS_URL_ENV} to a mirror"
                + (f"; the {exc.args[0]} bytes fetched are kept in {part} and the next pull "
                   f"resumes them" if exc.args[0] else "")) from None
        verify_file(part, expected_blob, f"{dest.name} from {url}")
        os.replace(part, dest)
        return FetchResult(path=dest, size=dest.stat().st_size, transferred=counted[0],
                           resumed_from=first_offset, attempts=attempt + 1)
    kept = _part_size(part, max_bytes)
    raise DownloadError(
        f"{url}: {problem or 'deadline reached'} (after {attempt + 1} attempts); check the "
        f"network or set "
        f"{MODELS_URL_ENV} to a mirror"
        + (f"; the {kept} bytes fetched are kept in {part} and the next pull resumes them"
           if kept else "")
    )


def copy_verified(source: str | os.PathLike, dest: str | os.PathLike, expected_blob: str,
                  progress: ByteProgress | None = None,
                  max_bytes: int | None = None) -> FetchResult:
    """Copy a file from a local clone, with the same verification (and size cap) as a
    download; a FIFO or device in the clone is refused, not read."""
    source, dest = Path(source), Path(dest)
    part = dest.with_name(dest.name + PART_SUFFIX)
    progress = progress or ByteProgress(False)
    try:
        size = regular_file_size(source)
    except OSError as exc:
        raise DownloadError(f"{source}: cannot read ({exc.strerror or exc})") from None
    if max_bytes is not None and size > max_bytes:
        raise DownloadError(f"{source}: {size:,} bytes, more than the {max_bytes:,} the "
                            f"registry pins for this file; {CLONE_HINT}")
    advance = progress.start(dest.name, size)
    try:
        _part_size(part, None)  # a planted link or FIFO under the part's name goes first
        with open(source, "rb") as src, open_file(part, "wb") as out:
            shutil.copyfileobj(src, out, BLOCK)
    except OSError as exc:
        part.unlink(missing_ok=True)
        if exc.filename and Path(exc.filename) == source:
            raise DownloadError(f"{source}: cannot read ({exc.strerror})") from None
        raise _disk_error(part, exc) from None
    advance(size)
    verify_file(part, expected_blob, str(source), CLONE_HINT)
    os.replace(part, dest)
    return FetchResult(path=dest, size=size, transferred=0, resumed_from=0, attempts=1)

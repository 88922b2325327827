"""The only module that touches the network: fetch a published file and prove it is that file.

A weight chunk is ~29 MB and a user's connection, a site proxy or GitHub itself may fail half-way,
so each file goes to `<name>.part` first. A failed attempt keeps the part; the next attempt (or
the next `models pull`) asks for the rest with an HTTP Range request. Transient failures
(timeouts, refused connections, 5xx, truncated bodies) are retried with exponential backoff;
permanent ones (404, 403) stop at once. Nothing is trusted because of where it came from: the
finished part must have the git blob id the registry pins, else it is deleted and the pull
stops, and only a verified file is renamed to its final name.

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
    return DownloadError(
        f"{path}: cannot write ({exc.strerror or exc}); free some space there or point "
        f"BOSSNET_ONNX_HOME elsewhere; the part already fetched is kept and the next pull "
        f"resumes it"
    )


def _attempt(url: str, part: Path, policy: RetryPolicy, progress: ByteProgress,
             label: str, counted: list[int]) -> int:
    """One request: append to (or restart) `part`; returns the offset it resumed from.

    Bytes received are added to `counted[0]` as they arrive, failed attempts included.
    """
    offset = part.stat().st_size if part.exists() else 0
    from .. import __version__

    headers = {"User-Agent": f"bossnet-onnx/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=policy.timeout)
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
        advance = progress.start(label, total, completed=offset)
        received = 0
        try:
            with open(part, mode) as handle:
                while True:
                    try:
                        # read1: what has arrived, so a stall keeps the bytes before it.
                        block = response.read1(BLOCK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Retry(f"connection lost after {offset + received} bytes "
                                     f"({type(exc).__name__})") from None
                    if not block:
                        break
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
                   sleep: Callable[[float], None] = time.sleep) -> FetchResult:
    """Download `url` to `dest` (via `dest.part`, resumed if present) and verify its blob id.

    Raises DownloadError after `policy.attempts` failed tries (the part is kept for the next
    call) or at once for a permanent HTTP error, and VerificationError if the finished bytes
    are not the registry's (the part is deleted).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + PART_SUFFIX)
    progress = progress or ByteProgress(False)
    counted, problem = [0], ""
    first_offset = part.stat().st_size if part.exists() else 0
    for attempt in range(policy.attempts):
        if attempt:
            sleep(policy.delay(attempt - 1))
        try:
            _attempt(url, part, policy, progress, dest.name, counted)
        except _Retry as exc:
            problem = str(exc)
            continue
        verify_file(part, expected_blob, f"{dest.name} from {url}")
        os.replace(part, dest)
        return FetchResult(path=dest, size=dest.stat().st_size, transferred=counted[0],
                           resumed_from=first_offset, attempts=attempt + 1)
    kept = part.stat().st_size if part.exists() else 0
    raise DownloadError(
        f"{url}: {problem} (after {policy.attempts} attempts); check the network or set "
        f"{MODELS_URL_ENV} to a mirror"
        + (f"; the {kept} bytes fetched are kept in {part} and the next pull resumes them"
           if kept else "")
    )


def copy_verified(source: str | os.PathLike, dest: str | os.PathLike, expected_blob: str,
                  progress: ByteProgress | None = None) -> FetchResult:
    """Copy a file from a local clone, with the same verification as a download."""
    source, dest = Path(source), Path(dest)
    part = dest.with_name(dest.name + PART_SUFFIX)
    progress = progress or ByteProgress(False)
    size = source.stat().st_size
    advance = progress.start(dest.name, size)
    try:
        with open(source, "rb") as src, open(part, "wb") as out:
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

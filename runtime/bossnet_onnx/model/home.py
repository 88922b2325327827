"""Where pulled models live on this machine, and the lock that keeps two pulls apart.

Layout under the home folder (`$BOSSNET_ONNX_HOME`, else the platform's user data folder):

    models/NAME.onnx              installed, verified and parity-checked models
    models/NAME.receipt.json      what pull installed: the .onnx file's sha256 and its source
    downloads/NAME-<commit12>/    verified source files (and .part files being fetched)
    locks/NAME.lock               held by the one `models pull NAME` running

An installed model is a plain file: copy `models/` to a cluster and point `BOSSNET_ONNX_HOME`
at its parent, and `--model NAME` works there without a network.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import PullError
from ..safe_files import open_file
from ..textsafe import printable

__all__ = ["HOME_ENV", "models_home", "installed_path", "installed_models", "download_folder",
           "pull_lock", "receipt_path"]

HOME_ENV = "BOSSNET_ONNX_HOME"
APP = "bossnet-onnx"


def models_home() -> Path:
    """`$BOSSNET_ONNX_HOME`, else the platform's per-user data folder for bossnet-onnx.

    Linux: $XDG_DATA_HOME/bossnet-onnx or ~/.local/share/bossnet-onnx; macOS:
    ~/Library/Application Support/bossnet-onnx; Windows: %LOCALAPPDATA%\\bossnet-onnx.
    """
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    if os.name == "nt":  # pragma: no cover - not tested here
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP


def installed_path(name: str, home: Path | None = None) -> Path:
    """Where model NAME is (or would be) installed."""
    return (home or models_home()) / "models" / f"{name}.onnx"


def receipt_path(name: str, home: Path | None = None) -> Path:
    """The receipt `models pull` writes beside NAME.onnx (copy it along with the model)."""
    return (home or models_home()) / "models" / f"{name}.receipt.json"


def installed_models(home: Path | None = None) -> dict[str, Path]:
    """Installed model names and their files (any NAME.onnx under models/, sorted)."""
    folder = (home or models_home()) / "models"
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.onnx"))
            if p.is_file() and not p.name.startswith(".")}


def download_folder(name: str, commit: str, home: Path | None = None) -> Path:
    """Verified source files of NAME at COMMIT (the official folder layout, flattened)."""
    return (home or models_home()) / "downloads" / f"{name}-{commit[:12]}"


@contextlib.contextmanager
def pull_lock(name: str, home: Path | None = None) -> Iterator[Path]:
    """Hold `locks/NAME.lock` for one pull; a second pull of NAME is refused with one line.

    An OS file lock (flock), not a marker file: it vanishes with the process that held it, so
    a killed pull never leaves a stale lock behind.
    """
    folder = (home or models_home()) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    try:
        handle = open_file(path, "r+b")
    except OSError as exc:
        raise PullError(f"{name}: cannot use the lock file {path} ({exc.strerror or exc})"
                        ) from None
    with handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, files still verified
            yield path
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = printable(handle.read(64).decode("ascii", "replace").strip() or "unknown")
            raise PullError(f"{name}: another `bossnet-onnx models pull {name}` is running "
                            f"(pid {holder}, lock {path}); wait for it to finish and run "
                            f"this again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

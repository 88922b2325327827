"""Output paths checked before any work, so no run computes rows it then cannot write.

`check_output` is called by predict (with -o), merge, plot and kiel before the first spectrum
is read. It follows astropy's `overwrite=False` convention: an existing output is replaced only
when asked. Every refusal is an OutputPathError (the CLI prints one line and exits 2, a usage
error) naming the path and the fix.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import OutputError, OutputPathError
from ..outputs.catalogue import SUFFIX_FORMATS, require_writer
from ..textsafe import printable

__all__ = ["check_output", "IMAGE_SUFFIXES", "CATALOGUE_SUFFIXES", "SIBLING_NAME_ROOM"]

CATALOGUE_SUFFIXES: tuple[str, ...] = tuple(sorted(SUFFIX_FORMATS))
IMAGE_SUFFIXES: tuple[str, ...] = (".pdf", ".png", ".svg")
#: Characters the longest file made beside an output needs beyond its name
#: (`cat.fits` -> `cat.partial.fits.lock`).
SIBLING_NAME_ROOM = len(".partial") + len(".lock")


def _suffix(name: str, suffixes: Iterable[str]) -> str | None:
    lowered = name.lower()
    return next((s for s in sorted(suffixes, key=len, reverse=True) if lowered.endswith(s)), None)


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_output(path: str | os.PathLike, *, overwrite: bool = False,
                 suffixes: Iterable[str] = CATALOGUE_SUFFIXES,
                 allow_existing: bool = False) -> Path:
    """Refuse now whatever would make the final write of `path` fail.

    Checks, in order: a known suffix; the path is not a directory; the name (and the progress
    and lock files made beside it) fit the file system's name limit; the parent directory
    exists and a file can really be created in it (a test file, so read-only mounts, ACLs and
    quotas count, not only permission bits); an existing file needs `overwrite` (unless
    `allow_existing`, for `--resume`); the writer's package (pyarrow for .parquet) is
    importable.
    """
    path = Path(path)
    shown = printable(path)
    suffixes = tuple(suffixes)
    if path.is_dir():
        raise OutputPathError(f"{shown} is a directory; give a file name, e.g. "
                              f"{printable(path / ('catalogue' + suffixes[0]))}")
    suffix = _suffix(path.name, suffixes)
    if suffix is None or len(path.name) == len(suffix):
        raise OutputPathError(f"{shown}: unknown output type; name it with one of "
                              f"{', '.join(suffixes)}")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputPathError(f"{shown}: output directory {printable(directory)} does not exist; "
                              f"create it first")
    limit = _name_max(directory)
    if len(os.fsencode(path.name)) + SIBLING_NAME_ROOM > limit:
        raise OutputPathError(f"{shown}: file name too long ({len(os.fsencode(path.name))} bytes; "
                              f"at most {limit - SIBLING_NAME_ROOM} here, to leave room for "
                              f"the progress and lock files)")
    try:
        fd, probe = tempfile.mkstemp(prefix=".bossnet-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{shown}: cannot create files in {printable(directory)} "
                              f"({exc.strerror or exc}); choose a writable place") from None
    if (path.exists() or path.is_symlink()) and not overwrite and not allow_existing:
        raise OutputPathError(f"{shown} already exists; pass --overwrite (overwrite=True) to "
                              f"replace it, or choose another name")
    if suffix in SUFFIX_FORMATS:
        try:
            require_writer(path)
        except OutputError as exc:
            raise OutputPathError(str(exc)) from None
    return path

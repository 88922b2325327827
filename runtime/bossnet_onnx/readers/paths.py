"""Turning command-line inputs (paths, globs, directories, @lists) into a list of files.

Rules, so that a run over the same inputs always sees the same files in the same order:
- a path to a file is kept as given;
- a directory gives its spectrum files (SPECTRUM_SUFFIXES), sorted by name; with `recursive`
  (`--recursive`) those of its sub-directories too, sorted by relative path (symbolic links to
  directories are not followed, so a link loop cannot recurse forever);
- a glob (`*`, `?`, `[...]`, `**`) gives its matches sorted, directories among them expanded;
- `@list.txt` gives its lines in order: blank lines and `#` comments skipped (whole-line, or
  inline after whitespace: `spec.fits  # bright star`; a `#` inside a name stays), `~` expanded,
  relative entries resolved against the list file's own folder (so a list can travel with its
  data), each entry then expanded by the rules above (a line may be a directory or a glob);
- duplicates (the same file reached twice, however spelled: through `..`, another list, a
  symbolic link or a symlink loop that a recursive `**` glob walks round many times) are
  dropped by real path, the first spelling kept.

Entries that resolve to nothing (a missing path, a glob with no match, a directory without
spectrum files) are kept as given, so that reading them later gives one clear error row per
entry instead of silently dropping it; only a list file that cannot be read is an immediate
InputError.
"""
from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence

from ..errors import InputError, first_line

__all__ = ["expand_inputs", "SPECTRUM_SUFFIXES", "FITS_SUFFIXES", "ASCII_SUFFIXES",
           "TABLE_SUFFIXES"]

#: File names the readers recognise: FITS (gzipped or not), text tables, and the Gaia
#: archive's gzipped tables and VOTables.
FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fit.gz")
ASCII_SUFFIXES = (".csv", ".ecsv")
#: Tables read without FITS: ASCII (plain or gzipped) and VOTables (the Gaia archive writes
#: `.xml`, other services `.vot`). The one list of them: readers and folder expansion use it.
TABLE_SUFFIXES = (*ASCII_SUFFIXES, ".csv.gz", ".ecsv.gz", ".xml", ".vot", ".xml.gz", ".vot.gz")
SPECTRUM_SUFFIXES = FITS_SUFFIXES + TABLE_SUFFIXES


def _is_spectrum_file(name: str) -> bool:
    return name.lower().endswith(SPECTRUM_SUFFIXES)


def _walk(path: str) -> list[str]:
    found: list[str] = []
    for folder, dirs, names in os.walk(path):  # followlinks=False: no symlink loops
        dirs.sort()
        found.extend(os.path.join(folder, n) for n in names
                     if _is_spectrum_file(n) and os.path.isfile(os.path.join(folder, n)))
    return sorted(found, key=lambda f: os.path.relpath(f, path).split(os.sep))


def _from_directory(path: str, recursive: bool = False) -> list[str]:
    if recursive:
        return _walk(path) or [path]
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return [path]  # unreadable: reading it later says what is wrong
    found = [os.path.join(path, n) for n in names
             if _is_spectrum_file(n) and os.path.isfile(os.path.join(path, n))]
    return found or [path]  # reading the bare directory later says it has no spectra


_INLINE_COMMENT = re.compile(r"\s+#.*$")


def _from_list(list_path: str) -> list[str]:
    if os.path.isdir(list_path):
        raise InputError(f"@{list_path}: is a directory, not a list file; expected a text file "
                         f"with one spectrum path a line")
    try:
        with open(list_path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"@{list_path}: list file not found; expected a text file with one "
                         f"spectrum path a line") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or first_line(exc)
        raise InputError(f"@{list_path}: cannot read list file ({why})") from None
    base = os.path.dirname(os.path.abspath(list_path))
    out = []
    for line in lines:
        entry = _INLINE_COMMENT.sub("", line).strip()
        if not entry or entry.startswith("#"):
            continue
        entry = os.path.expanduser(entry)
        out.append(entry if os.path.isabs(entry) else os.path.join(base, entry))
    return out


def _expand_one(item: str, recursive: bool = False) -> list[str]:
    if os.path.isdir(item):
        return _from_directory(item, recursive)
    if os.path.exists(item) or not glob.has_magic(item):
        return [item]
    matches = sorted(glob.glob(item, recursive=True))
    if not matches:
        return [item]
    out: list[str] = []
    for match in matches:
        if os.path.isdir(match):
            found = _from_directory(match, recursive)
            out.extend(f for f in found if f != match)  # empty folders matched by a glob: skip
        else:
            out.append(match)
    return out or [item]


def expand_inputs(items: Sequence[str | os.PathLike], recursive: bool = False) -> list[str]:
    """Files to read, in a deterministic order, duplicates removed (see the module rules)."""
    out: list[str] = []
    for item in items:
        item = os.fspath(item)
        if item.startswith("@") and len(item) > 1:
            for entry in _from_list(item[1:]):
                out.extend(_expand_one(entry, recursive))
        else:
            out.extend(_expand_one(item, recursive))
    seen: set[str] = set()
    unique = []
    for path in out:
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique

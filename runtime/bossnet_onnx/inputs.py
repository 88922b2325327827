"""Turning command-line inputs (paths, globs, directories, @lists) into a list of files.

Entries that resolve to nothing are kept as given, so that reading them later produces one
clear per-entry error row instead of silently dropping them; only an unreadable @list file is
an immediate error.
"""
from __future__ import annotations

import glob
import os
from typing import Sequence

from .errors import InputError

__all__ = ["expand_inputs", "SPECTRUM_SUFFIXES"]

SPECTRUM_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fit.gz", ".csv", ".ecsv")


def _is_spectrum_file(name: str) -> bool:
    return name.lower().endswith(SPECTRUM_SUFFIXES)


def _from_directory(path: str) -> list[str]:
    found = sorted(os.path.join(path, n) for n in os.listdir(path)
                   if _is_spectrum_file(n) and os.path.isfile(os.path.join(path, n)))
    return found or [path]  # reading the bare directory later says it has no spectra


def _from_list(list_path: str) -> list[str]:
    try:
        with open(list_path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise InputError(f"@{list_path}: cannot read list file ({exc.strerror})") from None
    base = os.path.dirname(os.path.abspath(list_path))
    out = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        out.append(entry if os.path.isabs(entry) else os.path.join(base, entry))
    return out


def expand_inputs(items: Sequence[str]) -> list[str]:
    """Files to read, in a deterministic order, duplicates removed.

    Paths are kept as given; directories contribute their spectrum files (sorted); globs their
    sorted matches; `@list.txt` its lines (relative entries resolved against the list's folder).
    """
    out: list[str] = []
    for item in items:
        item = os.fspath(item)
        if item.startswith("@") and len(item) > 1:
            candidates = _from_list(item[1:])
        elif os.path.isdir(item):
            candidates = _from_directory(item)
        elif os.path.exists(item):
            candidates = [item]
        elif glob.has_magic(item):
            candidates = sorted(glob.glob(item, recursive=True)) or [item]
        else:
            candidates = [item]
        for cand in candidates:
            if os.path.isdir(cand) and cand != item:
                out.extend(_from_directory(cand))
            else:
                out.append(cand)
    seen: set[str] = set()
    unique = []
    for path in out:
        if path not in seen:
            seen.add(path)
            unique.append(path)
    return unique

"""Content hashes of files: the one place that says how bytes on disk are fingerprinted.

Model files are checked against their card, recorded in `info`, and (through the export
package) identify the weights a model was built from; all of them must agree on one recipe,
so it lives here, below every module that needs it.
"""
from __future__ import annotations

import hashlib
import os

__all__ = ["file_sha256"]

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (models are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()

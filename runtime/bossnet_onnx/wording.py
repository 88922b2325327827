"""Counts in messages people read: "1 spectrum", "2 spectra" (one home for the plural rule)."""
from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, one: str, many: str) -> str:
    """'1 spectrum', '2 spectra', '0 spectra'."""
    return f"{n} {one if n == 1 else many}"

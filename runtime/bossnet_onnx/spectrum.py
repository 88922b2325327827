"""The one record that flows between readers, preprocessing and the catalogue."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["Spectrum", "ReadFailure"]


@dataclass(frozen=True)
class Spectrum:
    """One observed spectrum, on its native pixel grid.

    `wavelength` is in Angstrom (vacuum, as the surveys store it), `flux` in the survey's units,
    `ivar` the inverse variance of `flux` (0 where unknown) and `mask` True for pixels the survey
    marks as bad (kept for plotting and quality bits; the reference recipe does not drop them).
    `source`, `hdu` and `row` say exactly where it came from, so that a failed spectrum can be
    reported and a result traced back; `identifiers` holds survey ids (sdss_id, catalogid, plate,
    mjd, fiberid, telescope, class, ...).
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    source: str
    format: str
    hdu: int = 0
    row: int = -1
    mask: np.ndarray | None = None
    identifiers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifiers", MappingProxyType(dict(self.identifiers)))

    @property
    def location(self) -> str:
        """Human-readable place of this spectrum: `file.fits[HDU 1, row 3]`."""
        where = f"HDU {self.hdu}"
        if self.row >= 0:
            where += f", row {self.row}"
        return f"{self.source}[{where}]"

    @property
    def identity(self) -> str:
        """Stable key used to seed Monte-Carlo draws.

        Built from the file's base name, HDU and row only, so results do not depend on the
        directory a file sits in, on file order, batch size or sharding.
        """
        import os

        return f"{os.path.basename(self.source)}|{self.hdu}|{self.row}"


@dataclass(frozen=True)
class ReadFailure:
    """A spectrum (or a whole file) that could not be read.

    Readers return these next to good Spectrum records instead of raising, so that one broken
    visit in an mwmVisit file, or one missing file in a list, becomes a flagged catalogue row
    (bit 0, `error` text) while everything else is still processed.
    """

    source: str
    error: str
    format: str = "unknown"
    hdu: int = -1
    row: int = -1
    identifiers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifiers", MappingProxyType(dict(self.identifiers)))

    @property
    def location(self) -> str:
        if self.hdu < 0:
            return self.source
        where = f"HDU {self.hdu}"
        if self.row >= 0:
            where += f", row {self.row}"
        return f"{self.source}[{where}]"

"""The one record that flows between readers, preprocessing and the catalogue."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["Spectrum", "ReadFailure", "location_text"]


def location_text(source: str, hdu: int, row: int = -1) -> str:
    """`file.fits[HDU 1, row 3]`, `file.fits[HDU 1]`, `<arrays 0>[row 3]` or just the source:
    the place every message and the plots name (HDU -1: in memory, row -1: the only one)."""
    parts = ([f"HDU {hdu}"] if hdu >= 0 else []) + ([f"row {row}"] if row >= 0 else [])
    return f"{source}[{', '.join(parts)}]" if parts else source


@dataclass(frozen=True)
class Spectrum:
    """One observed spectrum, on its native pixel grid.

    `wavelength` is in Angstrom (vacuum, as the surveys store it), `flux` in the survey's units,
    `ivar` the inverse variance of `flux` (0 where unknown) and `mask` True for pixels the survey
    marks as bad (kept for plotting and quality bits; the reference recipe does not drop them).
    `source`, `hdu` and `row` say exactly where it came from, so that a failed spectrum can be
    reported and a result traced back; `identifiers` holds survey ids (sdss_id, catalogid, plate,
    mjd, fiberid, telescope, class, ...).

    Build one yourself to predict spectra held in memory: `Spectrum(wave, flux, ivar,
    source="my star", format="memory")` (`bossnet_onnx.predict` accepts it as it is).
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
    #: the flux unit as the file declares it ('' when it declares none), for plot labels
    flux_unit: str = ""
    #: True when the file's air wavelengths were converted to vacuum (`--air`)
    converted_from_air: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifiers", MappingProxyType(dict(self.identifiers)))

    @property
    def location(self) -> str:
        """Human-readable place of this spectrum: `file.fits[HDU 1, row 3]`."""
        return location_text(self.source, self.hdu, self.row)

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
        return location_text(self.source, self.hdu, self.row)

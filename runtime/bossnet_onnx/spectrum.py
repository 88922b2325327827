"""The one record that flows between readers, preprocessing and the catalogue."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["Spectrum", "ReadFailure", "location_text", "canonical_arrays"]


def _rebuilt(cls: type, fields: dict[str, Any]) -> Any:
    return cls(**fields)


def _reduce(record: Any) -> tuple:
    """Pickle a record by its fields (reader processes send them back to the run), the
    read-only identifiers as a plain dict that __post_init__ makes read-only again."""
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    fields["identifiers"] = dict(record.identifiers)
    return _rebuilt, (type(record), fields)


def location_text(source: str, hdu: int, row: int = -1) -> str:
    """`file.fits[HDU 1, row 3]`, `file.fits[HDU 1]`, `<arrays 0>[row 3]` or just the source:
    the place every message and the plots name (HDU -1: in memory, row -1: the only one)."""
    parts = ([f"HDU {hdu}"] if hdu >= 0 else []) + ([f"row {row}"] if row >= 0 else [])
    return f"{source}[{', '.join(parts)}]" if parts else source


@dataclass(frozen=True, eq=False)  # holds arrays: == would be ambiguous
class Spectrum:
    """One observed spectrum, on its native pixel grid.

    `wavelength` is in Angstrom (vacuum, as the surveys store it), `flux` in the survey's units,
    `ivar` the inverse variance of `flux` (0 where unknown) and `mask` True for pixels the survey
    marks as bad (kept for plotting and quality bits; the reference recipe does not drop them).
    `source`, `hdu` and `row` say exactly where it came from, so that a failed spectrum can be
    reported and a result traced back; `identifiers` holds what the file says about it under
    DR19 names (sdss_id, catalogid, plateid, mjd, telescope, frame, snr, xcsao_v_rad, ...).

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
    #: which family member reads it (members.MEMBERS[...].spectrum_kind): "boss" for optical
    #: spectra, "apogee", "gaia-rvs" or "gaia-xp"
    kind: str = "boss"
    #: the survey's own 1-sigma flux errors when it ships them (APOGEE ERROR HDU, Gaia
    #: flux_error, XP coefficient errors): the reference draws with these as given
    sigma: np.ndarray | None = None
    #: Gaia XP only: (BP, RP) covariance matrices of the coefficients, rebuilt from the
    #: archive's errors and packed correlations; None where a band's matrix is unusable
    covariance: tuple[np.ndarray | None, np.ndarray | None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifiers", MappingProxyType(dict(self.identifiers)))

    __reduce__ = _reduce

    @property
    def location(self) -> str:
        """Human-readable place of this spectrum: `file.fits[HDU 1, row 3]`."""
        return location_text(self.source, self.hdu, self.row)

    @property
    def identity(self) -> str:
        """Stable key that seeds the Monte-Carlo draws: a hash of the spectrum's canonical form.

        sha256 of the flux and ivar of `canonical_arrays` (float32, the values preprocessing
        uses) and the number of wavelength pixels, so the draws are the same whatever the file
        is called, where it sits, which dtype or container held it, and independent of file
        order, batch size, sharding and the machine. The same spectrum under two names gets
        the same e_*.

        The wavelength values are not hashed: a spec file's are 10**loglam in float32, as the
        reference computes them, and numpy's float32 power rounds differently on AVX-512 (SVML)
        than on AVX2 (measured: 941 of a spec file's 4648 pixels 1 ulp apart), which would give
        the same file other draws on another CPU. Flux and ivar are the file's own bits.
        """
        import hashlib

        wavelength, flux, ivar = canonical_arrays(self)
        digest = hashlib.sha256(b"bossnet-onnx spectrum v3")
        digest.update(str(wavelength.shape).encode())
        for array in (flux, ivar):
            digest.update(str(array.shape).encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


def _canonical32(values: np.ndarray) -> np.ndarray:
    """float32 little-endian, -0.0 as 0.0 and every NaN as the one quiet NaN: two arrays that
    preprocessing cannot tell apart give the same bytes."""
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.ascontiguousarray(values, dtype="<f4") + np.float32(0.0)  # -0.0 -> 0.0
    nan = np.isnan(array)
    if nan.any():
        array[nan] = np.float32(np.nan)
    return array


def canonical_arrays(spectrum: Spectrum) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wavelength, flux, ivar) in canonical form: float32, units already normalised by the
    readers (wavelength in vacuum Angstrom), so only the values count, not their dtype, byte
    order or container. The draw seed (`Spectrum.identity`) hashes the flux and ivar and the
    wavelength's length. Preprocessing reads wavelengths as float32 too (preprocess.py), so two
    spectra with the same canonical arrays get bit-identical model inputs."""
    return (_canonical32(spectrum.wavelength), _canonical32(spectrum.flux),
            _canonical32(spectrum.ivar))


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
    #: the arrays, when they were read but are degenerate (no positive or finite flux): DR19's
    #: recipe (`--recipe astra`) still predicts such spectra; the reference recipe does not
    spectrum: Spectrum | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifiers", MappingProxyType(dict(self.identifiers)))

    __reduce__ = _reduce

    @property
    def location(self) -> str:
        return location_text(self.source, self.hdu, self.row)

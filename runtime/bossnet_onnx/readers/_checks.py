"""Per-spectrum content checks shared by every reader.

A spectrum that fails one of them becomes a ReadFailure (one catalogue row with bit 0 and the
message) while the other spectra of the same file are still read. The checks are deliberately
few: anything the model can still run on (zero or negative ivar, partial coverage, huge values)
is left to preprocessing and the quality bits. Flux that is nowhere positive (all zero, or
all negative) is not: the model input would be a constant log(1e-6) and the prediction a
confident-looking fiction.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..spectrum import ReadFailure, Spectrum, location_text

__all__ = ["where", "problem", "checked", "Origin", "BadValues", "ivar_from_error"]


class BadValues(ValueError):
    """Raised by reader helpers that know what is wrong with a file's values but not the file:
    `readers.read_spectra` adds the file's name. Any other ValueError/IndexError/KeyError from
    our own code is a bug and is reported as one."""


def where(path: str, hdu: int, row: int = -1) -> str:
    """`file[HDU 1]` or `file[HDU 1, row 3]`: the place every message starts with."""
    return location_text(path, hdu, row)


def ivar_from_error(error: np.ndarray) -> np.ndarray:
    """1/error**2 where the error is finite and positive, 0 (unknown) elsewhere: how every
    reader turns a survey's 1-sigma error array into the ivar that flows through the runtime."""
    error = np.asarray(error)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(error) & (error > 0), 1.0 / error ** 2, 0.0)


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def problem(wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
            names: Sequence[str] = ("flux", "ivar", "wavelength")) -> str | None:
    """What makes this spectrum unusable, or None. `names` are the flux, ivar and wavelength
    columns as the file calls them, so that the message points at what to look at."""
    sizes = (flux.size, ivar.size, wavelength.size)
    if len(set(sizes)) != 1:
        return (f"{_join(list(names))} differ in length ({', '.join(map(str, sizes))}); "
                f"expected one value per pixel in each")
    if flux.size == 0:
        return "spectrum has no pixels"
    if not np.isfinite(flux).any():
        return "no finite flux pixels (all NaN/inf); nothing to predict from"
    finite_flux = flux[np.isfinite(flux)]
    if not finite_flux.any():
        # a dead fiber or an empty exposure: the model would still return confident numbers
        return "flux is all zero (no signal); nothing to predict from"
    if not (finite_flux > 0).any():
        # log(clip(flux, floor)) makes every pixel the floor: the same constant model input
        return (f"flux is nowhere positive (all values <= 0, min {finite_flux.min():.3g}); "
                f"nothing to predict from")
    finite = wavelength[np.isfinite(wavelength)]
    if finite.size == 0:
        return "no finite wavelength values"
    steps = np.diff(finite)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        return (f"wavelength is not strictly increasing ({finite[k]:.3f} then "
                f"{finite[k + 1]:.3f} A at finite pixel {k}); expected a sorted wavelength array")
    return None


def _degenerate_only(wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                     names: Sequence[str]) -> bool:
    """True when the only problem is the flux values (none finite or none positive): DR19's
    recipe sets NaN to 0 and predicts such spectra anyway."""
    if not (flux.size == ivar.size == wavelength.size) or flux.size < 2:
        return False
    with np.errstate(invalid="ignore"):
        substitute = np.where(np.isfinite(flux), np.abs(flux), 0.0) + 1.0
    return problem(wavelength, substitute, ivar, names) is None


@dataclass(frozen=True)
class Origin:
    """Where a spectrum comes from: file, format name, HDU and row (-1: the HDU's only one)."""

    path: str
    fmt: str
    hdu: int
    row: int = -1


def checked(wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, origin: Origin, *,
            mask: np.ndarray | None = None,
            identifiers: Mapping[str, Any] | None = None,
            names: Sequence[str] = ("flux", "ivar", "wavelength"),
            failure_row: int | None = None, place: str | None = None,
            flux_unit: str = "") -> Spectrum | ReadFailure:
    """A Spectrum if the arrays pass `problem`, else a ReadFailure naming file, HDU and row.

    `failure_row` is the table row to name when a single-spectrum table (record row -1) has a
    broken row 0, so that the message points at the exact row; `place` replaces the default
    `file[HDU h, row r]` prefix of the message.
    """
    path, fmt, hdu, row = origin.path, origin.fmt, origin.hdu, origin.row
    ids = dict(identifiers or {})
    why = problem(wavelength, flux, ivar, names)
    if why is None and mask is not None and mask.size != flux.size:
        why = f"mask has {mask.size} pixels but flux has {flux.size}"
    if why is not None:
        degenerate = None
        if _degenerate_only(wavelength, flux, ivar, names):
            degenerate = Spectrum(wavelength, flux, ivar, source=path, format=fmt, hdu=hdu,
                                  row=row, mask=mask, identifiers=ids)
        row = row if failure_row is None else failure_row
        return ReadFailure(path, f"{place or where(path, hdu, row)}: {why}", fmt, hdu, row, ids,
                           spectrum=degenerate)
    return Spectrum(wavelength, flux, ivar, source=path, format=fmt, hdu=hdu, row=row, mask=mask,
                    identifiers=ids, flux_unit=flux_unit)

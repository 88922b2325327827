"""Any FITS table, CSV or ECSV with wavelength, flux and ivar (or error) columns.

Column names are matched case-insensitively; `loglam` means log10 wavelength. One spectrum per
file when the columns are 1-D per row (one pixel a row), one per row when they hold arrays.
"""
from __future__ import annotations

import os

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum

NAME = "generic-table"
__all__ = ["NAME", "identify", "read", "ASCII_SUFFIXES"]

ASCII_SUFFIXES = (".csv", ".ecsv")
WAVE = ("wavelength", "wave", "lambda", "wl", "loglam")
FLUX = ("flux", "f")
IVAR = ("ivar", "inverse_variance", "flux_ivar")
ERROR = ("error", "err", "sigma", "flux_err", "flux_error", "e_flux", "uncertainty")


def _pick(names: list[str], options: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    for option in options:
        if option in lower:
            return lower[option]
    return None


def _table_hdu(hdul: fits.HDUList):
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.columns is not None:
            names = list(hdu.columns.names)
            if _pick(names, WAVE) and _pick(names, FLUX) and \
                    (_pick(names, IVAR) or _pick(names, ERROR)):
                return hdu
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    try:
        if hdul is None:
            return path.lower().endswith(ASCII_SUFFIXES)
        return _table_hdu(hdul) is not None
    except Exception:
        return False


def _load(path: str, hdul: fits.HDUList | None) -> tuple[Table, int]:
    if hdul is None:
        if not os.path.exists(path):
            raise InputError(f"{path}: file not found")
        fmt = "ascii.ecsv" if path.lower().endswith(".ecsv") else "ascii.csv"
        try:
            return Table.read(path, format=fmt), 0
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{path}: cannot parse as {fmt[6:].upper()} ({text[:160]})") from None
    hdu = _table_hdu(hdul)
    if hdu is None:
        raise InputError(f"{path}: no table with wavelength, flux and ivar/error columns")
    return Table(hdu.data), hdul.index(hdu)


def read(path: str, hdul: fits.HDUList | None) -> list[Spectrum | ReadFailure]:
    table, index = _load(path, hdul)
    names = table.colnames
    wcol, fcol = _pick(names, WAVE), _pick(names, FLUX)
    icol, ecol = _pick(names, IVAR), _pick(names, ERROR)
    if not (wcol and fcol and (icol or ecol)):
        raise InputError(f"{path}: needs wavelength ({'/'.join(WAVE)}), flux and ivar or error "
                         f"columns; found {', '.join(names)}")
    per_row = np.asarray(table[fcol]).ndim == 2
    rows = range(len(table)) if per_row else [None]
    out: list[Spectrum | ReadFailure] = []
    for row in rows:
        def col(name):
            values = table[name] if row is None else table[name][row]
            return np.array(np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)).ravel()

        wave, flux = col(wcol), col(fcol)
        if wcol.lower() == "loglam":
            wave = 10.0 ** wave
        if icol:
            ivar = col(icol)
        else:
            err = col(ecol)
            with np.errstate(divide="ignore", invalid="ignore"):
                ivar = np.where((err > 0) & np.isfinite(err), 1.0 / err ** 2, 0.0)
        where = f"{path}[HDU {index}" + (f", row {row}]" if row is not None else "]")
        if not (wave.shape == flux.shape == ivar.shape):
            out.append(ReadFailure(path, f"{where}: wavelength, flux and ivar differ in length "
                                         f"({wave.size}, {flux.size}, {ivar.size})", NAME, index,
                                   -1 if row is None else row))
            continue
        out.append(Spectrum(wave, flux.astype(np.float32), ivar.astype(np.float32), source=path,
                            format=NAME, hdu=index, row=-1 if row is None else row))
    return out

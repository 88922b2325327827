"""Any FITS table, CSV or ECSV with wavelength, flux and ivar (or error) columns.

Column names are matched case-insensitively: wavelength/wave/lambda/wl (Angstrom) or loglam
(log10 Angstrom); flux; ivar/inverse_variance, or error/err/sigma/flux_err (converted to ivar,
0 where the error is not positive and finite); optionally a mask (and_mask/andmask/mask/
pixel_flags, non-zero = bad). One spectrum per file when the columns hold one pixel a row, one
spectrum per row when they hold arrays.
"""
from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._checks import checked
from ._fits import check_file

NAME = "generic-table"
__all__ = ["NAME", "identify", "read", "ASCII_SUFFIXES", "WAVE", "FLUX", "IVAR", "ERROR"]

ASCII_SUFFIXES = (".csv", ".ecsv")
WAVE = ("wavelength", "wave", "lambda", "wl", "loglam")
FLUX = ("flux",)
IVAR = ("ivar", "inverse_variance", "flux_ivar")
ERROR = ("error", "err", "sigma", "flux_err", "flux_error", "e_flux", "uncertainty")
MASK = ("and_mask", "andmask", "mask", "pixel_flags")


def _pick(names: list[str], options: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    for option in options:
        if option in lower:
            return lower[option]
    return None


def _usable(names: list[str]) -> bool:
    return bool(_pick(names, WAVE) and _pick(names, FLUX)
                and (_pick(names, IVAR) or _pick(names, ERROR)))


def _table_hdu(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    for hdu in hdul[1:]:
        if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)) and hdu.columns is not None \
                and _usable(list(hdu.columns.names)):
            return hdu
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """A CSV/ECSV file by suffix, or a FITS table with the columns above."""
    try:
        if hdul is None:
            return str(path).lower().endswith(ASCII_SUFFIXES)
        return _table_hdu(hdul) is not None
    except Exception:  # noqa: BLE001
        return False


def _load(path: str, hdul: fits.HDUList | None) -> tuple[Table, int]:
    if hdul is None:
        check_file(path)
        fmt = "ascii.ecsv" if path.lower().endswith(".ecsv") else "ascii.csv"
        try:
            return Table.read(path, format=fmt), 0
        except Exception as exc:  # noqa: BLE001
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{path}: cannot parse as {fmt[6:].upper()} ({text[:160]}); "
                             f"expected a header line and one pixel per line") from None
    hdu = _table_hdu(hdul)
    if hdu is None:
        raise InputError(f"{path}: no table with wavelength, flux and ivar/error columns")
    return Table(hdu.data), hdul.index(hdu)


def _column(table: Table, name: str, row: int | None) -> np.ndarray:
    values = table[name] if row is None else table[name][row]
    if np.asarray(values).dtype.kind == "c":  # astropy would keep the real part, with a warning
        raise ValueError(f"column {name} is complex; expected real numbers")
    return np.array(np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)).ravel()


def _stored_dtype(table: Table, name: str) -> type:
    """float32 when the file stores float32 (FITS 'E'), else float64: values kept as stored."""
    dtype = np.asarray(table[name]).dtype
    return np.float32 if dtype.kind == "f" and dtype.itemsize == 4 else np.float64


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """The spectrum (or one per row, for array columns) of a FITS table or CSV/ECSV file."""
    table, index = _load(str(path), hdul)
    names = table.colnames
    if not _usable(names):
        raise InputError(f"{path}: needs wavelength ({'/'.join(WAVE)}), flux and ivar or error "
                         f"columns; found {', '.join(names) or 'no columns'}")
    wcol, fcol = _pick(names, WAVE), _pick(names, FLUX)
    icol, ecol, mcol = _pick(names, IVAR), _pick(names, ERROR), _pick(names, MASK)
    # _usable() guarantees these (and ivar or error)
    assert wcol is not None and fcol is not None and (icol or ecol) is not None
    noise_col = str(icol or ecol)
    ascii_file = hdul is None
    if len(table) == 0:
        raise InputError(f"{path}{'' if ascii_file else f'[HDU {index}]'}: table has no rows; "
                         f"expected one pixel a row")
    per_row = np.asarray(table[fcol]).ndim == 2
    if per_row != (np.asarray(table[wcol]).ndim == 2):
        # one line for the file, not one failure per table row
        shapes = (f"{fcol} {'holds arrays' if per_row else 'holds one value a row'}, {wcol} "
                  f"{'holds one value a row' if per_row else 'holds arrays'}")
        raise InputError(f"{path}{'' if ascii_file else f'[HDU {index}]'}: {shapes}; expected "
                         f"both one pixel a row or both one spectrum a row")
    ftype, itype = _stored_dtype(table, fcol), _stored_dtype(table, noise_col)
    out: list[Spectrum | ReadFailure] = []
    for row in (range(len(table)) if per_row else [None]):
        wave, flux = _column(table, wcol, row), _column(table, fcol, row)
        if wcol.lower() == "loglam":
            wave = 10.0 ** wave
        if icol:
            ivar = _column(table, icol, row)
        else:
            err = _column(table, noise_col, row)
            with np.errstate(divide="ignore", invalid="ignore"):
                ivar = np.where((err > 0) & np.isfinite(err), 1.0 / err ** 2, 0.0)
        mask = _column(table, mcol, row) != 0 if mcol else None
        out.append(checked(wave, flux.astype(ftype), ivar.astype(itype), path=path,
                           fmt=NAME, hdu=index, row=-1 if row is None else row, mask=mask,
                           names=(fcol, noise_col, wcol),
                           place=path if ascii_file and row is None else None))
    return out

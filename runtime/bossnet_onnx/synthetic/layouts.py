"""Writers of the real survey file layouts, the inverse of `bossnet_onnx.readers`.

They make test fixtures and example data that go through exactly the code paths real survey
files do: SDSS spec (COADD + SPALL), SDSS-V DR19 mwmStar/mwmVisit (BOSS/APO, BOSS/LCO and empty
APOGEE HDUs), LAMOST image (DR1-DR7, DR1 without the wavelength row) and table (DR8+) layouts,
and generic FITS/CSV/ECSV tables.
"""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from astropy.io import fits
from astropy.table import Table

__all__ = [
    "BOSS_CRVAL",
    "BOSS_CDELT",
    "BOSS_NPIX",
    "boss_native_wavelength",
    "write_spec",
    "write_mwm",
    "write_lamost_image",
    "write_lamost_table",
    "write_generic_table",
]

BOSS_CRVAL = 3.5523
BOSS_CDELT = 1e-4
BOSS_NPIX = 4648


def boss_native_wavelength(n: int = BOSS_NPIX, crval: float = BOSS_CRVAL,
                           cdelt: float = BOSS_CDELT) -> np.ndarray:
    """The BOSS/mwm log-linear grid in Angstrom: 10**(crval + cdelt*i)."""
    return 10.0 ** (crval + cdelt * np.arange(n))


def _finish(hdul: fits.HDUList, path: str | os.PathLike, overwrite: bool) -> Path:
    path = Path(path)
    if str(path).endswith(".gz"):
        raw = path.with_suffix("")
        hdul.writeto(raw, overwrite=True)
        with open(raw, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        raw.unlink()
    else:
        hdul.writeto(path, overwrite=overwrite)
    return path


def write_spec(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
               ivar: np.ndarray, *, plate: int, mjd: int, fiberid: int,
               catalogid: int | None = None, sdss_id: int | None = None, cls: str = "STAR",
               subclass: str = "", and_mask: np.ndarray | None = None,
               overwrite: bool = False) -> Path:
    """An SDSS/BOSS `spec-PLATE-MJD-FIBER.fits`: PRIMARY, COADD (flux, loglam, ivar, masks),
    SPALL (identifiers)."""
    n = len(flux)
    and_mask = np.zeros(n, np.int32) if and_mask is None else np.asarray(and_mask, np.int32)
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "SDSS 2.5-M"
    primary.header["PLATEID"] = plate
    primary.header["MJD"] = mjd
    primary.header["FIBERID"] = fiberid
    primary.header["COEFF0"] = float(np.log10(wavelength[0]))
    primary.header["COEFF1"] = 1e-4
    coadd = fits.BinTableHDU.from_columns([
        fits.Column("flux", "E", array=np.asarray(flux, np.float32)),
        fits.Column("loglam", "E", array=np.log10(wavelength).astype(np.float32)),
        fits.Column("ivar", "E", array=np.asarray(ivar, np.float32)),
        fits.Column("and_mask", "J", array=and_mask),
        fits.Column("or_mask", "J", array=and_mask),
        fits.Column("wdisp", "E", array=np.ones(n, np.float32)),
        fits.Column("sky", "E", array=np.zeros(n, np.float32)),
        fits.Column("model", "E", array=np.asarray(flux, np.float32)),
    ], name="COADD")
    spall_cols = [
        fits.Column("PLATE", "J", array=[plate]), fits.Column("MJD", "J", array=[mjd]),
        fits.Column("FIBERID", "J", array=[fiberid]), fits.Column("CLASS", "6A", array=[cls]),
        fits.Column("SUBCLASS", "21A", array=[subclass]), fits.Column("Z", "E", array=[0.0]),
    ]
    if catalogid is not None:
        spall_cols.append(fits.Column("CATALOGID", "K", array=[catalogid]))
    if sdss_id is not None:
        spall_cols.append(fits.Column("SDSS_ID", "K", array=[sdss_id]))
    spall = fits.BinTableHDU.from_columns(spall_cols, name="SPALL")
    return _finish(fits.HDUList([primary, coadd, spall]), path, overwrite)


def _mwm_table(rows: Sequence[Mapping[str, Any]], name: str, kind: str,
               n_pix: int) -> fits.BinTableHDU:
    n = len(rows)

    def column(key, default, dtype):
        return np.array([r.get(key, default) for r in rows], dtype=dtype)

    if n:
        flux = np.stack([np.asarray(r["flux"], np.float32) for r in rows])
        ivar = np.stack([np.asarray(r["ivar"], np.float32) for r in rows])
        flags = np.stack([np.asarray(r.get("pixel_flags", np.zeros(n_pix)), np.int64) for r in rows])
    else:
        flux = ivar = np.zeros((0, n_pix), np.float32)
        flags = np.zeros((0, n_pix), np.int64)
    cols = [
        fits.Column("spectrum_pk", "K", array=column("spectrum_pk", 0, np.int64)),
        fits.Column("release", "5A", array=column("release", "dr19", "U5")),
        fits.Column("filetype", "8A", array=column("filetype", "specFull", "U8")),
        fits.Column("sdss_id", "K", array=column("sdss_id", -1, np.int64)),
        fits.Column("catalogid", "K", array=column("catalogid", -1, np.int64)),
        fits.Column("telescope", "6A", array=column("telescope", name.split("/")[1].lower() + "25m"
                                                    if "/" in name else "apo25m", "U6")),
        fits.Column("fieldid", "J", array=column("fieldid", -1, np.int32)),
    ]
    if kind == "visit":
        cols.append(fits.Column("mjd", "J", array=column("mjd", -1, np.int32)))
    else:
        cols += [fits.Column("min_mjd", "J", array=column("min_mjd", -1, np.int32)),
                 fits.Column("max_mjd", "J", array=column("max_mjd", -1, np.int32)),
                 fits.Column("n_visits", "J", array=column("n_visits", 1, np.int32))]
    cols += [
        fits.Column("flux", f"{n_pix}E", array=flux),
        fits.Column("ivar", f"{n_pix}E", array=ivar),
        fits.Column("pixel_flags", f"{n_pix}K", array=flags),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name=name, nrows=n)
    hdu.header["INSTRMNT"] = name.split("/")[0]
    hdu.header["OBSRVTRY"] = name.split("/")[1] if "/" in name else ""
    hdu.header["CRVAL"] = BOSS_CRVAL
    hdu.header["CDELT"] = BOSS_CDELT
    hdu.header["CTYPE"] = "LOG-LINEAR"
    hdu.header["CUNIT"] = "Angstrom (Vacuum)"
    hdu.header["CRPIX"] = 1
    hdu.header["DC-FLAG"] = 1
    hdu.header["NPIXELS"] = n_pix
    return hdu


def write_mwm(path: str | os.PathLike, apo: Sequence[Mapping[str, Any]] = (),
              lco: Sequence[Mapping[str, Any]] = (), *, kind: str = "star",
              sdss_id: int = -1, catalogid: int = -1, n_pix: int = BOSS_NPIX,
              overwrite: bool = False) -> Path:
    """A DR19 Astra mwmStar (`kind="star"`) or mwmVisit (`kind="visit"`) file.

    `apo` / `lco` are rows for the BOSS/APO and BOSS/LCO HDUs: dicts with flux, ivar (arrays of
    n_pix) and optionally pixel_flags, sdss_id, catalogid, telescope, mjd, fieldid, ... An empty
    sequence writes an empty HDU, as DR19 does for an observatory without BOSS data. APOGEE HDUs
    are written empty.
    """
    if kind not in ("star", "visit"):
        raise ValueError(f"kind must be 'star' or 'visit', got {kind!r}")
    primary = fits.PrimaryHDU()
    primary.header["SDSS_ID"] = sdss_id
    primary.header["HIERARCH CATALOGID"] = catalogid
    primary.header["V_ASTRA"] = "0.6.0"
    hdus = [primary,
            _mwm_table(list(apo), "BOSS/APO", kind, n_pix),
            _mwm_table(list(lco), "BOSS/LCO", kind, n_pix)]
    for name in ("APOGEE/APO", "APOGEE/LCO"):
        hdu = fits.BinTableHDU.from_columns([fits.Column("sdss_id", "K", array=np.zeros(0))],
                                            name=name, nrows=0)
        hdu.header["INSTRMNT"] = "APOGEE"
        hdus.append(hdu)
    return _finish(fits.HDUList(hdus), path, overwrite)


def write_lamost_image(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
                       ivar: np.ndarray, *, dr1_style: bool = False, obsid: int = 1,
                       cls: str = "STAR", subclass: str = "G2", overwrite: bool = False) -> Path:
    """LAMOST DR1-DR7 primary image: rows flux, ivar, wavelength (or, DR1, subcontinuum),
    andmask, ormask. Give a `.fits.gz` path for the gzipped variant."""
    n = len(flux)
    third = np.ones(n) if dr1_style else np.asarray(wavelength)
    data = np.vstack([flux, ivar, third, np.zeros(n), np.zeros(n)]).astype(np.float32)
    primary = fits.PrimaryHDU(data)
    h = primary.header
    h["TELESCOP"] = "LAMOST"
    h["OBSID"] = obsid
    h["CLASS"] = cls
    h["SUBCLASS"] = subclass
    h["CRVAL1"] = float(np.log10(wavelength[0]))
    h["CD1_1"] = float(np.log10(wavelength[1]) - np.log10(wavelength[0]))
    h["COEFF0"] = h["CRVAL1"]
    h["COEFF1"] = h["CD1_1"]
    if not dr1_style:
        primary.name = "Flux"
    return _finish(fits.HDUList([primary]), path, overwrite)


def write_lamost_table(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
                       ivar: np.ndarray, *, obsid: int = 1, cls: str = "STAR",
                       subclass: str = "G7", overwrite: bool = False) -> Path:
    """LAMOST DR8+ table layout: HDU1 COADD, one row of array columns."""
    n = len(flux)
    primary = fits.PrimaryHDU()
    for key, value in (("TELESCOP", "LAMOST"), ("OBSID", obsid), ("CLASS", cls),
                       ("SUBCLASS", subclass)):
        primary.header[key] = value
    cols = [fits.Column("FLUX", f"{n}E", array=np.asarray(flux, np.float32)[None]),
            fits.Column("IVAR", f"{n}E", array=np.asarray(ivar, np.float32)[None]),
            fits.Column("WAVELENGTH", f"{n}E", array=np.asarray(wavelength, np.float32)[None]),
            fits.Column("ANDMASK", f"{n}E", array=np.zeros((1, n), np.float32)),
            fits.Column("ORMASK", f"{n}E", array=np.zeros((1, n), np.float32)),
            fits.Column("NORMALIZATION", f"{n}E", array=np.ones((1, n), np.float32))]
    coadd = fits.BinTableHDU.from_columns(cols, name="COADD")
    return _finish(fits.HDUList([primary, coadd]), path, overwrite)


def write_generic_table(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
                        ivar: np.ndarray, *, use_error: bool = False,
                        overwrite: bool = False) -> Path:
    """wavelength/flux/ivar (or error) columns as FITS, CSV or ECSV by suffix."""
    path = Path(path)
    table = Table({"wavelength": np.asarray(wavelength, np.float64),
                   "flux": np.asarray(flux, np.float64)})
    if use_error:
        ivar = np.asarray(ivar, np.float64)
        with np.errstate(divide="ignore"):
            table["error"] = np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), np.inf)
    else:
        table["ivar"] = np.asarray(ivar, np.float64)
    fmt = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}.get(path.suffix.lower(), "fits")
    table.write(path, format=fmt, overwrite=overwrite)
    return path

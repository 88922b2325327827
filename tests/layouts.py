"""Writers of the real survey file layouts, the inverse of `bossnet_onnx.readers`.

They make test fixtures, example data and benchmark inputs that go through exactly the code
paths real survey files do. Column names, dtypes, HDU names and header keywords follow the real
files in ../shared/data (SDSS spec, LAMOST image and table) and the SDSS-V DR19 Astra 0.6
datamodel for mwmStar/mwmVisit (BOSS/APO, BOSS/LCO, APOGEE/APO, APOGEE/LCO; pixel arrays as
float32 columns, zero-width when an HDU has no rows; CAT_ID in the primary header). The
readers give back exactly what was written: the same flux, ivar and mask, and the wavelength
as the file stores it (float32 loglam or wavelength, or the CRVAL/CDELT grid).
"""
from __future__ import annotations

import gzip as _gzip
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    "write_gaia_table",
    "write_apstar",
]

BOSS_CRVAL = 3.5523
BOSS_CDELT = 1e-4
BOSS_NPIX = 4648
APOGEE_GRID = (4.179, 6e-6, 8575)
V_ASTRA = "0.6.0"
SDSS_BUNIT = "1E-17 erg/cm^2/s/Ang"


def boss_native_wavelength(n: int = BOSS_NPIX, crval: float = BOSS_CRVAL,
                           cdelt: float = BOSS_CDELT) -> np.ndarray:
    """The BOSS/mwm log-linear grid in Angstrom: 10**(crval + cdelt*i), float64."""
    return 10.0 ** (crval + cdelt * np.arange(n))


def _finish(hdul: fits.HDUList, path: str | os.PathLike, overwrite: bool,
            gzip: bool | None = None) -> Path:
    """Write `hdul`, gzipped when `gzip` is True (or None and the name ends in .gz)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OSError(f"{path}: already exists; pass overwrite=True to replace it")
    if gzip is None:
        gzip = path.name.endswith(".gz")
    buffer = io.BytesIO()  # astropy would gzip by suffix on its own; decide here instead
    hdul.writeto(buffer)
    data = buffer.getvalue()
    path.write_bytes(_gzip.compress(data, mtime=0) if gzip else data)
    return path


def _f32(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


# ----------------------------------------------------------------------------- SDSS spec
def write_spec(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
               ivar: np.ndarray, *, plate: int, mjd: int, fiberid: int,
               catalogid: int | None = None, sdss_id: int | None = None, cls: str = "STAR",
               subclass: str = "", z: float = 0.0, and_mask: np.ndarray | None = None,
               field: int | None = None, legacy: bool = False, obs: str | None = None,
               ra: float = 180.0, dec: float = 0.0, snr: float | None = None,
               xcsao_rv: float | None = None, xcsao_erv: float | None = None,
               specobjid: str | None = None, overwrite: bool = False) -> Path:
    """An SDSS `spec-PLATE-MJD-FIBER.fits`: PRIMARY, COADD (flux, loglam, ivar, and_mask,
    or_mask, wdisp, sky, model) and SPALL (BOSS/eBOSS/SDSS-V) or SPECOBJ (`legacy`, SDSS-I/II)
    with PLATE, MJD, FIBERID, CLASS, SUBCLASS, Z, PLUG_RA, PLUG_DEC [, SPECOBJID,
    SN_MEDIAN_ALL; FIELD, CATALOGID, SDSS_ID, OBS, XCSAO_RV, XCSAO_ERV: SDSS-V]. The primary
    header says the frame as the pipelines do: V_RAD (barycentric correction) for SDSS-V
    (with `catalogid`), HELIO_RV (heliocentric) before."""
    n = len(flux)
    and_mask = np.zeros(n, np.int32) if and_mask is None else np.asarray(and_mask, np.int32)
    loglam = np.log10(np.asarray(wavelength, np.float64)).astype(np.float32)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TELESCOP"] = ("SDSS 2.5-M", "Sloan Digital Sky Survey")
    h["PLATEID"] = (plate, "Current plate")
    h["MJD"] = (mjd, "MJD of observation")
    h["FIBERID"] = (fiberid, "Fiber ID (1-1000)")
    h["COEFF0"] = (float(loglam[0]), "Central wavelength (log10) of first pixel")
    h["COEFF1"] = (float(loglam[1] - loglam[0]) if n > 1 else 1e-4,
                   "Log10 dispersion per pixel")
    h["BUNIT"] = SDSS_BUNIT
    h["RA"] = (ra + 0.5, "Plate centre RA (not the object's) [deg]")
    h["PLUG_RA"] = (ra, "Fibre RA [deg]")
    h["PLUG_DEC"] = (dec, "Fibre Dec [deg]")
    if catalogid is not None:
        h["V_RAD"] = (12.3, "radial velocity relative to the barycenter")
        h["HELIO_RV"] = (12.3, "V_RAD for backwards compatibility")
    else:
        h["HELIO_RV"] = (12.3, "Heliocentric correction (added to velocities)")
    coadd = fits.BinTableHDU.from_columns([
        fits.Column("flux", "E", array=_f32(flux)),
        fits.Column("loglam", "E", array=loglam),
        fits.Column("ivar", "E", array=_f32(ivar)),
        fits.Column("and_mask", "J", array=and_mask),
        fits.Column("or_mask", "J", array=and_mask),
        fits.Column("wdisp", "E", array=np.ones(n, np.float32)),
        fits.Column("sky", "E", array=np.zeros(n, np.float32)),
        fits.Column("model", "E", array=_f32(flux)),
    ], name="COADD")
    coadd.header.add_comment("Coadded spectrum")
    ids = [
        fits.Column("PLATE", "J", array=[plate]), fits.Column("MJD", "J", array=[mjd]),
        fits.Column("FIBERID", "J", array=[fiberid]), fits.Column("CLASS", "6A", array=[cls]),
        fits.Column("SUBCLASS", "21A", array=[subclass]), fits.Column("Z", "E", array=[z]),
        fits.Column("PLUG_RA", "D", array=[ra]), fits.Column("PLUG_DEC", "D", array=[dec]),
    ]
    if specobjid is not None:
        ids.append(fits.Column("SPECOBJID", "22A", array=[specobjid]))
    if snr is not None:
        ids.append(fits.Column("SN_MEDIAN_ALL", "E", array=[snr]))
    if obs is not None:
        ids.append(fits.Column("OBS", "3A", array=[obs]))
    if xcsao_rv is not None:
        ids.append(fits.Column("XCSAO_RV", "E", array=[xcsao_rv]))
        ids.append(fits.Column("XCSAO_ERV", "E", array=[np.nan if xcsao_erv is None
                                                        else xcsao_erv]))
    if field is not None:
        ids.append(fits.Column("FIELD", "J", array=[field]))
    if catalogid is not None:
        ids.append(fits.Column("CATALOGID", "K", array=[catalogid]))
    if sdss_id is not None:
        ids.append(fits.Column("SDSS_ID", "K", array=[sdss_id]))
    table = fits.BinTableHDU.from_columns(ids, name="SPECOBJ" if legacy else "SPALL")
    return _finish(fits.HDUList([primary, coadd, table]), path, overwrite)


# ------------------------------------------------------------------------ mwmStar / mwmVisit
def _scalar_column(name: str, fmt: str, values: list) -> fits.Column:
    """A one-value-a-row column typed as Astra types it: text 'nA', bool 'L', IntegerField 'J',
    BigIntegerField 'K', FloatField 'E' (fmt 'A' means: as wide as the longest value)."""
    if fmt == "A":
        text = [str(v) for v in values]
        return fits.Column(name, f"{max([1, *map(len, text)])}A", array=np.array(text, dtype=str))
    dtype = {"L": bool, "J": np.int32, "K": np.int64, "E": np.float32}[fmt]
    return fits.Column(name, fmt, array=np.array(values, dtype=dtype))


def _guess_format(values: list) -> str:
    kind = np.asarray(values).dtype.kind
    return {"U": "A", "S": "A", "b": "L", "i": "K", "u": "K"}.get(kind, "E")


def _pixel_column(name: str, rows: list[np.ndarray], n_pix: int) -> fits.Column:
    """Astra writes every pixel array as float32 'nE', zero-width when the HDU has no rows."""
    if not rows:
        return fits.Column(name, "0E", array=np.zeros((0, 0), np.float32))
    return fits.Column(name, f"{n_pix}E", array=np.stack([_f32(r) for r in rows]))


#: (column, FITS format, default) of the BOSS rows, names and order of the DR19 datamodel
#: (Astra 0.6.0; a subset of its 73 visit / 35 star columns). mwmVisit rows with in_stack are
#: in the star's rest frame (shifted by their xcsao_v_rad), the others barycentric; mwmStar
#: rows are rest-frame coadds whose v_rad is the XCSAO mean of the stacked visits.
_VISIT_SCALARS = (("spectrum_pk_id", "K", 0), ("drp_spectrum_pk_id", "K", 0),
                  ("release", "A", "sdss5"), ("filetype", "A", "specFull"),
                  ("v_astra", "A", V_ASTRA), ("healpix", "J", -1), ("sdss_id", "K", -1),
                  ("run2d", "A", "v6_1_3"), ("mjd", "J", -1), ("fieldid", "J", -1),
                  ("catalogid", "K", -1), ("n_exp", "J", 1), ("exptime", "E", 900.0),
                  ("plateid", "J", -1), ("telescope", "A", ""), ("snr", "E", np.nan),
                  ("in_stack", "L", True), ("zwarning_flags", "K", 0),
                  ("xcsao_v_rad", "E", np.nan), ("xcsao_e_v_rad", "E", np.nan),
                  ("xcsao_rxc", "E", np.nan))
_STAR_SCALARS = (("spectrum_pk_id", "K", 0), ("release", "A", "sdss5"),
                 ("filetype", "A", "mwmStar"), ("v_astra", "A", V_ASTRA), ("healpix", "J", -1),
                 ("sdss_id", "K", -1), ("run2d", "A", "v6_1_3"), ("telescope", "A", ""),
                 ("min_mjd", "J", -1), ("max_mjd", "J", -1), ("n_visits", "J", 1),
                 ("n_good_visits", "J", 1), ("n_good_rvs", "J", 1), ("v_rad", "E", np.nan),
                 ("e_v_rad", "E", np.nan), ("snr", "E", np.nan), ("zwarning_flags", "K", 0))
_PIXEL_KEYS = ("wavelength", "flux", "ivar", "wresl", "pixel_flags", "continuum")


def _mwm_hdu(rows: Sequence[Mapping[str, Any]], instrument: str, observatory: str, kind: str,
             grid: tuple[float, float, int], ids: Mapping[str, Any]) -> fits.BinTableHDU:
    crval, cdelt, n_pix = grid
    rows = list(rows)
    scalars = _VISIT_SCALARS if kind == "visit" else _STAR_SCALARS
    defaults = {name: default for name, _, default in scalars}
    defaults.update(ids, telescope=f"{observatory.lower()}25m")
    cols = [_scalar_column(name, fmt, [r.get(name, defaults[name]) for r in rows])
            for name, fmt, _ in scalars]
    named = {name for name, _, _ in scalars}
    extra = sorted({k for r in rows for k in r} - named - set(_PIXEL_KEYS))
    for name in extra:  # scalar keys the caller added
        values = [r.get(name, -1) for r in rows]
        cols.append(_scalar_column(name, _guess_format(values), values))
    wave = 10.0 ** (crval + cdelt * np.arange(n_pix))
    pixels = {
        "wavelength": [wave] * len(rows),
        "flux": [r["flux"] for r in rows],
        "ivar": [r["ivar"] for r in rows],
        "wresl": [r.get("wresl", np.full(n_pix, 2.0)) for r in rows],
        "pixel_flags": [r.get("pixel_flags", np.zeros(n_pix)) for r in rows],
        "continuum": [r.get("continuum", np.ones(n_pix)) for r in rows],
    }
    names = ["flux", "ivar", "wresl", "pixel_flags", "continuum"]
    if kind == "star":  # the mwmStar datamodel also stores the wavelength array
        names.insert(0, "wavelength")
    cols += [_pixel_column(name, pixels[name], n_pix) for name in names]
    hdu = fits.BinTableHDU.from_columns(cols, nrows=len(rows))
    h = hdu.header
    h["EXTNAME"] = (f"{instrument}/{observatory}", "Extension name")
    h["OBSRVTRY"] = (observatory, "Observatory")
    h["INSTRMNT"] = (instrument, "Instrument")
    h["V_ASTRA"] = (V_ASTRA, "Astra version")
    h["CRVAL"] = (crval, "Log10 of the wavelength of the first pixel")
    h["CDELT"] = (cdelt, "Log10 delta wavelength per pixel")
    h["CTYPE"] = ("LOG-LINEAR", "Wavelength axis type")
    h["CUNIT"] = ("Angstrom (Vacuum)", "Wavelength unit")
    h["CRPIX"] = (1, "Reference pixel (1-indexed)")
    h["DC-FLAG"] = (1, "Linear wavelength axis (0) or logarithmic (1)")
    h["NPIXELS"] = (n_pix, "Number of pixels per spectrum")
    return hdu


def write_mwm(path: str | os.PathLike, apo: Sequence[Mapping[str, Any]] = (),
              lco: Sequence[Mapping[str, Any]] = (), *, kind: str = "star",
              sdss_id: int = -1, catalogid: int = -1, n_pix: int = BOSS_NPIX,
              n_apogee: tuple[int, int] = (0, 0),
              apogee: tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]] = ((), ()),
              ra: float = 180.0, dec: float = 0.0,
              gaia_v_rad: float = -999.0, overwrite: bool = False) -> Path:
    """A DR19 Astra mwmStar (`kind="star"`) or mwmVisit (`kind="visit"`) file.

    `apo` / `lco` are the rows of the BOSS/APO and BOSS/LCO HDUs: mappings with `flux` and
    `ivar` (n_pix values) and optionally pixel_flags, wresl, continuum, sdss_id, catalogid,
    telescope, mjd, fieldid, min_mjd, spectrum_pk_id, in_stack, xcsao_v_rad, v_rad ... (other
    scalar keys become extra columns). The primary header has RA/DEC and, as DR19's does, the
    *Gaia* radial velocity as V_RAD (`gaia_v_rad`: readers must not take it for ours). An empty
    sequence writes an HDU with no rows, as DR19 does for an observatory without BOSS data.
    `n_apogee` writes that many blank APOGEE/APO and APOGEE/LCO rows (readers must skip them);
    `apogee` gives real APOGEE/APO and APOGEE/LCO rows instead (flux/ivar of 8575 pixels).
    """
    if kind not in ("star", "visit"):
        raise ValueError(f"kind must be 'star' or 'visit', got {kind!r}")
    primary = fits.PrimaryHDU()
    h = primary.header
    h["V_ASTRA"] = (V_ASTRA, "Astra version")
    h["SDSS_ID"] = (sdss_id, "SDSS-5 unique identifier")
    h["CAT_ID"] = (catalogid, "Catalog identifier used to target the source")
    h["RA"] = (ra, "Right ascension [deg]")
    h["DEC"] = (dec, "Declination [deg]")
    h["V_RAD"] = (gaia_v_rad, "Gaia radial velocity [km/s]")
    h.add_comment("HDU 0: Summary information only")
    h.add_comment("HDU 1-2: BOSS spectra from APO and LCO")
    h.add_comment("HDU 3-4: APOGEE spectra from APO and LCO")
    boss = (BOSS_CRVAL, BOSS_CDELT, n_pix)
    ids = {"sdss_id": sdss_id, "catalogid": catalogid}
    hdus = [primary,
            _mwm_hdu(apo, "BOSS", "APO", kind, boss, ids),
            _mwm_hdu(lco, "BOSS", "LCO", kind, boss, ids)]
    for observatory, count, given in zip(("APO", "LCO"), n_apogee, apogee):
        blank = {"flux": np.zeros(APOGEE_GRID[2]), "ivar": np.zeros(APOGEE_GRID[2])}
        rows = list(given) or [blank] * count
        hdus.append(_mwm_hdu(rows, "APOGEE", observatory, kind, APOGEE_GRID, ids))
    return _finish(fits.HDUList(hdus), path, overwrite)


# ------------------------------------------------------------------------------ LAMOST
def _lamost_header(h: fits.Header, *, obsid: int | None, cls: str, subclass: str, z: float,
                   mjd: int, fiberid: int, planid: str, data_v: str | None,
                   crval: float, cdelt: float) -> None:
    h["TELESCOP"] = ("LAMOST", "GuoShouJing Telescope")
    if obsid is not None:
        h["OBSID"] = (obsid, "Unique number ID of this spectrum")
    if data_v is not None:
        h["DATA_V"] = (data_v, "Data release version")
    h["MJD"] = (mjd, "Modified Julian Day")
    h["PLANID"] = (planid, "Plan ID in use")
    h["DESIG"] = ("LAMOST J000000.00+000000.0", "Designation of LAMOST target")
    h["FIBERID"] = (fiberid, "Fiber ID of Object")
    h["VACUUM"] = (True, "Wavelengths are in vacuum")
    h["NWORDER"] = (2, "Number of linear-log10 coefficients")
    h["WFITTYPE"] = ("LOG-LINEAR", "Linear-log10 dispersion")
    h["COEFF0"] = (crval, "Central wavelength (log10) of first pixel")
    h["COEFF1"] = (cdelt, "Log10 dispersion per pixel")
    h["CRVAL1"] = (crval, "Central wavelength (log10) of first pixel")
    h["CD1_1"] = (cdelt, "Log10 dispersion per pixel")
    h["CRPIX1"] = (1, "Starting pixel (1-indexed)")
    h["CTYPE1"] = ("LINEAR", "")
    h["DC-FLAG"] = (1, "Log-linear flag")
    h["CLASS"] = (cls, "Class of object")
    h["SUBCLASS"] = (subclass, "Subclass of object")
    h["Z"] = (z, "Redshift of object")


def _log_grid(wavelength: np.ndarray) -> tuple[float, float]:
    loglam = np.log10(np.asarray(wavelength, np.float64))
    return float(loglam[0]), float((loglam[-1] - loglam[0]) / max(len(loglam) - 1, 1))


def write_lamost_image(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
                       ivar: np.ndarray, *, dr1_style: bool = False, gzip: bool | None = None,
                       obsid: int | None = 1, cls: str = "STAR", subclass: str = "G2",
                       z: float = 0.0, and_mask: np.ndarray | None = None,
                       overwrite: bool = False) -> Path:
    """LAMOST DR1-DR7 primary image (float32, 5 rows): flux, ivar, wavelength (DR1:
    subcontinuum, the wavelength then only in CRVAL1/CD1_1), andmask, ormask. `gzip` True (or
    None with a .gz name) writes the gzipped variant. A DR1 file has no OBSID card."""
    n = len(flux)
    crval, cdelt = _log_grid(wavelength)
    mask = np.zeros(n) if and_mask is None else np.asarray(and_mask)
    third = np.ones(n) if dr1_style else np.asarray(wavelength)
    data = np.vstack([flux, ivar, third, mask, mask]).astype(np.float32)
    primary = fits.PrimaryHDU(data)
    h = primary.header
    h["EXTEN0"] = ("Flux Inverse Subcontinuum Andmask Ormask" if dr1_style
                   else "Flux, Inverse, Wavelength, Andmask, Ormask")
    if not dr1_style:
        h["EXTNAME"] = ("Flux", "The extension name")
    _lamost_header(h, obsid=None if dr1_style else obsid, cls=cls, subclass=subclass, z=z,
                   mjd=55863, fiberid=1, planid="SYNTH", crval=crval, cdelt=cdelt,
                   data_v=None if dr1_style else "LAMOST DR7")
    return _finish(fits.HDUList([primary]), path, overwrite, gzip)


def write_lamost_table(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
                       ivar: np.ndarray, *, obsid: int = 1, cls: str = "STAR",
                       subclass: str = "G7", z: float = 0.0, and_mask: np.ndarray | None = None,
                       gzip: bool | None = None, overwrite: bool = False) -> Path:
    """LAMOST DR8+ table layout: header-only primary, HDU1 COADD with one row of float32 array
    columns FLUX, IVAR, WAVELENGTH, ANDMASK, ORMASK, NORMALIZATION."""
    n = len(flux)
    crval, cdelt = _log_grid(wavelength)
    primary = fits.PrimaryHDU()
    primary.header["N_EXTEN"] = (2, "The amount of extension")
    _lamost_header(primary.header, obsid=obsid, cls=cls, subclass=subclass, z=z, mjd=55858,
                   fiberid=1, planid="SYNTH", crval=crval, cdelt=cdelt, data_v="LAMOST DR9")
    mask = np.zeros(n) if and_mask is None else np.asarray(and_mask)
    cols = [fits.Column(name, f"{n}E", array=_f32(values)[None])
            for name, values in (("FLUX", flux), ("IVAR", ivar), ("WAVELENGTH", wavelength),
                                 ("ANDMASK", mask), ("ORMASK", mask),
                                 ("NORMALIZATION", np.ones(n)))]
    coadd = fits.BinTableHDU.from_columns(cols, name="COADD")
    return _finish(fits.HDUList([primary, coadd]), path, overwrite, gzip)


# ----------------------------------------------------------------------- generic tables
def write_generic_table(path: str | os.PathLike, wavelength: np.ndarray, flux: np.ndarray,
                        ivar: np.ndarray, *, use_error: bool = False,
                        mask: np.ndarray | None = None, overwrite: bool = False) -> Path:
    """wavelength/flux/ivar (or `error` = 1/sqrt(ivar), inf where ivar <= 0) columns, one pixel
    a row, as FITS, CSV or ECSV by suffix. Values keep their dtype (float32 stays 'E')."""
    path = Path(path)
    table = Table({"wavelength": np.asarray(wavelength), "flux": np.asarray(flux)})
    ivar = np.asarray(ivar)
    if use_error:
        with np.errstate(divide="ignore", invalid="ignore"):
            table["error"] = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1)),
                                      np.inf).astype(ivar.dtype)
    else:
        table["ivar"] = ivar
    if mask is not None:
        table["mask"] = np.asarray(mask).astype(np.int32)
    fmt = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}.get(path.suffix.lower(), "fits")
    table.write(path, format=fmt, overwrite=overwrite)
    return path


# ------------------------------------------------------------------------------ Gaia archive
def _archive_array_text(values: np.ndarray | None) -> str:
    """How the Gaia archive writes an array cell in CSV: "(a, b, ...)", empty when absent."""
    if values is None:
        return ""
    return "(" + ", ".join(repr(float(v)) for v in np.asarray(values).ravel()) + ")"


def write_gaia_table(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], *,
                     overwrite: bool = False) -> Path:
    """A Gaia DR3 archive table (RVS mean spectra or XP continuous), one row a source.

    `rows` map archive column names (source_id, flux, flux_error, ... or bp_coefficients,
    bp_coefficient_errors, bp_coefficient_correlations, ...) to values; a None array is an
    absent solution. The suffix picks the form: .csv (arrays as quoted "(a, b, ...)"
    strings, as the archive writes them), .ecsv, .fits (variable-length arrays), .xml/.vot
    (a VOTable 1.4 with TABLEDATA); .gz gzips.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OSError(f"{path}: already exists; pass overwrite=True to replace it")
    name = path.name.lower().removesuffix(".gz")
    columns = list(rows[0])
    if name.endswith((".xml", ".vot")):
        data = _votable_text(rows, columns).encode()
    elif name.endswith(".csv"):
        lines = [",".join(columns)]
        for row in rows:
            cells = []
            for col in columns:
                value = row[col]
                if value is None or np.ndim(value) > 0:
                    cells.append(f'"{_archive_array_text(value)}"' if value is not None else "")
                else:
                    cells.append(str(value))
            lines.append(",".join(cells))
        data = ("\n".join(lines) + "\n").encode()
    else:
        table = Table()
        for col in columns:
            values = [row[col] for row in rows]
            if any(np.ndim(v) > 0 for v in values if v is not None):
                width = max(np.size(v) for v in values if v is not None)
                filled = [np.asarray(v, dtype=np.float64) if v is not None
                          else np.full(width, np.nan) for v in values]
                if len({f.size for f in filled}) == 1:
                    table[col] = np.stack(filled)
                else:
                    table[col] = np.array(filled, dtype=object)
            else:
                table[col] = np.array(values)
        buffer = io.BytesIO()
        if name.endswith(".ecsv"):
            text = io.StringIO()
            table.write(text, format="ascii.ecsv")
            buffer.write(text.getvalue().encode())
        else:
            table.write(buffer, format="fits")
        data = buffer.getvalue()
    path.write_bytes(_gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def _votable_text(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> str:
    """A VOTable 1.4 with one TABLEDATA table, FIELDs typed as the Gaia archive types them."""
    fields = []
    for col in columns:
        values = [row[col] for row in rows if row[col] is not None]
        if any(np.ndim(v) > 0 for v in values):
            fields.append(f'<FIELD name="{col}" datatype="double" arraysize="*"/>')
        elif all(isinstance(v, (int, np.integer)) for v in values):
            fields.append(f'<FIELD name="{col}" datatype="long"/>')
        else:
            fields.append(f'<FIELD name="{col}" datatype="double"/>')
    body = []
    for row in rows:
        cells = []
        for col in columns:
            value = row[col]
            if value is None:
                cells.append("<TD/>")
            elif np.ndim(value) > 0:
                cells.append("<TD>" + " ".join(repr(float(v)) for v in np.ravel(value)) + "</TD>")
            else:
                cells.append(f"<TD>{value}</TD>")
        body.append("<TR>" + "".join(cells) + "</TR>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
            '<RESOURCE type="results">\n<TABLE>\n' + "\n".join(fields) +
            "\n<DATA>\n<TABLEDATA>\n" + "\n".join(body) +
            "\n</TABLEDATA>\n</DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n")


# ------------------------------------------------------------------------------ APOGEE apStar
def write_apstar(path: str | os.PathLike, flux: np.ndarray, error: np.ndarray, *,
                 mask: np.ndarray | None = None, objid: str = "2M00000000+0000000",
                 telescope: str = "apo25m", overwrite: bool = False) -> Path:
    """An APOGEE apStar file as DR13-DR17 write it (the files in ../shared/data).

    `flux`/`error` are 2-D (rows: combined, combined (global weights), then one per visit) or
    1-D (a one-visit star). HDU1 flux, HDU2 error, HDU3 mask (int16) with the log-linear
    CRVAL1/CDELT1 grid in each image header, no EXTNAME (as the DR13 files).
    """
    flux = _f32(flux)
    error = _f32(error)
    mask = np.zeros(flux.shape, np.int16) if mask is None else np.asarray(mask, np.int16)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["OBJID"] = (objid, "Object ID")
    h["TELESCOP"] = (telescope, "Telescope")
    h["NVISITS"] = (1 if flux.ndim == 1 else max(flux.shape[0] - 2, 1),
                    "number of visit spectra combined")
    crval, cdelt, _ = APOGEE_GRID
    images = []
    for data, unit in ((flux, "Flux (10^-17 erg/s/cm^2/Ang)"), (error, "Err (10^-17 erg/s/cm^2/Ang)"),
                       (mask, "")):
        hdu = fits.ImageHDU(data)
        hdu.header["CRVAL1"] = crval
        hdu.header["CDELT1"] = cdelt
        hdu.header["CRPIX1"] = 1
        hdu.header["CTYPE1"] = "LOG-LINEAR"
        hdu.header["DC-FLAG"] = 1
        if unit:
            hdu.header["BUNIT"] = unit
        images.append(hdu)
    return _finish(fits.HDUList([primary, *images]), path, overwrite)

"""The catalogue's columns, in one table: name, type, unit, meaning and DR19/DR20 counterpart.

Everything else reads this: `catalogue.build_table` (order, dtype, missing values, units), the
FITS/ECSV/Parquet writers (units travel as TUNIT / column metadata), and the documentation's
column table (`markdown_table()`, rendered into docs/outputs.md when the site is built). A
family member with other labels declares its own label columns as `Column`s and passes them
to `build_table`; the shared identifier, frame, flag and bookkeeping columns stay the same for
every member.

DR19/DR20 names are only used with their DR19/DR20 meaning. `counterpart` says, for the BOSS
Net summary tables astraAllStarBossNet ("star") and astraAllVisitBossNet ("visit"):
"same" (same name, same meaning), a DR name (ours is that column, renamed), or "" (ours only).
DR19's `source` (Astra's source primary key) is in none of the files we read, so no column of
ours is called `source`: our file path is `path`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Column", "IDENTIFIER_COLUMNS", "BOSS_LABEL_COLUMNS", "FLAG_COLUMNS",
           "ALL_COLUMNS", "columns_for", "markdown_table", "MISSING", "LABEL_PARAMETERS",
           "CORRELATION_PAIRS", "correlation_name", "UCDS"]


@dataclass(frozen=True)
class Column:
    """One catalogue column. `keys`: identifier keys (from the readers) that feed it, in order
    of preference; empty for columns the pipeline computes."""

    name: str
    dtype: str  # "str", "int64", "float32", "float64", "bool"
    unit: str
    meaning: str
    #: counterparts in (DR19 allStar, DR19 allVisit, DR20 allStar, DR20 allVisit)
    dr: tuple[str, str, str, str] = ("", "", "", "")
    keys: tuple[str, ...] = ()


#: Missing value per dtype ("unknown", not zero).
MISSING = {"str": "", "int64": -1, "float32": float("nan"), "float64": float("nan"),
           "bool": False}

_DEG, _KMS, _K, _DEX = "deg", "km / s", "K", "dex"

_S = "same"
_ALL4 = (_S, _S, _S, _S)
_VISIT = ("", _S, "", _S)
_STAR = (_S, "", _S, "")

#: Where the spectrum came from and which object it is (read from the file, never invented).
IDENTIFIER_COLUMNS: tuple[Column, ...] = (
    Column("path", "str", "", "input file path, as given"),
    Column("format", "str", "", "reader that recognised the file"),
    Column("hdu", "int64", "", "HDU the spectrum came from"),
    Column("row", "int64", "", "table row within that HDU (-1 for one-spectrum layouts)"),
    Column("spectrum_pk_id", "int64", "",
           "mwmStar/mwmVisit row's `spectrum_pk_id` (mwmStar: the coadd DR19 ran on)",
           ("spectrum_pk", "", "spectrum_pk", ""), ("spectrum_pk_id",)),
    Column("drp_spectrum_pk_id", "int64", "",
           "mwmVisit row's `drp_spectrum_pk_id`: the DRP specFull spectrum DR19 ran on",
           ("", "spectrum_pk", "", "spectrum_pk"), ("drp_spectrum_pk_id",)),
    Column("sdss_id", "int64", "", "SDSS-V identifier", _ALL4, ("sdss_id",)),
    Column("catalogid", "int64", "", "SDSS-V catalogue identifier", _ALL4, ("catalogid",)),
    Column("specobjid", "str", "", "SDSS spectrum identifier (SPECOBJ/SPALL `SPECOBJID`)",
           keys=("specobjid",)),
    Column("obsid", "int64", "", "LAMOST observation id (`OBSID`)", keys=("obsid",)),
    Column("designation", "str", "", "LAMOST designation (`DESIG`)", keys=("designation",)),
    Column("telescope", "str", "", "apo25m (SDSS 2.5 m at APO), lco25m (du Pont at LCO), "
           "lamost", _ALL4, ("telescope",)),
    Column("fieldid", "int64", "", "SDSS-V field", _VISIT, ("fieldid",)),
    Column("plateid", "int64", "", "SDSS plate", _VISIT, ("plateid",)),
    Column("fiberid", "int64", "", "fibre number", keys=("fiberid",)),
    Column("mjd", "int64", "d", "MJD of the observation (visits and single spectra)", _VISIT,
           ("mjd",)),
    Column("min_mjd", "int64", "d", "first visit's MJD (mwmStar coadds)", _STAR,
           ("min_mjd",)),
    Column("max_mjd", "int64", "d", "last visit's MJD (mwmStar coadds)", _STAR, ("max_mjd",)),
    Column("ra", "float64", _DEG, "right ascension, as the file gives it", _ALL4, ("ra",)),
    Column("dec", "float64", _DEG, "declination, as the file gives it", _ALL4, ("dec",)),
    Column("survey_class", "str", "", "the survey's own classification (`CLASS`)",
           keys=("class",)),
    Column("survey_subclass", "str", "", "the survey's own subclass (`SUBCLASS`: SDSS "
           "spectral type of the best template, LAMOST MK type)", keys=("subclass",)),
    Column("survey_z", "float64", "", "the survey's own redshift (SDSS SPECOBJ/SPALL `Z`, "
           "LAMOST `Z`); for a star its radial velocity is c x survey_z", keys=("z",)),
    Column("survey_e_z", "float64", "", "its uncertainty (`Z_ERR`)", keys=("z_err",)),
    Column("object_name", "str", "", "the object's name as the file gives it (LAMOST "
           "`OBJNAME`, a 1-D image's `OBJECT`; SDSS spec files name none, their object is "
           "`specobjid`)", keys=("objname", "object")),
    Column("snr", "float32", "", "the survey's own S/N, read from the file (mwm `snr`, SPALL "
           "/SPECOBJ `SN_MEDIAN_ALL`, LAMOST `SNRR`)", _ALL4, ("snr",)),
    Column("snr_model", "float32", "", "our S/N: median of flux x sqrt(ivar) over the pixels "
           "in 3800-8900 A with finite flux and ivar > 0"),
    Column("in_stack", "int64", "", "mwmVisit `in_stack`: 1 the visit is in the mwmStar "
           "coadd (rest frame), 0 it is not (barycentric), -1 not an mwmVisit row",
           keys=("in_stack",)),
    Column("frame", "str", "", "frame of the spectrum's wavelengths: rest, barycentric, "
           "heliocentric, or empty when the file does not say", keys=("frame",)),
    Column("v_rad", "float32", _KMS, "mwmStar coadd's XCSAO radial velocity (weighted mean "
           "of the visits), read from the file", _STAR, ("v_rad",)),
    Column("e_v_rad", "float32", _KMS, "its uncertainty, read from the file", _STAR,
           ("e_v_rad",)),
    Column("xcsao_v_rad", "float32", _KMS, "the visit's XCSAO radial velocity (mwmVisit "
           "`xcsao_v_rad`, SDSS-V SPALL `XCSAO_RV`), read from the file", _VISIT,
           ("xcsao_v_rad",)),
    Column("xcsao_e_v_rad", "float32", _KMS, "its uncertainty, read from the file", _VISIT,
           ("xcsao_e_v_rad",)),
)

#: The catalogue's labels and the network output each comes from (teff: 10**logTeff).
LABEL_PARAMETERS: dict[str, str] = {"teff": "logTeff", "logg": "logg", "fe_h": "FeH",
                                    "bn_v_r": "rv"}

#: Label pairs whose correlation over the draws is a `rho_<a>_<b>` column (as astra's
#: rho_teff_logg ...): the three of every member, then those with BOSS Net's RV (a member
#: without RV has only the first three).
CORRELATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("teff", "logg"), ("teff", "fe_h"), ("logg", "fe_h"),
    ("teff", "bn_v_r"), ("logg", "bn_v_r"), ("fe_h", "bn_v_r"))

#: IVOA UCD (UCD1+) of each column that has one, for the VOTable FIELDs (the columns'
#: meanings above are the descriptions). The e_* columns are stat.error of their label.
UCDS: dict[str, str] = {
    "path": "meta.file", "format": "meta.code", "hdu": "meta.id.part", "row": "meta.id.part",
    "spectrum_pk_id": "meta.id", "drp_spectrum_pk_id": "meta.id", "sdss_id": "meta.id",
    "catalogid": "meta.id", "specobjid": "meta.id", "obsid": "meta.id",
    "designation": "meta.id", "object_name": "meta.id;meta.main", "source_id": "meta.id",
    "apogee_id": "meta.id", "telescope": "instr.tel", "fieldid": "obs.field",
    "plateid": "meta.id;instr", "fiberid": "meta.id;instr", "mjd": "time.epoch",
    "min_mjd": "time.start", "max_mjd": "time.end", "ra": "pos.eq.ra;meta.main",
    "dec": "pos.eq.dec;meta.main", "survey_class": "src.class",
    "survey_subclass": "src.spType", "survey_z": "src.redshift",
    "survey_e_z": "stat.error;src.redshift", "snr": "stat.snr", "snr_model": "stat.snr",
    "frame": "meta.code", "in_stack": "meta.code", "v_rad": "spect.dopplerVeloc.opt",
    "e_v_rad": "stat.error;spect.dopplerVeloc.opt", "xcsao_v_rad": "spect.dopplerVeloc.opt",
    "xcsao_e_v_rad": "stat.error;spect.dopplerVeloc.opt",
    "teff": "phys.temperature.effective", "e_teff": "stat.error;phys.temperature.effective",
    "raw_e_teff": "stat.error;phys.temperature.effective", "logg": "phys.gravity",
    "e_logg": "stat.error;phys.gravity", "raw_e_logg": "stat.error;phys.gravity",
    "fe_h": "phys.abund.Fe", "e_fe_h": "stat.error;phys.abund.Fe",
    "raw_e_fe_h": "stat.error;phys.abund.Fe", "bn_v_r": "spect.dopplerVeloc.opt",
    "e_bn_v_r": "stat.error;spect.dopplerVeloc.opt", "bn_v_bary": "spect.dopplerVeloc.opt",
    "e_bn_v_bary": "stat.error;spect.dopplerVeloc.opt",
    "log_teff": "phys.temperature.effective", "e_log_teff":
        "stat.error;phys.temperature.effective",
    **{f"rho_{a}_{b}": "stat.correlation" for a, b in CORRELATION_PAIRS},
    "result_flags": "meta.code.qual", "flag_warn": "meta.code.qual",
    "flag_bad": "meta.code.qual", "quality_flags": "meta.code.qual", "n_draws": "meta.number",
    "error": "meta.note",
}

#: BOSS Net's own labels (the boss member). Other members declare theirs.
BOSS_LABEL_COLUMNS: tuple[Column, ...] = (
    Column("teff", "float32", _K, "effective temperature, 10**log_teff", _ALL4),
    Column("e_teff", "float32", _K, "its uncertainty, teff x ln(10) x e_log_teff", _ALL4),
    Column("logg", "float32", _DEX, "surface gravity, log10(g / cm s^-2)", _ALL4),
    Column("e_logg", "float32", _DEX, "its uncertainty", _ALL4),
    Column("fe_h", "float32", _DEX, "metallicity [Fe/H]", _ALL4),
    Column("e_fe_h", "float32", _DEX, "its uncertainty", _ALL4),
    Column("bn_v_r", "float32", _KMS, "BOSS Net radial velocity in the spectrum's own frame "
           "(`frame`; a residual near 0 for rest-frame spectra)", ("", "v_rad", _S, _S)),
    Column("e_bn_v_r", "float32", _KMS, "its uncertainty", ("", "e_v_rad", _S, _S)),
    Column("bn_v_bary", "float32", _KMS, "barycentric radial velocity from BOSS Net: bn_v_r "
           "for barycentric spectra; for rest-frame spectra the relativistic composition of "
           "the XCSAO velocity they were shifted by with bn_v_r; NaN otherwise"),
    Column("e_bn_v_bary", "float32", _KMS, "its uncertainty (both terms propagated)"),
    Column("log_teff", "float32", "dex(K)", "log10 Teff, the network's own output"),
    Column("e_log_teff", "float32", _DEX, "its uncertainty"),
    *(Column(f"rho_{a}_{b}", "float32", "", f"Pearson correlation of {a} and {b} over the "
             f"Monte-Carlo draws (teff as 10**log_teff of each draw); NaN with fewer than 3 "
             f"draws or when either does not vary") for a, b in CORRELATION_PAIRS),
)

#: Flags and bookkeeping, the same for every member.
FLAG_COLUMNS: tuple[Column, ...] = (
    Column("result_flags", "int64", "", "DR19 bits 0-4, bit-identical to DR19", _ALL4),
    Column("flag_warn", "bool", "", "DR19 warning: bit 3 or 4", _ALL4),
    Column("flag_bad", "bool", "", "DR19 do-not-use: bit 0, 1, 2 or 3", _ALL4),
    Column("quality_flags", "int64", "", "bossnet-onnx input-quality bits"),
    Column("n_draws", "int64", "", "Monte-Carlo copies behind the e_* columns (0: none)"),
    Column("error", "str", "", "why the spectrum failed (file, HDU, row, what, how to fix)"),
)

ALL_COLUMNS: tuple[Column, ...] = IDENTIFIER_COLUMNS + BOSS_LABEL_COLUMNS + FLAG_COLUMNS


def correlation_name(a: str, b: str) -> str:
    """The column of the correlation of labels `a` and `b` (CORRELATION_PAIRS order)."""
    return f"rho_{a}_{b}"


def columns_for(label_columns: Iterable[Column] = BOSS_LABEL_COLUMNS) -> tuple[Column, ...]:
    """The full column list of a catalogue whose member has `label_columns`."""
    return IDENTIFIER_COLUMNS + tuple(label_columns) + FLAG_COLUMNS


def _counterpart(value: str, name: str) -> str:
    if value == "same":
        return f"`{name}`"
    if value:
        return f"`{value}` (renamed)"
    return "-"


def markdown_table(columns: Iterable[Column] = ALL_COLUMNS) -> str:
    """The documentation's column table (docs/outputs.md renders it at build time)."""
    lines = ["| column | type | unit | meaning | DR19 allStar | DR19 allVisit | DR20 allStar "
             "| DR20 allVisit |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in columns:
        where = " | ".join(_counterpart(v, c.name) for v in c.dr)
        lines.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {c.meaning} | {where} |")
    return "\n".join(lines)

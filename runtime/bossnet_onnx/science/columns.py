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
           "ALL_COLUMNS", "columns_for", "markdown_table", "MISSING"]


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

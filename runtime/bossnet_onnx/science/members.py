"""The BOSS Net family: one table saying what each member eats and what it predicts.

The reference code (hutchresearch/BOSSNet) runs four networks of the same architecture: BOSS
Net (optical spectra), APOGEE Net (APOGEE H-band spectra), and the two Gaia networks (RVS mean
spectra, XP continuous coefficients). A model file names its member in the metadata key
`bossnet.member`; everything that differs between members (input length and layout, which
readers' spectra it accepts, how model rows and Monte-Carlo draws are made, which catalogue
columns exist, which flags and uncertainty calibration apply) is a field of its `Member` here,
and the rest of the runtime asks this table instead of testing member names.

Inputs per member (reference `bossnet/pipeline.py` and `dataset.py` at 101ac2b, DR19 Astra):

- boss: interpolate onto the 3900-point 3800-8900 A grid, log, clip at the 95th percentile + 1;
  draws `flux + sigma * N(0,1)` with sigma from ivar (`preprocess.py`).
- apogee: the native 8575-pixel APOGEE grid (log-linear, CRVAL1 4.179, CDELT1 6e-6), no
  interpolation; NaN/inf flux and error set to 0; the same log scaling; draws
  `flux + error * N(0,1)` with the file's error array as given (sigma from ivar when the file
  stores only ivar, as DR19 Astra does for mwm files).
- gaia-rvs: the 2401-pixel Gaia DR3 RVS mean spectrum fed raw (no log), NaN set to 1 in flux
  and flux_error; draws `flux + flux_error * N(0,1)`.
- gaia-xp: 55 BP then 55 RP continuous-representation coefficients fed raw, NaN set to 1;
  draws from each band's full covariance (errors and packed correlations) through its Cholesky
  factor. Not divided by `*_standard_deviation` (GaiaXPy does that, the reference does not).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelMetadataError
from .columns import BOSS_LABEL_COLUMNS, Column

__all__ = ["Member", "MEMBERS", "member_named", "DEFAULT_MEMBER", "OFFICIAL_STATS",
           "OFFICIAL_CONFIGS", "KIND_TITLES",
           "input_grid", "APOGEE_CRVAL1", "APOGEE_CDELT1", "APOGEE_NPIX", "RVS_NPIX",
           "XP_N_COEFFICIENTS", "BOSS_GRID_START", "BOSS_GRID_STOP", "BOSS_GRID_POINTS"]

DEFAULT_MEMBER = "boss"

#: BOSS Net's input grid: 3900 points, linear in wavelength, 3800-8900 A (the reference builds
#: it with torch.linspace in float32; exported models carry those exact values).
BOSS_GRID_START = 3800.0
BOSS_GRID_STOP = 8900.0
BOSS_GRID_POINTS = 3900

APOGEE_CRVAL1 = 4.179
APOGEE_CDELT1 = 6e-6
APOGEE_NPIX = 8575
#: Gaia DR3 RVS mean spectra: 846-870 nm in 0.01 nm steps.
RVS_START_ANGSTROM = 8460.0
RVS_STEP_ANGSTROM = 0.1
RVS_NPIX = 2401
XP_N_COEFFICIENTS = 55

#: Output statistics of the published networks (`stats/<source>.yaml` of the reference).
OFFICIAL_STATS: dict[str, dict[str, dict[str, float]]] = {
    "boss": {
        "logTeff": {"MEAN": 3.8, "STD": 0.1, "PNMIN": -6.324908332532, "PNMAX": 12.000000000000002},
        "logg": {"MEAN": 3.9, "STD": 0.9, "PNMIN": -4.403565883333333, "PNMAX": 6.584444444444444},
        "FeH": {"MEAN": -0.4, "STD": 0.5, "PNMIN": -7.496200000000001, "PNMAX": 4.4496842},
        "rv": {"MEAN": -7.4, "STD": 60.9, "PNMIN": -9.116415791127874, "PNMAX": 9.074319773706897},
    },
    "apogee": {
        "logTeff": {"MEAN": 3.7, "STD": 0.1, "PNMIN": -5.2989908487604165,
                    "PNMAX": 9.387230328989702},
        "logg": {"MEAN": 3.2, "STD": 1.2, "PNMIN": -3.2758333384990697,
                 "PNMAX": 3.3389749999999996},
        "FeH": {"MEAN": -0.2, "STD": 0.3, "PNMIN": -8.926531221275827, "PNMAX": 4.568167},
    },
    "gaia-rvs": {
        "logg": {"MEAN": 3.4, "STD": 1.0, "PNMIN": -3.6770452499389648,
                 "PNMAX": 4.431402778625488},
        "logTeff": {"MEAN": 3.7, "STD": 0.1, "PNMIN": -2.9253287315368715,
                    "PNMAX": 7.216303825378416},
        "FeH": {"MEAN": -0.2, "STD": 0.3, "PNMIN": -8.44794527689616, "PNMAX": 6.28403369585673},
    },
    "gaia-xp": {
        "logg": {"MEAN": 3.94, "STD": 0.842, "PNMIN": -5.198329691211401,
                 "PNMAX": 6.328379524575279},
        "logTeff": {"MEAN": 3.722, "STD": 0.092, "PNMIN": -4.82124239130435,
                    "PNMAX": 13.164666714875596},
        "FeH": {"MEAN": -0.349, "STD": 0.39, "PNMIN": -11.052914096147585,
                "PNMAX": 5.649279689788819},
    },
}

#: `model_args.yaml` of each published network (reference `bossnet/model_*/`).
OFFICIAL_CONFIGS: dict[str, dict[str, Any]] = {
    "boss": dict(in_channels=1, model_dim=4, dim_mults=[1, 2, 4, 8, 16], kernel_size=30,
                 num_targets=4, adapt_pool_output_dim=1024, num_linear=6, linear_dim=1024,
                 pos_enc=True),
    "apogee": dict(in_channels=1, model_dim=4, dim_mults=[1, 2, 4, 8, 16], kernel_size=30,
                   num_targets=3, adapt_pool_output_dim=1024, num_linear=6, linear_dim=1024,
                   pos_enc=True),
    "gaia-rvs": dict(in_channels=1, model_dim=8, dim_mults=[1, 1, 1, 1], kernel_size=30,
                     num_targets=3, adapt_pool_output_dim=1024, num_linear=5, linear_dim=1024,
                     pos_enc=True),
    "gaia-xp": dict(in_channels=1, model_dim=4, dim_mults=[1, 1, 1], kernel_size=30,
                    num_targets=3, adapt_pool_output_dim=1024, num_linear=7, linear_dim=4096,
                    pos_enc=True),
}


@dataclass(frozen=True)
class Member:
    """Everything that differs between the networks of the family."""

    name: str
    title: str
    #: network output order
    parameter_names: tuple[str, ...]
    n_inputs: int
    #: what the input axis is: "wavelength" (Angstrom grid) or "coefficient" (XP index)
    input_axis: str
    #: metadata `bossnet.input` description (besides n and the grid)
    input_layout: Mapping[str, Any]
    preprocessing_version: str
    #: what readers call spectra this member reads (`Spectrum.kind`)
    spectrum_kind: str
    #: for messages: what kind of data this is
    reads: str
    #: the reference CLI's `-d` value (also its `stats/<x>.yaml`)
    reference_source: str
    #: catalogue label columns, in order; absent parameters are absent columns
    label_columns: tuple[Column, ...]
    #: result_flags bits this member's catalogue defines (DR19 definitions), from point labels
    flag_bits: tuple[int, ...]
    #: (scale, offset) per label: published e = scale * raw + offset (DR19 noise model)
    calibration: Mapping[str, tuple[float, float]]
    #: the function of member_inputs.py that makes the model rows of one spectrum
    input_function: str
    #: preprocessing variants (`--recipe`) defined for it: DR19's production code exists for
    #: BOSS Net only
    recipes: tuple[str, ...] = ("reference",)

    @property
    def predicts_rv(self) -> bool:
        return "rv" in self.parameter_names



_THREE = ("logg", "logTeff", "FeH")
#: the labels of a network predicting log g, log Teff and [Fe/H] (BOSS Net's, less its RV)
_LABELS_3 = tuple(c for c in BOSS_LABEL_COLUMNS
                  if c.name in ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h",
                                "log_teff", "e_log_teff", "rho_teff_logg", "rho_teff_fe_h",
                                "rho_logg_fe_h"))
_GAIA_IDS = (Column("source_id", "int64", "", "Gaia DR3 source_id (Gaia members only)",
                    keys=("source_id",)),)
_APOGEE_COLUMNS = (
    Column("apogee_id", "str", "", "APOGEE object id (apStar `OBJID`; APOGEE Net only)",
           keys=("apogee_id",)),
    *_LABELS_3,
    Column("raw_e_teff", "float32", "K", "APOGEE Net: Monte-Carlo scatter of teff before "
           "DR19's calibration (e_teff = 1.25 raw_e_teff + 10 K)"),
    Column("raw_e_logg", "float32", "dex", "APOGEE Net: raw scatter of logg "
           "(e_logg = 1.25 raw_e_logg + 0.01)"),
    Column("raw_e_fe_h", "float32", "dex", "APOGEE Net: raw scatter of fe_h "
           "(e_fe_h = raw_e_fe_h + 0.01)"),
)

MEMBERS: dict[str, Member] = {m.name: m for m in (
    Member(name="boss", title="BOSS Net", parameter_names=("logg", "logTeff", "FeH", "rv"),
           n_inputs=BOSS_GRID_POINTS, input_axis="wavelength",
           input_layout={"kind": "interpolated-linear-wavelength", "start": BOSS_GRID_START,
                         "stop": BOSS_GRID_STOP},
           preprocessing_version="bossnet-log95-v1", spectrum_kind="boss",
           reads="optical spectra (SDSS/BOSS spec, mwm BOSS HDUs, LAMOST, tables)",
           reference_source="boss",
           label_columns=BOSS_LABEL_COLUMNS, flag_bits=(1, 2, 3, 4), calibration={},
           input_function="boss_rows", recipes=("reference", "astra")),
    Member(name="apogee", title="APOGEE Net", parameter_names=_THREE,
           n_inputs=APOGEE_NPIX, input_axis="wavelength",
           input_layout={"kind": "native-log-linear-wavelength", "crval1": APOGEE_CRVAL1,
                         "cdelt1": APOGEE_CDELT1},
           preprocessing_version="apogeenet-native-log95-v1", spectrum_kind="apogee",
           reads="APOGEE spectra (apStar/asStar, mwm APOGEE HDUs)",
           reference_source="apogee",
           label_columns=_APOGEE_COLUMNS,
           flag_bits=(1, 2, 3),
           # DR19 astraAllStarApogeeNet: e = 1.25 raw + 10 K, 1.25 raw + 0.01 dex, raw + 0.01
           calibration={"teff": (1.25, 10.0), "logg": (1.25, 0.01), "fe_h": (1.0, 0.01)},
           input_function="apogee_rows"),
    Member(name="gaia-rvs", title="Gaia RVS Net", parameter_names=_THREE,
           n_inputs=RVS_NPIX, input_axis="wavelength",
           input_layout={"kind": "gaia-dr3-rvs-mean-spectrum", "start": RVS_START_ANGSTROM,
                         "step": RVS_STEP_ANGSTROM, "scaling": "none"},
           preprocessing_version="gaia-rvs-raw-v1", spectrum_kind="gaia-rvs",
           reads="Gaia DR3 RVS mean spectra (archive CSV/ECSV/FITS/VOTable)",
           reference_source="gaia_rvs", label_columns=(*_GAIA_IDS, *_LABELS_3),
           flag_bits=(1, 2, 3), calibration={},
           input_function="gaia_rvs_rows"),
    Member(name="gaia-xp", title="Gaia XP Net", parameter_names=_THREE,
           n_inputs=2 * XP_N_COEFFICIENTS, input_axis="coefficient",
           input_layout={"kind": "gaia-dr3-xp-continuous-coefficients",
                         "order": ["bp_coefficients[0..54]", "rp_coefficients[0..54]"],
                         "scaling": "none (not divided by *_standard_deviation)"},
           preprocessing_version="gaia-xp-raw-v1", spectrum_kind="gaia-xp",
           reads="Gaia DR3 XP continuous mean spectra (archive CSV/ECSV/FITS/VOTable)",
           reference_source="gaia_xp", label_columns=(*_GAIA_IDS, *_LABELS_3),
           flag_bits=(1, 2, 3), calibration={},
           input_function="gaia_xp_rows"),
)}

#: What each kind of spectrum is called in messages.
KIND_TITLES = {"boss": "an optical spectrum (BOSS Net input)",
               "apogee": "an APOGEE spectrum (APOGEE Net input)",
               "gaia-rvs": "a Gaia RVS mean spectrum (Gaia RVS Net input)",
               "gaia-xp": "a Gaia XP continuous spectrum (Gaia XP Net input)"}


def member_named(name: Any, source: str = "model") -> Member:
    """The recipe of member `name`; ModelMetadataError (one line) for an unknown one."""
    member = MEMBERS.get(name) if isinstance(name, str) else None
    if member is None:
        raise ModelMetadataError(
            f"{source}: metadata key 'bossnet.member' is {name!r}, a family member this runtime "
            f"does not know (known: {', '.join(MEMBERS)}); upgrade bossnet-onnx or re-export")
    return member


def input_grid(member: Member) -> np.ndarray:
    """The input axis stored in the model: wavelengths (Angstrom) or XP coefficient index.

    The BOSS grid comes from the exporter (torch.linspace, exactly); the others are defined by
    their surveys and need no interpolation, so this is only their description.
    """
    n = member.n_inputs
    if member.name == "apogee":
        return (10.0 ** (APOGEE_CRVAL1 + APOGEE_CDELT1 * np.arange(n))).astype(np.float32)
    if member.name == "gaia-rvs":
        return (RVS_START_ANGSTROM + RVS_STEP_ANGSTROM * np.arange(n)).astype(np.float32)
    if member.name == "gaia-xp":
        return np.arange(n, dtype=np.float32)
    return np.linspace(BOSS_GRID_START, BOSS_GRID_STOP, n, dtype=np.float64).astype(np.float32)

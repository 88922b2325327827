"""One spectrum in, one catalogue row out: the model rows of a spectrum (noise-free row, then
its Monte-Carlo draws, in pieces for long draws) and the row made from the model's outputs.

Shared by the run (stream.py) and the plots, so a plot title always says what the catalogue
says. No I/O and no model here: what a spectrum's rows are depends only on the spectrum, the
model's metadata and the run options.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BossNetError, MemberMismatchError, first_line
from ..model.metadata import ModelMetadata
from ..outputs.catalogue import Result
from ..science.flags import ResultFlags, parameter_flags, quality_bits, snr_in_range
from ..science.member_inputs import member_rows
from ..science.members import KIND_TITLES
from ..science.preprocess import RECIPES, model_inputs, sigma_from_ivar
from ..science.uncertainty import (
    label_correlations,
    noisy_copies,
    spectrum_rng,
    summarize_draws,
)
from ..science.units import SPEED_OF_LIGHT_KMS
from ..spectrum import ReadFailure, Spectrum

__all__ = ["Prepared", "prepare_spectrum", "prepare_pieces", "result_from_outputs",
           "failure_row", "error_text", "in_vacuum", "compose_velocities", "MIN_PIECE_ROWS"]

#: Smallest piece a spectrum's Monte-Carlo rows are cut into (fewer rows would only add
#: per-call overhead to preprocessing).
MIN_PIECE_ROWS = 64


@dataclass
class Prepared:
    """Model input rows for one spectrum: row 0 noise-free, rows 1.. the Monte-Carlo draws.

    A piece of them when the spectrum's rows are made in pieces: rows `first_row` ..
    `first_row + len(inputs)` of `total_rows` (None: all of them are here). A piece that could
    not be made carries its `error` and no inputs; the whole spectrum then fails.
    """

    spectrum: Spectrum
    inputs: np.ndarray
    quality: int
    recipe: str = "reference"
    snr_model: float = float("nan")
    first_row: int = 0
    total_rows: int | None = None
    error: str | None = None

    @property
    def is_last(self) -> bool:
        """No more pieces of this spectrum follow (an error piece ends it too)."""
        return (self.total_rows is None or self.error is not None
                or self.first_row + self.inputs.shape[0] >= self.total_rows)


def prepare_spectrum(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
                     recipe: str = "reference") -> Prepared:
    """Sigma, noisy copies and the model rows of one spectrum, by its model's family member.

    `recipe` "astra" (BOSS Net only) zeroes NaN flux first and pools the copies' clip
    percentile (DR19's production code; see preprocess); the draws come from the same seeded
    generator. A spectrum of another kind than the member reads is a MemberMismatchError.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    member = meta.family_member
    if spec.kind != member.spectrum_kind:
        raise MemberMismatchError(
            f"{spec.location}: is {KIND_TITLES.get(spec.kind, spec.kind)} but the model is "
            f"{member.title} (member {member.name}), which reads {member.reads}")
    rows, coverage, quality = member_rows(spec, meta, draws, seed, recipe)
    snr = math.nan
    if coverage is not None:  # members that interpolate onto an optical grid
        snr = snr_in_range(spec, meta.grid)
        quality |= quality_bits(spec, coverage, meta.grid, snr)
    return Prepared(spec, rows, quality, recipe, snr)


def prepare_pieces(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
                   piece_rows: int, recipe: str = "reference") -> Iterator[Prepared]:
    """The rows of `prepare_spectrum` in pieces of at most `piece_rows` rows, made one at a time.

    The draws come from one generator in sequence, so the pieces together are exactly the rows
    `prepare_spectrum` makes at once (tested); memory stays at one piece whatever `draws` is.
    The first piece raises like `prepare_spectrum`; a later piece that fails is yielded with
    its `error`, so the rows already handed out are accounted for. Recipe "astra" pools the clip
    percentile over all copies (as DR19 does), so its rows are always made at once (at most
    MAX_DRAWS + 1 of them), as are those of the other family members (member_inputs.py): only
    BOSS Net's reference recipe (boss_rows) is cut here.
    """
    total = 1 + draws
    member = meta.family_member
    if total <= piece_rows or recipe != "reference" or member.input_function != "boss_rows" \
            or spec.kind != member.spectrum_kind:
        # whole: recipe astra (pooled percentile), the other members' own input functions,
        # and the checks and messages of prepare_spectrum
        yield prepare_spectrum(spec, meta, draws, seed, recipe)
        return
    pre = meta.preprocessing
    flux = np.asarray(spec.flux, dtype=np.float32)
    sigma = sigma_from_ivar(spec.ivar, flux, pre)
    rng = spectrum_rng(seed, spec.identity)
    rows, plan = model_inputs(spec.wavelength, noisy_copies(flux, sigma, piece_rows - 1, rng),
                              meta.grid, pre, where=spec.location, recipe=recipe)
    snr = snr_in_range(spec, meta.grid)
    quality = quality_bits(spec, plan.coverage, meta.grid, snr)
    yield Prepared(spec, rows, quality, recipe, snr, 0, total)
    start = piece_rows
    while start < total:
        n = min(piece_rows, total - start)
        try:
            copies = noisy_copies(flux, sigma, n, rng, include_flux=False)
            rows, _ = model_inputs(spec.wavelength, copies, meta.grid, pre,
                                   where=spec.location, recipe=recipe)
        except Exception as exc:  # noqa: BLE001
            yield Prepared(spec, np.empty((0, 0), np.float32), quality, recipe, snr, start,
                           total, error=error_text(exc, spec.location))
            return
        yield Prepared(spec, rows, quality, recipe, snr, start, total)
        start += n


def failure_row(item: Spectrum | ReadFailure | str, error: str) -> Result:
    """The row of a spectrum (or a whole file, given as its path) that gave no labels."""
    if isinstance(item, str):
        return Result(source=item, result_flags=int(ResultFlags.RUNTIME_EXCEPTION), error=error)
    return Result(source=item.source, format=item.format, hdu=item.hdu, row=item.row,
                  identifiers=dict(item.identifiers),
                  result_flags=int(ResultFlags.RUNTIME_EXCEPTION), error=error)


def error_text(exc: BaseException, where: str | None = None) -> str:
    """One line for a failed row: our errors as they are, anything else marked as a bug."""
    if isinstance(exc, BossNetError):
        return str(exc)
    # a bug rather than bad input: still one line, naming the file like every other message
    text = first_line(exc) if str(exc).strip() else ""
    return f"{where + ': ' if where else ''}unexpected {type(exc).__name__}: {text}"


def in_vacuum(spec: Spectrum) -> Spectrum:
    """`spec` with its air wavelengths converted to vacuum (units.air_to_vacuum)."""
    from ..science.units import air_to_vacuum

    return dataclasses.replace(spec, wavelength=air_to_vacuum(spec.wavelength),
                               converted_from_air=True)


def compose_velocities(u: float, w: float, e_u: float = math.nan, e_w: float = math.nan
                       ) -> tuple[float, float]:
    """Relativistic sum of a frame velocity `u` and a velocity `w` measured in that frame
    (km/s): (u + w) / (1 + u w / c^2), with first-order error propagation of e_u and e_w
    (a NaN e_u, unknown, leaves only the e_w term). At stellar velocities the correction to
    u + w is below 1e-4 km/s for |u|, |w| < 200 km/s; it is there so the formula is right."""
    c2 = SPEED_OF_LIGHT_KMS ** 2
    denominator = 1.0 + u * w / c2
    v = (u + w) / denominator
    d_w = (1.0 - u * u / c2) / denominator ** 2
    d_u = (1.0 - w * w / c2) / denominator ** 2
    terms = [(d_w * e_w) ** 2]
    if math.isfinite(e_u):
        terms.append((d_u * e_u) ** 2)
    return v, math.sqrt(sum(terms))


def _barycentric(ids: Mapping[str, Any], bn_v_r: float, e_bn_v_r: float) -> tuple[float, float]:
    """BOSS Net's RV in the barycentric frame: as is for barycentric spectra; composed with the
    XCSAO velocity DR19 shifted a rest-frame spectrum by (mwmStar: the coadd's v_rad, the mean
    of its visits' shifts; mwmVisit in_stack rows: that visit's xcsao_v_rad); NaN otherwise."""
    frame = str(ids.get("frame", ""))
    if frame == "barycentric":
        return bn_v_r, e_bn_v_r
    if frame != "rest":
        return math.nan, math.nan
    for key, e_key in (("xcsao_v_rad", "xcsao_e_v_rad"), ("v_rad", "e_v_rad")):
        try:
            u = float(ids.get(key, math.nan))
            e_u = float(ids.get(e_key, math.nan))
        except (TypeError, ValueError):
            continue
        if math.isfinite(u):
            return compose_velocities(u, bn_v_r, e_u, e_bn_v_r)
    return math.nan, math.nan


def _labels(meta: ModelMetadata, point: np.ndarray, scatter: np.ndarray,
            ids: Mapping[str, Any]) -> dict[str, float]:
    """Catalogue labels of the member's parameters; e_* calibrated where DR19 calibrates them
    (the Monte-Carlo scatter then kept as raw_e_*)."""
    member = meta.family_member
    i_logg, i_lt, i_feh = (meta.index(n) for n in ("logg", "logTeff", "FeH"))
    log_teff = float(point[i_lt])
    with np.errstate(over="ignore"):  # inf (not OverflowError) for absurd outputs
        teff = float(np.power(10.0, log_teff))
    labels = {
        "teff": teff, "e_teff": teff * math.log(10.0) * float(scatter[i_lt]),
        "logg": float(point[i_logg]), "e_logg": float(scatter[i_logg]),
        "fe_h": float(point[i_feh]), "e_fe_h": float(scatter[i_feh]),
        "log_teff": log_teff, "e_log_teff": float(scatter[i_lt]),
    }
    if member.predicts_rv:
        i_rv = meta.index("rv")
        rv, e_rv = float(point[i_rv]), float(scatter[i_rv])
        v_bary, e_v_bary = _barycentric(ids, rv, e_rv)
        labels.update(bn_v_r=rv, e_bn_v_r=e_rv, bn_v_bary=v_bary, e_bn_v_bary=e_v_bary)
    for name, (scale, offset) in member.calibration.items():
        raw = labels[f"e_{name}"]
        labels[f"raw_e_{name}"] = raw
        labels[f"e_{name}"] = scale * raw + offset
    return labels


def result_from_outputs(prep: Prepared, physical: np.ndarray, meta: ModelMetadata,
                        draws: int) -> Result:
    """The catalogue row of one spectrum from its model outputs (row 0 noise-free, then draws).

    Shared by `predict` and the plots, so a plot title always says what the catalogue says.
    """
    spec = prep.spectrum
    finite = np.isfinite(physical).all(axis=0)
    if not finite.all() and prep.recipe != "astra":
        # DR19 (recipe astra) writes NaN labels and flags them as its SQL does instead
        bad = ", ".join(n for n, ok in zip(meta.parameter_names, finite) if not ok)
        failed = failure_row(spec, f"{spec.location}: model returned non-finite {bad} for this "
                                f"(finite) input; no labels for this spectrum")
        failed.quality_flags, failed.derived = prep.quality, {"snr_model": prep.snr_model}
        return failed
    with np.errstate(invalid="ignore", over="ignore"):
        labels = _labels(meta, physical[0], summarize_draws(physical[1:]), spec.identifiers)
        labels.update(label_correlations(physical[1:], meta.parameter_names))  # rho_*
    if not math.isfinite(labels["teff"]) and prep.recipe != "astra":
        failed = failure_row(spec, f"{spec.location}: model returned log Teff = "
                                f"{labels['log_teff']:.6g}, for which Teff overflows; no labels "
                                f"for this spectrum")
        failed.quality_flags, failed.derived = prep.quality, {"snr_model": prep.snr_model}
        return failed
    bits = sum(1 << b for b in meta.family_member.flag_bits)
    flags = int(parameter_flags(labels["teff"], labels["logg"], labels["fe_h"])) & bits
    return Result(source=spec.source, format=spec.format, hdu=spec.hdu, row=spec.row,
                  identifiers=dict(spec.identifiers), labels=labels, result_flags=flags,
                  n_draws=draws, quality_flags=prep.quality,
                  derived={"snr_model": prep.snr_model})



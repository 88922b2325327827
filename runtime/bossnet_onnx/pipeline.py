"""`predict`: survey files in, DR19-style catalogue out.

Files are read and preprocessed in a background thread while the model runs on the previous
batch (onnxruntime releases the GIL), model rows from many spectra are packed into large
batches, and every spectrum's outcome, good or failed, becomes exactly one catalogue row.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table

from . import __version__
from .catalogue import Result, build_table
from .errors import BossNetError, DemoModelWarning, ModelError, first_line
from .flags import LOW_SNR_THRESHOLD, QualityFlags, ResultFlags, parameter_flags
from .metadata import ModelMetadata
from .preprocess import RECIPES, astra_flux, model_inputs, sigma_from_ivar
from .session import BossNetModel, open_model
from .spectrum import ReadFailure, Spectrum
from .uncertainty import noisy_copies, spectrum_rng, summarize_draws

if TYPE_CHECKING:
    from .sharding import Shard

__all__ = ["predict", "predict_with", "resolve_inputs", "demo_warning", "warn_if_demo",
           "start_session", "stream_results", "prepare_spectrum",
           "result_from_outputs", "Prepared", "StageTimes", "LOW_COVERAGE_FRACTION",
           "BAD_PIXEL_FRACTION", "snr_in_range", "compose_velocities", "SPEED_OF_LIGHT_KMS"]

#: km/s, exact (SI definition)
SPEED_OF_LIGHT_KMS = 299_792.458

LOW_COVERAGE_FRACTION = 0.8
BAD_PIXEL_FRACTION = 0.2
#: Survey classifications (SDSS/LAMOST CLASS) for which stellar labels mean nothing.
NON_STELLAR_CLASSES = frozenset({"GALAXY", "QSO"})
PREFETCH_FILES = 8
#: Model rows per onnxruntime call. The full BOSS network needs ~4 MB of activations per row;
#: 32 rows run as fast as 256 (measured: 4.7 vs 5.0 ms/row on 2 cores) at a fifth of the memory.
DEFAULT_BATCH_ROWS = 32


@dataclass
class Prepared:
    """Model input rows for one spectrum: row 0 noise-free, rows 1.. the Monte-Carlo draws."""

    spectrum: Spectrum
    inputs: np.ndarray
    quality: int
    recipe: str = "reference"
    snr_model: float = float("nan")


@dataclass
class StageTimes:
    """Seconds spent per stage (read and preprocess run in a background thread)."""

    read: float = 0.0
    preprocess: float = 0.0
    model: float = 0.0
    write: float = 0.0
    session: float = 0.0
    n_spectra: int = 0
    n_files: int = 0
    extra: dict = field(default_factory=dict)


def snr_in_range(spec: Spectrum, grid: np.ndarray) -> float:
    """Our S/N: median of flux x sqrt(ivar) over the pixels inside the model's wavelength range
    with finite flux and finite ivar > 0 (NaN when there are none). A median per pixel, like
    SDSS's SN_MEDIAN_ALL, but over exactly the range BOSS Net reads."""
    wave = np.asarray(spec.wavelength, dtype=np.float64)
    flux = np.asarray(spec.flux, dtype=np.float64)
    ivar = np.asarray(spec.ivar, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        good = ((wave >= grid[0]) & (wave <= grid[-1]) & np.isfinite(flux) & np.isfinite(ivar)
                & (ivar > 0))
        if not good.any():
            return float("nan")
        return float(np.median(flux[good] * np.sqrt(ivar[good])))


def _quality_bits(spec: Spectrum, coverage: float, grid: np.ndarray, snr: float) -> int:
    bits = QualityFlags(0)
    if coverage < LOW_COVERAGE_FRACTION:
        bits |= QualityFlags.LOW_COVERAGE
    ivar = np.asarray(spec.ivar, dtype=np.float64)
    good_ivar = np.isfinite(ivar) & (ivar > 0)
    if not good_ivar.any():
        bits |= QualityFlags.NO_VALID_IVAR
    wave = np.asarray(spec.wavelength, dtype=np.float64)
    in_range = (wave >= grid[0]) & (wave <= grid[-1])
    if in_range.any():
        bad = ~(np.isfinite(np.asarray(spec.flux, dtype=np.float64)) & good_ivar)
        if bad[in_range].mean() > BAD_PIXEL_FRACTION:
            bits |= QualityFlags.MANY_BAD_PIXELS
    if str(spec.identifiers.get("class", "")).strip().upper() in NON_STELLAR_CLASSES:
        bits |= QualityFlags.NOT_A_STAR
    if snr < LOW_SNR_THRESHOLD:  # NaN (no usable ivar) is NO_VALID_IVAR's business
        bits |= QualityFlags.LOW_SNR
    return int(bits)


def prepare_spectrum(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
                     recipe: str = "reference") -> Prepared:
    """Sigma, noisy copies and the preprocessed model rows of one spectrum.

    `recipe` "astra" zeroes NaN flux first and pools the copies' clip percentile (DR19's
    production code; see preprocess); the draws come from the same seeded generator.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    pre = meta.preprocessing
    flux = np.asarray(spec.flux, dtype=np.float32)
    if recipe == "astra":
        flux = astra_flux(flux)
    copies = flux[None, :]
    if draws:
        sigma = sigma_from_ivar(spec.ivar, flux, pre)
        copies = noisy_copies(flux, sigma, draws, spectrum_rng(seed, spec.identity))
    rows, plan = model_inputs(spec.wavelength, copies, meta.grid, pre, where=spec.location,
                              recipe=recipe)
    snr = snr_in_range(spec, meta.grid)
    return Prepared(spec, rows, _quality_bits(spec, plan.coverage, meta.grid, snr), recipe, snr)


def _failure(item: Spectrum | ReadFailure | str, error: str) -> Result:
    if isinstance(item, str):
        return Result(source=item, result_flags=int(ResultFlags.RUNTIME_EXCEPTION), error=error)
    return Result(source=item.source, format=item.format, hdu=item.hdu, row=item.row,
                  identifiers=dict(item.identifiers),
                  result_flags=int(ResultFlags.RUNTIME_EXCEPTION), error=error)


def _error_text(exc: BaseException, where: str | None = None) -> str:
    if isinstance(exc, BossNetError):
        return str(exc)
    # a bug rather than bad input: still one line, naming the file like every other message
    text = first_line(exc) if str(exc).strip() else ""
    return f"{where + ': ' if where else ''}unexpected {type(exc).__name__}: {text}"


def in_vacuum(spec: Spectrum) -> Spectrum:
    """`spec` with its air wavelengths converted to vacuum (units.air_to_vacuum)."""
    from .units import air_to_vacuum

    return dataclasses.replace(spec, wavelength=air_to_vacuum(spec.wavelength),
                               converted_from_air=True)


def _read_and_prepare(item: str | Sequence[Spectrum | ReadFailure], meta: ModelMetadata,
                      draws: int, seed: int, times: StageTimes, recipe: str = "reference",
                      air: bool = False) -> list[Prepared | Result]:
    """Everything for one input path (or one in-memory object's records); never raises
    (failures become Result rows). `air`: the wavelengths are in air, convert to vacuum."""
    from .readers import read_spectra

    t0 = time.perf_counter()
    if isinstance(item, str):
        try:
            records = read_spectra(item)
        except Exception as exc:  # one bad file must not lose the others  # noqa: BLE001
            times.read += time.perf_counter() - t0
            return [_failure(item, _error_text(exc, item))]
    else:
        records = list(item)
    t1 = time.perf_counter()
    times.read += t1 - t0
    out: list[Prepared | Result] = []
    for rec in records:
        if isinstance(rec, ReadFailure):
            if recipe != "astra" or rec.spectrum is None:
                out.append(_failure(rec, rec.error))
                continue
            rec = rec.spectrum  # DR19 predicts degenerate spectra too
        try:
            if air and not rec.converted_from_air:
                rec = in_vacuum(rec)
            out.append(prepare_spectrum(rec, meta, draws, seed, recipe))
        except Exception as exc:  # noqa: BLE001
            out.append(_failure(rec, _error_text(exc, rec.location)))
    times.preprocess += time.perf_counter() - t1
    return out


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
    i_logg, i_lt, i_feh, i_rv = (meta.index(n) for n in ("logg", "logTeff", "FeH", "rv"))
    log_teff = float(point[i_lt])
    teff = float(np.power(10.0, log_teff))  # inf (not OverflowError) for absurd outputs
    rv, e_rv = float(point[i_rv]), float(scatter[i_rv])
    v_bary, e_v_bary = _barycentric(ids, rv, e_rv)
    return {
        "teff": teff, "e_teff": teff * math.log(10.0) * float(scatter[i_lt]),
        "logg": float(point[i_logg]), "e_logg": float(scatter[i_logg]),
        "fe_h": float(point[i_feh]), "e_fe_h": float(scatter[i_feh]),
        "bn_v_r": rv, "e_bn_v_r": e_rv, "bn_v_bary": v_bary, "e_bn_v_bary": e_v_bary,
        "log_teff": log_teff, "e_log_teff": float(scatter[i_lt]),
    }


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
        failed = _failure(spec, f"{spec.location}: model returned non-finite {bad} for this "
                                f"(finite) input; no labels for this spectrum")
        failed.quality_flags, failed.derived = prep.quality, {"snr_model": prep.snr_model}
        return failed
    with np.errstate(invalid="ignore", over="ignore"):
        labels = _labels(meta, physical[0], summarize_draws(physical[1:]), spec.identifiers)
    if not math.isfinite(labels["teff"]) and prep.recipe != "astra":
        failed = _failure(spec, f"{spec.location}: model returned log Teff = "
                                f"{labels['log_teff']:.6g}, for which Teff overflows; no labels "
                                f"for this spectrum")
        failed.quality_flags, failed.derived = prep.quality, {"snr_model": prep.snr_model}
        return failed
    flags = int(parameter_flags(labels["teff"], labels["logg"], labels["fe_h"]))
    return Result(source=spec.source, format=spec.format, hdu=spec.hdu, row=spec.row,
                  identifiers=dict(spec.identifiers), labels=labels, result_flags=flags,
                  n_draws=draws, quality_flags=prep.quality,
                  derived={"snr_model": prep.snr_model})


class _Batcher:
    """Packs prepared spectra into model batches of about `batch_rows` rows."""

    def __init__(self, model: BossNetModel, batch_rows: int, draws: int, times: StageTimes):
        self.model, self.batch_rows, self.draws, self.times = model, batch_rows, draws, times
        self.pending: list[Prepared] = []
        self.rows = 0

    def add(self, prep: Prepared) -> list[tuple[Prepared, Result]]:
        self.pending.append(prep)
        self.rows += prep.inputs.shape[0]
        return self.flush() if self.rows >= self.batch_rows else []

    def flush(self) -> list[tuple[Prepared, Result]]:
        if not self.pending:
            return []
        batch, self.pending, self.rows = self.pending, [], 0
        t0 = time.perf_counter()
        try:
            physical = self.model.run_physical(np.concatenate([p.inputs for p in batch]))
        except Exception:  # noqa: BLE001
            # Isolate the culprit: rerun one spectrum at a time so only it fails.
            done = [(prep, self._run_one(prep)) for prep in batch]
        else:
            bounds = np.cumsum([0] + [p.inputs.shape[0] for p in batch])
            meta = self.model.metadata
            done = [(prep, result_from_outputs(prep, physical[a:b], meta, self.draws))
                    for prep, a, b in zip(batch, bounds[:-1], bounds[1:])]
        self.times.model += time.perf_counter() - t0
        return done

    def _run_one(self, prep: Prepared) -> Result:
        try:
            physical = self.model.run_physical(prep.inputs)
        except Exception as exc:  # noqa: BLE001
            return _failure(prep.spectrum, f"{prep.spectrum.location}: model error: "
                                           f"{_error_text(exc)}")
        return result_from_outputs(prep, physical, self.model.metadata, self.draws)


def iter_results(paths: Sequence[str | Sequence[Spectrum | ReadFailure]], model: BossNetModel, *,
                 draws: int = 20, seed: int = 0, batch_rows: int = DEFAULT_BATCH_ROWS,
                 times: StageTimes | None = None, recipe: str = "reference",
                 on_file_done: Callable[[int], None] | None = None,
                 air: bool = False) -> Iterator[Result]:
    """Results in input order (file order, then HDU/row order within a file); an item of
    `paths` may also be the records of an in-memory object (in_memory.resolve_items)."""
    times = times if times is not None else StageTimes()
    meta = model.metadata
    batcher = _Batcher(model, batch_rows, draws, times)
    # Spectra wait in `order` until the model has run their batch, so failures that never
    # reach the model still come out in input order.
    order: deque[Result | Prepared] = deque()
    finished: dict[int, Result] = {}

    def drain(done: list[tuple[Prepared, Result]]) -> Iterator[Result]:
        for prep, res in done:
            finished[id(prep)] = res
        while order:
            head = order[0]
            if isinstance(head, Result):
                yield head
                order.popleft()
            elif id(head) in finished:
                order.popleft()
                yield finished.pop(id(head))
            else:
                break

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bossnet-read")
    futures: deque = deque()
    remaining = iter(paths)

    def submit_next() -> None:
        path = next(remaining, None)
        if path is not None:
            futures.append(pool.submit(_read_and_prepare, path, meta, draws, seed, times,
                                       recipe, air))

    try:
        for _ in range(PREFETCH_FILES):
            submit_next()
        while futures:
            items = futures.popleft().result()
            submit_next()
            times.n_files += 1
            for item in items:
                times.n_spectra += 1
                order.append(item)
                yield from drain(batcher.add(item) if isinstance(item, Prepared) else [])
            if on_file_done:
                on_file_done(1)
    finally:
        # On Ctrl-C / SIGTERM do not wait for the files read ahead: drop them.
        pool.shutdown(wait=False, cancel_futures=True)
    yield from drain(batcher.flush())


def run_metadata(model: BossNetModel, draws: int, seed: int, shard: str | None = None,
                 recipe: str = "reference") -> dict:
    """Provenance for the catalogue header (SHARD only for a `--shard K/N` run)."""
    meta = model.metadata
    header = {
        "MODEL": meta.model_name,
        "MODELSHA": meta.weights_sha256,
        "PROVNC": meta.provenance,
        "PROVIDER": model.provider,
        "NDRAWS": int(draws),
        "SEED": int(seed),
        "BNVERS": __version__,
        "PREPROC": meta.preprocessing.version,
        "RECIPE": recipe,
        "DATE": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
    }
    if meta.source:
        # Which published set produced the rows (models pull); the blob ids are in the model.
        header["MODELREG"] = meta.source["registry_name"]
        header["MODELREP"] = meta.source["repository"]
        header["MODELCOM"] = meta.source["commit"]
    if shard:
        header["SHARD"] = str(shard)
    return header


def resolve_inputs(inputs: Any, shard: Shard | str | None = None,
                   recursive: bool = False) -> list:
    """Expanded input paths (globs, dirs, @lists), restricted to one shard if asked.

    In-memory objects (in_memory.py) among the inputs become tuples of Spectrum records in
    their place; anything else is a TypeError before any work. Shards split files only.
    """
    from .in_memory import resolve_items, split_inputs
    from .inputs import expand_inputs
    from .sharding import parse_shard, select_shard

    items = split_inputs(inputs)
    if all(isinstance(p, (str, os.PathLike)) for p in items):
        paths = expand_inputs([os.fspath(p) for p in items], recursive=recursive)
        if isinstance(shard, str):
            shard = parse_shard(shard)
        return select_shard(paths, shard)
    if shard is not None:
        raise ValueError("shard: --shard splits input files; spectra in memory cannot be "
                         "sharded (split them yourself)")
    out: list = []
    seen: set[str] = set()
    for item in resolve_items(items):
        if isinstance(item, str):
            for path in expand_inputs([item], recursive=recursive):
                if path not in seen:
                    seen.add(path)
                    out.append(path)
        else:
            out.append(item)
    return out


def warn_if_demo(model: BossNetModel, stacklevel: int = 2) -> None:
    """A DemoModelWarning (the CLI prints it even with -q) unless `model` is published weights."""
    note = demo_warning(model)
    if note:
        warnings.warn(note, DemoModelWarning, stacklevel=stacklevel + 1)


def demo_warning(model: BossNetModel) -> str | None:
    """The warning every prediction with a model that is not the published weights carries."""
    meta = model.metadata
    if not meta.is_demo:
        return None
    return (f"model {meta.model_name} is {meta.provenance}, not an export of the published "
            f"BOSS Net weights: its labels are for trying the software, not for science "
            f"(README: 'Science models')")


def predict(inputs: Any, *, model: str | os.PathLike | BossNetModel | None = None,
            provider: str = "auto", draws: int = 20, seed: int = 0, recipe: str = "reference",
            batch_size: int = DEFAULT_BATCH_ROWS,
            threads: int | None = None, progress: bool = False, shard: str | None = None,
            air: bool = False, recursive: bool = False,
            times: StageTimes | None = None) -> Table:
    """Predict BOSS Net labels for every spectrum in `inputs`.

    `inputs`: paths (files, globs, directories, @lists; `recursive` searches directories
    recursively), `bossnet_onnx.Spectrum` records, specutils spectra, astropy tables,
    `(wavelength, flux, ivar)` arrays, or a list mixing them (see in_memory.py); anything else
    is a TypeError. `model`: a model name, an .onnx path, a loaded model (`bossnet_onnx.load`,
    reused without reopening) or None for the default. `air`: the wavelengths are in air
    (converted to vacuum, units.air_to_vacuum).

    Returns an astropy Table (DR19 column names, one row per spectrum; failed spectra are rows
    with result_flags bit 0 and an `error` text) whose `meta` holds the run's provenance.
    `draws` noisy copies per spectrum give e_* as their scatter (ddof=1); `seed` with each
    spectrum's identity fixes them, whatever the batch size, file order or `shard` ("K/N").
    A model that is not an export of the published weights issues a DemoModelWarning.
    """
    items = resolve_inputs(inputs, shard, recursive)
    session, times = start_session(model, provider, threads, draws, batch_size, times)
    return predict_with(session, items, draws=draws, seed=seed, recipe=recipe,
                        batch_size=batch_size, progress=progress, shard=shard, air=air,
                        times=times, resolved=True)


def predict_with(session: BossNetModel, inputs: Any, *, draws: int = 20, seed: int = 0,
                 recipe: str = "reference", batch_size: int = DEFAULT_BATCH_ROWS,
                 progress: bool = False, shard: str | None = None, air: bool = False,
                 recursive: bool = False, times: StageTimes | None = None,
                 resolved: bool = False) -> Table:
    """`predict` on an open model (what `Model.predict` runs)."""
    if session.session is None:
        raise ModelError(f"{session.path}: model was closed; load it again (bossnet_onnx.load) "
                         f"to predict")
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    items = inputs if resolved else resolve_inputs(inputs, shard, recursive)
    _check_run_arguments(draws, batch_size)
    times = times if times is not None else StageTimes()
    warn_if_demo(session, stacklevel=4)
    results = list(stream_results(items, session, draws=draws, seed=seed, batch_rows=batch_size,
                                  times=times, progress=progress, recipe=recipe, air=air))
    return build_table(results, meta=run_metadata(session, draws, seed, shard, recipe))


def _check_run_arguments(draws: int, batch_size: int) -> None:
    if draws < 0:
        raise ValueError(f"draws must be >= 0, got {draws}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def start_session(model: str | os.PathLike | BossNetModel | None, provider: str,
                  threads: int | None, draws: int, batch_size: int,
                  times: StageTimes | None = None) -> tuple[BossNetModel, StageTimes]:
    """Check run arguments and open (or reuse) the model, timing the cold start."""
    _check_run_arguments(draws, batch_size)
    times = times if times is not None else StageTimes()
    t0 = time.perf_counter()
    session = model if isinstance(model, BossNetModel) else open_model(model, provider, threads)
    times.session = time.perf_counter() - t0
    return session, times


def stream_results(paths: Sequence, session: BossNetModel, *, draws: int, seed: int,
                   batch_rows: int, times: StageTimes, progress: bool = False,
                   recipe: str = "reference", air: bool = False) -> Iterator[Result]:
    """iter_results with an optional rich progress bar over files (on stderr)."""
    if not progress:
        yield from iter_results(paths, session, draws=draws, seed=seed, batch_rows=batch_rows,
                                times=times, recipe=recipe, air=air)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]BOSS Net"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files"), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("predict", total=len(paths))
        yield from iter_results(paths, session, draws=draws, seed=seed, batch_rows=batch_rows,
                                times=times, recipe=recipe,
                                on_file_done=lambda n: bar.advance(task, n), air=air)

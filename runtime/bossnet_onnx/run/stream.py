"""`predict`: survey files in, DR19-style catalogue out.

Files are read and preprocessed in a background thread while the model runs on the previous
batch (onnxruntime releases the GIL), model rows from many spectra are packed into large
batches, and every spectrum's outcome, good or failed, becomes exactly one catalogue row.

Memory is bounded whatever the input: readers hand over spectra one at a time, a spectrum's
Monte-Carlo rows are made in pieces of at most `piece_rows` (draws generated, preprocessed and
run piece by piece), and the background thread runs at most READ_AHEAD_PIECES pieces ahead of
the model. A file of 10,000 spectra is never read and prepared at once, and its results come
out of `iter_results` one by one as its pieces finish.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
import queue
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table

from .. import __version__
from ..errors import BossNetError, DemoModelWarning, MemberMismatchError, ModelError, first_line
from ..model.metadata import ModelMetadata
from ..model.session import BossNetModel, open_model
from ..outputs.catalogue import Result, build_table
from ..science.flags import (
    ResultFlags,
    parameter_flags,
    quality_bits,
    snr_in_range,
)
from ..science.member_inputs import member_rows
from ..science.members import KIND_TITLES
from ..science.preprocess import RECIPES, model_inputs, sigma_from_ivar
from ..science.uncertainty import check_draws, noisy_copies, spectrum_rng, summarize_draws
from ..spectrum import ReadFailure, Spectrum

if TYPE_CHECKING:
    from .sharding import Shard

__all__ = ["predict", "predict_with", "resolve_inputs", "demo_warning", "warn_if_demo",
           "start_session", "check_kinds", "stream_results", "prepare_spectrum",
           "result_from_outputs", "Prepared", "StageTimes", "compose_velocities", "SPEED_OF_LIGHT_KMS",
           "prepare_pieces", "READ_AHEAD_PIECES", "MIN_PIECE_ROWS"]

#: km/s, exact (SI definition)
SPEED_OF_LIGHT_KMS = 299_792.458

#: Prepared pieces the background thread may hold ahead of the model (each at most
#: max(batch rows, MIN_PIECE_ROWS) x 3900 float32: 64 pieces of 64 rows are 64 MB).
READ_AHEAD_PIECES = 64
#: Smallest piece a spectrum's Monte-Carlo rows are cut into (fewer rows would only add
#: per-call overhead to preprocessing).
MIN_PIECE_ROWS = 64
#: Model rows per onnxruntime call. The full BOSS network needs ~4 MB of activations per row;
#: 32 rows run as fast as 256 (measured: 4.7 vs 5.0 ms/row on 2 cores) at a fifth of the memory.
DEFAULT_BATCH_ROWS = 32


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
                           total, error=_error_text(exc, spec.location))
            return
        yield Prepared(spec, rows, quality, recipe, snr, start, total)
        start += n


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
    from ..science.units import air_to_vacuum

    return dataclasses.replace(spec, wavelength=air_to_vacuum(spec.wavelength),
                               converted_from_air=True)


def _read_and_prepare(item: str | Sequence[Spectrum | ReadFailure], meta: ModelMetadata,
                      draws: int, seed: int, piece_rows: int, times: StageTimes,
                      recipe: str = "reference", air: bool = False,
                      skip: Container[tuple[str, int, int]] = ()) -> Iterator[Prepared | Result]:
    """Everything for one input path (or one in-memory object's records), piece by piece;
    never raises (failures become Result rows). `air`: the wavelengths are in air, convert to
    vacuum. Spectra whose (source, hdu, row) is in `skip` (already saved) are passed over."""
    from ..readers import iter_spectra

    t0 = time.perf_counter()
    records = iter_spectra(item, kind=meta.family_member.spectrum_kind) \
        if isinstance(item, str) else iter(item)
    while True:
        try:
            rec = next(records, None)
        except Exception as exc:  # one bad file must not lose the others  # noqa: BLE001
            times.read += time.perf_counter() - t0
            yield _failure(str(item), _error_text(exc, str(item)))
            return
        t1 = time.perf_counter()
        times.read += t1 - t0
        if rec is None:
            return
        if skip and (rec.source, rec.hdu, rec.row) in skip:
            t0 = time.perf_counter()
            continue
        if isinstance(rec, ReadFailure):
            if recipe != "astra" or rec.spectrum is None:
                yield _failure(rec, rec.error)
                t0 = time.perf_counter()
                continue
            rec = rec.spectrum  # DR19 predicts degenerate spectra too
        try:
            if air and not rec.converted_from_air:
                rec = in_vacuum(rec)
            pieces = prepare_pieces(rec, meta, draws, seed, piece_rows, recipe)
            first = next(pieces)
        except Exception as exc:  # noqa: BLE001
            times.preprocess += time.perf_counter() - t1
            yield _failure(rec, _error_text(exc, rec.location))
        else:
            times.preprocess += time.perf_counter() - t1
            yield first
            t2 = time.perf_counter()
            for piece in pieces:
                times.preprocess += time.perf_counter() - t2
                yield piece
                t2 = time.perf_counter()
        t0 = time.perf_counter()


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
    bits = sum(1 << b for b in meta.family_member.flag_bits)
    flags = int(parameter_flags(labels["teff"], labels["logg"], labels["fe_h"])) & bits
    return Result(source=spec.source, format=spec.format, hdu=spec.hdu, row=spec.row,
                  identifiers=dict(spec.identifiers), labels=labels, result_flags=flags,
                  n_draws=draws, quality_flags=prep.quality,
                  derived={"snr_model": prep.snr_model})


class _Batcher:
    """Packs prepared pieces into model batches of about `batch_rows` rows.

    Returns (first piece, Result) once all of a spectrum's pieces have run.
    """

    def __init__(self, model: BossNetModel, batch_rows: int, draws: int, times: StageTimes):
        self.model, self.batch_rows, self.draws, self.times = model, batch_rows, draws, times
        self.pending: list[Prepared] = []
        self.rows = 0
        # spectra whose first pieces ran: (first piece, outputs so far, or the failure)
        self.partial: dict[int, tuple[Prepared, list[np.ndarray] | Result]] = {}

    def add(self, prep: Prepared) -> list[tuple[Prepared, Result]]:
        if prep.error is not None:
            return self._collect(prep, None)
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
            # Isolate the culprit: rerun one piece at a time so only its spectrum fails.
            outputs = [self._run_one(prep) for prep in batch]
        else:
            bounds = np.cumsum([0] + [p.inputs.shape[0] for p in batch])
            outputs = [physical[a:b] for a, b in itertools.pairwise(bounds)]
        self.times.model += time.perf_counter() - t0
        done = []
        for prep, out in zip(batch, outputs):
            done.extend(self._collect(prep, out))
        return done

    def _collect(self, prep: Prepared, out: np.ndarray | Result | None
                 ) -> list[tuple[Prepared, Result]]:
        """Outputs of one piece; the spectrum's Result when it was its last piece."""
        if isinstance(out, np.ndarray) and prep.total_rows is None:
            return [(prep, result_from_outputs(prep, out, self.model.metadata, self.draws))]
        key = id(prep.spectrum)
        first, acc = self.partial.pop(key, (prep, []))
        if out is None:  # a piece that could not be made
            out = _failure(prep.spectrum, prep.error or "")
        if isinstance(acc, list):
            acc = out if isinstance(out, Result) else [*acc, out]
        if not prep.is_last:
            self.partial[key] = (first, acc)
            return []
        if isinstance(acc, Result):
            return [(first, acc)]
        return [(first, result_from_outputs(first, np.concatenate(acc), self.model.metadata,
                                            self.draws))]

    def _run_one(self, prep: Prepared) -> np.ndarray | Result:
        try:
            return self.model.run_physical(prep.inputs)
        except Exception as exc:  # noqa: BLE001
            return _failure(prep.spectrum, f"{prep.spectrum.location}: model error: "
                                           f"{_error_text(exc)}")


_FILE_DONE = object()
_PRODUCER_DONE = object()


class _ReadAhead:
    """A background thread reading and preparing the inputs, at most `limit` items ahead."""

    def __init__(self, paths: Sequence, meta: ModelMetadata, draws: int, seed: int,
                 piece_rows: int, times: StageTimes, recipe: str = "reference",
                 air: bool = False, skip: Container[tuple[str, int, int]] = (),
                 limit: int | None = None):
        limit = READ_AHEAD_PIECES if limit is None else limit
        self.items: queue.Queue = queue.Queue(maxsize=limit)
        self.stop = threading.Event()
        self.args = (meta, draws, seed, piece_rows, times, recipe, air, skip)
        self.paths = list(paths)
        self.thread = threading.Thread(target=self._produce, name="bossnet-read", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for path in self.paths:
                for item in _read_and_prepare(path, *self.args):
                    if not self._put(item):
                        return
                if not self._put(_FILE_DONE):
                    return
        except BaseException as exc:  # noqa: BLE001  # a bug: hand it to the consumer, no hang
            self._put(exc)
        self._put(_PRODUCER_DONE)

    def __iter__(self) -> Iterator:
        while True:
            item = self.items.get()
            if item is _PRODUCER_DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead (Ctrl-C / SIGTERM): what was read ahead is dropped."""
        self.stop.set()


def iter_results(paths: Sequence[str | Sequence[Spectrum | ReadFailure]], model: BossNetModel, *,
                 draws: int = 20, seed: int = 0, batch_rows: int = DEFAULT_BATCH_ROWS,
                 times: StageTimes | None = None, recipe: str = "reference",
                 on_file_done: Callable[[int], None] | None = None,
                 air: bool = False, skip: Container[tuple[str, int, int]] = ()
                 ) -> Iterator[Result]:
    """Results in input order (file order, then HDU/row order within a file; an item of `paths`
    may also be the records of an in-memory object, in_memory.resolve_items), each yielded as
    soon as it and every spectrum before it are done (within a file too, so a caller can save
    the finished part of a big file). Spectra whose (source, hdu, row) is in `skip` (e.g. the
    rows of a progress file) are read but neither prepared nor run, and give no result."""
    draws = check_draws(draws)
    times = times if times is not None else StageTimes()
    meta = model.metadata
    model.check_batch(batch_rows)  # the load probe at this run's batch (once; remembered)
    batcher = _Batcher(model, batch_rows, draws, times)
    # Spectra wait in `order` (as their first piece) until the model has run all their pieces,
    # so failures that never reach the model still come out in input order.
    order: deque[Result | Prepared] = deque()
    finished: dict[int, Result] = {}

    def drain(done: list[tuple[Prepared, Result]]) -> Iterator[Result]:
        for prep, res in done:
            finished[id(prep.spectrum)] = res
        while order:
            head = order[0]
            if isinstance(head, Result):
                yield head
                order.popleft()
            elif id(head.spectrum) in finished:
                order.popleft()
                yield finished.pop(id(head.spectrum))
            else:
                break

    reader = _ReadAhead(paths, meta, draws, seed, max(batch_rows, MIN_PIECE_ROWS), times, recipe,
                        air, skip)
    try:
        for item in reader:
            if item is _FILE_DONE:
                times.n_files += 1
                if on_file_done:
                    on_file_done(1)
                continue
            if isinstance(item, Result):
                times.n_spectra += 1
                order.append(item)
                yield from drain([])
                continue
            if item.first_row == 0:
                times.n_spectra += 1
                order.append(item)
            yield from drain(batcher.add(item))
    finally:
        # On Ctrl-C / SIGTERM do not wait for the files read ahead: drop them.
        reader.close()
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
        "ENGINE": model.engine,
        "PRECISN": model.precision,
        "NDRAWS": int(draws),
        "SEED": int(seed),
        "BNVERS": __version__,
        "PREPROC": meta.preprocessing.version,
        "RECIPE": recipe,
        "MEMBER": meta.member,
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
    from ..readers.in_memory import resolve_items, split_inputs
    from ..readers.paths import expand_inputs
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
            times: StageTimes | None = None, precision: str = "fp32") -> Table:
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
    session, times = start_session(model, provider, threads, draws, batch_size, times,
                                   precision)
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
    check_kinds(items, session, recipe)
    times = times if times is not None else StageTimes()
    warn_if_demo(session, stacklevel=4)
    results = list(stream_results(items, session, draws=draws, seed=seed, batch_rows=batch_size,
                                  times=times, progress=progress, recipe=recipe, air=air))
    return build_table(results, meta=run_metadata(session, draws, seed, shard, recipe))


def check_kinds(items: Sequence[Any], model: BossNetModel, recipe: str = "reference") -> None:
    """MemberMismatchError for the first file whose spectra the model's member cannot read.

    Looks at file names and headers only (`readers.sniff_kinds`), so a run of APOGEE files
    given to the BOSS model stops before any spectrum is read or any row written. Files that
    cannot be told, and in-memory records (checked one by one in `prepare_spectrum`), are left
    to the readers. The `astra` recipe is DR19's BOSS Net production code; other members run
    the reference recipe only.
    """
    from ..readers import sniff_kinds

    member = model.metadata.family_member
    if recipe not in member.recipes:
        raise MemberMismatchError(
            f"{model.path.name}: --recipe {recipe} is not defined for {member.title} (member "
            f"{member.name}); it takes --recipe {' or '.join(member.recipes)}")
    for path in items:
        if not isinstance(path, str):
            continue
        kinds = sniff_kinds(path)
        if kinds and member.spectrum_kind not in kinds:
            found = " or ".join(KIND_TITLES.get(k, k) for k in sorted(kinds))
            raise MemberMismatchError(
                f"{path}: is {found} but the model {model.path.name} is {member.title} "
                f"(member {member.name}), which reads {member.reads}; use a model of the "
                f"matching member (bossnet-onnx info shows a model's member)")


def _check_run_arguments(draws: int, batch_size: int) -> None:
    check_draws(draws)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def start_session(model: str | os.PathLike | BossNetModel | None, provider: str,
                  threads: int | None, draws: int, batch_size: int,
                  times: StageTimes | None = None,
                  precision: str = "fp32") -> tuple[BossNetModel, StageTimes]:
    """Check run arguments and open (or reuse) the model, timing the cold start."""
    _check_run_arguments(draws, batch_size)
    times = times if times is not None else StageTimes()
    t0 = time.perf_counter()
    session = model if isinstance(model, BossNetModel) else \
        open_model(model, provider, threads, precision)
    times.session = time.perf_counter() - t0
    return session, times


def stream_results(paths: Sequence, session: BossNetModel, *, draws: int, seed: int,
                   batch_rows: int, times: StageTimes, progress: bool = False,
                   recipe: str = "reference", air: bool = False,
                   skip: Container[tuple[str, int, int]] = ()) -> Iterator[Result]:
    """iter_results with an optional rich progress bar over files (on stderr)."""
    if not progress:
        yield from iter_results(paths, session, draws=draws, seed=seed, batch_rows=batch_rows,
                                times=times, recipe=recipe, air=air, skip=skip)
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
                                on_file_done=lambda n: bar.advance(task, n), air=air,
                                skip=skip)

"""An inference session around a BOSS Net ONNX file: engine/provider choice, threads, validation.

onnxruntime silently falls back to the CPU when a requested provider cannot start, so the
providers actually in use are read back from the session and a CUDA request that did not
happen is an error rather than a quiet slowdown. The engine (onnxruntime or OpenVINO, see
engines.py) and the precision (precision.py) are chosen before the session starts; whatever runs,
the same metadata, signature and output checks apply, and the model records what actually ran.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ModelError, ModelMetadataError, NoEngineError, ProviderError, first_line
from .metadata import ModelMetadata

if TYPE_CHECKING:
    import onnxruntime

    from .engine_openvino import OpenVINOSession

__all__ = ["CALL_ROWS", "CUDA_CALL_ROWS", "CUDA_OPTIONS", "BossNetModel", "open_model",
           "available_cpus", "resolve_providers", "provider_entries", "check_outputs",
           "probe_inputs", "PROBE_ATOL", "import_onnxruntime", "NO_ENGINE_MESSAGE"]

ProviderName = Literal["auto", "cpu", "cuda", "openvino"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def available_cpus() -> int:
    """CPUs this process may use (affinity / cgroup aware), not all of the host's."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_limit()
    if quota is not None:
        n = min(n, quota)
    return max(1, n)


def _cgroup_cpu_limit() -> int | None:
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except OSError:
        return None
    if len(text) == 2 and text[0] != "max":
        return max(1, int(float(text[0]) / float(text[1])))
    return None


NO_ENGINE_MESSAGE = ("no ONNX Runtime engine is installed; install one: pip install "
                     "'bossnet-onnx[cpu]' (or 'bossnet-onnx[gpu]' for NVIDIA GPUs, never both)")


def import_onnxruntime() -> Any:
    """The onnxruntime module (from onnxruntime or onnxruntime-gpu, whichever is installed).

    The core package does not depend on either, so that CPU and GPU users each get exactly
    one engine from the `[cpu]` or `[gpu]` extra; without one, this is a one-line error.
    """
    try:
        import onnxruntime
    except ImportError:
        raise NoEngineError(NO_ENGINE_MESSAGE) from None
    return onnxruntime


def resolve_providers(provider: str) -> list[str]:
    """Provider list to ask onnxruntime for; ProviderError if the request cannot be met."""
    ort = import_onnxruntime()

    available = ort.get_available_providers()
    provider = provider.lower()
    if provider == "cpu":
        return [CPU]
    if provider == "cuda":
        if CUDA not in available:
            raise ProviderError(
                f"--provider cuda: this onnxruntime has no CUDA support (available: "
                f"{', '.join(available)}); install the gpu extra (onnxruntime-gpu, and uninstall "
                f"onnxruntime) on a machine with an NVIDIA driver, or use --provider cpu"
            )
        return [CUDA, CPU]
    if provider == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    raise ProviderError(f"unknown provider {provider!r}; expected auto, cpu, cuda or openvino")


#: onnxruntime's CUDA provider options. fp32 means fp32: onnxruntime lets cuBLAS and cuDNN use
#: TF32 (10-bit mantissa products) by default on Ampere and later GPUs, which moved the official
#: network's labels by up to 0.0076 dex in log g and 9.8 K in Teff against the CPU on an H200
#: (docs/performance.md, GPU). With TF32 off only float32 rounding should remain; the
#: gpu-marked test holds CUDA to the CPU within 1e-5 (not yet run on a GPU with this option).
CUDA_OPTIONS = {"use_tf32": "0"}


def provider_entries(providers: list[str]) -> list[str | tuple[str, dict[str, str]]]:
    """`providers` as onnxruntime's InferenceSession takes them, with CUDA_OPTIONS on CUDA."""
    return [(name, dict(CUDA_OPTIONS)) if name == CUDA else name for name in providers]


#: Rows per engine call for graphs with a free batch axis (see BossNetModel.call_rows): 32 rows
#: run as fast per row as 256 on 2 cores (4.7 vs 5.0 ms/row, full network) at an eighth of the
#: activation memory.
CALL_ROWS = 32
#: Rows per engine call on a CUDA device: a GPU needs far more rows per call than a CPU to keep
#: its cores busy (the full network's activations are ~4 MB per row, so 256 rows are ~1 GB, well
#: within any CUDA card that runs onnxruntime-gpu); the stream's rounds are multiples of it.
CUDA_CALL_ROWS = 256

@dataclass
class BossNetModel:
    """A loaded, validated BOSS Net model ready to run batches of preprocessed spectra.

    The engine-level object: `model.Model` (what `bossnet_onnx.load` returns) adds `predict`.
    Usable as a context manager; `close()` releases the onnxruntime session. `run_physical`
    may be called from several threads at once (onnxruntime's `run` is thread-safe).
    """

    path: Path
    metadata: ModelMetadata
    session: onnxruntime.InferenceSession | OpenVINOSession | None
    provider: str
    threads: int
    engine: str = "onnxruntime"
    precision: str = "fp32"
    #: For a reduced-precision model read from its own file (int8), the fp32 model it copies.
    fp32_path: Path | None = None
    #: The accuracy-budget verdict that allowed a reduced precision (None for fp32).
    budget: object = None
    #: How the graph runs on onnxruntime's CPU provider: "conv2d" (the default, 1-D convolutions
    #: as 2-D ones, model/formulation.py) or "plain" (as exported; also every other engine).
    formulation: str = "plain"
    #: Batch sizes the output probe (`check_outputs`) has passed for this model.
    probed: set[int] = field(default_factory=set, repr=False)

    @property
    def fixed_batch(self) -> int | None:
        return self.metadata.batch_size

    @property
    def call_rows(self) -> int:
        """Rows in every engine call: the graph's fixed batch, else CALL_ROWS. Fixed because
        with several threads onnxruntime's result for a row depends on the call's batch size
        (measured on the full network, 2 threads: batch 1 vs 32 differ in 32 of 32 rows, 21 vs
        32 in 3), never on the row's position or its neighbours; a fixed shape makes every
        row's labels independent of how rows are packed (batch size, shards, resume, workers).
        """
        return self.fixed_batch or (CUDA_CALL_ROWS if self.provider == CUDA else CALL_ROWS)

    @property
    def closed(self) -> bool:
        return self.session is None

    def check_batch(self, rows: int) -> None:
        """Probe the outputs at a batch of `rows` (once per size; remembered across starts)."""
        check_outputs(self, rows)

    def close(self) -> None:
        """Release the onnxruntime session; later calls raise ModelError."""
        self.session = None

    def __enter__(self) -> BossNetModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.provider}, {self.threads} threads"
        return (f"<{type(self).__name__} {self.metadata.model_name} ({self.metadata.provenance}) "
                f"from {self.path} [{state}]>")

    def run_normalized(self, x: np.ndarray) -> np.ndarray:
        """Normalised network outputs for model inputs `x` (n x grid), float64.

        Every engine call gets exactly `call_rows` rows (the last chunk zero-padded), so a
        row's result does not depend on how many rows came with it.
        """
        if self.session is None:
            raise ModelError(f"{self.path}: model was closed; load it again "
                             f"(bossnet_onnx.load) to predict")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.metadata.n_pixels:
            raise ModelError(
                f"{self.path}: model input must be (n, {self.metadata.n_pixels}), got {x.shape}"
            )
        if x.shape[0] == 0:
            return np.zeros((0, len(self.metadata.parameter_names)))
        step = self.call_rows
        outs = []
        for start in range(0, x.shape[0], step):
            chunk = x[start:start + step]
            n = chunk.shape[0]
            if n < step:
                chunk = np.concatenate([chunk, np.zeros((step - n, chunk.shape[1]), np.float32)])
            outs.append(self._run_batch(chunk)[:n])
        return np.concatenate(outs)

    def _run_batch(self, chunk: np.ndarray) -> np.ndarray:
        """One onnxruntime call; its output must be one row of every parameter per input row.

        A graph that collapses or reshapes the batch axis would otherwise be sliced into rows
        that belong to no star.
        """
        if self.session is None:
            raise ModelError(f"{self.path}: model was closed; load it again "
                             f"(bossnet_onnx.load) to predict")
        if self.metadata.input_rank == 3:
            chunk = chunk[:, None, :]
        try:
            if self.provider == CUDA:
                out = self._run_bound(chunk, "cuda")
            else:
                (out,) = self.session.run([self.metadata.normalized_output],
                                          {self.metadata.input_name: chunk})
        except Exception as exc:  # onnxruntime's own Fail/RuntimeException types  # noqa: BLE001
            raise ModelError(f"{self.path}: onnxruntime failed running the model on a batch of "
                             f"{chunk.shape[0]} ({first_line(exc, 160)}); the model file is "
                             f"damaged or not a BOSS Net model") from None
        out = np.asarray(out)
        expected = (chunk.shape[0], len(self.metadata.parameter_names))
        if out.shape != expected:
            raise ModelError(
                f"{self.path}: output '{self.metadata.normalized_output}' has shape "
                f"{list(out.shape)} for a batch of {chunk.shape[0]}, expected {list(expected)} "
                f"(batch, parameters); the model is not a BOSS Net model"
            )
        return out.astype(np.float64)

    def _run_bound(self, chunk: np.ndarray, device: str) -> np.ndarray:
        """One call through onnxruntime's IO binding: the input is copied to `device` once and
        only the normalised output is computed there and copied back (on CUDA, `run` would
        copy every requested output and stage the input through pinned host memory per call).
        """
        binding = self.session.io_binding()  # type: ignore[union-attr]
        binding.bind_cpu_input(self.metadata.input_name, np.ascontiguousarray(chunk))
        binding.bind_output(self.metadata.normalized_output, device)
        self.session.run_with_iobinding(binding)  # type: ignore[union-attr]
        return np.asarray(binding.copy_outputs_to_cpu()[0])

    def run_physical(self, x: np.ndarray) -> np.ndarray:
        """Physical labels (x * STD + MEAN) in the model's parameter order."""
        return self.metadata.unnormalize(self.run_normalized(x))


def open_model(path: str | os.PathLike | None = None, provider: str = "auto",
               threads: int | None = None, precision: str = "fp32",
               batch_rows: int | None = None) -> BossNetModel:
    """Load and validate a BOSS Net ONNX model.

    `path` is a file, the name of a model installed by `models pull` (names first), or None for
    the bundled default model (model_files.resolve_model). On the CPU provider the session maps
    the proven ORT-format copy (`ort_cache`); a copy that fails to load is discarded and the
    `.onnx` loaded instead, so only the model file itself can be blamed for a load failure.
    Before it is returned the model passes the metadata table (`metadata.validate_props`), the
    signature check and the output probe (`check_outputs`, at the engine's call size unless
    `batch_rows` is given; remembered with the model's content hash); a refused model leaves no cache
    copy behind.

    The engine (onnxruntime, or OpenVINO: engines.py) runs the same checks. `precision` other
    than fp32 is refused (ProviderError, one line with the figures) unless the model stays within
    the accuracy budget on the held-out set (precision.py).
    """
    from .engines import OPENVINO, resolve_engine
    from .files import resolve_model
    from .precision import int8_sibling, require_within_budget

    path = resolve_model(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; give an exported .onnx file or a model "
                         f"name (boss) with --model")
    engine = resolve_engine(provider, precision)
    precision = precision.lower()
    providers = resolve_providers(provider) if engine != OPENVINO else []
    threads = available_cpus() if threads is None else int(threads)
    if threads < 1:
        raise ModelError(f"threads must be >= 1, got {threads}")
    fp32_path = None
    if precision == "int8":
        fp32_path, path = path, int8_sibling(path)
        if not path.is_file():
            raise ProviderError(
                f"--precision int8: {path} not found; make it with `bossnet-onnx export "
                f"--quantize int8` next to {fp32_path.name}, or use --precision fp32"
            )
    if engine == OPENVINO:
        model = _openvino_model(path, threads, precision, batch_rows)
    else:
        model = _ort_model(path, provider, providers, threads, precision, batch_rows)
    model.engine, model.precision, model.fp32_path = engine, precision, fp32_path
    if precision != "fp32":
        exact = fp32_path or path
        model.budget = require_within_budget(
            model, lambda: open_model(exact, provider="cpu", threads=threads))
    return model


def _openvino_model(path: Path, threads: int, precision: str,
                    batch_rows: int | None = None) -> BossNetModel:
    """The model on OpenVINO, through the same metadata, signature and output checks."""
    from .engine_openvino import open_session

    if _is_onnx_file(path):
        _refuse_huge_metadata(path)
    session = open_session(path, threads, precision)
    metadata = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map,
                                        source=str(path))
    _check_signature(path, session, metadata)
    model = BossNetModel(path=path, metadata=metadata, session=session,
                         provider=session.get_providers()[0], threads=threads,
                         engine="openvino", precision=precision)
    check_outputs(model, batch_rows)
    return model


def _ort_model(path: Path, provider: str, providers: list[str], threads: int,
               precision: str = "fp32", batch_rows: int | None = None) -> BossNetModel:
    """The model on onnxruntime (memory-mapped ORT-format copy on the CPU when possible)."""
    ort = import_onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if providers == [CPU]:
        # The memory pattern is one block planned for a whole run, allocated beside the arena
        # chunks the first run left: without it the arena's freed chunks are reused. Official
        # network, session alone, 2 threads, 32 rows: peak RSS 569 -> 464 MB (spectral form),
        # 494 -> 455 MB (every convolution direct); time per row the same within noise.
        options.enable_mem_pattern = False
    if _is_onnx_file(path):
        _refuse_huge_metadata(path)
    ort_copy = None
    if providers == [CPU] and _is_onnx_file(path):
        from .ort_cache import cached_ort_model

        ort_copy = cached_ort_model(path, threads, CALL_ROWS)
    session = None
    if ort_copy is not None:
        from .ort_cache import discard_ort_copy, mmap_session_options

        mapped = _copy_options(options)
        mmap_session_options(mapped)
        try:
            session = ort.InferenceSession(str(ort_copy), sess_options=mapped, providers=providers)
        except Exception:  # a cache problem is never the model's fault: use the .onnx itself  # noqa: BLE001
            discard_ort_copy(ort_copy)
            ort_copy = None
    formulation = "plain"
    if session is None and providers == [CPU] and _is_onnx_file(path):
        session, formulation = _rewritten_session(path, options, providers)
    if session is None:
        try:
            session = ort.InferenceSession(str(path), sess_options=options,
                                           providers=provider_entries(providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types  # noqa: BLE001
            raise ModelError(f"{path}: not a loadable ONNX model ({first_line(exc, 200)})") from None
    used = session.get_providers()
    if provider.lower() == "cuda" and CUDA not in used:
        raise ProviderError(
            f"--provider cuda: onnxruntime could not start CUDA for {path} (running {used}); "
            f"check the NVIDIA driver and the CUDA and cuDNN libraries your onnxruntime-gpu was "
            f"built for, or use --provider cpu"
        )
    try:
        props = session.get_modelmeta().custom_metadata_map
        metadata = ModelMetadata.from_props(props, source=str(path))
        _check_signature(path, session, metadata)
        model = BossNetModel(path=path, metadata=metadata, session=session,
                             provider=used[0], threads=threads, precision=precision)
        if ort_copy is not None:
            from .ort_cache import ort_copy_formulation

            formulation = ort_copy_formulation(ort_copy)
        model.formulation = formulation
        check_outputs(model, batch_rows)
    except ModelError:
        if ort_copy is not None:  # a refused model leaves no copy behind
            from .ort_cache import discard_ort_copy

            discard_ort_copy(ort_copy)
        raise
    return model


def _rewritten_session(path: Path, options, providers: list[str]) -> tuple[Any, str]:
    """Without an ORT-format copy (cache off, or the model over its bound): (a session of the
    model's CPU form (model/cpu_form.py: spectral and 2-D convolutions), written to a temporary
    file that is removed once loaded, so a run has the same bits with and without the cache;
    its formulation), or (None, "plain") when the setting is `plain`, the rewrite does not
    apply or the form does not load (the caller loads the `.onnx` itself)."""
    import onnxruntime as ort

    from .cpu_form import cpu_form
    from .ort_cache import formulation_setting

    if formulation_setting() == "plain":
        return None, "plain"
    counts: dict = {}
    with cpu_form(path, counts=counts) as rewritten:
        if rewritten is None:
            return None, "plain"
        try:
            session = ort.InferenceSession(str(rewritten), sess_options=options,
                                           providers=providers)
        except Exception:  # an engine that cannot build it: the plain form  # noqa: BLE001
            return None, "plain"
    return session, "spectral" if counts.get("spectral") else "conv2d"


def _refuse_huge_metadata(path: Path) -> None:
    """Refuse an oversized `bossnet.*` entry from the file itself, before onnxruntime parses it,
    and external data that is not a regular file beside the model (a FIFO would hang the load)."""
    from .content import check_external_data, metadata_entry_sizes

    check_external_data(path)
    from .metadata import MAX_ENTRY_CHARS, PREFIX

    for key, size in (metadata_entry_sizes(path) or {}).items():
        if key.startswith(PREFIX) and size > MAX_ENTRY_CHARS:
            raise ModelMetadataError(
                f"{path}: metadata key '{key}' holds {size:,} bytes, more than the "
                f"{MAX_ENTRY_CHARS:,} allowed; the model file is damaged or hostile"
            )


def _copy_options(options):
    import onnxruntime as ort

    copy = ort.SessionOptions()
    for name in ("intra_op_num_threads", "inter_op_num_threads", "graph_optimization_level",
                 "log_severity_level", "enable_mem_pattern"):
        setattr(copy, name, getattr(options, name))
    return copy


#: Probe rows are log-flux levels like real preprocessed spectra (log of 5-50 flux units).
_PROBE_LEVELS = (1.6, 2.5, 3.4)
#: Largest change (normalised units, i.e. training-label standard deviations) of a row's outputs
#: between batch contexts. float reassociation moves them ~1e-6 and dynamic int8 quantization
#: (activation scales per batch) 0.003 on the probe; swapped stars move ~0.1-2.
PROBE_ATOL = 0.01
#: Bump when the probe changes, so that remembered verdicts of the older probe are not reused.
PROBE_VERSION = 2


def probe_inputs(n_pixels: int, rows: int = 3) -> np.ndarray:
    """`rows` (>= 3) distinct, finite, spectrum-like model input rows (seeded, the same every
    load); the first three are the same whatever `rows` is."""
    rng = np.random.default_rng(20240173)
    x = np.linspace(0.0, 1.0, n_pixels)
    levels = list(_PROBE_LEVELS) + [1.6 + 1.8 * ((0.618034 * i) % 1.0)
                                    for i in range(3, max(3, rows))]
    out = [level + 0.3 * np.sin(2 * np.pi * (3 + i) * x) + 0.05 * rng.standard_normal(n_pixels)
           for i, level in enumerate(levels)]
    return np.asarray(out, dtype=np.float32)


def _probe_key(model: BossNetModel, rows: int) -> dict[str, str] | None:
    """What a remembered probe verdict is valid for: the model's bytes (content hash), the
    engine and its version, provider, precision, formulation, batch and the CPU's kernels
    (`ort_cache.cpu_tag`: a verdict passed by AVX-512 kernels says nothing of AVX2 ones); None
    when there is no content hash (caching off), so the probe runs every time."""
    from .ort_cache import cache_dir, content_sha256, cpu_tag
    from .precision import _engine_version

    folder = cache_dir()
    content = content_sha256(model.path, folder) if folder is not None else None
    if content is None:
        return None
    return {"probe": str(PROBE_VERSION), "model_sha256": content, "engine": model.engine,
            "engine_version": _engine_version(model.engine), "provider": model.provider,
            "precision": model.precision, "rows": str(rows), "atol": repr(PROBE_ATOL),
            "formulation": model.formulation, "cpu": cpu_tag()}


def check_outputs(model: BossNetModel, batch_rows: int | None = None) -> None:
    """Refuse a model whose rows depend on their batch neighbours or position, or whose
    outputs for plain spectrum-like input are not finite (checked once per model and batch).

    The probe is a batch of the size every engine call of a run has (`call_rows`, or
    `batch_rows` if given, at least 3; a fixed-batch model its own batch) of distinct
    spectrum-like rows, the same batch rolled by one row and again with its first two rows
    swapped: each row must give the same outputs in all three. A permutation of the rows that
    survives both commutes with a rotation and a transposition, so it is none (even one that
    only permutes batches of 3 or more, or only of the run's size). The same rows in another
    order keep every batch statistic, so dynamic int8 quantization passes; mixing through
    batch statistics is caught by the second row run with the first and then alone. A graph
    that collapses the batch axis fails the shape check of every call.

    A passed probe is remembered with the model's content hash, engine and batch
    (`ort_cache.remembered`), so later starts of the same model skip its forwards.
    """
    fixed = model.fixed_batch
    if fixed == 1:
        return  # one row per call: no neighbours to mix with, no position but 0
    rows = fixed or max(3, int(batch_rows or model.call_rows))
    if rows in model.probed:
        return
    from .ort_cache import remember, remembered

    key = _probe_key(model, rows)
    if key is not None and remembered("probe", key):
        model.probed.add(rows)
        return
    x = probe_inputs(model.metadata.n_pixels, rows)
    swap = np.arange(rows)
    swap[[0, 1]] = [1, 0]
    together = model._run_batch(x)
    rolled = model._run_batch(np.roll(x, 1, axis=0))
    swapped = model._run_batch(x[swap])
    # neighbours: the second row with the first, then alone (a fixed batch: filled with copies)
    pair = x[:2] if not fixed else np.concatenate([x[:2], np.repeat(x[1:2], fixed - 2, axis=0)])
    with_first = model._run_batch(pair)[1]
    alone = model._run_batch(np.repeat(x[1:2], fixed or 1, axis=0))[0]
    if not all(np.all(np.isfinite(a)) for a in (together, rolled, swapped, with_first, alone)):
        raise ModelError(f"{model.path}: returns non-finite outputs for finite spectrum-like "
                         f"input; the model is broken or not a BOSS Net model")
    worst = max(float(np.max(np.abs(np.roll(together, 1, axis=0) - rolled))),
                float(np.max(np.abs(together[swap] - swapped))),
                float(np.max(np.abs(with_first - alone))))
    if worst > PROBE_ATOL:
        raise ModelError(
            f"{model.path}: a spectrum's outputs depend on its position or neighbours in the "
            f"batch (moved by {worst:.3g} in a batch of {rows} rolled by one row, with two rows "
            f"swapped, or run alone); refusing a model that would swap or mix labels between stars"
        )
    model.probed.add(rows)
    if key is not None:
        remember("probe", key)


def _is_onnx_file(path: Path) -> bool:
    """Cheap check that `path` is a protobuf ONNX file worth converting (not text, not .ort)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(1) == b"\x08"  # field 1 (ir_version), varint: every ONNX model
    except OSError:
        return False


def _check_signature(path: Path, session, metadata: ModelMetadata) -> None:
    """Refuse graphs that are not a BOSS Net for this metadata (wrong input/output shapes)."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    inp = inputs.get(metadata.input_name)
    if inp is None or len(inputs) != 1:
        raise ModelError(
            f"{path}: is not a BOSS Net model: expected one input '{metadata.input_name}', "
            f"found {sorted(inputs)}"
        )
    shape = list(inp.shape)
    if shape[-1] != metadata.n_pixels or len(shape) != metadata.input_rank:
        raise ModelError(
            f"{path}: is not a BOSS Net model: input '{inp.name}' has shape {shape}, expected "
            f"[batch, {metadata.n_pixels}] to match its {metadata.n_pixels}-point grid"
        )
    n_params = len(metadata.parameter_names)
    for name in (metadata.normalized_output, metadata.physical_output):
        out = outputs.get(name)
        if out is None:
            raise ModelError(f"{path}: is not a BOSS Net model: output '{name}' is missing "
                             f"(outputs: {sorted(outputs)})")
        if out.shape[-1] != n_params:
            raise ModelError(f"{path}: output '{name}' has shape {out.shape}, expected "
                             f"[batch, {n_params}]")

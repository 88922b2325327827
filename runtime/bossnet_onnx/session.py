"""An inference session around a BOSS Net ONNX file: engine/provider choice, threads, validation.

onnxruntime silently falls back to the CPU when a requested provider cannot start, so the
providers actually in use are read back from the session and a CUDA request that did not
happen is an error rather than a quiet slowdown. The engine (onnxruntime or OpenVINO, see
engines.py) and the precision (precision.py) are chosen before the session starts; whatever runs,
the same metadata and signature checks apply, and the model records what actually ran.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import ModelError, ProviderError
from .metadata import ModelMetadata

if TYPE_CHECKING:
    import onnxruntime

    from .engine_openvino import OpenVINOSession

__all__ = ["BossNetModel", "open_model", "available_cpus", "resolve_providers"]

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


def resolve_providers(provider: str) -> list[str]:
    """Provider list to ask onnxruntime for; ProviderError if the request cannot be met."""
    import onnxruntime as ort

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


@dataclass
class BossNetModel:
    """A loaded, validated BOSS Net model ready to run batches of preprocessed spectra."""

    path: Path
    metadata: ModelMetadata
    session: onnxruntime.InferenceSession | OpenVINOSession
    provider: str
    threads: int
    engine: str = "onnxruntime"
    precision: str = "fp32"
    #: For a reduced-precision model read from its own file (int8), the fp32 model it copies.
    fp32_path: Path | None = None
    #: The accuracy-budget verdict that allowed a reduced precision (None for fp32).
    budget: object = None

    @property
    def fixed_batch(self) -> int | None:
        return self.metadata.batch_size

    def run_normalized(self, x: np.ndarray) -> np.ndarray:
        """Normalised network outputs for model inputs `x` (n x grid), float64.

        A model exported with a fixed batch is fed zero-padded chunks of exactly that size.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.metadata.n_pixels:
            raise ModelError(
                f"{self.path}: model input must be (n, {self.metadata.n_pixels}), got {x.shape}"
            )
        if x.shape[0] == 0:
            return np.zeros((0, len(self.metadata.parameter_names)))
        name_in = self.metadata.input_name
        name_out = self.metadata.normalized_output
        fixed = self.fixed_batch
        outs = []
        step = fixed or x.shape[0]
        for start in range(0, x.shape[0], step):
            chunk = x[start:start + step]
            n = chunk.shape[0]
            if fixed and n < fixed:
                chunk = np.concatenate([chunk, np.zeros((fixed - n, chunk.shape[1]), np.float32)])
            if self.metadata.input_rank == 3:
                chunk = chunk[:, None, :]
            (out,) = self.session.run([name_out], {name_in: chunk})
            outs.append(np.asarray(out[:n], dtype=np.float64))
        return np.concatenate(outs)

    def run_physical(self, x: np.ndarray) -> np.ndarray:
        """Physical labels (x * STD + MEAN) in the model's parameter order."""
        return self.metadata.unnormalize(self.run_normalized(x))


def open_model(path: str | os.PathLike | None = None, provider: str = "auto",
               threads: int | None = None, precision: str = "fp32") -> BossNetModel:
    """Load and validate a BOSS Net ONNX model; `path=None` is the bundled default model.

    `precision` other than fp32 is refused (ProviderError, one line with the figures) unless the
    model stays within the accuracy budget on the held-out set (precision.py).
    """
    from .engines import OPENVINO, resolve_engine
    from .precision import int8_sibling, require_within_budget

    if path is None:
        from .model_files import default_model_path

        path = default_model_path()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; give an exported .onnx with --model")
    engine = resolve_engine(provider, precision)
    precision = precision.lower()
    providers = resolve_providers(provider) if engine != OPENVINO else []
    threads = available_cpus() if threads is None else int(threads)
    if threads < 1:
        raise ModelError(f"--threads must be >= 1, got {threads}")
    fp32_path = None
    if precision == "int8":
        fp32_path, path = path, int8_sibling(path)
        if not path.is_file():
            raise ProviderError(
                f"--precision int8: {path} not found; make it with `bossnet-onnx export "
                f"--quantize int8` next to {fp32_path.name}, or use --precision fp32"
            )
    if engine == OPENVINO:
        from .engine_openvino import open_session

        session = open_session(path, threads, precision)
    else:
        session = _ort_session(path, providers, threads)
    props = session.get_modelmeta().custom_metadata_map
    metadata = ModelMetadata.from_props(props, source=str(path))
    _check_signature(path, session, metadata)
    used = session.get_providers()
    if provider.lower() == "cuda" and CUDA not in used:
        raise ProviderError(
            f"--provider cuda: onnxruntime could not start CUDA for {path} (running {used}); "
            f"check the NVIDIA driver, CUDA 12 and cuDNN libraries, or use --provider cpu"
        )
    model = BossNetModel(path=path, metadata=metadata, session=session, provider=used[0],
                         threads=threads, engine=engine, precision=precision,
                         fp32_path=fp32_path)
    if precision != "fp32":
        exact = fp32_path or path
        model.budget = require_within_budget(
            model, lambda: open_model(exact, provider="cpu", threads=threads))
    return model


def _ort_session(path: Path, providers: list[str], threads: int):
    """An onnxruntime InferenceSession (memory-mapped ORT-format copy on CPU when possible)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    load_from = path
    if providers == [CPU] and _is_onnx_file(path):
        from .ort_cache import cached_ort_model, mmap_session_options

        ort_copy = cached_ort_model(path)
        if ort_copy is not None:
            load_from = ort_copy
            mmap_session_options(options)
    try:
        return ort.InferenceSession(str(load_from), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a loadable ONNX model ({first[:200]})") from None


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

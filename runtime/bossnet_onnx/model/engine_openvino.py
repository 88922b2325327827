"""OpenVINO as a second engine: the same ONNX file, compiled by OpenVINO's CPU plugin.

Why a second engine: on x86 CPUs OpenVINO runs BOSS Net's convolutions faster than onnxruntime's
CPU provider (benchmarks/bench.py measures both side by side) and offers bfloat16 inference on
CPUs with AVX-512 BF16 or AMX. It reads the .onnx file directly (no conversion step, no second
file to verify) and exposes the ONNX metadata_props, so the model describes itself to both
engines the same way.

The session object here has the slice of onnxruntime's InferenceSession interface that
`session.BossNetModel` uses (run, get_inputs/get_outputs, get_modelmeta, get_providers), so every
check and every output path is shared. `openvino` is an optional extra (`pip install
bossnet-onnx[openvino]`): nothing imports it unless this engine is asked for.

Precision: fp32 is forced (the CPU plugin defaults to bf16 on AMX machines, which would make
"fp32" a lie). bf16 is mixed precision: the convolution trunk in bf16, the first two
convolutions and the pooling + linear head in fp32 (`split_for_bf16`); precision.py decides
whether it may be offered for a given network.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, ProviderError, first_line

__all__ = ["ENGINE", "available", "version", "supports_bf16", "open_session", "OpenVINOSession",
           "split_for_bf16"]

ENGINE = "openvino"
DEVICE = "CPU"
#: OpenVINO inference precision per bossnet-onnx precision name.
HINTS = {"fp32": "f32", "bf16": "bf16"}


def available() -> bool:
    """True when the `openvino` package is importable (without importing it)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def version() -> str:
    import openvino as ov

    return str(ov.get_version()).split("-")[0]


def supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (else OpenVINO would refuse or emulate)."""
    import openvino as ov

    caps = ov.Core().get_property(DEVICE, "OPTIMIZATION_CAPABILITIES")
    return "BF16" in [str(c) for c in caps]


@dataclass(frozen=True)
class _Port:
    """Name, shape and type of one model input/output (onnxruntime's NodeArg, minimally)."""

    name: str
    shape: list
    type: str = "tensor(float)"


@dataclass(frozen=True)
class _ModelMeta:
    custom_metadata_map: dict[str, str]
    producer_name: str = ""


class OpenVINOSession:
    """Compiled OpenVINO stage(s) answering the calls BossNetModel makes of an ORT session.

    fp32 is one stage. bf16 is three stages run in a chain, fp32 -> bf16 -> fp32 (see
    `split_for_bf16`); every stage after the first also receives the model input, which the
    exported graph reads again for shapes.
    """

    def __init__(self, stages: list, ports: tuple[list, list], props: dict[str, str],
                 precision: str) -> None:
        self._stages = stages
        # An InferRequest serves one call at a time, unlike onnxruntime's session.run: each
        # thread that predicts gets its own (Model.predict may be called from threads).
        self._local = threading.local()
        self._inputs, self._outputs = ports
        self._props = props
        self.precision = precision

    def get_inputs(self) -> list[_Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Port]:
        return list(self._outputs)

    def get_modelmeta(self) -> _ModelMeta:
        return _ModelMeta(dict(self._props))

    def get_providers(self) -> list[str]:
        return [f"OpenVINO-{DEVICE}"]

    def run(self, output_names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list:
        (x,) = feeds.values()
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = [c.create_infer_request() for c in self._stages]
        hidden = None
        for i, request in enumerate(requests):
            results = request.infer({0: x} if i == 0 else {0: hidden, 1: x}, share_inputs=False)
            if i < len(requests) - 1:
                hidden = np.array(results[0], copy=True)
        by_name = {name: value for port, value in results.items() for name in port.get_names()}
        names = output_names or [p.name for p in self._outputs]
        return [np.array(by_name[n], copy=True) for n in names]


def _shape(port: Any) -> list:
    """Static dims as ints; a dynamic first dim is the batch axis (OpenVINO keeps no dim names,
    and every BOSS Net export names it 'batch', so messages read as onnxruntime's do)."""
    dims = list(port.get_partial_shape())
    return [d.get_length() if d.is_static else ("batch" if i == 0 else None)
            for i, d in enumerate(dims)]


#: Leading convolutions kept in fp32 under bf16 (the input convolution and the first
#: residual convolution); with one, [Fe/H] on the trained demo model misses the budget
#: (max |Δ| 0.061 dex > 0.05), with two it holds (benchmarks/precision.py).
FP32_LEADING_CONVS = 2


def _cut_points(model: Any, leading: int) -> tuple[Any, Any]:
    """Tensors where bf16 starts (input of conv number `leading`) and ends (head input)."""
    ops = model.get_ordered_ops()
    convs = [op for op in ops if op.get_type_name() == "Convolution"]
    heads = [op for op in ops if op.get_type_name() in ("MatMul", "ReduceMean", "AvgPool",
                                                        "AdaptiveAvgPool")]
    if len(convs) <= leading or not heads:
        raise ModelError("the graph is not a BOSS Net trunk + head (cannot place bf16 stages)")
    return convs[leading].input(0).get_source_output(), heads[0].input(0).get_source_output()


def split_for_bf16(core: Any, path: Path, leading: int = FP32_LEADING_CONVS) -> list:
    """Three models: input..conv[leading] fp32, trunk bf16, pooling + linear head fp32.

    Why not one model with fp32-marked nodes: OpenVINO's CPU plugin (2026.4) ignores the
    `disable_fp16_compression` runtime info under a bf16 hint (measured: identical outputs), so
    the precision-sensitive ends are compiled as their own fp32 models instead. Plain bf16
    everywhere misses the budget on its outliers (max |Δ log g| 0.09-0.12 dex, Teff 508 K).
    """
    import openvino as ov
    from openvino import opset13 as ops

    first = core.read_model(str(path))
    start, _ = _cut_points(first, leading)
    stage_a = ov.Model([ops.result(start)], list(first.get_parameters()))
    middle = core.read_model(str(path))
    start, end = _cut_points(middle, leading)
    stage_b = ov.Model([ops.result(end)], [_rewire(start, ops), *middle.get_parameters()])
    last = core.read_model(str(path))
    _, end = _cut_points(last, leading)
    stage_c = ov.Model(list(last.get_results()), [_rewire(end, ops), *last.get_parameters()])
    return [stage_a, stage_b, stage_c]


def _rewire(tensor: Any, ops: Any) -> Any:
    """A new Parameter that replaces `tensor` for all its consumers."""
    param = ops.parameter(tensor.get_partial_shape(), tensor.get_element_type())
    for consumer in list(tensor.get_target_inputs()):
        consumer.replace_source_output(param.output(0))
    return param


def _cache_folder(path: Path) -> Path | None:
    """This model's OpenVINO cache folder (compiled blobs, bf16 stage IRs); None when off.

    Keyed like the ORT-format copies, on the model's content hash (ort_cache.content_sha256:
    the .onnx and its external data, memoised per file identity) plus the OpenVINO version, so
    an edited, replaced or `cp -p`-restored model never meets a stale compiled blob.
    """
    import hashlib

    from .ort_cache import cache_dir, content_sha256

    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    content = content_sha256(path, folder)
    if content is None:
        return None
    ident = f"{content}|{version()}"
    return folder / "openvino" / f"{path.stem}-{hashlib.sha256(ident.encode()).hexdigest()[:24]}"


def _stage_files(core: Any, path: Path, folder: Path) -> list[Path]:
    """The three bf16 stages as OpenVINO IR files in `folder`, written once per model."""
    import openvino as ov

    targets = [folder / f"bf16-stage-{i}.xml" for i in range(3)]
    if all(t.is_file() and t.with_suffix(".bin").is_file() for t in targets):
        return targets
    folder.mkdir(parents=True, exist_ok=True)
    for stage, target in zip(split_for_bf16(core, path), targets):
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.xml")
        ov.save_model(stage, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(tmp, target)
    return targets


def open_session(path: Path, threads: int, precision: str = "fp32",
                 bf16_plan: str = "mixed") -> OpenVINOSession:
    """Compile `path` for the CPU with `threads` threads at `precision` (fp32 or bf16).

    With the cache on, OpenVINO compiles from the file path into a CACHE_DIR keyed on the
    model (a later start maps the compiled blob: ~0.3 s for the full network instead of ~5 s)
    and the metadata is read without parsing the graph (model_content). `bf16_plan="plain"` (bf16
    everywhere) exists for the benchmark's comparison only.
    """
    if not available():
        raise ProviderError(
            "--provider openvino: the openvino package is not installed; install it with "
            "`pip install 'bossnet-onnx[openvino]'`, or use --provider cpu"
        )
    import openvino as ov

    from .content import read_metadata_props

    if precision not in HINTS:
        raise ProviderError(f"--precision {precision}: the openvino engine runs "
                            f"{' or '.join(HINTS)}")
    core = ov.Core()
    if precision == "bf16" and not supports_bf16():
        raise ProviderError(
            f"--precision bf16: this CPU has no bf16 arithmetic (OpenVINO reports "
            f"{core.get_property(DEVICE, 'OPTIMIZATION_CAPABILITIES')}); use --precision fp32"
        )
    props = read_metadata_props(path)
    folder = _cache_folder(path)
    mixed = precision == "bf16" and bf16_plan == "mixed"

    def config(hint: str) -> dict:
        return {"INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": hint,
                "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}

    try:
        sources: list[Any]
        if folder is not None:
            try:
                sources = _stage_files(core, path, folder / "stages") if mixed else [str(path)]
                core.set_property({"CACHE_DIR": str(folder / "compiled")})
            except OSError:  # an unwritable cache: compile in memory, as with the cache off
                folder = None
        if folder is None:
            sources = split_for_bf16(core, path) if mixed else [core.read_model(str(path))]
        hints = ["f32", "bf16", "f32"] if mixed else [HINTS[precision]]
        stages = [core.compile_model(src, DEVICE, config(h)) for src, h in zip(sources, hints)]
    except (ModelError, ProviderError):
        raise
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError/GeneralFailure/...
        raise ModelError(f"{path}: not a loadable ONNX model for OpenVINO "
                         f"({first_line(exc, 200)})") \
            from None
    # A tensor may carry several ONNX names (an Identity folded away): list it under each.
    ports = ([_Port(n, _shape(p)) for p in stages[0].inputs for n in sorted(p.get_names())],
             [_Port(n, _shape(p)) for p in stages[-1].outputs for n in sorted(p.get_names())])
    return OpenVINOSession(stages, ports, props, precision)

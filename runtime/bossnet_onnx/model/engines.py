"""Which inference engine runs a request: onnxruntime (CPU or CUDA) or OpenVINO (CPU).

Why one home: `--provider` names a device or an engine (`auto|cpu|cuda|openvino`) and
`--precision` (`fp32|bf16|int8`) narrows what can serve it; the CLI, the Python API, the
benchmark and the catalogue header must agree on the answer.

`auto` in fp32 is onnxruntime: CUDA when this onnxruntime has it, else its CPU provider. OpenVINO
was measured 1.0-1.5x faster in fp32 on the full BOSS network (benchmarks/bench.py,
docs/performance.md), but it holds 2.8-3.1x the weights in memory (onnxruntime's memory-mapped copy:
1.8x, shared between processes on a node), its cold start reached 1.9 s, and its outputs differ
from `cpu` in the last bits: a default must keep the memory and start-up bounds and give the
same numbers as `--provider cpu`, so OpenVINO is what you ask for (`--provider openvino`), and
what `auto` takes only for `--precision bf16`, which onnxruntime cannot run.
"""
from __future__ import annotations

from ..errors import ProviderError

__all__ = ["ONNXRUNTIME", "OPENVINO", "PROVIDERS", "resolve_engine"]

ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
PROVIDERS = ("auto", "cpu", "cuda", "openvino")


def _cuda_available() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:  # no onnxruntime engine installed (the core package has none)
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_engine(provider: str, precision: str = "fp32") -> str:
    """The engine for `provider` and `precision`; ProviderError when none can serve them."""
    from .engine_openvino import available as openvino_available
    from .precision import PRECISIONS

    provider, precision = provider.lower(), precision.lower()
    if precision not in PRECISIONS:
        raise ProviderError(f"unknown precision {precision!r}; expected "
                            f"{', '.join(PRECISIONS)}")
    if provider not in PROVIDERS:
        raise ProviderError(f"unknown provider {provider!r}; expected {', '.join(PROVIDERS)}")
    if provider == OPENVINO:
        if not openvino_available():
            raise ProviderError(
                "--provider openvino: the openvino package is not installed; install it with "
                "`pip install 'bossnet-onnx[openvino]'`, or use --provider cpu"
            )
        if precision == "int8":
            raise ProviderError("--precision int8 runs on onnxruntime (the int8 copy made by "
                                "`bossnet-onnx export --quantize int8`); use --provider cpu")
        return OPENVINO
    if precision == "bf16":
        if provider == "auto" and openvino_available():
            return OPENVINO
        raise ProviderError(
            f"--precision bf16 runs on the openvino engine (onnxruntime has no bf16 "
            f"convolutions); install it with `pip install 'bossnet-onnx[openvino]'` and use "
            f"--provider openvino{'' if provider == 'auto' else f' instead of {provider}'}"
        )
    return ONNXRUNTIME

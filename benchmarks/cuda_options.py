#!/usr/bin/env python3
"""onnxruntime CUDA provider options and call sizes, side by side, on one model (GPU only).

Why: the CUDA session's options (session.CUDA_OPTIONS) and call size (CUDA_CALL_ROWS) are
choices; this prints what each option costs or gains on this GPU and how far its outputs are from
the CPU provider's on the same rows, so the choice can be checked on any card.

    python benchmarks/cuda_options.py --model /tmp/bench/model.onnx   # e.g. bench.py's export

Per variant: session start, first call (cuDNN's algorithm search happens there), rows/s at
256, 1024 and 2048 rows per call (median of 7 IO-binding calls, as the runtime makes them) and
the max |diff| of the normalised outputs against the CPU provider on 256 rows.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

VARIANTS = [
    ("onnxruntime default (TF32 on)", {}),
    ("use_tf32=0 (the runtime's)", {"use_tf32": "0"}),
    ("use_tf32=0, HEURISTIC search", {"use_tf32": "0", "cudnn_conv_algo_search": "HEURISTIC"}),
    ("use_tf32=0, conv1d as NC1D", {"use_tf32": "0", "cudnn_conv1d_pad_to_nc1d": "1"}),
]
SIZES = (256, 1024, 2048)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", required=True, help="an .onnx BOSS Net model")
    args = parser.parse_args()
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise SystemExit("cuda_options: this onnxruntime has no CUDA provider (install "
                         "onnxruntime-gpu on a machine with an NVIDIA GPU)")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    cpu = ort.InferenceSession(args.model, sess_options=options,
                               providers=["CPUExecutionProvider"])
    inp = cpu.get_inputs()[0]
    outputs = [o.name for o in cpu.get_outputs()]
    out_name = "normalized" if "normalized" in outputs else outputs[0]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((max(SIZES), 3900)) * 0.3 + 6.8).astype(np.float32)

    def shaped(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[:, None, :] if len(inp.shape) == 3 else a)

    reference = cpu.run([out_name], {inp.name: shaped(x[:256])})[0]

    def bound(session, a: np.ndarray) -> np.ndarray:
        binding = session.io_binding()
        binding.bind_cpu_input(inp.name, shaped(a))
        binding.bind_output(out_name, "cuda")
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    print(f"# {args.model}; onnxruntime {ort.__version__}")
    print(f"{'variant':<32}{'start s':>8}{'first s':>8}"
          + "".join(f"{f'{n} r/s':>11}" for n in SIZES) + f"{'max|d| cpu':>12}")
    for label, provider_options in VARIANTS:
        t = time.perf_counter()
        session = ort.InferenceSession(
            args.model, sess_options=options,
            providers=[("CUDAExecutionProvider", provider_options), "CPUExecutionProvider"])
        start = time.perf_counter() - t
        t = time.perf_counter()
        got = bound(session, x[:256])
        first = time.perf_counter() - t
        rates = []
        for n in SIZES:
            bound(session, x[:n])
            times = []
            for _ in range(7):
                t = time.perf_counter()
                bound(session, x[:n])
                times.append(time.perf_counter() - t)
            rates.append(n / float(np.median(times)))
        diff = float(np.max(np.abs(got - reference)))
        print(f"{label:<32}{start:>8.2f}{first:>8.2f}" + "".join(f"{r:>11.0f}" for r in rates)
              + f"{diff:>12.2e}")
        del session


if __name__ == "__main__":
    main()

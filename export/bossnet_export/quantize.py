"""Optional int8 copy of an exported model: dynamic quantization of the big linear layer(s).

Almost all of BOSS Net's 73M weights sit in the first fully connected layer (65536 x 1024, 92%
of them), so quantizing it (weights int8, activations quantized on the fly) shrinks the file
about three times. The price is accuracy, so the copy gets its own parity report in the units
people quote (log g dex, Teff K, [Fe/H] dex, RV km/s) instead of a pass/fail on normalised
values. By default only linear layers holding >= 10% of the head's weights are quantized: on
the full-size random-weights model, quantizing all seven layers saved another 16 MB but doubled
to tripled the error (max RV error 3.4-4.0 vs 1.3-1.4 km/s, two seeds); `layers="all"` does it
anyway.

onnxruntime's dynamic quantizer handles MatMul but not Gemm, which is what the exporter emits
for nn.Linear, so each Gemm is first rewritten as MatMul + Add.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bossnet_onnx.atomic import publish
from bossnet_onnx.errors import ExportError
from bossnet_onnx.model.metadata import ModelMetadata

from .parity import onnx_session, parity_inputs, physical_differences, torch_outputs

__all__ = ["QuantizeReport", "quantize_int8"]


@dataclass
class QuantizeReport:
    """Max abs physical-unit differences of the int8 copy against PyTorch."""

    output: Path
    file_bytes: int
    physical_max_abs: dict[str, float] = field(default_factory=dict)
    n_quantized: int = 0
    n_linear: int = 0

    def summary(self) -> str:
        units = {"logg": "dex", "Teff": "K", "FeH": "dex", "rv": "km/s"}
        diffs = ", ".join(f"{k} {v:.3g} {units.get(k, '')}".rstrip()
                          for k, v in self.physical_max_abs.items())
        return (f"int8: wrote {self.output} ({self.file_bytes / 1e6:.1f} MB, "
                f"{self.n_quantized} of {self.n_linear} linear layers quantized); max |int8 - torch|: {diffs}")


def _gemm_to_matmul(model) -> dict[str, int]:
    """Rewrite Gemm(A, B^T) + C with constant B as MatMul(A, B') + C.

    Returns {new MatMul node name: number of weights} for the rewritten layers.
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    rewritten: dict[str, int] = {}
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in inits
                or attrs.get("transA", 0) != 0 or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            weight = weight.T
        wname = f"{node.input[1]}_for_matmul"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight), wname))
        product = f"{node.output[0]}_matmul"
        nodes.append(helper.make_node("MatMul", [node.input[0], wname],
                                      [product if len(node.input) > 2 else node.output[0]],
                                      name=f"{node.name}_matmul"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]],
                                          name=f"{node.name}_bias"))
        rewritten[f"{node.name}_matmul"] = int(weight.size)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return rewritten


def quantize_int8(source: str | Path, output: str | Path, model, metadata: ModelMetadata, *,
                  layers: str = "large", seed: int = 0) -> QuantizeReport:
    """Write a dynamically int8-quantized copy of `source` with the same metadata.

    `layers`: "large" (linear layers with >= 10% of the head's weights) or "all".
    """
    import onnx
    from onnx import helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, output = Path(source), Path(output)
    if output.resolve() == source.resolve():
        raise ExportError(f"{output}: the int8 copy would overwrite the float model; "
                          f"choose another name")
    if layers not in ("large", "all"):
        raise ExportError(f"int8 layers={layers!r}; expected 'large' or 'all'")
    proto = onnx.load(str(source))
    linear = _gemm_to_matmul(proto)
    total = sum(linear.values())
    chosen = [n for n, size in linear.items() if layers == "all" or size >= 0.1 * total]
    exclude = [n.name for n in proto.graph.node if n.op_type == "MatMul" and n.name not in chosen]
    fd, staged = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".fp32.tmp",
                                  dir=output.parent)
    os.close(fd)
    fd, quantized = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    try:
        onnx.save_model(proto, staged)
        del proto
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing
        try:
            quantize_dynamic(staged, quantized, op_types_to_quantize=["MatMul"],
                             nodes_to_exclude=exclude, weight_type=QuantType.QInt8,
                             per_channel=False)
        finally:
            root.setLevel(level)
        qproto = onnx.load(quantized)
        props = metadata.to_props()
        exporter = json.loads(props["bossnet.exporter"])
        exporter["quantization"] = (f"onnxruntime dynamic int8, {len(chosen)} of "
                                    f"{len(linear)} linear layers")
        props["bossnet.exporter"] = json.dumps(exporter, sort_keys=True)
        props["bossnet.model_name"] = json.dumps(f"{metadata.model_name}-int8")
        del qproto.metadata_props[:]
        helper.set_model_props(qproto, props)
        onnx.checker.check_model(qproto)
        onnx.save_model(qproto, quantized)
        del qproto
        report = QuantizeReport(output=output, file_bytes=0, n_quantized=len(chosen),
                                n_linear=len(linear))
        session = onnx_session(Path(quantized))
        sizes = (metadata.batch_size,) if metadata.batch_size else (1, 8)
        diffs: dict[str, float] = {}
        for rows in parity_inputs(metadata.n_pixels, sizes, seed).values():
            expected = torch_outputs(model, rows) * metadata.stds + metadata.means
            _, physical = session.run(["normalized", "physical"], {"flux": rows})
            for key, value in physical_differences(physical, expected,
                                                   metadata.parameter_names).items():
                diffs[key] = max(diffs.get(key, 0.0), value)
        if not all(np.isfinite(v) for v in diffs.values()):
            raise ExportError(f"{output}: the int8 model produces non-finite values; "
                              f"use the float model")
        report.physical_max_abs = diffs
        publish(quantized, output)
        report.file_bytes = output.stat().st_size
        return report
    finally:
        Path(staged).unlink(missing_ok=True)
        Path(quantized).unlink(missing_ok=True)

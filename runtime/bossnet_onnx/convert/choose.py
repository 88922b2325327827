"""Which converter builds a model: torch's exporter or the torch-free one.

Apart from the converter itself because it imports the export package, which imports this
package's facts: keeping the choice here keeps that import one-way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ExportError
from . import CONVERTER_CHOICES, convert_checkpoint
from .report import ExportReport

__all__ = ["torch_available", "export_checkpoint"]


def torch_available() -> bool:
    """Whether the torch exporter can run here (torch and the export package import)."""
    try:
        import bossnet_export  # noqa: F401
    except ImportError:
        return False
    return True


def export_checkpoint(checkpoint: str | Path, output: str | Path, *, converter: str = "auto",
                      **options: Any) -> ExportReport:
    """The `export` command and `models pull`: torch when asked for, or when installed and
    `converter` is auto; the torch-free converter otherwise. `options` as `export_model`."""
    if converter not in CONVERTER_CHOICES:
        raise ExportError(f"--converter {converter!r}; choose one of "
                          f"{', '.join(CONVERTER_CHOICES)}")
    if converter == "torch" or (converter == "auto" and torch_available()):
        try:
            from bossnet_export import export_model
        except ImportError:
            raise ExportError("--converter torch needs the export extra: pip install "
                              "'bossnet-onnx[cpu,export]' (or use --converter numpy, which "
                              "needs no torch)") from None
        return export_model(checkpoint, output, **options)
    if options.get("quantize"):
        raise ExportError("--quantize needs the torch converter: pip install "
                          "'bossnet-onnx[cpu,export]' and --converter torch")
    options.pop("quantize", None)
    options.pop("quantized_output", None)
    return convert_checkpoint(checkpoint, output, **options)

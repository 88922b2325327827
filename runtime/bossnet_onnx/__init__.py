"""bossnet-onnx: BOSS Net stellar parameters from optical spectra, without torch at run time.

The runtime needs numpy, astropy and onnxruntime only. `bossnet_export` (separate package in the
same distribution, `export` extra) is the only place torch is imported.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "predict", "Spectrum", "ResultFlags", "read_spectra"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import bossnet_onnx` stays cheap (the CLI's --help, readers in Dask workers).
    if name == "predict":
        from .pipeline import predict

        return predict
    if name == "Spectrum":
        from .spectrum import Spectrum

        return Spectrum
    if name == "ResultFlags":
        from .flags import ResultFlags

        return ResultFlags
    if name == "read_spectra":
        from .readers import read_spectra

        return read_spectra
    raise AttributeError(f"module 'bossnet_onnx' has no attribute {name!r}")

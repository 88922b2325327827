"""bossnet-onnx: BOSS Net stellar parameters from optical spectra, without torch at run time.

    import bossnet_onnx
    table = bossnet_onnx.predict("spec-*.fits")           # files, globs, dirs, @lists
    table = bossnet_onnx.predict((wave, flux, ivar))      # arrays, specutils, Table, Spectrum
    with bossnet_onnx.load("boss") as model:              # open once, predict many times
        table = model.predict(my_spectra, draws=20, seed=42)

The runtime needs numpy, astropy and one onnxruntime (the `cpu` or `gpu` extra) only.
`bossnet_export` (separate package in the same distribution, `export` extra) is the only place
torch is imported. Names are imported lazily (PEP 562) so that `import bossnet_onnx` stays
cheap (the CLI's --help, readers in Dask workers); `dir()` and IDEs still see them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it (one place; __getattr__ and __dir__ read it)
_EXPORTS = {
    "predict": "run.mixed",
    "load": "model.loaded",
    "Model": "model.loaded",
    "Spectrum": "spectrum",
    "ResultFlags": "science.flags",
    "read_spectra": "readers",
    "expand_inputs": "readers.paths",
    "air_to_vacuum": "science.units",
    "plot_spectrum": "outputs.plotting",
    "plot_kiel": "outputs.plotting",
    "BossNetError": "errors",
    "DemoModelWarning": "errors",
    "InputWarning": "errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover - for IDEs and type checkers only
    from .errors import BossNetError as BossNetError
    from .errors import DemoModelWarning as DemoModelWarning
    from .errors import InputWarning as InputWarning
    from .model.loaded import Model as Model
    from .model.loaded import load as load
    from .outputs.plotting import plot_kiel as plot_kiel
    from .outputs.plotting import plot_spectrum as plot_spectrum
    from .readers import read_spectra as read_spectra
    from .readers.paths import expand_inputs as expand_inputs
    from .run.mixed import predict as predict
    from .science.flags import ResultFlags as ResultFlags
    from .science.units import air_to_vacuum as air_to_vacuum
    from .spectrum import Spectrum as Spectrum


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bossnet_onnx' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

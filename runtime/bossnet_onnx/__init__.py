"""bossnet-onnx: BOSS Net stellar parameters from optical spectra, without torch at run time.

    import bossnet_onnx
    table = bossnet_onnx.predict("spec-*.fits")           # files, globs, dirs, @lists
    table = bossnet_onnx.predict((wave, flux, ivar))      # arrays, specutils, Table, Spectrum
    with bossnet_onnx.load("boss") as model:              # open once, predict many times
        table = model.predict(my_spectra, draws=20, seed=42)

The runtime needs numpy, astropy and one onnxruntime (the `cpu` or `gpu` extra) only.
`bossnet_export` (separate package in the same distribution, `export` extra) is the only place
torch is imported. The names below are the public API; the subpackages (model, science,
readers, outputs, run) are its implementation and may change between versions. Names are
imported lazily (PEP 562) so that `import bossnet_onnx` stays cheap (the CLI's --help, readers
in Dask workers); `dir()` lists exactly the public names, and IDEs see them too.
"""
import typing as _typing

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

if _typing.TYPE_CHECKING:  # pragma: no cover - for IDEs and type checkers only
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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bossnet_onnx' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    """The public API only: no imported helpers, no internal subpackages (help() reads this)."""
    return sorted(__all__)

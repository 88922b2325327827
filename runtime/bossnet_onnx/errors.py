"""One small error hierarchy for the whole package.

Every message says what failed, where (file, HDU, row), what was expected and how to fix it,
so that the CLI can print a single line and a batch run can store it in the `error` column.
"""
from __future__ import annotations

__all__ = [
    "BossNetError",
    "OptionError",
    "InputError",
    "UnknownFormatError",
    "SpectrumError",
    "MemberMismatchError",
    "ModelError",
    "ModelMetadataError",
    "ProviderError",
    "OutputError",
    "OutputPathError",
    "OutputLockedError",
    "ExportError",
    "CheckpointError",
    "ParityError",
    "BossNetWarning",
    "DemoModelWarning",
    "InputWarning",
    "NoEngineError",
    "RegistryError",
    "DownloadError",
    "VerificationError",
    "PullError",
    "first_line",
]


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (its type name if it has none).

    Third-party errors (astropy, onnxruntime, torch) often span many lines; every message of
    ours is one line, so this is how a foreign error is quoted inside one of ours.
    """
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]


class BossNetError(Exception):
    """Base class: anything the CLI reports as one line and exit status 1."""


class OptionError(BossNetError, ValueError):
    """A run option out of range (run/options.py). `option` is its CLI spelling (--draws) and
    `usage` the wording of the CLI's usage error (exit 2); str() is the API's message."""

    def __init__(self, message: str, *, option: str, usage: str) -> None:
        super().__init__(message)
        self.option, self.usage = option, usage


class InputError(BossNetError):
    """An input path cannot be used: missing, unreadable, not a spectrum file."""


class UnknownFormatError(InputError):
    """No registered reader recognises the file."""


class SpectrumError(InputError):
    """A spectrum was read but its content cannot be used (no coverage, all NaN, ...)."""


class MemberMismatchError(InputError):
    """A spectrum of one kind (e.g. APOGEE) given to a model of another family member."""


class ModelError(BossNetError):
    """The ONNX model file is missing, corrupted or not a BOSS Net model."""


class ModelMetadataError(ModelError):
    """The model's metadata_props lack a required key or hold an inconsistent value."""


class ProviderError(BossNetError):
    """The requested onnxruntime execution provider is not available."""


class NoEngineError(ProviderError):
    """No onnxruntime package is installed (the engine-free core without [cpu] or [gpu])."""


class OutputError(BossNetError):
    """The catalogue cannot be written (bad suffix, unwritable place, merge conflicts)."""


class OutputPathError(OutputError):
    """The output path cannot be used (exists without overwrite, directory, unwritable place,
    unknown type, missing writer package). Raised before any work; the CLI exits 2 (usage)."""


class OutputLockedError(OutputError):
    """Another run holds the output's lock file; the message names it (pid, host, start)."""


class ExportError(BossNetError):
    """Export-side failure (checkpoint, tracing, parity). Raised only by bossnet_export."""


class CheckpointError(ExportError):
    """A checkpoint cannot be loaded: missing chunks, corrupted bytes, wrong keys."""


class ParityError(ExportError):
    """The exported ONNX graph does not reproduce PyTorch within tolerance."""


class BossNetWarning(UserWarning):
    """Base class of the warnings bossnet-onnx issues (the CLI prints each as one line)."""


class DemoModelWarning(BossNetWarning):
    """The model is not an export of the published weights: its labels are not science."""


class InputWarning(BossNetWarning):
    """An input was read with a fallback the user should know about (e.g. no ivar column)."""


class RegistryError(BossNetError):
    """The model registry (built-in or BOSSNET_ONNX_REGISTRY) is unreadable, or a name is unknown."""


class DownloadError(BossNetError):
    """A published file could not be fetched: server down, HTTP error, timeout, disk full."""


class VerificationError(DownloadError):
    """A fetched file's git blob id differs from the registry's: it is not the published file."""


class PullError(BossNetError):
    """`models pull` stopped after the files were fetched: no export extra, locked, unsupported."""

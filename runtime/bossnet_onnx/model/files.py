"""Where the bundled default model lives, in a checkout and in an installed wheel alike.

The model ships as package data of `bossnet_onnx_models` (the repository's `models/` folder), so
it is located through importlib.resources rather than a path relative to this file: a wheel
installs `bossnet_onnx_models` next to `bossnet_onnx`, not inside a checkout.
`default.json` names the default file; without it, the only .onnx file there is used.
"""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from ..errors import BossNetError, ModelError
from ..hashing import file_sha256

__all__ = ["MODELS_PACKAGE", "default_model_path", "bundled_models", "resolve_model"]

MODELS_PACKAGE = "bossnet_onnx_models"
POINTER = "default.json"


def _folder() -> Path:
    try:
        root = resources.files(MODELS_PACKAGE)
    except ModuleNotFoundError:
        raise ModelError(
            f"the bundled model package '{MODELS_PACKAGE}' is not installed; reinstall "
            f"bossnet-onnx or give an exported .onnx with --model"
        ) from None
    # The package is installed as plain files (no zip), so this is a real folder.
    return Path(str(root))


def bundled_models() -> list[Path]:
    """All .onnx files shipped with the package, sorted by name."""
    return sorted(p for p in _folder().glob("*.onnx") if p.is_file())


def default_model_path() -> Path:
    """Path of the bundled default model (a demonstration model trained on synthetic spectra).

    The file's sha256 is checked against the one recorded in default.json (the model card), so
    a damaged or swapped bundled model is refused instead of silently giving other numbers.
    """
    folder = _folder()
    pointer = folder / POINTER
    if pointer.is_file():
        try:
            card = json.loads(pointer.read_text(encoding="utf-8"))
            name = card["model"]
        except (ValueError, KeyError, TypeError):
            raise ModelError(
                f"{pointer}: expected JSON with a 'model' key naming the default .onnx file; "
                f"reinstall bossnet-onnx"
            ) from None
        path = folder / str(name)
        if not path.is_file():
            raise ModelError(
                f"{pointer}: names '{name}', which is not in {folder}; reinstall bossnet-onnx "
                f"or give an exported .onnx with --model"
            )
        expected = card.get("sha256")
        if expected:
            actual = file_sha256(path)
            if actual != expected:
                raise ModelError(
                    f"{path}: sha256 {actual[:16]}... does not match the model card "
                    f"({pointer.name}: {str(expected)[:16]}...); the file is damaged or was "
                    f"replaced: reinstall bossnet-onnx"
                )
        return path
    found = bundled_models()
    if len(found) != 1:
        what = "no .onnx file" if not found else f"{len(found)} .onnx files and no {POINTER}"
        raise ModelError(
            f"{folder}: {what}; cannot choose a default model: give one with --model"
        )
    return found[0]


def _looks_like_name(spec: str) -> bool:
    """A bare word such as `boss`: no folder part and no file suffix."""
    return ("/" not in spec and os.sep not in spec and "." not in spec and bool(spec)
            and spec not in (".", ".."))


def resolve_model(spec: str | os.PathLike | None) -> Path:
    """The model file a `--model` value means: an installed name first, then a path.

    None is the bundled demo model. A bare word that is neither an installed model nor an
    existing file is an error listing the installed and published names and the pull command.
    """
    if spec is None:
        return default_model_path()
    text = os.fspath(spec)
    if isinstance(spec, str) and _looks_like_name(text):
        from .home import installed_models

        installed = installed_models()
        if text in installed:
            return installed[text]
        if not Path(text).exists():
            from .registry import load_registry

            try:
                published = load_registry().names
            except BossNetError:
                published = []
            how = (f"`bossnet-onnx models pull {text}`" if text in published
                   else "`bossnet-onnx models pull NAME`")
            raise ModelError(
                f"--model {text}: no installed model and no file of that name; installed: "
                f"{', '.join(sorted(installed)) or 'none'}; published: "
                f"{', '.join(published) or 'none'}; install one with {how}, or give the path "
                f"of an .onnx file"
            )
    return Path(text)

"""The model as onnxruntime's CPU kernels run it best: the spectral form of its wide
convolutions (spectral.py), then every other 1-D convolution as a 2-D one (formulation.py)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .formulation import conv1d_as_conv2d
from .spectral import spectral_convolutions, spectral_setting

__all__ = ["cpu_form"]


@contextlib.contextmanager
def cpu_form(src: str | os.PathLike, folder: str | os.PathLike | None = None,
             spectral: bool | None = None, counts: dict | None = None,
             ) -> Iterator[Path | None]:
    """`src`'s CPU form in a temporary file of `folder` (the system's temporary folder when
    None), removed on exit: its wide convolutions in the spectral form (spectral.py; unless
    `spectral` is False, or None and `$BOSSNET_ONNX_SPECTRAL` is 0), then every other 1-D
    convolution as a 2-D one (`conv1d_as_conv2d`). None when neither rewrite applies or no
    temporary file can be made there (a full or missing folder: the caller keeps the plain
    form). `counts`, if given, receives how many convolutions each rewrite took
    ({"spectral": n, "conv2d": m})."""
    if spectral is None:
        spectral = spectral_setting()
    made: list[Path] = []
    try:
        for _ in range(2):
            fd, name = tempfile.mkstemp(prefix=".conv2d.", suffix=".onnx.tmp", dir=folder)
            os.close(fd)
            made.append(Path(name))
    except OSError:
        for path in made:
            path.unlink(missing_ok=True)
        yield None
        return
    first, path = made
    try:
        n_spectral = spectral_convolutions(src, first) if spectral else 0
        n_conv2d = conv1d_as_conv2d(first if n_spectral else src, path)
        if counts is not None:
            counts.update(spectral=n_spectral, conv2d=n_conv2d)
        if n_conv2d:
            first.unlink(missing_ok=True)
            yield path
        else:
            yield first if n_spectral else None
    finally:
        for leftover in made:
            leftover.unlink(missing_ok=True)

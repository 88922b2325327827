"""Spectra already in memory: what `predict` accepts besides paths, turned into Spectrum records.

Accepted, each converted without touching the disk:

- `bossnet_onnx.Spectrum` records, as they are;
- specutils `Spectrum` / `Spectrum1D` (one or many spectra sharing a spectral axis): the axis is
  converted to Angstrom (any length, frequency or wavenumber unit), any uncertainty type to
  inverse variance, and masked pixels (specutils: True = invalid) are left out of the fit
  (flux NaN, ivar 0) and kept in `Spectrum.mask` for the plots;
- astropy `HDUList` (what `fits.open` and astroquery's `SDSS.get_spectra` give): read by the
  reader that would read it as a file (readers.READERS, the same `identify` order), so its rows
  are the file's rows; named after the file it was opened from, else `<HDUList k>`;
- one HDU of such a list: a table (`hdul[1]`, an SDSS COADD or any spectrum table) or an image
  (a 1-D or 1 x N image with CRVAL1/CDELT1), read as if it were the file's only extension;
- specutils `SpectrumList`: each of its spectra, as below;
- astropy `Table` / `QTable` with wavelength, flux and ivar-or-error columns, read by the same
  code as table files (`readers.generic_table.spectra_from_table`), units honoured;
- a `(wavelength, flux, ivar)` tuple of arrays (or Quantities): 1-D flux for one spectrum, 2-D
  (n_spectra x n_pixels) for many sharing one wavelength grid; ivar may be None (no-ivar
  fallback with an InputWarning).

Anything else is a TypeError naming its type and the accepted ones, raised before any work:
objects are never iterated blindly (a specutils spectrum is iterable pixel by pixel).
In-memory spectra are named `<kind k>` after their position k in the inputs (the `source`
column), with HDU -1 and the row within the object.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import InputError, InputWarning
from ..science.units import to_angstrom
from ..spectrum import ReadFailure, Spectrum

__all__ = ["ACCEPTED_INPUTS", "split_inputs", "as_records", "is_in_memory", "InputItem"]

ACCEPTED_INPUTS = ("a path (str or os.PathLike: file, glob, directory or @list), "
                   "bossnet_onnx.Spectrum, astropy HDUList or one of its HDUs, specutils "
                   "Spectrum/Spectrum1D/SpectrumList, astropy Table/QTable, "
                   "or a (wavelength, flux, ivar) tuple of arrays; or a list of these")

#: What the pipeline iterates over: a path to read, or records already in memory.
InputItem = str | tuple

FORMAT = "memory"


def _is_specutils(obj: Any) -> bool:
    return any(cls.__module__.split(".")[0] == "specutils"
               and cls.__name__ in ("Spectrum", "Spectrum1D") for cls in type(obj).__mro__)


def _is_spectrum_list(obj: Any) -> bool:
    return any(cls.__module__.split(".")[0] == "specutils" and cls.__name__ == "SpectrumList"
               for cls in type(obj).__mro__)


def _is_fits(obj: Any) -> bool:
    """An HDUList or a single HDU (checked before `_is_table`: neither is an astropy Table)."""
    from astropy.io import fits

    return isinstance(obj, (fits.HDUList, fits.PrimaryHDU, fits.ImageHDU, fits.BinTableHDU,
                            fits.TableHDU))


def _is_table(obj: Any) -> bool:
    from astropy.table import Table

    return isinstance(obj, Table)


def _is_arrays(obj: Any) -> bool:
    """A (wavelength, flux, ivar) tuple: three elements, none of them a path or a record."""
    if not isinstance(obj, tuple) or len(obj) != 3:
        return False
    if isinstance(obj[0], (str, os.PathLike, Spectrum, ReadFailure)):
        return False
    return all(x is None or isinstance(x, (np.ndarray, list)) or hasattr(x, "__array__")
               for x in obj) and obj[0] is not None and obj[1] is not None


def is_in_memory(obj: Any) -> bool:
    """True for the in-memory kinds listed in the module docstring."""
    return (isinstance(obj, (Spectrum, ReadFailure)) or _is_specutils(obj) or _is_table(obj)
            or _is_arrays(obj) or _is_fits(obj) or _is_spectrum_list(obj))


def _type_error(obj: Any) -> TypeError:
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}".replace("builtins.", "")
    hint = ""
    if isinstance(obj, (list, np.ndarray)) or hasattr(obj, "__array__"):
        hint = "; pass arrays as a tuple (wavelength, flux, ivar)"
    return TypeError(f"cannot predict from an object of type {name}; expected {ACCEPTED_INPUTS}"
                     f"{hint}")


def split_inputs(inputs: Any) -> list[Any]:
    """The top-level items of `inputs` (one object or a list/tuple/iterator of them), each
    checked to be a path or an in-memory kind; TypeError at once otherwise."""
    if isinstance(inputs, (str, os.PathLike)) or is_in_memory(inputs):
        items = [inputs]
    elif isinstance(inputs, (list, tuple, Iterator)):
        items = list(inputs)
    else:
        raise _type_error(inputs)
    for item in items:
        if not (isinstance(item, (str, os.PathLike)) or is_in_memory(item)):
            raise _type_error(item)
    return items


def _flux_unit(values: Any) -> str:
    unit = getattr(values, "unit", None)
    return "" if unit is None else str(unit)


def _values(values: Any) -> np.ndarray:
    return np.asarray(getattr(values, "value", values), dtype=np.float64)


def _rows(wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray | None,
          source: str, flux_unit: str) -> list[Spectrum | ReadFailure]:
    """Records for flux of shape (n_pixels,) or (n_spectra, n_pixels) on one wavelength grid."""
    from ._checks import Origin, checked

    single = flux.ndim == 1
    flux2, ivar2 = np.atleast_2d(flux), np.atleast_2d(ivar)
    mask2 = None if mask is None else np.atleast_2d(mask)
    wave2 = np.atleast_2d(wave)
    if wave2.shape[0] == 1 and flux2.shape[0] > 1:
        wave2 = np.broadcast_to(wave2, flux2.shape)
    out: list[Spectrum | ReadFailure] = []
    for k in range(flux2.shape[0]):
        row = -1 if single else k
        w, f, i = wave2[k], flux2[k], ivar2[k]
        m = None if mask2 is None else mask2[k]
        if w.size > 1 and w[0] > w[-1]:  # a frequency axis runs backwards in wavelength
            w, f, i = w[::-1], f[::-1], i[::-1]
            m = None if m is None else m[::-1]
        place = source if single else f"{source}[row {k}]"
        out.append(checked(np.array(w, dtype=np.float64), np.array(f, dtype=np.float32),
                           np.array(i, dtype=np.float32),
                           Origin(source, FORMAT, -1, row),
                           mask=None if m is None else np.array(m, dtype=bool),
                           place=place, flux_unit=flux_unit))
    return out


def _shape_error(source: str, shapes: dict[str, tuple]) -> InputError:
    text = ", ".join(f"{k} {v}" for k, v in shapes.items())
    return InputError(f"{source}: array shapes do not fit ({text}); expected wavelength "
                      f"(n_pixels,), flux and ivar (n_pixels,) or (n_spectra, n_pixels)")


def _from_arrays(obj: tuple, source: str) -> list[Spectrum | ReadFailure]:
    wave_in, flux_in, ivar_in = obj
    wave = to_angstrom(_values(wave_in), getattr(wave_in, "unit", None),
                       where=f"{source} wavelength")
    flux = _values(flux_in)
    if ivar_in is None:
        warnings.warn(f"{source}: no ivar given; sigma falls back to 0.1 x the median flux "
                      f"(quality_flags bit 1 NO_VALID_IVAR), so e_* are not measurement errors",
                      InputWarning, stacklevel=4)
        ivar = np.zeros_like(flux)
    else:
        ivar = _values(ivar_in)
    shapes = {"wavelength": wave.shape, "flux": flux.shape, "ivar": ivar.shape}
    if (flux.ndim not in (1, 2) or ivar.shape != flux.shape or wave.ndim not in (1, 2)
            or wave.shape[-1] != flux.shape[-1]
            or (wave.ndim == 2 and wave.shape != flux.shape)):
        raise _shape_error(source, shapes)
    return _rows(wave, flux, ivar, None, source, _flux_unit(flux_in))


def _from_specutils(obj: Any, source: str) -> list[Spectrum | ReadFailure]:
    from astropy import units as u
    from astropy.nddata import InverseVariance

    axis = obj.spectral_axis
    wave = to_angstrom(np.asarray(axis.value), axis.unit, where=f"{source} spectral axis")
    axis_index = getattr(obj, "spectral_axis_index", obj.flux.ndim - 1)
    flux = np.moveaxis(np.asarray(obj.flux.value, dtype=np.float64), axis_index, -1)
    if obj.uncertainty is None:
        warnings.warn(f"{source}: specutils spectrum without uncertainty; sigma falls back to "
                      f"0.1 x the median flux (quality_flags bit 1 NO_VALID_IVAR)", InputWarning,
                      stacklevel=4)
        ivar = np.zeros_like(flux)
    else:
        try:
            # already ivar: as it is (a round trip through variance changes the last bits)
            inverse = (obj.uncertainty if isinstance(obj.uncertainty, InverseVariance)
                       else obj.uncertainty.represent_as(InverseVariance))
        except (TypeError, ValueError, u.UnitsError) as exc:
            raise InputError(f"{source}: cannot convert its {type(obj.uncertainty).__name__} "
                             f"to inverse variance ({exc})") from None
        ivar = np.moveaxis(np.asarray(inverse.array, dtype=np.float64), axis_index, -1)
        ivar = np.broadcast_to(ivar, flux.shape)
    mask = None
    if obj.mask is not None:
        mask = np.broadcast_to(np.moveaxis(np.asarray(obj.mask, dtype=bool), axis_index, -1),
                               flux.shape)
        flux = np.where(mask, np.nan, flux)  # specutils: True = invalid, left out of the fit
        ivar = np.where(mask, 0.0, ivar)
    if flux.ndim > 2:
        flux, ivar = flux.reshape(-1, flux.shape[-1]), ivar.reshape(-1, flux.shape[-1])
        mask = None if mask is None else mask.reshape(-1, mask.shape[-1])
    return _rows(wave, flux, ivar, mask, source, str(obj.flux.unit))


def _from_fits(obj: Any, position: int) -> list[Spectrum | ReadFailure]:
    """The records the file reader gives for an HDUList (a lone HDU: behind an empty primary
    HDU, or as the primary when it is an image), so an HDUList reads exactly as its file."""
    from astropy.io import fits

    from ..errors import UnknownFormatError
    from . import READERS, _read_with

    if isinstance(obj, fits.HDUList):
        hdul = obj
        name = obj.filename() or f"<HDUList {position}>"
    else:
        kind = type(obj).__name__
        if isinstance(obj, (fits.PrimaryHDU, fits.ImageHDU)):
            hdul = fits.HDUList([fits.PrimaryHDU(data=obj.data, header=obj.header)])
        else:
            hdul = fits.HDUList([fits.PrimaryHDU(), obj])
        name = f"<{kind} {position}>"
    for reader in READERS:
        if reader.identify(name, hdul):
            return list(_read_with(reader, name, hdul, None))
    tried = ", ".join(r.NAME for r in READERS)
    raise UnknownFormatError(f"{name}: FITS data in no known spectrum layout (tried {tried}); "
                             f"pass the HDUList of a spectrum file, its spectrum table or a 1-D "
                             f"image with CRVAL1/CDELT1")


def as_records(obj: Any, position: int) -> tuple:
    """The Spectrum/ReadFailure records of one in-memory object (see the module docstring)."""
    if isinstance(obj, (Spectrum, ReadFailure)):
        return (obj,)
    if _is_fits(obj):
        return tuple(_from_fits(obj, position))
    if _is_spectrum_list(obj):
        return tuple(record for k, spectrum in enumerate(obj)
                     for record in _from_specutils(spectrum, f"<SpectrumList {position}>[{k}]"))
    if _is_specutils(obj):
        return tuple(_from_specutils(obj, f"<{type(obj).__name__} {position}>"))
    if _is_table(obj):
        from .generic_table import spectra_from_table

        return tuple(spectra_from_table(obj, path=f"<{type(obj).__name__} {position}>",
                                        index=-1, fmt=FORMAT, whole_file=True))
    if _is_arrays(obj):
        return tuple(_from_arrays(obj, f"<arrays {position}>"))
    raise _type_error(obj)


def resolve_items(items: Iterable[Any]) -> list[InputItem]:
    """Paths kept as text, in-memory objects converted to tuples of records, in input order."""
    out: list[InputItem] = []
    for position, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            out.append(os.fspath(item))
        else:
            out.append(as_records(item, position))
    return out

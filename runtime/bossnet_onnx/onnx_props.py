"""metadata_props of an ONNX file without parsing its graph (and without the onnx package).

Why: an engine that compiles from a cache (OpenVINO) never needs to parse the 290 MB protobuf
of the full BOSS network, but the runtime still has to read the model's self-description to
check it. A ModelProto is a sequence of tagged fields; metadata_props (field 14) are short
key/value messages that can be collected while the graph (field 7) is skipped with one seek.
"""
from __future__ import annotations

import os
from typing import BinaryIO

from .errors import ModelError

__all__ = ["read_metadata_props"]

METADATA_PROPS = 14
_KEY, _VALUE = 1, 2


def _varint(fh: BinaryIO) -> int | None:
    shift = result = 0
    while True:
        byte = fh.read(1)
        if not byte:
            return None
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _entry(data: bytes) -> tuple[str, str]:
    import io

    fh = io.BytesIO(data)
    found = {_KEY: "", _VALUE: ""}
    while (tag := _varint(fh)) is not None:
        field, wire = tag >> 3, tag & 7
        if wire != 2:
            raise ValueError(f"unexpected wire type {wire} in a metadata entry")
        length = _varint(fh) or 0
        raw = fh.read(length)
        if field in found:
            found[field] = raw.decode("utf-8")
    return found[_KEY], found[_VALUE]


def read_metadata_props(path: str | os.PathLike) -> dict[str, str]:
    """The file's metadata_props as a dict; ModelError if it is not a readable ONNX protobuf."""
    props: dict[str, str] = {}
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as fh:
            while (tag := _varint(fh)) is not None:
                field, wire = tag >> 3, tag & 7
                if wire == 0:
                    _varint(fh)
                elif wire == 1:
                    fh.seek(8, os.SEEK_CUR)
                elif wire == 5:
                    fh.seek(4, os.SEEK_CUR)
                elif wire == 2:
                    length = _varint(fh)
                    if length is None or fh.tell() + length > size:
                        raise ValueError("a field runs past the end of the file")
                    if field == METADATA_PROPS:
                        key, value = _entry(fh.read(length))
                        props[key] = value
                    else:
                        fh.seek(length, os.SEEK_CUR)
                else:
                    raise ValueError(f"wire type {wire} is not used by ONNX")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from None
    return props

"""Text that cannot break a terminal, a log line or a catalogue format.

File names and survey identifiers are user data: a file name may hold a newline (which would
forge a second `failed:` line on stderr), an escape sequence (which would restyle a terminal),
bytes that are not UTF-8 (Python keeps them as lone surrogates, which no encoder accepts) or
rich markup. Every printed path and every stored text value goes through this module, so the
rules live in one place:

- `printable`: control characters (C0, DEL, C1), lone surrogates and bidirectional overrides
  become Python-style escapes (`\\n`, `\\x1b`, `\\udcff`, `\\u202e`); everything else, accents
  included, is kept.
- `ascii_text`: `printable`, then every non-ASCII character as a Python escape (`é` -> `\\xe9`).
  Used for FITS, whose standard allows only ASCII 32-126 in string columns and header values.
"""
from __future__ import annotations

import reprlib
import unicodedata

__all__ = ["printable", "ascii_text", "shown"]

#: Longest quotation of a value in an error text: a hostile file (a YAML alias bomb expands to
#: gigabytes of repr) must still give a one-line message of a few hundred bytes.
SHOWN_LIMIT = 120
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, SHOWN_LIMIT, SHOWN_LIMIT
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6

_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    code = ord(ch)
    return (code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF
            or ch in _BIDI_CONTROLS or unicodedata.category(ch) == "Zl"
            or unicodedata.category(ch) == "Zp")


def printable(text: object) -> str:
    """`text` as one line with no control, surrogate or bidi-override characters."""
    text = str(text)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def ascii_text(text: object) -> str:
    """`printable(text)` with every non-ASCII character escaped (FITS strings are ASCII)."""
    return printable(text).encode("ascii", "backslashreplace").decode("ascii")


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """A bounded, printable repr of `value` for an error text: nested containers are cut at a
    few items and levels before anything is expanded, the result at `limit` characters."""
    text = printable(_REPR.repr(value))
    return text if len(text) <= limit else text[:limit - 3] + "..."

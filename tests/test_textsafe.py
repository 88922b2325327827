"""Printed and stored text: no control characters, surrogates or bidi overrides; FITS ASCII."""
from __future__ import annotations

from bossnet_onnx.textsafe import ascii_text, printable


def test_printable_escapes_what_could_forge_or_restyle_a_line():
    assert printable("a.fits\nfailed: b.fits") == "a.fits\\nfailed: b.fits"
    assert printable("x\x1b[31mred\x1b[0m") == "x\\x1b[31mred\\x1b[0m"
    assert printable("tab\there\r") == "tab\\there\\r"
    assert printable("\x7f\x85") == "\\x7f\\x85"
    assert printable("evil\u202etxt.fits") == "evil\\u202etxt.fits"
    assert printable("line\u2028sep") == "line\\u2028sep"
    assert printable("bad\udcffbyte") == "bad\\udcffbyte"


def test_printable_keeps_ordinary_text_including_accents():
    for text in ("spec-0266-51602-0001.fits", "/données/étoile.fits", "[bold]x[/bold]",
                 "\ufeffflux", "星.fits"):
        assert printable(text) == text
    assert printable(12) == "12"
    assert printable(printable("a\nb")) == "a\\nb"  # idempotent on escaped text


def test_ascii_text_is_ascii_and_readable():
    assert ascii_text("/données/étoile.fits") == "/donn\\xe9es/\\xe9toile.fits"
    assert ascii_text("\ufeffTELESCOP") == "\\ufeffTELESCOP"
    assert ascii_text("星\udcff\n") == "\\u661f\\udcff\\n"
    assert ascii_text("plain") == "plain"
    assert all(ascii_text(chr(c)).isascii() for c in range(0, 0x3000, 7))

"""`--samp`: hand a finished catalogue to TOPCAT, Aladin or any SAMP client.

SAMP (the IVOA Simple Application Messaging Protocol) lets a program tell the desktop tools
connected to a hub "load this table": `table.load.fits` for FITS, `table.load.votable` for
VOTable, the only table types SAMP defines, so `--samp` needs `-o` with one of those suffixes.
A mixed run's FITS file holds one table HDU per member; each is sent with its HDU index as
the URL fragment (`cat.fits#2`, the convention TOPCAT and STILTS read).

Uses astropy.samp (standard profile: the hub's lock file, `$SAMP_HUB` or `~/.samp`). astropy
8 marks it deprecated in favour of pyvo.samp, which wraps the same code; the warning is
silenced here since users did not call it. No hub, or no client that loads tables, is one
SampError line saying what to start.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..textsafe import printable
from .catalogue import format_for

__all__ = ["SampError", "SAMP_MTYPES", "check_hub", "send_tables", "samp_mtype"]

#: SAMP message type per catalogue format (the table types SAMP defines).
SAMP_MTYPES = {"fits": "table.load.fits", "votable": "table.load.votable"}

_NO_HUB = ("no SAMP hub is running (start TOPCAT or Aladin, which start one, or "
           "`samp_hub`), or $SAMP_HUB names a hub that is gone")


class SampError(OutputError):
    """The catalogue could not be handed over by SAMP (it is written; the message says why)."""


def _samp() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AstropyDeprecationWarning: see the module docstring
        from astropy import samp
    return samp


def samp_mtype(path: str | os.PathLike) -> str:
    """The SAMP message type that loads `path`; SampError for a type SAMP cannot load."""
    fmt = format_for(path)
    if fmt not in SAMP_MTYPES:
        raise SampError(f"{printable(path)}: SAMP loads FITS and VOTable tables only; write the "
                        f"catalogue as .fits or .vot to use --samp")
    return SAMP_MTYPES[fmt]


def check_hub() -> None:
    """SampError unless a SAMP hub is running: asked before a run, so a long run does not end
    with a catalogue that cannot be sent."""
    samp = _samp()
    from astropy.samp.lockfile_helpers import get_main_running_hub

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            get_main_running_hub()
    except (samp.SAMPHubError, OSError, ValueError):
        raise SampError(f"--samp: {_NO_HUB}") from None


def send_tables(paths: Sequence[str | os.PathLike], *, name: str = "bossnet-onnx") -> int:
    """Ask every SAMP client that loads tables to load each of `paths` (FITS files may hold
    several table HDUs: each is sent). Returns the number of clients reached; SampError when
    there is no hub or no client that loads tables."""
    samp = _samp()
    messages: list[dict[str, Any]] = []
    for path in paths:
        path = Path(path).resolve()
        mtype = samp_mtype(path)
        url = path.as_uri()
        hdus = _table_hdus(path) if mtype == SAMP_MTYPES["fits"] else [(None, path.name)]
        for index, extname in hdus:
            target = url if len(hdus) == 1 else f"{url}#{index}"
            label = path.name if len(hdus) == 1 else f"{path.name} {extname}"
            messages.append({"samp.mtype": mtype, "samp.params": {
                "url": target, "table-id": target, "name": label}})
    client = samp.SAMPIntegratedClient(name=name, description="BOSS Net catalogue")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.connect()
    except (samp.SAMPHubError, OSError) as exc:
        raise SampError(f"--samp: {_NO_HUB} ({printable(exc)})") from None
    try:
        receivers: set[str] = set()
        for message in messages:
            subscribed = client.get_subscribed_clients(message["samp.mtype"])
            if not subscribed:
                raise SampError(f"--samp: the SAMP hub has no client that loads "
                                f"{message['samp.mtype'].split('.')[-1].upper()} tables; open "
                                f"TOPCAT or Aladin and run again")
            client.notify_all(message)
            receivers.update(subscribed)
        return len(receivers)
    finally:
        client.disconnect()


def _table_hdus(path: Path) -> list[tuple[int | None, str]]:
    """(index, EXTNAME) of each table HDU of a FITS file."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        return [(i, str(h.header.get("EXTNAME", i))) for i, h in enumerate(hdul)
                if isinstance(h, (fits.BinTableHDU, fits.TableHDU))] or [(None, path.name)]

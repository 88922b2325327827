"""`--samp` (outputs/samp.py): the finished catalogue handed to a SAMP hub on loopback, as
TOPCAT or Aladin would receive it."""
from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from astropy.io import fits, votable
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.model.home import HOME_ENV
from bossnet_onnx.outputs.samp import SampError, check_hub, send_tables

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # astropy 8: AstropyDeprecationWarning (pyvo.samp)
    from astropy import samp


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A SAMP hub on 127.0.0.1 (standard profile only), found through $SAMP_HUB."""
    lockfile = tmp_path / "samp-hub"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = samp.SAMPHubServer(addr="127.0.0.1", web_profile=False, lockfile=str(lockfile),
                                    mode="multiple", label="test hub")
        server.start(wait=False)
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lockfile.as_uri()}")
    yield server
    server.stop()


class Receiver:
    """A SAMP client that loads tables: records each table.load.* notification."""

    def __init__(self, hub_server):
        self.messages: list[tuple[str, dict]] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.client = samp.SAMPIntegratedClient(name="receiver", addr="127.0.0.1")
            self.client.connect(hub=hub_server)
        for mtype in ("table.load.fits", "table.load.votable"):
            self.client.bind_receive_notification(mtype, self.receive)

    def receive(self, private_key, sender_id, mtype, params, extra):
        self.messages.append((mtype, dict(params)))

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def close(self):
        self.client.disconnect()


@pytest.fixture
def receiver(hub):
    client = Receiver(hub)
    yield client
    client.close()


def local_path(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file"
    return Path(url2pathname(parsed.path))


def test_votable_catalogue_sent_to_the_hub(shared_data, tmp_path, receiver):
    spec = sorted(str(p) for p in shared_data.glob("sdss-spec-*.fits"))[:2]
    out = tmp_path / "cat.vot"
    result = CliRunner().invoke(app, ["predict", *spec, "-o", str(out), "--draws", "2",
                                      "--samp"])
    assert result.exit_code == 0, result.output
    assert "sent to 1 SAMP client" in result.stderr
    [(mtype, params)] = receiver.wait(1)
    assert mtype == "table.load.votable"
    assert local_path(params["url"]) == out.resolve()
    assert params["name"] == "cat.vot"
    table = votable.parse_single_table(local_path(params["url"])).to_table()
    assert [str(p) for p in table["path"]] == spec


def test_mixed_fits_sends_each_member_hdu(shared_data, tmp_path, monkeypatch, receiver):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))  # no member installed: demo + rows
    inputs = [str(next(shared_data.glob("sdss-spec-*.fits"))),
              str(next(shared_data.glob("apogee-apstar-*.fits")))]
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(app, ["predict", *inputs, "--model", "auto", "-o", str(out),
                                      "--draws", "2", "--samp"])
    assert result.exit_code == 1  # the APOGEE file's row names the model to pull
    messages = receiver.wait(2)
    assert [m for m, _ in messages] == ["table.load.fits"] * 2
    urls = [p["url"] for _, p in messages]
    assert urls == [f"{out.resolve().as_uri()}#1", f"{out.resolve().as_uri()}#2"]
    with fits.open(out) as hdul:
        assert [hdul[int(u.split("#")[1])].name for u in urls] == ["BOSSNET", "APOGEENET"]


def test_no_hub_is_one_line_before_any_work(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'gone').as_uri()}")
    with pytest.raises(SampError, match="no SAMP hub is running"):
        check_hub()
    spec = str(next(shared_data.glob("sdss-spec-*.fits")))
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(app, ["predict", spec, "-o", str(out), "--samp"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "no SAMP hub is running" in result.stderr
    assert not out.exists()


def test_samp_needs_fits_or_votable(shared_data, tmp_path, hub):
    spec = str(next(shared_data.glob("sdss-spec-*.fits")))
    for args in (["-o", str(tmp_path / "cat.csv")], []):
        result = CliRunner().invoke(app, ["predict", spec, *args, "--samp"])
        assert result.exit_code == 2
        text = " ".join(re.sub("[\u2500-\u257f]", " ", result.stderr).split())  # rich's box
        assert ("SAMP loads FITS and VOTable tables only" in text if args
                else "--samp needs --output/-o" in text), text
    assert not (tmp_path / "cat.csv").exists()


def test_hub_without_a_table_client(tmp_path, hub):
    from astropy.table import Table

    path = tmp_path / "t.fits"
    Table({"a": [1]}).write(path)
    with pytest.raises(SampError, match="no client that loads FITS tables"):
        send_tables([path])

"""models pull end to end: a loopback server with random weights in the official layout.

pull -> verify -> export -> `predict --model NAME` must equal a direct export of the same
files; faults (flipped byte, cut download, no torch, a second pull at once) must leave nothing
half-installed and say so in one line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from http_fixture import Fault, FileServer
from import_blocker import BLOCKER, TORCH_BLOCKER
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.errors import DownloadError, ModelError, PullError, VerificationError
from bossnet_onnx.model.downloads import MODELS_URL_ENV, RetryPolicy
from bossnet_onnx.model.home import HOME_ENV, download_folder, installed_path, pull_lock
from bossnet_onnx.model.metadata import DEFAULT_STATS
from bossnet_onnx.model.pull import pull_model
from bossnet_onnx.model.registry import REGISTRY_ENV, git_blob_id

REPO = Path(__file__).resolve().parents[1]
COMMIT = "c0ffee0000000000000000000000000000000001"
FOLDER = "bossnet/model_tiny"
FOLDER_APOGEE = "bossnet/model_tiny_apogee"
STATS_PATH = "bossnet/stats/tiny.yaml"
FAST = RetryPolicy(timeout=5.0, attempts=4, backoff=0.0)
EXAMPLES = [str(REPO / "examples" / "spec-9999-60000-0042.fits"),
            str(REPO / "examples" / "mwmStar-0.6.0-100000201.fits")]
#: Statistics unlike the defaults, so a pull that ignored the stats file would show.
TINY_STATS = {p: {"MEAN": v["MEAN"] + 0.1, "STD": v["STD"] * 1.5}
              for p, v in DEFAULT_STATS.items()}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A clone-shaped folder: random He-initialised small weights in the official layout.

    Without torch (the fast lane) the chunks are random bytes: enough for every test that
    stops before the export, which are the only ones that run there.
    """
    clone = tmp_path_factory.mktemp("clone")
    try:
        from bossnet_export.random_weights import (
            SMALL_CONFIG,
            build_random_model,
            save_official_layout,
        )
    except ImportError:
        rng = np.random.default_rng(7)
        (clone / FOLDER).mkdir(parents=True)
        (clone / FOLDER / "model_args.yaml").write_text("model_dim: 2\n")
        for i in range(10):
            (clone / FOLDER / f"model_chunk_{i}").write_bytes(rng.bytes(17_000))
    else:
        import dataclasses

        save_official_layout(build_random_model(SMALL_CONFIG, seed=7), clone / FOLDER)
        three = dataclasses.replace(SMALL_CONFIG, num_targets=3)  # APOGEE Net's outputs
        save_official_layout(build_random_model(three, seed=8), clone / FOLDER_APOGEE)
    (clone / STATS_PATH).parent.mkdir(parents=True)
    (clone / STATS_PATH).write_text(yaml.safe_dump(TINY_STATS))
    return clone


def _files(clone: Path, folder: str) -> list[dict]:
    files = [{"path": f"{folder}/model_args.yaml", "role": "config"}]
    files += [{"path": f"{folder}/model_chunk_{i}", "role": "weights"} for i in range(10)]
    files += [{"path": STATS_PATH, "role": "stats"}]
    for item in files:
        item["blob"] = git_blob_id(clone / item["path"])
    return files


def _registry(clone: Path) -> dict:
    files = _files(clone, FOLDER)
    base = {"repository": "example/tiny-bossnet", "commit": COMMIT, "folder": FOLDER,
            "files": files, "approx_bytes": 180000}
    apogee = (dict(base, folder=FOLDER_APOGEE, files=_files(clone, FOLDER_APOGEE))
              if (clone / FOLDER_APOGEE).is_dir() else base)
    return {"format": "bossnet-onnx-registry", "version": 1, "models": [
        dict(base, name="tiny", member="boss", title="tiny test set", description="random"),
        dict(apogee, name="tiny-apogee", member="apogee", title="tiny other member"),
        dict(base, name="tiny-noconfig", member="boss", title="no model_args.yaml",
             files=files[1:11]),
    ]}


@pytest.fixture
def site(weights, tmp_path, monkeypatch):
    """Server + registry + an empty models home, all in the environment like a user's."""
    server = FileServer(files={f"/{COMMIT}/{p.relative_to(weights).as_posix()}": p.read_bytes()
                               for p in weights.rglob("*") if p.is_file()}).start()
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(_registry(weights)))
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    monkeypatch.setenv(MODELS_URL_ENV, server.url)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    yield server
    server.stop()


def _chunk_url(i: int) -> str:
    return f"/{COMMIT}/{FOLDER}/model_chunk_{i}"


@pytest.mark.slow
@pytest.mark.export
def test_pull_then_predict_equals_direct_export(site, weights, tmp_path):
    from bossnet_export import export_model
    from bossnet_onnx import predict
    from bossnet_onnx.model.info import format_model_info, model_info

    site.add_fault(_chunk_url(5), Fault(cut_after=5000))  # an interrupted download
    result = pull_model("tiny", policy=FAST)
    target = installed_path("tiny")
    assert result.status == "installed" and result.path == target and target.is_file()
    assert site.ranges(_chunk_url(5)) == [None, "bytes=5000-"]
    assert len(result.fetched) == 12 and not download_folder("tiny", COMMIT).exists()

    direct = tmp_path / "direct.onnx"
    export_model(weights / FOLDER, direct, stats=weights / STATS_PATH)
    pulled = predict(EXAMPLES, model="tiny", draws=3, seed=11)
    reference = predict(EXAMPLES, model=direct, draws=3, seed=11)
    for column in ("teff", "logg", "fe_h", "e_teff", "e_logg"):
        np.testing.assert_array_equal(pulled[column], reference[column])
    assert np.ptp(np.asarray(pulled["logg"])) > 0  # the rows differ: the weights are alive
    assert pulled.meta["MODELREG"] == "tiny" and pulled.meta["MODELCOM"] == COMMIT
    assert pulled.meta["MODELREP"] == "example/tiny-bossnet" and pulled.meta["MODEL"] == "tiny"

    details = model_info("tiny")
    source = details["source"]
    assert source["commit"] == COMMIT and source["registry_name"] == "tiny"
    blobs = {f["path"]: f["blob"] for f in source["files"]}
    assert blobs[f"{FOLDER}/model_chunk_3"] == git_blob_id(weights / FOLDER / "model_chunk_3")
    assert details["provenance"] == "published-weights"
    assert details["stats"]["logg"]["MEAN"] == pytest.approx(TINY_STATS["logg"]["MEAN"])
    text = format_model_info(details)
    assert COMMIT in text
    assert "published set" in text and "example/tiny-bossnet" in text

    # A second pull is a no-op: nothing fetched, the file untouched.
    before = (len(site.requests), target.stat().st_mtime_ns)
    runner = CliRunner()
    again = runner.invoke(app, ["models", "pull", "tiny"])
    assert again.exit_code == 0 and "already installed" in again.output
    assert (len(site.requests), target.stat().st_mtime_ns) == before

    # The registry now names other bytes: the installed model is not silently kept.
    changed = _registry(weights)
    changed["models"][0]["commit"] = "d" * 40
    Path(os.environ[REGISTRY_ENV]).write_text(json.dumps(changed))
    stale = runner.invoke(app, ["models", "pull", "tiny"])
    assert stale.exit_code == 1 and "holds example/tiny-bossnet@c0ffee000000, not the " \
        "registry's example/tiny-bossnet@dddddddddddd" in stale.output
    Path(os.environ[REGISTRY_ENV]).write_text(json.dumps(_registry(weights)))

    listed = runner.invoke(app, ["models", "list", "--json"])
    doc = json.loads(listed.output)
    assert doc["models"][0]["installed"]["path"] == str(target)
    catalogue = tmp_path / "cat.fits"
    cli = runner.invoke(app, ["predict", EXAMPLES[0], "--model", "tiny", "--draws", "0", "-q",
                              "-o", str(catalogue)])
    assert cli.exit_code == 0, cli.output
    from astropy.io import fits

    header = fits.getheader(catalogue, 1)
    assert (header["MODELREG"], header["MODELCOM"]) == ("tiny", COMMIT)
    assert header["PROVNC"] == "published-weights"
    text = runner.invoke(app, ["models", "list"]).output
    size = target.stat().st_size / 1e6
    assert f"installed: {target} ({size:.1f} MB)" in text


@pytest.mark.export
def test_planted_model_with_copied_provenance_is_not_already_installed(site, weights,
                                                                       tmp_path):
    """Other weights carrying the real set's `bossnet.source` (metadata is copyable) must not
    pass as the installed set: the installed bytes are checked against pull's receipt."""
    pytest.importorskip("torch", exc_type=ImportError)
    from bossnet_export import export_model
    from bossnet_export.random_weights import (
        SMALL_CONFIG,
        build_random_model,
        save_official_layout,
    )
    from bossnet_onnx.model.home import receipt_path
    from bossnet_onnx.model.pull import source_record
    from bossnet_onnx.model.registry import load_registry

    result = pull_model("tiny", source_dir=weights)
    target = installed_path("tiny")
    assert result.status == "installed" and receipt_path("tiny").is_file()
    assert pull_model("tiny", source_dir=weights).status == "already-installed"
    other = tmp_path / "other"
    save_official_layout(build_random_model(SMALL_CONFIG, seed=99), other)
    export_model(other, target, name="tiny", provenance="published-weights",
                 source=source_record(load_registry().get("tiny"), "copied"))
    out = CliRunner().invoke(app, ["models", "pull", "tiny"])
    assert out.exit_code == 1 and out.output.count("\n") == 1, out.output
    assert "is not the file pull installed" in out.output and "--force" in out.output
    receipt_path("tiny").unlink()  # a model without a receipt is not trusted either
    out = CliRunner().invoke(app, ["models", "pull", "tiny"])
    assert out.exit_code == 1 and "has no readable receipt" in out.output


FAMILY = ("boss", "apogee", "gaia-rvs", "gaia-xp")


@pytest.mark.slow
@pytest.mark.export
def test_all_four_members_pull_without_torch_and_equal_torch(tmp_path, monkeypatch):
    """The `pip install '.[cpu]'` promise: torch unimportable, `models pull` of every member
    from a loopback mirror converts the official-layout chunks itself; the installed models
    equal the PyTorch network on the same weights and say which converter built them."""
    import dataclasses

    torch = pytest.importorskip("torch")
    from bossnet_export.random_weights import (
        SMALL_CONFIG,
        build_random_model,
        save_official_layout,
    )
    from bossnet_onnx.convert.probes import parity_inputs
    from bossnet_onnx.model.info import format_model_info, model_info
    from bossnet_onnx.model.session import open_model
    from bossnet_onnx.science.members import MEMBERS

    clone = tmp_path / "clone"
    nets, models = {}, []
    for seed, member in enumerate(FAMILY):
        folder = f"bossnet/model_tiny_{member.replace('-', '_')}"
        config = dataclasses.replace(SMALL_CONFIG,
                                     num_targets=len(MEMBERS[member].parameter_names))
        nets[member] = build_random_model(config, seed=20 + seed)
        save_official_layout(nets[member], clone / folder)
        files = [{"path": f"{folder}/model_args.yaml", "role": "config"}]
        files += [{"path": f"{folder}/model_chunk_{i}", "role": "weights"} for i in range(10)]
        for item in files:
            item["blob"] = git_blob_id(clone / item["path"])
        models.append({"name": f"tiny-{member}", "member": member, "title": member,
                       "repository": "example/tiny-bossnet", "commit": COMMIT,
                       "folder": folder, "files": files})
    server = FileServer(files={f"/{COMMIT}/{p.relative_to(clone).as_posix()}": p.read_bytes()
                               for p in clone.rglob("*") if p.is_file()}).start()
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"format": "bossnet-onnx-registry", "version": 1,
                                    "models": models}))
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    monkeypatch.setenv(MODELS_URL_ENV, server.url)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    script = tmp_path / "no_torch.py"
    script.write_text(TORCH_BLOCKER + textwrap.dedent("""
        import sys
        from bossnet_onnx.cli import main
        sys.argv = ["bossnet-onnx", "models", "pull", sys.argv[1], "-q"]
        try:
            main()
        finally:
            assert "torch" not in sys.modules
    """))
    try:
        for member in FAMILY:
            proc = subprocess.run([sys.executable, str(script), f"tiny-{member}"],
                                  capture_output=True, text=True, env=dict(os.environ),
                                  timeout=300)
            assert proc.returncode == 0, proc.stderr
            assert f"installed tiny-{member}" in proc.stderr
            assert "parity (numpy converter): max |onnx - numpy|" in proc.stderr
    finally:
        server.stop()
    for member in FAMILY:
        target = installed_path(f"tiny-{member}")
        loaded = open_model(target, provider="cpu", threads=1)
        assert loaded.metadata.member == member
        assert loaded.metadata.exporter["converter"] == "numpy"
        details = model_info(f"tiny-{member}")
        assert details["converter"] == "numpy"
        assert ["converter", "numpy"] in [line.split()
                                          for line in format_model_info(details).splitlines()]
        rows = np.concatenate(list(parity_inputs(MEMBERS[member].n_inputs, (6,), 3).values()))
        with torch.no_grad():
            expected = nets[member](torch.from_numpy(rows).unsqueeze(1)).numpy()
        got = loaded.run_normalized(rows)
        # normalised outputs are in units of each parameter's STD
        normalised = float(np.max(np.abs(got - expected)))
        ratio = float(np.max(np.abs(got - expected) / expected.std(axis=0)))
        print(f"{member}: torch-free pull vs PyTorch, max |diff| / STD = {normalised:.2e} "
              f"(/ spread over the rows: {ratio:.2e})")
        assert normalised < 1e-3 and ratio < 1e-3


@pytest.mark.slow
@pytest.mark.export
def test_no_onnx_stop_keeps_files_then_pull_and_force_from_clone(site, weights, tmp_path):
    # BLOCKER hides torch and onnx: a broken install (onnx is a core dependency) stops after
    # verification, says how to repair it and keeps the verified files.
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKER + textwrap.dedent("""
        from bossnet_onnx.cli import main
        main()
    """))
    proc = subprocess.run([sys.executable, str(script), "models", "pull", "tiny", "-q"],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install --force-reinstall 'bossnet-onnx[cpu]'" in lines[0]
    assert "12 verified files are kept in" in lines[0]
    folder = download_folder("tiny", COMMIT)
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 12 and not any(n.endswith(".part") for n in kept)
    assert not installed_path("tiny").exists()

    served = len(site.requests)
    result = pull_model("tiny", policy=FAST)
    assert len(site.requests) == served  # the kept files were verified and reused
    assert len(result.reused) == 12 and installed_path("tiny").is_file()

    # --force --from a clone: no network at all (the server is gone), exported again.
    site.stop()
    first = installed_path("tiny").stat().st_mtime_ns
    out = CliRunner().invoke(app, ["models", "pull", "tiny", "--force", "--from", str(weights)])
    assert out.exit_code == 0, out.output
    assert "local clone" in out.output
    assert installed_path("tiny").stat().st_mtime_ns != first


def test_flipped_byte_is_refused_and_nothing_installed(site, weights):
    url = _chunk_url(3)
    bad = bytearray(site.files[url])
    bad[100] ^= 0x10
    site.files[url] = bytes(bad)
    expected = git_blob_id(weights / FOLDER / "model_chunk_3")
    with pytest.raises(VerificationError) as err:
        pull_model("tiny", policy=FAST)
    text = str(err.value)
    assert "model_chunk_3" in text and expected in text
    import hashlib

    assert hashlib.sha1(b"blob %d\0" % len(bad) + bytes(bad)).hexdigest() in text
    assert not installed_path("tiny").exists()
    folder = download_folder("tiny", COMMIT)
    assert not (folder / "model_chunk_3").exists() and not (folder / "model_chunk_3.part").exists()
    assert (folder / "model_chunk_2").is_file()  # verified files stay for the next try


def test_cli_failure_is_one_line(site):
    site.add_fault(_chunk_url(0), Fault(status=404))
    out = CliRunner().invoke(app, ["models", "pull", "tiny", "-q"])
    assert out.exit_code == 1
    assert out.output.count("\n") == 1 and "model_chunk_0: HTTP 404" in out.output
    assert not installed_path("tiny").exists()


@pytest.mark.export
def test_another_member_is_pulled_exported_as_that_member_and_predicts(site, shared_data):
    pytest.importorskip("torch", exc_type=ImportError)
    from bossnet_onnx import predict
    from bossnet_onnx.model.session import open_model

    result = pull_model("tiny-apogee", policy=FAST)
    assert result.status == "installed"
    meta = open_model(installed_path("tiny-apogee")).metadata
    assert meta.member == "apogee" and meta.n_pixels == 8575
    apstar = shared_data / "apogee-apstar-dr13-r6-2M00452143+1634446.fits"
    table = predict([str(apstar)], model="tiny-apogee", draws=2, seed=1)
    assert len(table) == 4 and not np.any(table["result_flags"] & 1)
    assert "bn_v_r" not in table.colnames and "raw_e_teff" in table.colnames


@pytest.mark.export
def test_set_without_model_args_is_built_with_the_official_boss_config(site):
    # Like boss-2023-05: no model_args.yaml, so the official BOSS network is built; these small
    # weights do not fit it, and the strict load says so without installing anything.
    pytest.importorskip("torch", exc_type=ImportError)
    from bossnet_onnx.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"state dict does not match the BOSS Net config: "
                                              r"missing keys \['linear_sequential.2"):
        pull_model("tiny-noconfig", policy=FAST)
    assert not installed_path("tiny-noconfig").exists()
    assert len(list(download_folder("tiny-noconfig", COMMIT).iterdir())) == 10


def test_from_folder_missing_a_chunk(site, weights, tmp_path):
    partial = tmp_path / "partial"
    for item in (weights / FOLDER).iterdir():
        if item.name != "model_chunk_7":
            (partial / FOLDER).mkdir(parents=True, exist_ok=True)
            (partial / FOLDER / item.name).write_bytes(item.read_bytes())
    with pytest.raises(DownloadError, match=rf"partial: lacks {FOLDER}/model_chunk_7 \(and 1 "
                                            rf"more files\); in the clone run `git checkout "
                                            rf"c0ffee0 -- {FOLDER}`"):
        pull_model("tiny", source_dir=partial)
    assert site.requests == [] and not installed_path("tiny").exists()


def test_second_pull_at_once_is_refused(site):
    refused = pytest.raises(PullError, match=rf"tiny: another `bossnet-onnx models pull tiny` "
                                             rf"is running \(pid {os.getpid()}")
    with pull_lock("tiny"), refused:
        pull_model("tiny", policy=FAST)
    assert site.requests == []


def test_pull_held_by_another_process_is_refused(site, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from bossnet_onnx.model.home import pull_lock
            with pull_lock("tiny"):
                print("held", flush=True)
                sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert holder.stdout.readline().strip() == "held"
        out = CliRunner().invoke(app, ["models", "pull", "tiny", "-q"])
        assert out.exit_code == 1 and out.output.count("\n") == 1
        assert f"another `bossnet-onnx models pull tiny` is running (pid {holder.pid}" in out.output
    finally:
        holder.communicate("\n", timeout=30)
    assert site.requests == [] and not installed_path("tiny").exists()


def test_unknown_model_name_lists_known_and_pull(site):
    out = CliRunner().invoke(app, ["predict", EXAMPLES[0], "--model", "tiny"])
    assert out.exit_code == 1
    assert ("--model tiny: no installed model and no file of that name; installed: none; "
            "published: tiny, tiny-apogee, tiny-noconfig; install one with `bossnet-onnx models pull tiny`"
            in out.output)
    from bossnet_onnx.model.files import resolve_model

    with pytest.raises(ModelError, match=r"--model nosuch: .*`bossnet-onnx models pull NAME`"):
        resolve_model("nosuch")


def test_damaged_install_is_reported_not_kept(site):
    target = installed_path("tiny")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a model")
    out = CliRunner().invoke(app, ["models", "pull", "tiny"])
    assert out.exit_code == 1 and out.output.count("\n") == 1
    assert "tiny: the installed" in out.output and "models pull tiny --force" in out.output


def test_installed_name_wins_over_a_file_of_that_name(site, tmp_path, monkeypatch):
    from bossnet_onnx.model.files import resolve_model

    target = installed_path("tiny")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").write_bytes(b"y")
    assert resolve_model("tiny") == target
    assert resolve_model("./tiny") == Path("./tiny")


def test_bad_registry_via_cli(site, tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": [{"name": "x"}]}')
    monkeypatch.setenv(REGISTRY_ENV, str(bad))
    out = CliRunner().invoke(app, ["models", "list"])
    assert out.exit_code == 1 and out.output.count("\n") == 1
    assert "bad.json: models[0] ('x'): field 'commit' is missing" in out.output


def test_default_home_follows_the_platform(monkeypatch, tmp_path):
    from bossnet_onnx.model.home import models_home

    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert models_home() == tmp_path / "xdg" / "bossnet-onnx"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert models_home() == Path.home() / ".local" / "share" / "bossnet-onnx"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert models_home() == Path.home() / "Library" / "Application Support" / "bossnet-onnx"


SOURCE = {"registry_name": "tiny", "member": "boss", "repository": "example/tiny-bossnet",
          "commit": COMMIT, "folder": FOLDER,
          "files": [{"path": f"{FOLDER}/model_chunk_0", "blob": "a" * 40}], "fetched_from": "x"}


def test_source_metadata_round_trip_and_checks():
    from onnx_fixtures import linear_metadata

    from bossnet_onnx.errors import ModelMetadataError
    from bossnet_onnx.model.metadata import ModelMetadata

    props = linear_metadata(source=SOURCE).to_props()
    back = ModelMetadata.from_props(props, source="m.onnx")
    assert back.source == SOURCE and back.source_text == f"tiny: example/tiny-bossnet@{COMMIT}"
    assert ModelMetadata.from_props(linear_metadata().to_props()).source is None
    for change, message in [({"commit": "abc"}, r"commit 'abc' is not a 40-digit hex id"),
                            ({"repository": None}, r"lacks the text field 'repository'"),
                            ({"files": [{"path": "p", "blob": "short"}]}, r"'files' must list")]:
        bad = dict(props, **{"bossnet.source": json.dumps(dict(SOURCE, **change))})
        with pytest.raises(ModelMetadataError, match=rf"m.onnx: metadata key 'bossnet.source' "
                                                     rf".*{message}"):
            ModelMetadata.from_props(bad, source="m.onnx")


def test_progress_bar_in_bytes_goes_to_stderr(site, weights, capsys):
    from bossnet_onnx.model.downloads import ByteProgress, fetch_verified

    dest = Path(os.environ[HOME_ENV]) / "c0"
    dest.parent.mkdir(parents=True)
    with ByteProgress(True) as bar:
        fetch_verified(site.url + _chunk_url(0), dest,
                       git_blob_id(weights / FOLDER / "model_chunk_0"), policy=FAST,
                       progress=bar)
    err = capsys.readouterr().err
    assert "c0" in err and "kB" in err

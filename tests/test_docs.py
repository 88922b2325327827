"""The documentation agrees with the code: what messages point to exists, install lines name
real extras, the site covers every public name and command, help shows the public API only.

The site itself is built by `python3 tasks.py docs` (CI, warnings as errors); these checks run
without Sphinx, on the sources and on the generators the site is built from.
"""
from __future__ import annotations

import json
import pydoc
import re
import sys
import warnings
from importlib.metadata import metadata
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import bossnet_onnx
from bossnet_onnx.cli import app
from bossnet_onnx.errors import DemoModelWarning, InputWarning
from bossnet_onnx.science.flags import ResultFlags

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import bossnet_reference  # noqa: E402  (docs/_ext: the generators the site is built from)

PAGES = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *DOCS.rglob("*.md"),
                *DOCS.glob("*.rst")])
PAGES = [p for p in PAGES if "_build" not in p.parts]


def _slug(heading: str) -> str:
    """The anchor GitHub and MyST (myst_heading_anchors) give a heading."""
    text = re.sub(r"[`*]", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _headings(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_readme_is_a_front_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    # exactly the two quick-start commands, and where the first one puts the command
    assert "python3 tasks.py demo    # installs the torch-free runtime" in text
    assert "python3 tasks.py test    # installs the test environment" in text
    assert ".venv-run/bin/bossnet-onnx" in text
    assert "pip install '.[cpu]'" in text
    assert "bossnet-onnx models pull boss" in text
    # nothing about who built it or when
    for phrase in ("issue 1", "issue 2", "this branch", "engineers", "this session",
                   "2026-"):
        assert phrase not in text, phrase


def test_readme_keeps_the_dr19_result_flags_table():
    text = (REPO / "README.md").read_text()
    for flag in ResultFlags:
        bit = int(flag).bit_length() - 1
        assert f"| {bit} | {int(flag)} | `{flag.name}` |" in text


def test_no_page_speaks_of_who_built_it_or_when():
    for page in PAGES:
        if page.name == "CHANGELOG.md":
            continue
        text = page.read_text()
        for phrase in ("this branch", "other engineers", "issue 16", "this session",
                       "main's "):
            assert phrase not in text, f"{page}: {phrase!r}"


def test_every_local_link_and_anchor_exists():
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            assert path.exists(), f"{page.relative_to(REPO)} links to missing {target}"
            if anchor:
                slugs = {_slug(h) for h in _headings(path)}
                assert anchor in slugs, f"{page.relative_to(REPO)}: no heading #{anchor} " \
                                        f"in {path.relative_to(REPO)}"


def _runtime_sources() -> list[Path]:
    return sorted((REPO / "runtime" / "bossnet_onnx").rglob("*.py"))


def test_every_section_a_message_points_to_exists():
    readme = _headings(REPO / "README.md")
    found = 0
    for source in _runtime_sources():
        text = source.read_text()
        for title in re.findall(r"README: '([^']+)'", text):
            found += 1
            assert title in readme, f"{source.name} points to README section {title!r}"
        for page in re.findall(r"\bdocs/([\w/-]+\.md)", text):
            found += 1
            assert (DOCS / page).exists(), f"{source.name} points to docs/{page}"
    assert found >= 1  # the demo-model warning at least


def test_the_demo_model_warning_points_to_an_existing_section():
    spec = REPO / "examples" / "spec-9999-60000-0042.fits"
    with pytest.warns(DemoModelWarning) as caught:
        bossnet_onnx.predict([str(spec)], draws=0)
    message = str(next(w.message for w in caught if w.category is DemoModelWarning))
    titles = re.findall(r"README: '([^']+)'", message)
    assert titles, message
    assert set(titles) <= _headings(REPO / "README.md")


def test_no_ivar_warning_names_the_quality_flags_bit():
    wave = np.linspace(3600.0, 9200.0, 4000)
    flux = 1.0 + 0.1 * np.sin(wave / 50.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = bossnet_onnx.predict((wave, flux, None), draws=0)
    texts = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert texts and all("quality_flags bit 1 NO_VALID_IVAR" in t for t in texts), texts
    assert not any("result_flags NO_VALID_IVAR" in t for t in texts)
    assert table["quality_flags"][0] & 2 and not table["result_flags"][0] & 2
    for source in _runtime_sources():
        assert "result_flags NO_VALID_IVAR" not in source.read_text(), source


def _install_lines() -> list[tuple[Path, str]]:
    lines: list[tuple[Path, str]] = []
    for page in [p for p in PAGES if p.suffix == ".md"]:
        lines += [(page, spec) for spec in re.findall(r"pip install '([^']+)'", page.read_text())]
    return lines


def test_every_install_line_names_real_extras():
    extras = set(metadata("bossnet-onnx").get_all("Provides-Extra") or ())
    assert {"cpu", "gpu", "export", "plot", "docs"} <= extras
    lines = _install_lines()
    assert len(lines) >= 5
    for page, spec in lines:
        match = re.fullmatch(r"(\.|bossnet-onnx)\[([\w,]+)\]", spec)
        assert match, f"{page.name}: {spec!r} is neither '.[extras]' nor 'bossnet-onnx[extras]'"
        unknown = set(match.group(2).split(",")) - extras
        assert not unknown, f"{page.name}: {spec!r} names unknown extras {unknown}"
        chosen = set(match.group(2).split(","))
        assert not {"cpu", "gpu"} <= chosen, f"{page.name}: {spec!r} installs two engines"


def test_every_tasks_lane_in_the_docs_exists():
    sys.path.insert(0, str(REPO))
    import tasks

    for page in PAGES:
        for lane in re.findall(r"python3 tasks\.py (\w+)", page.read_text()):
            assert lane in tasks.LANES, f"{page.name}: python3 tasks.py {lane}"


def test_api_reference_covers_every_public_name():
    text = bossnet_reference.api_reference()
    assert ".. py:module:: bossnet_onnx" in text and ".. py:data:: __version__" in text
    for name in bossnet_reference.public_names():
        assert re.search(rf"^\.\. auto\w+:: bossnet_onnx\.{name}$", text, flags=re.M), name
    assert set(bossnet_reference.public_names()) == set(bossnet_onnx.__all__) - {"__version__"}
    assert ".. bossnet-api::" in (DOCS / "api.rst").read_text()


def _typer_commands() -> set[str]:
    """The app's commands, read from typer's own registry (not the generator's walk)."""
    names = {f"bossnet-onnx {c.name or c.callback.__name__}" for c in app.registered_commands}
    for group in app.registered_groups:
        names.add(f"bossnet-onnx {group.name}")
        names |= {f"bossnet-onnx {group.name} {c.name or c.callback.__name__}"
                  for c in group.typer_instance.registered_commands}
    return names


def test_cli_reference_covers_every_command_and_option():
    text = bossnet_reference.cli_reference()
    commands = _typer_commands()
    assert {"bossnet-onnx predict", "bossnet-onnx models pull"} <= commands
    for name in commands:
        assert f"``{name}``\n" in text, name
    for full, command in bossnet_reference.cli_commands():
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert f"``{opt}``" in text, f"{full} {opt}"
    assert ".. bossnet-cli::" in (DOCS / "cli.rst").read_text()
    index = (DOCS / "index.md").read_text()
    for page in ("api", "cli", "tutorial", "install", "quickstart", "models", "outputs",
                 "uncertainties", "performance", "clusters", "reliability", "developing"):
        assert re.search(rf"^{page}$", index, flags=re.M), page


def test_flag_tables_come_from_the_enums():
    from bossnet_onnx.science.flags import QualityFlags

    for which, enum_type in (("result", ResultFlags), ("quality", QualityFlags)):
        table = bossnet_reference.flags_table(which)
        for flag in enum_type:
            assert f"| `{flag.name}` |" in table
    assert "`quality_flags` bit 1" not in bossnet_reference.flags_table("result")


def test_help_shows_flags_as_flags_and_the_true_auto_rule():
    runner = CliRunner()
    for full, _command in bossnet_reference.cli_commands():
        args = full.split()[1:]
        result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (full, result.output)
        assert "<bool>" not in result.output, full
    predict_help = runner.invoke(app, ["predict", "--help"], env={"COLUMNS": "200"}).output
    assert "else OpenVINO if installed" not in predict_help
    assert "OpenVINO only when asked for" in predict_help


def test_dir_and_help_show_the_public_api_only():
    assert dir(bossnet_onnx) == sorted(bossnet_onnx.__all__)
    text = pydoc.render_doc(bossnet_onnx, renderer=pydoc.plaintext)
    assert "SUBMODULES" not in text
    sections = dict(re.findall(r"^([A-Z][A-Z ]+)\n((?:(?: .*)?\n)*)", text + "\n", flags=re.M))
    data = sections.get("DATA", "")
    for hidden in ("Any", "TYPE_CHECKING", "annotations", "_typing", "_EXPORTS"):
        assert not re.search(rf"^    {hidden}\b", data, flags=re.M), hidden
    listed = set(re.findall(r"^    (?:class )?(\w+)", sections["CLASSES"] +
                            sections["FUNCTIONS"], flags=re.M))
    public = set(bossnet_onnx.__all__) - {"__version__"}
    assert public <= listed
    documented = {n for n in listed if n in dir(bossnet_onnx)}
    assert documented == public


@pytest.mark.slow
def test_every_install_line_resolves_with_pip(tmp_path):
    """Each distinct extras set that README and docs tell people to install resolves with
    pip's own resolver from this checkout (`bossnet-onnx[x]` lines, for the package index,
    are the same extras). The plain, cpu, gpu and export installs are resolved, with their
    engine counts, in test_packaging.py; the others here, side by side."""
    from test_packaging import _dry_run, _pypi_reachable

    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable: the resolver needs the package index")
    extras = sorted({re.fullmatch(r"(?:\.|bossnet-onnx)\[([\w,]+)\]", spec).group(1)
                     for _page, spec in _install_lines()} - {"cpu", "gpu", "export"})
    assert "cpu,export" in extras and "cpu,plot" in extras
    runs = {extra: _dry_run(extra, tmp_path / f"report-{extra}.json") for extra in extras}
    for extra, proc in runs.items():
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"pip install '.[{extra}]': {err[-2000:]}"
        report = json.loads((tmp_path / f"report-{extra}.json").read_text())
        names = {item["metadata"]["name"].lower() for item in report["install"]}
        assert "bossnet-onnx" in names and "onnxruntime" in names, (extra, names)


def test_readme_sample_output_is_what_the_demo_prints():
    """The README's sample is `python3 tasks.py demo`'s table, token for token: a run of the
    same command on the bundled model and examples, not pasted numbers that could drift."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```text\n(path .*?)```", readme, flags=re.S)
    assert block, "README has no sample output"
    sample = [ln.split() for ln in block.group(1).splitlines()]
    examples = sorted(str(p) for p in (REPO / "examples").glob("*.fits"))
    result = CliRunner().invoke(app, ["predict", *examples, "--draws", "20", "--seed", "42"],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    printed = [ln.split() for ln in result.stdout.splitlines() if ln.strip()]
    rows = [r for r in sample if r[0].endswith(".fits")]
    assert len(rows) == len(examples) + 3  # 7 spectra in 4 files
    assert sample[0] == printed[0][:len(sample[0])]  # the header
    assert rows == [r for r in printed if r[0].endswith(".fits")]
    assert sample[-1][:2] == ["7", "spectra,"]


def test_the_clean_sample_recipe_drops_a_galaxy_that_result_flags_keeps(shared_data):
    """The docs' claim, on a real BOSS galaxy spectrum (SDSS CLASS = GALAXY) beside a star:
    result_flags == 0 keeps the galaxy; the recipe (both columns) drops it."""
    galaxy = shared_data / "sdss-spec-0266-51602-0001.fits"
    star = REPO / "examples" / "spec-9999-60000-0042.fits"
    if not galaxy.exists():
        pytest.skip("real spectra absent")
    cat = bossnet_onnx.predict([str(galaxy), str(star)], draws=0)
    assert list(cat["survey_class"][:1]) == ["GALAXY"]
    assert cat["result_flags"][0] == 0  # DR19's bits alone keep it
    assert cat["quality_flags"][0] & 8  # NOT_A_STAR
    clean = cat[(cat["result_flags"] == 0) & (cat["quality_flags"] == 0)]
    assert [str(p) for p in clean["path"]] == [str(star)]
    assert "(cat[\"result_flags\"] == 0) & (cat[\"quality_flags\"] == 0)" in \
        (DOCS / "outputs.md").read_text()

"""Sphinx directives that put the code's own tables and real runs into the site.

- ``bossnet-cli``: the command-line reference, from the typer app;
- ``bossnet-api``: an autodoc entry for every name in ``bossnet_onnx.__all__``;
- ``bossnet-columns [all|identifiers|labels|flags]``: the catalogue columns (science/columns.py);
- ``bossnet-flags result|quality``: the flag bits (science/flags.py);
- ``bossnet-run``: run the Python code of the block at build time and show it with what it
  printed; ``:figure: NAME`` also saves the matplotlib Figure bound to NAME and shows it. Blocks
  of one page share their variables, in page order;
- ``bossnet-command``: run a ``bossnet-onnx ...`` command line at build time (in the repository
  root, globs expanded) and show it with its output; a non-zero exit fails the build.

Nothing is pasted: if the code changes, the site changes with it, and a run that fails is a
failed build (``python3 tasks.py docs`` treats warnings as errors).
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bossnet_reference

REPO = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)
GENERATED = "_generated"  # under docs/, git-ignored: figures the pages make at build time


class _RstDirective(SphinxDirective):
    """Parse generated reStructuredText in place."""

    def rst(self) -> str:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        lines = StringList(self.rst().splitlines(), source=f"<{self.name}>")
        nested_parse_with_titles(self.state, lines, container)
        return container.children


class CliDirective(_RstDirective):
    def rst(self) -> str:
        return bossnet_reference.cli_reference()


class ApiDirective(_RstDirective):
    def rst(self) -> str:
        return bossnet_reference.api_reference()


class ColumnsDirective(_RstDirective):
    optional_arguments = 1

    def rst(self) -> str:
        return bossnet_reference.columns_table(self.arguments[0] if self.arguments else "all")


class FlagsDirective(_RstDirective):
    required_arguments = 1

    def rst(self) -> str:
        return bossnet_reference.flags_table(self.arguments[0])


#: docname -> the variables its bossnet-run blocks share (kept out of the pickled environment)
_NAMESPACES: dict[str, dict] = {}


def _forget(app: Sphinx, env, docname: str) -> None:
    """A page read again starts with fresh variables."""
    _NAMESPACES.pop(docname, None)


class RunDirective(SphinxDirective):
    has_content = True
    option_spec: ClassVar[dict] = {"figure": directives.unchanged,
                                   "hide-code": directives.flag, "width": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        code = "\n".join(self.content)
        namespace = _NAMESPACES.setdefault(self.env.docname, {
            "__name__": "__bossnet_docs__",
            "EXAMPLES": REPO / "examples",
            "WORKDIR": Path(tempfile.mkdtemp(prefix="bossnet-docs-")),
        })
        printed = io.StringIO()
        here = os.getcwd()
        try:
            os.chdir(namespace["WORKDIR"])
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"<{self.env.docname}: bossnet-run>", "exec"), namespace)
        except Exception as exc:  # a failing example is a failing build
            raise self.error(f"the example raised {type(exc).__name__}: {exc}") from exc
        finally:
            os.chdir(here)
        out: list[nodes.Node] = []
        if "hide-code" not in self.options:
            block = nodes.literal_block(code, code, language="python")
            out.append(block)
        text = printed.getvalue().rstrip()
        if text:
            out.append(nodes.literal_block(text, text, language="text",
                                           classes=["bossnet-output"]))
        name = self.options.get("figure")
        if name:
            fig = namespace.get(name)
            if fig is None or not hasattr(fig, "savefig"):
                raise self.error(f":figure: {name} is not a matplotlib Figure after the block")
            folder = Path(self.env.srcdir) / GENERATED
            folder.mkdir(exist_ok=True)
            stem = f"{self.env.docname.replace('/', '-')}-{name}.png"
            fig.savefig(folder / stem, dpi=90)
            uri = f"/{GENERATED}/{stem}"
            image = nodes.image(uri=uri, alt=name, width=self.options.get("width", "100%"))
            out.append(image)
        return out


class CommandDirective(SphinxDirective):
    """``bossnet-onnx ARGS``: run through this Python (the package being documented)."""

    has_content = True
    option_spec: ClassVar[dict] = {"returncode": directives.nonnegative_int}

    def run(self) -> list[nodes.Node]:
        shown: list[str] = []
        for line in self.content:
            if not line.strip():
                continue
            words = shlex.split(line)
            if words[0] != "bossnet-onnx":
                raise self.error(f"only bossnet-onnx commands run here, not {words[0]!r}")
            args: list[str] = []
            for word in words[1:]:
                matches = sorted(glob.glob(word, root_dir=REPO)) if "*" in word else []
                args += matches or [word]
            env = dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb")
            done = subprocess.run([sys.executable, "-m", "bossnet_onnx", *args], cwd=REPO,
                                  capture_output=True, text=True, env=env, timeout=600)
            expected = self.options.get("returncode", 0)
            if done.returncode != expected:
                raise self.error(f"`{line}` exited {done.returncode} (expected {expected}):\n"
                                 f"{done.stderr[-2000:]}")
            shown += [f"$ {line}", (done.stdout + done.stderr).rstrip()]
        text = "\n".join(shown)
        return [nodes.literal_block(text, text, language="console")]


def _check_coverage(app: Sphinx, env) -> None:
    """The site documents every public name: a name missing from the Python domain (an
    autodoc entry that rendered nothing) is a warning, so an error under -W."""
    import bossnet_onnx

    documented = set(env.get_domain("py").objects)
    for name in bossnet_onnx.__all__:
        if f"bossnet_onnx.{name}" not in documented:
            logger.warning(f"bossnet_onnx.{name} is public but not documented in the API page")


def setup(app: Sphinx) -> dict:
    app.add_directive("bossnet-cli", CliDirective)
    app.add_directive("bossnet-api", ApiDirective)
    app.add_directive("bossnet-columns", ColumnsDirective)
    app.add_directive("bossnet-flags", FlagsDirective)
    app.add_directive("bossnet-run", RunDirective)
    app.add_directive("bossnet-command", CommandDirective)
    app.connect("env-purge-doc", _forget)
    app.connect("env-check-consistency", _check_coverage)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}

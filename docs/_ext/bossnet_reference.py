"""The generated parts of the documentation, as reStructuredText, from the code itself.

Pure Python (no Sphinx import), so that the test suite can check what the site will say:
every CLI command and option comes from the typer app, every public name from
`bossnet_onnx.__all__`, the column table from `science/columns.py` and the flag tables from
`science/flags.py`. `bossnet_docs.py` (the Sphinx extension) only parses these strings.
"""
from __future__ import annotations

import inspect
import re
from typing import Any


def _escape(text: str) -> str:
    """Text for a table cell: backslashes and the characters rst would read as markup
    (`*`, `|`, and a word's trailing `_`, which rst reads as a link: `e_*`, `model_chunk_*`)."""
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
    return re.sub(r"(?<=\w)_(?!\w)", r"\\_", text)


def _inline(text: str) -> str:
    """Markdown-style `code` spans (as the code's strings are written) as rst literals."""
    return re.sub(r"`([^`]+)`", r"``\1``", _escape(text))


def _list_table(header: list[str], rows: list[list[str]], widths: list[int] | None = None,
                name: str = "") -> str:
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append("   :widths: " + " ".join(str(w) for w in widths))
    if name:
        lines.append(f"   :name: {name}")
    lines.append("")
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            lines.append(("   * - " if i == 0 else "     - ") + (cell or " "))
    return "\n".join(lines) + "\n"


# -- the command line -----------------------------------------------------------------------


def cli_commands() -> list[tuple[str, Any]]:
    """Every command of the typer app as (full name, click command), groups included, in the
    order `--help` lists them."""
    import typer

    from bossnet_onnx.cli import app

    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command) -> None:
        found.append((prefix, command))
        for sub in getattr(command, "commands", {}).values():
            walk(f"{prefix} {sub.name}", sub)

    walk("bossnet-onnx", root)
    return found


def _param_row(param, ctx) -> list[str]:
    # typer carries its own copy of click: go by the objects' attributes, not click's classes
    if param.param_type_name == "argument":
        name = f"``{param.name.upper()}``" + (" ..." if param.nargs == -1 else "")
        kind = "argument" + ("" if param.required else " (optional)")
    else:
        name = ", ".join(f"``{n}``" for n in [*param.opts, *param.secondary_opts])
        if getattr(param, "is_flag", False):
            kind = "flag"
        else:
            value = (param.display_type(ctx) or "").strip("<>").upper()
            kind = f"option ``{value}``" if value else "option"
            if param.required:
                kind += ", required"
            elif param.default not in (None, "") and not callable(param.default):
                kind += f", default ``{param.default}``"
    return [name, kind, _inline(getattr(param, "help", None) or "")]


def cli_reference() -> str:
    """One section per command: what it does, its usage line and a table of its parameters."""
    out: list[str] = []
    for full, command in cli_commands():
        title = f"``{full}``"
        out += [title, "~" * len(title), ""]
        doc = inspect.cleandoc(command.help or "")
        if doc:
            out += [_inline(doc), ""]
        if hasattr(command, "commands"):
            subs = ", ".join(f"``{full} {name}``" for name in command.commands)
            out += [f"Commands: {subs}.", ""]
        ctx = command.context_class(command, info_name=full)
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += [".. code-block:: text", "", f"   {full} {usage}", ""]
        rows = [_param_row(p, ctx) for p in command.params
                if not getattr(p, "hidden", False) and p.name != "help"]
        if rows:
            out.append(_list_table(["parameter", "kind", "meaning"], rows, [22, 22, 56]))
    return "\n".join(out)


# -- the Python API -------------------------------------------------------------------------


def public_names() -> list[str]:
    import bossnet_onnx

    return [n for n in bossnet_onnx.__all__ if n != "__version__"]


def api_reference() -> str:
    """An autodoc entry for every public name, in `__all__`'s (reading) order."""
    import bossnet_onnx

    out = [".. py:module:: bossnet_onnx", "   :no-index:", "",
           ".. py:data:: __version__", "",
           f"   The installed version (``{bossnet_onnx.__version__}``).", ""]
    for name in public_names():
        obj = getattr(bossnet_onnx, name)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                out += [f".. autoexception:: bossnet_onnx.{name}", "   :show-inheritance:", ""]
            else:
                out += [f".. autoclass:: bossnet_onnx.{name}", "   :members:",
                        "   :show-inheritance:", ""]
        else:
            out += [f".. autofunction:: bossnet_onnx.{name}", ""]
    return "\n".join(out)


# -- the catalogue (Markdown: these tables sit in MyST pages) ----------------------------


def columns_table(which: str = "all") -> str:
    """The catalogue's columns with their DR19/DR20 counterparts: science/columns.py's own
    `markdown_table`, for the whole catalogue or one group of columns."""
    from bossnet_onnx.science import columns as cols

    chosen = {"all": cols.ALL_COLUMNS, "identifiers": cols.IDENTIFIER_COLUMNS,
              "labels": cols.BOSS_LABEL_COLUMNS, "flags": cols.FLAG_COLUMNS}[which]
    return cols.markdown_table(chosen)


def _flag_texts() -> dict[str, str]:
    """'set when' per flag name, read from the tables in science/flags.py's docstring (their
    one home)."""
    from bossnet_onnx.science import flags

    texts: dict[str, str] = {}
    current = None
    for line in (flags.__doc__ or "").splitlines():
        match = re.match(r"^(\d+)\s+([A-Z_]+)\s+(.*)$", line)
        if match:
            current = match.group(2)
            texts[current] = match.group(3).strip()
        elif current and re.match(r"^\s{20,}\S", line):
            texts[current] += " " + line.strip()
        else:
            current = None
    return texts


def flags_table(which: str) -> str:
    """`result_flags` (DR19's bits) or `quality_flags` (ours): bits and names from the enums in
    science/flags.py, 'set when' from its docstring."""
    from bossnet_onnx.science.flags import QualityFlags, ResultFlags

    enum_type = {"result": ResultFlags, "quality": QualityFlags}[which]
    texts = _flag_texts()
    lines = ["| bit | value | name | set when |", "| --- | --- | --- | --- |"]
    for flag in enum_type:
        if flag.name not in texts:
            raise RuntimeError(f"science/flags.py's docstring has no row for {flag.name}")
        bit = int(flag.value).bit_length() - 1
        text = texts[flag.name].replace("|", "\\|")
        lines.append(f"| {bit} | {int(flag.value)} | `{flag.name}` | {text} |")
    return "\n".join(lines)

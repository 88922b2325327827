"""Sphinx configuration: `python3 tasks.py docs` builds it with warnings as errors (-W).

Pages are MyST Markdown (myst-parser); the API reference is autodoc over the numpy-style
docstrings (napoleon), as astropy and specutils document theirs. Tables of columns, flags and
CLI options, the API list and the tutorial's output are generated at build time by the local
extension in _ext/ from the installed package, so the site cannot drift from the code.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import bossnet_onnx  # noqa: E402  (the package being documented, installed by the docs lane)

project = "bossnet-onnx"
author = "bossnet-onnx developers"
copyright = "bossnet-onnx developers, MIT licence"
release = version = bossnet_onnx.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "bossnet_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "figures/make_figures.py", "Thumbs.db",
                    ".DS_Store"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_numpy_docstring = True
napoleon_google_docstring = False

html_theme = "pydata_sphinx_theme"
html_title = f"bossnet-onnx {release}"
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []

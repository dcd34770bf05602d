# SPDX-License-Identifier: BSD-3-Clause
"""Sphinx configuration for the skae documentation.

Build from the repository root with ``sphinx-build -W -b html docs docs/_build/html``
after ``pip install -e ".[docs]"``. The gallery runs every script in ``examples/``.
"""

import contextlib
import io
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from sphinx.util import logging as sphinx_logging

import skae

# gallery_order.py, the gallery's sort key, is imported by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

project = "skae"
author = "the skae developers"
copyright = "the skae developers"
release = skae.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # CHANGES.md and the README's benchmark tables are Markdown.
    "myst_parser",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
source_suffix = {".rst": "restructuredtext"}
default_role = "literal"

# -- API pages -----------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc docstrings give the types
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False

# -- Links to other projects ---------------------------------------------------
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
}
intersphinx_timeout = 10


class _OfflineInventories(logging.Filter):
    """Report unreachable inventories as information, not as warnings.

    Offline, intersphinx cannot download the other projects' inventories. The
    build should still pass with ``-W``: references to scikit-learn, PyTorch or
    NumPy then render as plain code instead of links.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno == logging.WARNING and "inventories" in message:
            urls = re.findall(r"inventory '([^']+)'", message)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "intersphinx: %s unreachable; its names stay unlinked."
            record.args = (", ".join(urls) or "an inventory",)
            record.nonl = False
        return True


sphinx_logging.getLogger("sphinx.ext.intersphinx").logger.addFilter(
    _OfflineInventories()
)

# -- Example gallery -------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "doc_module": ("skae",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "show_memory": False,
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skae {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # Quick start, user guide, PCA start, Examples and API in the navbar; the
    # topic pages after them go under "More".
    "header_links_before_dropdown": 5,
}
# Top-level pages have no subpages to list: no empty left sidebar on them. The
# gallery and the API pages keep theirs.
html_sidebars = {"*": []}


# -- Keep api.rst complete -------------------------------------------------------
def _check_api_lists_public_names(app, config):
    """Warn (an error under ``-W``) if a name of ``skae.__all__`` is not in api.rst."""
    api = (Path(app.srcdir) / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^ {3}(\w+)\s*$", api, flags=re.MULTILINE))
    missing = sorted(set(skae.__all__) - {"__version__"} - listed)
    if missing:
        sphinx_logging.getLogger(__name__).warning(
            "public names missing from docs/api.rst: %s; add each under the "
            "autosummary directive of its section.",
            ", ".join(missing),
        )


def _unlink_sklearn_user_guide_refs(app, env, node, contnode):
    """Render unresolved ``:ref:`` links of scikit-learn's docstrings as text.

    Inherited methods such as ``set_output`` come with scikit-learn's
    docstrings, which link to labels of scikit-learn's own user guide. Online,
    intersphinx resolves them first; offline they become plain text instead of
    failing the build. Broken references in skae's own text still fail it.
    """
    if node.get("reftype") == "ref" and "docstring of sklearn." in (node.source or ""):
        return contnode
    return None


def _run_cli(*args):
    """Run ``skae`` with ``args`` as a user would; return its exit status and output."""
    from skae._cli import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        try:
            status = main(list(args))
        except SystemExit as exc:  # --help exits
            status = exc.code
    return status, stdout.getvalue()


def _generate_cli_pages(app):
    """Write ``skae compare --help`` and a real default run for cli.rst.

    The run happens in an empty folder, as a user's first ``skae compare``
    would, so the page shows its true output and the files it writes.
    """
    folder = Path(app.srcdir) / "generated" / "cli"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["COLUMNS"] = "72"  # argparse wraps its help to the page's width
    status, text = _run_cli("compare", "--help")
    (folder / "help.txt").write_text(text, encoding="utf-8")
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            status, text = _run_cli("compare")
        finally:
            os.chdir(cwd)
        if status != 0:
            raise RuntimeError(f"skae compare exited with status {status}: {text}")
        (folder / "run.txt").write_text(text, encoding="utf-8")
        for path in (Path(scratch) / "skae-compare").iterdir():
            shutil.copy(path, folder / path.name)


def setup(app):
    app.connect("config-inited", _check_api_lists_public_names)
    app.connect("builder-inited", _generate_cli_pages)
    # After intersphinx (priority 500), so that online builds still link.
    app.connect("missing-reference", _unlink_sklearn_user_guide_refs, priority=900)

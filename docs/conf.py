# SPDX-License-Identifier: BSD-3-Clause
"""Sphinx configuration for the skae documentation.

Build from the repository root with ``sphinx-build -W -b html docs docs/_build/html``
after ``pip install -e ".[docs]"``. The gallery runs every script in ``examples/``.
"""

import logging
import re
from pathlib import Path

from sphinx.util import logging as sphinx_logging

import skae

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
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
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
    "within_subsection_order": "FileNameSortKey",
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
}


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


def setup(app):
    app.connect("config-inited", _check_api_lists_public_names)
    # After intersphinx (priority 500), so that online builds still link.
    app.connect("missing-reference", _unlink_sklearn_user_guide_refs, priority=900)

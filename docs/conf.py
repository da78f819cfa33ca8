"""Sphinx configuration for lossjax's documentation site.

Everything that lists public names or repeats the README is generated here at build time
(API pages, the name tables, the notebooks, the benchmark chart), so the site cannot drift
from the code: see ``docs/_api.py`` and ``docs/_generate.py``.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS)]
# Notebook kernels are child processes: they import the lossjax this build documents.
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
)

import _api  # noqa: E402
import _generate  # noqa: E402

import lossjax  # noqa: E402

project = "lossjax"
author = "lossjax contributors"
copyright = "lossjax contributors"
version = release = lossjax.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints", "README.md"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# autodoc: signatures as written (keyword-only markers and defaults), hints in the signature.
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_type_aliases = {"ArrayLike": "jax.typing.ArrayLike", "Array": "jax.Array"}
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
add_module_names = False

# Notebooks run on every build (never a stale output); a failing cell fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"lossjax {release}"
html_static_path: list[str] = []
html_theme_options = {"navigation_with_keys": True}



def _wrapper_signature(app, what, name, obj, options, signature, return_annotation):
    """Losses made by ``elementwise_loss`` are ``functools.wraps`` wrappers, which autodoc
    would show with the wrapped function's signature: show the one users call, the wrapped
    function's arguments (its options keyword-only) plus ``weights``/``where``/``reduction``."""
    if not (what == "function" and inspect.isfunction(obj) and hasattr(obj, "__wrapped__")):
        return None
    inner = list(inspect.signature(obj.__wrapped__, eval_str=True).parameters.values())
    outer = inspect.signature(obj, follow_wrapped=False).parameters.values()
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = inner[:2] + [p.replace(kind=keyword) for p in inner[2:]]
    params += [p.replace(annotation=p.empty) for p in outer if p.kind == keyword]
    return str(inspect.Signature(params)), return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _wrapper_signature)


_api.write(DOCS / "api")
_generate.install_kernel(DOCS / "_build" / "jupyter")
_generate.write_all(DOCS, ROOT)

"""The README's docs command keeps working: every package the executed pages import is in
the extras that command installs, and the site builds with warnings as errors.

The full build (``sphinx-build`` as the README says) executes every notebook, minutes of
CPU; here the site is built with notebook execution off (the notebooks run in
``tests/test_notebooks.py``), which still catches a broken page, reference, docstring or
toctree, and the imports are checked statically.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# A distribution that imports another without declaring it: wherever the first is
# installed, the second must be listed beside it.
UNDECLARED = {"gymnax": ["six"]}


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _extras() -> dict[str, set[str]]:
    """``{extra: {distribution names}}`` from pyproject.toml, plus ``""`` for the core."""
    text = (ROOT / "pyproject.toml").read_text()

    def names(body: str) -> set[str]:
        requirements = re.findall(r'"([^"]+)"', re.sub(r"#.*", "", body))
        return {_normalize(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}

    core = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = {name: names(body)
              for name, body in re.findall(r"^(\w+) = \[(.*?)\]$", section, re.M | re.S)}
    assert core is not None and {"docs", "notebooks", "test", "rl"} <= set(extras)
    return {"": names(core.group(1)), **extras}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _code_cells(pages: bool) -> dict[str, list[str]]:
    """The notebooks' code cells and, with ``pages``, the ``{code-cell}`` blocks of the
    MyST pages the docs build executes (the Flax page)."""
    cells = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        cells[path.name] = ["".join(c["source"]) for c in notebook["cells"]
                            if c["cell_type"] == "code"]
    for path in sorted((ROOT / "docs").glob("*.md")) if pages else []:
        blocks = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```$", path.read_text(), re.M | re.S)
        if blocks:
            cells[f"docs/{path.name}"] = blocks
    return cells


def _imports(source: str) -> set[str]:
    """Dotted modules imported anywhere in ``source`` (magics and shell lines dropped)."""
    code = "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _lossjax_module_file(module: str) -> pathlib.Path | None:
    parts = module.split(".")
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"),
                      ROOT.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def _third_party(modules: set[str]) -> set[str]:
    """Top-level third-party modules imported by ``modules``, following imports into the
    ``lossjax`` submodules they name (``lossjax.examples.ppo_cartpole`` imports gymnax)."""
    seen, todo, result = set(), list(modules), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        top = module.split(".")[0]
        if top != "lossjax":
            if top not in sys.stdlib_module_names:
                result.add(top)
            continue
        path = _lossjax_module_file(module)
        if module != "lossjax" and path is not None:  # the core needs only the core deps
            todo.extend(_imports(path.read_text()))
    return result


def test_parsers_see_what_a_notebook_needs():
    assert "docs/flax.md" in _code_cells(pages=True)
    assert _imports("%matplotlib inline\nfrom a.b import c\nimport d.e as f") == {
        "a.b", "a.b.c", "d.e"}
    assert "gymnax" in _third_party({"lossjax.examples.ppo_cartpole"})
    assert _extras()["rl"] >= {"gymnax", "six"}


@pytest.mark.parametrize("extra", ["docs", "notebooks"])
def test_every_package_the_pages_import_is_in_the_extra(extra):
    """``docs``: what the notebooks and the executed pages import; ``notebooks``: what the
    notebooks import."""
    extras = _extras()
    installed = extras[""] | extras[extra]
    distributions = _distributions()
    missing = {}
    for page, cells in _code_cells(pages=extra == "docs").items():
        for module in sorted(_third_party(set().union(*map(_imports, cells)))):
            names = {_normalize(d) for d in distributions.get(module, [module])}
            if not names & installed:
                missing.setdefault(page, []).append(f"{module} ({', '.join(sorted(names))})")
    assert not missing, f"pip install -e '.[{extra}]' lacks what these import: {missing}"


@pytest.mark.parametrize("extra", ["", "docs", "notebooks", "rl", "test"])
def test_undeclared_dependencies_are_listed_beside_their_package(extra):
    names = _extras()[extra]
    for package, needs in UNDECLARED.items():
        if package in names:
            assert set(needs) <= names, f"{extra or 'dependencies'}: {package} needs {needs}"


def test_site_builds_without_warnings(tmp_path):
    """``sphinx-build -W`` with the notebooks left unexecuted; the dummy builder resolves
    every page, reference and docstring like the HTML builder but writes no files."""
    command = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q",
               "-D", "nb_execution_mode=off", "-b", "dummy", "-d", str(tmp_path / "doctrees"),
               str(ROOT / "docs"), str(tmp_path / "out")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    warnings = [line for line in result.stderr.splitlines()
                if "WARNING" in line and "IPKernelApp" not in line or "ERROR" in line]
    assert result.returncode == 0 and not warnings, "\n".join(warnings or [result.stderr])


def test_flax_page_runs_and_says_what_it_claims(capsys):
    """The Flax page's cells, in order, in one namespace (as the docs build runs them)."""
    (cells,) = [c for page, c in _code_cells(pages=True).items() if page == "docs/flax.md"]
    namespace: dict = {"__name__": "flax_page"}
    for cell in cells:
        exec(compile(cell, "docs/flax.md", "exec"), namespace)
    out = capsys.readouterr().out
    for claim in ("skipped micro-batches: 1", "optimizer steps taken: 1",
                  "resumed run equals the continued one: True",
                  "restored predictions match: True"):
        assert claim in out, out
    first, last = map(float, out.split("training loss ")[1].split()[0:3:2])
    assert last < first / 3

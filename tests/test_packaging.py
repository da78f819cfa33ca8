"""What ``pip install lossjax`` ships, and its type hints as pyright sees them."""

from __future__ import annotations

import email.parser
import json
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

import lossjax

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy without build outputs, so the wheel is built from what git would hold.
    source = out / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "*.egg-info", "build", "dist", "_build", "__pycache__",
            ".pytest_cache", ".hypothesis", ".ruff_cache", "results",
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (path,) = out.glob("lossjax-*.whl")
    return path


def test_wheel_holds_the_package_and_its_type_marker_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packaged = [n for n in names if ".dist-info/" not in n]
    assert "lossjax/__init__.py" in packaged
    assert "lossjax/py.typed" in packaged
    assert "lossjax/losses/_regression.py" in packaged
    assert "lossjax/optimizers/__init__.py" in packaged
    assert all(n.startswith("lossjax/") for n in packaged), packaged
    for other in ("tests/", "bench/", "notebooks/", "docs/"):
        assert not any(other in n for n in names), f"{other} in the wheel"


def test_version_has_one_source(wheel):
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = pyproject.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, re.M)
    assert re.search(r'^dynamic = \["version"\]$', project, re.M)
    assert 'version = { attr = "lossjax.__version__" }' in pyproject
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    headers = email.parser.Parser().parsestr(archive.read(metadata).decode())
    assert headers["Version"] == lossjax.__version__
    assert wheel.name.startswith(f"lossjax-{lossjax.__version__}-")
    assert f"## {lossjax.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_pyright_finds_no_errors():
    """pyright in basic mode, configured in pyproject.toml ([tool.pyright])."""
    pyright = shutil.which("pyright")
    if pyright is None:
        pytest.fail("pyright is not installed: pip install -e '.[test]'")
    result = subprocess.run(
        [pyright, "--outputjson", "--pythonpath", sys.executable],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(result.stdout)
    errors = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message'].splitlines()[0]}"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert report["summary"]["filesAnalyzed"] > 0
    assert not errors, f"{len(errors)} pyright errors:\n" + "\n".join(errors)

"""Run installed optax/rlax test files in a child pytest, with or without lossjax's names.

One child process per call: the substitutions (``plugin.py``) live and die with it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Mapping

import optax

from tests.compat.table import DIFFERENCES, OPTIMIZER_SIDE

REPO = pathlib.Path(__file__).resolve().parents[2]
SITE_PACKAGES = pathlib.Path(optax.__file__).resolve().parents[1]


@dataclasses.dataclass
class FileResult:
    """Outcomes of one test file: node id -> "passed" / "failed" / "skipped" / "error"."""

    path: str
    outcomes: dict[str, str]
    errors: dict[str, str]
    collected: list[str]
    returncode: int

    def count(self, outcome: str) -> int:
        return sum(o == outcome for o in self.outcomes.values())


def run_files(paths: list[str] | tuple[str, ...], *, substitute: bool,
              extra_args: tuple[str, ...] = ()) -> FileResult:
    """Run test files (paths relative to site-packages) in one child pytest."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "outcomes.json"
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               "LOSSJAX_COMPAT_OUTCOMES": str(out),
               "LOSSJAX_COMPAT_SUBSTITUTE": "1" if substitute else "0"}
        command = [sys.executable, "-m", "pytest", "-p", "tests.compat.plugin",
                   "-p", "no:cacheprovider", "-q", "--no-header", "-c", os.devnull,
                   "--rootdir", str(SITE_PACKAGES), "--confcutdir", str(SITE_PACKAGES),
                   *extra_args,
                   *(str(SITE_PACKAGES / p) for p in paths)]
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if not out.exists():
            raise RuntimeError(f"child pytest wrote no outcomes (rc {proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        data = json.loads(out.read_text())
    return FileResult(" ".join(paths), data["outcomes"], data["errors"], data["collected"],
                      proc.returncode)


KINDS = ("passed", "difference", "optimizer-side", "failed", "skipped")


def matching(nodeid: str, patterns: Mapping[str, str]) -> str | None:
    """The first pattern (a node id, ``*`` for any run of characters) naming ``nodeid``."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(nodeid, pattern):
            return pattern
    return None


def classify(nodeid: str, outcome: str) -> str:
    """One of :data:`KINDS` for a test case's outcome on lossjax."""
    if outcome in ("passed", "skipped"):
        return outcome
    if matching(nodeid, DIFFERENCES):
        return "difference"
    if matching(nodeid, OPTIMIZER_SIDE):
        return "optimizer-side"
    return "failed"

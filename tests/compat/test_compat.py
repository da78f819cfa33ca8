"""optax's and rlax's own test files pass with lossjax's functions in place of theirs.

One child pytest (one test), with the substitutions installed, runs the fast files of
``table.py`` (``FAST_GROUPS``: the loss and rlax files): every case must pass, or be a
documented difference that still fails (so the list never goes stale). The schedule and
optimizer files run in ``python -m bench.compat``; here the ones a table entry names are
only collected, to check that every documented difference and every optimizer-side entry
names real cases.
"""

from __future__ import annotations

import inspect
import pathlib
import re

from tests.compat.run import SITE_PACKAGES, matching, run_files
from tests.compat.table import (
    DIFFERENCES,
    FAST_GROUPS,
    OPTIMIZER_SIDE,
    SUBSTITUTIONS,
    TEST_FILES,
)

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "coming_from.md"
FAST_FILES = [path for group in FAST_GROUPS for path in TEST_FILES[group]]


ALL_FILES = [path for paths in TEST_FILES.values() for path in paths]


def test_optax_and_rlax_test_files_pass_on_lossjax():
    # One test, one child pytest (about a CPU-minute): split over xdist workers, a shared
    # fixture would run once per worker. Files beyond the fast ones are only collected, and
    # only those a table entry names (importing the big optimizer test modules costs).
    named = {p.split("::", 1)[0] for p in (*DIFFERENCES, *OPTIMIZER_SIDE)}
    collect = [path for path in ALL_FILES if path in FAST_FILES or path in named]
    result = run_files(collect, substitute=True, run_only=FAST_FILES)
    by_file: dict[str, dict[str, str]] = {path: {} for path in FAST_FILES}
    for nodeid, outcome in result.outcomes.items():
        by_file[nodeid.split("::", 1)[0]][nodeid] = outcome
    assert all(by_file.values()), [path for path, cases in by_file.items() if not cases]
    # Optimizer-side entries excuse nothing here: only documented differences may fail.
    failures = {nodeid: result.errors.get(nodeid, "")
                for cases in by_file.values() for nodeid, outcome in cases.items()
                if outcome not in ("passed", "skipped") and not matching(nodeid, DIFFERENCES)}
    assert not failures, failures
    stale = [nodeid for cases in by_file.values() for nodeid, outcome in cases.items()
             if matching(nodeid, DIFFERENCES) and outcome == "passed"]
    assert not stale, f"documented differences that pass now (remove them): {stale}"
    # Every documented difference and optimizer-side entry names collected test cases.
    assert len(result.collected) >= 277
    assert named <= set(ALL_FILES), sorted(named - set(ALL_FILES))
    for patterns in (DIFFERENCES, OPTIMIZER_SIDE):
        unmatched = [p for p in patterns
                     if not any(matching(nodeid, {p: ""}) for nodeid in result.collected)]
        assert not unmatched, unmatched


def test_every_difference_is_in_the_docs():
    text = " ".join(DOCS.read_text().split())
    section = text[text.index("## Differences from optax and rlax"):]
    for pattern, reason in DIFFERENCES.items():
        test_name = re.sub(r"\W*\*$", "", pattern.rsplit("::", 1)[-1])
        assert test_name in section, pattern
        assert " ".join(reason.split()) in section, (pattern, reason)


def test_substitutions_resolve_to_the_same_kind_of_object():
    import importlib

    for path, sub in SUBSTITUTIONS.items():
        module, _, attr = path.rpartition(".")
        original = getattr(importlib.import_module(module), attr)
        replacement = sub.resolve()
        assert isinstance(original, type) == isinstance(replacement, type), path
        assert callable(replacement), path
        if not isinstance(replacement, type):
            inspect.signature(replacement)


def test_site_packages_hold_the_test_files():
    for paths in TEST_FILES.values():
        for path in paths:
            assert (SITE_PACKAGES / path).is_file(), path


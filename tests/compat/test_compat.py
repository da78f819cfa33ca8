"""optax's and rlax's own test files pass with lossjax's functions in place of theirs.

One child pytest collects every file of ``table.py`` with the substitutions installed and
runs the fast ones (``FAST_GROUPS``: the losses, rlax and schedules): every case must pass,
or be a documented difference that still fails (so the list never goes stale). The
optimizer files run in ``python -m bench.compat``; here their cases are only collected, to
check that every documented difference and every optimizer-side entry names real cases.
"""

from __future__ import annotations

import inspect
import pathlib
import re

import pytest

from tests.compat.run import SITE_PACKAGES, classify, matching, run_files
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


@pytest.fixture(scope="module")
def fast_run():
    """One child pytest: every file collected, the fast files run on lossjax."""
    return run_files(ALL_FILES, substitute=True, run_only=FAST_FILES)


@pytest.mark.parametrize("path", FAST_FILES)
def test_fast_file_passes_on_lossjax(fast_run, path):
    outcomes = {nodeid: outcome for nodeid, outcome in fast_run.outcomes.items()
                if nodeid.split("::", 1)[0] == path}
    assert outcomes, f"{path}: no test case ran"
    failures = {nodeid: fast_run.errors.get(nodeid, "")
                for nodeid, outcome in outcomes.items()
                if classify(nodeid, outcome) == "failed"}
    assert not failures, failures
    stale = [nodeid for nodeid, outcome in outcomes.items()
             if matching(nodeid, DIFFERENCES) and outcome == "passed"]
    assert not stale, f"documented differences that pass now (remove them): {stale}"


def test_differences_name_real_test_cases(fast_run):
    collected = fast_run.collected
    assert len(collected) > 1000
    for patterns in (DIFFERENCES, OPTIMIZER_SIDE):
        unmatched = [p for p in patterns
                     if not any(matching(nodeid, {p: ""}) for nodeid in collected)]
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

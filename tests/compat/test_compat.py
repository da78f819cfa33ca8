"""optax's and rlax's own test files pass with lossjax's functions in place of theirs.

One child pytest (one test), with the substitutions installed, runs the fast files of
``table.py`` (``FAST_GROUPS``: the loss and rlax files): every case must pass, or be a
documented difference that still fails (so the list never goes stale). The schedule and
optimizer files run in ``python -m bench.compat``; for them the suite checks that every
documented difference and optimizer-side entry names a test the file defines.
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
    # fixture would run once per worker.
    result = run_files(FAST_FILES, substitute=True)
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
    # Every documented difference and optimizer-side entry in these files names cases.
    entries = [p for p in (*DIFFERENCES, *OPTIMIZER_SIDE) if p.split("::", 1)[0] in FAST_FILES]
    unmatched = [p for p in entries
                 if not any(matching(nodeid, {p: ""}) for nodeid in result.collected)]
    assert not unmatched, unmatched


def _defines(source: str, part: str) -> bool:
    """Whether a test file defines the class or test function a node-id part names
    (parameterised cases add digits or ``__with_jit``-like suffixes to the function)."""
    name = part.rstrip("*")
    if re.search(rf"^class {re.escape(name)}\b", source, re.M):
        return True
    for end in range(len(name), 0, -1):  # the longest defined prefix
        if re.search(rf"^\s*def {re.escape(name[:end])}\(", source, re.M):
            return name[:end].startswith("test") and re.fullmatch(
                r"\d*(_[\w]*)?", name[end:]) is not None
    return False


def test_entries_beyond_the_fast_files_name_defined_tests():
    # Those files are not collected in the suite (the optimizer test modules are big).
    for pattern in (*DIFFERENCES, *OPTIMIZER_SIDE):
        path, *parts = pattern.split("::")
        if path in FAST_FILES:
            continue
        assert path in ALL_FILES, pattern
        source = (SITE_PACKAGES / path).read_text()
        assert all(_defines(source, part) for part in parts), pattern


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



def test_defines_rejects_names_a_file_lacks():
    source = (SITE_PACKAGES / "optax/schedules/_schedule_test.py").read_text()
    assert _defines(source, "ExponentialTest") and _defines(source, "test_nonvalid_decay_rate1")
    assert not _defines(source, "ExponentialTests")
    assert not _defines(source, "test_nonvalid_decay_rates")
    assert not _defines(source, "test_no_such_case*")


def test_dispatchers_show_lossjax_annotations_in_optax_spelling():
    # optax's ScheduleAsLearningRateTest runs an optimizer only when its `learning_rate`
    # annotation is optax's ScalarOrSchedule; lossjax's is the postponed string
    # "ScalarOrSchedule" (float | Array | lossjax's Schedule protocol).
    import optax

    import lossjax
    from tests.compat.plugin import _optax_signature

    def learning_rate(function):
        return _optax_signature(function).parameters["learning_rate"].annotation

    assert inspect.signature(lossjax.adam).parameters["learning_rate"].annotation == (
        "ScalarOrSchedule")
    assert learning_rate(lossjax.adam) == optax.ScalarOrSchedule
    # Optional stays optional (optax's test skips adadelta on optax too), a float stays one.
    assert learning_rate(lossjax.adadelta) != optax.ScalarOrSchedule
    assert learning_rate(lossjax.rprop) is float


def test_classes_replaced_in_private_modules_are_substituted_classes():
    import importlib

    from tests.compat.table import CLASSES_IN_PRIVATE_MODULES

    for path in CLASSES_IN_PRIVATE_MODULES:
        assert path in SUBSTITUTIONS and isinstance(SUBSTITUTIONS[path].resolve(), type), path
        module, _, name = path.rpartition(".")
        original = getattr(importlib.import_module(module), name)
        assert SUBSTITUTIONS[path].resolve()._fields == original._fields, path  # optax's

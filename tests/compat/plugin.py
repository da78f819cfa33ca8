"""pytest plugin for a child pytest that runs installed optax/rlax test files.

It always records one outcome per test case into the JSON file named by
``LOSSJAX_COMPAT_OUTCOMES``. With ``LOSSJAX_COMPAT_SUBSTITUTE=1`` it first replaces every
name of :data:`tests.compat.table.SUBSTITUTIONS` before the test modules are imported:

* Functions: every module attribute under ``optax``/``rlax`` that *is* the original object
  (``optax.adam``, ``optax._src.alias.adam``, ``optax.transforms.trace`` ...) becomes a
  dispatcher. Called from optax's or rlax's own library code it calls the original (so an
  optax function that lossjax does not provide keeps optax's arithmetic); called from
  anywhere else (the test modules, chex, ``jax.jit``, lossjax's wrappers) it calls lossjax's.
  ``inspect.signature`` of the dispatcher is lossjax's, read as optax's test code reads
  optax's: lossjax's postponed (string) annotations evaluated, and the types of
  :data:`tests.compat.table.ANNOTATIONS` spelled as optax's (so optax's check "is the
  ``learning_rate`` annotated ``ScalarOrSchedule``" asks the same of lossjax).
* Classes (state NamedTuples, ``MaskedNode``, ``LookaheadParams``): replaced in the public
  namespaces (``optax``, ``optax.contrib``, ``optax.transforms`` ...), not in optax's
  private modules: a class cannot tell who builds it, and optax's own code that lossjax
  does not replace (``optax.MultiSteps``) must keep building optax's states. The classes
  of :data:`tests.compat.table.CLASSES_IN_PRIVATE_MODULES`, which only substituted
  functions build, are replaced there too (tests build them from the private module).

Nothing leaks: the child process ends with its test files.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import pkgutil
import sys
import types
import typing
from typing import Any

import pytest

from tests._xla import use_fast_compile_flags

use_fast_compile_flags()

_LIBRARIES = ("optax", "rlax")


def _is_library_module(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in _LIBRARIES and not name.endswith("_test") and not name.endswith("test_utils")


def _import_all() -> None:
    for library in _LIBRARIES:
        package = importlib.import_module(library)
        for info in pkgutil.walk_packages(package.__path__, f"{library}."):
            if info.name.endswith("_test"):
                continue
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional dependency of a module no test here uses
                pass


def _resolve(path: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _as_optax_type(annotation: Any, types_: dict[Any, Any]) -> Any:
    """A lossjax annotation in optax's spelling: a type of ``types_`` as optax's, a union
    (``X | Y``) as ``typing.Union`` of its members so spelled; anything else unchanged."""
    if annotation in types_:
        return types_[annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.Union[tuple(_as_optax_type(a, types_)  # noqa: UP007
                                  for a in typing.get_args(annotation))]
    return annotation


def _optax_signature(function: Any) -> inspect.Signature | None:
    """lossjax's signature with evaluated annotations spelled as optax's (None: keep
    lossjax's own, when an annotation cannot be evaluated)."""
    from tests.compat.table import ANNOTATIONS

    types_ = {_resolve_lossjax(ours): _resolve(theirs) for ours, theirs in ANNOTATIONS.items()}
    try:
        signature = inspect.signature(function, eval_str=True)
    except (NameError, TypeError, ValueError):
        return None
    parameters = [p.replace(annotation=_as_optax_type(p.annotation, types_))
                  for p in signature.parameters.values()]
    return signature.replace(parameters=parameters)


def _resolve_lossjax(path: str) -> Any:
    import lossjax

    obj: Any = lossjax
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _dispatcher(original: Any, replacement: Any) -> Any:
    @functools.wraps(replacement)
    def dispatch(*args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if _is_library_module(caller):
            return original(*args, **kwargs)
        return replacement(*args, **kwargs)

    signature = _optax_signature(replacement)
    if signature is not None:
        dispatch.__signature__ = signature  # type: ignore[attr-defined]
    return dispatch


def _with_defaults(function: Any, defaults: dict[str, Any]) -> Any:
    if not defaults:
        return function

    @functools.wraps(function)
    def call(*args, **kwargs):
        return function(*args, **{**defaults, **kwargs})

    return call


def install() -> dict[str, int]:
    """Replace every name of the table; returns, per name, how many attributes changed."""
    from tests.compat.table import CLASSES_IN_PRIVATE_MODULES, SUBSTITUTIONS

    _import_all()
    modules = [m for name, m in list(sys.modules.items())
               if m is not None and name.split(".", 1)[0] in _LIBRARIES
               and not name.endswith("_test")]
    patched: dict[str, int] = {}
    for path, sub in SUBSTITUTIONS.items():
        original = _resolve(path)
        lossjax_object = sub.resolve()
        if isinstance(original, type):
            replacement = lossjax_object
        else:
            replacement = _dispatcher(original, _with_defaults(lossjax_object, dict(sub.kwargs)))
        count = 0
        for module in modules:
            if isinstance(original, type) and path not in CLASSES_IN_PRIVATE_MODULES and any(
                    part.startswith("_") for part in module.__name__.split(".")):
                continue  # optax's own code keeps building its own states (MultiSteps)
            for attr, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attr, replacement)
                    count += 1
        patched[path] = count
    return patched


_OUTCOMES: dict[str, str] = {}
_ERRORS: dict[str, str] = {}
_COLLECTED: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("LOSSJAX_COMPAT_SUBSTITUTE") == "1":
        install()


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.split())[:300]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _OUTCOMES[report.nodeid] = "failed"
        _ERRORS.setdefault(report.nodeid, _message(report))
    elif report.when == "call" or (report.when == "setup" and report.skipped):
        _OUTCOMES.setdefault(report.nodeid, "skipped" if report.skipped else "passed")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Record every collected case (a pattern of the table must name one)."""
    _COLLECTED.extend(item.nodeid for item in items)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _OUTCOMES[report.nodeid] = "error"
        _ERRORS[report.nodeid] = _message(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("LOSSJAX_COMPAT_OUTCOMES")
    if path:
        with open(path, "w") as f:
            json.dump({"outcomes": _OUTCOMES, "errors": _ERRORS, "collected": _COLLECTED}, f,
                      indent=0, sort_keys=True)

"""The registry of every public optimizer, transform and wrapper (the loss registry's idea).

``tests/optimizers/test_contract.py`` runs the optimizer contract over every entry, so an
optimizer gets it by adding an entry, not by copying checks. Entries live in one module per
family, ``tests/optimizers/samples/<family>.py``; every module in that package is
discovered automatically, so a new family adds its own file and edits no shared list. A
module defines:

* ``ENTRIES: list[Entry]``, one or more per public name (see :class:`Entry`);
* optionally ``EXEMPT: dict[str, str]``: public names of ``lossjax.optimizers.__all__``
  that are not transformations (state classes are recognised by themselves; helpers such as
  ``global_norm``, ``averaged_params``, ``lr_find``), each with the reason.

The coverage test fails, naming it, for any public name with neither an entry nor an
exemption, and for entries or exemptions naming no public name.

Entry format::

    Entry(
        "adamw",                                   # public name in lossjax.optimizers
        build=lambda: lossjax.adamw(1e-2, weight_decay=1e-3),
                                                   # a small, valid instance
        reference=lambda: optax.adamw(1e-2, weight_decay=1e-3),
                                                   # the same thing in optax / optax.contrib
                                                   # / rlax, or None when none has it
        kind="optimizer",                          # "optimizer" (ends with the learning
                                                   # rate), "transform" or "wrapper"
        update_kwargs=None,                        # extra keyword arguments of update, as a
                                                   # function (grads, params) -> dict (e.g.
                                                   # value=..., value_fn=... for line searches)
        exempt={"complex": "reason"},              # contract check -> why it does not apply
        id="",                                     # suffix for a second entry of one name
        params=None,                               # params -> what init/update take (e.g.
                                                   # LookaheadParams.init_synced), or None
    )
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

import lossjax
from tests.optimizers import samples as _samples_package

KINDS = ("optimizer", "transform", "wrapper")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One public optimizer, transform or wrapper; see the module docstring for each field."""

    name: str
    build: Callable[[], optax.GradientTransformation]
    reference: Callable[[], optax.GradientTransformation] | None = None
    kind: str = "optimizer"
    update_kwargs: Callable[[Any, Any], Mapping[str, Any]] | None = None
    exempt: Mapping[str, str] = dataclasses.field(default_factory=dict)
    id: str = ""
    params: Callable[[Any], Any] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        empty = [check for check, reason in self.exempt.items() if not reason.strip()]
        if empty:
            raise ValueError(f"{self.name}: exemptions need a reason: {empty}")

    @property
    def test_id(self) -> str:
        return f"{self.name}-{self.id}" if self.id else self.name

    @property
    def fn(self) -> Callable[..., Any]:
        return getattr(lossjax.optimizers, self.name)

    def wrap(self, params: Any) -> Any:
        """``params`` as ``init`` and ``update`` take them."""
        return params if self.params is None else self.params(params)

    def kwargs(self, grads: Any, params: Any) -> Mapping[str, Any]:
        return {} if self.update_kwargs is None else self.update_kwargs(grads, params)


def half_squared_norm(params: Any) -> Any:
    """``½ Σ |p|²`` over the float leaves: the objective that entries needing ``value`` or
    ``value_fn`` (line searches, Polyak, plateau) are given."""
    leaves = [x for x in jax.tree.leaves(params) if jnp.issubdtype(jnp.result_type(x),
                                                                   jnp.inexact)]
    return sum(0.5 * jnp.sum(jnp.abs(x) ** 2) for x in leaves)


def value_kwargs(grads: Any, params: Any) -> dict[str, Any]:
    """``value=`` for :func:`half_squared_norm` at ``params``."""
    del grads
    return {"value": half_squared_norm(params)}


def line_search_kwargs(grads: Any, params: Any) -> dict[str, Any]:
    """``value=``, ``grad=`` and ``value_fn=`` for :func:`half_squared_norm` at ``params``."""
    return {"value": half_squared_norm(params), "grad": grads, "value_fn": half_squared_norm}


def _modules():
    for info in pkgutil.iter_modules(_samples_package.__path__):
        yield importlib.import_module(f"{_samples_package.__name__}.{info.name}")


ENTRIES: list[Entry] = [entry for module in _modules() for entry in module.ENTRIES]
EXEMPT: dict[str, str] = {
    name: reason for module in _modules() for name, reason in getattr(module, "EXEMPT", {}).items()
}


def entries_with(check: str) -> list[Entry]:
    """The entries that do not exempt ``check``, for ``pytest.mark.parametrize``."""
    return [entry for entry in ENTRIES if check not in entry.exempt]


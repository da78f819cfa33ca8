"""The registry of sample inputs for every public loss (PyTorch's OpInfo idea).

``tests/losses/test_contract.py`` runs the whole loss contract over every entry, so a loss
gets it by adding an entry, not by copying checks. Entries live in one module per family,
``tests/losses/samples/<family>.py``; every module in that package is discovered
automatically, so a new family adds its own file and edits no shared list. A module
defines:

* ``SAMPLES: list[Sample]``, one or more entries per public loss (see :class:`Sample`);
* optionally ``EXEMPT: dict[str, str]``: public names of ``lossjax.losses.__all__`` that are
  not losses (``reduce_loss``, ``sparsemax``, return estimators ...), each with the reason.

The contract test fails, naming it, for any public name with neither an entry nor an
exemption, for any float option of a loss that is neither swept traced (``hyper``) nor
declared ``static`` with a reason, and for entries or exemptions naming no public loss.

Entry format (all arrays NumPy, float32 or int32, tiny: a few examples of a few classes)::

    Sample(
        "softmax_cross_entropy_with_integer_labels",  # public name in lossjax.losses
        args=(logits(3, 4), labels(3, 4)),   # positional arrays, in signature order
        kwargs={"axis": -1},                 # fixed keyword options (not traced/batched)
        hyper={"label_smoothing": (0.1, 0.0), "z_loss": (1e-3, 0.0)},
                                             # float options swept traced under vmap:
                                             # two valid values each (include 0 if allowed)
        static={},                           # float options that must be concrete: reason
        example_axes=None,                   # per arg: the axis along which examples run
                                             # (where/weights index it), None for an array
                                             # shared by all examples; default 0 for all
        mismatch=(0, 1),                     # args[j] gets a trailing axis: ValueError
                                             # naming both shapes of args[i] and args[j]
        skip={},                             # contract check -> reason it does not apply:
                                             # "weights", "where", "reductions", "mean",
                                             # "where_independent", "half", "shapes"
        class_where=(),                      # the loss also takes optax's per-class where
                                             # (the rank of args[0]): the indices of the
                                             # args whose last axis is that class axis
        id="",                               # suffix for a second entry of one loss
    )

With ``class_where`` the contract test checks optax's meaning of a ``where`` of the scores'
rank: dropping one class everywhere equals slicing it out of those args (integer labels
renumbered), and NaN/inf in the dropped class reach neither the value nor the gradient.

The examples are indexed by the first axes of the ``reduction="none"`` result; masking
example 0 must leave out, in every float argument, the slice at index 0 of its
``example_axes`` axis (the contract test puts NaN and ±inf there).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import lossjax
from tests.losses import samples as _samples_package

CHECKS = ("weights", "where", "reductions", "mean", "where_independent", "half", "shapes")


@dataclasses.dataclass(frozen=True)
class Sample:
    """One loss with sample inputs; see the module docstring for each field."""

    name: str
    args: tuple[np.ndarray, ...]
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hyper: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    static: Mapping[str, str] = dataclasses.field(default_factory=dict)
    example_axes: tuple[int | None, ...] | None = None
    mismatch: tuple[int, int] = (0, 1)
    skip: Mapping[str, str] = dataclasses.field(default_factory=dict)
    class_where: tuple[int, ...] = ()
    id: str = ""

    def __post_init__(self):
        unknown = set(self.skip) - set(CHECKS)
        if unknown:
            raise ValueError(f"{self.name}: unknown checks in skip: {sorted(unknown)}")

    @property
    def fn(self) -> Callable[..., Any]:
        return getattr(lossjax.losses, self.name)

    @property
    def label(self) -> str:
        return f"{self.name}-{self.id}" if self.id else self.name

    def axis_of(self, index: int) -> int | None:
        return 0 if self.example_axes is None else self.example_axes[index]

    def float_indices(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.args)
                     if np.issubdtype(np.asarray(a).dtype, np.floating))

    def __call__(self, *args, **overrides):
        return self.fn(*(args or self.args), **{**self.kwargs, **overrides})


def _discover() -> tuple[list[Sample], dict[str, str]]:
    samples: list[Sample] = []
    exempt: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(_samples_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{_samples_package.__name__}.{info.name}")
        samples.extend(getattr(module, "SAMPLES", []))
        exempt.update(getattr(module, "EXEMPT", {}))
    return samples, exempt



# ----- small input builders for sample modules (fixed seeds: the samples never change) -----

def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def floats(seed: int, *shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return rng(seed).uniform(low, high, shape).astype(np.float32)


def int_labels(seed: int, num_classes: int, *shape: int) -> np.ndarray:
    return rng(seed).integers(0, num_classes, shape).astype(np.int32)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def distribution(seed: int, *shape: int) -> np.ndarray:
    x = rng(seed).uniform(0.1, 1.0, shape)
    return (x / x.sum(-1, keepdims=True)).astype(np.float32)


def signs(seed: int, *shape: int) -> np.ndarray:
    return rng(seed).choice([-1.0, 1.0], shape).astype(np.float32)


# Last: the sample modules import the builders above from this module.
SAMPLES, EXEMPT = _discover()

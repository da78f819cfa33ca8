"""A hyperparameter held in an optimizer's state, as ``inject_hyperparams`` hands it to the
optimizer it rebuilds (see :class:`HeldNumber`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class HeldNumber:
    """A hyperparameter inside :func:`inject_hyperparams`' update: ``number``, the Python
    number the optimizer was built with, and ``held``, the value the state holds now
    (``unchanged`` says whether they are still equal).

    Arithmetic with Python numbers and other held numbers runs on both: on ``number`` in
    float64 on the host, exactly as the unwrapped optimizer computes ``1 − b1``, and on
    ``held`` traced. Meeting an array, it becomes the scalar
    ``where(unchanged, number, held)`` in the array's dtype, so the per-element code and
    the scalar values it sees are the unwrapped optimizer's while nothing is changed:
    bitwise equal results, and only scalars are selected (nothing blocks XLA's fusion).
    Code that needs a Python number from it (``float()``, ``math.log``, ``if``, ``==``)
    raises ``TypeError``, as a tracer would (``==`` too: answering ``False`` for an
    object that is not a number would pick a branch silently); ``host_or_traced`` in the
    optimizers' machinery maps host functions, and :func:`is_held_zero` finds a held 0.
    It is a pytree (children ``held`` and ``unchanged``, the number as static data), so a
    jitted helper that takes it as an argument sees a held number again inside.
    """

    __slots__ = ("number", "held", "unchanged")
    __array_priority__ = 1000  # NumPy defers to the reflected operators

    def __init__(self, number: Any, held: Any, unchanged: Any):
        self.number, self.held, self.unchanged = number, held, unchanged

    def value(self, dtype: Any = None) -> Array:
        """``where(unchanged, number, held)`` as a 0-d array of ``dtype`` (the held one)."""
        held = jnp.asarray(self.held)
        dtype = dtype or held.dtype
        if jnp.iscomplexobj(held) and not jnp.issubdtype(dtype, jnp.complexfloating):
            held = jnp.real(held)  # held in a complex dtype for complex parameters
        return jnp.where(self.unchanged, jnp.asarray(self.number, dtype), held.astype(dtype))

    def term_once_changed(self, x: Any, dtype: Any) -> Array:
        """``where(unchanged, 0, held·x)``, with ``held`` in ``dtype``: for a hyperparameter
        given as 0, the term the plain optimizer skips, 0 while the state still holds 0
        (see :func:`is_held_zero`)."""
        return jnp.where(self.unchanged, 0.0, jnp.asarray(self.held).astype(dtype) * x)

    def __jax_array__(self) -> Array:
        return self.value()

    def _binary(self, other: Any, op: Callable[[Any, Any], Any], reflected: bool,
                commutes: bool = False) -> Any:
        def apply(a, b):
            return op(b, a) if reflected else op(a, b)

        if isinstance(other, HeldNumber):
            return HeldNumber(apply(self.number, other.number), apply(self.held, other.held),
                              self.unchanged & other.unchanged)
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return HeldNumber(apply(self.number, other), apply(self.held, other),
                              self.unchanged)
        if isinstance(other, (jax.Array, np.ndarray, np.generic)):
            value = self.value(jnp.result_type(other, self.number))
            # the array first where the order is free: XLA puts a Python number's constant
            # second, and the same operand order compiles to the same machine arithmetic
            return op(other, value) if commutes or reflected else op(value, other)
        return NotImplemented

    def __add__(self, o): return self._binary(o, lambda a, b: a + b, False, True)  # noqa: E704
    def __radd__(self, o): return self._binary(o, lambda a, b: a + b, True, True)  # noqa: E704
    def __sub__(self, o): return self._binary(o, lambda a, b: a - b, False)  # noqa: E704
    def __rsub__(self, o): return self._binary(o, lambda a, b: a - b, True)  # noqa: E704
    def __mul__(self, o): return self._binary(o, lambda a, b: a * b, False, True)  # noqa: E704
    def __rmul__(self, o): return self._binary(o, lambda a, b: a * b, True, True)  # noqa: E704
    def __truediv__(self, o): return self._binary(o, lambda a, b: a / b, False)  # noqa: E704
    def __rtruediv__(self, o): return self._binary(o, lambda a, b: a / b, True)  # noqa: E704
    def __pow__(self, o): return self._binary(o, lambda a, b: a ** b, False)  # noqa: E704
    def __rpow__(self, o): return self._binary(o, lambda a, b: a ** b, True)  # noqa: E704

    def __neg__(self) -> HeldNumber:
        return HeldNumber(-self.number, -self.held, self.unchanged)

    def __pos__(self) -> HeldNumber:
        return self

    def __abs__(self) -> HeldNumber:
        return HeldNumber(abs(self.number), jnp.abs(self.held), self.unchanged)

    def _not_a_number(self, *args):
        raise TypeError("an injected hyperparameter is not a Python number while the "
                        "optimizer is built")

    __float__ = __int__ = __index__ = __bool__ = _not_a_number
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _not_a_number
    __hash__ = None  # type: ignore[assignment]


def is_held_zero(x: Any) -> TypeGuard[HeldNumber]:
    """Whether ``x`` is a :class:`HeldNumber` built with the number 0. Code that skips a
    term for a known 0 adds it through :meth:`HeldNumber.term_once_changed` instead: the
    value the skipped form gives while the held value still holds 0, and the term once it
    changes."""
    return isinstance(x, HeldNumber) and x.number == 0


class _HostNumber:
    """A held number's Python number as pytree auxiliary data (compared by identity: the
    same object within one trace, and arrays are not hashable)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _HostNumber) and other.value is self.value


# A pytree: a held number passed to a jitted helper (optax's ``tree.bias_correction``,
# ``jnp.where``) crosses the jit boundary as its traced parts and is rebuilt inside.
jax.tree_util.register_pytree_node(
    HeldNumber,
    lambda x: ((x.held, x.unchanged), _HostNumber(x.number)),
    lambda aux, children: HeldNumber(aux.value, *children))

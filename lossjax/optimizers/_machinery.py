"""The shared per-leaf machinery of the optimizer families.

The layering rule: every optimizer family module (``_adam_family.py``, ``_sign.py``, ...)
imports this module, the public basic transforms (``_transforms.py``) and the shared mask
module (``lossjax._mask``), and never another family or a private name of another package.
A fix made here (a dtype rule, a guard) reaches every optimizer at once.

What lives here:

- dtype rules: arithmetic runs in at least float32 (:func:`compute_dtype`, :func:`upcast`)
  and is cast back to the stored dtype; an integer leaf gets a float32 update
  (:func:`update_dtype`), a ``float0`` gradient none (:func:`is_float0`);
- the per-step scalars: :func:`increment_count` (saturating), :func:`bias_correction`
  (``1 − βᵗ`` without cancellation near ``β = 1``), :func:`scalar_dtype`;
- :func:`per_leaf`, which applies one small per-leaf function across trees, traced once per
  distinct leaf signature;
- small stateless pieces the families chain: :func:`negate`, :func:`scale_by_constant`,
  :func:`exponential_average`, :func:`weight_decay_parts`;
- state look-ups: :func:`nodes_of_type`, :func:`only_node_of_type`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._held import HeldNumber, is_held_zero
from lossjax._validation import check_in_range, check_non_negative, concrete_value
from lossjax.regularizers import add_decayed_weights
from lossjax.schedules import Schedule

Array = jax.Array
ScalarOrSchedule = float | Array | Schedule


class EmaState(NamedTuple):
    """``count``: updates seen (int32); ``ema``: the (not debiased) moving average."""

    count: Array
    ema: Any


class TraceState(NamedTuple):
    """``trace``: the running (momentum) buffer, shaped like the parameters."""

    trace: Any


def as_scalar(x: Any, dtype: Any) -> Array:
    """``x`` (a number, an array or a :class:`HeldNumber`) as a 0-d array of ``dtype``."""
    return x.value(dtype) if isinstance(x, HeldNumber) else jnp.asarray(x, dtype)


def host_or_traced(x: Any, host: Callable[[float], Any], traced: Callable[[Any], Any]) -> Any:
    """``host(x)`` for a known number (in float64 on the host), ``traced(x)`` for a traced
    value, both for a :class:`HeldNumber` (each on its side)."""
    if isinstance(x, HeldNumber):
        return HeldNumber(host(x.number), traced(x.held), x.unchanged)
    value = concrete_value(x)
    return traced(x) if value is None else host(value)


def compute_dtype(dtype: Any) -> Any:
    """The dtype the arithmetic runs in: ``dtype`` promoted to at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def update_dtype(dtype: Any) -> Any:
    """The dtype of an update for a leaf of ``dtype``: the same float dtype, and float32
    for an integer leaf (as optax: an integer update would truncate the step to 0)."""
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else compute_dtype(dtype)


def is_float0(x: Any) -> bool:
    """A ``float0`` gradient: what ``jax.grad(allow_int=True)`` gives for integer leaves."""
    return getattr(x, "dtype", None) == jax.dtypes.float0


def dtype_of(x: Any) -> Any:
    """The dtype of a leaf: an array, a ``jax.ShapeDtypeStruct`` or a Python number."""
    return x.dtype if hasattr(x, "dtype") else jnp.result_type(x)


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of a leaf: an array, a ``jax.ShapeDtypeStruct`` or a Python number (())."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def as_array_leaves(tree: Any) -> Any:
    """``tree`` with each plain Python number as a 0-d array (arrays, ``float0`` gradients
    and ``jax.ShapeDtypeStruct`` leaves as they are): for transforms whose per-leaf code
    reads ``.shape`` and ``.dtype``."""
    return jax.tree.map(lambda x: jnp.asarray(x) if isinstance(x, (int, float, complex))
                        else x, tree)


def without_float0(tree: Any) -> Any:
    """``tree`` with each ``float0`` leaf (the gradient of an integer leaf) replaced by a
    float32 zero of its shape, the update :func:`per_leaf` gives it; for transforms that
    map the updates with ``jax.tree.map``."""
    return jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32) if is_float0(x) else x, tree)


def trained_leaves(grads: Any, tree: Any) -> Any:
    """``tree`` (the parameters, or a state shaped like them) with each leaf whose gradient
    is ``float0`` (an integer leaf, which is not trained) as a float32 zero of its shape,
    and plain Python numbers as arrays: for transforms that sum norms or inner products
    over all leaves, where an integer leaf must add nothing."""
    return jax.tree.map(lambda g, x: jnp.zeros(g.shape, jnp.float32) if is_float0(g)
                        else jnp.asarray(x), grads, tree)


def upcast(x: Array) -> Array:
    return jnp.asarray(x).astype(compute_dtype(dtype_of(x)))


def scalar_dtype(tree: Any) -> Any:
    """float32, or float64 when some leaf is float64: the dtype of per-step scalars."""
    dtypes = [dtype_of(x) for x in jax.tree.leaves(tree)]
    return jnp.result_type(jnp.float32, *(d for d in dtypes if d != jax.dtypes.float0
                                           and jnp.issubdtype(d, jnp.inexact)))


def real_scalar_dtype(tree: Any) -> Any:
    """:func:`scalar_dtype`, real even for complex leaves (complex64 -> float32): the dtype
    of per-step scalars that are real by nature (step sizes, counts, loss values)."""
    return jnp.finfo(scalar_dtype(tree)).dtype


def full_like(p: Any, value: float = 0.0, dtype: Any = None) -> Array:
    """An array shaped like ``p`` (an array, a ``jax.ShapeDtypeStruct`` or a Python
    number); a moment of an integer leaf is float32 (it holds fractions of the gradient).
    An array's sharding carries over, so a state built from sharded parameters is sharded
    like them."""
    dtype = dtype or update_dtype(dtype_of(p))
    if isinstance(p, jax.Array):
        return jnp.full_like(p, value, dtype)
    return jnp.full(shape_of(p), value, dtype)


def reject_complex(name: str, params: Any) -> None:
    """``ValueError`` naming ``name`` when ``params`` holds a complex leaf: for optimizers
    whose complex form is not defined (or not optax's)."""
    if any(jnp.issubdtype(dtype_of(p), jnp.complexfloating) for p in jax.tree.leaves(params)):
        raise ValueError(f"{name} does not support complex parameters; optimize the real and "
                         "imaginary parts as separate real leaves")


def increment_count(count: Array) -> Array:
    """``count + 1`` that saturates instead of wrapping around at the int32 limit."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def log_decay(decay: Any) -> Array | float:
    """``log(decay)``: in float64 on the host for a known value (so ``b2 = 1 − 1e-9``,
    which is 1.0 in float32, keeps its distance from 1), traced otherwise."""
    return host_or_traced(decay, lambda v: math.log(v) if v > 0 else -math.inf, jnp.log)


def bias_correction_factor(decay: Any, count: Array, dtype: Any = jnp.float32) -> Array:
    """``1 − decay^count`` as ``−expm1(count·log(decay))``: a scalar per step in ``dtype``.

    ``1.0 − decay**count`` in float32 is exactly 0 for ``decay`` within 6e-8 of 1 (then
    Adam's ``v̂ = v/0`` and every update is 0 forever) and loses digits near it; the
    ``expm1`` form keeps full relative precision.
    """
    dtype = jnp.finfo(dtype).dtype  # real: for complex, (1 + 0j)·(−inf) is −inf + nan·j
    return -jnp.expm1(count.astype(dtype) * as_scalar(log_decay(decay), dtype))


def may_be_zero(eps: Any) -> bool:
    """Whether ``eps`` is 0 or unknown now: then a ``x/(√v + eps)`` needs a 0/0 guard. A
    :class:`HeldNumber` answers for the number it was built with, so that the optimizer
    keeps the unwrapped one's expressions (a guard changes how XLA:CPU contracts the
    arithmetic around it, and with it the rounding)."""
    if isinstance(eps, HeldNumber):
        return eps.number == 0
    value = concrete_value(eps)
    return value is None or value == 0


def weight_decay_parts(weight_decay: Any, mask: Any) -> list[optax.GradientTransformation]:
    """``[add_decayed_weights(weight_decay, mask)]``, the part optax's chains always hold
    (it reads no parameter for a known 0, and keeps optax's state layout)."""
    return [add_decayed_weights(weight_decay, mask)]


def needs_zero_guard(eps: Any, eps_root: Any = 0.0) -> bool:
    """Whether ``x/(√(v + eps_root) + eps)`` needs :func:`safe_div`'s 0/0 guard."""
    return may_be_zero(eps) and may_be_zero(eps_root)


def safe_div(numerator: Array, denominator: Array, guard: bool) -> Array:
    """``numerator/denominator``, and 0 where ``denominator`` is 0 when ``guard``: with
    ``eps = 0`` a zero gradient has ``m = v = 0``, and the step is 0, not 0/0 = NaN."""
    if not guard:
        return numerator / denominator
    positive = denominator > 0
    return jnp.where(positive, numerator / jnp.where(positive, denominator, 1), 0)


def per_leaf(
    fn: Callable[..., tuple[Array, ...]], n_out: int, *, trace_once: bool = True
) -> Callable[..., tuple[Any, ...]]:
    """Apply ``fn(*leaves, *scalars) -> n_out arrays`` across trees of the same structure.

    With ``trace_once``, ``fn`` is wrapped in ``jax.jit``: inside an outer ``jit`` each leaf
    becomes a call to one cached computation per leaf signature, which XLA inlines and
    fuses. A 200-leaf model with a handful of distinct shapes is traced a handful of times,
    not 200. For a one-operation ``fn`` the call costs more than it saves: pass ``False``.

    Returns ``n_out`` trees with the structure of ``trees[0]``.

    By convention ``trees[0]`` holds the updates and output ``k >= 1`` is the new value of
    input ``k`` (a state tree). A ``float0`` update (the gradient of an integer leaf from
    ``jax.grad(allow_int=True)``) is not an array to compute with: its leaf gets a float32
    zero update, so ``optax.apply_updates`` leaves the integer parameter as it is, and its
    state leaves are kept unchanged.
    """
    leaf_fn = jax.jit(fn) if trace_once else fn

    def leaf_or_skip(leaves, scalars):
        if is_float0(leaves[0]):
            return (jnp.zeros(leaves[0].shape, jnp.float32), *leaves[1:n_out])
        return leaf_fn(*leaves, *scalars)

    def apply(trees: Sequence[Any], scalars: Sequence[Array] = ()) -> tuple[Any, ...]:
        treedef = jax.tree.structure(trees[0])
        columns = [treedef.flatten_up_to(tree) for tree in trees]
        results = [leaf_or_skip(leaves, scalars) for leaves in zip(*columns, strict=True)]
        return tuple(treedef.unflatten([r[k] for r in results]) for k in range(n_out))

    return apply


def as_update(x: Array, g: Array) -> Array:
    """``x`` cast to the dtype of the update for gradient leaf ``g``."""
    return x.astype(update_dtype(g.dtype))


def check_moment_hyperparameters(b1: Any, b2: Any, eps: Any, eps_root: Any = 0.0) -> None:
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)


def moment_corrections(b1: Any, b2: Any, count: Array, dtype: Any) -> tuple[Array, ...]:
    """``1 − b1ᵗ``, ``1 − b1ᵗ⁺¹`` (Nesterov's look-ahead) and ``1 − b2ᵗ`` for step ``t``."""
    return (bias_correction_factor(b1, count, dtype),
            bias_correction_factor(b1, increment_count(count), dtype),
            bias_correction_factor(b2, count, dtype))


def abs_sq(x: Array) -> Array:
    """``|x|²``: ``x²`` for a real ``x``, ``x·x̄`` (real) for a complex one (optax's rule
    for second moments of complex parameters)."""
    if jnp.iscomplexobj(x):
        return jnp.real(x * jnp.conj(x))
    return x * x


def one_minus(decay: Any) -> Any:
    """``1 − decay``, in float64 on the host for a known value (``1 − (1 − 1e-9)`` keeps its
    digits), traced otherwise."""
    value = concrete_value(decay)
    return 1.0 - decay if value is None else 1.0 - value


def ema_of_squares(v32: Array, g32: Array, decay: Any) -> Array:
    """``decay·v + (1 − decay)·|g|²`` computed as ``decay·v + |√(1 − decay)·g|²``: the
    square of a gradient near 1e20 overflows float32, the square of the scaled one does
    not (``(1 − decay)·|g|²`` itself is finite)."""
    weight = one_minus(decay)
    root = host_or_traced(weight, math.sqrt, jnp.sqrt)
    return decay * v32 + abs_sq(root * g32)


def adam_moments(g, m, v, b1, b2) -> tuple[Array, Array, Array]:
    """``g`` in at least float32 and Adam's new moments ``b1·m + (1 − b1)·g`` and
    ``b2·v + (1 − b2)·|g|²`` (without overflow: :func:`ema_of_squares`), same dtype."""
    g32 = upcast(g)
    return g32, b1 * upcast(m) + (1.0 - b1) * g32, ema_of_squares(upcast(v), g32, b2)


def root_of_corrected(v32: Array, correction: Array, eps_root: Any) -> Array:
    """``√(v/c + eps_root)``; for a known ``eps_root = 0`` as ``√v/√c``, so that ``v/c``
    (up to ``|g|²`` for a huge gradient on the first step) is never formed."""
    correction = correction.astype(v32.dtype)
    if is_held_zero(eps_root):
        # √(v + s)/√c with the scalar s = where(unchanged, 0, eps_root·c): √v/√c while it
        # holds 0 (one square root per element, and the arithmetic around it contracts as
        # the plain optimizer's does), √(v/c + eps_root) once it is changed
        shift = eps_root.term_once_changed(correction, v32.dtype)
        return jnp.sqrt(v32 + shift) / jnp.sqrt(correction)
    value = concrete_value(eps_root)
    if value is not None and value == 0:
        return jnp.sqrt(v32) / jnp.sqrt(correction)
    return jnp.sqrt(v32 / correction + eps_root)


def first_moment_estimate(m32, g32, b1, c1, c1_next, nesterov: bool) -> Array:
    """``m̂ = m/(1 − b1ᵗ)``; with Nesterov (Dozat's NAdam)
    ``m̂ = b1·m/(1 − b1ᵗ⁺¹) + (1 − b1)·g/(1 − b1ᵗ)``."""
    dtype = m32.dtype
    if nesterov:
        return b1 * (m32 / c1_next.astype(dtype)) + (1.0 - b1) * (g32 / c1.astype(dtype))
    return m32 / c1.astype(dtype)


def scale_leaf(u, factor):
    return (as_update(upcast(u) * factor.astype(compute_dtype(u.dtype)), u),)


def scalar_rate(rate: Any, name: str = "learning_rate") -> Array:
    """A rate as a 0-d array: a ``(1,)`` rate must not broadcast a scalar parameter to
    shape ``(1,)``; a rate with more than one element is a mistake (``ValueError``)."""
    if np.size(rate) != 1:
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(rate)}")
    return jnp.reshape(rate, ())


def scale_by_constant(factor: float | Array) -> optax.GradientTransformation:
    """``u ← factor·u``, ``factor`` a constant of the compiled step (unlike a learning rate
    held in the state, XLA folds it into the neighbouring arithmetic). Stateless."""
    apply = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        (updates,) = apply((updates,), (as_scalar(factor, scalar_dtype(updates)),))
        return updates, state

    return optax.GradientTransformation(init, update)


def nodes_of_type(tree: Any, cls: type) -> list[Any]:
    """Every ``cls`` node inside ``tree`` (e.g. one kind of state inside a chain's)."""
    is_node = lambda node: isinstance(node, cls)  # noqa: E731
    return [node for node in jax.tree.leaves(tree, is_leaf=is_node) if is_node(node)]


def only_node_of_type(tree: Any, cls: type, what: str) -> Any:
    """The one ``cls`` node inside ``tree``; ``ValueError`` naming ``what`` otherwise."""
    found = nodes_of_type(tree, cls)
    if len(found) != 1:
        raise ValueError(f"state must hold exactly one {what} state, found {len(found)}")
    return found[0]


def negate() -> optax.GradientTransformation:
    """``u ← −u``: turns a step size that is part of the direction into descent."""

    def negate_leaf(u):
        return (-u,)

    apply = per_leaf(negate_leaf, 1, trace_once=False)

    def update(updates, state, params=None):
        del params
        return apply((updates,))[0], state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def exponential_average(decay: Any, accumulator_dtype: Any = None) -> optax.GradientTransformation:
    """``b ← decay·b + (1 − decay)·u``, the update being ``b`` (no debiasing); the state is
    an :class:`EmaState` (optax's ``ema(decay, debias=False)`` layout)."""

    def leaf(u, b):
        b32 = decay * upcast(b) + (1.0 - decay) * upcast(u)
        return as_update(b32, u), b32.astype(b.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        return EmaState(jnp.zeros([], jnp.int32),
                        jax.tree.map(lambda p: full_like(p, dtype=accumulator_dtype), params))

    def update(updates, state, params=None):
        del params
        updates, new = apply((updates, state.ema))
        return updates, EmaState(increment_count(state.count), new)

    return optax.GradientTransformation(init, update)

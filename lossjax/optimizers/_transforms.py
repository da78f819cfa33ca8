"""Small gradient transformations that the optimizers are chained from.

Each returns an ``optax.GradientTransformation`` whose state is a NamedTuple of arrays
shaped like the parameters (so it jits, shards like the parameters, and checkpoints).

Two rules hold throughout:

- Moment arithmetic runs in at least float32 and is cast back to the stored dtype, so half
  precision parameters never meet an ``eps`` that underflows to 0 (optax #1755).
- The per-leaf arithmetic is one small function, applied with :func:`_per_leaf`: it is
  traced and lowered once per distinct leaf shape and dtype, not once per leaf, and every
  scalar that depends only on the step (bias corrections, the learning rate) is computed
  once per step outside it. Everything stays elementwise, so under ``jit`` XLA fuses a
  chain (e.g. Adam, the learning rate and ``optax.apply_updates``) into one loop per output
  array (on CPU, where XLA does not fuse loops with several outputs, Adam makes three:
  new ``m``, new ``v``, new parameter), and a sharded state stays sharded like its
  parameters, with no gather.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._validation import (
    check_in_range,
    check_non_negative,
    check_positive,
    concrete_value,
)
from lossjax.regularizers._transforms import add_decayed_weights

Array = jax.Array
Schedule = Callable[[Array], Array]
ScalarOrSchedule = float | Array | Schedule


def _compute_dtype(dtype: Any) -> Any:
    """The dtype the arithmetic runs in: ``dtype`` promoted to at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def _update_dtype(dtype: Any) -> Any:
    """The dtype of an update for a leaf of ``dtype``: the same float dtype, and float32
    for an integer leaf (as optax: an integer update would truncate the step to 0)."""
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else _compute_dtype(dtype)


def _is_float0(x: Any) -> bool:
    """A ``float0`` gradient: what ``jax.grad(allow_int=True)`` gives for integer leaves."""
    return getattr(x, "dtype", None) == jax.dtypes.float0


def _f32(x: Array) -> Array:
    return x.astype(_compute_dtype(x.dtype))


def _scalar_dtype(tree: Any) -> Any:
    """float32, or float64 when some leaf is float64: the dtype of per-step scalars."""
    dtypes = (x.dtype for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact))
    return jnp.result_type(jnp.float32, *dtypes)


def _full(p: Any, value: float = 0.0, dtype: Any = None) -> Array:
    """An array shaped like ``p`` (an array or a ``jax.ShapeDtypeStruct``); a moment of an
    integer leaf is float32 (it holds fractions of the gradient)."""
    return jnp.full(p.shape, value, dtype or _update_dtype(p.dtype))


def _increment(count: Array) -> Array:
    """``count + 1`` that saturates instead of wrapping around at the int32 limit."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def _log(decay: Any) -> Array | float:
    """``log(decay)``: in float64 on the host for a known value (so ``b2 = 1 − 1e-9``,
    which is 1.0 in float32, keeps its distance from 1), traced otherwise."""
    value = concrete_value(decay)
    if value is None:
        return jnp.log(decay)
    return math.log(value) if value > 0 else -math.inf


def _bias_correction(decay: Any, count: Array, dtype: Any = jnp.float32) -> Array:
    """``1 − decay^count`` as ``−expm1(count·log(decay))``: a scalar per step in ``dtype``.

    ``1.0 − decay**count`` in float32 is exactly 0 for ``decay`` within 6e-8 of 1 (then
    Adam's ``v̂ = v/0`` and every update is 0 forever) and loses digits near it; the
    ``expm1`` form keeps full relative precision.
    """
    return -jnp.expm1(count.astype(dtype) * jnp.asarray(_log(decay), dtype))


def _may_be_zero(eps: Any) -> bool:
    """Whether ``eps`` is 0 or unknown now: then a ``x/(√v + eps)`` needs a 0/0 guard."""
    value = concrete_value(eps)
    return value is None or value == 0


def _weight_decay_parts(weight_decay: Any, mask: Any) -> list[optax.GradientTransformation]:
    """``[add_decayed_weights(weight_decay, mask=mask)]``, or nothing for a known 0: adding
    ``0·w`` would still read every parameter once more per step."""
    value = concrete_value(weight_decay)
    if value is not None and value == 0:
        return []
    return [add_decayed_weights(weight_decay, mask=mask)]


def _guard_eps(eps: Any, eps_root: Any = 0.0) -> bool:
    """Whether ``x/(√(v + eps_root) + eps)`` needs :func:`_safe_div`'s 0/0 guard."""
    return _may_be_zero(eps) and _may_be_zero(eps_root)


def _safe_div(numerator: Array, denominator: Array, guard: bool) -> Array:
    """``numerator/denominator``, and 0 where ``denominator`` is 0 when ``guard``: with
    ``eps = 0`` a zero gradient has ``m = v = 0``, and the step is 0, not 0/0 = NaN."""
    if not guard:
        return numerator / denominator
    positive = denominator > 0
    return jnp.where(positive, numerator / jnp.where(positive, denominator, 1), 0)


def _per_leaf(
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
        if _is_float0(leaves[0]):
            return (jnp.zeros(leaves[0].shape, jnp.float32), *leaves[1:n_out])
        return leaf_fn(*leaves, *scalars)

    def apply(trees: Sequence[Any], scalars: Sequence[Array] = ()) -> tuple[Any, ...]:
        treedef = jax.tree.structure(trees[0])
        columns = [treedef.flatten_up_to(tree) for tree in trees]
        results = [leaf_or_skip(leaves, scalars) for leaves in zip(*columns, strict=True)]
        return tuple(treedef.unflatten([r[k] for r in results]) for k in range(n_out))

    return apply


def _as_update(x: Array, g: Array) -> Array:
    """``x`` cast to the dtype of the update for gradient leaf ``g``."""
    return x.astype(_update_dtype(g.dtype))


def _check_moment_hyperparameters(b1: Any, b2: Any, eps: Any, eps_root: Any = 0.0) -> None:
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)


def _moment_corrections(b1: Any, b2: Any, count: Array, dtype: Any) -> tuple[Array, ...]:
    """``1 − b1ᵗ``, ``1 − b1ᵗ⁺¹`` (Nesterov's look-ahead) and ``1 − b2ᵗ`` for step ``t``."""
    return (_bias_correction(b1, count, dtype), _bias_correction(b1, _increment(count), dtype),
            _bias_correction(b2, count, dtype))


def _adam_moments(g, m, v, b1, b2) -> tuple[Array, Array, Array]:
    """``g`` in at least float32 and Adam's new moments ``b1·m + (1 − b1)·g`` and
    ``b2·v + (1 − b2)·g²``, in the same dtype."""
    g32 = _f32(g)
    return g32, b1 * _f32(m) + (1.0 - b1) * g32, b2 * _f32(v) + (1.0 - b2) * (g32 * g32)


def _first_moment_estimate(m32, g32, b1, c1, c1_next, nesterov: bool) -> Array:
    """``m̂ = m/(1 − b1ᵗ)``; with Nesterov (Dozat's NAdam)
    ``m̂ = b1·m/(1 − b1ᵗ⁺¹) + (1 − b1)·g/(1 − b1ᵗ)``."""
    dtype = m32.dtype
    if nesterov:
        return b1 * (m32 / c1_next.astype(dtype)) + (1.0 - b1) * (g32 / c1.astype(dtype))
    return m32 / c1.astype(dtype)


class ScaleByAdamState(NamedTuple):
    """``count``: steps taken (int32); ``mu``, ``nu``: first and second moments."""

    count: Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """Adam's direction: ``m̂ / (√(v̂ + eps_root) + eps)``.

    ``m ← b1·m + (1 − b1)·g``, ``v ← b2·v + (1 − b2)·g²``, ``m̂ = m/(1 − b1ᵗ)``,
    ``v̂ = v/(1 − b2ᵗ)``; the bias corrections ``1 − bᵗ`` are scalars computed once per step
    (as ``−expm1(t·log b)``, so a ``b2`` that rounds to 1.0 in float32 still works).
    ``nesterov=True`` is NAdam: ``m̂ = b1·m/(1 − b1ᵗ⁺¹) + (1 − b1)·g/(1 − b1ᵗ)`` (Dozat's
    form, as optax; PyTorch's ``NAdam`` adds a momentum-decay schedule ``ψ`` on top).

    Args:
      b1, b2: moment decay rates in ``[0, 1)``.
      eps: ``>= 0``, added to ``√v̂`` (Keras adds it to ``√v`` before bias correction).
        With ``eps = 0`` a zero second moment gives a zero step, not NaN.
      eps_root: ``>= 0``, added to ``v̂`` inside the square root.
      mu_dtype: dtype to store the first moment in (e.g. ``jnp.bfloat16`` to save memory);
        ``None`` keeps the parameters' dtype. The update is computed in float32 from the
        stored moment and only the new stored copy is rounded (optax also rounds
        ``b1·m`` to ``mu_dtype`` first, so its numbers differ slightly here).
      nesterov: use Nesterov momentum (NAdam).

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2014); Dozat,
    "Incorporating Nesterov Momentum into Adam" (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_adam()
      >>> direction, _ = tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))
      >>> direction
      Array([ 1., -1.], dtype=float32)
    """
    _check_moment_hyperparameters(b1, b2, eps, eps_root)
    guard = _may_be_zero(eps) and _may_be_zero(eps_root)

    def leaf(g, m, v, c1, c1_next, c2):
        g32, m32, v32 = _adam_moments(g, m, v, b1, b2)
        m_hat = _first_moment_estimate(m32, g32, b1, c1, c1_next, nesterov)
        denominator = jnp.sqrt(v32 / c2.astype(v32.dtype) + eps_root) + eps
        direction = _safe_div(m_hat, denominator, guard)
        return _as_update(direction, g), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = _per_leaf(leaf, 3)

    def init(params):
        mu = jax.tree.map(lambda p: _full(p, dtype=mu_dtype), params)
        nu = jax.tree.map(_full, params)
        return ScaleByAdamState(jnp.zeros([], jnp.int32), mu, nu)

    def update(updates, state, params=None):
        del params
        count = _increment(state.count)
        scalars = _moment_corrections(b1, b2, count, _scalar_dtype(updates))
        direction, mu, nu = apply((updates, state.mu, state.nu), scalars)
        return direction, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


class TraceState(NamedTuple):
    """``trace``: the momentum buffer ``b``."""

    trace: Any


def trace(
    momentum: float, *, nesterov: bool = False, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    """Heavy-ball momentum: ``b ← g + μ·b``; the update is ``b`` (Nesterov: ``g + μ·b``).

    ``momentum`` is ``μ >= 0``; ``accumulator_dtype`` stores ``b`` in another dtype (e.g.
    ``jnp.bfloat16``; ``None``: the parameters'). References: Polyak (1964); Sutskever et
    al., "On the importance of initialization and momentum in deep learning" (2013).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.trace(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(jnp.array([1.0]), state)
      >>> tx.update(jnp.array([1.0]), state)[0]
      Array([1.5], dtype=float32)
    """
    check_non_negative("momentum", momentum)

    def leaf(g, b):
        g32 = _f32(g)
        new = g32 + momentum * _f32(b)
        out = g32 + momentum * new if nesterov else new
        return _as_update(out, g), new.astype(b.dtype)

    apply = _per_leaf(leaf, 2)

    def init(params):
        return TraceState(jax.tree.map(lambda p: _full(p, dtype=accumulator_dtype), params))

    def update(updates, state, params=None):
        del params
        updates, new_trace = apply((updates, state.trace))
        return updates, TraceState(new_trace)

    return optax.GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    """``mu``: running mean of ``g`` (``None`` unless centered); ``nu``: of ``g²``;
    ``count``: steps taken (int32; ``None`` unless ``bias_correction``)."""

    mu: Any
    nu: Any
    count: Any = None


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    centered: bool = False,
) -> optax.GradientTransformation:
    """RMSProp's direction: ``g / √(v + eps)`` with ``v ← d·v + (1 − d)·g²``.

    ``eps_in_sqrt=False`` gives ``g / (√v + eps)``. ``centered`` also tracks
    ``m ← d·m + (1 − d)·g`` and uses the variance ``v − m²`` in place of ``v``.
    ``nu`` starts at ``initial_scale``; ``bias_correction`` divides ``v`` (and ``m``) by
    ``1 − dᵗ`` as Adam does. With ``eps = 0`` a zero ``v`` gives a zero step, not NaN.

    References: Hinton, Lecture 6e of "Neural Networks for Machine Learning" (2012);
    Graves, "Generating Sequences With Recurrent Neural Networks" (2013) for centering.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_rms(decay=0.75, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]
      Array([2.], dtype=float32)
    """
    check_in_range("decay", decay, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("initial_scale", initial_scale)
    guard = _may_be_zero(eps)

    def scale(g32, second):
        if eps_in_sqrt:
            return _safe_div(g32, jnp.sqrt(second + eps), guard)
        return _safe_div(g32, jnp.sqrt(second) + eps, guard)

    def corrected(x, correction):
        return x / correction.astype(x.dtype) if bias_correction else x

    def leaf(g, v, correction):
        g32 = _f32(g)
        v32 = decay * _f32(v) + (1.0 - decay) * (g32 * g32)
        return _as_update(scale(g32, corrected(v32, correction)), g), v32.astype(v.dtype)

    def centered_leaf(g, m, v, correction):
        g32 = _f32(g)
        m32 = decay * _f32(m) + (1.0 - decay) * g32
        v32 = decay * _f32(v) + (1.0 - decay) * (g32 * g32)
        variance = corrected(v32, correction) - corrected(m32, correction) ** 2
        return _as_update(scale(g32, variance), g), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = _per_leaf(centered_leaf, 3) if centered else _per_leaf(leaf, 2)

    def init(params):
        mu = jax.tree.map(_full, params) if centered else None
        count = jnp.zeros([], jnp.int32) if bias_correction else None
        nu = jax.tree.map(lambda p: _full(p, initial_scale), params)
        return ScaleByRmsState(mu, nu, count)

    def update(updates, state, params=None):
        del params
        dtype = _scalar_dtype(updates)
        count = _increment(state.count) if bias_correction else None
        correction = (_bias_correction(decay, count, dtype) if count is not None
                      else jnp.ones([], dtype))
        if centered:
            updates, mu, nu = apply((updates, state.mu, state.nu), (correction,))
            return updates, ScaleByRmsState(mu, nu, count)
        updates, nu = apply((updates, state.nu), (correction,))
        return updates, ScaleByRmsState(None, nu, count)

    return optax.GradientTransformation(init, update)


class ScaleBySumOfSquaresState(NamedTuple):
    """``sum_of_squares``: ``s``, the running sum of ``g²``."""

    sum_of_squares: Any


def scale_by_sum_of_squares(
    initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> optax.GradientTransformation:
    """Adagrad's direction: ``g / √(s + eps)`` with ``s ← s + g²`` (0 where ``s = 0``).

    ``s`` starts at ``initial_accumulator_value``.
    References: Duchi et al., "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization" (2011).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.scale_by_sum_of_squares(initial_accumulator_value=0.0)
      >>> g = jnp.array([3.0, -4.0])
      >>> u, state = opt.update(g, opt.init(g))
      >>> u  # g / √(g²)
      Array([ 1., -1.], dtype=float32)
      >>> u, state = opt.update(g, state)
      >>> u  # g / √(2g²) = ±1/√2
      Array([ 0.70711, -0.70711], dtype=float32)
    """
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    check_non_negative("eps", eps)

    def leaf(g, s):
        g32 = _f32(g)
        s32 = _f32(s) + g32 * g32
        out = jnp.where(s32 > 0, g32 * jax.lax.rsqrt(s32 + eps), 0.0)
        return _as_update(out, g), s32.astype(s.dtype)

    apply = _per_leaf(leaf, 2)

    def init(params):
        return ScaleBySumOfSquaresState(
            jax.tree.map(lambda p: _full(p, initial_accumulator_value), params))

    def update(updates, state, params=None):
        del params
        updates, sums = apply((updates, state.sum_of_squares))
        return updates, ScaleBySumOfSquaresState(sums)

    return optax.GradientTransformation(init, update)


class LearningRateState(NamedTuple):
    """``count``: steps taken (int32); ``learning_rate``: the rate applied when it is a float
    (float32, float64 for float64 parameters; with a schedule it is not used, the schedule is
    evaluated at ``count``)."""

    count: Array
    learning_rate: Array


def _scale_leaf(u, factor):
    return (_as_update(_f32(u) * factor.astype(_compute_dtype(u.dtype)), u),)


def _scalar_rate(rate: Any, name: str = "learning_rate") -> Array:
    """A rate as a 0-d array: a ``(1,)`` rate must not broadcast a scalar parameter to
    shape ``(1,)``; a rate with more than one element is a mistake (``ValueError``)."""
    if np.size(rate) != 1:
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(rate)}")
    return jnp.reshape(rate, ())


def scale_by_learning_rate(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    """Descend: ``u ← −lr·u``, with ``lr`` a float or ``schedule(step)``, step = 0, 1, ...

    A float rate lives in the state as a 0-d array (float32; float64 for float64
    parameters): :func:`set_learning_rate` changes it between steps without recompiling
    the jitted step. ``learning_rate`` must be >= 0 (``ValueError`` otherwise; a
    schedule's values are not checked).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> g = jnp.array([1.0, -2.0])
      >>> opt = lossjax.scale_by_learning_rate(0.1)
      >>> opt.update(g, opt.init(g))[0]
      Array([-0.1,  0.2], dtype=float32)
      >>> opt = lossjax.scale_by_learning_rate(lambda count: 0.1 / (count + 1))
      >>> u, state = opt.update(g, opt.init(g))
      >>> u, state = opt.update(g, state)  # step 1: lr = 0.1 / 2
      >>> u
      Array([-0.05,  0.1 ], dtype=float32)
    """
    schedule = learning_rate if callable(learning_rate) else None
    if schedule is None:
        check_non_negative("learning_rate", learning_rate)
        _scalar_rate(learning_rate)
    apply = _per_leaf(_scale_leaf, 1, trace_once=False)

    def init(params):
        initial = 0.0 if schedule is not None else learning_rate
        rate = jnp.asarray(initial, _scalar_dtype(params))
        return LearningRateState(jnp.zeros([], jnp.int32), _scalar_rate(rate))

    def update(updates, state, params=None):
        del params
        lr = state.learning_rate if schedule is None else schedule(state.count)
        (updates,) = apply((updates,), (-_scalar_rate(jnp.asarray(lr, _scalar_dtype(updates))),))
        return updates, LearningRateState(_increment(state.count), state.learning_rate)

    return optax.GradientTransformation(init, update)


def set_learning_rate(opt_state: Any, learning_rate: float | Array) -> Any:
    """Return ``opt_state`` with every held (non-schedule) learning rate replaced.

    The rate is data in the state, not a constant in the compiled step, so the jitted step
    does not recompile::

        opt = lossjax.adam(1e-3)
        state = opt.init(params)
        ...
        state = lossjax.set_learning_rate(state, 1e-4)   # then keep calling step(...)

    Works on any state that contains a :class:`LearningRateState`, e.g. inside an
    ``optax.chain``. A Flax ``nnx.Optimizer`` holds its state in variables: those are set
    in place, so ``lossjax.set_learning_rate(optimizer.opt_state, 1e-4)`` is enough there.
    ``learning_rate`` may be a traced value (inside ``jit``); a known negative value raises
    ``ValueError``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> g = jnp.array([1.0, -2.0])
      >>> opt = lossjax.sgd(0.1)
      >>> state = lossjax.set_learning_rate(opt.init(g), 0.01)
      >>> opt.update(g, state)[0]  # -0.01·g
      Array([-0.01,  0.02], dtype=float32)
    """
    check_non_negative("learning_rate", learning_rate)
    new_rate = _scalar_rate(jnp.asarray(learning_rate, jnp.float32))

    def replace(node):
        if not isinstance(node, LearningRateState):
            return node
        held: Any = node.learning_rate
        if hasattr(held, "set_value"):  # a Flax nnx variable: nnx reads it back from there
            held.set_value(new_rate.astype(held.get_value().dtype))
            return node
        return node._replace(learning_rate=new_rate.astype(held.dtype))

    return jax.tree.map(replace, opt_state, is_leaf=lambda n: isinstance(n, LearningRateState))


class ClipByGlobalNormState(NamedTuple):
    """Clipping keeps no state."""


def _scaled_norm(leaves: list[Array]) -> Array:
    """``s·√(Σ (x/s)²)`` with ``s = max |x|``: no ``x²`` overflows (or underflows)."""
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
    safe = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1)
    return safe * jnp.sqrt(sum(jnp.sum(jnp.square(x / safe)) for x in leaves))


def global_norm(tree: Any) -> Array:
    """``√(Σ_leaves Σ x²)`` in float32 at least; under sharding an all-reduce of a scalar.

    The plain sum of squares overflows float32 for entries near 1e19 (an inf norm would
    make ``clip_by_global_norm`` return zeros); only then, the norm is recomputed scaled by
    ``max |x|``, which is finite for any finite tree. ``float0`` leaves count as zeros.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.global_norm({"a": jnp.array([3e20]), "b": jnp.array([4e20])})
      Array(5.e+20, dtype=float32)
    """
    leaves = [_f32(x) for x in jax.tree.leaves(tree) if not _is_float0(x) and x.size]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    plain = jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))
    return jax.lax.cond(jnp.isinf(plain), _scaled_norm, lambda _: plain, leaves)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Rescale all updates together so that their global norm is at most ``max_norm``.

    ``u ← u · max_norm / max(‖u‖, max_norm)``: an all-zero gradient passes through as zeros
    (no 0/0, optax #1752). ``max_norm`` must be > 0 (``ValueError`` otherwise).
    References: Pascanu et al., "On the difficulty of training recurrent neural networks"
    (2013).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> clip = lossjax.clip_by_global_norm(1.0)
      >>> g = jnp.array([3.0, 4.0])  # norm 5: scaled by 1/5
      >>> clip.update(g, clip.init(g))[0]
      Array([0.6, 0.8], dtype=float32)
      >>> clip.update(0.1 * g, clip.init(g))[0]  # norm 0.5 <= 1: unchanged
      Array([0.3, 0.4], dtype=float32)
    """
    check_positive("max_norm", max_norm)
    apply = _per_leaf(_scale_leaf, 1, trace_once=False)

    def init(params):
        del params
        return ClipByGlobalNormState()

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        factor = max_norm / jnp.maximum(norm, max_norm)
        (updates,) = apply((updates,), (factor,))
        return updates, state

    return optax.GradientTransformation(init, update)


class _NegateState(NamedTuple):
    """Negating keeps no state."""


def _negate() -> optax.GradientTransformation:
    """``u ← −u``: turns a step size that is part of the direction into descent."""

    def negate_leaf(u):
        return (-u,)

    apply = _per_leaf(negate_leaf, 1, trace_once=False)

    def update(updates, state, params=None):
        del params
        return apply((updates,))[0], state

    return optax.GradientTransformation(lambda params: _NegateState(), update)


def _ema(decay: Any, accumulator_dtype: Any = None) -> optax.GradientTransformation:
    """``b ← decay·b + (1 − decay)·u``, the update being ``b`` (no debiasing); the state is
    a :class:`TraceState` holding ``b``."""

    def leaf(u, b):
        b32 = decay * _f32(b) + (1.0 - decay) * _f32(u)
        return _as_update(b32, u), b32.astype(b.dtype)

    apply = _per_leaf(leaf, 2)

    def init(params):
        return TraceState(jax.tree.map(lambda p: _full(p, dtype=accumulator_dtype), params))

    def update(updates, state, params=None):
        del params
        updates, new = apply((updates, state.trace))
        return updates, TraceState(new)

    return optax.GradientTransformation(init, update)

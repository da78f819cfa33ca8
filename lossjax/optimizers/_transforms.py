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

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range, check_non_negative, check_positive

Array = jax.Array
Schedule = Callable[[Array], Array]
ScalarOrSchedule = float | Array | Schedule


def _compute_dtype(dtype: Any) -> Any:
    """The dtype the arithmetic runs in: ``dtype`` promoted to at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def _f32(x: Array) -> Array:
    return x.astype(_compute_dtype(x.dtype))


def _scalar_dtype(tree: Any) -> Any:
    """float32, or float64 when some leaf is float64: the dtype of per-step scalars."""
    return jnp.result_type(jnp.float32, *(x.dtype for x in jax.tree.leaves(tree)))


def _full(p: Any, value: float = 0.0, dtype: Any = None) -> Array:
    """An array shaped like ``p`` (an array or a ``jax.ShapeDtypeStruct``)."""
    return jnp.full(p.shape, value, dtype or p.dtype)


def _increment(count: Array) -> Array:
    """``count + 1`` that saturates instead of wrapping around at the int32 limit."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def _bias_correction(decay: float, count: Array) -> Array:
    """``1 − decay^count``: a scalar per step, in the default float dtype."""
    return 1.0 - decay**count


def _per_leaf(
    fn: Callable[..., tuple[Array, ...]], n_out: int, *, trace_once: bool = True
) -> Callable[..., tuple[Any, ...]]:
    """Apply ``fn(*leaves, *scalars) -> n_out arrays`` across trees of the same structure.

    With ``trace_once``, ``fn`` is wrapped in ``jax.jit``: inside an outer ``jit`` each leaf
    becomes a call to one cached computation per leaf signature, which XLA inlines and
    fuses. A 200-leaf model with a handful of distinct shapes is traced a handful of times,
    not 200. For a one-operation ``fn`` the call costs more than it saves: pass ``False``.

    Returns ``n_out`` trees with the structure of ``trees[0]``.
    """
    leaf_fn = jax.jit(fn) if trace_once else fn

    def apply(trees: Sequence[Any], scalars: Sequence[Array] = ()) -> tuple[Any, ...]:
        treedef = jax.tree.structure(trees[0])
        columns = [treedef.flatten_up_to(tree) for tree in trees]
        results = [leaf_fn(*leaves, *scalars) for leaves in zip(*columns, strict=True)]
        return tuple(treedef.unflatten([r[k] for r in results]) for k in range(n_out))

    return apply


class ScaleByAdamState(NamedTuple):
    """``count``: steps taken (int32); ``mu``, ``nu``: first and second moments."""

    count: Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adam's direction: ``m̂ / (√v̂ + eps)``.

    ``m ← b1·m + (1 − b1)·g``, ``v ← b2·v + (1 − b2)·g²``, ``m̂ = m/(1 − b1ᵗ)``,
    ``v̂ = v/(1 − b2ᵗ)``; the bias corrections ``1 − bᵗ`` are scalars computed once per step.

    Args:
      b1, b2: moment decay rates in ``[0, 1)``.
      eps: ``>= 0``, added to ``√v̂``.
      mu_dtype: dtype to store the first moment in (e.g. ``jnp.bfloat16`` to save memory);
        ``None`` keeps the parameters' dtype. The update is computed in float32 from the
        stored moment and only the new stored copy is rounded (optax also rounds
        ``b1·m`` to ``mu_dtype`` first, so its numbers differ slightly here).

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2014).
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)

    def leaf(g, m, v, c1, c2):
        g32 = _f32(g)
        m32 = b1 * _f32(m) + (1.0 - b1) * g32
        v32 = b2 * _f32(v) + (1.0 - b2) * (g32 * g32)
        dtype = m32.dtype
        direction = (m32 / c1.astype(dtype)) / (jnp.sqrt(v32 / c2.astype(dtype)) + eps)
        return direction.astype(g.dtype), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = _per_leaf(leaf, 3)

    def init(params):
        mu = jax.tree.map(lambda p: _full(p, dtype=mu_dtype), params)
        nu = jax.tree.map(_full, params)
        return ScaleByAdamState(jnp.zeros([], jnp.int32), mu, nu)

    def update(updates, state, params=None):
        del params
        count = _increment(state.count)
        dtype = _scalar_dtype(updates)
        c1, c2 = (_bias_correction(b, count).astype(dtype) for b in (b1, b2))
        direction, mu, nu = apply((updates, state.mu, state.nu), (c1, c2))
        return direction, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


class TraceState(NamedTuple):
    """``trace``: the momentum buffer ``b``."""

    trace: Any


def trace(momentum: float, *, nesterov: bool = False) -> optax.GradientTransformation:
    """Heavy-ball momentum: ``b ← g + μ·b``; the update is ``b`` (Nesterov: ``g + μ·b``).

    ``momentum`` is ``μ >= 0``. References: Polyak (1964); Sutskever et al., "On the
    importance of initialization and momentum in deep learning" (2013).
    """
    check_non_negative("momentum", momentum)

    def leaf(g, b):
        g32 = _f32(g)
        new = g32 + momentum * _f32(b)
        out = g32 + momentum * new if nesterov else new
        return out.astype(g.dtype), new.astype(b.dtype)

    apply = _per_leaf(leaf, 2)

    def init(params):
        return TraceState(jax.tree.map(_full, params))

    def update(updates, state, params=None):
        del params
        updates, new_trace = apply((updates, state.trace))
        return updates, TraceState(new_trace)

    return optax.GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    """``mu``: running mean of ``g`` (``None`` unless centered); ``nu``: of ``g²``."""

    mu: Any
    nu: Any


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    *,
    centered: bool = False,
) -> optax.GradientTransformation:
    """RMSProp's direction: ``g / √(v + eps)`` with ``v ← d·v + (1 − d)·g²``.

    ``eps_in_sqrt=False`` gives ``g / (√v + eps)``. ``centered`` also tracks
    ``m ← d·m + (1 − d)·g`` and uses the variance ``v − m²`` in place of ``v``.
    ``nu`` starts at ``initial_scale``.

    References: Hinton, Lecture 6e of "Neural Networks for Machine Learning" (2012);
    Graves, "Generating Sequences With Recurrent Neural Networks" (2013) for centering.
    """
    check_in_range("decay", decay, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("initial_scale", initial_scale)

    def scale(g32, second):
        if eps_in_sqrt:
            return g32 * jax.lax.rsqrt(second + eps)
        return g32 / (jnp.sqrt(second) + eps)

    def leaf(g, v):
        g32 = _f32(g)
        v32 = decay * _f32(v) + (1.0 - decay) * (g32 * g32)
        return scale(g32, v32).astype(g.dtype), v32.astype(v.dtype)

    def centered_leaf(g, m, v):
        g32 = _f32(g)
        m32 = decay * _f32(m) + (1.0 - decay) * g32
        v32 = decay * _f32(v) + (1.0 - decay) * (g32 * g32)
        return scale(g32, v32 - m32 * m32).astype(g.dtype), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = _per_leaf(centered_leaf, 3) if centered else _per_leaf(leaf, 2)

    def init(params):
        mu = jax.tree.map(_full, params) if centered else None
        return ScaleByRmsState(mu, jax.tree.map(lambda p: _full(p, initial_scale), params))

    def update(updates, state, params=None):
        del params
        if centered:
            updates, mu, nu = apply((updates, state.mu, state.nu))
            return updates, ScaleByRmsState(mu, nu)
        updates, nu = apply((updates, state.nu))
        return updates, ScaleByRmsState(None, nu)

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
    """
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    check_non_negative("eps", eps)

    def leaf(g, s):
        g32 = _f32(g)
        s32 = _f32(s) + g32 * g32
        out = jnp.where(s32 > 0, g32 * jax.lax.rsqrt(s32 + eps), 0.0)
        return out.astype(g.dtype), s32.astype(s.dtype)

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
    (float32; with a schedule it is not used, the schedule is evaluated at ``count``)."""

    count: Array
    learning_rate: Array


def _scale_leaf(u, factor):
    return ((_f32(u) * factor.astype(_compute_dtype(u.dtype))).astype(u.dtype),)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    """Descend: ``u ← −lr·u``, with ``lr`` a float or ``schedule(step)``, step = 0, 1, ...

    A float rate lives in the state as a float32 array: :func:`set_learning_rate` changes
    it between steps without recompiling the jitted step. ``learning_rate`` must be >= 0
    (``ValueError`` otherwise; a schedule's values are not checked).
    """
    schedule = learning_rate if callable(learning_rate) else None
    if schedule is None:
        check_non_negative("learning_rate", learning_rate)
    apply = _per_leaf(_scale_leaf, 1, trace_once=False)

    def init(params):
        del params
        initial = 0.0 if schedule is not None else learning_rate
        return LearningRateState(jnp.zeros([], jnp.int32), jnp.asarray(initial, jnp.float32))

    def update(updates, state, params=None):
        del params
        lr = state.learning_rate if schedule is None else schedule(state.count)
        (updates,) = apply((updates,), (-jnp.asarray(lr, _scalar_dtype(updates)),))
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
    """
    check_non_negative("learning_rate", learning_rate)
    new_rate = jnp.asarray(learning_rate, jnp.float32)

    def replace(node):
        if not isinstance(node, LearningRateState):
            return node
        held = node.learning_rate
        if hasattr(held, "set_value"):  # a Flax nnx variable: nnx reads it back from there
            held.set_value(new_rate)
            return node
        return node._replace(learning_rate=new_rate)

    return jax.tree.map(replace, opt_state, is_leaf=lambda n: isinstance(n, LearningRateState))


class ClipByGlobalNormState(NamedTuple):
    """Clipping keeps no state."""


def global_norm(tree: Any) -> Array:
    """``√(Σ_leaves Σ x²)`` in float32 at least; under sharding an all-reduce of a scalar."""
    squares = [jnp.sum(jnp.square(_f32(x))) for x in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(squares)) if squares else jnp.zeros([], jnp.float32)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Rescale all updates together so that their global norm is at most ``max_norm``.

    ``u ← u · max_norm / max(‖u‖, max_norm)``: an all-zero gradient passes through as zeros
    (no 0/0, optax #1752). ``max_norm`` must be > 0 (``ValueError`` otherwise).
    References: Pascanu et al., "On the difficulty of training recurrent neural networks"
    (2013).
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

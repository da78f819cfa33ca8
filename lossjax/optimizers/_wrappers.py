"""Wrappers around an optimizer: skip non-finite steps, accumulate gradients, optimize
parameter groups differently, inject hyperparameters, look ahead.

Each takes and returns an ``optax.GradientTransformation``; the states are NamedTuples of
arrays (so they jit, shard, checkpoint and live inside a Flax ``nnx.Optimizer``). Same
signatures, state fields and numbers as optax's wrappers of the same name.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, NamedTuple, get_args

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._mask import Mask, mask_prefix
from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._machinery import (
    HeldNumber,
    compute_dtype,
    dtype_of,
    full_like,
    increment_count,
    is_float0,
    nodes_of_type,
    only_node_of_type,
    per_leaf,
    scalar_dtype,
    upcast,
    without_float0,
)
from lossjax.optimizers._transforms import (
    LearningRateState,
)
from lossjax.schedules import Schedule

Array = jax.Array


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _zeros_like_output(fn: Callable[[], tuple[Any, Any]]) -> Any:
    """Zeros shaped like the updates ``fn()`` would return (``fn`` is traced, not run)."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn)[0])


# --------------------------------------------------------------------------- non-finite


class ApplyIfFiniteState(NamedTuple):
    """``notfinite_count``: consecutive steps with a NaN/inf gradient (reset to 0 by a
    finite one); ``last_finite``: whether the last gradient was finite;
    ``total_notfinite``: all non-finite steps so far; ``inner_state``: the wrapped state."""

    notfinite_count: Array
    last_finite: Array
    total_notfinite: Array
    inner_state: Any


def _all_finite(tree: Any) -> Array:
    finite = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return functools.reduce(jnp.logical_and, finite, jnp.asarray(True))


def apply_if_finite(
    inner: optax.GradientTransformation, max_consecutive_errors: int
) -> optax.GradientTransformation:
    """Skip steps whose gradients hold a NaN or an inf.

    A step with a non-finite gradient returns zero updates and leaves the inner state
    untouched (the inner optimizer does not even run: ``lax.cond``), so one bad batch (a
    float16 overflow, a corrupt example) costs a step and poisons neither the parameters
    nor Adam's moments. The counters in :class:`ApplyIfFiniteState` record it. After more
    than ``max_consecutive_errors`` non-finite steps in a row the wrapper gives up and
    lets the update through, NaN included, so a run that has truly diverged shows it
    instead of silently standing still (optax's behaviour).

    Wrapping :func:`multi_steps` skips the bad micro-batch itself: it is not accumulated
    and does not count towards the ``k``.

    Args:
      inner: the optimizer to protect.
      max_consecutive_errors: ``>= 0``; the number of non-finite steps in a row that are
        skipped.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.apply_if_finite(lossjax.sgd(0.1), max_consecutive_errors=3)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), state)
      >>> updates, state.total_notfinite
      (Array([0., 0.], dtype=float32), Array(1, dtype=int32))
    """
    if not _is_int(max_consecutive_errors) or max_consecutive_errors < 0:
        raise ValueError(
            f"max_consecutive_errors must be an integer >= 0, got {max_consecutive_errors!r}")

    def init(params):
        return ApplyIfFiniteState(jnp.zeros([], jnp.int32), jnp.asarray(True),
                                  jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates, state, params=None):
        finite = _all_finite(updates)
        streak = jnp.where(finite, 0, increment_count(state.notfinite_count))

        def apply(_):
            return inner.update(updates, state.inner_state, params)

        def skip(_):
            zeros = _zeros_like_output(lambda: inner.update(updates, state.inner_state, params))
            return zeros, state.inner_state

        updates, inner_state = jax.lax.cond(
            finite | (streak > max_consecutive_errors), apply, skip, None)
        total = jnp.where(finite, state.total_notfinite, increment_count(state.total_notfinite))
        return updates, ApplyIfFiniteState(streak, finite, total, inner_state)

    return optax.GradientTransformation(init, update)


class ZeroNansState(NamedTuple):
    """``found_nan``: one bool per leaf, whether the last update held a NaN there."""

    found_nan: Any


def zero_nans() -> optax.GradientTransformation:
    """Replace NaN update elements by 0 (infs pass through); flag the leaves that had one.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.zero_nans()
      >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
      >>> updates, state.found_nan
      (Array([1., 0.], dtype=float32), Array(True, dtype=bool))
    """

    def init(params):
        return ZeroNansState(jax.tree.map(lambda _: jnp.asarray(False), params))

    def update(updates, state, params=None):
        del params, state
        updates = without_float0(updates)
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        updates = jax.tree.map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return updates, ZeroNansState(found)

    return optax.GradientTransformation(init, update)


# ------------------------------------------------------------------ gradient accumulation


class MultiStepsState(NamedTuple):
    """``mini_step``: micro-batches accumulated in the current window (0 right after an
    update); ``gradient_step``: updates applied so far; ``inner_opt_state``: the wrapped
    optimizer's state; ``acc_grads``: the running mean (or sum) of the window's gradients,
    shaped like the parameters, in float32 at least (or ``accumulator_dtype``);
    ``skip_state``: what ``should_skip_update_fn`` returned last (``()`` without one)."""

    mini_step: Array
    gradient_step: Array
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


def skip_not_finite(updates: Any, gradient_step: Array, params: Any) -> tuple[Array, Any]:
    """A ``should_skip_update_fn`` for :func:`multi_steps`: skip a micro-batch whose
    gradient holds a NaN or an infinity. Returns ``(skip, {"should_skip",
    "num_not_finite"})`` (optax's).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.skip_not_finite({"w": jnp.array([1.0, jnp.nan])}, 0, None)[0]
      Array(True, dtype=bool)
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(x)) for x in jax.tree.leaves(updates)]
    num_not_finite = sum(counts[1:], counts[0]) if counts else jnp.zeros([], jnp.int32)
    skip = num_not_finite > 0
    return skip, {"should_skip": skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Any, gradient_step: Array, params: Any, max_squared_norm: float
) -> tuple[Array, Any]:
    """A ``should_skip_update_fn`` for :func:`multi_steps` (bind ``max_squared_norm`` with
    ``functools.partial``): skip a micro-batch whose gradient has ``‖g‖² >=
    max_squared_norm`` (or a NaN). Returns ``(skip, {"should_skip", "norm_squared"})``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> skip, info = lossjax.skip_large_updates(jnp.array([3.0, 4.0]), 0, None, 20.0)
      >>> skip, info["norm_squared"]
      (Array(True, dtype=bool), Array(25., dtype=float32))
    """
    del gradient_step, params
    parts = [jnp.sum(jnp.square(upcast(x))) for x in jax.tree.leaves(updates)]
    norm_sq = sum(parts[1:], parts[0]) if parts else jnp.zeros([], jnp.float32)
    skip = ~(norm_sq < max_squared_norm)
    return skip, {"should_skip": skip, "norm_squared": norm_sq}


def multi_steps(
    inner: optax.GradientTransformation,
    every_k_schedule: int | Callable[[Array], Array],
    *,
    use_grad_mean: bool = True,
    should_skip_update_fn: Callable[[Any, Array, Any], tuple[Array, Any]] | None = None,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Gradient accumulation: the inner optimizer steps once every ``k`` micro-batches.

    Each call adds the gradient to one buffer per parameter; calls ``1 … k−1`` of a
    window return zero updates, call ``k`` hands the inner optimizer the window's mean
    ``ḡ = (g_1 + … + g_k)/k`` (the sum with ``use_grad_mean=False``), returns its update
    and empties the buffer. The mean is kept as a running mean,
    ``ḡ_n = ḡ_{n−1} + (g_n − ḡ_{n−1})/n`` (optax's numbers), in at least float32. With the
    mean, ``k`` micro-batches of ``B`` give the same step as one batch of ``k·B``.

    Memory: ``inner``'s state plus ONE gradient-sized buffer (``acc_grads``) and two
    counters; the inner update runs inside ``lax.cond`` only on the ``k``-th call, so the
    other calls neither compute nor hold its temporaries (``optax.MultiSteps`` computes it
    every call and discards it). ``acc_grads`` is computed from the gradients leaf by
    leaf, so a jitted step gives it the gradients' (= the parameters') sharding; ``init``
    on sharded parameters outside ``jit`` gives it theirs (inside ``jit``, pass
    ``out_shardings``, as for any optimizer state).

    Use :func:`multi_steps_has_updated` to tell whether a call applied an update (e.g.
    to log or to step an EMA only then).

    Args:
      inner: the optimizer applied to the accumulated gradient.
      every_k_schedule: ``k >= 1`` (``ValueError`` otherwise), or a function of the
        number of updates applied so far returning ``k`` (to grow the batch).
      use_grad_mean: average the window's gradients (default) or sum them.
      should_skip_update_fn: ``f(grads, gradient_step, params) -> (skip, skip_state)``,
        ``skip`` a boolean scalar: a skipped micro-batch changes nothing but
        ``skip_state`` (kept in the state) and returns zero updates; e.g.
        :func:`skip_not_finite` or ``functools.partial(skip_large_updates,
        max_squared_norm=...)``.
      accumulator_dtype: dtype of ``acc_grads`` (``None``: the parameters', float32 at
        least); the running mean is computed in float32 at least either way.

    Extra keyword arguments of ``update`` go to ``inner`` on the ``k``-th call.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.multi_steps(lossjax.sgd(1.0), every_k_schedule=2)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> u, lossjax.multi_steps_has_updated(state)
      (Array([0.], dtype=float32), Array(False, dtype=bool))
      >>> u, state = tx.update(jnp.array([3.0]), state)  # −1 · mean(1, 3)
      >>> u, lossjax.multi_steps_has_updated(state)
      (Array([-2.], dtype=float32), Array(True, dtype=bool))
    """
    if callable(every_k_schedule):
        schedule = every_k_schedule
    elif _is_int(every_k_schedule) and every_k_schedule >= 1:
        schedule = lambda step: jnp.asarray(every_k_schedule, jnp.int32)  # noqa: E731
    else:
        raise ValueError(
            f"every_k_schedule must be an integer k >= 1 or a function, got {every_k_schedule!r}")

    def accumulate(g, acc, n):
        acc32, g32 = upcast(acc), upcast(g)
        new = acc32 + (g32 - acc32) / (n + 1).astype(acc32.dtype) if use_grad_mean else acc32 + g32
        return (new.astype(acc.dtype),)

    add = per_leaf(accumulate, 1)

    inner_with_extra = optax.with_extra_args_support(inner)

    def init(params):
        acc = jax.tree.map(lambda p: _zeros_sharded_like(p, accumulator_dtype), params)
        skip_state = () if should_skip_update_fn is None else should_skip_update_fn(
            jax.tree.map(jnp.zeros_like, params), jnp.zeros([], jnp.int32), params)[1]
        return MultiStepsState(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32),
                               inner.init(params), acc, skip_state)

    def update(updates, state, params=None, **extra_args):
        k = jnp.asarray(schedule(state.gradient_step), jnp.int32)
        emit = state.mini_step >= k - 1
        skip, skip_state = jnp.asarray(False), state.skip_state
        if should_skip_update_fn is not None:
            skip, skip_state = should_skip_update_fn(updates, state.gradient_step, params)
            if (jnp.result_type(skip), jnp.shape(skip)) != (jnp.bool_, ()):
                raise ValueError("should_skip_update_fn must return a boolean scalar first, "
                                 f"got {jnp.result_type(skip)} of shape {jnp.shape(skip)}")

        # Each branch accumulates for itself, so the new buffer is written straight into
        # its output (no gradient-sized temporary holds it across the cond).
        def accumulated():
            (acc,) = add((updates, state.acc_grads), (state.mini_step,))
            # a float0 gradient's leaf comes back as a float32 zero: keep the buffer's dtype
            return jax.tree.map(lambda a, old: a.astype(old.dtype), acc, state.acc_grads)

        def step(_):
            acc = accumulated()
            grads = jax.tree.map(lambda a, g: g if is_float0(g) else a.astype(g.dtype), acc,
                                 updates)
            new_updates, inner_state = inner_with_extra.update(
                grads, state.inner_opt_state, params, **extra_args)
            return new_updates, inner_state, jax.tree.map(jnp.zeros_like, acc)

        def hold(_):
            acc = accumulated()
            zeros = _zeros_like_output(lambda: step(None)[:2])
            return zeros, state.inner_opt_state, acc

        def skipped(_):
            zeros = _zeros_like_output(lambda: step(None)[:2])
            return zeros, state.inner_opt_state, state.acc_grads

        branch = jnp.where(skip, 2, jnp.where(emit, 0, 1))
        new_updates, inner_state, acc = jax.lax.switch(branch, (step, hold, skipped), None)
        emit = emit & ~skip
        return new_updates, MultiStepsState(
            jnp.where(emit, 0, jnp.where(skip, state.mini_step, increment_count(state.mini_step))),
            jnp.where(emit, increment_count(state.gradient_step), state.gradient_step),
            inner_state, acc, skip_state)

    return optax.GradientTransformationExtraArgs(init, update)


def _zeros_sharded_like(p: Any, dtype: Any = None) -> Any:
    """Float32-at-least zeros shaped like ``p`` (or ``dtype``); an array's sharding
    carries over."""
    dtype = dtype or compute_dtype(dtype_of(p))
    return jnp.zeros_like(p, dtype) if isinstance(p, jax.Array) else full_like(p, dtype=dtype)


def multi_steps_has_updated(state: Any) -> Array:
    """Whether the last call of a :func:`multi_steps` optimizer applied an update.

    ``state`` is that optimizer's state or any state holding exactly one
    :class:`MultiStepsState` (e.g. inside :func:`apply_if_finite`); ``ValueError``
    otherwise. It is true after a window's ``k``-th call (``mini_step == 0`` and at least
    one update applied) and stays true through a skipped non-finite micro-batch that
    follows it, which changes no state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.multi_steps(lossjax.sgd(0.1), 4)
      >>> lossjax.multi_steps_has_updated(tx.init(jnp.zeros(3)))
      Array(False, dtype=bool)
    """
    s = only_node_of_type(state, MultiStepsState, "multi_steps")
    return (jnp.asarray(s.mini_step) == 0) & (jnp.asarray(s.gradient_step) > 0)


# ------------------------------------------------------------------------ parameter groups


# optax's classes themselves: ``MaskedNode`` stands in for a leaf that a :func:`masked`
# transform does not see (an empty node: tree maps skip it, it costs no memory), and
# ``optax.tree_utils.tree_map_params`` recognises it; ``MaskedState.inner_state`` is the
# wrapped transform's state, built on the selected leaves only.
MaskedNode = optax.MaskedNode
MaskedState = optax.MaskedState


def _hide(tree: Any, prefix: Any) -> Any:
    """``tree`` with each sub-tree that a ``False`` of the bool tree ``prefix`` (a prefix of
    ``tree``) covers replaced by one :class:`MaskedNode` (optax's state layout)."""
    return jax.tree.map(lambda keep, x: x if keep else MaskedNode(), prefix, tree)


def _is_map_params_placeholder(params: Any) -> bool:
    """Whether ``init`` got the stand-in for the parameter tree that ``optax.tree.map_params``
    passes to find the parameter-shaped parts of a state: a mask cannot apply to it, so
    ``masked`` passes it to ``inner`` whole, as optax's does."""
    kind = type(params)
    return kind.__name__ == "_ParamsPlaceholder" and kind.__module__.startswith("optax.")


def masked(
    inner: optax.GradientTransformation,
    mask: Mask,
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Apply ``inner`` to the leaves ``mask`` selects; pass the others through unchanged.

    ``inner`` sees a tree in which unselected leaves are an empty :class:`MaskedNode`, so
    its state holds nothing for them (no moments for frozen or excluded leaves).

    Args:
      inner: the transform to apply to the selected leaves.
      mask: a pytree of Python bools with the parameters' structure or a prefix of it
        (``{"backbone": False, "head": True}``), a single bool, or a function
        ``params -> such a tree`` (called on the parameters in ``init`` and on the updates
        in ``update``). Non-bool leaves raise ``ValueError``.
      mask_compatible_extra_args: also hide, as in the updates, the keyword arguments of
        ``update`` that have the updates' structure (e.g. a per-parameter statistic); other
        keyword arguments reach ``inner`` as they are (optax's option).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.masked(lossjax.scale(10.0), {"w": True, "b": False})
      >>> g = {"w": jnp.ones(2), "b": jnp.ones(2)}
      >>> tx.update(g, tx.init(g))[0]["w"]
      Array([10., 10.], dtype=float32)
    """

    def init(params):
        if _is_map_params_placeholder(params):
            return MaskedState(inner.init(params))
        return MaskedState(inner.init(_hide(params, mask_prefix(mask, params))))

    def update(updates, state, params=None, **extra_args):
        updates = without_float0(updates)
        flags = mask_prefix(mask, updates)
        hidden_params = None if params is None else _hide(params, flags)
        if mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {k: _hide(v, flags) if jax.tree.structure(v) == structure else v
                          for k, v in extra_args.items()}
        new, inner_state = optax.with_extra_args_support(inner).update(
            _hide(updates, flags), state.inner_state, hidden_params, **extra_args)
        merged = jax.tree.map(lambda keep, n, u: n if keep else u, flags, new, updates)
        return merged, MaskedState(inner_state)

    return optax.GradientTransformationExtraArgs(init, update)


def _set_to_zero() -> optax.GradientTransformation:
    def update(updates, state, params=None):
        del params
        return jax.tree.map(jnp.zeros_like, without_float0(updates)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def freeze(mask: Mask) -> optax.GradientTransformation:
    """Zero the updates of the leaves ``mask`` selects, so those parameters stay fixed.

    ``mask`` as in :func:`masked` (``True`` = frozen; a single ``True`` freezes all).
    Chained before an optimizer, the optimizer still keeps state for the frozen leaves
    (it sees zero gradients; with weight decay they would still move, so chain
    ``freeze`` after the optimizer, or use :func:`partition` with ``freeze(True)`` for
    the frozen group, which keeps no state for it at all).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.freeze({"backbone": True, "head": False})
      >>> g = {"backbone": jnp.ones(2), "head": jnp.ones(2)}
      >>> tx.update(g, tx.init(g))[0]["backbone"]
      Array([0., 0.], dtype=float32)
    """
    return masked(_set_to_zero(), mask)


class PartitionState(NamedTuple):
    """``inner_states``: ``{label: that group's masked state}``."""

    inner_states: Any


def partition(
    transforms: Mapping[Hashable, optax.GradientTransformation],
    param_labels: Any,
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Optimize groups of parameters with different transforms.

    Each leaf of the parameters gets a label; leaves labelled ``name`` are updated by
    ``transforms[name]``, applied through :func:`masked` (so each transform keeps state
    only for its own leaves).

    Args:
      transforms: ``{label: transform}``.
      param_labels: a pytree of labels with the parameters' structure or a prefix of it,
        or a function ``params -> such a tree`` (called on the updates in ``update``). A
        label with no transform raises ``ValueError`` naming it.
      mask_compatible_extra_args: also mask the keyword arguments of ``update`` that have
        the parameters' structure (as :func:`masked`); the others reach every group whole.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.partition({"train": lossjax.sgd(0.5), "fixed": lossjax.freeze(True)},
      ...                        {"head": "train", "backbone": "fixed"})
      >>> params = {"head": jnp.ones(2), "backbone": jnp.ones(2)}
      >>> updates, _ = tx.update(params, tx.init(params), params)
      >>> updates["head"], updates["backbone"]
      (Array([-0.5, -0.5], dtype=float32), Array([0., 0.], dtype=float32))
    """
    transforms = dict(transforms)
    if not transforms:
        raise ValueError("transforms must name at least one transform")

    def labels_of(tree):
        labels = param_labels(tree) if callable(param_labels) else param_labels
        unknown = set(jax.tree.leaves(labels)) - set(transforms)
        if unknown:
            raise ValueError(
                f"param_labels uses label(s) {sorted(map(repr, unknown))} with no transform; "
                f"transforms has {sorted(map(repr, transforms))}")
        return labels

    def group(labels, name):
        return masked(transforms[name], jax.tree.map(lambda label: label == name, labels),
                      mask_compatible_extra_args=mask_compatible_extra_args)

    def init(params):
        labels = labels_of(params)
        return PartitionState({name: group(labels, name).init(params) for name in transforms})

    def update(updates, state, params=None, **extra_args):
        labels = labels_of(updates)
        states = {}
        for name in transforms:
            updates, states[name] = group(labels, name).update(
                updates, state.inner_states[name], params, **extra_args)
        return updates, PartitionState(states)

    return optax.GradientTransformationExtraArgs(init, update)


# ---------------------------------------------------------------------- hyperparameters


# optax's class itself (``count``, ``hyperparams``, ``hyperparams_states``,
# ``inner_state``), so an injected state and its checkpoints are interchangeable with optax's.
InjectHyperparamsState = optax.InjectStatefulHyperparamsState


class WrappedScheduleState(NamedTuple):
    """The state of a scheduled hyperparameter: ``count``, the steps taken (optax's
    layout for a plain schedule inside ``inject_hyperparams``)."""

    count: Array


def _float_dtype(params: Any) -> Any:
    return scalar_dtype(jax.tree.map(lambda p: jnp.zeros((), jnp.result_type(p)), params))


def _as_hyperparam(value: Any, dtype: Any) -> Array:
    """Floats (Python or weakly typed) become ``dtype`` arrays; ints and bools keep theirs."""
    value = jnp.asarray(value)
    if jnp.issubdtype(value.dtype, jnp.floating):
        return value.astype(dtype)
    return value


def _as_state(nodes: list[Any]) -> Any:
    """A stand-in state holding ``nodes`` (for :func:`_refresh_learning_rates`)."""
    return tuple(nodes)


def _refresh_learning_rates(inner_state: Any, fresh_state: Any) -> Any:
    """``inner_state`` with each held :class:`LearningRateState` rate taken from
    ``fresh_state``'s (only states that still hold a rate, such as ``muon``'s, have one)."""
    fresh = iter(nodes_of_type(fresh_state, LearningRateState))
    is_lr = lambda n: isinstance(n, LearningRateState)  # noqa: E731
    return jax.tree.map(
        lambda n: n._replace(learning_rate=next(fresh).learning_rate) if is_lr(n) else n,
        inner_state, is_leaf=is_lr)


_NEEDS_CONCRETE = (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
                   jax.errors.TracerArrayConversionError, jax.errors.TracerBoolConversionError)


_PROBE = {"w": (3, 2), "b": (2,)}


def _probe_state(factory: Callable[..., Any], arguments: Mapping[str, Any]) -> Any:
    """The state structure of ``factory(**arguments)`` on a small probe, after one update
    (``None`` when the optimizer cannot run on the probe, e.g. it needs extra arguments)."""
    opt = optax.with_extra_args_support(factory(**arguments))
    params = {k: jnp.ones(shape, jnp.float32) for k, shape in _PROBE.items()}
    try:
        state = opt.init(params)
        opt.update(params, state, params)
    except _NEEDS_CONCRETE:
        raise
    except Exception:  # noqa: BLE001  (a probe the optimizer rejects says nothing)
        return None
    return jax.tree.structure(state)


def _scalar_select_update(build, held, shapes, updates, inner_state, params, extra_args):
    """The update of the optimizer built from :class:`HeldNumber` hyperparameters (each
    the built-with Python number or the held value, selected per scalar), or ``None``
    when the factory needs Python numbers (or gives another state) and the caller falls
    back to a ``lax.cond`` between the optimizer as built and the rebuilt one."""
    try:
        inner = optax.with_extra_args_support(build(held))
        out = inner.update(updates, inner_state, params, **extra_args)
    except (TypeError, ValueError, AttributeError, *_NEEDS_CONCRETE):
        return None
    if jax.tree.structure(out) != jax.tree.structure(shapes) or any(
            jnp.shape(x) != s.shape for x, s in zip(jax.tree.leaves(out),
                                                    jax.tree.leaves(shapes), strict=True)):
        return None
    return _in_dtypes_of(out, shapes)


def _in_dtypes_of(out: Any, shapes: Any) -> Any:
    """``out`` with each leaf in the dtype of ``shapes``' leaf: the state keeps its dtypes
    whatever the hyperparameters' (tunix #1880)."""
    return jax.tree.map(lambda x, s: jnp.asarray(x, s.dtype), out, shapes)


def _in_dtype_of(x: Any, like: Any) -> Any:
    """``x`` in ``like``'s float dtype (other leaves, such as keys and counts, as they are)."""
    dtype = getattr(like, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.inexact):
        return jnp.asarray(x, dtype)
    return x


def _takes_schedule(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory``'s argument ``name`` is annotated to take a schedule (lossjax's
    ``Schedule`` or optax's, alone or in a union such as ``ScalarOrSchedule``): only then
    does :func:`inject_hyperparams` hand the schedule itself to the factory."""
    try:
        annotation = inspect.signature(factory, eval_str=True).parameters[name].annotation
    except (NameError, TypeError, ValueError, KeyError, AttributeError):
        return False
    return any(member is Schedule or member == optax.schedules.Schedule
               for member in (*get_args(annotation), annotation))


def _branches_on(factory: Callable[..., Any], arguments: Mapping[str, Any], name: str) -> bool:
    """Whether ``factory`` needs ``arguments[name]`` as a Python number (it branches on it
    when it builds or runs the optimizer, e.g. ``lossjax.sgd``'s ``momentum``, or its state
    has another structure, e.g. no weight-decay slot for ``weight_decay=0``); only traced,
    never run."""
    structures = []

    def build_with_traced(value):
        factory(**{**arguments, name: value})  # a ValueError: it checks a concrete value
        structures.append(_probe_state(factory, {**arguments, name: value}))
        return jnp.zeros(())

    def build_as_given():
        structures.append(_probe_state(factory, arguments))
        return jnp.zeros(())

    try:
        jax.eval_shape(build_with_traced, jnp.asarray(arguments[name]))
        jax.eval_shape(build_as_given)
    except (*_NEEDS_CONCRETE, ValueError):
        return True
    return structures[0] != structures[1]


def inject_hyperparams(
    inner_factory: Callable[..., optax.GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., optax.GradientTransformation]:
    """Hold an optimizer's hyperparameters in its state, as numbers or schedules.

    ``inject_hyperparams(lossjax.adamw)(learning_rate=sched, weight_decay=0.01)`` builds
    an AdamW whose numeric arguments (and schedules' current values) live in
    ``state.hyperparams``; each update rebuilds ``inner_factory(**hyperparams)`` from
    them, so they are data, not constants compiled into the step. Change one between
    jitted steps and the next update uses it without a retrace: use
    :func:`set_learning_rate` for the rate, or assign an array of the same dtype::

        state.hyperparams["learning_rate"] = jnp.asarray(1e-4, jnp.float32)

    (a Python float is a weakly typed argument to ``jit`` and compiles the step once
    more). A schedule is evaluated at its own step count (``state.hyperparams_states``)
    before each update; assigning to a scheduled hyperparameter has no effect. Bools,
    strings, ``None`` and ``static_args`` stay fixed Python values; any other callable is
    taken as a schedule. An argument annotated to take a schedule (``learning_rate:
    ScalarOrSchedule``) gets the schedule itself; for any other argument (``scale``'s
    ``step_size``) the optimizer is rebuilt each step from the schedule's value. optax's
    stateful schedules (``init``, ``update(state, **extra_args)``, ``__call__(state,
    **extra_args)``) are taken too and see ``update``'s extra keyword arguments. A number
    the factory needs as a Python number while building the optimizer (it branches on it)
    is detected when the optimizer is built (the factory is traced once per number) and is
    kept fixed too, so it is not in ``state.hyperparams``.
    Floats are stored in ``hyperparam_dtype``, by default the widest float dtype of the
    parameters, float32 at least (optax stores them in the parameters' dtype, bfloat16
    for bfloat16 parameters). The state is optax's ``InjectStatefulHyperparamsState``.
    Keyword arguments of ``update`` beyond ``params`` reach the inner update.

    Numbers: each update builds the optimizer from the held hyperparameters, each one
    standing for the scalar ``where(unchanged, number given here, value held)``; the
    arithmetic the optimizer does on a hyperparameter while building (``1 − b1``,
    ``log b2`` for the bias correction, ``√(1 − b2)``) runs on both sides, on the given
    number in float64 on the host as the unwrapped optimizer does it. So while
    ``state.hyperparams`` holds the values given here the per-element arithmetic sees the
    unwrapped optimizer's scalars and the wrapped optimizer is bitwise the unwrapped one
    (optax's drifts by an ulp a step: it rebuilds from float32 copies, optax #1532), and
    only scalars are selected, so the step fuses as the plain one does. On this path an
    ``eps`` that was not 0 when built gets no 0/0 guard if it is later set to 0 (as in
    optax, which has none). A hyperparameter given as 0 is held too: where the optimizer
    skips work for a known 0 (``weight_decay = 0`` adds nothing and reads no parameter,
    ``eps_root = 0`` takes ``√v/√c``), the wrapped one adds the term through
    ``where(unchanged, 0, term)``, placed so that the arithmetic around it (and the fused
    multiply-adds XLA forms from it) is the plain optimizer's. A factory that needs
    a hyperparameter as a Python number while building (``float()``, ``math``, ``if``,
    ``==``) instead runs the optimizer as built or the one rebuilt from the held values
    under a ``lax.cond``: bitwise too, slower (the conditional blocks fusing the step with
    ``apply_updates``); lossjax's optimizers take the scalar path, and so do optax's
    (a held number is a pytree: it passes through jitted helpers such as
    ``optax.tree.bias_correction``). Either way the state
    keeps the dtypes ``init`` gave it (tunix #1880). A number the factory checks or
    branches on when building or running the optimizer (an integer count,
    ``weight_decay=0`` dropping a chain element, ``lossjax.sgd``'s ``momentum``) is
    detected on a small probe when the optimizer is built and kept fixed; a callable that
    is the factory's default (e.g. ``adopt``'s ``clip_value_fn``) is not a schedule.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.inject_hyperparams(lossjax.sgd)(learning_rate=0.1)
      >>> state = lossjax.set_learning_rate(tx.init(jnp.zeros(1)), 0.5)
      >>> tx.update(jnp.array([2.0]), state)[0]
      Array([-1.], dtype=float32)
    """
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static - set(signature.parameters)
    if unknown:
        raise ValueError(f"static_args {sorted(unknown)} are not arguments of inner_factory "
                         f"({list(signature.parameters)})")

    @functools.wraps(inner_factory)
    def build(*args, **kwargs) -> optax.GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        schedules, numbers, fixed = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static or isinstance(value, (bool, str)) or value is None:
                fixed[name] = value
            elif callable(value) and value is not signature.parameters[name].default:
                schedules[name] = value
            elif isinstance(value, (int, float, np.ndarray, np.number, jax.Array)):
                numbers[name] = value
            else:
                fixed[name] = value
        for name in [n for n in numbers if _branches_on(inner_factory, bound.arguments, n)]:
            fixed[name] = numbers.pop(name)
        # optax's stateful schedules (``init``/``update``/``__call__(state)``), and schedules
        # for arguments that take numbers only (``scale``'s ``step_size``), are evaluated
        # here each step and the optimizer is rebuilt from their values, as optax does.
        stateful = {k: f for k, f in schedules.items()
                    if isinstance(f, optax.schedules.StatefulSchedule)}
        evaluated = [k for k in schedules
                     if k in stateful or not _takes_schedule(inner_factory, k)]

        def current(held, schedule_states, dtype,
                    extra_args=None) -> dict[str, jax.typing.ArrayLike]:
            values: dict[str, jax.typing.ArrayLike] = {
                k: _as_hyperparam(v, dtype) for k, v in held.items() if k in numbers}
            values.update({k: _as_hyperparam(f(schedule_states[k].count), dtype)
                           for k, f in schedules.items() if k not in stateful})
            values.update({k: _as_hyperparam(f(schedule_states[k], **(extra_args or {})), dtype)
                           for k, f in stateful.items()})
            return values

        def next_schedule_states(states, extra_args):
            return {k: f.update(states[k], **extra_args) if k in stateful
                    else WrappedScheduleState(increment_count(states[k].count))
                    for k, f in schedules.items()}

        # The optimizer exactly as built from the caller's numbers and schedules: while the
        # hyperparameters in the state still hold those numbers, each update runs it, so the
        # wrapped optimizer is bitwise the unwrapped one (optax #1532). Rebuilding it from
        # the float32 copies would compute e.g. ``1 − b1`` in float32, not from the float64
        # Python number, and drift by an ulp a step.
        as_built = None if evaluated else optax.with_extra_args_support(
            inner_factory(**fixed, **numbers, **schedules))

        def rebuilt(hyperparams):
            return optax.with_extra_args_support(inner_factory(**fixed, **hyperparams))

        def init(params):
            dtype = hyperparam_dtype or _float_dtype(params)
            schedule_states = {k: stateful[k].init() if k in stateful
                               else WrappedScheduleState(jnp.zeros([], jnp.int32))
                               for k in schedules}
            hyperparams = current(numbers, schedule_states, dtype)
            inner = as_built if as_built is not None else rebuilt(hyperparams)
            return InjectHyperparamsState(jnp.zeros([], jnp.int32), hyperparams,
                                          schedule_states, inner.init(params))

        def run_injected(inner, updates, inner_state, params, extra_args):
            held = nodes_of_type(inner_state, LearningRateState)
            if held:
                # Under jit the rest of this fresh state is dead code and is not computed.
                inner_state = _refresh_learning_rates(inner_state, inner.init(updates))
            new_updates, new_state = inner.update(updates, inner_state, params, **extra_args)
            if held:
                # The state keeps the rate it was built with, which the unchanged path reads.
                new_state = _refresh_learning_rates(new_state, _as_state(held))
            return new_updates, new_state

        def update(updates, state, params=None, **extra_args):
            dtype = hyperparam_dtype or _float_dtype(updates if params is None else params)
            hyperparams = current(state.hyperparams, state.hyperparams_states, dtype, extra_args)

            def built():
                assert as_built is not None
                return as_built.update(updates, state.inner_state, params, **extra_args)

            if as_built is None:
                new_updates, inner_state = run_injected(
                    rebuilt(hyperparams), updates, state.inner_state, params, extra_args)
                # The state keeps its dtypes whatever the hyperparameters' (tunix #1880).
                inner_state = jax.tree.map(_in_dtype_of, inner_state, state.inner_state)
            elif not numbers:
                new_updates, inner_state = built()
            else:
                shapes = jax.eval_shape(built)
                # per hyperparameter: does the state still hold the number given here?
                same = {k: jnp.all(state.hyperparams[k] == _as_hyperparam(v, dtype))
                        for k, v in numbers.items()}
                fast = _scalar_select_update(
                    lambda held: inner_factory(**fixed, **held, **schedules),
                    {k: HeldNumber(v, state.hyperparams[k], same[k])
                     for k, v in numbers.items()},
                    shapes, updates, state.inner_state, params, extra_args)
                if fast is not None:
                    new_updates, inner_state = fast
                else:

                    def injected():
                        out = run_injected(rebuilt(hyperparams), updates, state.inner_state,
                                           params, extra_args)
                        return _in_dtypes_of(out, shapes)

                    unchanged = functools.reduce(jnp.logical_and, list(same.values()))
                    # Each path in its own branch: computed together, XLA would share and
                    # fuse their arithmetic and the unchanged path could round differently.
                    # The price on CPU: a conditional blocks fusing the step with
                    # apply_updates and updating in place (see bench/README.md).
                    new_updates, inner_state = jax.lax.cond(unchanged, built, injected)
            schedule_states = next_schedule_states(state.hyperparams_states, extra_args)
            return new_updates, InjectHyperparamsState(increment_count(state.count),
                                                       hyperparams, schedule_states,
                                                       inner_state)

        return optax.GradientTransformationExtraArgs(init, update)

    return build


def set_learning_rate(opt_state: Any, learning_rate: float | Array) -> Any:
    """Return ``opt_state`` with its injected learning rate replaced.

    A learning rate is a constant of the compiled step unless the optimizer is wrapped with
    :func:`inject_hyperparams` (as in optax), which holds it in the state; this sets it
    there, and the jitted step does not recompile::

        opt = lossjax.inject_hyperparams(lossjax.adam)(learning_rate=1e-3)
        state = opt.init(params)
        ...
        state = lossjax.set_learning_rate(state, 1e-4)   # then keep calling step(...)

    Every ``hyperparams["learning_rate"]`` in the state is set (e.g. each group of an
    ``optax.chain`` or :func:`partition`), in the dtype it is held in. A Flax
    ``nnx.Optimizer`` holds its state in variables: those are set in place, so
    ``lossjax.set_learning_rate(optimizer.opt_state, 1e-4)`` is enough there.
    ``learning_rate`` may be a traced value (inside ``jit``); a known negative value raises
    ``ValueError``. A state with no injected rate raises ``ValueError`` (wrap the optimizer
    with :func:`inject_hyperparams`), and so would a rate given as a schedule were it
    detectable: setting one has no effect, the schedule decides.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> g = jnp.array([1.0, -2.0])
      >>> opt = lossjax.inject_hyperparams(lossjax.sgd)(learning_rate=0.1)
      >>> state = lossjax.set_learning_rate(opt.init(g), 0.01)
      >>> opt.update(g, state)[0]  # -0.01·g
      Array([-0.01,  0.02], dtype=float32)
    """
    check_non_negative("learning_rate", learning_rate)
    new_rate = jnp.reshape(jnp.asarray(learning_rate), ())
    is_node = lambda n: isinstance(n, (InjectHyperparamsState, LearningRateState))  # noqa: E731
    found = []

    def set_value(held: Any) -> Any:
        if hasattr(held, "set_value"):  # a Flax nnx variable: nnx reads it back from there
            held.set_value(new_rate.astype(held.get_value().dtype))
            return held
        return new_rate.astype(jnp.result_type(held))

    def replace(node):
        if isinstance(node, LearningRateState):
            found.append(node)
            return node._replace(learning_rate=set_value(node.learning_rate))
        if not isinstance(node, InjectHyperparamsState) or "learning_rate" not in node.hyperparams:
            return node
        found.append(node)
        hyperparams = node.hyperparams
        if hasattr(hyperparams, "set_value") or not isinstance(hyperparams, dict):
            hyperparams["learning_rate"] = set_value(hyperparams["learning_rate"])
            return node
        return node._replace(hyperparams={**hyperparams,
                                          "learning_rate": set_value(hyperparams["learning_rate"])})

    new_state = jax.tree.map(replace, opt_state, is_leaf=is_node)
    if not found:
        raise ValueError(
            "set_learning_rate found no learning rate in this state: a learning rate is a "
            "constant of the compiled step; to change it between steps, wrap with "
            "lossjax.inject_hyperparams, e.g. lossjax.inject_hyperparams(lossjax.adam)"
            "(learning_rate=1e-3)")
    return new_state


# ----------------------------------------------------------------------------- lookahead


class LookaheadState(NamedTuple):
    """``fast_state``: the fast optimizer's state; ``steps_since_sync``: fast steps since
    the last synchronisation (int32)."""

    fast_state: Any
    steps_since_sync: Array


# optax's class itself, so a script that builds ``optax.LookaheadParams`` (or a checkpoint
# of one) works unchanged: ``fast`` holds the parameters gradients are taken at, ``slow``
# the ones to evaluate with; ``LookaheadParams.init_synced(params)`` makes both ``params``.
LookaheadParams = optax.LookaheadParams


def lookahead(
    fast_optimizer: optax.GradientTransformation,
    sync_period: int,
    slow_step_size: float,
    reset_state: bool = False,
) -> optax.GradientTransformation:
    """Lookahead: ``k`` steps of a fast optimizer, then one slow step towards them.

    The parameters are a :class:`LookaheadParams` pair ``(fast, slow)``; gradients are
    taken at ``fast``. Every step moves ``fast`` by the fast optimizer's update ``u``; every
    ``sync_period``-th step also moves ``slow ← slow + α·(fast + u − slow)`` and resets
    ``fast ← slow`` (``α = slow_step_size``). The returned updates do that when applied
    with ``optax.apply_updates``; do not transform them further. ``reset_state``
    re-initialises the fast optimizer's state at each synchronisation.

    Args:
      fast_optimizer: the inner optimizer.
      sync_period: ``k >= 1`` (``ValueError`` otherwise).
      slow_step_size: ``α`` in ``[0, 1]`` (``ValueError`` otherwise).
      reset_state: re-initialise ``fast_optimizer``'s state after each synchronisation.

    References: Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back" (2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> tx = lossjax.lookahead(lossjax.sgd(1.0), sync_period=2, slow_step_size=0.5)
      >>> params = lossjax.LookaheadParams.init_synced(jnp.array([0.0]))
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.array([-1.0]), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> params.slow, params.fast  # fast reached 2; slow moved half-way
      (Array([1.], dtype=float32), Array([1.], dtype=float32))
    """
    if not _is_int(sync_period) or sync_period < 1:
        raise ValueError(f"sync_period must be an integer >= 1, got {sync_period!r}")
    check_in_range("slow_step_size", slow_step_size, 0.0, 1.0, high_inclusive=True)

    def init(params):
        fast = params.fast if isinstance(params, LookaheadParams) else params
        return LookaheadState(fast_optimizer.init(fast), jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        if not isinstance(params, LookaheadParams):
            raise ValueError("lookahead's update needs params=LookaheadParams(fast, slow)")
        updates, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast)
        sync = state.steps_since_sync == sync_period - 1

        def leaf(u, fast, slow):
            gap = jnp.where(sync, upcast(fast) + upcast(u) - upcast(slow), 0.0)
            return ((upcast(u) - (1.0 - slow_step_size) * gap).astype(u.dtype),
                    (slow_step_size * gap).astype(u.dtype))

        fast_updates, slow_updates = per_leaf(leaf, 2, trace_once=False)(
            (updates, params.fast, params.slow))
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(lambda now, new: jnp.where(sync, new, now),
                                      fast_state, fresh)
        return (LookaheadParams(fast_updates, slow_updates),
                LookaheadState(fast_state, (state.steps_since_sync + 1) % sync_period))

    return optax.GradientTransformation(init, update)


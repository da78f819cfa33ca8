"""Moving averages: of the updates (:func:`ema`) and of the parameters (:func:`ema_params`
and stochastic weight averaging, :func:`swa_params`; read back with :func:`averaged_params`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range
from lossjax.optimizers._machinery import (
    EmaState,
    as_array_leaves,
    bias_correction_factor,
    compute_dtype,
    dtype_of,
    full_like,
    increment_count,
    per_leaf,
    real_scalar_dtype,
    scalar_dtype,
    upcast,
    without_float0,
)

Array = jax.Array



def ema(decay: float, debias: bool = True, accumulator_dtype: Any = None
        ) -> optax.GradientTransformation:
    """Exponential moving average of the updates.

    ``e ← d·e + (1 − d)·u`` (``e`` starts at 0); the output is ``e``, or with ``debias``
    ``e / (1 − dᵗ)`` at step ``t = 1, 2, ...``, which removes the pull towards the zero
    start. (``optax.trace`` / :func:`trace` is the undamped ``e ← d·e + u``.)

    Args:
      decay: ``d`` in ``[0, 1]`` (``ValueError`` otherwise).
      debias: divide by ``1 − dᵗ``.
      accumulator_dtype: dtype the average is stored in; ``None``: the updates' dtype.
        The arithmetic runs in at least float32 either way.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.ema(0.9)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([1.0]), state)  # debiased: exactly the first
      >>> u, state = tx.update(jnp.array([3.0]), state)  # (0.09 + 0.3) / 0.19
      >>> u
      Array([2.0526], dtype=float32)
    """
    check_in_range("decay", decay, 0.0, 1.0, high_inclusive=True)

    def leaf(u, e, correction):
        e32 = decay * upcast(e) + (1.0 - decay) * upcast(u)
        out = e32 / correction.astype(e32.dtype) if debias else e32
        return out.astype(u.dtype), e32.astype(e.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        return EmaState(jnp.zeros([], jnp.int32),
                        jax.tree.map(lambda p: full_like(p, dtype=accumulator_dtype), params))

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        dtype = scalar_dtype(updates)
        correction = bias_correction_factor(decay, count, dtype) if debias else jnp.ones([], dtype)
        updates, averages = apply((updates, state.ema), (correction,))
        return updates, EmaState(count, averages)

    return optax.GradientTransformation(init, update)


class EmaParamsState(NamedTuple):
    """``count``: updates seen (int32); ``average``: the debiased moving average of the
    parameters after each update (float32 at least), the initial parameters before any."""

    count: Array
    average: Any


def ema_params(decay: float) -> optax.GradientTransformation:
    """Keep a debiased exponential moving average of the parameters in the optimizer state.

    Chain it last (after the learning rate): it passes the updates through unchanged and,
    with ``w_t = params + updates`` the parameters after step ``t = 1, 2, ...``, tracks ::

        a_t = Σ_{s ≤ t} d^(t−s) (1 − d) w_s / (1 − dᵗ)
            = a_{t−1} + (w_t − a_{t−1}) · (1 − d) / (1 − dᵗ)

    the zero-started EMA divided by its bias correction ``1 − dᵗ``. It is kept in that
    second, already debiased form, so :func:`averaged_params` reads it without knowing
    ``d`` and float32 loses nothing to a tiny ``1 − dᵗ``. After the first step
    ``a_1 = w_1``; ``d = 1`` gives the equal-weight average ``a_t = (w_1 + ... + w_t)/t``
    (stochastic weight averaging). Evaluate or export the model with
    ``averaged_params(state)``; train with the parameters themselves.

    Conventions elsewhere: Keras' ``use_ema=True`` (``ema_momentum=0.99``) and PyTorch's
    ``swa_utils.AveragedModel`` with an EMA ``multi_avg_fn`` keep the same kind of average
    but start it at the first parameters, ``a ← d·a + (1 − d)·w``, without debiasing:
    early averages lean towards the initial weights, which the debiasing here removes.
    Keras also overwrites the model's weights with the average when asked; here the
    average is only read.

    Args:
      decay: ``d`` in ``[0, 1]`` (``ValueError`` otherwise); 0.999 is typical for a long
        run, lower for a short one (the average spans about ``1/(1 − d)`` steps).

    References: Polyak & Juditsky, "Acceleration of Stochastic Approximation by
    Averaging" (1992); Izmailov et al., "Averaging Weights Leads to Wider Optima and
    Better Generalization" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> tx = optax.chain(lossjax.sgd(1.0), lossjax.ema_params(0.5))
      >>> params = jnp.array([0.0])
      >>> state = tx.init(params)
      >>> for g in (-2.0, -2.0):  # parameters 2.0 then 4.0
      ...     updates, state = tx.update(jnp.array([g]), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> lossjax.averaged_params(state)  # (0.25·2 + 0.5·4) / 0.75
      Array([3.3333], dtype=float32)
    """
    check_in_range("decay", decay, 0.0, 1.0, high_inclusive=True)

    def leaf(u, p, a, weight):
        a32 = upcast(a)
        new = (upcast(p) + upcast(u)).astype(dtype_of(p))  # the parameter apply_updates will give
        return (a32 + (upcast(new) - a32) * weight.astype(a32.dtype)).astype(a.dtype),

    apply = per_leaf(leaf, 1)

    def init(params):
        return EmaParamsState(
            jnp.zeros([], jnp.int32),
            # a copy, never the caller's buffer (a step that donates the state must not free
            # the parameters)
            jax.tree.map(lambda p: jnp.array(p, compute_dtype(dtype_of(p)), copy=True), params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("ema_params needs the parameters: "
                             "call update(updates, state, params) with params")
        updates = without_float0(updates)
        count = increment_count(state.count)
        # real even for complex parameters (the weight is a real number)
        t = count.astype(real_scalar_dtype(updates))
        weight = 1.0 / t if decay == 1.0 else (1.0 - decay) / bias_correction_factor(decay, t)
        (average,) = apply((updates, params, state.average), (weight,))
        return updates, EmaParamsState(count, average)

    return optax.GradientTransformation(init, update)


class SwaParamsState(NamedTuple):
    """``count``: updates seen (int32); ``n_averaged``: parameter snapshots in the average
    (int32, PyTorch's ``n_averaged``); ``average``: their equal-weight mean (float32 at
    least), the initial parameters before the first."""

    count: Array
    n_averaged: Array
    average: Any


def swa_params(swa_start: int = 0, swa_freq: int = 1) -> optax.GradientTransformation:
    """Stochastic weight averaging: the equal-weight mean of the parameters after steps
    ``swa_start + swa_freq``, ``swa_start + 2·swa_freq``, ... kept in the optimizer state.

    Chain it last (after the learning rate); it passes the updates through unchanged.
    With ``w_t = params + updates`` after step ``t = 1, 2, ...`` and ``n`` snapshots so
    far, a snapshot step does ``n ← n + 1``, ``a ← a + (w_t − a)/n`` (PyTorch's
    ``swa_utils.AveragedModel.update_parameters``, called every ``swa_freq`` steps from
    ``swa_start`` on). Pair it with the :func:`lossjax.schedules.swalr` schedule (PyTorch's
    ``SWALR``): anneal to a constant SWA rate at ``swa_start``. Read the average with
    :func:`averaged_params`. Batch-norm statistics, if any, must be recomputed for the
    averaged weights (PyTorch's ``update_bn``).

    Args:
      swa_start: ``>= 0``, the step after which averaging starts.
      swa_freq: ``>= 1``, steps between snapshots.

    References: Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
    Generalization" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> tx = optax.chain(lossjax.sgd(1.0), lossjax.swa_params(swa_start=1))
      >>> params = jnp.array([0.0])
      >>> state = tx.init(params)
      >>> for g in (-1.0, -2.0, -4.0):  # parameters 1, 3, 7
      ...     updates, state = tx.update(jnp.array([g]), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> lossjax.averaged_params(state)  # (3 + 7)/2: steps after swa_start = 1
      Array([5.], dtype=float32)
    """
    if not isinstance(swa_start, int) or swa_start < 0:
        raise ValueError(f"swa_start must be an integer >= 0, got {swa_start!r}")
    if not isinstance(swa_freq, int) or swa_freq < 1:
        raise ValueError(f"swa_freq must be an integer >= 1, got {swa_freq!r}")

    def leaf(u, p, a, weight):
        a32 = upcast(a)
        new = (upcast(p) + upcast(u)).astype(p.dtype)  # the parameter apply_updates will give
        return (a32 + (upcast(new) - a32) * weight.astype(a32.dtype)).astype(a.dtype),

    apply = per_leaf(leaf, 1)

    def init(params):
        # a copy, never the caller's buffer: a step that donates params must not free it
        return SwaParamsState(
            jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32),
            jax.tree.map(lambda p: jnp.array(p, compute_dtype(dtype_of(p)), copy=True), params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("swa_params needs the parameters: "
                             "call update(updates, state, params) with params")
        count = increment_count(state.count)
        since = count - swa_start
        snapshot = (since > 0) & (since % swa_freq == 0)
        n = jnp.where(snapshot, increment_count(state.n_averaged), state.n_averaged)
        weight = jnp.where(snapshot, 1.0 / jnp.maximum(n, 1).astype(scalar_dtype(updates)), 0.0)
        (average,) = apply((updates, as_array_leaves(params), state.average), (weight,))
        return without_float0(updates), SwaParamsState(count, n, average)

    return optax.GradientTransformation(init, update)


def _is_average(node: Any) -> bool:
    return isinstance(node, (EmaParamsState, SwaParamsState))


def averaged_params(state: Any) -> Any:
    """The parameters averaged by :func:`ema_params` or :func:`swa_params`, found anywhere
    inside ``state``.

    ``state`` is the whole optimizer state (an ``optax.chain``'s tuple, a wrapper's state,
    or a Flax ``nnx.Optimizer``'s ``opt_state``); it must hold exactly one
    :class:`EmaParamsState` or :class:`SwaParamsState` (``ValueError`` otherwise). The
    average has the parameters' structure, in float32 at least, as plain arrays (also
    from an ``nnx.Optimizer``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> tx = optax.chain(lossjax.sgd(0.1), lossjax.ema_params(0.9))
      >>> lossjax.averaged_params(tx.init({"w": jnp.ones(2)}))  # before any step
      {'w': Array([1., 1.], dtype=float32)}
    """
    found = [n for n in jax.tree.leaves(state, is_leaf=_is_average) if _is_average(n)]
    if len(found) != 1:
        raise ValueError("state must hold exactly one ema_params or swa_params state, "
                         f"found {len(found)}")
    average = found[0].average
    # A Flax nnx.Optimizer holds each array in a variable: hand back the arrays.
    is_variable = lambda x: hasattr(x, "get_value")  # noqa: E731
    return jax.tree.map(lambda x: x.get_value() if is_variable(x) else x, average,
                        is_leaf=is_variable)

"""Adafactor: second moments factored into row and column statistics.

For a ``[n, m]`` matrix the state holds ``n + m`` numbers instead of Adam's ``2nm``
(0.05% of it for ``4096 × 4096``). The row/column reductions run along the matrix's own
axes, so a sharded matrix keeps sharded statistics (each on its matching axis) and only
scalars and the reduced vectors cross devices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._mask import Mask
from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    abs_sq,
    as_update,
    dtype_of,
    exponential_average,
    full_like,
    increment_count,
    negate,
    per_leaf,
    reject_complex,
    shape_of,
    upcast,
    update_dtype,
)
from lossjax.optimizers._transforms import (
    scale_by_learning_rate,
)
from lossjax.regularizers import add_decayed_weights

Array = jax.Array


def _decay_rate_pow(step: Array, exponent: float = 0.8) -> Array:
    """Adafactor's second-moment decay ``1 − (step + 1)^(−exponent)``."""
    return 1.0 - (jnp.asarray(step, jnp.float32) + 1) ** (-exponent)


def _factored_dims(shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int):
    """The (second largest, largest) axes to factor over, or ``None``: a leaf is factored
    when it has two axes of size ``>= min_dim_size_to_factor`` (optax's rule)."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


class FactoredState(NamedTuple):
    """``count`` (int32); per leaf ``v_row`` (the mean of ``g²`` over the largest axis),
    ``v_col`` (over the second largest), both shape ``(1,)`` for an unfactored leaf, and
    ``v`` (the full second moment, shape ``(1,)`` for a factored leaf)."""

    count: Array
    v_row: Any
    v_col: Any
    v: Any


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: float = 0.8,
    step_offset: int = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: float = 1e-30,
    decay_rate_fn: Callable[[Array, float], Array] = _decay_rate_pow,
) -> optax.GradientTransformation:
    """Adafactor's direction ``g/√v̂``, ``v̂`` a rank-1 estimate of the second moment.

    With ``d_t = decay_rate_fn(t − step_offset, decay_rate)`` (``t`` as a float; default
    ``1 − (t + 1)^(−0.8)``) and ``G = g² + epsilon``: for a factored leaf (two axes of size
    ``>= min_dim_size_to_factor``; the two largest are used)
    ``R ← d_t·R + (1 − d_t)·mean(G, largest axis)``,
    ``C ← d_t·C + (1 − d_t)·mean(G, second largest axis)`` and ``v̂ = R·C / mean(R)``;
    otherwise ``v̂ ← d_t·v̂ + (1 − d_t)·G``. ``update`` needs ``params`` (for their shapes).

    References: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
    Cost" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_factored_rms()
      >>> params = jnp.zeros(2)
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(params), params)[0]
      Array([ 1., -1.], dtype=float32)
    """
    check_in_range("decay_rate", decay_rate, 0.0, 1.0, high_inclusive=True)
    check_non_negative("epsilon", epsilon)

    def dims(x):
        return _factored_dims(shape_of(x), factored, min_dim_size_to_factor)

    def leaf(g, v_row, v_col, v, decay):
        g32 = upcast(g)
        decay = decay.astype(g32.dtype)
        squared = abs_sq(g32) + epsilon
        axes = dims(g)
        if axes is None:
            v32 = decay * upcast(v) + (1.0 - decay) * squared
            return as_update(g32 * jax.lax.rsqrt(v32), g), v_row, v_col, v32.astype(v.dtype)
        second, largest = axes
        row = decay * upcast(v_row) + (1.0 - decay) * jnp.mean(squared, axis=largest)
        col = decay * upcast(v_col) + (1.0 - decay) * jnp.mean(squared, axis=second)
        reduced_second = second - 1 if second > largest else second
        row_factor = jax.lax.rsqrt(row / jnp.mean(row, axis=reduced_second, keepdims=True))
        direction = (g32 * jnp.expand_dims(row_factor, largest)
                     * jnp.expand_dims(jax.lax.rsqrt(col), second))
        return as_update(direction, g), row.astype(v_row.dtype), col.astype(v_col.dtype), v

    apply = per_leaf(leaf, 4)

    def init(params):
        def statistics(p):
            dtype = update_dtype(dtype_of(p))
            # a fresh array per unused slot: no two state leaves may share a buffer (a step
            # jitted with the state donated would donate it twice)
            def placeholder():
                return jnp.zeros((1,), dtype)

            axes = dims(p)
            if axes is None:
                return placeholder(), placeholder(), full_like(p, dtype=dtype)
            second, largest = axes
            row_shape = tuple(n for i, n in enumerate(shape_of(p)) if i != largest)
            col_shape = tuple(n for i, n in enumerate(shape_of(p)) if i != second)
            return jnp.zeros(row_shape, dtype), jnp.zeros(col_shape, dtype), placeholder()

        treedef = jax.tree.structure(params)
        columns = list(zip(*[statistics(p) for p in jax.tree.leaves(params)], strict=True))
        trees = [treedef.unflatten(c) for c in columns] if columns else [params] * 3
        return FactoredState(jnp.zeros([], jnp.int32), *trees)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_factored_rms needs the parameters: call "
                             "update(updates, state, params)")
        # the step in float: ``count − offset + 1`` must not wrap around at the int32 limit
        decay = decay_rate_fn(state.count.astype(jnp.float32) - step_offset, decay_rate)
        out, v_row, v_col, v = apply((updates, state.v_row, state.v_col, state.v), (decay,))
        return out, FactoredState(increment_count(state.count), v_row, v_col, v)

    return optax.GradientTransformation(init, update)


# optax's (empty) state: the same class, so states match optax's
ClipByBlockRmsState = optax.EmptyState


def clip_by_block_rms(threshold: float) -> optax.GradientTransformation:
    """Per leaf, ``u ← u / max(1, rms(u)/threshold)``: no leaf's RMS exceeds ``threshold``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.clip_by_block_rms(1.0).update(jnp.array([3.0, -4.0]), None)[0]
      Array([ 0.8485..., -1.1313...], dtype=float32)
    """
    check_positive("threshold", threshold)

    def leaf(u):
        u32 = upcast(u)
        rms = jnp.sqrt(jnp.mean(abs_sq(u32)))
        return (as_update(u32 / jnp.maximum(1.0, rms / threshold), u),)

    apply = per_leaf(leaf, 1)

    def update(updates, state, params=None):
        del params
        return apply((updates,))[0], state

    return optax.GradientTransformation(lambda params: ClipByBlockRmsState(), update)


# optax's (empty) state: the same class, so states match optax's
ScaleByParamBlockRmsState = optax.EmptyState


def scale_by_param_block_rms(min_scale: float = 1e-3) -> optax.GradientTransformation:
    """Per leaf, ``u ← u · max(rms(w), min_scale)``: steps relative to the weights' scale.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_param_block_rms()
      >>> tx.update(jnp.array([1.0, 1.0]), None, jnp.array([3.0, -4.0]))[0]
      Array([3.5355..., 3.5355...], dtype=float32)
    """
    check_non_negative("min_scale", min_scale)

    def leaf(u, w):
        w32 = upcast(w)
        rms = jnp.sqrt(jnp.mean(abs_sq(w32)))
        return (as_update(upcast(u) * jnp.where(rms <= min_scale, min_scale, rms), u),)

    apply = per_leaf(leaf, 1)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_param_block_rms needs the parameters: call "
                             "update(updates, state, params)")
        return apply((updates, params))[0], state

    return optax.GradientTransformation(lambda params: ScaleByParamBlockRmsState(), update)


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: float | None = 1.0,
    momentum: float | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: float | None = None,
    eps: float = 1e-30,
    factored: bool = True,
    weight_decay_mask: Mask = None,
) -> optax.GradientTransformation:
    """Adafactor: ``w ← w − (lr·s·clip(g/√v̂) [momentum] + wd·w)``.

    ``v̂`` is the factored second moment of :func:`scale_by_factored_rms`; ``clip`` bounds
    each leaf's RMS by ``clipping_threshold`` (:func:`clip_by_block_rms`; ``None``: off);
    ``s = max(rms(w), 1e-3)`` when ``multiply_by_parameter_scale`` (the paper's relative
    step size); ``momentum`` (``None``: off) keeps an EMA of the steps in
    ``dtype_momentum`` (a real one refuses complex parameters with a ``ValueError``: it
    would drop their imaginary parts); ``weight_decay_rate`` (not multiplied by ``lr``)
    decays the leaves ``weight_decay_mask`` selects. ``learning_rate=None`` leaves the step unscaled
    (optax's convention). The paper's ``lr = min(1e-2, 1/√t)`` is a schedule you pass in.
    PyTorch's ``Adafactor`` (2.5+) and Keras' differ in defaults (``beta2_decay = −0.8``
    as here, but ``eps = (1e-30, 1e-3)`` split in two and ``lr = 1e-2`` / ``1e-3``).

    References: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
    Cost" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adafactor(0.1, multiply_by_parameter_scale=False)
      >>> params = jnp.zeros(2)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(params), params)[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    if clipping_threshold is not None:
        check_positive("clipping_threshold", clipping_threshold)
    if momentum is not None:
        check_in_range("momentum", momentum, 0.0, 1.0)
    parts = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor,
                                   eps)]
    if clipping_threshold is not None:
        parts.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        parts.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        parts.append(scale_by_param_block_rms())
    if momentum is not None:
        parts.append(_real_momentum(momentum, dtype_momentum))
    if weight_decay_rate is not None:
        parts.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    parts.append(negate())
    return optax.chain(*parts)


def _real_momentum(momentum: float, dtype: Any) -> optax.GradientTransformation:
    """Adafactor's momentum, an EMA of the steps held in ``dtype``; complex parameters are
    refused (``ValueError``): a real ``dtype_momentum`` would drop the steps' imaginary
    parts (optax casts them away, a complex-to-real cast JAX deprecates)."""
    ema = exponential_average(momentum, dtype)

    def init(params):
        if dtype is None or not jnp.issubdtype(dtype, jnp.complexfloating):
            reject_complex("adafactor with momentum", params)
        return ema.init(params)

    return optax.GradientTransformation(init, ema.update)

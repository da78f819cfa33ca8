"""Stateless rescalings of the updates: element-wise and per-block clipping, adaptive
gradient clipping, gradient centralization and a fixed scale.

Each keeps no state (``optax.EmptyState``), runs its arithmetic in at least float32 and
returns updates in their own dtype. Same arguments and numbers as optax's transforms of
the same name.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    upcast,
    without_float0,
)

Array = jax.Array


def _stateless(leaf_fn) -> optax.GradientTransformation:
    """A transform that maps ``leaf_fn(u)`` over the updates and keeps no state."""

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: leaf_fn(u).astype(u.dtype), without_float0(updates)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def clip(max_delta: float) -> optax.GradientTransformation:
    """Clip every update element to ``[−max_delta, max_delta]``: ``u ← min(max(u, −δ), δ)``.

    ``max_delta`` must be ``>= 0`` (``ValueError`` otherwise). PyTorch's
    ``clip_grad_value_`` and Keras' ``clipvalue`` are the same operation.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.clip(1.0)
      >>> g = jnp.array([-3.0, 0.5, 2.0])
      >>> tx.update(g, tx.init(g))[0]
      Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    check_non_negative("max_delta", max_delta)
    return _stateless(lambda u: jnp.clip(u, -max_delta, max_delta))


def _unitwise_norm(x: Array, axis: int | tuple[int, ...] | None) -> Array:
    """The L2 norm of each output unit, broadcastable against ``x``.

    Without ``axis``: a scalar or vector is one unit; a matrix ``[in, out]`` or a 3-D
    multi-head kernel has one unit per slice along axis 0 reduced; a convolution kernel
    ``HWIO`` (``DHWIO``) one per output channel.
    """
    x = jnp.asarray(x)
    squares = jnp.square(jnp.abs(upcast(x)))
    if axis is None:
        if jnp.squeeze(x).ndim <= 1:
            axis = tuple(range(x.ndim))
        elif x.ndim in (2, 3):
            axis = 0
        elif x.ndim in (4, 5):
            axis = tuple(range(x.ndim - 1))
        else:
            raise ValueError(
                f"adaptive_grad_clip: a parameter of shape {x.shape} has no default unit; "
                "pass axis= to say which axes a unit's norm reduces")
    return jnp.sqrt(jnp.sum(squares, axis=axis, keepdims=True))


def adaptive_grad_clip(
    clipping: float, eps: float = 1e-3, axis: int | tuple[int, ...] | None = None
) -> optax.GradientTransformation:
    """Adaptive gradient clipping (AGC): clip each unit's update relative to its weights.

    For each unit ``i`` (an output neuron, see below), with ``‖·‖`` the unit's L2 norm and
    ``m_i = clipping · max(‖w_i‖, eps)``::

        u_i ← u_i                    if ‖u_i‖ < m_i
        u_i ← u_i · m_i / ‖u_i‖      otherwise (‖u_i‖ floored at 1e-6)

    Units, unless ``axis`` names the reduced axes: the whole leaf for scalars and vectors,
    axis 0 reduced for matrices ``[in, out]`` and 3-D kernels, all but the last axis for
    4-D (``HWIO``) and 5-D kernels. Needs ``params`` in ``update``.

    Args:
      clipping: the largest allowed ratio ``‖u_i‖ / ‖w_i‖`` (``> 0``).
      eps: floor of the weight norm, so zero-initialised units can move (``>= 0``).
      axis: axes each unit's norm reduces, for other layouts.

    References: Brock et al., "High-Performance Large-Scale Image Recognition Without
    Normalization" (2021).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.adaptive_grad_clip(0.1)
      >>> w, g = jnp.array([3.0, 4.0]), jnp.array([1.0, 0.0])  # ‖w‖ = 5: ‖u‖ ≤ 0.5
      >>> tx.update(g, tx.init(w), w)[0]
      Array([0.5, 0. ], dtype=float32)
    """
    check_positive("clipping", clipping)
    check_non_negative("eps", eps)

    def leaf(u, w):
        u32 = upcast(u)
        u_norm = _unitwise_norm(u32, axis)
        max_norm = clipping * jnp.maximum(_unitwise_norm(w, axis), eps)
        clipped = u32 * (max_norm / jnp.maximum(u_norm, 1e-6))
        return jnp.where(u_norm < max_norm, u32, clipped).astype(u.dtype)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("adaptive_grad_clip needs the parameters: "
                             "call update(updates, state, params) with params")
        return jax.tree.map(leaf, without_float0(updates), params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def centralize() -> optax.GradientTransformation:
    """Gradient centralization: ``u ← u − mean(u)``, the mean over all axes but the first.

    Vectors and scalars (biases, norm scales) pass through unchanged.

    References: Yong et al., "Gradient Centralization: A New Optimization Technique for
    Deep Neural Networks" (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.centralize()
      >>> g = jnp.array([[1.0, 2.0, 3.0], [4.0, 6.0, 8.0]])
      >>> tx.update(g, tx.init(g))[0]
      Array([[-1.,  0.,  1.],
             [-2.,  0.,  2.]], dtype=float32)
    """

    def leaf(u):
        if u.ndim <= 1:
            return u
        u32 = upcast(u)
        return u32 - jnp.mean(u32, axis=tuple(range(1, u.ndim)), keepdims=True)

    return _stateless(leaf)


def scale(step_size: float | Any) -> optax.GradientTransformation:
    """Multiply every update by a fixed scalar: ``u ← step_size · u``.

    Any sign is allowed (``scale(-lr)`` descends), as in optax.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale(-0.1)
      >>> g = jnp.array([1.0, -2.0])
      >>> tx.update(g, tx.init(g))[0]
      Array([-0.1,  0.2], dtype=float32)
    """
    return _stateless(lambda u: upcast(u) * step_size)

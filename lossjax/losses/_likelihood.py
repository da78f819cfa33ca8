"""Negative log-likelihoods of simple observation models: Poisson and Gaussian."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lossjax._validation import check_positive
from lossjax.losses._inputs import (
    check_broadcastable_to,
    elementwise_inputs,
    example_mask,
    float_inputs,
    keep_entries,
    real_array,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["gaussian_nll", "poisson_nll"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirling_term(t: Array) -> Array:
    """``t·log t − t + ½·log(2πt)`` for ``t > 1``, else 0 (PyTorch's ``full=True`` term)."""
    large = t > 1
    safe_t = jnp.where(large, t, 2.0)
    term = safe_t * jnp.log(safe_t) - safe_t + 0.5 * jnp.log(2.0 * jnp.pi * safe_t)
    return jnp.where(large, term, 0.0)


def poisson_nll(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Poisson negative log-likelihood (without ``log t!``), elementwise.

    With ``x`` the prediction and ``t`` the observed count::

        log_input=True  (x = log rate):  exp(x) − t·x
        log_input=False (x = rate):      x − t·log(x + eps)

    ``full=True`` adds Stirling's approximation of ``log t!``,
    ``t·log t − t + ½·log(2πt)``, for ``t > 1`` (0 for ``t <= 1``). This is PyTorch's
    ``PoissonNLLLoss``; ``log_input=False`` is Keras' ``Poisson`` (which uses its own
    epsilon, 1e-7). A rate of 0 and a target of 0 give a finite value and gradient thanks
    to ``eps``; a negative rate (``log_input=False``) gives NaN.

    Args:
      predictions: log-rates (``log_input=True``) or rates, any shape.
      targets: counts ``>= 0`` (need not be integers), the same shape.
      eps: > 0, added to the rate inside the log.

    Returns:
      Scalar for ``"mean"``/``"sum"``; the elementwise loss for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.poisson_nll(jnp.array([0.0, 1.0]), jnp.array([2.0, 1.0]))
      Array(1.359, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("eps", eps)
    x, t = elementwise_inputs(("predictions", predictions), ("targets", targets), where=where)
    if log_input:
        loss = jnp.exp(x) - t * x
    else:
        loss = x - t * jnp.log(x + eps)
    if full:
        loss = loss + _stirling_term(t)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def gaussian_nll(
    means: ArrayLike,
    targets: ArrayLike,
    variances: ArrayLike,
    *,
    full: bool = False,
    eps: float = 1e-6,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Gaussian negative log-likelihood with a predicted variance, elementwise.

    With ``v = max(variance, eps)``::

        ½·(log v + (mean − target)² / v)   (+ ½·log 2π when full=True)

    This is PyTorch's ``GaussianNLLLoss``, including its clamp: the value uses
    ``max(variance, eps)`` but the gradient with respect to ``variance`` is taken as if
    unclamped (straight-through: ``variance + stop_gradient(v − variance)``), so a variance
    below ``eps`` still receives a gradient that pushes it up. A zero variance is clamped
    (finite value and gradient). A negative variance gives NaN for that entry (PyTorch
    raises; ``jit`` cannot).

    Args:
      means: predicted means, any shape.
      targets: observations, the same shape as ``means``.
      variances: predicted variances, broadcastable to ``means``' shape (e.g. a trailing
        dimension of 1 for one variance shared by a row). PyTorch's other form, a variance
        with the last dimension dropped, must be written ``variances[..., None]`` here.
      eps: > 0, the smallest variance used in the value.

    Returns:
      Scalar for ``"mean"``/``"sum"``; the elementwise loss (``means``' shape) for
      ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.gaussian_nll(jnp.array([0.0]), jnp.array([1.0]), jnp.array([2.0]))
      Array(0.5966, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("eps", eps)
    var = real_array("variances", variances)
    shape = jnp.shape(means)
    check_broadcastable_to("variances", var.shape, shape)
    mu, y, var = float_inputs(("means", means), ("targets", targets),
                              ("variances", jnp.broadcast_to(var, shape)))
    mask = example_mask(where, mu.shape)
    mu, y = keep_entries(mask, mu, y)
    (var,) = keep_entries(mask, var, fill=1.0)
    clamped = var + jax.lax.stop_gradient(jnp.maximum(var, eps) - var)
    loss = 0.5 * (jnp.log(clamped) + jnp.square(mu - y) / clamped)
    if full:
        loss = loss + _HALF_LOG_2PI
    loss = jnp.where(var < 0, jnp.nan, loss)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)

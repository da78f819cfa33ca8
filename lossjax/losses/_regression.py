"""Regression losses: elementwise functions of the error ``e = predictions - targets``.

All take ``(predictions, targets, *, weights=None, where=None, reduction="mean")``;
``predictions`` and ``targets`` must have the same shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._numerics import abs_zero_subgradient
from lossjax._validation import check_non_negative, check_positive
from lossjax.losses._reduce import elementwise_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


@elementwise_loss
def _squared_error(predictions: Array, targets: Array) -> Array:
    return jnp.square(predictions - targets)


def mse(predictions: ArrayLike, targets: ArrayLike, *, weights: ArrayLike | None = None,
        where: ArrayLike | None = None, reduction: str = "mean") -> Array:
    """Mean squared error: ``(p - t)²`` per element, averaged by default.

    The textbook's four steps: error ``p - t``, square it, sum, divide by ``n``.
    ``mse([0.8, 2.1, 3.2], [1, 2, 3]) == 0.03``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.mse(jnp.array([0.8, 2.1, 3.2]), jnp.array([1.0, 2.0, 3.0]))
      Array(0.03, dtype=float32)
    """
    return _squared_error(predictions, targets, weights=weights, where=where, reduction=reduction)


@elementwise_loss
def _absolute_error(predictions: Array, targets: Array) -> Array:
    return abs_zero_subgradient(predictions - targets)


def mae(predictions: ArrayLike, targets: ArrayLike, *, weights: ArrayLike | None = None,
        where: ArrayLike | None = None, reduction: str = "mean") -> Array:
    """Mean absolute error: ``|p - t|`` per element. The gradient at ``p == t`` is 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.mae(jnp.array([0.8, 2.1, 3.2]), jnp.array([1.0, 2.0, 3.0]))
      Array(0.1667, dtype=float32)
    """
    return _absolute_error(predictions, targets, weights=weights, where=where, reduction=reduction)


def _huber(error: Array, delta: float | Array) -> Array:
    # With q = min(|e|, δ): ½q² + δ(|e| - q) equals ½e² inside and δ(|e| - ½δ) outside.
    # δ = inf makes |e| - q exactly 0, so its factor may be 0: ½e², not inf·0 = NaN, in the
    # value and in the gradient.
    abs_error = abs_zero_subgradient(error)
    quadratic = jnp.minimum(abs_error, delta)
    slope = jnp.where(jnp.isinf(delta), 0.0, delta)
    return 0.5 * jnp.square(quadratic) + slope * (abs_error - quadratic)


@elementwise_loss
def _huber_loss(predictions: Array, targets: Array, *, delta: float) -> Array:
    return _huber(predictions - targets, delta)


def huber(predictions: ArrayLike, targets: ArrayLike, *, delta: float = 1.0,
          weights: ArrayLike | None = None, where: ArrayLike | None = None,
          reduction: str = "mean") -> Array:
    """Huber loss: ``½e²`` if ``|e| ≤ δ`` else ``δ(|e| − ½δ)``, with ``e = p − t``.

    Quadratic near 0, linear in the tails (robust to outliers). ``delta`` must be > 0;
    ``delta = inf`` is ``½e²`` (half the squared error).
    Equals optax's ``huber_loss``. References: Huber, "Robust Estimation of a Location
    Parameter" (1964).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.huber(jnp.array([0.8, 2.1, 5.0]), jnp.array([1.0, 2.0, 3.0]))
      Array(0.5083, dtype=float32)
    """
    check_positive("delta", delta)
    return _huber_loss(predictions, targets, delta=delta, weights=weights, where=where,
                       reduction=reduction)


@elementwise_loss
def _smooth_l1_loss(predictions: Array, targets: Array, *, beta: float) -> Array:
    error = predictions - targets
    zero = beta == 0
    return jnp.where(zero, abs_zero_subgradient(error),
                     _huber(error, beta) / jnp.where(zero, 1.0, beta))


def smooth_l1(predictions: ArrayLike, targets: ArrayLike, *, beta: float = 1.0,
              weights: ArrayLike | None = None, where: ArrayLike | None = None,
              reduction: str = "mean") -> Array:
    """Smooth L1: ``½e²/β`` if ``|e| < β`` else ``|e| − ½β`` (Huber with ``δ = β``, over ``β``).

    ``beta = 0`` is plain L1 (PyTorch's convention); ``beta`` must be >= 0. Equals PyTorch's
    ``smooth_l1_loss``. References: Girshick, "Fast R-CNN" (2015).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.smooth_l1(jnp.array([0.8, 2.1, 5.0]), jnp.array([1.0, 2.0, 3.0]), beta=0.5)
      Array(0.6, dtype=float32)
    """
    check_non_negative("beta", beta)
    return _smooth_l1_loss(predictions, targets, beta=beta, weights=weights, where=where,
                           reduction=reduction)


@elementwise_loss
def _log_cosh(predictions: Array, targets: Array) -> Array:
    error = predictions - targets
    return jnp.logaddexp(error, -error) - jnp.log(2.0).astype(error.dtype)


def log_cosh(predictions: ArrayLike, targets: ArrayLike | None = None, *,
             weights: ArrayLike | None = None, where: ArrayLike | None = None,
             reduction: str = "mean") -> Array:
    """Log-cosh: ``log cosh(p − t)``, computed as ``logaddexp(e, −e) − log 2``.

    That form never overflows (finite at ``|e| = 1e3`` and beyond); the gradient is
    ``tanh(e)``. Equals optax's ``log_cosh``. As in optax, ``targets`` may be left out
    (``None`` means zeros): ``log_cosh(errors)`` is the loss of precomputed errors.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.log_cosh(jnp.array([0.8, 2.1, 3.2]), jnp.array([1.0, 2.0, 3.0]))
      Array(0.01491, dtype=float32)
    """
    if targets is None:
        targets = jnp.zeros_like(jnp.asarray(predictions))
    return _log_cosh(predictions, targets, weights=weights, where=where, reduction=reduction)


@elementwise_loss
def _msle(predictions: Array, targets: Array, *, eps: float) -> Array:
    log_p = jnp.log1p(jnp.maximum(predictions, eps))
    log_t = jnp.log1p(jnp.maximum(targets, eps))
    return jnp.square(log_p - log_t)


def msle(predictions: ArrayLike, targets: ArrayLike, *, eps: float = 1e-7,
         weights: ArrayLike | None = None, where: ArrayLike | None = None,
         reduction: str = "mean") -> Array:
    """Mean squared logarithmic error: ``(log(1 + max(p, ε)) − log(1 + max(t, ε)))²``.

    Relative error for non-negative targets spanning orders of magnitude. Inputs are clamped
    at ``eps`` (Keras' ``MeanSquaredLogarithmicError`` convention, so a negative prediction
    gives a finite value and a zero gradient). ``eps`` must be >= 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.msle(jnp.array([0.8, 2.1, 3.2]), jnp.array([1.0, 2.0, 3.0]))
      Array(0.004852, dtype=float32)
    """
    check_non_negative("eps", eps)
    return _msle(predictions, targets, eps=eps, weights=weights, where=where,
                 reduction=reduction)


@elementwise_loss
def _mape(predictions: Array, targets: Array, *, eps: float) -> Array:
    return 100.0 * abs_zero_subgradient(predictions - targets) / jnp.maximum(
        jnp.abs(targets), eps)


def mape(predictions: ArrayLike, targets: ArrayLike, *, eps: float = 1e-7,
         weights: ArrayLike | None = None, where: ArrayLike | None = None,
         reduction: str = "mean") -> Array:
    """Mean absolute percentage error: ``100·|p − t| / max(|t|, ε)``.

    Keras' ``MeanAbsolutePercentageError`` (same ``eps``): finite at ``t = 0`` but huge there,
    so mask such targets with ``where`` rather than relying on ``eps``. ``eps`` must be > 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.mape(jnp.array([0.8, 2.1, 3.2]), jnp.array([1.0, 2.0, 3.0]))
      Array(10.56, dtype=float32)
    """
    check_positive("eps", eps)
    return _mape(predictions, targets, eps=eps, weights=weights, where=where,
                 reduction=reduction)


__all__ = ["huber", "log_cosh", "mae", "mape", "mse", "msle", "smooth_l1"]

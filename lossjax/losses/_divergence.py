"""Divergences between probability distributions."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax.losses._reduce import check_reduction, check_same_shape, compute_dtype, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["kl_divergence"]


def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_targets: bool = False,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Kullback–Leibler divergence ``KL(t ‖ p) = Σ_k t_k (log t_k − log p_k)`` per example.

    ``0 · log 0 = 0``: a class with ``t_k = 0`` contributes exactly 0 to the value and the
    gradient, even where ``log p_k = −inf`` (optax and PyTorch return NaN there). A class
    with ``t_k > 0`` and ``p_k = 0`` gives ``+inf``, the true value.

    Args:
      log_predictions: ``[..., K]`` log-probabilities (e.g. ``log_softmax`` output).
      targets: same shape: probabilities, or log-probabilities when ``log_targets=True``.
      axis: the class axis that is summed.

    Returns:
      Scalar for ``"mean"``/``"sum"`` (mean over examples: PyTorch's ``batchmean``);
      per-example divergences for ``"none"``.
    """
    check_reduction(reduction)
    log_p, t = jnp.asarray(log_predictions), jnp.asarray(targets)
    check_same_shape("log_predictions", log_p, "targets", t)
    dtype = compute_dtype(log_p.dtype, t.dtype)
    log_p, t = log_p.astype(dtype), t.astype(dtype)
    if log_targets:
        present = t > -jnp.inf
        log_t = jnp.where(present, t, 0.0)
        prob_t = jnp.exp(log_t)
    else:
        present = t > 0
        prob_t = jnp.where(present, t, 1.0)
        log_t = jnp.log(prob_t)
    # Safe inputs in the absent branch keep its gradient finite, so the outer where gives 0.
    terms = jnp.where(present, prob_t * (log_t - jnp.where(present, log_p, 0.0)), 0.0)
    return reduce_loss(jnp.sum(terms, axis=axis), weights=weights, where=where,
                       reduction=reduction)

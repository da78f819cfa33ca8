"""Divergences between probability distributions (and unnormalised measures)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax.losses._inputs import masked_class_inputs
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["generalized_kl_divergence", "jensen_shannon_divergence", "kl_divergence"]


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
      where: per example (the arrays' shape without ``axis``), or per class: a mask of the
        arrays' rank (optax's meaning) leaves those classes' terms out of the sum; an
        example that keeps no class is left out.

    Returns:
      Scalar for ``"mean"``/``"sum"`` (mean over examples: PyTorch's ``batchmean``);
      per-example divergences for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([0.9, 0.1]))
      Array(0.3681, dtype=float32)
    """
    check_reduction(reduction)
    log_p, t, examples, classes = _paired_inputs(log_predictions, targets, axis, where)
    present, prob_t, log_t = _target_parts(t, log_targets)
    terms = _relative_entropy_terms(present, prob_t, log_t, log_p)
    return reduce_loss(_kept_terms(terms, classes), weights=weights, where=examples,
                       reduction=reduction)


def _paired_inputs(
    log_predictions: ArrayLike, targets: ArrayLike, axis: int, where: ArrayLike | None
) -> tuple[Array, Array, Array | None, Array | None]:
    """``(log_p, t, example_mask, class_mask)``: both arrays with the class ``axis`` last,
    dropped examples and dropped classes set to 0 (probability 1 for a log-probability, an
    absent class or probability 1 for a target); the loss then zeroes the dropped classes'
    terms with :func:`_kept_terms`."""
    (log_p, t), examples, classes = masked_class_inputs(
        ("log_predictions", log_predictions), ("targets", targets), axis=axis, where=where)
    if classes is not None:
        log_p, t = (jnp.where(classes, a, 0.0) for a in (log_p, t))
    return log_p, t, examples, classes


def _kept_terms(terms: Array, classes: Array | None) -> Array:
    """The per-class terms summed over the classes ``classes`` keeps (all without it)."""
    if classes is not None:
        terms = jnp.where(classes, terms, 0.0)
    return jnp.sum(terms, axis=-1)


def _target_parts(t: Array, log_targets: bool) -> tuple[Array, Array, Array]:
    """``(present, prob, log_prob)`` of targets given as probabilities or log-probabilities.

    Absent entries (probability 0) get the safe stand-ins ``prob = 1``/``log_prob = 0`` so
    that every branch evaluated under ``where`` has a finite gradient.
    """
    if log_targets:
        present = t > -jnp.inf
        log_t = jnp.where(present, t, 0.0)
        return present, jnp.exp(log_t), log_t
    present = t > 0
    prob_t = jnp.where(present, t, 1.0)
    return present, prob_t, jnp.log(prob_t)


def _relative_entropy_terms(
    present: Array, prob: Array, log_prob: Array, log_reference: Array
) -> Array:
    """``prob·(log_prob − log_reference)`` where ``present``, exactly 0 (value and gradient)
    elsewhere, even where ``log_reference = −inf``."""
    safe_reference = jnp.where(present, log_reference, 0.0)
    return jnp.where(present, prob * (log_prob - safe_reference), 0.0)


def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_targets: bool = False,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Generalized KL (I-divergence) between non-negative measures, per example.

    ``D(t ‖ p) = Σ_k [t_k (log t_k − log p_k) − t_k + p_k]`` with ``0 · log 0 = 0``. Neither
    argument has to sum to 1; it is >= 0, 0 only at ``p = t``, and reduces to
    :func:`kl_divergence` when both are normalised. Used for non-negative matrix
    factorisation and Poisson-like count models. Same argument conventions as
    :func:`kl_divergence`; equals optax's ``generalized_kl_divergence``.

    Args:
      log_predictions: ``[..., K]`` log of the predicted measure.
      targets: same shape, non-negative (or their logs when ``log_targets=True``).
      where: per example (the arrays' shape without ``axis``), or per class: a mask of the
        arrays' rank (optax's meaning) leaves those classes' terms out of the sum; an
        example that keeps no class is left out.

    References: Lee & Seung, "Algorithms for Non-negative Matrix Factorization" (NIPS 2000).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.generalized_kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 1.0]))
      Array(0.3863, dtype=float32)
    """
    check_reduction(reduction)
    log_p, t, examples, classes = _paired_inputs(log_predictions, targets, axis, where)
    present, prob_t, log_t = _target_parts(t, log_targets)
    terms = _relative_entropy_terms(present, prob_t, log_t, log_p)
    terms = terms - jnp.where(present, prob_t, 0.0) + jnp.exp(log_p)
    return reduce_loss(_kept_terms(terms, classes), weights=weights, where=examples,
                       reduction=reduction)


def jensen_shannon_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_targets: bool = False,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Jensen–Shannon divergence, per example, in nats.

    ``JS(p, t) = ½ KL(p ‖ m) + ½ KL(t ‖ m)`` with ``m = ½(p + t)``. Symmetric, bounded in
    ``[0, log 2]``, and finite (value and gradient) wherever either distribution has zeros:
    ``log m`` is computed as ``logaddexp(log p, log t) − log 2`` and ``0 · log 0 = 0``.
    Takes the prediction as log-probabilities, like :func:`kl_divergence`.

    Args:
      log_predictions: ``[..., K]`` log-probabilities (e.g. ``log_softmax`` output).
      targets: same shape: probabilities, or log-probabilities when ``log_targets=True``.
      where: per example (the arrays' shape without ``axis``), or per class: a mask of the
        arrays' rank (optax's meaning) leaves those classes' terms out of the sum; an
        example that keeps no class is left out.

    References: Lin, "Divergence measures based on the Shannon entropy" (IEEE Trans. Inf.
    Theory, 1991).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.jensen_shannon_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([0.9, 0.1]))
      Array(0.1017, dtype=float32)
    """
    check_reduction(reduction)
    log_p, t, examples, classes = _paired_inputs(log_predictions, targets, axis, where)
    t_present, prob_t, log_t = _target_parts(t, log_targets)
    p_present, prob_p, log_p = _target_parts(log_p, log_targets=True)
    both = p_present & t_present
    log_m = jnp.where(
        both,
        jnp.logaddexp(jnp.where(both, log_p, 0.0), jnp.where(both, log_t, 0.0)),
        jnp.where(p_present, log_p, log_t),
    ) - jnp.log(2.0).astype(log_p.dtype)
    terms = 0.5 * (_relative_entropy_terms(p_present, prob_p, log_p, log_m)
                   + _relative_entropy_terms(t_present, prob_t, log_t, log_m))
    return reduce_loss(_kept_terms(terms, classes), weights=weights, where=examples,
                       reduction=reduction)

"""Numerical building blocks shared across families: each is finite, in value and in
gradient, wherever its docstring says so."""

import jax
import jax.numpy as jnp

Array = jax.Array


def abs_zero_subgradient(x: Array) -> Array:
    """``|x|`` whose gradient at ``x == 0`` is the subgradient 0 (``jnp.abs`` gives 1)."""
    return x * jnp.sign(x)


def safe_power(base: Array, exponent: float | Array) -> Array:
    """``base ** exponent`` for ``base >= 0`` whose gradient is 0, not inf or NaN, at 0.

    The focal factor ``(1 − p)^γ`` with ``0 < γ < 1`` has an infinite slope at ``p = 1``;
    there the loss term it multiplies vanishes faster, so the true gradient is 0. ``γ = 0``
    gives 1 everywhere (``0⁰ = 1``), so a traced ``γ`` needs no Python branch.
    """
    positive = base > 0
    power = jnp.where(positive, base, 1.0) ** exponent
    return jnp.where(positive, power, jnp.where(exponent == 0, 1.0, 0.0))


def safe_ratio(numerator: Array, denominator: Array, *, empty: float = 1.0) -> Array:
    """``numerator / denominator``, and ``empty`` where the denominator is 0.

    The inner ``where`` keeps the unused branch finite, so the gradient there is 0, not NaN.
    """
    zero = denominator == 0
    return jnp.where(zero, empty, numerator / jnp.where(zero, 1.0, denominator))


def safe_sqrt(x: Array) -> Array:
    """``√x`` for ``x >= 0`` with the subgradient 0 (not inf) at ``x = 0``."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def safe_normalize(x: Array, axis: int, eps: float) -> Array:
    """``x / max(‖x‖₂, eps)`` along ``axis``, with the clamp written as ``sqrt(max(Σx², eps²))``.

    Clamping the squared norm before the square root keeps the value and the gradient
    finite at a zero vector (which maps to the zero vector).
    """
    squared = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x / jnp.sqrt(jnp.maximum(squared, jnp.square(jnp.asarray(eps, x.dtype))))


def take_class(values: Array, labels: Array) -> Array:
    """``values[..., labels]``: each example's entry on the last (class) axis.

    A gather, not a product with a one-hot: ``0 · (−inf)`` would turn a masked-out class
    (a ``−inf`` logit on a class that is not the label) into NaN.
    """
    return jnp.take_along_axis(values, labels[..., None], axis=-1)[..., 0]


def masked_logsumexp(values: Array, mask: Array, axis: int = -1) -> Array:
    """``log Σ_{mask} exp(values)`` along ``axis``; 0 (not −inf) where nothing is in
    ``mask``, with finite gradients everywhere and exactly 0 for the masked entries."""
    has_any = jnp.any(mask, axis=axis)
    shift = jax.lax.stop_gradient(
        jnp.max(jnp.where(mask, values, -jnp.inf), axis=axis, initial=-jnp.inf))
    shift = jnp.where(has_any, shift, 0.0)
    shifted = jnp.where(mask, values - jnp.expand_dims(shift, axis), 0.0)
    total = jnp.sum(jnp.where(mask, jnp.exp(shifted), 0.0), axis=axis)
    return jnp.where(has_any, jnp.log(jnp.where(has_any, total, 1.0)) + shift, 0.0)


def integer_label_cross_entropy(logits: Array, labels: Array) -> Array:
    """``logsumexp(x) − x_y`` per example, classes on the last axis, ``labels`` in range."""
    return jax.nn.logsumexp(logits, axis=-1) - take_class(logits, labels)


DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


def distillation_divergence(
    log_student: Array, log_teacher: Array, divergence: str, beta: float | Array
) -> Array:
    """A divergence between two distributions given as log-probabilities, summed over the
    last (class) axis.

    With student ``p`` and teacher ``q``: ``"forward_kl"`` is ``KL(q ‖ p)``,
    ``"reverse_kl"`` ``KL(p ‖ q)``, ``"jsd"`` the generalized Jensen–Shannon divergence
    ``β·KL(q ‖ m) + (1 − β)·KL(p ‖ m)`` with ``m = (1 − β)·p + β·q`` (GKD's, TRL's
    ``generalized_jsd_loss``). A teacher class of probability 0 (log-probability ``−inf``)
    contributes exactly 0 to ``KL(q ‖ ·)``, in value and gradient; in ``KL(p ‖ q)`` it
    makes the divergence infinite, as it is.
    """
    present = log_teacher > -jnp.inf
    safe_teacher = jnp.where(present, log_teacher, 0.0)
    p_teacher = jnp.where(present, jnp.exp(safe_teacher), 0.0)

    def kl_from_teacher(log_other: Array) -> Array:
        safe_other = jnp.where(present, log_other, 0.0)
        return jnp.sum(jnp.where(present, p_teacher * (safe_teacher - safe_other), 0.0), -1)

    if divergence == "forward_kl":
        return kl_from_teacher(log_student)
    p_student = jnp.exp(log_student)
    if divergence == "reverse_kl":
        return jnp.sum(p_student * (log_student - log_teacher), -1)
    # log m = logaddexp(log p + log(1 − β), log q + log β); an endpoint β gives a −inf
    # term, which logaddexp handles with a zero gradient.
    log_mixture = jnp.logaddexp(log_student + jnp.log1p(-beta), log_teacher + jnp.log(beta))
    kl_student = jnp.sum(p_student * (log_student - log_mixture), -1)
    return beta * kl_from_teacher(log_mixture) + (1.0 - beta) * kl_student

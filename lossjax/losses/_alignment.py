"""Preference-alignment losses on per-sequence log-probabilities (the DPO family).

Every function takes the summed (or length-averaged, see each loss) log-probability of
the chosen and of the rejected completion of each prompt, one number per pair, any batch
shape, and returns a loss per pair (``reduction="none"``) or its mean/sum. With
``return_rewards=True`` it also returns the implicit rewards of the chosen and rejected
completions (held constant, per pair), from which reward accuracy
(``mean(chosen > rejected)``) and margins are logged, as TRL's trainers do.

The formulas are TRL's (``DPOTrainer`` with ``loss_type="sigmoid"`` and ``"ipo"``,
``CPOTrainer`` with ``loss_type="simpo"``, ``ORPOTrainer.odds_ratio_loss``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._validation import check_in_range, check_positive
from lossjax.losses._inputs import example_mask, float_inputs, keep_entries
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["dpo_loss", "ipo_loss", "orpo_loss", "simpo_loss"]


def _checked_logps(named: dict[str, ArrayLike], where: ArrayLike | None, beta: float,
                   reduction: str) -> tuple[tuple[Array, ...], Array | None]:
    """The shared argument checks; same-shaped inputs in the compute dtype, masked entries
    replaced by ``-1`` (a safe log-probability) before any arithmetic; and the mask."""
    check_reduction(reduction)
    check_positive("beta", beta)
    xs = float_inputs(*named.items())
    mask = example_mask(where, xs[0].shape)
    return keep_entries(mask, *xs, fill=-1.0), mask


def _finish(loss: Array, chosen_rewards: Array, rejected_rewards: Array,
            weights: ArrayLike | None, mask: Array | None, reduction: str,
            return_rewards: bool) -> Array | tuple[Array, Array, Array]:
    value = reduce_loss(loss, weights=weights, where=mask, reduction=reduction)
    if not return_rewards:
        return value
    chosen, rejected = keep_entries(mask, jax.lax.stop_gradient(chosen_rewards),
                                    jax.lax.stop_gradient(rejected_rewards))
    return value, chosen, rejected


def _sigmoid_preference(logits: Array, label_smoothing: float) -> Array:
    """``−(1 − ε)·log σ(x) − ε·log σ(−x)``."""
    # No branch on ε: it may be traced (a vmapped sweep); ε = 0 gives the plain DPO loss.
    return (label_smoothing - 1.0) * jax.nn.log_sigmoid(logits) - (
        label_smoothing * jax.nn.log_sigmoid(-logits))


def dpo_loss(
    policy_chosen_logps: ArrayLike,
    policy_rejected_logps: ArrayLike,
    reference_chosen_logps: ArrayLike,
    reference_rejected_logps: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    return_rewards: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array | tuple[Array, Array, Array]:
    """Direct Preference Optimization loss, with conservative-DPO label smoothing.

    With ``z = (π_c − π_r) − (ref_c − ref_r)`` (policy and reference log-probabilities of
    the chosen and rejected completions) and smoothing ``ε``::

        loss = −(1 − ε)·log σ(β·z) − ε·log σ(−β·z)

    ``ε > 0`` assumes each preference label is flipped with probability ``ε`` (cDPO).
    Rewards: ``β·(π_c − ref_c)`` and ``β·(π_r − ref_r)``.

    Reference: Rafailov et al., "Direct Preference Optimization" (NeurIPS 2023); Mitchell,
    "A note on DPO with noisy preferences" (2023). TRL ``DPOTrainer``,
    ``loss_type="sigmoid"`` (same formula and defaults).

    Args:
      policy_chosen_logps, policy_rejected_logps: the trained model's summed token
        log-probabilities of each completion, same shape.
      reference_chosen_logps, reference_rejected_logps: the frozen reference model's
        (their gradient is computed like any input's: wrap them in ``stop_gradient`` or
        pass constants).
      beta: ``> 0``, the inverse strength of the KL constraint.
      label_smoothing: ``ε`` in ``[0, 1]``.
      return_rewards: also return ``(chosen_rewards, rejected_rewards)`` per pair.

    Returns:
      The loss (scalar for ``"mean"``/``"sum"``, per pair for ``"none"``), or
      ``(loss, chosen_rewards, rejected_rewards)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.dpo_loss(jnp.array([-10.0]), jnp.array([-12.0]),
      ...                  jnp.array([-11.0]), jnp.array([-11.0]), beta=0.5)
      Array(0.313262, dtype=float32)
    """
    check_in_range("label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=True)
    (pc, pr, rc, rr), mask = _checked_logps({
        "policy_chosen_logps": policy_chosen_logps,
        "policy_rejected_logps": policy_rejected_logps,
        "reference_chosen_logps": reference_chosen_logps,
        "reference_rejected_logps": reference_rejected_logps}, where, beta, reduction)
    loss = _sigmoid_preference(beta * ((pc - pr) - (rc - rr)), label_smoothing)
    return _finish(loss, beta * (pc - rc), beta * (pr - rr), weights, mask, reduction,
                   return_rewards)


def ipo_loss(
    policy_chosen_logps: ArrayLike,
    policy_rejected_logps: ArrayLike,
    reference_chosen_logps: ArrayLike,
    reference_rejected_logps: ArrayLike,
    *,
    beta: float = 0.1,
    return_rewards: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array | tuple[Array, Array, Array]:
    """Identity Preference Optimization loss ``(z − 1/(2β))²``.

    ``z = (π_c − π_r) − (ref_c − ref_r)`` as in :func:`dpo_loss`; a squared loss that pulls
    the log-ratio margin to ``1/(2β)`` instead of pushing it to infinity. TRL feeds IPO the
    length-averaged log-probabilities (mean over tokens); pass those to match it.
    Rewards as in :func:`dpo_loss`.

    Reference: Azar et al., "A General Theoretical Paradigm to Understand Learning from
    Human Preferences" (AISTATS 2024); TRL ``DPOTrainer``, ``loss_type="ipo"``.

    The four log-probability arrays are those of :func:`dpo_loss`.

    Args:
      beta: ``> 0`` (IPO's ``τ``).
      return_rewards: also return ``(chosen_rewards, rejected_rewards)`` per pair.

    Returns:
      The loss, or ``(loss, chosen_rewards, rejected_rewards)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.ipo_loss(jnp.array([-10.0]), jnp.array([-12.0]),
      ...                  jnp.array([-11.0]), jnp.array([-11.0]), beta=0.5)
      Array(1., dtype=float32)
    """
    (pc, pr, rc, rr), mask = _checked_logps({
        "policy_chosen_logps": policy_chosen_logps,
        "policy_rejected_logps": policy_rejected_logps,
        "reference_chosen_logps": reference_chosen_logps,
        "reference_rejected_logps": reference_rejected_logps}, where, beta, reduction)
    loss = jnp.square((pc - pr) - (rc - rr) - 1.0 / (2.0 * beta))
    return _finish(loss, beta * (pc - rc), beta * (pr - rr), weights, mask, reduction,
                   return_rewards)


def simpo_loss(
    chosen_logps: ArrayLike,
    rejected_logps: ArrayLike,
    *,
    beta: float = 2.0,
    gamma: float = 0.5,
    return_rewards: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array | tuple[Array, Array, Array]:
    """Simple Preference Optimization loss ``−log σ(β·(c − r) − γ)`` (no reference model).

    ``c`` and ``r`` are the policy's length-normalised log-probabilities (mean over each
    completion's tokens); ``γ`` is the target reward margin. Rewards: ``β·c`` and ``β·r``.
    TRL's ``CPOTrainer`` writes the same loss with ``simpo_gamma = γ`` as
    ``−log σ(β·(c − r − γ/β))``; its default ``beta`` is 0.1, the paper's range is 2 to 2.5
    (the default here).

    Reference: Meng et al., "SimPO: Simple Preference Optimization with a Reference-Free
    Reward" (NeurIPS 2024); TRL ``CPOTrainer``, ``loss_type="simpo"``.

    Args:
      chosen_logps, rejected_logps: same shape, length-normalised log-probabilities.
      beta: ``> 0``, the reward scale.
      gamma: the target margin.
      return_rewards: also return ``(chosen_rewards, rejected_rewards)`` per pair.

    Returns:
      The loss, or ``(loss, chosen_rewards, rejected_rewards)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.simpo_loss(jnp.array([-1.0]), jnp.array([-1.25]))  # −log σ(0)
      Array(0.693147, dtype=float32)
    """
    (c, r), mask = _checked_logps(
        {"chosen_logps": chosen_logps, "rejected_logps": rejected_logps}, where, beta, reduction)
    loss = -jax.nn.log_sigmoid(beta * (c - r) - gamma)
    return _finish(loss, beta * c, beta * r, weights, mask, reduction, return_rewards)


def _log1m_exp(x: Array) -> Array:
    """``log(1 − eˣ)`` for ``x < 0`` without cancellation: ``log(−expm1(x))`` near 0,
    ``log1p(−eˣ)`` below ``−log 2`` (Mächler, "Accurately computing log(1 − exp(−|a|))")."""
    near_zero = x > -jnp.log(2.0)
    safe_near = jnp.where(near_zero, x, -1.0)
    safe_far = jnp.where(near_zero, -1.0, x)
    return jnp.where(near_zero, jnp.log(-jnp.expm1(safe_near)), jnp.log1p(-jnp.exp(safe_far)))


def _below_zero(x: Array) -> Array:
    """``x`` capped at minus the dtype's smallest normal number, with the gradient of
    ``x``: at ``log p = 0`` the odds are infinite, just below they are finite."""
    tiny = jnp.finfo(x.dtype).tiny
    return x - jax.lax.stop_gradient(x - jnp.minimum(x, -tiny))


def orpo_loss(
    chosen_logps: ArrayLike,
    rejected_logps: ArrayLike,
    *,
    beta: float = 0.1,
    return_rewards: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array | tuple[Array, Array, Array]:
    """ORPO's odds-ratio term ``−β·log σ(log odds(c) − log odds(r))``.

    ``odds(x) = p/(1 − p)`` with ``p = exp(x)``, so ``log odds(x) = x − log(1 − eˣ)``.
    ``log(1 − eˣ)`` is computed as ``log(−expm1(x))`` near ``x = 0`` (TRL's
    ``log1p(−exp(x))`` gives ``−inf`` and a NaN gradient once ``exp(x)`` rounds to 1, e.g.
    ``x = −1e−8`` in float32), and ``x`` is capped just below 0 (the gradient passes
    unchanged), so the loss and its gradient are finite for every ``x ≤ 0``, ``x = 0``
    included. This is only the odds-ratio term: ORPO's full objective adds the chosen
    completion's negative log-likelihood (the SFT loss), which you compute yourself.
    TRL feeds the length-averaged log-probabilities. Rewards: ``β·c`` and ``β·r``.

    Reference: Hong et al., "ORPO: Monolithic Preference Optimization without Reference
    Model" (EMNLP 2024); TRL ``ORPOTrainer.odds_ratio_loss`` (which returns the negative
    of this term before averaging).

    Args:
      chosen_logps, rejected_logps: same shape, log-probabilities ``≤ 0``; a positive
        entry (which jit cannot reject) gives NaN for that pair.
      beta: ``> 0``, the weight of the odds-ratio term (ORPO's ``λ``).
      return_rewards: also return ``(chosen_rewards, rejected_rewards)`` per pair.

    Returns:
      The loss, or ``(loss, chosen_rewards, rejected_rewards)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.orpo_loss(jnp.array([-0.5]), jnp.array([-2.0]))
      Array(0.0096706, dtype=float32)
    """
    (c, r), mask = _checked_logps(
        {"chosen_logps": chosen_logps, "rejected_logps": rejected_logps}, where, beta, reduction)
    c_safe, r_safe = _below_zero(c), _below_zero(r)
    log_odds = (c_safe - r_safe) - (_log1m_exp(c_safe) - _log1m_exp(r_safe))
    loss = -beta * jax.nn.log_sigmoid(log_odds)
    loss = jnp.where((c > 0) | (r > 0), jnp.nan, loss)  # not a log-probability
    return _finish(loss, beta * c, beta * r, weights, mask, reduction, return_rewards)

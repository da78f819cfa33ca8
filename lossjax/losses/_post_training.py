"""Losses for post-training language models: GRPO and its successors, KTO, CPO and reward
models, on log-probabilities (per token or per sequence) and rewards.

The formulas are TRL's (``GRPOTrainer._compute_loss``, ``KTOTrainer.kto_loss``,
``CPOTrainer.cpo_loss``, ``RewardTrainer.compute_loss``); where a trainer works on
variable-sized tensors (KTO's split into desirable and undesirable examples), the loss
here works on fixed shapes with masks, so it jit-compiles once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.losses._inputs import (
    broadcast_mask,
    check_broadcastable_to,
    compute_dtype,
    example_mask,
    float_inputs,
    keep_entries,
    real_array,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "GRPOMetrics",
    "cpo_loss",
    "grpo_loss",
    "group_relative_advantages",
    "kto_loss",
    "reward_model_loss",
]

GRPO_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "gspo")


class GRPOMetrics(NamedTuple):
    """What :func:`grpo_loss` logs beside the loss (held constant, no gradient).

    ``kl``: the mean k3 estimate of ``KL(π ‖ π_ref)`` over the kept tokens (0 without
    ``ref_logprobs``). ``clip_fraction``: the fraction of kept tokens (of sequences for
    ``"gspo"``) whose ratio was clipped where clipping binds (``low`` + ``high``);
    ``low_clip_fraction``: ratio below ``1 − ε`` with a negative advantage;
    ``high_clip_fraction``: above ``1 + ε_high`` with a positive one (for ``"cispo"``:
    above ``ε_high``, its cap).
    """

    kl: Array
    clip_fraction: Array
    low_clip_fraction: Array
    high_clip_fraction: Array


def _safe_mean(total: Array, count: Array) -> Array:
    return total / jnp.maximum(count, 1.0)


def _check_options(loss_type: str, epsilon: float, epsilon_high: float | None,
                   beta: float, delta: float | None, max_length: int | None) -> None:
    if not isinstance(loss_type, str) or loss_type not in GRPO_LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(map(repr, GRPO_LOSS_TYPES))}; "
                         f"got {loss_type!r}")
    check_non_negative("epsilon", epsilon)
    if epsilon_high is not None:
        check_non_negative("epsilon_high", epsilon_high)
    check_non_negative("beta", beta)
    if delta is not None:
        check_positive("delta", delta)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(
            max_length, int) or max_length <= 0):
        raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")


def grpo_loss(
    logprobs: ArrayLike,
    old_logprobs: ArrayLike,
    advantages: ArrayLike,
    *,
    ref_logprobs: ArrayLike | None = None,
    loss_type: str = "dapo",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    delta: float | None = None,
    max_length: int | None = None,
    num_tokens: ArrayLike | None = None,
    return_metrics: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array | tuple[Array, GRPOMetrics]:
    """Group Relative Policy Optimization loss and its successors, TRL's ``loss_type`` variants.

    Per token ``t`` of completion ``i``, with log-ratio ``ℓ = log π − log π_old``, ratio
    ``ρ = exp(ℓ)`` (``"gspo"``: the sequence-level ``ρ_i = exp(mean_t ℓ_it)`` over the
    kept tokens), advantage ``A_i`` and ``ε_high`` defaulting to ``ε``::

        token loss = −min(ρ'·A, clip(ρ, 1 − ε, 1 + ε_high)·A) + β·k3
        "cispo":     −sg[min(ρ, ε_high)]·A·log π + β·k3

    ``ρ' = min(ρ, δ)`` with ``delta`` (INTELLECT-2's two-sided clip), else ``ρ``;
    ``k3 = exp(r − log π) − (r − log π) − 1`` is the k3 estimator of ``KL(π ‖ π_ref)``
    with ``r`` the reference policy's log-probabilities (0 without ``ref_logprobs``).
    ``old_logprobs``, ``ref_logprobs`` and ``advantages`` are held constant
    (``stop_gradient``). Pass ``old_logprobs = stop_gradient(logprobs)`` for the
    single-update case (ρ = 1, the gradient is still the policy gradient).

    ``reduction="mean"`` aggregates as ``loss_type`` says (sums over the kept tokens):

    * ``"grpo"``, ``"gspo"``: mean over tokens within each sequence, then over the
      sequences (those with at least one kept token);
    * ``"bnpo"``: mean over all kept tokens of the batch;
    * ``"dr_grpo"``: sum over the batch divided by ``num_sequences · max_length`` (a
      constant; ``max_length`` defaults to the token axis' size);
    * ``"dapo"``, ``"cispo"``: sum over the batch divided by ``num_tokens``, the number of
      kept tokens in the global batch (default: this batch's), so gradient-accumulation
      micro-batches add up to the full batch's loss.

    ``"sum"`` is the plain sum and ``"none"`` the ``[..., T]`` token losses (0 where masked).
    ``weights`` multiply the token losses; the normalisers count tokens, not weights.

    Differences from TRL: TRL's ``"grpo"`` also counts sequences without any completion
    token in its mean over sequences (equal whenever each kept sequence has a token);
    TRL selects GSPO with ``importance_sampling_level="sequence"`` (and ``"grpo"``
    aggregation), here ``loss_type="gspo"``.

    References: Shao et al., "DeepSeekMath" (GRPO, 2024); Liu et al., "Understanding
    R1-Zero-Like Training: A Critical Perspective" (Dr. GRPO, 2025); Yu et al., "DAPO"
    (2025); Zheng et al., "Group Sequence Policy Optimization" (2025); MiniMax, "MiniMax-M1"
    (CISPO, 2025); TRL ``GRPOTrainer``.

    Args:
      logprobs: ``[..., T]`` the policy's log-probabilities of the sampled tokens.
      old_logprobs: the same shape, the sampling policy's.
      advantages: ``[...]``, one per completion (see :func:`group_relative_advantages`).
      ref_logprobs: optional, the reference policy's; needed when ``beta > 0``.
      loss_type: ``"grpo"``, ``"bnpo"``, ``"dr_grpo"``, ``"dapo"`` (TRL's default),
        ``"cispo"`` or ``"gspo"``.
      epsilon: the lower clip ``ε`` (ratio ``≥ 1 − ε``).
      epsilon_high: the upper clip ``ε_high`` (DAPO's clip-higher, e.g. 0.28); for
        ``"cispo"`` the cap on the ratio itself (ScaleRL's ``ε_max``, e.g. 5.0).
      beta: ``≥ 0``, the weight of the KL penalty.
      delta: optional cap ``> 1 + ε_high`` on the unclipped ratio.
      max_length: ``"dr_grpo"``'s constant (TRL's ``max_completion_length``).
      num_tokens: ``"dapo"``/``"cispo"``'s normaliser (TRL's ``num_items_in_batch``).
      return_metrics: also return a :class:`GRPOMetrics`.
      weights: optional per-token weights, broadcastable to ``[..., T]``.
      where: optional boolean token mask (completion tokens), broadcastable to ``[..., T]``.

    Returns:
      The loss, or ``(loss, GRPOMetrics)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> logprobs = jnp.array([[-1.0, -2.0, -0.5], [-0.3, -0.1, 0.0]])
      >>> old = logprobs + jnp.array([[0.1, -0.3, 0.0], [0.0, 0.2, 0.0]])
      >>> mask = jnp.array([[True, True, True], [True, True, False]])
      >>> lossjax.grpo_loss(logprobs, old, jnp.array([1.0, -1.0]), where=mask,
      ...                   loss_type="grpo")
      Array(-0.06279, dtype=float32)
    """
    check_reduction(reduction)
    _check_options(loss_type, epsilon, epsilon_high, beta, delta, max_length)
    eps_high = epsilon if epsilon_high is None else epsilon_high
    named = [("logprobs", logprobs), ("old_logprobs", old_logprobs)]
    if ref_logprobs is not None:
        named.append(("ref_logprobs", ref_logprobs))
    arrays = float_inputs(*named)
    lp = arrays[0]
    if lp.ndim < 1:
        raise ValueError(f"logprobs must have a token axis (last), got shape {lp.shape}")
    adv = real_array("advantages", advantages)
    if tuple(adv.shape) != tuple(lp.shape[:-1]):
        raise ValueError(f"advantages has shape {tuple(adv.shape)} but logprobs has shape "
                         f"{tuple(lp.shape)}; advantages must have one entry per sequence, "
                         f"shape {tuple(lp.shape[:-1])}")
    dtype = compute_dtype(lp.dtype, adv.dtype)
    mask = jnp.ones(lp.shape, bool) if where is None else broadcast_mask(where, lp.shape)
    adv = jnp.broadcast_to(adv.astype(dtype)[..., None], lp.shape)
    lp, old, *rest = keep_entries(mask, *(a.astype(dtype) for a in arrays), adv)
    adv = jax.lax.stop_gradient(rest[-1])
    old = jax.lax.stop_gradient(old)
    ref = jax.lax.stop_gradient(rest[0]) if ref_logprobs is not None else None

    tokens = jnp.sum(mask, axis=-1, dtype=dtype)
    log_ratio = lp - old
    if loss_type == "gspo":
        seq = _safe_mean(jnp.sum(jnp.where(mask, log_ratio, 0.0), -1), tokens)
        log_ratio = jnp.broadcast_to(seq[..., None], lp.shape)
    ratio = jnp.exp(log_ratio)
    if loss_type == "cispo":
        per_token = -jax.lax.stop_gradient(jnp.minimum(ratio, eps_high)) * adv * lp
        low = jnp.zeros(lp.shape, bool)
        high = (ratio > eps_high) & (adv > 0)
    else:
        clipped = jnp.clip(ratio, 1.0 - epsilon, 1.0 + eps_high)
        unclipped = ratio if delta is None else jnp.minimum(ratio, delta)
        per_token = -jnp.minimum(unclipped * adv, clipped * adv)
        low = (ratio < 1.0 - epsilon) & (adv < 0)
        high = (ratio > 1.0 + eps_high) & (adv > 0)
    if ref is not None:
        diff = ref - lp
        kl = jnp.exp(diff) - diff - 1.0
        per_token = per_token + beta * kl
    else:
        kl = jnp.zeros_like(lp)

    values = reduce_loss(per_token, weights=weights, where=mask, reduction="none")
    if reduction == "none":
        loss = values
    elif reduction == "sum":
        loss = jnp.sum(values)
    else:
        loss = _aggregate(values, mask, tokens, loss_type, max_length, num_tokens, dtype)
    if not return_metrics:
        return loss
    return loss, _metrics(mask, tokens, kl, low, high, loss_type)


def _aggregate(values: Array, mask: Array, tokens: Array, loss_type: str,
               max_length: int | None, num_tokens: ArrayLike | None, dtype) -> Array:
    total = jnp.sum(values)
    if loss_type in ("grpo", "gspo"):
        per_sequence = _safe_mean(jnp.sum(values, -1), tokens)
        return _safe_mean(jnp.sum(per_sequence), jnp.sum(tokens > 0, dtype=dtype))
    if loss_type == "bnpo":
        return _safe_mean(total, jnp.sum(tokens))
    if loss_type == "dr_grpo":
        length = values.shape[-1] if max_length is None else max_length
        return total / max(values.size // max(values.shape[-1], 1) * length, 1)
    count = jnp.sum(tokens) if num_tokens is None else jnp.asarray(num_tokens, dtype)
    return _safe_mean(total, count)


def _metrics(mask: Array, tokens: Array, kl: Array, low: Array, high: Array,
             loss_type: str) -> GRPOMetrics:
    def mean(x: Array) -> Array:
        if loss_type == "gspo":  # one ratio per sequence: a fraction of sequences
            kept = tokens > 0
            return _safe_mean(jnp.sum(jnp.where(kept, x[..., 0], 0.0)),
                              jnp.sum(kept, dtype=tokens.dtype))
        return _safe_mean(jnp.sum(jnp.where(mask, x, 0.0)), jnp.sum(tokens))

    low_f, high_f = mean(low.astype(tokens.dtype)), mean(high.astype(tokens.dtype))
    kl_mean = _safe_mean(jnp.sum(jnp.where(mask, kl, 0.0)), jnp.sum(tokens))
    out = GRPOMetrics(kl=kl_mean, clip_fraction=low_f + high_f, low_clip_fraction=low_f,
                      high_clip_fraction=high_f)
    return jax.tree.map(jax.lax.stop_gradient, out)


def group_relative_advantages(
    rewards: ArrayLike,
    group_size: int,
    *,
    baseline: str = "mean",
    scale: str = "std",
    eps: float = 1e-4,
) -> Array:
    """Advantages of completions sampled in groups (one group per prompt), GRPO's and RLOO's.

    ``rewards[..., n]`` holds consecutive groups of ``group_size`` completions (TRL's layout:
    the completions of one prompt are adjacent). Within each group, with ``G`` its size::

        "mean":          A_i = r_i − mean_j r_j                         (GRPO)
        "leave_one_out": A_i = r_i − (Σ_j r_j − r_i) / (G − 1)          (RLOO)

    then ``scale="std"`` divides by the group's standard deviation plus ``eps``
    (``(G − 1)`` in its denominator, as ``torch.std``), ``"batch"`` by the standard
    deviation of all rewards on the last axis plus ``eps``, ``"none"`` leaves ``A``
    (Dr. GRPO). A group whose rewards are all equal gets advantages 0.

    References: Shao et al., "DeepSeekMath" (GRPO, 2024); Ahmadian et al., "Back to Basics:
    Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs"
    (RLOO, 2024); TRL ``GRPOTrainer`` (``scale_rewards`` ``"group"``, ``"batch"``,
    ``"none"``) and ``RLOOTrainer``.

    Args:
      rewards: ``[..., n]``, ``n`` a multiple of ``group_size``.
      group_size: completions per prompt, ``≥ 2``.
      baseline: ``"mean"`` or ``"leave_one_out"``.
      scale: ``"std"``, ``"batch"`` or ``"none"``.
      eps: ``≥ 0``, added to the standard deviation.

    Returns:
      ``[..., n]`` advantages, float32 at least.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> rewards = jnp.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
      >>> lossjax.group_relative_advantages(rewards, 4, scale="none")
      Array([ 0.5, -0.5, -0.5,  0.5,  0. ,  0. ,  0. ,  0. ], dtype=float32)
    """
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an integer >= 2, got {group_size!r}")
    if baseline not in ("mean", "leave_one_out"):
        raise ValueError(f"baseline must be 'mean' or 'leave_one_out', got {baseline!r}")
    if scale not in ("std", "batch", "none"):
        raise ValueError(f"scale must be one of 'std', 'batch', 'none', got {scale!r}")
    check_non_negative("eps", eps)
    (r,) = float_inputs(("rewards", rewards))
    if r.ndim < 1 or r.shape[-1] % group_size:
        raise ValueError(f"rewards has shape {tuple(r.shape)}; its last axis must be a multiple "
                         f"of group_size={group_size}")
    grouped = r.reshape(r.shape[:-1] + (r.shape[-1] // group_size, group_size))
    total = jnp.sum(grouped, axis=-1, keepdims=True)
    if baseline == "mean":
        adv = grouped - total / group_size
    else:
        adv = grouped - (total - grouped) / (group_size - 1)
    if scale == "std":
        adv = adv / (jnp.std(grouped, axis=-1, keepdims=True, ddof=1) + eps)
    adv = adv.reshape(r.shape)
    if scale == "batch":
        adv = adv / (jnp.std(r, axis=-1, keepdims=True, ddof=1) + eps)
    return adv


def kto_loss(
    policy_logps: ArrayLike,
    reference_logps: ArrayLike,
    desirable: ArrayLike,
    *,
    policy_kl_logps: ArrayLike | None = None,
    reference_kl_logps: ArrayLike | None = None,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    return_rewards: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array | tuple[Array, Array, Array]:
    """Kahneman–Tversky Optimization loss on unpaired desirable and undesirable completions.

    With the log-ratio ``z = π − ref`` of each completion and the reference point
    ``z₀ = max(0, mean(π_KL − ref_KL))`` (held constant), estimated from mismatched
    prompt–completion pairs (0 when ``policy_kl_logps`` is not given)::

        desirable:   λ_D·(1 − σ(β·(z − z₀)))
        undesirable: λ_U·(1 − σ(β·(z₀ − z)))

    The mean of ``z₀`` runs over the examples ``where`` keeps. A batch with only one kind
    of example is fine (TRL concatenates two possibly empty tensors; here a boolean
    ``desirable`` selects the branch per example). Rewards: ``β·z``.

    Reference: Ethayarajh et al., "KTO: Model Alignment as Prospect Theoretic Optimization"
    (ICML 2024); TRL ``KTOTrainer``, ``loss_type="kto"`` (same formula and defaults).

    Args:
      policy_logps: ``[...]`` summed log-probabilities of each completion under the policy.
      reference_logps: the same shape, under the frozen reference model.
      desirable: boolean, the same shape: True for a desirable (thumbs-up) completion.
      policy_kl_logps, reference_kl_logps: optional, the same shape: log-probabilities of
        mismatched completions (TRL's ``KL_logps``), both or neither.
      beta: ``> 0``.
      desirable_weight, undesirable_weight: ``λ_D, λ_U ≥ 0``.
      return_rewards: also return ``(rewards, z₀)``: ``β·z`` per example and the scalar
        reference point, both held constant.

    Returns:
      The loss, or ``(loss, rewards, kl)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.kto_loss(jnp.array([-10.0, -12.0]), jnp.array([-11.0, -11.0]),
      ...                  jnp.array([True, False]), beta=0.5)
      Array(0.377541, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("beta", beta)
    check_non_negative("desirable_weight", desirable_weight)
    check_non_negative("undesirable_weight", undesirable_weight)
    if (policy_kl_logps is None) != (reference_kl_logps is None):
        raise ValueError("policy_kl_logps and reference_kl_logps must be given together")
    named: dict[str, ArrayLike] = {"policy_logps": policy_logps,
                                   "reference_logps": reference_logps}
    if policy_kl_logps is not None and reference_kl_logps is not None:
        named.update(policy_kl_logps=policy_kl_logps, reference_kl_logps=reference_kl_logps)
    xs = float_inputs(*named.items())
    desirable = jnp.asarray(desirable)
    if desirable.dtype != jnp.bool_:
        raise ValueError(f"desirable must be a boolean array, got dtype {desirable.dtype}")
    if tuple(desirable.shape) != tuple(xs[0].shape):
        raise ValueError(f"desirable has shape {tuple(desirable.shape)} but policy_logps has "
                         f"shape {tuple(xs[0].shape)}; they must be equal")
    mask = example_mask(where, xs[0].shape)
    xs = keep_entries(mask, *xs)
    z = xs[0] - xs[1]
    if policy_kl_logps is not None:
        kl_terms = xs[2] - xs[3]
        kept = jnp.ones(z.shape, bool) if mask is None else mask
        kl = _safe_mean(jnp.sum(jnp.where(kept, kl_terms, 0.0)), jnp.sum(kept, dtype=z.dtype))
        kl = jax.lax.stop_gradient(jnp.maximum(kl, 0.0))
    else:
        kl = jnp.zeros((), z.dtype)
    loss = jnp.where(desirable, desirable_weight * (1.0 - jax.nn.sigmoid(beta * (z - kl))),
                     undesirable_weight * (1.0 - jax.nn.sigmoid(beta * (kl - z))))
    value = reduce_loss(loss, weights=weights, where=mask, reduction=reduction)
    if not return_rewards:
        return value
    (rewards,) = keep_entries(mask, jax.lax.stop_gradient(beta * z))
    return value, rewards, kl


def cpo_loss(
    chosen_logps: ArrayLike,
    rejected_logps: ArrayLike,
    *,
    chosen_nll: ArrayLike | None = None,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    alpha: float = 1.0,
    return_rewards: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array | tuple[Array, Array, Array]:
    """Contrastive Preference Optimization loss: a reference-free DPO plus the chosen NLL.

    Per pair, with policy log-probabilities ``c`` (chosen) and ``r`` (rejected)::

        loss = −(1 − ε)·log σ(β(c − r)) − ε·log σ(−β(c − r)) + α·nll

    ``nll`` is ``chosen_nll`` when given, else ``−c`` (the paper's behaviour-cloning term
    ``−log π(y_w | x)``). TRL adds ``cpo_alpha`` times the token-mean cross-entropy of the
    chosen completions over the batch; to match it, pass that per pair (e.g. each pair's
    summed token cross-entropy times ``num_pairs / total_tokens``). Rewards: ``β·c`` and
    ``β·r``.

    Reference: Xu et al., "Contrastive Preference Optimization: Pushing the Boundaries of
    LLM Performance in Machine Translation" (ICML 2024); TRL ``CPOTrainer``,
    ``loss_type="sigmoid"``.

    Args:
      chosen_logps, rejected_logps: same shape, summed log-probabilities.
      chosen_nll: optional, the same shape: the chosen completions' negative log-likelihood.
      beta: ``> 0``.
      label_smoothing: ``ε`` in ``[0, 1]``.
      alpha: ``≥ 0``, the NLL's weight (TRL's ``cpo_alpha``).
      return_rewards: also return ``(chosen_rewards, rejected_rewards)`` per pair.

    Returns:
      The loss, or ``(loss, chosen_rewards, rejected_rewards)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.cpo_loss(jnp.array([-1.0]), jnp.array([-3.0]), beta=1.0, alpha=0.5)
      Array(0.626928, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("beta", beta)
    check_in_range("label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=True)
    check_non_negative("alpha", alpha)
    named = {"chosen_logps": chosen_logps, "rejected_logps": rejected_logps}
    if chosen_nll is not None:
        named["chosen_nll"] = chosen_nll
    xs = float_inputs(*named.items())
    mask = example_mask(where, xs[0].shape)
    xs = keep_entries(mask, *xs, fill=-1.0)
    c, r = xs[0], xs[1]
    nll = -c if chosen_nll is None else xs[2]
    logits = beta * (c - r)
    loss = ((label_smoothing - 1.0) * jax.nn.log_sigmoid(logits)
            - label_smoothing * jax.nn.log_sigmoid(-logits) + alpha * nll)
    value = reduce_loss(loss, weights=weights, where=mask, reduction=reduction)
    if not return_rewards:
        return value
    chosen, rejected = keep_entries(mask, jax.lax.stop_gradient(beta * c),
                                    jax.lax.stop_gradient(beta * r))
    return value, chosen, rejected


def reward_model_loss(
    chosen_rewards: ArrayLike,
    rejected_rewards: ArrayLike,
    *,
    margin: ArrayLike | None = None,
    center_rewards_coefficient: float = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Bradley–Terry reward-model loss, with an optional margin and a centering term.

    Per pair, with the reward model's scores ``c`` (chosen) and ``r`` (rejected)::

        loss = −log σ(c − r − m) + η·(c + r)²

    ``m`` is the per-pair ``margin`` (Llama 2's graded preferences; 0 when not given) and
    ``η`` the centering coefficient, which pulls the rewards towards zero mean (Eisenstein
    et al.). The mean over pairs is TRL's ``RewardTrainer`` loss.

    References: Bradley and Terry (1952); Ouyang et al., "Training language models to follow
    instructions with human feedback" (2022); Touvron et al., "Llama 2" (2023) for the
    margin; Eisenstein et al., "Helping or Herding? Reward Model Ensembles Mitigate but do
    not Eliminate Reward Hacking" (2023) for centering; TRL ``RewardTrainer``.

    Args:
      chosen_rewards, rejected_rewards: same shape, the scalar rewards of each completion.
      margin: optional, broadcastable to the rewards' shape.
      center_rewards_coefficient: ``η ≥ 0`` (TRL's ``center_rewards_coefficient``).

    Returns:
      The loss (scalar for ``"mean"``/``"sum"``, per pair for ``"none"``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.reward_model_loss(jnp.array([1.0]), jnp.array([-1.0]), margin=2.0)
      Array(0.693147, dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("center_rewards_coefficient", center_rewards_coefficient)
    c, r = float_inputs(("chosen_rewards", chosen_rewards), ("rejected_rewards", rejected_rewards))
    mask = example_mask(where, c.shape)
    if margin is None:
        m = jnp.zeros(c.shape, c.dtype)
    else:
        m = real_array("margin", margin)
        check_broadcastable_to("margin", m.shape, c.shape)
        m = jnp.broadcast_to(m.astype(c.dtype), c.shape)
    c, r, m = keep_entries(mask, c, r, m)
    loss = -jax.nn.log_sigmoid(c - r - m) + center_rewards_coefficient * jnp.square(c + r)
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)

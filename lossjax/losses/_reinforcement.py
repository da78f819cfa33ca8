"""Reinforcement learning: returns and advantages over trajectories, and the policy and
value losses built on them.

Conventions (those of rlax and of Sutton & Barto): a trajectory has time on axis 0 and any
batch axes after it. ``rewards[t]`` and ``discounts[t]`` are the reward and the discount
received on the transition out of step ``t``; a discount of 0 ends the episode there, so
several episodes can share one trajectory. ``values[t]`` in :func:`lambda_returns`,
:func:`n_step_returns` and ``next_values`` estimate the state *after* step ``t``.

Each return and advantage function is one reverse ``lax.scan`` over time, differentiable,
and equals rlax's single-trajectory function of the same meaning (vmapped over the batch
axes). The losses take the lossjax options ``weights``, ``where`` and ``reduction`` and hold
their targets (advantages, returns, bootstrap values) constant with ``stop_gradient``, as
rlax does by default; ``where=False`` marks padded steps, whose inputs are replaced by safe
values before any arithmetic, so a NaN there reaches neither the loss nor its gradient.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from lossjax._numerics import abs_zero_subgradient, take_class
from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.losses._inputs import (
    check_broadcastable_to,
    check_per_example,
    check_same_shape,
    example_mask,
    float_inputs,
    keep_entries,
    label_validity,
    normalize_axis,
    real_array,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "clipped_surrogate_loss",
    "clipped_value_loss",
    "discounted_returns",
    "double_q_learning_loss",
    "entropy_loss",
    "generalized_advantage_estimation",
    "lambda_returns",
    "n_step_returns",
    "policy_gradient_loss",
    "q_learning_loss",
    "td_loss",
    "vtrace",
]


# --- inputs -----------------------------------------------------------------------------


def _trajectory_inputs(
    rewards: ArrayLike, discounts: ArrayLike, values: ArrayLike
) -> tuple[Array, ...]:
    """Rewards, discounts and values, real and in one compute dtype (shapes checked later)."""
    return float_inputs(("rewards", rewards), ("discounts", discounts), ("values", values),
                        same_shape=False)


def _check_trajectory(rewards: Array, discounts: Array) -> None:
    if rewards.ndim == 0:
        raise ValueError("rewards must have a time axis (axis 0); got a scalar")
    check_same_shape("rewards", rewards, "discounts", discounts)


def _check_nonempty(rewards: Array) -> None:
    if rewards.shape[0] == 0:
        raise ValueError("rewards must have at least one step along time (axis 0); got 0")


def _mixing(lambda_: ArrayLike, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    """``lambda_``: a scalar in [0, 1] as is, or an array broadcastable to ``shape``, broadcast."""
    check_in_range("lambda_", lambda_, 0.0, 1.0, high_inclusive=True)
    lam = jnp.asarray(lambda_, dtype)
    if not _broadcasts_to(lam.shape, shape):
        raise ValueError(
            f"lambda_ has shape {lam.shape}, which does not broadcast to the trajectory shape "
            f"{shape}; a per-step lambda_ for batched trajectories needs shape (T, 1, ...)"
        )
    return lam if lam.ndim == 0 else jnp.broadcast_to(lam, shape)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` without growing it."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def _integer_actions(actions: ArrayLike, scores_name: str, scores: Array) -> Array:
    """Integer ``actions`` with the shape of ``scores`` without its last (action) axis."""
    actions = real_array("actions", actions)
    if not jnp.issubdtype(actions.dtype, jnp.integer):
        raise ValueError(f"actions must be integer action indices, got dtype {actions.dtype}")
    axis = normalize_axis(-1, scores.shape, scores_name)
    check_per_example(actions, scores.shape, axis, scores_name, what="actions")
    return actions


def _actions_in_range(actions: Array, num_actions: int) -> tuple[Array, Array]:
    """``(safe_actions, out_of_range)`` for actions whose masked steps are already 0.

    Concrete actions outside ``[0, num_actions)`` raise ``ValueError``; under ``jit`` they
    cannot, so the caller turns those steps' loss into NaN.
    """
    if not isinstance(actions, Tracer) and actions.size:
        low, high = int(jnp.min(actions)), int(jnp.max(actions))
        if low < 0 or high >= num_actions:
            raise ValueError(
                f"actions must be in [0, {num_actions}) (the size of the last axis of the "
                f"action values or logits); got values from {low} to {high}"
            )
    safe, _, out_of_range = label_validity(actions, num_actions)
    return safe, out_of_range


def _huber_or_half_square(error: Array, huber_delta: float | None) -> Array:
    """``½δ²``, or Huber's ``½δ²`` inside ``|δ| ≤ huber_delta`` and linear outside."""
    if huber_delta is None:
        return 0.5 * jnp.square(error)
    abs_error = abs_zero_subgradient(error)
    quadratic = jnp.minimum(abs_error, huber_delta)
    return 0.5 * jnp.square(quadratic) + huber_delta * (abs_error - quadratic)


def _check_huber_delta(huber_delta: float | None) -> None:
    if huber_delta is not None:
        check_positive("huber_delta", huber_delta)


# --- returns and advantages -------------------------------------------------------------


def _reverse_recurrence(
    offsets: Array,
    discounts: Array,
    mixing: Array,
    last: Array,
    bootstraps: Array | None = None,
) -> Array:
    """``x_t = offsets_t + γ_t ((1 − λ_t) b_t + λ_t x_{t+1})`` for ``t = T − 1 … 0``, with
    ``x_T = last``, ``λ = mixing`` and ``b = bootstraps`` (0 when ``None``).

    Every return and advantage here is this one linear recurrence: one reverse scan, batch
    axes carried along in each step. A scalar ``mixing`` stays out of the scanned arrays,
    and the bootstraps enter inside the step, so neither costs an extra pass over memory
    (forward or backward).
    """

    # Any: the optional entries (step_mixing, bootstrap) are None or scanned arrays.
    def step(carry: Array, xs: tuple[Any, ...]) -> tuple[Array, Array]:
        offset, discount, step_mixing, bootstrap = xs
        lam = mixing if step_mixing is None else step_mixing
        ahead = lam * carry if bootstrap is None else (1.0 - lam) * bootstrap + lam * carry
        carry = offset + discount * ahead
        return carry, carry

    xs: tuple[Any, ...] = (offsets, discounts, mixing if mixing.ndim else None, bootstraps)
    _, out = jax.lax.scan(step, last.astype(offsets.dtype), xs, reverse=True)
    return out


def discounted_returns(
    rewards: ArrayLike, discounts: ArrayLike, bootstrap_value: ArrayLike
) -> Array:
    """Discounted returns ``G_t = r_t + γ_t G_{t+1}``, with ``G_T = bootstrap_value``.

    A discount of 0 ends the episode at that step (nothing after it is added). Gradients flow
    into all three inputs (rlax's default, ``stop_target_gradients=False``).

    Args:
      rewards: ``[T, ...]``, time on axis 0, any batch axes after it.
      discounts: ``[T, ...]``, same shape as ``rewards``.
      bootstrap_value: the value of the state after the last step, broadcastable to the
        batch shape ``rewards.shape[1:]`` (a scalar for one trajectory); or per-step values
        of ``rewards``' shape (rlax's ``v_t``), of which the last one is used.

    Returns:
      ``[T, ...]`` returns, float32 at least.

    Equals ``rlax.discounted_returns`` (vmapped over the batch axes) with a scalar ``v_t``.
    Reference: Sutton & Barto, "Reinforcement Learning: An Introduction" (2018), §3.3.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.discounted_returns(jnp.array([1.0, 1.0, 1.0]),
      ...                            jnp.array([0.5, 0.0, 0.5]), 4.0)
      Array([1.5, 1. , 3. ], dtype=float32)
    """
    rewards, discounts, bootstrap = float_inputs(
        ("rewards", rewards), ("discounts", discounts), ("bootstrap_value", bootstrap_value),
        same_shape=False)
    _check_trajectory(rewards, discounts)
    batch_shape = tuple(rewards.shape[1:])
    if rewards.ndim and tuple(bootstrap.shape) == tuple(rewards.shape):
        bootstrap = bootstrap[-1]  # per-step values (rlax's v_t): the last one bootstraps
    if not _broadcasts_to(bootstrap.shape, batch_shape):
        raise ValueError(
            f"bootstrap_value has shape {tuple(bootstrap.shape)}, which does not broadcast to "
            f"the batch shape {batch_shape} of rewards (rewards.shape[1:])"
        )
    return _reverse_recurrence(rewards, discounts, jnp.ones((), rewards.dtype),
                               jnp.broadcast_to(bootstrap, batch_shape))


def lambda_returns(
    rewards: ArrayLike, discounts: ArrayLike, values: ArrayLike, *, lambda_: ArrayLike = 1.0
) -> Array:
    """TD(λ) returns: ``G_t = r_t + γ_t ((1 − λ) v_t + λ G_{t+1})``, with ``G_{T−1}``
    bootstrapped from ``v_{T−1}``.

    ``values[t]`` estimates the state after step ``t``. ``λ = 1`` gives the discounted
    return bootstrapped from the last value, ``λ = 0`` the one-step target ``r_t + γ_t v_t``.
    Gradients flow into every input (rlax's default, ``stop_target_gradients=False``).

    Args:
      rewards, discounts, values: ``[T, ...]``, all the same shape, ``T >= 1``.
      lambda_: in [0, 1]; a scalar, or per step (broadcastable to ``[T, ...]``).

    Returns:
      ``[T, ...]`` returns, float32 at least.

    Equals ``rlax.lambda_returns`` (vmapped over the batch axes). Reference: Sutton & Barto,
    "Reinforcement Learning: An Introduction" (2018), §12.1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.lambda_returns(jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]),
      ...                        jnp.array([2.0, 4.0]), lambda_=0.5)
      Array([4.5, 5. ], dtype=float32)
    """
    rewards, discounts, values = _trajectory_inputs(rewards, discounts, values)
    _check_trajectory(rewards, discounts)
    check_same_shape("rewards", rewards, "values", values)
    _check_nonempty(rewards)
    lam = _mixing(lambda_, tuple(rewards.shape), rewards.dtype)
    return _reverse_recurrence(rewards, discounts, lam, values[-1], values)


def n_step_returns(
    rewards: ArrayLike, discounts: ArrayLike, values: ArrayLike, *, n: int,
    lambda_: ArrayLike = 1.0,
) -> Array:
    """n-step bootstrapped returns:
    ``G_t = r_t + γ_t r_{t+1} + … + γ_t⋯γ_{t+n−2} r_{t+n−1} + γ_t⋯γ_{t+n−1} v_{t+n−1}``.

    ``values[t]`` estimates the state after step ``t``. Near the end of the trajectory the
    sum stops at step ``T − 1`` and bootstraps from ``v_{T−1}``; a discount of 0 ends the
    sum earlier. ``n = 1`` is the TD(0) target ``r_t + γ_t v_t``. With ``λ < 1`` each step
    mixes in its own value, TD(λ) truncated at ``n`` steps: the ``k + 1``-step return is
    ``G^{k+1}_t = r_t + γ_t ((1 − λ_t) v_t + λ_t G^k_{t+1})``, ``G^0 = v``. The scan carries
    the 1…n-step returns of the next step (``[n, ...]``), so the cost is ``O(n·T)``.
    Gradients flow into every input.

    Args:
      rewards, discounts, values: ``[T, ...]``, all the same shape, ``T >= 1``.
      n: the number of rewards summed before bootstrapping, a positive integer (may
        exceed ``T``).
      lambda_: in [0, 1]; a scalar or per step (broadcastable to ``[T, ...]``). 1 gives the
        plain n-step return.

    Returns:
      ``[T, ...]`` returns, float32 at least.

    Equals ``rlax.n_step_bootstrapped_returns`` (its ``lambda_t`` is ``lambda_``; vmapped
    over the batch axes). Reference: Sutton & Barto (2018), §7.1 and §12.1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.n_step_returns(jnp.array([1.0, 2.0, 3.0]), jnp.array([0.5, 0.5, 0.5]),
      ...                        jnp.array([10.0, 20.0, 40.0]), n=2)
      Array([ 7. , 13.5, 23. ], dtype=float32)
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rewards, discounts, values = _trajectory_inputs(rewards, discounts, values)
    _check_trajectory(rewards, discounts)
    check_same_shape("rewards", rewards, "values", values)
    _check_nonempty(rewards)

    lam = jnp.broadcast_to(_mixing(lambda_, tuple(rewards.shape), rewards.dtype),
                           rewards.shape)

    def step(longer: Array, xs: tuple[Array, ...]) -> tuple[Array, Array]:
        # longer[k] is the (k+1)-step return from the next step; from this step it is one
        # reward and one discount more, with the 0-step return being the value after it.
        reward, discount, value, mix = xs
        shorter = jnp.concatenate([value[None], longer[:-1]])
        longer = reward + discount * ((1.0 - mix) * value + mix * shorter)
        return longer, longer[-1]

    # Past the end every k-step return is the last value (rewards 0, discounts 1 there).
    beyond_end = jnp.broadcast_to(values[-1], (int(n), *values.shape[1:]))
    _, returns = jax.lax.scan(step, beyond_end, (rewards, discounts, values, lam),
                              reverse=True)
    return returns


def generalized_advantage_estimation(
    rewards: ArrayLike, discounts: ArrayLike, values: ArrayLike, *, lambda_: ArrayLike
) -> Array:
    """Generalized advantage estimates: ``A_t = δ_t + γ_t λ A_{t+1}``, ``A_T = 0``, with
    TD errors ``δ_t = r_t + γ_t v_{t+1} − v_t``.

    ``values`` has ``T + 1`` entries along time: ``values[t]`` is the state at step ``t``
    and ``values[T]`` the bootstrap for the state after the last step. ``λ = 1`` gives
    discounted returns minus values, ``λ = 0`` the TD errors. The returns PPO fits its
    critic to are ``A + values[:-1]``. Gradients flow into every input (rlax's default);
    losses here stop them themselves.

    Args:
      rewards, discounts: ``[T, ...]``.
      values: ``[T + 1, ...]``, the same batch axes.
      lambda_: in [0, 1]; a scalar or per step (broadcastable to ``[T, ...]``).

    Returns:
      ``[T, ...]`` advantages, float32 at least.

    Equals ``rlax.truncated_generalized_advantage_estimation`` (vmapped over the batch axes).
    Reference: Schulman et al., "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation" (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.generalized_advantage_estimation(
      ...     jnp.array([1.0, 1.0]), jnp.array([1.0, 0.0]), jnp.array([2.0, 3.0, 9.0]),
      ...     lambda_=0.5)
      Array([ 0., -2.], dtype=float32)
    """
    rewards, discounts, values = _trajectory_inputs(rewards, discounts, values)
    _check_trajectory(rewards, discounts)
    expected = (rewards.shape[0] + 1, *rewards.shape[1:])
    if tuple(values.shape) != expected:
        raise ValueError(
            f"values must have shape {expected}: T + 1 = {expected[0]} entries along time "
            f"(axis 0, one more than rewards) and the batch axes of rewards; got shape "
            f"{tuple(values.shape)}"
        )
    lam = _mixing(lambda_, tuple(rewards.shape), rewards.dtype)
    deltas = rewards + discounts * values[1:] - values[:-1]
    return _reverse_recurrence(deltas, discounts, lam, jnp.zeros(rewards.shape[1:]))


def vtrace(
    values: ArrayLike,
    next_values: ArrayLike,
    rewards: ArrayLike,
    discounts: ArrayLike,
    rhos: ArrayLike,
    *,
    lambda_: ArrayLike = 1.0,
    clip_rho_threshold: float = 1.0,
    sample_mask: ArrayLike | None = None,
) -> Array:
    """V-trace errors ``v̂_t − v_t`` for off-policy value learning.

    With clipped importance ratios ``ρ̄_t = min(ρ̄, ρ_t)`` and traces
    ``c_t = λ min(1, ρ_t)``::

        e_t = ρ̄_t (r_t + γ_t v'_t − v_t) + γ_t c_t e_{t+1},   e_T = 0

    and the target is ``v̂_t = v_t + e_t``. The target is held constant (rlax's default,
    ``stop_target_gradients=True``): the gradient of ``e_t`` is ``−1`` with respect to
    ``values[t]`` and 0 with respect to every other input, so ``½ e²`` regresses the values
    onto the V-trace targets.

    Args:
      values: ``[T, ...]`` values of the states at each step (``v_{t}``).
      next_values: ``[T, ...]`` values of the states after each step (``v'_t = v_{t+1}``).
      rewards, discounts: ``[T, ...]``.
      rhos: ``[T, ...]`` importance ratios ``π(a_t|s_t) / μ(a_t|s_t)`` (target over
        behaviour policy), ``>= 0``.
      lambda_: in [0, 1]; scalar or per step.
      clip_rho_threshold: ``ρ̄ > 0``, the clip of the ratios in the TD errors.
      sample_mask: optional boolean, broadcastable to ``[T, ...]``: False marks steps that
        are not learnable (padding); there the error is carried over unchanged,
        ``e_t = e_{t+1}``, and the step adds nothing (rlax's ``sample_mask``).

    Returns:
      ``[T, ...]`` errors, float32 at least.

    Equals ``rlax.vtrace`` (vmapped over the batch axes). Reference: Espeholt et al.,
    "IMPALA: Scalable Distributed Deep-RL with Importance Weighted Actor-Learner
    Architectures" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.vtrace(jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]),
      ...                jnp.array([1.0, 1.0]), jnp.array([2.0, 0.5]))
      Array([1.5, 0.5], dtype=float32)
    """
    check_positive("clip_rho_threshold", clip_rho_threshold)
    values, next_values, rewards, discounts, rhos = float_inputs(
        ("values", values), ("next_values", next_values), ("rewards", rewards),
        ("discounts", discounts), ("rhos", rhos), same_shape=False)
    _check_trajectory(rewards, discounts)
    check_same_shape("values", values, "rewards", rewards)
    check_same_shape("next_values", next_values, "rewards", rewards)
    check_same_shape("rhos", rhos, "rewards", rewards)
    lam = _mixing(lambda_, tuple(rewards.shape), rewards.dtype)
    deltas = jnp.minimum(clip_rho_threshold, rhos) * (rewards + discounts * next_values - values)
    traces = lam * jnp.minimum(1.0, rhos)
    if sample_mask is not None:
        learnable = jnp.asarray(sample_mask)
        if learnable.dtype != jnp.bool_:
            raise ValueError(f"sample_mask must be a boolean array, got dtype {learnable.dtype}")
        check_broadcastable_to("sample_mask", learnable.shape, rewards.shape)
        learnable = jnp.broadcast_to(learnable, rewards.shape)
        deltas = jnp.where(learnable, deltas, 0.0)
        discounts = jnp.where(learnable, discounts, 1.0)
        traces = jnp.where(learnable, traces, 1.0)
    errors = _reverse_recurrence(deltas, discounts, traces, jnp.zeros(rewards.shape[1:]))
    return jax.lax.stop_gradient(errors + values) - values


# --- policy losses ----------------------------------------------------------------------


def policy_gradient_loss(
    logits: ArrayLike,
    actions: ArrayLike,
    advantages: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """REINFORCE / actor-critic policy-gradient loss ``−log π(a_t | s_t) · A_t`` per step.

    ``π = softmax(logits)``; the advantages are held constant (``stop_gradient``), so the
    gradient is ``−A_t ∇ log π(a_t)``, the policy-gradient estimator.

    Args:
      logits: ``[T, ..., A]`` unnormalised action preferences.
      actions: integer ``[T, ...]`` in ``[0, A)``. Out of range raises ``ValueError`` when
        the actions are concrete; under ``jit`` that step's loss is NaN.
      advantages: ``[T, ...]``.
      weights, where: per step, broadcastable to ``[T, ...]``; ``where=False`` marks padded
        steps (any values there, NaN included, are ignored).
      reduction: ``"none"`` returns the per-step ``[T, ...]`` losses; ``"sum"`` their sum;
        ``"mean"`` divides the sum by the number of unmasked steps (rlax's mean over time,
        with ``weights`` as its ``w_t``).

    Equals ``rlax.policy_gradient_loss`` (vmapped over batch axes, then averaged).
    Reference: Williams, "Simple Statistical Gradient-Following Algorithms for
    Connectionist Reinforcement Learning" (1992).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> logits = jnp.log(jnp.array([[0.5, 0.5], [0.25, 0.75]]))
      >>> lossjax.policy_gradient_loss(logits, jnp.array([0, 1]), jnp.array([2.0, -1.0]))
      Array(0.549..., dtype=float32)
    """
    check_reduction(reduction)
    logits, advantages = float_inputs(("logits", logits), ("advantages", advantages),
                                      same_shape=False)
    actions = _integer_actions(actions, "logits", logits)
    check_same_shape("actions", actions, "advantages", advantages)
    mask = example_mask(where, actions.shape)
    (logits,) = keep_entries(mask, logits, feature_axes=(-1,))
    actions, advantages = keep_entries(mask, actions, advantages)
    actions, out_of_range = _actions_in_range(actions, logits.shape[-1])
    loss = -take_class(jax.nn.log_softmax(logits), actions) * jax.lax.stop_gradient(advantages)
    loss = jnp.where(out_of_range, jnp.nan, loss)
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


def entropy_loss(
    logits: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Negative policy entropy ``−H(π) = Σ_a π(a) log π(a)`` per step (an entropy bonus).

    ``π = softmax(logits)``; actions with probability 0 (``−inf`` logits, e.g. illegal
    actions) add 0 and get a zero gradient. Add ``c · entropy_loss`` to a loss to keep the
    policy exploring.

    Args:
      logits: ``[T, ..., A]``.
      weights, where: per step, broadcastable to ``[T, ...]``.
      reduction: ``"none"`` returns the per-step ``[T, ...]`` values; ``"sum"``; ``"mean"``
        divides the sum by the number of unmasked steps.

    Equals ``rlax.entropy_loss`` (vmapped over batch axes, then averaged). Reference:
    Williams & Peng, "Function Optimization using Connectionist Reinforcement Learning
    Algorithms" (1991); Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning"
    (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.entropy_loss(jnp.zeros((1, 4)))
      Array(-1.3862944, dtype=float32)
    """
    check_reduction(reduction)
    (logits,) = float_inputs(("logits", logits))
    if logits.ndim == 0:
        raise ValueError("logits must have an action axis (the last); got a scalar")
    mask = example_mask(where, logits.shape[:-1])
    (logits,) = keep_entries(mask, logits, feature_axes=(-1,))
    log_probs = jax.nn.log_softmax(logits)
    probs = jnp.exp(log_probs)
    safe_log_probs = jnp.where(probs > 0, log_probs, 0.0)
    loss = jnp.sum(probs * safe_log_probs, axis=-1)
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


def clipped_surrogate_loss(
    ratios: ArrayLike,
    advantages: ArrayLike,
    *,
    epsilon: float = 0.2,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """PPO's clipped surrogate loss ``−min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t)`` per step.

    ``ρ_t = π(a_t|s_t) / π_old(a_t|s_t)``, usually ``exp(log π − log π_old)``. The
    advantages are held constant. The gradient is ``−A_t ∇ρ_t`` except where the clip binds
    (``ρ`` past ``1 ± ε`` in the direction the advantage pushes), where it is 0.

    Args:
      ratios, advantages: ``[T, ...]``, the same shape.
      epsilon: the clip range ``ε >= 0``.
      weights, where: per step, broadcastable to ``[T, ...]``.
      reduction: ``"none"`` returns the per-step losses; ``"sum"``; ``"mean"`` divides the
        sum by the number of unmasked steps (rlax's mean over time).

    Equals ``rlax.clipped_surrogate_pg_loss`` (vmapped over batch axes, then averaged).
    Reference: Schulman et al., "Proximal Policy Optimization Algorithms" (2017), eq. 7.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.clipped_surrogate_loss(jnp.array([1.5, 0.5]), jnp.array([1.0, 1.0]),
      ...                                reduction="none")
      Array([-1.2, -0.5], dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("epsilon", epsilon)
    ratios, advantages = float_inputs(("ratios", ratios), ("advantages", advantages))
    mask = example_mask(where, ratios.shape)
    ratios, advantages = keep_entries(mask, ratios, advantages)
    advantages = jax.lax.stop_gradient(advantages)
    clipped = jnp.clip(ratios, 1.0 - epsilon, 1.0 + epsilon)
    loss = -jnp.minimum(ratios * advantages, clipped * advantages)
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


# --- value losses -----------------------------------------------------------------------


def clipped_value_loss(
    values: ArrayLike,
    old_values: ArrayLike,
    returns: ArrayLike,
    *,
    epsilon: float = 0.2,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """PPO's clipped value loss ``½ max((v − R)², (v_old + clip(v − v_old, −ε, ε) − R)²)``.

    The value may not gain by moving more than ``ε`` from the value ``v_old`` it had when
    the data was collected. ``old_values`` and ``returns`` are held constant. This is the
    value loss of OpenAI Baselines' PPO2, CleanRL and PureJaxRL (TorchRL's ``ClipPPOLoss``
    with ``clip_value``); rlax has none.

    Args:
      values, old_values, returns: ``[T, ...]``, the same shape.
      epsilon: the clip range ``ε >= 0`` (in units of the values).
      weights, where: per step, broadcastable to ``[T, ...]``.
      reduction: ``"none"`` returns the per-step losses; ``"sum"``; ``"mean"`` divides the
        sum by the number of unmasked steps.

    Reference: Schulman et al., "Proximal Policy Optimization Algorithms" (2017), as
    implemented in OpenAI Baselines (PPO2).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.clipped_value_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]),
      ...                            jnp.array([2.0, 2.0]), epsilon=0.5, reduction="none")
      Array([1.125, 1.125], dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("epsilon", epsilon)
    values, old_values, returns = float_inputs(
        ("values", values), ("old_values", old_values), ("returns", returns))
    mask = example_mask(where, values.shape)
    values, old_values, returns = keep_entries(mask, values, old_values, returns)
    old_values, returns = jax.lax.stop_gradient((old_values, returns))
    clipped = old_values + jnp.clip(values - old_values, -epsilon, epsilon)
    loss = 0.5 * jnp.maximum(jnp.square(values - returns), jnp.square(clipped - returns))
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


def _check_transitions(values_name: str, values: Array, rewards: Array, discounts: Array) -> None:
    check_same_shape("rewards", rewards, "discounts", discounts)
    check_same_shape(values_name, values, "rewards", rewards)


def td_loss(
    values: ArrayLike,
    rewards: ArrayLike,
    discounts: ArrayLike,
    next_values: ArrayLike,
    *,
    huber_delta: float | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """TD(0) value loss ``½δ²`` with ``δ = r + γ v' − v``, the target ``r + γ v'`` constant.

    With ``huber_delta`` the loss is Huber's (quadratic for ``|δ| ≤ huber_delta``, linear
    beyond), which clips the gradient at ``huber_delta`` as DQN does. A discount of 0 ends
    the episode at that transition (no bootstrap).

    Args:
      values, rewards, discounts, next_values: the same shape (any; one entry per
        transition). ``∂/∂next_values`` is exactly 0.
      huber_delta: ``None`` (squared error) or ``> 0``.
      weights, where: broadcastable to that shape.
      reduction: ``"none"`` returns the per-transition losses; ``"sum"``; ``"mean"``
        divides the sum by the number of unmasked transitions.

    rlax's ``td_learning`` returns ``δ``; this is ``rlax.l2_loss(δ)`` (or
    ``rlax.huber_loss(δ, huber_delta)``). Reference: Sutton, "Learning to Predict by the
    Methods of Temporal Differences" (1988).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.td_loss(jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]),
      ...                 jnp.array([0.5, 0.0]), jnp.array([4.0, 4.0]), reduction="none")
      Array([2., 0.], dtype=float32)
    """
    check_reduction(reduction)
    _check_huber_delta(huber_delta)
    values, rewards, discounts, next_values = float_inputs(
        ("values", values), ("rewards", rewards), ("discounts", discounts),
        ("next_values", next_values), same_shape=False)
    _check_transitions("values", values, rewards, discounts)
    check_same_shape("next_values", next_values, "values", values)
    mask = example_mask(where, values.shape)
    values, rewards, discounts, next_values = keep_entries(
        mask, values, rewards, discounts, next_values)
    target = jax.lax.stop_gradient(rewards + discounts * next_values)
    loss = _huber_or_half_square(target - values, huber_delta)
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


def _q_learning(
    q_values: ArrayLike,
    actions: ArrayLike,
    rewards: ArrayLike,
    discounts: ArrayLike,
    next_q_values: ArrayLike,
    next_q_selector: ArrayLike | None,
    huber_delta: float | None,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    reduction: str,
) -> Array:
    """Q-learning (``next_q_selector=None``: greedy in ``next_q_values``) or double Q."""
    check_reduction(reduction)
    _check_huber_delta(huber_delta)
    selector = next_q_values if next_q_selector is None else next_q_selector
    q_values, rewards, discounts, next_q_values, selector = float_inputs(
        ("q_values", q_values), ("rewards", rewards), ("discounts", discounts),
        ("next_q_values", next_q_values), ("next_q_selector", selector), same_shape=False)
    actions = _integer_actions(actions, "q_values", q_values)
    _check_transitions("actions", actions, rewards, discounts)
    check_same_shape("next_q_values", next_q_values, "q_values", q_values)
    if next_q_selector is not None:
        check_same_shape("next_q_selector", selector, "next_q_values", next_q_values)
    mask = example_mask(where, actions.shape)
    q_values, next_q_values, selector = keep_entries(
        mask, q_values, next_q_values, selector, feature_axes=(-1,))
    actions, rewards, discounts = keep_entries(mask, actions, rewards, discounts)
    actions, out_of_range = _actions_in_range(actions, q_values.shape[-1])
    next_value = take_class(next_q_values, jnp.argmax(selector, axis=-1))
    target = jax.lax.stop_gradient(rewards + discounts * next_value)
    loss = _huber_or_half_square(target - take_class(q_values, actions), huber_delta)
    loss = jnp.where(out_of_range, jnp.nan, loss)
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


def q_learning_loss(
    q_values: ArrayLike,
    actions: ArrayLike,
    rewards: ArrayLike,
    discounts: ArrayLike,
    next_q_values: ArrayLike,
    *,
    huber_delta: float | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Q-learning loss ``½δ²`` with ``δ = r + γ max_a' q'(a') − q(a)``, the target constant.

    ``huber_delta=1.0`` with a target network's ``next_q_values`` is DQN's loss. A
    discount of 0 ends the episode at that transition.

    Args:
      q_values: ``[..., A]`` action values at the states where ``actions`` were taken.
      actions: integer ``[...]`` in ``[0, A)``. Out of range raises ``ValueError`` when
        concrete; under ``jit`` that transition's loss is NaN.
      rewards, discounts: ``[...]``.
      next_q_values: ``[..., A]`` action values at the next states (the target network's in
        DQN). ``∂/∂next_q_values`` is exactly 0.
      huber_delta: ``None`` (squared error) or ``> 0``.
      weights, where: broadcastable to ``[...]``.
      reduction: ``"none"`` returns the per-transition ``[...]`` losses; ``"sum"``;
        ``"mean"`` divides the sum by the number of unmasked transitions.

    rlax's ``q_learning`` returns ``δ`` for one transition; this is ``rlax.l2_loss`` (or
    ``rlax.huber_loss``) of it. Reference: Watkins & Dayan, "Q-learning" (1992); Mnih et al.,
    "Human-level control through deep reinforcement learning" (2015) for the Huber loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.q_learning_loss(jnp.array([[1.0, 2.0]]), jnp.array([0]), jnp.array([1.0]),
      ...                         jnp.array([0.5]), jnp.array([[4.0, 6.0]]))
      Array(4.5, dtype=float32)
    """
    return _q_learning(q_values, actions, rewards, discounts, next_q_values, None,
                       huber_delta, weights, where, reduction)


def double_q_learning_loss(
    q_values: ArrayLike,
    actions: ArrayLike,
    rewards: ArrayLike,
    discounts: ArrayLike,
    next_q_values: ArrayLike,
    next_q_selector: ArrayLike,
    *,
    huber_delta: float | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Double Q-learning loss ``½δ²``, ``δ = r + γ q'(argmax_a' s'(a')) − q(a)``.

    The next action is chosen by ``next_q_selector`` (the online network in Double DQN) and
    evaluated by ``next_q_values`` (the target network), which removes the overestimation of
    taking the max of noisy estimates. Everything in the target is held constant.

    Args:
      q_values: ``[..., A]``; actions: integer ``[...]`` in ``[0, A)``;
      rewards, discounts: ``[...]``;
      next_q_values, next_q_selector: ``[..., A]``.
      huber_delta, weights, where, reduction: as in :func:`q_learning_loss` (``"none"``
        returns per-transition losses, ``"mean"`` divides by the unmasked count).

    rlax's ``double_q_learning`` returns ``δ`` for one transition; this is
    ``rlax.l2_loss`` (or ``rlax.huber_loss``) of it. References: van Hasselt, "Double
    Q-learning" (2010); van Hasselt, Guez & Silver, "Deep Reinforcement Learning with Double
    Q-learning" (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.double_q_learning_loss(
      ...     jnp.array([[1.0, 2.0]]), jnp.array([0]), jnp.array([1.0]), jnp.array([0.5]),
      ...     jnp.array([[4.0, 6.0]]), jnp.array([[1.0, 0.0]]))
      Array(2., dtype=float32)
    """
    return _q_learning(q_values, actions, rewards, discounts, next_q_values, next_q_selector,
                       huber_delta, weights, where, reduction)

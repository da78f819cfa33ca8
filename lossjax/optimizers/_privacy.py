"""Differentially private SGD: clip each example's gradient, sum, add Gaussian noise.

These transforms take *per-example* gradients (a leading batch axis on every leaf, e.g.
from ``jax.vmap(jax.grad(loss), in_axes=(None, 0))``) and must come first in a chain.
Gradient accumulation wrappers (:func:`multi_steps`) do not compose with them: the noise
is calibrated to one batch. Same arguments, numbers, random draws and state as
``optax.contrib.dpsgd`` / ``differentially_private_aggregate`` (0.2.8).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_non_negative
from lossjax.optimizers._machinery import ScalarOrSchedule, abs_sq
from lossjax.optimizers._transforms import scale_by_learning_rate, trace

Array = jax.Array


class DifferentiallyPrivateAggregateState(NamedTuple):
    """``rng_key``: the key of the next noise draw (a typed PRNG key)."""

    rng_key: Array


def _as_key(key: Array | int) -> Array:
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.key(key)


def differentially_private_aggregate(
    l2_norm_clip: float, noise_multiplier: float, key: Array | int = 0
) -> optax.GradientTransformation:
    """DP-SGD's aggregation: ``(Σ_i clip(g_i) + N(0, (C·σ)²)) / B`` over the batch axis.

    ``clip(g_i) = g_i·min(1, C/‖g_i‖)`` with ``‖g_i‖`` example ``i``'s norm over all
    leaves, ``C = l2_norm_clip``, ``σ = noise_multiplier``; the noise is drawn per leaf
    with one split of the key per call. ``key``: a PRNG key or an integer seed.

    References: Abadi et al., "Deep Learning with Differential Privacy" (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.differentially_private_aggregate(1.0, 0.0)
      >>> per_example = jnp.array([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
      >>> tx.update(per_example, tx.init(None))[0]  # (g₁/5 + g₂)/2
      Array([0.45, 0.6 ], dtype=float32)
    """
    check_non_negative("l2_norm_clip", l2_norm_clip)
    check_non_negative("noise_multiplier", noise_multiplier)
    noise_std = l2_norm_clip * noise_multiplier
    initial_key = _as_key(key)

    def init(params):
        del params
        return DifferentiallyPrivateAggregateState(initial_key)

    def update(updates, state, params=None):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        if any(jnp.ndim(g) == 0 for g in leaves) or len({g.shape[0] for g in leaves}) > 1:
            raise ValueError("differentially_private_aggregate needs per-example gradients: "
                             "every leaf must have the same leading batch axis, got shapes "
                             f"{[jnp.shape(g) for g in leaves]}")
        batch = leaves[0].shape[0]
        norms = jnp.sqrt(jax.vmap(lambda *xs: sum(jnp.sum(abs_sq(x)) for x in xs))(*leaves))
        multipliers = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
        new_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)
        noised = [(jnp.tensordot(multipliers, g, axes=1)
                   + noise_std * jax.random.normal(k, g.shape[1:], g.dtype)) / batch
                  for g, k in zip(leaves, keys, strict=True)]
        return treedef.unflatten(noised), DifferentiallyPrivateAggregateState(new_key)

    return optax.GradientTransformation(init, update)


def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: float,
    noise_multiplier: float,
    seed: int,
    momentum: float | None = None,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """DP-SGD: :func:`differentially_private_aggregate`, optional momentum, then ``−lr``.

    ``update`` takes per-example gradients (leading batch axis). The privacy guarantee
    (ε, δ) follows from ``noise_multiplier``, the sampling rate and the number of steps
    through a privacy accountant (not part of lossjax).

    References: Abadi et al., "Deep Learning with Differential Privacy" (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0)
      >>> per_example = jnp.array([[3.0, 4.0], [0.3, 0.4]])
      >>> opt.update(per_example, opt.init(jnp.zeros(2)))[0]
      Array([-0.045, -0.06 ], dtype=float32)
    """
    parts = [differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed)]
    if momentum is not None:
        parts.append(trace(momentum, nesterov=nesterov))
    return optax.chain(*parts, scale_by_learning_rate(learning_rate))

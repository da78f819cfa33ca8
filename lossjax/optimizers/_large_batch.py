"""Layer-wise trust ratios for large-batch training: LARS and LAMB.

Each leaf's step is rescaled by ``‖w‖/‖u‖``, a per-leaf reduction: under sharding it is an
all-reduce of two scalars per leaf, and the moments stay sharded like the parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from lossjax._mask import Mask, mask_flags
from lossjax._validation import check_non_negative
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    abs_sq,
    as_update,
    per_leaf,
    upcast,
    weight_decay_parts,
)
from lossjax.optimizers._transforms import (
    scale_by_adam,
    scale_by_learning_rate,
    trace,
)

# optax's (empty) state: the same class, so states match optax's
ScaleByTrustRatioState = optax.EmptyState


def _norm_at_least(x: jax.Array, min_norm: float) -> jax.Array:
    """``max(‖x‖, min_norm)`` for the whole leaf, in at least float32."""
    return jnp.maximum(jnp.sqrt(jnp.sum(abs_sq(x))), min_norm)


def scale_by_trust_ratio(
    min_norm: float = 0.0,
    trust_coefficient: float = 1.0,
    eps: float = 0.0,
    *,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """Per leaf, ``u ← u · c·‖w‖/(‖u‖ + eps)``; ``u`` unchanged where ``‖w‖`` or ``‖u‖`` is 0.

    Norms are ``max(‖·‖, min_norm)``, computed in at least float32. ``mask`` (a lossjax
    addition; optax wraps the transform in ``optax.masked``) selects the leaves that are
    rescaled, e.g. to skip biases. ``update`` needs ``params``.

    References: You et al., "Large Batch Training of Convolutional Networks" (2017).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_trust_ratio()
      >>> tx.update(jnp.array([0.0, 2.0]), None, jnp.array([3.0, 4.0]))[0]
      Array([0., 5.], dtype=float32)
    """
    check_non_negative("min_norm", min_norm)
    check_non_negative("trust_coefficient", trust_coefficient)
    check_non_negative("eps", eps)

    def leaf(u, w):
        u32, w32 = upcast(u), upcast(w)
        w_norm, u_norm = _norm_at_least(w32, min_norm), _norm_at_least(u32, min_norm)
        ratio = trust_coefficient * w_norm / (u_norm + eps)
        ratio = jnp.where((w_norm == 0) | (u_norm == 0), 1.0, ratio)
        return (as_update(u32 * ratio, u),)

    apply = per_leaf(leaf, 1)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_trust_ratio needs the parameters: call "
                             "update(updates, state, params)")
        (scaled,) = apply((updates, params))
        flags = mask_flags(mask, updates)
        return jax.tree.map(lambda keep, s, u: s if keep else u, flags, scaled, updates), state

    def init(params):
        del params
        # with a mask, optax's layout: the state of ``optax.masked(scale_by_trust_ratio())``
        return ScaleByTrustRatioState() if mask is None else optax.MaskedState(
            ScaleByTrustRatioState())

    return optax.GradientTransformation(init, update)


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """LAMB: per leaf, ``r = m̂/(√v̂ + eps) + wd·w`` and ``w ← w − lr·(‖w‖/‖r‖)·r``.

    Adam's direction (:func:`scale_by_adam`), decoupled weight decay on the leaves
    ``mask`` selects, then the layer-wise trust ratio (:func:`scale_by_trust_ratio`).
    PyTorch has no LAMB; Keras' ``Lamb`` matches with ``weight_decay`` as here.

    References: You et al., "Large Batch Optimization for Deep Learning: Training BERT in
    76 minutes" (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.lamb(0.1)
      >>> params = jnp.array([3.0, 4.0])
      >>> opt.update(jnp.array([1.0, 1.0]), opt.init(params), params)[0]
      Array([-0.3535..., -0.3535...], dtype=float32)
    """
    return optax.chain(scale_by_adam(b1, b2, eps, eps_root),
                       *weight_decay_parts(weight_decay, mask),
                       scale_by_trust_ratio(),
                       scale_by_learning_rate(learning_rate))


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: float = 0.0,
    weight_decay_mask: Mask = True,
    trust_coefficient: float = 0.001,
    eps: float = 0.0,
    trust_ratio_mask: Mask = True,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """LARS: ``u = g + wd·w``, ``u ← c·‖w‖/(‖u‖ + eps)·u`` per leaf, then SGD with
    momentum: ``b ← lr·u + μ·b``, ``w ← w − b``.

    ``weight_decay_mask`` / ``trust_ratio_mask`` select the leaves that decay / are
    rescaled (``True``: all). As optax, the momentum acts on the already scaled step.

    References: You et al., "Large Batch Training of Convolutional Networks" (2017).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.lars(1.0, trust_coefficient=0.1)
      >>> params = jnp.array([3.0, 4.0])
      >>> opt.update(jnp.array([0.0, 2.0]), opt.init(params), params)[0]
      Array([ 0. , -0.5], dtype=float32)
    """
    check_non_negative("momentum", momentum)
    return optax.chain(
        *weight_decay_parts(weight_decay, weight_decay_mask),
        scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps,
                             mask=trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov=nesterov))

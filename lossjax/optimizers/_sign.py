"""Sign-based optimizers: signSGD, Signum and Lion.

Each step moves every coordinate by ``±lr`` (Lion: plus decoupled weight decay), so these
keep at most one moment: Lion's state is half of Adam's.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._mask import Mask
from lossjax._validation import check_in_range
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_update,
    exponential_average,
    full_like,
    increment_count,
    per_leaf,
    upcast,
)
from lossjax.optimizers._transforms import (
    scale_by_learning_rate,
)
from lossjax.regularizers import add_decayed_weights

Array = jax.Array


# optax's (empty) state: the same class, so states match optax's
ScaleBySignState = optax.EmptyState


def scale_by_sign() -> optax.GradientTransformation:
    """``u ← sign(u)`` (``sign(0) = 0``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.scale_by_sign().update(jnp.array([0.3, 0.0, -2.0]), None)[0]
      Array([ 1.,  0., -1.], dtype=float32)
    """

    def sign_leaf(u):
        return (as_update(jnp.sign(upcast(u)), u),)

    apply = per_leaf(sign_leaf, 1, trace_once=False)

    def update(updates, state, params=None):
        del params
        return apply((updates,))[0], state

    return optax.GradientTransformation(lambda params: ScaleBySignState(), update)


def sign_sgd(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    """signSGD: ``w ← w − lr·sign(g)``.

    References: Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex
    Problems" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.sign_sgd(0.1)
      >>> opt.update(jnp.array([0.3, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(
    learning_rate: ScalarOrSchedule, beta: float = 0.9, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    """Signum (signSGD with momentum): ``m ← β·m + (1 − β)·g``, ``w ← w − lr·sign(m)``.

    ``accumulator_dtype`` stores ``m`` in another dtype (only its sign matters).

    References: Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex
    Problems" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.signum(0.1)
      >>> opt.update(jnp.array([0.3, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    check_in_range("beta", beta, 0.0, 1.0)
    return optax.chain(exponential_average(beta, accumulator_dtype), scale_by_sign(),
                       scale_by_learning_rate(learning_rate))


class ScaleByLionState(NamedTuple):
    """``count``: steps taken (int32); ``mu``: the momentum ``m``."""

    count: Array
    mu: Any


_LION_MODES = ("hard", "smooth", "refined")


def scale_by_lion(
    b1: float = 0.9,
    b2: float = 0.99,
    mu_dtype: Any = None,
    *,
    mode: Literal["hard", "smooth", "refined"] = "hard",
    smooth_beta: float = 1.0,
) -> optax.GradientTransformation:
    """Lion's direction: ``s(b1·m + (1 − b1)·g)``, then ``m ← b2·m + (1 − b2)·g``.

    ``s`` is ``sign`` (``mode="hard"``, the paper's), ``tanh(smooth_beta·x)``
    (``"smooth"``), or ``x`` where ``|x| < 1`` and ``sign(x)`` elsewhere (``"refined"``);
    optax's variants. ``mu_dtype`` stores ``m`` in another dtype (e.g. ``jnp.bfloat16``).
    Another ``mode`` raises ``ValueError``.

    References: Chen et al., "Symbolic Discovery of Optimization Algorithms" (2023).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_lion()
      >>> tx.update(jnp.array([0.3, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    if mode not in _LION_MODES:
        raise ValueError(f"mode must be one of {_LION_MODES}, got {mode!r}")

    def shape(x):
        if mode == "smooth":
            return jnp.tanh(smooth_beta * x)
        if mode == "refined":
            return jnp.where(jnp.abs(x) < 1.0, x, jnp.sign(x))
        return jnp.sign(x)

    def leaf(g, m):
        g32, m32 = upcast(g), upcast(m)
        direction = shape(b1 * m32 + (1.0 - b1) * g32)
        new = b2 * m32 + (1.0 - b2) * g32
        return as_update(direction, g), new.astype(m.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        mu = jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params)
        return ScaleByLionState(jnp.zeros([], jnp.int32), mu)

    def update(updates, state, params=None):
        del params
        direction, mu = apply((updates, state.mu))
        return direction, ScaleByLionState(increment_count(state.count), mu)

    return optax.GradientTransformation(init, update)


def lion(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.99,
    mu_dtype: Any = None,
    weight_decay: float = 1e-3,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """Lion: ``w ← w − lr·(sign(b1·m + (1 − b1)·g) + wd·w)``, ``m ← b2·m + (1 − b2)·g``.

    One moment (half of Adam's state). Use a learning rate 3–10× smaller and a weight
    decay 3–10× larger than AdamW's. PyTorch has no Lion; Keras' ``Lion`` has no weight
    decay by default (optax and lossjax: ``1e-3``).

    References: Chen et al., "Symbolic Discovery of Optimization Algorithms" (2023).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.lion(0.1, weight_decay=0.5)
      >>> params = jnp.array([1.0, 1.0])
      >>> opt.update(jnp.array([0.3, -2.0]), opt.init(params), params)[0]
      Array([-0.15,  0.05], dtype=float32)
    """
    return optax.chain(scale_by_lion(b1, b2, mu_dtype),
                       add_decayed_weights(weight_decay, mask=mask),
                       scale_by_learning_rate(learning_rate))

"""The optimizers: short chains of the transforms in ``_transforms.py``.

Same defaults and the same numbers as optax's counterparts; every hyperparameter is
checked when the optimizer is built, and the states have optax's layout. Every
``learning_rate`` is a float or a schedule ``step -> rate`` (see ``lossjax.schedules``). As
in optax, a float rate is a constant of the compiled step; to change it between steps
without recompiling, build the optimizer through ``lossjax.inject_hyperparams`` and call
``lossjax.set_learning_rate(state, new_rate)``.
"""

from __future__ import annotations

from typing import Any

import optax

from lossjax._mask import Mask
from lossjax._validation import check_non_negative, concrete_value
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
)
from lossjax.optimizers._transforms import (
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_sum_of_squares,
    trace,
)
from lossjax.regularizers import add_decayed_weights


def _check_momentum(momentum: float | None, nesterov: bool) -> None:
    if momentum is None:
        if nesterov:
            raise ValueError("nesterov=True needs momentum > 0")
        return
    check_non_negative("momentum", momentum)
    if nesterov and concrete_value(momentum) == 0:
        raise ValueError("nesterov=True needs momentum > 0")


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    """(Stochastic) gradient descent: ``w ← w − lr·g``; with momentum ``μ``, ``b ← g + μ·b``
    and ``w ← w − lr·b`` (Nesterov: ``w ← w − lr·(g + μ·b)``).

    Full-batch gradients make this plain gradient descent. ``learning_rate`` is a float
    or a schedule (to change a float between steps: :func:`inject_hyperparams`).
    ``nesterov=True`` with ``momentum=0`` raises ``ValueError``: it would silently be plain
    SGD (optax accepts it and ignores ``nesterov``), which is almost surely a mistake.
    ``accumulator_dtype`` stores the momentum buffer in another dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.sgd(0.1)
      >>> opt.update(jnp.array([1.0, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.2], dtype=float32)
    """
    _check_momentum(momentum, nesterov)
    first = (optax.identity() if momentum is None
             else trace(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype))
    return optax.chain(first, scale_by_learning_rate(learning_rate))


def adam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adam: ``w ← w − lr·m̂/(√(v̂ + eps_root) + eps)`` (:func:`scale_by_adam` gives ``m̂``, ``v̂``).

    Under ``jit`` the whole step, ``optax.apply_updates`` included, fuses into elementwise
    loops over each leaf; ``mu_dtype`` (e.g. ``jnp.bfloat16``) halves the first moment's
    memory and ``nu_dtype`` the second's; ``nesterov=True`` is NAdam (:func:`nadam`).
    Keras and PyTorch add ``eps`` (Keras: 1e-7) to ``√v`` before the bias correction;
    optax and lossjax after it.
    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2014).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adam(0.1)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                                     nu_dtype=nu_dtype),
                       scale_by_learning_rate(learning_rate))


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: float = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """AdamW: ``w ← w − lr·(m̂/(√(v̂ + eps_root) + eps) + wd·w)``, decay decoupled from the
    moments.

    ``mask`` selects the leaves that decay (e.g. skip biases and norms). PyTorch's
    ``AdamW`` defaults to ``weight_decay=0.01``, Keras' to 0.004; optax and lossjax to 1e-4.
    References: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adamw(0.1, weight_decay=0.5)
      >>> params = jnp.array([1.0, 1.0])
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(params), params)[0]
      Array([-0.15,  0.05], dtype=float32)
    """
    return optax.chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                                     nu_dtype=nu_dtype),
                       add_decayed_weights(weight_decay, mask=mask),
                       scale_by_learning_rate(learning_rate))


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    """RMSProp: ``w ← w − lr·g/√(v + eps)``, ``v ← d·v + (1 − d)·g²``.

    Same arguments, in the same order, as ``optax.rmsprop``: ``eps_in_sqrt=False`` divides
    by ``√v + eps`` (PyTorch's and Keras' placement); ``centered`` uses ``v − m²``;
    ``momentum`` adds a trace of the scaled steps (see :func:`sgd` for ``nesterov``);
    ``bias_correction`` divides ``v`` by ``1 − dᵗ``.
    References: Hinton, Lecture 6e of "Neural Networks for Machine Learning" (2012).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.rmsprop(0.1, decay=0.75, eps=0.0)
      >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0]
      Array([-0.2], dtype=float32)
    """
    _check_momentum(momentum, nesterov)
    return optax.chain(
        scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=centered),
        scale_by_learning_rate(learning_rate),
        optax.identity() if momentum is None else trace(momentum, nesterov=nesterov))


def adagrad(
    learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> optax.GradientTransformation:
    """Adagrad: ``s ← s + g²``, ``w ← w − lr·g/√(s + eps)``, ``s`` starting at
    ``initial_accumulator_value``.

    References: Duchi et al., "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization" (2011).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adagrad(0.1, initial_accumulator_value=0.0, eps=0.0)
      >>> opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))[0]
      Array([-0.1], dtype=float32)
    """
    return optax.chain(scale_by_sum_of_squares(initial_accumulator_value, eps),
                       scale_by_learning_rate(learning_rate))

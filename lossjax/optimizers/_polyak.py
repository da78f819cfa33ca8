"""Polyak's step size: the learning rate computed from the loss value at each step.

The loss value reaches the transform through optax's extra-arguments protocol:
``update(grads, state, params, value=loss)``; ``optax.chain`` forwards ``value=`` to every
part that accepts it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_non_negative
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    abs_sq,
    as_scalar,
    per_leaf,
    scalar_dtype,
    scale_leaf,
    upcast,
    without_float0,
)
from lossjax.optimizers._transforms import (
    scale_by_learning_rate,
)

Array = jax.Array
_VARIANTS = ("sps", "sps+")
# optax compares ‖u‖² + eps with float64's machine epsilon whatever the parameters' dtype;
# below it the step is 0 rather than a division by (nearly) zero.
_TINY_SQUARED_NORM = float(jnp.finfo(jnp.float64).eps)


def _squared_norm(tree: Any) -> Array:
    """``Σ_leaves Σ x²``, in at least float32, leaves summed in tree order."""
    return jnp.asarray(sum(jnp.sum(abs_sq(upcast(x))) for x in jax.tree.leaves(tree)))


def _check_variant(variant: str) -> None:
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")


def scale_by_polyak(
    f_min: float | Array = 0.0,
    max_learning_rate: float | Array = 1.0,
    eps: float | Array = 0.0,
    variant: str = "sps",
) -> optax.GradientTransformationExtraArgs:
    """Scale the updates ``u`` by Polyak's step size ``min((f − f_min)/(‖u‖² + eps), γ_max)``.

    ``f`` is the loss value at the current parameters, passed as ``update(updates, state,
    params, value=f)``; ``‖u‖²`` sums over every leaf. ``variant="sps+"`` uses the positive
    part ``max(f − f_min, 0)`` of the gap (Garrigos et al. 2023), so a loss below ``f_min``
    gives a zero step instead of a step uphill. Where ``‖u‖² + eps`` is below float64's
    machine epsilon (a zero gradient) the step is 0, as in optax. Stateless.

    Args:
      f_min: a lower bound on the loss, ``f*`` (0 for models that can interpolate the data).
      max_learning_rate: ``γ_max >= 0``, the largest step taken.
      eps: ``>= 0``, added to ``‖u‖²``.
      variant: ``"sps"`` or ``"sps+"`` (anything else: ``ValueError`` here, where optax
        raises only at the first update).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_polyak()
      >>> g = jnp.array([3.0, 4.0])
      >>> tx.update(g, tx.init(g), value=5.0)[0]  # step (5 − 0)/25 = 0.2
      Array([0.6, 0.8], dtype=float32)

    References: Loizou et al., "Stochastic Polyak Step-size for SGD: An Adaptive Learning
    Rate for Fast Convergence" (2021).
    """
    check_non_negative("max_learning_rate", max_learning_rate)
    check_non_negative("eps", eps)
    _check_variant(variant)
    apply = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, *, value, **extra_args):
        del params, extra_args
        updates = without_float0(updates)
        squared_norm = _squared_norm(updates).astype(scalar_dtype(updates))
        gap = jnp.asarray(value - f_min).astype(squared_norm.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0.0)
        denominator = squared_norm + eps
        step = jnp.where(denominator <= _TINY_SQUARED_NORM, 0.0,
                         jnp.minimum(gap / denominator,
                                     as_scalar(max_learning_rate, squared_norm.dtype)))
        (updates,) = apply((updates,), (step.astype(squared_norm.dtype),))
        return updates, state

    # optax types ``update`` as taking optional extra args; this one requires ``value``.
    return optax.GradientTransformationExtraArgs(init, update)  # pyright: ignore[reportArgumentType]


def polyak_sgd(
    max_learning_rate: float | Array = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: float | Array = 0.0,
    eps: float | Array = 0.0,
    variant: str = "sps",
) -> optax.GradientTransformationExtraArgs:
    """SGD with Polyak's step size: ``w ← w − s·γ·g``, ``γ = min((f − f*)/(s²‖g‖² + eps), γ_max)``.

    The step size comes from the loss value ``f`` at ``w``, so each update needs it:
    ``updates, state = opt.update(grads, state, params, value=loss)``. With the default
    ``scaling`` ``s = 1`` this is the stochastic Polyak step (SPS_max) of Loizou et al.:
    ``γ = min((f − f*)/‖g‖², γ_max)``. As in optax (0.2.8), ``s`` multiplies the gradient
    before the step size is measured, hence the ``s²`` in the denominator (optax's docstring
    writes ``s·min((f − f*)/(‖g‖² + eps), γ_max)``, which its code does not compute; we follow
    the code, so trajectories are the same). ``s`` may be a schedule ``step -> s``; a float
    ``s`` is a constant of the compiled step (as every float rate; see :func:`inject_hyperparams`).
    ``f*`` (``f_min``) must be a lower bound on the loss: 0 for models that interpolate the
    data; a wrong value makes the method diverge or stall. Neither PyTorch nor Keras ships
    this optimizer. See :func:`scale_by_polyak` for ``eps`` and ``variant``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> def f(w): return jnp.sum(w ** 2)
      >>> w = jnp.array([1.0, 2.0, 3.0])
      >>> opt = lossjax.polyak_sgd()
      >>> state = opt.init(w)
      >>> for _ in range(3):
      ...     value, grad = jax.value_and_grad(f)(w)
      ...     updates, state = opt.update(grad, state, w, value=value)
      ...     w = optax.apply_updates(w, updates)
      >>> f(w)  # each step halves w: 14/4³
      Array(0.21875, dtype=float32)

    References: Loizou et al., "Stochastic Polyak Step-size for SGD: An Adaptive Learning
    Rate for Fast Convergence" (2021); Berrada et al., "Training Neural Networks for and by
    Interpolation" (2020); Garrigos et al., "Function Value Learning: Adaptive Learning Rates
    Based on the Polyak Stepsize and Function Splitting in ERM" (2023) for ``"sps+"``.
    """
    check_non_negative("scaling", scaling)
    # A float scaling is a constant of the step (XLA fuses it into the norm and the
    # update); optax's layout: the state of ``chain(sgd(scaling), scale_by_polyak(...))``
    descent = optax.chain(optax.identity(), scale_by_learning_rate(scaling))
    return optax.chain(
        descent,
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps,
                        variant=variant),
    )

"""Sharpness-aware minimisation (SAM): take the gradient at the worst nearby point.

SAM minimises ``max_{‖ε‖ ≤ ρ} L(w + ε)``, approximated by one ascent step
``ε = ρ·g/‖g‖`` and the gradient there. Two ways to use it:

* :func:`sam_value_and_grad`: a drop-in for ``jax.value_and_grad`` that returns the SAM
  gradient (two gradient evaluations in one traced function), to feed to any optimizer,
  :func:`multi_steps` included. ``rho = 0`` is exactly ``jax.value_and_grad``.
* :func:`sam`: optax.contrib's wrapper (same arguments, numbers and state), in which the
  adversarial step is an optimizer of its own (e.g. ``chain(normalize(), sgd(rho))``)
  and the outer optimizer steps every ``sync_period`` calls (transparent mode) or inside
  one call (``opaque_mode``, which needs ``grad_fn=``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_non_negative
from lossjax.optimizers._machinery import abs_sq, is_float0, per_leaf, upcast

Array = jax.Array


def _sum_of_squares(tree: Any) -> Array:
    """``Σ|x|²`` over the leaves (``x·x̄`` for complex ones); a ``float0`` leaf (the
    gradient of an integer leaf) adds nothing."""
    parts = [jnp.sum(abs_sq(upcast(x))) for x in jax.tree.leaves(tree) if not is_float0(x)]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([], jnp.float32)


def normalize() -> optax.GradientTransformation:
    """``u ← u/‖u‖`` (the global norm over all leaves): SAM's ascent direction; a zero
    ``u`` stays zero (optax's gives NaN).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.normalize()
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(None))[0]
      Array([0.6, 0.8], dtype=float32)
    """

    def leaf(u, norm):
        norm = norm.astype(upcast(u).dtype)
        return ((upcast(u) / jnp.where(norm > 0, norm, 1)).astype(u.dtype),)

    apply = per_leaf(leaf, 1, trace_once=False)

    def update(updates, state, params=None):
        del params
        return apply((updates,), (jnp.sqrt(_sum_of_squares(updates)),))[0], state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def sam_value_and_grad(
    loss_fn: Callable[..., Array], rho: float, *, adaptive: bool = False
) -> Callable[..., tuple[Array, Any]]:
    """``jax.value_and_grad(loss_fn)`` with the gradient taken at SAM's adversarial point.

    Returns ``f(params, *args, **kwargs) -> (loss, grads)`` where ``loss`` is
    ``loss_fn(params, *args, **kwargs)`` and ``grads = ∇L(params + ε)`` with ::

        ε = ρ·g/‖g‖                      (SAM)
        ε = ρ·w²⊙g/‖|w|⊙g‖               (ASAM, adaptive=True)

    ``g = ∇L(params)``, norms over all leaves. ``ρ = 0`` gives exactly
    ``jax.value_and_grad(loss_fn)`` (the ascent step adds zeros); a zero gradient gives
    ``ε = 0``. Both gradient evaluations are traced into one jitted function; feed its
    gradient to any optimizer (or :func:`multi_steps`, which then averages SAM
    gradients). ASAM is written as in Foret et al.'s reference code with
    ``adaptive=True`` (scale ``T_w = |w|``, no offset).

    References: Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
    Generalization" (2021); Kwon et al., "ASAM: Adaptive Sharpness-Aware Minimization for
    Scale-Invariant Learning of Deep Neural Networks" (2021).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> loss = lambda w: jnp.sum(w ** 4)
      >>> value, g = lossjax.sam_value_and_grad(loss, rho=0.5)(jnp.array([1.0, 0.0]))
      >>> value, g  # gradient 4w³ at w + 0.5·(1, 0)
      (Array(1., dtype=float32), Array([13.5,  0. ], dtype=float32))
    """
    check_non_negative("rho", rho)
    value_and_grad = jax.value_and_grad(loss_fn)

    def perturb_leaf(w, g, scale):
        w32, g32 = upcast(w), upcast(g)
        step = (w32 * w32 * g32 if adaptive else g32) * scale.astype(g32.dtype)
        return ((w32 + step).astype(w.dtype),)

    perturb = per_leaf(perturb_leaf, 1)

    @jax.jit
    def sam_grad(params, *args, **kwargs):
        value, grads = value_and_grad(params, *args, **kwargs)
        scaled = jax.tree.map(lambda w, g: upcast(w) * upcast(g), params, grads) if adaptive \
            else grads
        norm = jnp.sqrt(_sum_of_squares(scaled))
        scale = jnp.where(norm > 0, rho / jnp.where(norm > 0, norm, 1.0), 0.0)
        (adversarial,) = perturb((params, grads), (scale,))
        return value, jax.grad(loss_fn)(adversarial, *args, **kwargs)

    return sam_grad


class SAMState(NamedTuple):
    """``steps_since_sync`` (int32); ``opt_state``: the outer optimizer's; ``adv_state``:
    the adversarial optimizer's; ``cache``: the outer parameters (``None`` in opaque
    mode). optax's fields."""

    steps_since_sync: Array
    opt_state: Any
    adv_state: Any
    cache: Any


_NEEDS_PARAMS = "sam needs the parameters: call update(grads, state, params)"


def _select(flag: Array, if_true: Any, if_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), if_true, if_false)


def sam(
    optimizer: optax.GradientTransformation,
    adv_optimizer: optax.GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """SAM as optax.contrib's wrapper: ``sync_period − 1`` adversarial steps, then one outer
    step from the saved outer parameters with the last gradient.

    Transparent mode (default): calls ``1 … sync_period − 1`` of each period return the
    adversarial updates (``params`` move to ``w + ε``); the last call returns the update
    that takes them from ``w + ε`` to the outer optimizer's ``w_new``. Opaque mode runs
    the whole period inside one call and needs ``update(..., grad_fn=f)`` with
    ``f(params, i) -> grads`` (so side effects such as batch statistics see only outer
    steps); ``batch_axis_name`` averages the adversarial gradients over that ``pmap``
    axis. ``reset_state`` re-initialises the adversarial optimizer after each period.
    The drop-in SAM of the paper is ``sam(opt, chain(normalize(), sgd(rho)))``; see also
    :func:`sam_value_and_grad`.

    References: Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
    Generalization" (2021).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> loss = lambda w: jnp.sum(w ** 4)
      >>> adv = optax.chain(lossjax.normalize(), lossjax.sgd(0.5))
      >>> opt = lossjax.sam(lossjax.sgd(0.01), adv)
      >>> w = jnp.array([1.0, 0.0])
      >>> state = opt.init(w)
      >>> for _ in range(2):  # ascent to w + ε, then the outer step from w
      ...     u, state = opt.update(jax.grad(loss)(w), state, w)
      ...     w = optax.apply_updates(w, u)
      >>> w  # 1 − 0.01·4·1.5³
      Array([0.865, 0.   ], dtype=float32)
    """
    if not isinstance(sync_period, int) or sync_period < 1:
        raise ValueError(f"sync_period must be an integer >= 1, got {sync_period!r}")

    def init(params):
        cache = None if opaque_mode else jax.tree.map(lambda p: jnp.array(p, copy=True), params)
        return SAMState(jnp.zeros([], jnp.int32), optimizer.init(params),
                        adv_optimizer.init(params), cache)

    def transparent_update(updates, state, params=None, *, grad_fn=None):
        del grad_fn
        if params is None:
            raise ValueError(_NEEDS_PARAMS)
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        adv_updates, adv_state = adv_optimizer.update(updates, state.adv_state, params)
        adv_updates = jax.tree.map(jnp.negative, adv_updates)
        opt_updates, opt_state = optimizer.update(updates, state.opt_state, state.cache)
        opt_updates = jax.tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_updates)
        cache = _select(first, params, state.cache)
        new_updates = _select(last, opt_updates, adv_updates)
        if reset_state:
            adv_state = _select(last, adv_optimizer.init(params), adv_state)
        else:
            adv_state = _select(last, state.adv_state, adv_state)
        opt_state = _select(last, opt_state, state.opt_state)
        return new_updates, SAMState((state.steps_since_sync + 1) % sync_period, opt_state,
                                     adv_state, cache)

    def opaque_update(updates, state, params=None, *, grad_fn=None):
        if grad_fn is None:
            raise ValueError("sam(opaque_mode=True) needs grad_fn=, a function "
                             "(params, i) -> grads, passed to update")
        if params is None:
            raise ValueError(_NEEDS_PARAMS)
        adv_params, adv_updates, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(adv_updates, adv_state, adv_params)
            adv_params = optax.apply_updates(adv_params,
                                             jax.tree.map(jnp.negative, adv_updates))
            adv_updates = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_updates = jax.lax.pmean(adv_updates, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        new_updates, opt_state = optimizer.update(adv_updates, state.opt_state, params)
        return new_updates, SAMState(jnp.zeros([], jnp.int32), opt_state, adv_state, None)

    update = opaque_update if opaque_mode else transparent_update
    return optax.GradientTransformationExtraArgs(init, update)

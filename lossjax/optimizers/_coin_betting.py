"""Coin-betting optimizers: COCOB and Mechanic.

Both treat optimisation as betting a "wealth" that grows when past bets (steps) moved
against the gradient, and set the step size from that wealth: no learning rate to tune.
COCOB bets per coordinate; Mechanic bets one global scale ``s`` on the direction another
optimizer proposes (it wraps any optimizer).

Same arguments, defaults, numbers and state fields as ``optax.contrib.cocob`` and
``optax.contrib.mechanize`` (0.2.8).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_array_leaves,
    as_update,
    full_like,
    increment_count,
    per_leaf,
    scalar_dtype,
    trained_leaves,
    upcast,
    weight_decay_parts,
    without_float0,
)
from lossjax.optimizers._transforms import scale_by_learning_rate

Array = jax.Array


def _needs_params(name: str, params: Any) -> None:
    if params is None:
        raise ValueError(f"{name} needs the parameters: call update(grads, state, params)")


def _copy(tree: Any) -> Any:
    return jax.tree.map(lambda p: jnp.array(p, copy=True), as_array_leaves(tree))


def _total(parts: list[Array]) -> Array:
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([], jnp.float32)


# ------------------------------------------------------------------------------ COCOB


class COCOBState(NamedTuple):
    """``init_particles``: ``w₀``; ``cumulative_gradients``: ``−Σg``; ``scale``: ``L``, the
    largest ``|g|`` seen (from ``eps``); ``subgradients``: ``Σ|g|``; ``reward``: the
    wealth won so far (optax's field names)."""

    init_particles: Any
    cumulative_gradients: Any
    scale: Any
    subgradients: Any
    reward: Any


def scale_by_cocob(alpha: float = 100.0, eps: float = 1e-8) -> optax.GradientTransformation:
    """COCOB-Backprop's step, per coordinate (Orabona & Tommasi, Algorithm 2)::

        L ← max(L, |g|),  G ← G + |g|,  R ← max(R − g·(w − w₀), 0),  θ ← θ − g
        w_new = w₀ + θ·(L + R) / (L·max(G + L, α·L)),   update = w_new − w

    ``alpha`` bounds the bet early on (``α·L`` in the denominator); ``eps`` is the initial
    ``L``. Needs ``params``.

    References: Orabona & Tommasi, "Training Deep Networks without Learning Rates Through
    Coin Betting" (2017).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_cocob(alpha=2.0)
      >>> w = jnp.zeros(2)
      >>> tx.update(jnp.array([1.0, -2.0]), tx.init(w), w)[0]  # θ·L/(L·2L) = −g/(2|g|)
      Array([-0.5,  0.5], dtype=float32)
    """
    check_positive("alpha", alpha)
    check_non_negative("eps", eps)

    def leaf(g, theta, scale, grad_sum, reward, w, w0):
        g32, w32, w0_32 = upcast(g), upcast(w), upcast(w0)
        big_l = jnp.maximum(upcast(scale), jnp.abs(g32))
        big_g = upcast(grad_sum) + jnp.abs(g32)
        r = jnp.maximum(upcast(reward) - g32 * (w32 - w0_32), 0)
        th = upcast(theta) - g32
        target = w0_32 + th / (big_l * jnp.maximum(big_g + big_l, alpha * big_l)) * (big_l + r)
        return (as_update(target - w32, g), th.astype(theta.dtype), big_l.astype(scale.dtype),
                big_g.astype(grad_sum.dtype), r.astype(reward.dtype))

    apply = per_leaf(leaf, 5)

    def init(params):
        zeros = lambda: jax.tree.map(full_like, params)  # noqa: E731
        return COCOBState(_copy(params), zeros(), jax.tree.map(lambda p: full_like(p, eps), params),
                          zeros(), zeros())

    def update(updates, state, params=None):
        _needs_params("cocob", params)
        out, theta, scale, grad_sum, reward = apply(
            (updates, state.cumulative_gradients, state.scale, state.subgradients,
             state.reward, params, state.init_particles))
        return out, COCOBState(state.init_particles, theta, scale, grad_sum, reward)

    return optax.GradientTransformation(init, update)


def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: float = 100.0,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
) -> optax.GradientTransformation:
    """COCOB-Backprop: learning-rate-free SGD by coin betting (:func:`scale_by_cocob`).

    The gradient (plus ``weight_decay·w``) is multiplied by ``learning_rate`` (1.0: none;
    a schedule rescales the gradients the bets see) before the bet. Needs ``params``.

    References: Orabona & Tommasi, "Training Deep Networks without Learning Rates Through
    Coin Betting" (2017).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> opt = lossjax.cocob()
      >>> w = jnp.array([1.0, -1.0])
      >>> state = opt.init(w)
      >>> for _ in range(3):
      ...     u, state = opt.update(w, state, w)  # gradient of ½‖w‖²
      ...     w = optax.apply_updates(w, u)
      >>> w
      Array([ 0.97, -0.97], dtype=float32)
    """
    return optax.chain(*weight_decay_parts(weight_decay, mask),
                       scale_by_learning_rate(learning_rate, flip_sign=False),
                       scale_by_cocob(alpha, eps))


# --------------------------------------------------------------------------- Mechanic


class MechanicState(NamedTuple):
    """``base_optimizer_state``; ``count`` (int32); ``r``, ``m``, ``v``, ``s``: per-β
    reward, max ``|h|``, ``Σh²`` and scale, shape ``[num_betas]``; ``x0``: the reference
    point (the parameters at the first update). optax's fields."""

    base_optimizer_state: Any
    count: Array
    r: Array
    m: Array
    v: Array
    s: Array
    x0: Any


def mechanize(
    base_optimizer: optax.GradientTransformation,
    weight_decay: float = 1e-2,
    eps: float = 1e-8,
    s_init: float = 1e-6,
    num_betas: int = 6,
) -> optax.GradientTransformationExtraArgs:
    """Mechanic: learn the scale of ``base_optimizer``'s steps by coin betting.

    With ``Δ`` the sum of the base updates so far (recomputed as ``(x₀ − x)/Σs``), each step
    takes ``h = ⟨g + λ·Σs·‖g‖/(‖x‖ + eps)·x, Δ⟩`` and, for ``β_i = 1 − 10⁻ⁱ``
    (``i = 1 … num_betas``)::

        m_i ← max(β_i·m_i, |h| + eps),   v_i ← β_i²·v_i + h²,
        r_i ← β_i·r_i + clip(h, ±m_i)·s_i,
        s_i = (s_init/n·m_i + max(r_i, 0)) / (√v_i + eps),
        x_new = x₀ + Σs·(Δ + base update)

    ``weight_decay`` is Mechanic's own (``λ`` above), not the base optimizer's. Needs
    ``params``; extra keyword arguments of ``update`` go to ``base_optimizer``. An
    integer leaf (a ``float0`` gradient) is not trained: it adds nothing to the norms and
    to ``h``, and gets a zero update.

    References: Cutkosky, Defazio & Mehta, "Mechanic: A Learning Rate Tuner" (2023).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> opt = lossjax.mechanize(lossjax.sgd(1.0))
      >>> w = jnp.array([1.0, -1.0])
      >>> state = opt.init(w)
      >>> u, state = opt.update(w, state, w)
      >>> u  # a tiny first step: s starts at s_init (optax.contrib.mechanize: the same)
      Array([-1.0133e-06,  1.0133e-06], dtype=float32)
    """
    check_non_negative("weight_decay", weight_decay)
    check_non_negative("eps", eps)
    check_non_negative("s_init", s_init)
    if not isinstance(num_betas, int) or num_betas < 1:
        raise ValueError(f"num_betas must be an integer >= 1, got {num_betas!r}")
    base = optax.with_extra_args_support(base_optimizer)

    def sums_leaf(g, x):
        g32, x32 = upcast(g), upcast(x)
        return jnp.sum(g32 * g32), jnp.sum(x32 * x32)

    def h_leaf(g, x, x0, decay, s_sum):
        g32, x32 = upcast(g), upcast(x)
        g_decayed = g32 + decay * x32
        delta_prev = (upcast(x0) - x32) / (s_sum + eps)
        return (jnp.vdot(g_decayed, delta_prev),)

    def step_leaf(g, x, x0, base_update, s_sum, s_new):
        x32, x0_32 = upcast(x), upcast(x0)
        delta = (x0_32 - x32) / (s_sum + eps) - upcast(base_update)
        return (as_update(x0_32 - s_new * delta - x32, g),)

    sums = per_leaf(sums_leaf, 2)
    inner_products = per_leaf(h_leaf, 1)
    step = per_leaf(step_leaf, 1)

    def init(params):
        dtype = scalar_dtype(params)
        def zeros():
            return jnp.zeros([num_betas], dtype)

        return MechanicState(base.init(params), jnp.zeros([], jnp.int32), zeros(), zeros(),
                             zeros(), jnp.full([num_betas], s_init, dtype), _copy(params))

    def update(updates, state, params=None, **extra_args):
        _needs_params("mechanize", params)
        base_updates, base_state = base.update(updates, state.base_optimizer_state, params,
                                               **extra_args)
        grads = updates
        updates, params = without_float0(grads), as_array_leaves(params)
        x0 = jax.lax.cond(state.count == 0, lambda: params, lambda: state.x0)
        trained = trained_leaves(grads, params)
        dtype = state.s.dtype
        s_sum = jnp.sum(state.s)
        grad_sq, param_sq = sums((updates, trained))
        grad_norm = jnp.sqrt(_total(jax.tree.leaves(grad_sq))).astype(dtype)
        param_norm = jnp.sqrt(_total(jax.tree.leaves(param_sq))).astype(dtype)
        decay = weight_decay * s_sum * grad_norm / (param_norm + eps)
        (h_parts,) = inner_products((updates, trained, trained_leaves(grads, x0)), (decay, s_sum))
        h = _total(jax.tree.leaves(h_parts)).astype(dtype)
        betas = jnp.asarray([1.0 - 0.1 ** i for i in range(1, num_betas + 1)], dtype)
        clipped_h = jnp.clip(h, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas ** 2 * state.v + h ** 2
        r = betas * state.r + clipped_h * state.s
        wealth = (s_init / num_betas) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + eps)
        (out,) = step((grads, params, x0, base_updates), (s_sum, jnp.sum(s)))
        return out, MechanicState(base_state, increment_count(state.count), r, m, v, s, x0)

    return optax.GradientTransformationExtraArgs(init, update)

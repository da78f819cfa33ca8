"""Sophia: momentum divided by a clipped estimate of the Hessian's diagonal.

The diagonal comes from a separate transformation, by default Hutchinson's estimator
``diag(H) ≈ u ⊙ (H·u)`` with a Rademacher ``u``, which needs the objective: pass it to
``update`` as ``obj_fn=lambda params: loss(params, batch)`` (optax.contrib's convention;
any keyword argument of ``update`` reaches the estimator). The estimate is refreshed every
``update_interval`` steps, inside ``lax.cond``, so the other steps pay nothing for it.

Same arguments, defaults, numbers, random draws and state as ``optax.contrib.sophia`` and
``hutchinson_estimator_diag_hessian`` (0.2.8).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_array_leaves,
    as_scalar,
    as_update,
    bias_correction_factor,
    dtype_of,
    full_like,
    increment_count,
    is_float0,
    per_leaf,
    scalar_dtype,
    shape_of,
    upcast,
    weight_decay_parts,
)
from lossjax.optimizers._transforms import scale_by_learning_rate

Array = jax.Array


class HutchinsonState(NamedTuple):
    """``key``: the PRNG key of the next draw."""

    key: Array


def _lowest_float_dtype(params: Any) -> Any:
    """The narrowest real dtype of the inexact leaves (a complex leaf counts by its real
    part), float32 when there is none: the dtype of the random signs (optax's "lowest")."""
    dtypes = [jnp.finfo(dtype_of(p)).dtype for p in jax.tree.leaves(params)
              if jnp.issubdtype(dtype_of(p), jnp.inexact)]
    return min(dtypes, key=lambda d: jnp.finfo(d).bits) if dtypes else jnp.float32


def _signs(key: Array, p: Any, dtype: Any) -> Any:
    """Rademacher signs shaped like ``p`` in ``dtype`` (complex for a complex leaf); a
    ``float0`` tangent for an integer leaf, which is not differentiated."""
    if not jnp.issubdtype(dtype_of(p), jnp.inexact):
        return np.zeros(shape_of(p), jax.dtypes.float0)
    if jnp.issubdtype(dtype_of(p), jnp.complexfloating):
        dtype = jnp.promote_types(dtype, jnp.complex64)
    return jax.random.rademacher(key, shape_of(p), jnp.float32).astype(dtype)


def _times_signs(h: Array, u: Array) -> Array:
    """``h ⊙ u``; a float32 zero for an integer leaf (no curvature estimate)."""
    return jnp.zeros(u.shape, jnp.float32) if is_float0(u) else h * u


def hutchinson_estimator_diag_hessian(
    random_seed: Array | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Hutchinson's estimate of the Hessian's diagonal: ``u ⊙ (H·u)``, ``u`` Rademacher.

    The ``update`` ignores its ``updates`` and returns the estimate at ``params`` of
    ``obj_fn`` (a keyword argument: ``obj_fn(params) -> scalar``), one Hessian-vector
    product (forward over reverse mode). Unbiased, with high variance. ``random_seed`` is
    a PRNG key (default ``PRNGKey(0)``); one split per call, one key per leaf, as optax.

    References: Hutchinson, "A stochastic estimator of the trace of the influence matrix
    for Laplacian smoothing splines" (1990); Liu et al. (2023), Sophia-H.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.hutchinson_estimator_diag_hessian()
      >>> w = jnp.array([1.0, 2.0])
      >>> obj = lambda w: jnp.sum(jnp.array([3.0, 0.5]) * w ** 2)  # diagonal Hessian
      >>> tx.update(w, tx.init(w), w, obj_fn=obj)[0]  # exact for a diagonal H
      Array([6., 1.], dtype=float32)
    """

    def init(params):
        del params
        return HutchinsonState(jax.random.PRNGKey(0) if random_seed is None else random_seed)

    def update(updates, state, params=None, obj_fn=None, **extra_args):
        del updates, extra_args
        if params is None:
            raise ValueError("hutchinson_estimator_diag_hessian needs params: "
                             "call update(updates, state, params, obj_fn=...)")
        if obj_fn is None:
            raise ValueError("hutchinson_estimator_diag_hessian needs obj_fn=, a function "
                             "params -> scalar loss, passed to update")
        key, subkey = jax.random.split(state.key)
        treedef = jax.tree.structure(params)
        keys = jax.tree.unflatten(treedef, list(jax.random.split(subkey, treedef.num_leaves)))
        dtype = _lowest_float_dtype(params)
        params = as_array_leaves(params)
        signs = jax.tree.map(lambda p, k: _signs(k, p, dtype), params, keys)
        hvp = jax.jvp(jax.grad(obj_fn, allow_int=True), (params,), (signs,))[1]
        return jax.tree.map(_times_signs, hvp, signs), HutchinsonState(key)

    return optax.GradientTransformationExtraArgs(init, update)


class SophiaState(NamedTuple):
    """``count`` (int32); ``mu``: momentum; ``nu``: EMA of the Hessian diagonal;
    ``hessian_fn_state``: the estimator's state (optax's fields)."""

    count: Array
    mu: Any
    nu: Any
    hessian_fn_state: Any


def scale_by_sophia(
    b1: float = 0.965,
    b2: float = 0.99,
    eps: float = 1e-8,
    gamma: float = 0.01,
    clip_threshold: float | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: optax.GradientTransformation | None = None,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Sophia's direction: ``clip(m̂ / max(γ·h, eps), ±clip_threshold)``.

    ``m ← b1·m + (1 − b1)·g``, ``m̂ = m/(1 − b1ᵗ)``; ``h ← b2·h + (1 − b2)·ĥ`` every
    ``update_interval`` steps (at steps 0, k, 2k, ... after the direction is taken, so
    step ``t`` uses the estimate made before it), ``ĥ`` from ``hessian_diagonal_fn``
    (default :func:`hutchinson_estimator_diag_hessian`, which needs ``obj_fn=``).
    ``verbose`` prints the fraction of unclipped coordinates every
    ``print_win_rate_every_n_steps`` steps (the authors aim for 0.1–0.5).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_sophia()
      >>> w = jnp.array([1.0, -1.0])
      >>> obj = lambda w: jnp.sum(w ** 2)
      >>> tx.update(2 * w, tx.init(w), w, obj_fn=obj)[0]  # h = 0 yet: clipped to ±1
      Array([ 1., -1.], dtype=float32)
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("gamma", gamma)
    if clip_threshold is not None:
        check_non_negative("clip_threshold", clip_threshold)
    if not isinstance(update_interval, int) or update_interval < 1:
        raise ValueError(f"update_interval must be an integer >= 1, got {update_interval!r}")
    estimator = optax.with_extra_args_support(
        hutchinson_estimator_diag_hessian() if hessian_diagonal_fn is None
        else hessian_diagonal_fn)

    def direction_leaf(g, m, h, correction):
        g32 = upcast(g)
        m32 = b1 * upcast(m) + (1.0 - b1) * g32
        dtype = m32.dtype
        u = (m32 / correction.astype(dtype)) / jnp.maximum(gamma * upcast(h),
                                                           as_scalar(eps, dtype))
        unclipped = jnp.zeros([], jnp.int32)
        if clip_threshold is not None:
            threshold = as_scalar(clip_threshold, dtype)
            unclipped = jnp.sum(jnp.abs(u) < threshold)
            u = jnp.clip(u, -threshold, threshold)
        return as_update(u, g), m32.astype(m.dtype), unclipped

    def moment_leaf(estimate, h):
        h32 = b2 * upcast(h) + (1.0 - b2) * upcast(estimate)
        return (h32.astype(h.dtype),)

    direction = per_leaf(direction_leaf, 3)
    moment = per_leaf(moment_leaf, 1)

    def init(params):
        return SophiaState(jnp.zeros([], jnp.int32),
                           jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params),
                           jax.tree.map(full_like, params), estimator.init(params))

    def update(updates, state, params=None, **hessian_fn_kwargs):
        if params is None:
            raise ValueError("sophia needs the parameters: call update(grads, state, params)")
        count = increment_count(state.count)
        correction = bias_correction_factor(b1, count, scalar_dtype(updates))
        out, mu, unclipped = direction((updates, state.mu, state.nu), (correction,))
        if verbose and clip_threshold is not None and print_win_rate_every_n_steps:
            win_rate = sum(jax.tree.leaves(unclipped)) / sum(
                x.size for x in jax.tree.leaves(updates))
            jax.lax.cond(count % print_win_rate_every_n_steps == 0,
                         lambda: jax.debug.print("Sophia optimizer win rate: {}", win_rate),
                         lambda: None)

        def refresh(hessian_state, nu):
            estimate, hessian_state = estimator.update(updates, hessian_state, params,
                                                       **hessian_fn_kwargs)
            return hessian_state, moment((estimate, nu))[0]

        hessian_state, nu = jax.lax.cond(state.count % update_interval == 0, refresh,
                                         lambda h, n: (h, n), state.hessian_fn_state, state.nu)
        return out, SophiaState(count, mu, nu, hessian_state)

    return optax.GradientTransformationExtraArgs(init, update)


def sophia(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.965,
    b2: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
    weight_decay_mask: Any | Callable[[Any], Any] | None = None,
    gamma: float = 0.01,
    clip_threshold: float | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: optax.GradientTransformation | None = None,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Sophia: ``w ← w − lr·(clip(m̂/max(γ·h, eps), ±ρ) + wd·w)`` (:func:`scale_by_sophia`).

    Call ``update(grads, state, params, obj_fn=lambda p: loss(p, batch))``: the default
    Hessian estimator (Sophia-H, :func:`hutchinson_estimator_diag_hessian`) needs the
    objective of the current batch. Under several devices, the estimate must be averaged
    across them (write your own ``hessian_diagonal_fn`` for that). ``hessian_diagonal_fn=
    None`` (optax's default is an instance built at import) gives a fresh Hutchinson
    estimator with ``PRNGKey(0)``, the same draws.

    References: Liu, Li, Hall, Liang & Ma, "Sophia: A Scalable Stochastic Second-order
    Optimizer for Language Model Pre-training" (2023).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> loss = lambda w: jnp.sum((w - 1.0) ** 2)
      >>> opt = lossjax.sophia(0.1, weight_decay=0.0)
      >>> w = jnp.zeros(2)
      >>> state = opt.init(w)
      >>> for _ in range(3):
      ...     u, state = opt.update(jax.grad(loss)(w), state, w, obj_fn=loss)
      ...     w = optax.apply_updates(w, u)
      >>> w
      Array([0.3, 0.3], dtype=float32)
    """
    return optax.chain(
        scale_by_sophia(b1, b2, eps, gamma, clip_threshold, update_interval,
                        hessian_diagonal_fn, mu_dtype, verbose, print_win_rate_every_n_steps),
        *weight_decay_parts(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate))

"""Regularizing gradient transformations, chainable with ``optax.chain``.

Each one reads the parameters, so ``update(updates, state, params)`` must receive them
(``optax.chain`` passes them on). Leaves the mask does not select pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._held import is_held_zero
from lossjax._mask import Mask, mask_flags, masked_map
from lossjax._validation import check_non_negative, concrete_value


def _map_selected(
    name: str, fn: Callable[[jax.Array, jax.Array], jax.Array], mask: Mask, updates: Any,
    params: Any,
) -> Any:
    """``fn(u, w)`` on the leaves ``mask`` selects (a function mask sees ``params``); a
    ``None`` in ``updates`` (no update for that sub-tree) stays ``None``, as in optax."""
    if params is None:
        raise ValueError(
            f"{name} needs the parameters: call update(updates, state, params) with params"
        )
    flags = mask_flags(mask, params)
    if not any(u is None for u in jax.tree.leaves(updates, is_leaf=lambda u: u is None)):
        return masked_map(fn, flags, updates, params)
    return jax.tree.map(
        lambda u, keep, w: u if u is None else masked_map(fn, keep, u, w),
        updates, flags, params, is_leaf=lambda u: u is None)


def add_decayed_weights(weight_decay: float = 0.0, mask: Mask = None
                        ) -> optax.GradientTransformation:
    """``u ← u + wd·w`` on the selected leaves.

    Where it sits decides what it is: before the optimizer's scaling (first in the chain) it
    is L2 regularisation, the gradient of ``wd·l2_penalty(params)``; after the scaling and
    before the learning rate (as in AdamW) it is decoupled weight decay. Integer leaves
    (and ``float0`` gradients) pass through: there is no weight to decay. A known
    ``wd = 0`` leaves the updates as they are without reading the parameters. Same
    signature, defaults and state as optax's (with a ``mask``, the state is
    ``optax.MaskedState(EmptyState())``, so chains that hold one restore optax's
    checkpoints).

    Args:
      weight_decay: ``wd >= 0`` (``ValueError`` otherwise, when built).
      mask: which leaves decay (see :func:`l1_penalty`); e.g. skip biases and norm scales
        with ``lambda p: jax.tree.map(lambda x: x.ndim > 1, p)``.

    References: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, 0.5])}
      >>> tx = lossjax.add_decayed_weights(0.1)
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> print(updates["w"])  # 0.5 + 0.1 · w
      [0.6 0.3]
    """
    check_non_negative("weight_decay", weight_decay)

    def step(u, w):
        # integer leaves (counters, indices; float0 gradients) are not weights to decay
        if u.dtype == jax.dtypes.float0:  # as the optimizers: a zero float32 update
            return jnp.zeros(u.shape, jnp.float32)
        if not jnp.issubdtype(jnp.result_type(w), jnp.inexact):
            return u
        if is_held_zero(weight_decay):
            # held by inject_hyperparams and given as 0: u + 0 (u, up to the sign of a zero)
            # while it still holds 0, no product by a parameter that could be inf
            return (u + weight_decay.term_once_changed(w, u.dtype)).astype(u.dtype)
        return (u + weight_decay * w).astype(u.dtype)

    value = concrete_value(weight_decay)
    skip = value is not None and value == 0

    def init(params):
        del params
        return optax.EmptyState() if mask is None else optax.MaskedState(optax.EmptyState())

    def update(updates, state, params=None):
        if skip:
            return updates, state
        return _map_selected("add_decayed_weights", step, mask, updates, params), state

    return optax.GradientTransformation(init, update)


def add_cautious_decayed_weights(weight_decay: float, *, mask: Mask = None
                                 ) -> optax.GradientTransformation:
    """Cautious weight decay: ``u ← u + wd·w·𝟙[u·w > 0]`` on the selected leaves.

    Placed where decoupled weight decay goes (after the optimizer's scaling, before the
    learning rate), it decays only the coordinates whose step already moves the weight
    towards 0 (the direction ``u`` and ``w`` agree in sign), so the decay never pushes
    against the optimizer's step. Integer leaves and ``float0`` gradients pass through.

    References: Chen et al., "Cautious Weight Decay" (2025), arXiv:2510.12402.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.add_cautious_decayed_weights(0.5)
      >>> w = jnp.array([1.0, 1.0])
      >>> tx.update(jnp.array([2.0, -2.0]), tx.init(w), w)[0]
      Array([ 2.5, -2. ], dtype=float32)
    """
    check_non_negative("weight_decay", weight_decay)

    def step(u, w):
        if u.dtype == jax.dtypes.float0:  # as the optimizers: a zero float32 update
            return jnp.zeros(u.shape, jnp.float32)
        if not jnp.issubdtype(jnp.result_type(w), jnp.inexact):
            return u
        agree = jnp.real(u * jnp.conj(w)) > 0
        return (u + jnp.where(agree, weight_decay * w, 0)).astype(u.dtype)

    def update(updates, state, params=None):
        return _map_selected("add_cautious_decayed_weights", step, mask, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def add_l1(strength: float, *, mask: Mask = None) -> optax.GradientTransformation:
    """L1 subgradient: ``u ← u + λ·sign(w)`` on the selected leaves (``sign(0) = 0``).

    First in a chain this is the gradient of ``λ·l1_penalty(params)``. Subgradient steps
    make weights oscillate around zero rather than land on it: for exact zeros use
    :func:`proximal_l1`. ``strength`` is ``λ >= 0`` (``ValueError`` otherwise).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, 0.5])}
      >>> tx = lossjax.add_l1(0.1)
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> print(updates["w"])  # 0.5 + 0.1 · sign(w)
      [0.6 0.4]
    """
    check_non_negative("strength", strength)

    def step(u, w):
        return (u + strength * jnp.sign(w)).astype(u.dtype)

    def update(updates, state, params=None):
        return _map_selected("add_l1", step, mask, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class ProximalL1State(NamedTuple):
    """``count``: updates applied so far (int32), the step a schedule is evaluated at."""

    count: jax.Array


def soft_threshold(x: jax.Array, threshold: jax.Array | float) -> jax.Array:
    """``sign(x)·max(|x| − t, 0)``: the proximal operator of ``t·|x|``; exact 0 where
    ``|x| <= t``. Shape and dtype of ``x``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> print(lossjax.soft_threshold(jnp.array([-1.5, 0.2, 0.7]), 0.5))
      [-1.   0.   0.2]
    """
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0).astype(x.dtype)


def proximal_l1(
    strength: float | Callable[[jax.Array], jax.Array], *, mask: Mask = None
) -> optax.GradientTransformation:
    """Proximal L1 step (ISTA): soft-threshold the parameters the update would produce.

    Place it **last** in a chain, after the learning rate, so that the incoming ``u`` is the
    full step. It returns the update that moves ``w`` to
    ``sign(w + u)·max(|w + u| − s, 0)``: weights that would end within ``s`` of zero land
    exactly on zero. With ``sgd(lr)`` before it, this is ISTA for
    ``loss(w) + λ·Σ|w|`` when ``s = lr·λ``.

    Args:
      strength: ``s``, the threshold per step (learning rate × λ), ``>= 0`` (``ValueError``
        otherwise, when built), or a schedule ``step -> s`` evaluated at the state's count
        (0 for the first update), e.g. to follow a learning-rate schedule.
      mask: which leaves are thresholded (see :func:`l1_penalty`).

    The state is :class:`ProximalL1State` (a step counter, kept for a constant ``s`` too so
    the state's structure does not depend on the kind of ``strength``).

    References: Daubechies, Defrise & De Mol, "An iterative thresholding algorithm for linear
    inverse problems with a sparsity constraint" (2004); Beck & Teboulle, "A Fast Iterative
    Shrinkage-Thresholding Algorithm" (2009).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> params = {"w": jnp.array([0.05, -1.0, 2.0])}
      >>> grads = {"w": jnp.array([0.0, 0.0, 1.0])}
      >>> tx = optax.chain(lossjax.sgd(0.1), lossjax.proximal_l1(0.1))  # lr · λ = 0.1
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> print(optax.apply_updates(params, updates)["w"])  # 0.05 lands exactly on 0
      [ 0.  -0.9  1.8]
    """
    if not callable(strength):
        check_non_negative("strength", strength)

    def init(params):
        del params
        return ProximalL1State(jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        s = strength(state.count) if callable(strength) else strength

        def step(u, w):
            return (soft_threshold(w + u, s) - w).astype(u.dtype)

        updates = _map_selected("proximal_l1", step, mask, updates, params)
        # safe_int32_increment is typed ArrayLike; the state holds an Array.
        return updates, ProximalL1State(jnp.asarray(optax.safe_int32_increment(state.count)))

    return optax.GradientTransformation(init, update)

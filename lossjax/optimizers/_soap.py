"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner (Vyas et al., ICLR 2025).

Per weight (read as a tensor with axes ``k``), SOAP keeps Shampoo's factor statistics
``L_k ← β_s·L_k + (1 − β_s)·G_(k) G_(k)ᵀ`` and their eigenbases ``Q_k``, rotates the
gradient into that basis (``G' = G ×_k Q_kᵀ``), runs Adam there, and rotates the step back.
The bases are refreshed only every ``precondition_frequency`` steps, by one power iteration
and a QR decomposition started from the previous basis; Adam's moments are carried over
into the new basis. Everything else is elementwise Adam.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._mask import Mask
from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._kronecker import along_axis, axis_gram, batched, merged_shape
from lossjax.optimizers._machinery import (
    Array,
    ScalarOrSchedule,
    as_array_leaves,
    as_update,
    bias_correction_factor,
    compute_dtype,
    full_like,
    increment_count,
    scalar_dtype,
    upcast,
    weight_decay_parts,
    without_float0,
)
from lossjax.optimizers._transforms import scale_by_learning_rate


class ScaleBySoapState(NamedTuple):
    """``count``: updates so far (int32; the first one only builds the bases and moves
    nothing, as in the reference); ``mu``, ``nu``: Adam's moments in the eigenbasis, shaped
    like the parameters (float32 at least); ``stats``: per leaf a tuple of the factor
    statistics ``L_k`` (``[n_k, n_k]``, one per preconditioned axis, float32 at least);
    ``bases``: per leaf the matching eigenbases ``Q_k`` (columns by decreasing eigenvalue)."""

    count: Array
    mu: Any
    nu: Any
    stats: Any
    bases: Any


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int ``>= 1``; ``ValueError`` naming ``name`` otherwise."""
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return number


class _Layout(NamedTuple):
    """How SOAP reads a leaf: the tensor shape it works in and its preconditioned axes."""

    shape: tuple[int, ...]
    axes: tuple[int, ...]


def _layout(shape: tuple[int, ...], max_precond_dim: int, merge_dims: bool,
            precondition_1d: bool) -> _Layout:
    if len(shape) <= 1:
        work = tuple(shape) or (1,)
        precondition = len(shape) == 1 and precondition_1d and shape[0] <= max_precond_dim
        return _Layout(work, (0,) if precondition else ())
    work = merged_shape(shape, max_precond_dim) if merge_dims else tuple(shape)
    return _Layout(work, tuple(k for k, n in enumerate(work) if n <= max_precond_dim))


def _project(x: Array, bases: tuple[Array, ...], axes: tuple[int, ...]) -> Array:
    """Into the eigenbasis: ``x ×_k Q_kᵀ`` for every preconditioned axis."""
    for q, k in zip(bases, axes, strict=True):
        x = along_axis(x, q, k, transpose=True)
    return x


def _project_back(x: Array, bases: tuple[Array, ...], axes: tuple[int, ...]) -> Array:
    """Out of the eigenbasis: ``x ×_k Q_k``."""
    for q, k in zip(bases, axes, strict=True):
        x = along_axis(x, q, k)
    return x


def _first_bases(stats: Array) -> tuple[Array]:
    """Eigenvectors of each ``[b, n, n]`` statistic, by decreasing eigenvalue."""
    _, vectors = jnp.linalg.eigh(stats)
    return (jnp.flip(vectors, axis=-1),)


def _refreshed_bases(stats: Array, bases: Array) -> tuple[Array, Array]:
    """One power iteration and a QR from the previous bases (columns first re-sorted by
    the eigenvalue estimates ``diag(Qᵀ L Q)``, decreasing), and that sorting order."""
    estimates = jnp.einsum("bij,bik,bkj->bj", bases, stats, bases)
    order = jnp.argsort(-estimates, axis=-1)
    sorted_bases = jnp.take_along_axis(bases, order[:, None, :], axis=-1)
    new_bases, _ = jnp.linalg.qr(stats @ sorted_bases)
    return new_bases, order


def scale_by_soap(
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    precondition_1d: bool = False,
    merge_dims: bool = False,
    correct_bias: bool = True,
) -> optax.GradientTransformation:
    """SOAP's direction (before the learning rate): Adam in Shampoo's eigenbasis.

    For a leaf read as a tensor ``G`` with preconditioned axes ``k`` (``t`` counts the
    Adam steps, the first update being step 0, which moves nothing)::

        G' = G ×_k Q_kᵀ                                  (into the eigenbasis)
        m ← b1·m + (1 − b1)·G'      v ← b2·v + (1 − b2)·G'²
        u = (m/(√v + eps)) ×_k Q_k · √(1 − b2ᵗ)/(1 − b1ᵗ) (out again; bias correction
                                                           when ``correct_bias``)
        L_k ← β_s·L_k + (1 − β_s)·G_(k) G_(k)ᵀ            (β_s = ``shampoo_beta``)

    then, on step 0, ``Q_k`` = eigenvectors of ``L_k`` by decreasing eigenvalue (``eigh``);
    on every step ``t > 0`` with ``t % precondition_frequency == 0``, ``Q_k`` is re-sorted
    by ``diag(Q_kᵀ L_k Q_k)``, ``Q_k ← QR(L_k Q_k)`` (one power iteration), ``v`` is
    permuted by the same order and ``m`` is rotated into the new basis
    (``m ← m ×_k Q_old ×_k Q_newᵀ``). The ``eigh``/QR step runs under ``lax.cond`` only on
    those steps, batched across all same-sized factors of the model.

    Which axes are preconditioned: every axis of size ``<= max_precond_dim`` (a larger one,
    e.g. a vocabulary, keeps the identity there). A 1-D leaf (bias, norm scale) is plain
    Adam unless ``precondition_1d``. N-D weights: by default each axis has its own factor
    (a conv kernel ``[h, w, c_in, c_out]`` gets four: ``h×h``, ``w×w``, ``c_in×c_in``,
    ``c_out×c_out``; an attention kernel ``[d, heads, head_dim]`` three). With
    ``merge_dims`` consecutive axes are first merged while their product stays
    ``<= max_precond_dim`` (:func:`merged_shape`: the conv kernel becomes
    ``(h·w·c_in) × c_out``), as the reference's ``merge_dims``; the reference's
    ``data_format`` permutation for PyTorch's channels-first kernels is not needed for
    JAX's channels-last ones.

    Args:
      b1, b2: Adam's decay rates in ``[0, 1)`` (the reference's ``betas=(0.95, 0.95)``).
      shampoo_beta: decay of the factor statistics in ``[0, 1)``; ``None`` uses ``b2``.
      eps: added to ``√v``.
      precondition_frequency: steps between basis refreshes (an int ``>= 1``).
      max_precond_dim: the largest axis that gets a factor (an int ``>= 1``).
      precondition_1d: give 1-D leaves a factor too.
      merge_dims: merge consecutive axes first (see above).
      correct_bias: Adam's bias correction.

    State: Adam's two moments (``2·m·n`` numbers for an ``m × n`` matrix) plus, per
    preconditioned axis, two ``n × n`` matrices: ``2mn + 2m² + 2n²`` in all. Factors and
    moments are float32 (float64 for float64 parameters); the update has the parameter's
    dtype. Sharding: ``mu``, ``nu`` have the parameters' shapes and shard like them; the
    factors are replicated (each is small and every device needs all of it to rotate its
    shard): give the jitted step these as ``out_shardings``. Meshes with explicit axes
    (sharding in types) are not supported yet; use ``AxisType.Auto`` axes.

    Determinism: the first basis is the eigenbasis of one gradient's Gram matrix. A
    non-square weight's larger factor is then rank-deficient, and its null space has no
    preferred basis; near-equal eigenvalues make the basis sensitive too. Two runs that
    differ only in float rounding (another device count, another XLA version) can step
    differently there, as with the reference.

    Differences from the reference (``nikhilvyas/SOAP``, PyTorch): no ``1e-30·I`` added
    before ``eigh`` (a guard against PyTorch's ``eigh`` failing; XLA's does not raise);
    ``normalize_grads`` is not offered; ``m`` is rotated into a new basis only when the
    basis changes (the reference rotates out and in again on every step, which is the
    identity up to rounding).

    Against pytorch-optimizer's ``SOAP`` (a port of the reference) in float64, weight
    decay off, the parameters of a small MLP agree to 3e-14 over 120 steps once its
    float32 cast before the refresh's QR is removed; with that cast (the reference casts
    its ``eigh`` and QR inputs to float32 as well) they agree to 2e-7. lossjax computes
    the bases in float32 or the parameters' wider dtype.

    References: Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam"
    (ICLR 2025), https://arxiv.org/abs/2409.11321.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_soap(precondition_frequency=1)
      >>> params = jnp.zeros((2, 3))
      >>> state = tx.init(params)
      >>> g = jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
      >>> u, state = tx.update(g, state)   # the first update only builds the bases
      >>> u
      Array([[0., 0., 0.],
             [0., 0., 0.]], dtype=float32)
      >>> u, state = tx.update(g, state)   # Adam's first step in the eigenbasis: ±1 each
      >>> jnp.round(u, 4)
      Array([[1., 0., 0.],
             [0., 1., 0.]], dtype=float32)
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    if shampoo_beta is not None:
        check_in_range("shampoo_beta", shampoo_beta, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_positive_int("precondition_frequency", precondition_frequency)
    check_positive_int("max_precond_dim", max_precond_dim)
    beta_s = b2 if shampoo_beta is None else shampoo_beta

    def layout(p: Any) -> _Layout:
        return _layout(tuple(p.shape), max_precond_dim, merge_dims, precondition_1d)

    def init(params):
        params = as_array_leaves(params)
        def leaf_init(p):
            plan = layout(p)
            dtype = compute_dtype(p.dtype)
            sizes = [plan.shape[k] for k in plan.axes]
            return (full_like(p, dtype=dtype), full_like(p, dtype=dtype),
                    tuple(jnp.zeros((n, n), dtype) for n in sizes),
                    tuple(jnp.eye(n, dtype=dtype) for n in sizes))

        leaves, treedef = jax.tree.flatten(params)
        parts = [leaf_init(p) for p in leaves]
        mu, nu, stats, bases = (treedef.unflatten([part[i] for part in parts])
                                for i in range(4))
        return ScaleBySoapState(jnp.zeros([], jnp.int32), mu, nu, stats, bases)

    def adam_leaf(g, m, v, stats, bases, scale, first):
        plan = layout(g)
        g32 = upcast(g).reshape(plan.shape)
        rotated = _project(g32, bases, plan.axes)
        m32 = b1 * m.reshape(plan.shape) + (1.0 - b1) * rotated
        v32 = b2 * v.reshape(plan.shape) + (1.0 - b2) * (rotated * rotated)
        step = _project_back(m32 / (jnp.sqrt(v32) + eps), bases, plan.axes) * scale
        new_stats = tuple(beta_s * s + (1.0 - beta_s) * axis_gram(g32, k)
                          for s, k in zip(stats, plan.axes, strict=True))
        return (as_update(jnp.where(first, 0.0, step).reshape(g.shape), g),
                jnp.where(first, m, m32.reshape(m.shape)),
                jnp.where(first, v, v32.reshape(v.shape)), new_stats)

    adam_fn = jax.jit(adam_leaf)

    def first_branch(plans, stats, bases, mu, nu):
        flat = [s for leaf in stats for s in leaf]
        results = iter(batched(_first_bases, [flat]) if flat else [])
        new_bases = [tuple(next(results)[0] for _ in leaf) for leaf in stats]
        return new_bases, mu, nu

    def refresh_branch(plans, stats, bases, mu, nu):
        flat_stats = [s for leaf in stats for s in leaf]
        flat_bases = [q for leaf in bases for q in leaf]
        results = iter(batched(_refreshed_bases, [flat_stats, flat_bases])
                       if flat_stats else [])
        new_bases, new_mu, new_nu = [], [], []
        for plan, old, m, v in zip(plans, bases, mu, nu, strict=True):
            fresh = [next(results) for _ in old]
            qs = tuple(q for q, _ in fresh)
            m_work = _project(_project_back(m.reshape(plan.shape), old, plan.axes), qs,
                              plan.axes)
            v_work = v.reshape(plan.shape)
            for (_, order), k in zip(fresh, plan.axes, strict=True):
                v_work = jnp.take(v_work, order, axis=k)
            new_bases.append(qs)
            new_mu.append(m_work.reshape(m.shape))
            new_nu.append(v_work.reshape(v.shape))
        return new_bases, new_mu, new_nu

    def keep_branch(plans, stats, bases, mu, nu):
        return list(bases), list(mu), list(nu)

    def update(updates, state, params=None):
        updates, params = without_float0(as_array_leaves(updates)), as_array_leaves(params)
        del params
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        mu, nu = treedef.flatten_up_to(state.mu), treedef.flatten_up_to(state.nu)
        stats = treedef.flatten_up_to(state.stats)
        bases = treedef.flatten_up_to(state.bases)
        plans = [layout(g) for g in grads]
        dtype = scalar_dtype(updates)
        t = state.count
        first = t == 0
        if correct_bias:
            steps = jnp.maximum(t, 1)
            scale = (jnp.sqrt(bias_correction_factor(b2, steps, dtype))
                     / bias_correction_factor(b1, steps, dtype))
        else:
            scale = jnp.ones([], dtype)
        outs = [adam_fn(*row, scale, first)
                for row in zip(grads, mu, nu, stats, bases, strict=True)]
        out = [o[0] for o in outs]
        mu, nu, stats = ([o[i] for o in outs] for i in (1, 2, 3))
        refresh = (t > 0) & (t % precondition_frequency == 0)
        branch = jnp.where(first, 0, jnp.where(refresh, 1, 2))
        bases, mu, nu = jax.lax.switch(
            branch, [lambda *a: first_branch(plans, *a), lambda *a: refresh_branch(plans, *a),
                     lambda *a: keep_branch(plans, *a)],
            stats, bases, mu, nu)
        return treedef.unflatten(out), ScaleBySoapState(
            increment_count(t), treedef.unflatten(mu), treedef.unflatten(nu),
            treedef.unflatten(stats), treedef.unflatten(bases))

    return optax.GradientTransformation(init, update)


def soap(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    precondition_1d: bool = False,
    merge_dims: bool = False,
    correct_bias: bool = True,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """SOAP: ``w ← w − lr·(u + wd·w)`` with ``u`` from :func:`scale_by_soap`.

    Adam in the eigenbasis of Shampoo's Kronecker factors, refreshed every
    ``precondition_frequency`` steps; see :func:`scale_by_soap` for the update, the state
    (``2mn + 2m² + 2n²`` numbers for an ``m × n`` matrix, against Adam's ``2mn``), N-D
    weights and sharding. Defaults are the reference's (``betas=(0.95, 0.95)``,
    ``weight_decay=0.01``, ``precondition_frequency=10``); the reference's default
    learning rate is ``3e-3``.

    Args:
      learning_rate: a float or a schedule.
      b1: see :func:`scale_by_soap`, as are ``b2``, ``shampoo_beta``, ``eps``,
        ``precondition_frequency``, ``max_precond_dim``, ``precondition_1d``,
        ``merge_dims`` and ``correct_bias``.
      weight_decay: decoupled weight decay (times ``lr``).
      mask: which leaves decay (a pytree of bools, a prefix, or a function of the
        parameters).

    The first update builds the bases, and its step is weight decay alone (the reference
    skips that step entirely, decay included, so the projection never uses the gradient
    it rotates). Weight decay acts on the weights before the step (as optax's ``adamw``);
    the reference decays the weights after the step, a difference of ``lr²·wd·u`` per
    step.

    References: Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam"
    (ICLR 2025), https://arxiv.org/abs/2409.11321.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> opt = lossjax.soap(3e-3)
      >>> params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
      >>> state, step = opt.init(params), jax.jit(opt.update)   # one compiled step
      >>> loss = lambda p: jnp.sum((jnp.arange(4.0) @ p["w"] + p["b"] - 1.0) ** 2)
      >>> for _ in range(3):
      ...     updates, state = step(jax.grad(loss)(params), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> bool(loss(params) < 75.0)
      True
    """
    check_non_negative("weight_decay", weight_decay)
    direction = scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency,
                              max_precond_dim, precondition_1d, merge_dims, correct_bias)
    return optax.chain(direction, *weight_decay_parts(weight_decay, mask),
                       scale_by_learning_rate(learning_rate))

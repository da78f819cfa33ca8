"""PSGD Kron: Xi-Lin Li's preconditioned SGD with a Kronecker-factored preconditioner.

Per weight, one factor ``Q_k`` per axis (upper triangular, or diagonal for large axes),
the preconditioner being ``P = ⊗_k Q_kᵀ Q_k``. ``Q`` is fitted online, by a few cheap
multiplicative steps on random probes, so that ``P`` matches the inverse square root of
the gradients' covariance, without ever forming or decomposing it; the momentum is then
multiplied by ``P``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._mask import Mask
from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._kronecker import along_axis, serialized_after
from lossjax.optimizers._machinery import (
    Array,
    ScalarOrSchedule,
    as_array_leaves,
    as_update,
    bias_correction_factor,
    compute_dtype,
    full_like,
    increment_count,
    reject_complex,
    scalar_dtype,
    upcast,
    weight_decay_parts,
    without_float0,
)
from lossjax.optimizers._transforms import scale_by_learning_rate

MEMORY_SAVE_MODES = (None, "one_diag", "all_diag")
_DAMPING = float(np.sqrt(np.finfo(np.float32).eps))  # the reference's probe damping
_RMS_CAP = 1.1  # the preconditioned step's RMS is ~1; larger ones are scaled down to it
_BALANCE_PROBABILITY = 0.01


def kron_update_probability(
    max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001,
    flat_start: int = 500,
) -> Callable[[Array], Array]:
    """PSGD Kron's default preconditioner-update probability, a schedule of the step ``n``:
    ``clip(max_prob·exp(−decay·(n − flat_start)), min_prob, max_prob)`` (1 for the first
    500 steps, then down to 0.03 by step ~4000).

    References: psgd_jax's ``precond_update_prob_schedule``.

    Examples:
      >>> import lossjax
      >>> schedule = lossjax.kron_update_probability()
      >>> [round(float(schedule(n)), 3) for n in (0, 500, 1500, 5000)]
      [1.0, 1.0, 0.368, 0.03]
    """

    def schedule(n):
        return jnp.minimum(jnp.maximum(max_prob * jnp.exp(-decay * (n - flat_start)),
                                       min_prob), max_prob)

    return schedule


class ScaleByKronState(NamedTuple):
    """``count``: steps taken (int32); ``key``: the PRNG key the random probes and
    balancing draws fold the step into (``uint32[2]``); ``mu``: the momentum, shaped like
    the parameters (``()`` when ``b1 = 0``); ``preconditioners``: per leaf a tuple of
    ``Q_k`` (``[n, n]`` upper triangular or ``[n]`` diagonal); ``update_counter``: steps
    since the preconditioner was last updated (int32)."""

    count: Array
    key: Array
    mu: Any
    preconditioners: Any
    update_counter: Array


def _diagonal_axes(shape: tuple[int, ...], max_size_triangular: int,
                   min_ndim_triangular: int, memory_save_mode: str | None) -> tuple[bool, ...]:
    if memory_save_mode == "all_diag":
        forced = [True] * len(shape)
    elif memory_save_mode == "one_diag":
        forced = [False] * len(shape)
        if shape:
            forced[int(np.argsort(shape)[::-1][0])] = True
    else:
        forced = [False] * len(shape)
    return tuple(n == 1 or n > max_size_triangular or len(shape) < min_ndim_triangular or f
                 for n, f in zip(shape, forced, strict=True))


def _apply(x: Array, q: Array, axis: int, *, transpose: bool = False) -> Array:
    """``x ×_axis Q`` (``Qᵀ`` when ``transpose``); a diagonal ``q`` scales the axis."""
    if q.ndim < 2:
        return x * q.reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return along_axis(x, q, axis, transpose=transpose)


def _axis_outer(x: Array, axis: int, diagonal: bool) -> Array:
    """``Σ`` over every other axis of ``x_i x_j`` (``[n, n]``), or of ``x_i²`` (``[n]``)."""
    others = tuple(k for k in range(x.ndim) if k != axis)
    if diagonal:
        return jnp.sum(x * x, axis=others)
    return jnp.tensordot(x, x, axes=(others, others))


def _norm_lower_bound(a: Array) -> Array:
    """A cheap lower bound of ``‖A‖₂`` (within a factor ~√2): ``A`` applied twice to its
    largest row or column, normalised (Li's ``norm_lower_bound``)."""
    scale = jnp.max(jnp.abs(a))

    def bound(a):
        a = a / scale
        squares = a * a
        col_sums, row_sums = jnp.sum(squares, axis=0), jnp.sum(squares, axis=1)
        i, j = jnp.argmax(col_sums), jnp.argmax(row_sums)

        def from_column():
            x = a[:, i] @ a
            return scale * jnp.linalg.norm((x / jnp.linalg.norm(x)) @ a.T)

        def from_row():
            x = a @ a[j, :]
            return scale * jnp.linalg.norm(a.T @ (x / jnp.linalg.norm(x)))

        return jax.lax.cond(col_sums[i] > row_sums[j], from_column, from_row)

    return jax.lax.cond(scale > 0, bound, lambda a: scale, a)


def _inverse_transpose_along(x: Array, q: Array, axis: int) -> Array:
    """``x ×_axis Q⁻ᵀ`` for an upper-triangular ``Q`` (a triangular solve), or ``x/q``."""
    if q.ndim < 2:
        return x / q.reshape((-1,) + (1,) * (x.ndim - axis - 1))
    moved = jnp.moveaxis(x, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    solved = jax.lax.linalg.triangular_solve(q, flat, left_side=False, lower=False)
    return jnp.moveaxis(solved.reshape(moved.shape), -1, axis)


def _tiny(dtype: Any) -> Array:
    return jnp.asarray(jnp.finfo(dtype).tiny, dtype)


def _updated_factors(qs: tuple[Array, ...], g: Array, v: Array, lr: Any
                     ) -> tuple[Array, ...]:
    """One step of Li's fit of ``Q``: ``A = G ×_k Q_k``, ``B = V ×_k Q_k⁻ᵀ``, and per axis
    ``Q_k ← Q_k − lr·triu(A_(k)A_(k)ᵀ − B_(k)B_(k)ᵀ)·Q_k / ‖A_(k)A_(k)ᵀ + B_(k)B_(k)ᵀ‖``
    (the norm a cheap lower bound of the spectral norm; diagonal factors: elementwise, over
    the largest entry)."""
    if g.ndim == 0:
        a, b = qs[0] * g, v / qs[0]
        t1, t2 = a * a, b * b
        return (qs[0] - lr * (t1 - t2) * qs[0] / (jnp.abs(t1 + t2) + _tiny(g.dtype)),)
    a, b = g, v
    for k, q in enumerate(qs):
        a = _apply(a, q, k)
        b = _inverse_transpose_along(b, q, k)
    new = []
    for k, q in enumerate(qs):
        t1, t2 = _axis_outer(a, k, q.ndim < 2), _axis_outer(b, k, q.ndim < 2)
        if q.ndim < 2:
            step = lr * (t1 - t2) * q / (jnp.max(jnp.abs(t1 + t2)) + _tiny(q.dtype))
        else:
            step = lr * jnp.triu(t1 - t2) / (_norm_lower_bound(t1 + t2) + _tiny(q.dtype)) @ q
        new.append(q - step)
    return tuple(new)


def _normal_probes(keys: Array, inputs: list[Array]) -> list[Array]:
    """``normal(keys[i], inputs[i].shape)`` for each leaf, one vmapped draw per distinct
    shape (the same numbers, and far less code to compile than a draw per leaf)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, h in enumerate(inputs):
        groups.setdefault((h.shape, str(h.dtype)), []).append(i)
    probes: list[Any] = [None] * len(inputs)
    for members in groups.values():
        h = inputs[members[0]]
        draws = jax.vmap(lambda k, h=h: jax.random.normal(k, h.shape, h.dtype))(
            keys[jnp.asarray(members)])
        for j, i in enumerate(members):
            probes[i] = draws[j]
    return probes


def _balanced(qs: tuple[Array, ...]) -> tuple[Array, ...]:
    """Rescale the factors to equal largest entries (their product unchanged)."""
    if len(qs) < 2:
        return qs
    norms = jnp.stack([jnp.max(jnp.abs(q)) for q in qs]).astype(jnp.float32)
    target = jnp.prod(norms) ** (1.0 / len(qs))
    return tuple(q * (target / n).astype(q.dtype) for q, n in zip(qs, norms, strict=True))


def _preconditioned(qs: tuple[Array, ...], g: Array) -> Array:
    """``G ×_k Q_kᵀ Q_k`` for every axis."""
    if g.ndim == 0:
        return qs[0] * qs[0] * g
    for k, q in enumerate(qs):
        g = _apply(_apply(g, q, k), q, k, transpose=True)
    return g


def scale_by_kron(
    b1: float = 0.9,
    preconditioner_update_probability: ScalarOrSchedule | None = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: Literal["one_diag", "all_diag"] | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    seed: int = 5318008,
) -> optax.GradientTransformation:
    """PSGD Kron's direction (before the learning rate).

    Per leaf, with ``t`` the step (1 first)::

        m ← b1·m + (1 − b1)·g,   m̂ = m/(1 − b1ᵗ)
        every ~1/p steps: fit Q on  h = m̂ (or g) + √ε_f32·mean|h|·v,  v ~ N(0, I)
        u = m̂ ×_k Q_kᵀQ_k,       u ← u / max(1, rms(u)/1.1)

    The fit (:func:`_updated_factors`) takes one multiplicative step per factor towards
    ``P·E[hhᵀ]·P = I`` using the probe ``v``, so that ``P = ⊗ Q_kᵀQ_k`` approaches the
    inverse square root of the covariance of ``h``. With probability 0.01 per fit the
    factors are rebalanced to equal largest entries. The fit runs under ``lax.cond`` only
    on its steps: a counter reaching ``1/p`` (``p`` the update probability, a float or a
    schedule of the step) triggers it and resets (deterministic, as the reference).
    Same-shaped leaves are fitted together as one batched (vmapped) computation.

    Which factors are triangular: an axis gets a dense upper-triangular ``n × n`` factor
    unless ``n == 1``, ``n > max_size_triangular``, the leaf has fewer than
    ``min_ndim_triangular`` axes (so biases get diagonal factors) or ``memory_save_mode``
    says otherwise (``"one_diag"``: the largest axis diagonal; ``"all_diag"``: all). N-D
    weights: every axis has its own factor, no merging (a conv kernel
    ``[h, w, c_in, c_out]`` gets four, an attention kernel ``[d, heads, head_dim]``
    three); reshape or merge axes yourself for fewer, larger factors.

    Randomness: step ``t``'s draws come from ``fold_in(key, t − 1)`` with ``key`` in the
    state (``PRNGKey(seed)``), split exactly as psgd_jax splits its fixed key, so with
    ``seed=5318008`` (the default) the probes equal psgd_jax's.

    Args:
      b1: momentum in ``[0, 1)`` (0: none; no momentum buffer).
      preconditioner_update_probability: a float in ``(0, 1]`` or a schedule of the step;
        ``None``: :func:`kron_update_probability` (1 for 500 steps, then down to 0.03).
      max_size_triangular, min_ndim_triangular, memory_save_mode: see above.
      momentum_into_precond_update: fit ``Q`` on ``m̂`` (default) or on the raw gradient.
      preconditioner_lr: the fit's step size; preconditioner_init_scale: ``P``'s initial
        scale (each factor starts at ``scale^{1/ndim}·I``).
      mu_dtype: dtype of ``m`` (default: the parameters'); precond_dtype: dtype of the
        factors (default: the parameters', float32 at least).
      seed: the PRNG seed of the probes.

    State for an ``m × n`` matrix: ``mn`` (momentum) ``+ m² + n²`` (triangular factors;
    psgd_jax stores them dense). Sharding: ``mu`` shards like the parameters, the factors
    are replicated (give the jitted step these as ``out_shardings``; meshes
    with explicit axes are not supported yet).

    Differences from psgd_jax 0.2.9: the matmul precision options
    (``precond_update_precision``, ``precond_grads_precision``) and scanned layers are not
    offered (use ``jax.default_matmul_precision``); factors default to at least float32
    (psgd_jax: JAX's default float dtype); the key lives in the state.

    References: Li, "Preconditioned Stochastic Gradient Descent" (IEEE TNNLS 2018), and
    "Black Box Lie Group Preconditioners for SGD" (2022); psgd_jax (Evan Walters),
    https://github.com/evanatyourservice/psgd_jax.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_kron()
      >>> params = jnp.zeros((3, 2))
      >>> u, state = tx.update(jnp.ones((3, 2)), tx.init(params))
      >>> [q.shape for q in state.preconditioners]   # one triangular factor per axis
      [(3, 3), (2, 2)]
      >>> bool(jnp.sqrt(jnp.mean(u ** 2)) <= 1.1)   # the step's RMS is capped at 1.1
      True
    """
    check_in_range("b1", b1, 0.0, 1.0)
    if preconditioner_update_probability is not None and not callable(
            preconditioner_update_probability):
        check_in_range("preconditioner_update_probability",
                       preconditioner_update_probability, 0.0, 1.0, high_inclusive=True)
        if preconditioner_update_probability == 0:
            raise ValueError("preconditioner_update_probability must be > 0")
    for name, value in (("max_size_triangular", max_size_triangular),
                        ("min_ndim_triangular", min_ndim_triangular)):
        try:
            if operator.index(value) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        except TypeError:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}") from None
    if memory_save_mode not in MEMORY_SAVE_MODES:
        raise ValueError(f"memory_save_mode must be one of {MEMORY_SAVE_MODES}, got "
                         f"{memory_save_mode!r}")
    check_non_negative("preconditioner_lr", preconditioner_lr)
    check_non_negative("preconditioner_init_scale", preconditioner_init_scale)
    probability = (kron_update_probability() if preconditioner_update_probability is None
                   else preconditioner_update_probability)
    with_momentum = not (isinstance(b1, (int, float)) and b1 == 0)

    def diagonal(shape):
        return _diagonal_axes(tuple(shape), max_size_triangular, min_ndim_triangular,
                              memory_save_mode)

    def factor_dtype(p):
        return precond_dtype or compute_dtype(p.dtype)

    def init(params):
        reject_complex("kron", params)
        params = as_array_leaves(params)
        def leaf_init(p):
            dtype = factor_dtype(p)
            if p.ndim == 0:
                return (jnp.full((), preconditioner_init_scale, dtype),)
            scale = preconditioner_init_scale ** (1.0 / p.ndim)
            return tuple(scale * (jnp.ones(n, dtype) if d else jnp.eye(n, dtype=dtype))
                         for n, d in zip(p.shape, diagonal(p.shape), strict=True))

        mu = (jax.tree.map(lambda p: full_like(p, dtype=mu_dtype or p.dtype), params)
              if with_momentum else ())
        return ScaleByKronState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed), mu,
                                jax.tree.map(leaf_init, params),
                                jnp.zeros([], jnp.int32))

    def fit(key, qs_list, inputs):
        key, balance_key = jax.random.split(key)
        do_balance = jax.random.uniform(balance_key) < _BALANCE_PROBABILITY
        qs_list = jax.lax.cond(do_balance, lambda qs: [_balanced(q) for q in qs],
                               lambda qs: list(qs), qs_list)
        key, probe_key = jax.random.split(key)
        keys = jax.random.split(probe_key, len(inputs))
        probes = _normal_probes(keys, inputs)
        damped = [h + jnp.asarray(_DAMPING, h.dtype) * jnp.mean(jnp.abs(h)) * v
                  for h, v in zip(inputs, probes, strict=True)]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (h, qs) in enumerate(zip(damped, qs_list, strict=True)):
            key_ = (h.shape, str(h.dtype), tuple((q.shape, str(q.dtype)) for q in qs))
            groups.setdefault(key_, []).append(i)
        new: list[Any] = [None] * len(inputs)
        previous = None
        for members in groups.values():
            stack = lambda xs: jnp.stack(xs)  # noqa: E731
            qs = tuple(stack([qs_list[i][k] for i in members])
                       for k in range(len(qs_list[members[0]])))
            hs = stack([damped[i].astype(qs[0].dtype) for i in members])
            vs = stack([probes[i].astype(qs[0].dtype) for i in members])
            # one group's triangular solves after another's (see serialized_after)
            previous, (qs, hs, vs) = serialized_after(previous, (qs, hs, vs))
            out = jax.vmap(lambda q, h, v: _updated_factors(q, h, v, preconditioner_lr))(
                qs, hs, vs)
            previous = out
            for j, i in enumerate(members):
                new[i] = tuple(o[j].astype(qs_list[i][k].dtype) for k, o in enumerate(out))
        return new

    def update(updates, state, params=None):
        updates, params = without_float0(as_array_leaves(updates)), as_array_leaves(params)
        del params
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        qs_list = treedef.flatten_up_to(state.preconditioners)
        count = increment_count(state.count)
        key = jax.random.fold_in(state.key, state.count)
        p = probability(count) if callable(probability) else probability
        if with_momentum:
            mus = treedef.flatten_up_to(state.mu)
            new_mu = [b1 * upcast(m) + (1.0 - b1) * upcast(g)
                      for m, g in zip(mus, grads, strict=True)]
            correction = bias_correction_factor(b1, count, scalar_dtype(updates))
            momenta = [m / correction.astype(m.dtype) for m in new_mu]
        else:
            new_mu, momenta = [], [upcast(g) for g in grads]
        counter = increment_count(state.update_counter)
        do_update = counter >= 1.0 / p
        counter = jnp.where(do_update, 0, counter)
        key, fit_key = jax.random.split(key)
        inputs = momenta if momentum_into_precond_update else [upcast(g) for g in grads]
        qs_list = jax.lax.cond(do_update, lambda k, qs: fit(k, qs, inputs),
                               lambda k, qs: list(qs), fit_key, qs_list)
        out = []
        for g, qs, m in zip(grads, qs_list, momenta, strict=True):
            u = _preconditioned(qs, m.astype(qs[0].dtype))
            rms = jnp.sqrt(jnp.mean(u * u))
            out.append(as_update(u / jnp.maximum(1.0, rms / _RMS_CAP), g))
        mu = (treedef.unflatten([m.astype(old.dtype) for m, old in zip(
            new_mu, treedef.flatten_up_to(state.mu), strict=True)]) if with_momentum else ())
        return treedef.unflatten(out), ScaleByKronState(
            count, state.key, mu, treedef.unflatten(qs_list), counter)

    return optax.GradientTransformation(init, update)


def kron(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    weight_decay: float = 0.0,
    weight_decay_mask: Mask = None,
    preconditioner_update_probability: ScalarOrSchedule | None = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: Literal["one_diag", "all_diag"] | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    seed: int = 5318008,
) -> optax.GradientTransformation:
    """PSGD Kron: ``w ← w − lr·(u + wd·w)``, ``u`` from :func:`scale_by_kron` (see there
    for the update, the factors, N-D weights and the randomness).

    Arguments and defaults are psgd_jax's ``kron`` (its default learning rate is
    ``1e-3``; its step has an RMS of about 1, so use Adam-like learning rates).
    ``weight_decay_mask`` selects the leaves that decay.

    References: Li, "Preconditioned Stochastic Gradient Descent" (IEEE TNNLS 2018);
    psgd_jax, https://github.com/evanatyourservice/psgd_jax.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> opt = lossjax.kron(0.05)
      >>> params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
      >>> state, step = opt.init(params), jax.jit(opt.update)   # one compiled step
      >>> loss = lambda p: jnp.sum((jnp.arange(4.0) @ p["w"] + p["b"] - 1.0) ** 2)
      >>> for _ in range(5):
      ...     updates, state = step(jax.grad(loss)(params), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> bool(loss(params) < 75.0)   # from 75 at the start
      True
    """
    check_non_negative("weight_decay", weight_decay)
    direction = scale_by_kron(b1, preconditioner_update_probability, max_size_triangular,
                              min_ndim_triangular, memory_save_mode,
                              momentum_into_precond_update, preconditioner_lr,
                              preconditioner_init_scale, mu_dtype, precond_dtype, seed)
    return optax.chain(direction, *weight_decay_parts(weight_decay, weight_decay_mask),
                       scale_by_learning_rate(learning_rate))

"""Shampoo with grafting (Gupta et al. 2018; Anil et al. 2020's distributed Shampoo).

Per weight block, one statistic per tensor axis ``L_k ← β2·L_k + (1 − β2)·G_(k) G_(k)ᵀ``
and its inverse root ``P_k = (L_k + ε·I)^{−1/p}``; the preconditioned gradient
``G ×_k P_k`` is rescaled to the norm of a simpler optimizer's step (grafting) and fed to
heavy-ball momentum.
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._mask import Mask, mask_flags
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
    host_or_traced,
    increment_count,
    upcast,
    without_float0,
)
from lossjax.optimizers._transforms import scale_by_learning_rate

GRAFT_TYPES = ("sgd", "adagrad", "rmsprop_normalized", "adam")
_NORM_FLOOR = 1e-25  # the reference's guard in g/‖g‖ and the grafting ratio
_EIGENVALUE_FLOOR = 1e-6  # the reference's floor on the largest eigenvalue


class ScaleByShampooState(NamedTuple):
    """``count``: steps taken (int32); ``diagonal_statistics``: the grafting optimizer's
    second moment, shaped like the parameters (``()`` for ``"sgd"`` grafting);
    ``statistics``, ``preconditioners``: per leaf a tuple of ``[n, n]`` matrices, one per
    block and preconditioned axis (float32 at least); ``diagonal_momentum``,
    ``momentum``: the momenta of the grafted and of the Shampoo update, shaped like the
    parameters."""

    count: Array
    diagonal_statistics: Any
    statistics: Any
    preconditioners: Any
    diagonal_momentum: Any
    momentum: Any



def _new_statistic_weight(beta2: Any) -> Any:
    """The weight of a new statistic in ``beta2·s + w·new``: ``1 − beta2``, and 1 for
    ``beta2 = 1`` (a plain sum, as Adagrad); on the host for a known ``beta2``."""
    return host_or_traced(beta2, lambda b: 1.0 if b == 1.0 else 1.0 - b,
                          lambda b: jnp.where(b == 1.0, 1.0, 1.0 - b))

def _check_int(name: str, value: Any, low: int) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}") from None
    if number < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return number


class _Blocks(NamedTuple):
    """How Shampoo reads a leaf: the merged shape, the block boundaries along each of its
    axes, and whether it is preconditioned at all."""

    shape: tuple[int, ...]
    splits: tuple[tuple[int, ...], ...]
    preconditioned: bool

    def block_shapes(self) -> list[tuple[int, ...]]:
        sizes = [np.diff((0, *cuts, n)).tolist()
                 for cuts, n in zip(self.splits, self.shape, strict=True)]
        return [tuple(s) for s in itertools.product(*sizes)]

    def partition(self, x: Array) -> list[Array]:
        """The blocks of ``x`` (already in the merged shape), in row-major block order."""
        parts = [x]
        for axis, cuts in enumerate(self.splits):
            if cuts:
                parts = [piece for part in parts
                         for piece in jnp.split(part, list(cuts), axis=axis)]
        return parts

    def merge(self, parts: list[Array]) -> Array:
        for axis in reversed(range(len(self.splits))):
            cuts = self.splits[axis]
            if cuts:
                n = len(cuts) + 1
                parts = [jnp.concatenate(parts[i:i + n], axis=axis)
                         for i in range(0, len(parts), n)]
        return parts[0]


def _blocks(shape: tuple[int, ...], block_size: int, merge_block: int | None,
            skip_gt: int) -> _Blocks:
    if len(shape) == 0:
        return _Blocks((), (), False)
    work = tuple(merged_shape(shape, merge_block)) if merge_block else tuple(shape)
    splits = tuple(tuple(range(block_size, n, block_size)) if 0 < block_size < n else ()
                   for n in work)
    return _Blocks(work, splits, not any(n > skip_gt for n in shape))


def _inverse_roots(stats: Array, exponents: Array, matrix_epsilon: Any,
                   relative: bool) -> tuple[Array]:
    """``(L + ε·I)^{−1/p}`` for each ``[b, n, n]`` statistic by ``eigh``, with ``ε`` times
    the largest eigenvalue when ``relative``; a factor whose result is not finite keeps
    the identity's place to the caller (see ``update``)."""
    values, vectors = jnp.linalg.eigh(stats)
    top = values[:, -1] if relative else jnp.ones(values.shape[:1], values.dtype)
    ridge = matrix_epsilon * jnp.maximum(top, _EIGENVALUE_FLOOR)
    shifted = values + ridge[:, None]
    powers = jnp.where(shifted == 0, 0.0,
                       jnp.maximum(shifted, ridge[:, None]) ** (-1.0 / exponents[:, None]))
    return ((vectors * powers[:, None, :]) @ jnp.swapaxes(vectors, -1, -2),)


def scale_by_shampoo(
    block_size: int = 128,
    beta1: float = 0.9,
    beta2: float = 0.999,
    diagonal_epsilon: float = 1e-10,
    matrix_epsilon: float = 1e-6,
    weight_decay: float = 0.0,
    start_preconditioning_step: int = 5,
    preconditioning_compute_steps: int = 1,
    graft_type: Literal["sgd", "adagrad", "rmsprop_normalized", "adam"] = "sgd",
    nesterov: bool = True,
    exponent_override: int = 0,
    moving_average_for_momentum: bool = False,
    skip_preconditioning_dim_size_gt: int = 4096,
    relative_matrix_epsilon: bool = True,
    merge_small_dims_block_size: int = 4096,
    best_effort_shape_interpretation: bool = True,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """Shampoo's direction, grafted and with momentum (before the learning rate).

    Per leaf ``G`` (read in its merged shape, cut into blocks of at most ``block_size``
    along each axis), with ``t`` the step (0 first)::

        L_k ← β2·L_k + (1 − β2)·B_(k) B_(k)ᵀ         every block B, every axis k
        P_k = (L_k + ε·λmax(L_k)·I)^{−1/p}           when t % preconditioning_compute_steps == 0
        S = (B ×_k P_k, blocks reassembled)          p = 2·rank (``exponent_override``)
        D = graft(G)                                 the grafting optimizer's step
        S ← S·‖D‖/‖S‖                                per leaf
        M_s ← β1·M_s + w·(S + wd·W)      M_d ← β1·M_d + w·(D + wd·W)
        u = M_s if t >= start_preconditioning_step else M_d   (Nesterov: w·(·) + β1·M)

    with ``w = 1`` (``1 − β1`` with ``moving_average_for_momentum``) and ``L_k`` starting at
    ``matrix_epsilon·I``. Grafting (``graft_type``): ``"sgd"`` ``D = G``; ``"adagrad"``
    ``v ← v + G²``, ``D = G/(√v + δ)``; ``"rmsprop_normalized"`` ``Ĝ = G/‖G‖``,
    ``v ← β2·v + (1 − β2)·Ĝ²``, ``D = Ĝ/(√v + δ)``; ``"adam"`` ``v ← β2·v + (1 − β2)·G²``,
    ``D = G/(√(v/(1 − β2^{t+1})) + δ)`` (the first moment is the momentum above), with
    ``δ = diagonal_epsilon``.

    Inverse roots: by ``eigh`` of each statistic (``V diag((λ + ε)^{−1/p}) Vᵀ``), batched
    across all statistics of one size, under ``lax.cond`` only on the steps that compute
    them. ``eigh`` rather than the reference's default coupled Newton iteration: it is exact
    up to rounding in a fixed cost, has no convergence threshold to tune and needs no
    error check, and ``λmax`` for the relative ε comes with it; the reference offers the
    same with ``eigh=True``. A factor whose root is not finite keeps its previous value.

    N-D weights: with ``best_effort_shape_interpretation`` consecutive axes are merged while
    their product stays ``<= merge_small_dims_block_size`` (a conv kernel
    ``[3, 3, 64, 128]`` becomes ``(576, 128)``, an attention kernel ``[512, 8, 64]``
    ``(4096, 64)``), then each axis gets one statistic per block. A leaf with an axis over
    ``skip_preconditioning_dim_size_gt`` (e.g. an embedding table) or a scalar takes the
    grafted step alone. 1-D leaves are preconditioned (one ``n × n`` statistic, as the
    reference), and so is a small matrix whose axes merge into one (a ``[16, 16]`` weight
    becomes one 256-vector with a ``256 × 256`` statistic: full-matrix AdaGrad).

    State for an ``m × n`` matrix (one block): momenta ``2mn``, statistics and
    preconditioners ``2m² + 2n²``, plus ``mn`` for a grafting second moment. Sharding:
    the parameter-shaped leaves shard like the parameters; statistics and preconditioners
    are replicated (give the jitted step these as ``out_shardings``; meshes
    with explicit axes are not supported yet).

    Differences from ``distributed_shampoo`` (google-research/precondition): the largest
    eigenvalue for the relative ε is ``eigh``'s, not a power iteration's estimate; the
    inverse-root failure check is "not finite" (the reference also rejects an absolute
    eigen-decomposition error above 0.1); ``"adam"`` grafting is not in that file (it is
    Meta's distributed Shampoo's Adam grafting: bias-corrected RMSProp, momentum shared);
    quantisation, frequent directions, low-rank and one-sided variants, pmap/pjit
    sharding modes and ``statistics_compute_steps`` are not offered.

    Against pytorch-optimizer's ``ScalableShampoo`` in float64 (SGD or AdaGrad grafting,
    its exact ``use_svd=True`` roots, the ridge set to 0 on both sides) a small MLP's
    weights agree to 2e-12 over 120 steps. It differs from the reference, and so from
    lossjax, in that: its SVD roots add no ``ε·λmax`` ridge (its default Schur–Newton
    roots stop at a residual of 1e-3); it counts steps from 1, so roots come at steps
    ``k, 2k, …`` instead of ``0, k, 2k, …``; its shape merging turns a shape that fits in
    one axis into ``[1]`` (no preconditioner; the reference keeps the merged axis) and,
    unmerged, it leaves 1-D parameters to the grafted step; its RMSProp grafting has no
    counterpart here.

    Args:
      block_size: the largest block along an axis (``0``: no blocking).
      beta1: momentum; beta2: decay of the statistics (and of grafting's second moment);
        ``beta2 = 1`` sums them (AdaGrad-like).
      diagonal_epsilon: grafting's ``δ``; matrix_epsilon: the ridge ``ε``.
      weight_decay: added to both updates before the momentum (coupled, as the
        reference); mask: which leaves decay.
      start_preconditioning_step: steps before which the grafted update is used alone.
      preconditioning_compute_steps: steps between inverse-root computations.
      graft_type: see above, as are ``nesterov``, ``exponent_override``,
        ``moving_average_for_momentum``, ``skip_preconditioning_dim_size_gt``,
        ``relative_matrix_epsilon``, ``merge_small_dims_block_size`` and
        ``best_effort_shape_interpretation``.

    References: Gupta, Koren & Singer, "Shampoo: Preconditioned Stochastic Tensor
    Optimization" (ICML 2018); Anil et al., "Scalable Second Order Optimization for Deep
    Learning" (2020), https://arxiv.org/abs/2002.09018.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_shampoo(start_preconditioning_step=0, nesterov=False,
      ...                               best_effort_shape_interpretation=False)
      >>> g = jnp.array([[3.0, 0.0], [0.0, 1.0]])
      >>> u, _ = tx.update(g, tx.init(g))
      >>> jnp.round(u / jnp.linalg.norm(u), 3)   # (G Gᵀ)^{-1/4} G (GᵀG)^{-1/4}: whitened
      Array([[0.707, 0.   ],
             [0.   , 0.707]], dtype=float32)
    """
    check_in_range("beta1", beta1, 0.0, 1.0)
    check_in_range("beta2", beta2, 0.0, 1.0, high_inclusive=True)
    check_non_negative("diagonal_epsilon", diagonal_epsilon)
    check_non_negative("matrix_epsilon", matrix_epsilon)
    check_non_negative("weight_decay", weight_decay)
    _check_int("block_size", block_size, 0)
    _check_int("start_preconditioning_step", start_preconditioning_step, 0)
    _check_int("preconditioning_compute_steps", preconditioning_compute_steps, 1)
    _check_int("exponent_override", exponent_override, 0)
    _check_int("skip_preconditioning_dim_size_gt", skip_preconditioning_dim_size_gt, 1)
    _check_int("merge_small_dims_block_size", merge_small_dims_block_size, 1)
    if graft_type not in GRAFT_TYPES:
        raise ValueError(f"graft_type must be one of {GRAFT_TYPES}, got {graft_type!r}")
    momentum_weight = (1.0 - beta1) if moving_average_for_momentum else 1.0
    merge = merge_small_dims_block_size if best_effort_shape_interpretation else None
    diagonal = graft_type != "sgd"

    def layout(p: Any) -> _Blocks:
        return _blocks(tuple(p.shape), block_size, merge, skip_preconditioning_dim_size_gt)

    def exponent(plan: _Blocks) -> int:
        return exponent_override or 2 * len(plan.shape)

    def init(params):
        params = as_array_leaves(params)
        def leaf_init(p):
            plan = layout(p)
            dtype = compute_dtype(p.dtype)
            shapes = [n for b in plan.block_shapes() for n in b] if plan.preconditioned else []
            return (full_like(p, dtype=dtype) if diagonal else (),
                    tuple(matrix_epsilon * jnp.eye(n, dtype=dtype) for n in shapes),
                    tuple(jnp.eye(n, dtype=dtype) for n in shapes),
                    full_like(p, dtype=dtype), full_like(p, dtype=dtype))

        leaves, treedef = jax.tree.flatten(params)
        parts = [leaf_init(p) for p in leaves]
        fields = (treedef.unflatten([part[i] for part in parts]) for i in range(5))
        return ScaleByShampooState(jnp.zeros([], jnp.int32), *fields)

    def statistics_leaf(g, stats):
        plan = layout(g)
        if not plan.preconditioned:
            return (stats,)
        blocks = plan.partition(upcast(g).reshape(plan.shape))
        axes = range(len(plan.shape))
        grams = [axis_gram(b, k) for b in blocks for k in axes]
        w2 = _new_statistic_weight(beta2)
        return (tuple(beta2 * s + w2 * gram for s, gram in zip(stats, grams, strict=True)),)

    def graft(g32, v, t):
        if graft_type == "sgd":
            return g32, v
        if graft_type == "adagrad":
            v = v + g32 * g32
            return g32 / (jnp.sqrt(v) + diagonal_epsilon), v
        w2 = _new_statistic_weight(beta2)
        if graft_type == "rmsprop_normalized":
            g32 = g32 / (jnp.linalg.norm(g32) + _NORM_FLOOR)
            v = beta2 * v + w2 * (g32 * g32)
            return g32 / (jnp.sqrt(v) + diagonal_epsilon), v
        v = beta2 * v + w2 * (g32 * g32)
        correction = bias_correction_factor(beta2, increment_count(t), v.dtype)
        return g32 / (jnp.sqrt(v / correction) + diagonal_epsilon), v

    def direction_leaf(g, w, v, preconditioners, m_d, m_s, t, decay):
        plan = layout(g)
        g32 = upcast(g)
        grafted, v = graft(g32, v, t)
        if plan.preconditioned:
            blocks = plan.partition(g32.reshape(plan.shape))
            rank = len(plan.shape)
            out = []
            for i, block in enumerate(blocks):
                for k in range(rank):
                    block = along_axis(block, preconditioners[i * rank + k], k, transpose=True)
                out.append(block)
            shampoo = plan.merge(out).reshape(g.shape)
            shampoo = shampoo * (jnp.linalg.norm(grafted)
                                 / (jnp.linalg.norm(shampoo) + _NORM_FLOOR))
        else:
            shampoo = grafted
        if decay:
            shampoo = shampoo + weight_decay * upcast(w)
            grafted = grafted + weight_decay * upcast(w)
        new_m_s = beta1 * m_s + momentum_weight * shampoo
        new_m_d = beta1 * m_d + momentum_weight * grafted
        run = t >= start_preconditioning_step
        momentum = jnp.where(run, new_m_s, new_m_d)
        step = jnp.where(run, shampoo, grafted)
        if nesterov:
            momentum = momentum_weight * step + beta1 * momentum
        return as_update(momentum, g), v, new_m_d, new_m_s

    statistics_fn = jax.jit(statistics_leaf)
    direction_fns = {d: jax.jit(functools.partial(direction_leaf, decay=d))
                     for d in (False, True)}

    def compute_roots(plans, stats):
        flat, exps = [], []
        for plan, leaf in zip(plans, stats, strict=True):
            flat.extend(leaf)
            exps.extend([jnp.asarray(exponent(plan), leaf[0].dtype)] * len(leaf) if leaf else [])
        if not flat:
            return [()] * len(stats)
        roots = iter(batched(lambda s, p: _inverse_roots(s, p, matrix_epsilon,
                                                          relative_matrix_epsilon),
                             [flat, exps]))
        return [tuple(next(roots)[0] for _ in leaf) for leaf in stats]

    def update(updates, state, params=None):
        updates, params = without_float0(as_array_leaves(updates)), as_array_leaves(params)
        if params is None and weight_decay:
            raise ValueError("scale_by_shampoo with weight_decay needs the parameters: "
                             "call update(grads, state, params)")
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        weights = treedef.flatten_up_to(params) if params is not None else grads
        decays = (treedef.flatten_up_to(mask_flags(mask, params)) if params is not None
                  else [False] * len(grads))
        fields = [treedef.flatten_up_to(f) for f in state[1:]]
        v, stats, old_roots, m_d, m_s = fields
        plans = [layout(g) for g in grads]
        t = state.count
        stats = [statistics_fn(g, s)[0] for g, s in zip(grads, stats, strict=True)]
        compute = t % preconditioning_compute_steps == 0
        roots = jax.lax.cond(compute, lambda s, old: _keep_finite(compute_roots(plans, s), old),
                             lambda s, old: old, stats, old_roots)
        decay_on = [bool(weight_decay) and d for d in decays]
        outs = [direction_fns[d](g, w, vi, r, md, ms, t)
                for g, w, vi, r, md, ms, d in zip(grads, weights, v, roots, m_d, m_s,
                                                  decay_on, strict=True)]
        out, v, m_d, m_s = ([o[i] for o in outs] for i in range(4))
        return treedef.unflatten(out), ScaleByShampooState(
            increment_count(t), *(treedef.unflatten(f) for f in (v, stats, roots, m_d, m_s)))

    return optax.GradientTransformation(init, update)


def _keep_finite(new: list[tuple[Array, ...]], old: list[tuple[Array, ...]]
                 ) -> list[tuple[Array, ...]]:
    return [tuple(jnp.where(jnp.all(jnp.isfinite(n)), n, o) for n, o in
                  zip(new_leaf, old_leaf, strict=True))
            for new_leaf, old_leaf in zip(new, old, strict=True)]


def shampoo(
    learning_rate: ScalarOrSchedule,
    block_size: int = 128,
    beta1: float = 0.9,
    beta2: float = 0.999,
    diagonal_epsilon: float = 1e-10,
    matrix_epsilon: float = 1e-6,
    weight_decay: float = 0.0,
    start_preconditioning_step: int = 5,
    preconditioning_compute_steps: int = 1,
    graft_type: Literal["sgd", "adagrad", "rmsprop_normalized", "adam"] = "sgd",
    nesterov: bool = True,
    exponent_override: int = 0,
    moving_average_for_momentum: bool = False,
    skip_preconditioning_dim_size_gt: int = 4096,
    relative_matrix_epsilon: bool = True,
    merge_small_dims_block_size: int = 4096,
    best_effort_shape_interpretation: bool = True,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """Distributed Shampoo with grafting: ``w ← w − lr·u``, ``u`` from
    :func:`scale_by_shampoo` (see there for the update, the state and N-D weights).

    Defaults are the reference's (``distributed_shampoo``): ``graft_type="sgd"`` gives the
    step SGD's scale, and the heavy-ball momentum (``w = 1``) multiplies it by up to
    ``1/(1 − β1) = 10``, so learning rates are SGD-with-momentum's (about 0.01 to 0.3 for
    small networks); the inverse roots are recomputed every step, which costs an ``eigh``
    per statistic per step. For Adam's learning rates (about 1e-3) and an amortised cost,
    use ``graft_type="adam", moving_average_for_momentum=True,
    preconditioning_compute_steps=10`` (close to the AlgoPerf-winning configuration of
    Meta's distributed Shampoo). A small matrix merges into one vector under the default
    ``best_effort_shape_interpretation`` (a ``32 × 32`` weight is a 1024-vector cut into
    ``block_size`` blocks, each with a ``block_size²`` statistic and root, as in the
    reference): set it to ``False`` to keep one statistic per axis. On a small Transformer
    whose weights are all under 4096 numbers that is the difference between 89x and 9x the
    parameters' bytes in state.

    References: Anil et al., "Scalable Second Order Optimization for Deep Learning"
    (2020), https://arxiv.org/abs/2002.09018.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> opt = lossjax.shampoo(0.1, graft_type="adagrad")
      >>> params = {"w": jnp.ones((4, 3))}
      >>> state, step = opt.init(params), jax.jit(opt.update)   # one compiled step
      >>> loss = lambda p: jnp.sum((jnp.arange(4.0) @ p["w"] - 1.0) ** 2)
      >>> for _ in range(10):
      ...     updates, state = step(jax.grad(loss)(params), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> bool(loss(params) < 75.0)   # from 75 at the start
      True
    """
    direction = scale_by_shampoo(
        block_size, beta1, beta2, diagonal_epsilon, matrix_epsilon, weight_decay,
        start_preconditioning_step, preconditioning_compute_steps, graft_type, nesterov,
        exponent_override, moving_average_for_momentum, skip_preconditioning_dim_size_gt,
        relative_matrix_epsilon, merge_small_dims_block_size,
        best_effort_shape_interpretation, mask)
    return optax.chain(direction, scale_by_learning_rate(learning_rate))


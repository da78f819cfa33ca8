"""GaLore: run an optimizer on low-rank projections of the gradients of weight matrices.

For a gradient ``G`` (``m × n``, ``m >= n``) GaLore keeps a projector ``P`` (``m × r``,
the top ``r`` left singular vectors of ``G``, recomputed every ``update_proj_gap`` steps),
hands the base optimizer ``R = Pᵀ·G`` (``r × n``) and maps its update back, ``scale·P·U``
(for ``m < n`` it projects from the right, ``G·Q``). The base optimizer's state is
``r × n`` per matrix instead of ``m × n``: Adam's moments shrink by ``r/m``. Other
leaves (vectors, or those ``weight_dimension_numbers`` leaves out) get the base optimizer
on the full gradient. Same arguments, numbers and state as ``optax.contrib.galore``
(0.2.8): the projector comes from ``jnp.linalg.svd`` in float32, as optax's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_array_leaves,
    increment_count,
    reject_complex,
    shape_of,
    weight_decay_parts,
)
from lossjax.optimizers._transforms import scale_by_adam, scale_by_learning_rate

Array = jax.Array


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the rows (``reduction_axis``) and the columns
    (``output_axis``) of the matrix GaLore projects (optax's)."""

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """``count`` (int32); ``base_optimizer_state``: the base optimizer's, on the projected
    gradients; ``projector``: ``P`` or ``Q`` per projected leaf, a ``(0, 0)`` array for the
    others (optax's fields)."""

    count: Array
    base_optimizer_state: Any
    projector: Any


def _is_dims(x: Any) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _axes(axis: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    return (axis % ndim,) if isinstance(axis, int) else tuple(a % ndim for a in axis)


def _as_matrix(x: Any, dims: GaLoreDimensionNumbers):
    """``(to_matrix, from_matrix, (m, n))`` for leaf ``x`` under ``dims``."""
    if len(x.shape) < 2:
        raise ValueError(f"galore projects leaves of rank >= 2, got shape {x.shape}")
    rows, cols = _axes(dims.reduction_axis, len(x.shape)), _axes(dims.output_axis, len(x.shape))
    if set(rows) & set(cols) or len(set(rows) | set(cols)) != len(x.shape):
        raise ValueError(f"weight_dimension_numbers {dims} must split the axes of a leaf of "
                         f"shape {x.shape} into rows and columns")
    order = rows + cols
    inverse = tuple(sorted(range(len(order)), key=lambda i: order[i]))
    m = math.prod(x.shape[a] for a in rows)
    n = math.prod(x.shape[a] for a in cols)
    transposed = tuple(x.shape[a] for a in order)
    return (lambda y: y.transpose(order).reshape(m, n),
            lambda y: y.reshape(transposed).transpose(inverse), (m, n))


def scale_by_galore(
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: optax.GradientTransformation | None = None,
    weight_dimension_numbers: Any = None,
) -> optax.GradientTransformation:
    """GaLore's direction: ``scale·P·base(Pᵀ·G)`` per projected matrix (see the module notes).

    Args:
      rank: ``r >= 1`` (capped at ``min(m, n)`` per matrix).
      update_proj_gap: steps between SVDs (at steps 0, gap, 2·gap, ...).
      scale: factor on the projected-back update.
      base_optimizer: a transformation that needs no ``params`` (default
        :func:`scale_by_adam`): it sees the projected shapes.
      weight_dimension_numbers: ``None`` (project the 2-D leaves), one
        :class:`GaLoreDimensionNumbers` for every leaf of rank >= 2, a tree of them (``None``
        leaves are not projected), or a function ``params -> such a tree``.

    Complex parameters are refused (``ValueError``): the projector comes from a real SVD.

    References: Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
    Projection" (2024).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> tx = lossjax.scale_by_galore(rank=1, base_optimizer=optax.identity())
      >>> g = jnp.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # rank-1 part: the 3
      >>> tx.update(g, tx.init(g))[0]
      Array([[3., 0.],
             [0., 0.],
             [0., 0.]], dtype=float32)
    """
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be an integer >= 1, got {rank!r}")
    if not isinstance(update_proj_gap, int) or update_proj_gap < 1:
        raise ValueError(f"update_proj_gap must be an integer >= 1, got {update_proj_gap!r}")
    base = scale_by_adam() if base_optimizer is None else base_optimizer

    def dims_of(tree):
        if weight_dimension_numbers is None:
            return jax.tree.map(lambda p: GaLoreDimensionNumbers() if len(shape_of(p)) == 2
                                else None, tree)
        if callable(weight_dimension_numbers):
            return weight_dimension_numbers(tree)
        if isinstance(weight_dimension_numbers, GaLoreDimensionNumbers):
            return jax.tree.map(lambda p: weight_dimension_numbers if len(shape_of(p)) >= 2
                                else None,
                                tree)
        return weight_dimension_numbers

    def shapes(p, dims):
        """The projector and the projected gradient's stand-in for leaf ``p``."""
        if dims is None:
            return jnp.zeros((0, 0), p.dtype), jnp.zeros(p.shape, p.dtype)
        _, _, (m, n) = _as_matrix(p, dims)
        r = min(rank, m, n)
        if m >= n:
            return jnp.zeros((m, r), p.dtype), jnp.zeros((r, n), p.dtype)
        return jnp.zeros((n, r), p.dtype), jnp.zeros((m, r), p.dtype)

    def split(pairs_tree, like):
        return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0, 0)),
                                  pairs_tree)

    def init(params):
        params = as_array_leaves(params)
        # The projector comes from a real SVD (as optax's, which casts a complex gradient's
        # imaginary part away): complex parameters are refused instead.
        reject_complex("galore", params)
        if not jax.tree.leaves(params):
            return GaLoreState(jnp.zeros([], jnp.int32), base.init(params), params)
        pairs = jax.tree.map(shapes, params, dims_of(params), is_leaf=_is_dims)
        projectors, proxies = split(pairs, params)
        return GaLoreState(jnp.zeros([], jnp.int32), base.init(proxies), projectors)

    def update(updates, state, params=None):
        del params
        refresh = state.count % update_proj_gap == 0

        def project(g, projector, dims):
            if dims is None:
                return g, projector
            to_matrix, _, (m, n) = _as_matrix(g, dims)
            g2 = to_matrix(g)
            r = min(rank, m, n)

            def fresh():
                u, _, vh = jnp.linalg.svd(g2.astype(jnp.float32), full_matrices=False)
                chosen = u[:, :r] if m >= n else vh[:r, :].T
                return chosen.astype(g.dtype)

            p = jax.lax.cond(refresh, fresh, lambda: projector)
            return (p.T @ g2 if m >= n else g2 @ p), p

        def back(low, projector, g, dims):
            if dims is None:
                return low
            _, from_matrix, (m, n) = _as_matrix(g, dims)
            full = projector @ low if m >= n else low @ projector.T
            return (scale * from_matrix(full)).astype(g.dtype)

        dims = dims_of(updates)
        pairs = jax.tree.map(project, updates, state.projector, dims, is_leaf=_is_dims)
        low, projectors = split(pairs, updates)
        low_updates, base_state = base.update(low, state.base_optimizer_state, None)
        out = jax.tree.map(back, low_updates, projectors, updates, dims, is_leaf=_is_dims)
        return out, GaLoreState(increment_count(state.count), base_state, projectors)

    return optax.GradientTransformation(init, update)


def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: optax.GradientTransformation | None = None,
    weight_decay: float = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
    weight_dimension_numbers: Any = None,
) -> optax.GradientTransformation:
    """GaLore (Adam on rank-``r`` projections of the weight matrices' gradients by default),
    then decoupled weight decay ``wd·w`` in the full space and ``−lr``.

    The base optimizer's state is ``r × n`` per ``m × n`` matrix: with Adam, ``2·r·n +
    m·r`` numbers instead of ``2·m·n`` (see ``bench/README.md`` for the bytes).

    References: Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
    Projection" (2024).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> w = jnp.ones((64, 32))
      >>> adam = jax.eval_shape(lossjax.adam(1e-3).init, w)
      >>> low = jax.eval_shape(lossjax.galore(1e-3, rank=4).init, w)
      >>> sum(x.size for x in jax.tree.leaves(adam)), sum(x.size for x in jax.tree.leaves(low))
      (4097, 514)
    """
    return optax.chain(
        scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers),
        *weight_decay_parts(weight_decay, mask),
        scale_by_learning_rate(learning_rate))

"""Shared machinery of the Kronecker-factored preconditioners (SOAP, Shampoo, PSGD Kron).

Each of those optimizers keeps, per weight, one small square matrix per tensor axis (a
Kronecker factor) and multiplies the gradient by it along that axis. What they share, and
what lives here, is generic per-leaf machinery with no optimizer's arithmetic in it:

- :func:`merged_shape`: how an N-D weight is read as a tensor of fewer, larger axes
  (consecutive axes merged while their product stays within a limit);
- :func:`axis_gram`: ``G_(k) G_(k)ᵀ``, the gradient's second moment along one axis;
- :func:`along_axis`: multiply a tensor by a matrix along one axis;
- :func:`batched`: run a function on square matrices grouped by shape, so one batched
  ``eigh`` (or QR, or matrix product) serves every same-sized factor of the model.

Like :mod:`lossjax.optimizers._machinery`, this module imports no optimizer family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def merged_shape(shape: Sequence[int], max_dim: int) -> tuple[int, ...]:
    """Merge consecutive axes of ``shape`` while their product stays ``<= max_dim``.

    Reads left to right, keeping a running product; an axis that would push it past
    ``max_dim`` closes the current group and starts the next one (an axis already over
    ``max_dim`` stays alone). E.g. a conv kernel ``(3, 3, 64, 128)`` with ``max_dim=1024``
    becomes ``(576, 128)``, and an attention kernel ``(1024, 8, 64)`` (model, heads, head
    dim) with ``max_dim=10000`` becomes ``(8192, 64)``. A 0-d shape becomes ``(1,)``.
    """
    groups: list[int] = []
    current = 1
    for size in shape:
        if current * size > max_dim:
            if current > 1:
                groups.append(current)
                current = size
            else:
                groups.append(size)
                current = 1
        else:
            current *= size
    if current > 1 or not groups:
        groups.append(current)
    return tuple(groups)


def axis_gram(x: Array, axis: int) -> Array:
    """``Σ x[..i..] x[..j..]`` over every axis but ``axis``: an ``[n, n]`` matrix."""
    others = [k for k in range(x.ndim) if k != axis]
    return jnp.tensordot(x, x, axes=(others, others))


def along_axis(x: Array, matrix: Array, axis: int, *, transpose: bool = False) -> Array:
    """``x`` multiplied along ``axis`` by ``matrix`` (``x ×_axis M``: index ``i`` of the
    axis becomes ``Σ_j M[i, j] x[..j..]``), or by ``Mᵀ`` when ``transpose``."""
    contracted = 0 if transpose else 1
    return jnp.moveaxis(jnp.tensordot(matrix, x, axes=([contracted], [axis])), 0, axis)


def batched(
    fn: Callable[..., tuple[Array, ...]], columns: Sequence[Sequence[Array]]
) -> list[tuple[Array, ...]]:
    """``fn`` on every row of ``columns`` (lists of arrays, one entry per matrix), with
    matrices of one shape and dtype stacked into one call.

    ``columns[c][i]`` is argument ``c`` of matrix ``i``; ``fn`` takes the stacked arguments
    ``[b, ...]`` and returns a tuple of stacked results. Returns, per matrix, the tuple of
    its results. One ``eigh`` of shape ``[b, n, n]`` is much cheaper to compile and run
    than ``b`` separate ones.
    """
    count = len(columns[0])
    groups: dict[tuple[object, ...], list[int]] = {}
    for i in range(count):
        key = tuple((c[i].shape, str(c[i].dtype)) for c in columns)
        groups.setdefault(key, []).append(i)
    results: list[tuple[Array, ...]] = [()] * count
    for members in groups.values():
        stacked = [jnp.stack([c[i] for i in members]) for c in columns]
        outs = fn(*stacked)
        for j, i in enumerate(members):
            results[i] = tuple(o[j] for o in outs)
    return results

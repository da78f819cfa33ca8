"""Masks: which parameter leaves a penalty or transform applies to.

A mask is ``None`` (every leaf), a pytree of bools with the structure of the parameters or a
prefix of it (``{"dense": True, "norm": False}`` covers whole sub-trees), or a function
``params -> such a pytree`` (e.g. ``lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`` to skip
biases and norm scales). Mask leaves are Python bools (or NumPy bool scalars): they decide,
at trace time, which leaves are touched, so masked-out leaves cost nothing and pass through
bit-for-bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

Mask = Any  # None | pytree of bools | Callable[[params], pytree of bools]


def _as_bool(leaf: Any) -> bool:
    if isinstance(leaf, (bool, np.bool_)):
        return bool(leaf)
    if isinstance(leaf, np.ndarray) and leaf.shape == () and leaf.dtype == np.bool_:
        return bool(leaf)  # np.array(False): concrete, as optax accepts
    raise ValueError(
        "mask leaves must be Python bools (they select leaves at trace time), got "
        f"{type(leaf).__name__}; build the mask from shapes or names, e.g. "
        "lambda p: jax.tree.map(lambda x: x.ndim > 1, p)"
    )


def _is_function(mask: Mask) -> bool:
    """A function mask: callable and a pytree leaf. A callable pytree node (an equinox
    module of bools) is a mask tree, not a function."""
    return callable(mask) and jax.tree_util.treedef_is_leaf(jax.tree.structure(mask))


def mask_prefix(mask: Mask, tree: Any) -> Any:
    """``mask`` resolved (a function mask called on ``tree``) to Python bools at its own
    structure, a prefix of ``tree``'s: each bool covers its whole sub-tree (``True`` for
    ``None``). Raises ``ValueError`` when it is not a prefix of ``tree``."""
    if mask is None:
        return True
    if _is_function(mask):
        mask = mask(tree)
    mask = jax.tree.map(_as_bool, mask)
    mask_flags(mask, tree)  # checks the structure
    return mask


def mask_flags(mask: Mask, tree: Any) -> Any:
    """One Python bool per leaf of ``tree`` (same structure): ``mask`` resolved and expanded.

    A function mask is called on ``tree``; a prefix mask's bool covers its whole sub-tree.
    Raises ``ValueError`` when the mask's structure is not a prefix of ``tree``'s.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, tree)
    if _is_function(mask):
        mask = mask(tree)
    mask = jax.tree.map(_as_bool, mask)
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), mask, tree)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"mask must have the structure of params or a prefix of it: {error}"
        ) from error


def masked_map(fn: Callable[..., Any], mask: Mask, tree: Any, *rest: Any) -> Any:
    """``jax.tree.map(fn, tree, *rest)`` on the leaves ``mask`` selects; the others keep
    ``tree``'s leaf unchanged. A function mask is called on ``tree``."""
    flags = mask_flags(mask, tree)
    return jax.tree.map(lambda keep, x, *r: fn(x, *r) if keep else x, flags, tree, *rest)


def masked_leaves(mask: Mask, tree: Any) -> list[Any]:
    """The leaves of ``tree`` that ``mask`` selects, in ``jax.tree.leaves`` order."""
    flags = jax.tree.leaves(mask_flags(mask, tree))
    return [x for keep, x in zip(flags, jax.tree.leaves(tree), strict=True) if keep]

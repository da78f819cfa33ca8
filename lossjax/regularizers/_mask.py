"""Masks: which parameter leaves a penalty or transform applies to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

Mask = Any | Callable[[Any], Any] | None


def resolve_mask(mask: Mask, params: Any) -> Any:
    """The mask as a pytree of Python bools (calling it on ``params`` if it is a function)."""
    mask = mask(params) if callable(mask) else mask
    for leaf in jax.tree.leaves(mask):
        if not isinstance(leaf, bool):
            raise ValueError(
                f"mask leaves must be Python bools (they decide the computation at trace "
                f"time), got {type(leaf).__name__}"
            )
    return mask


def masked_map(fn: Callable[..., Any], mask: Mask, tree: Any, *rest: Any) -> Any:
    """``jax.tree.map(fn, tree, *rest)`` on leaves whose mask is True; others keep ``tree``.

    ``mask`` is None (everything), a pytree of bools with ``tree``'s structure or a prefix
    of it, or a function of ``tree`` returning one.
    """
    if mask is None:
        return jax.tree.map(fn, tree, *rest)
    mask = resolve_mask(mask, tree)

    def apply(selected, subtree, *subrest):
        return jax.tree.map(fn, subtree, *subrest) if selected else subtree

    return jax.tree.map(apply, mask, tree, *rest)


def masked_leaves(mask: Mask, tree: Any) -> list[Any]:
    """The leaves of ``tree`` that ``mask`` selects."""
    if mask is None:
        return jax.tree.leaves(tree)
    mask = resolve_mask(mask, tree)
    selected = jax.tree.map(lambda m, sub: jax.tree.leaves(sub) if m else [], mask, tree)
    return [leaf for group in jax.tree.leaves(selected, is_leaf=lambda x: isinstance(x, list))
            for leaf in group]

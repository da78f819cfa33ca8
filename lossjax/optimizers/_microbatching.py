"""Micro-batching: evaluate a gradient function on slices of a batch, one at a time.

``microbatch(grad_fn, k)`` runs ``grad_fn`` on ``k`` equal slices of the batch inside one
``lax.fori_loop`` that carries a single accumulator, so the activations of only one slice
are alive at a time: peak memory falls roughly ``k``-fold (see ``bench/bench_contrib.py``)
for the same result as the full batch when ``grad_fn`` averages over its batch (optax's
``optax.microbatching.microbatch`` with a ``MEAN`` accumulator). Unlike :func:`multi_steps`,
which accumulates across calls of the optimizer, this accumulates inside one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lossjax.optimizers._machinery import compute_dtype

_ACCUMULATE = ("mean", "sum")


def _batch_size(args: Sequence[Any], argnums: Sequence[int]) -> int:
    sizes = {x.shape[0] for i in argnums for x in jax.tree.leaves(args[i])}
    if len(sizes) != 1:
        raise ValueError(f"the batch arguments {tuple(argnums)} must share one leading batch "
                         f"axis size, found {sorted(sizes)}")
    return sizes.pop()


def microbatch(
    grad_fn: Callable[..., Any],
    num_microbatches: int,
    *,
    argnums: int | Sequence[int] = 1,
    accumulate: str = "mean",
) -> Callable[..., Any]:
    """``grad_fn`` evaluated on ``num_microbatches`` slices of the batch, then averaged.

    ``grad_fn(params, batch, ...)`` (any outputs: gradients, ``(loss, grads)``, metrics)
    becomes ``f(params, batch, ...)`` that splits the leading axis of every argument in
    ``argnums`` (default: the second) into ``k`` contiguous slices of ``B/k`` examples and
    returns the mean over slices (``accumulate="sum"``: the sum) of ``grad_fn``'s outputs.
    When ``grad_fn`` averages over its batch, the mean equals ``grad_fn`` on the whole
    batch up to float rounding. The loop is a ``lax.fori_loop`` with one accumulator in
    float32 at least (cast back to the outputs' dtypes), so one slice's activations are
    alive at a time.

    A batch of size 0 returns zeros (no example, no gradient) without calling
    ``grad_fn``; ``B`` not divisible by ``k`` raises ``ValueError``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> loss = lambda w, x: jnp.mean((x @ w) ** 2)
      >>> x = jnp.arange(8.0).reshape(4, 2)
      >>> w = jnp.array([1.0, -1.0])
      >>> lossjax.microbatch(jax.grad(loss), 2)(w, x)  # = jax.grad(loss)(w, x)
      Array([-6., -8.], dtype=float32)
    """
    if not isinstance(num_microbatches, int) or num_microbatches < 1:
        raise ValueError(f"num_microbatches must be an integer >= 1, got {num_microbatches!r}")
    if accumulate not in _ACCUMULATE:
        raise ValueError(f"accumulate must be one of {_ACCUMULATE}, got {accumulate!r}")
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    k = num_microbatches

    def microbatched(*args, **kwargs):
        batch = _batch_size(args, argnums)
        if batch % k:
            raise ValueError(f"the batch size {batch} must be divisible by "
                             f"num_microbatches={k}")
        size = batch // k

        def slice_args(i):
            return tuple(
                jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, i * size, size), a)
                if n in argnums else a for n, a in enumerate(args))

        shapes = jax.eval_shape(lambda: grad_fn(*slice_args(0), **kwargs))
        if batch == 0:
            return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def body(i, carry):
            out = grad_fn(*slice_args(i), **kwargs)
            return jax.tree.map(lambda c, o: c + o.astype(c.dtype), carry, out)

        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, compute_dtype(s.dtype)), shapes)
        total = jax.lax.fori_loop(0, k, body, zeros)
        divisor = k if accumulate == "mean" else 1
        return jax.tree.map(lambda t, s: (t / divisor).astype(s.dtype), total, shapes)

    return microbatched

"""Inverted dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._validation import concrete_value


def dropout(
    key: jax.Array, x: jax.Array, *, rate: float | jax.Array, deterministic: bool = False
) -> jax.Array:
    """Zero each unit with probability ``rate``; scale the kept units by ``1/(1 − rate)``.

    ``out = x · keep / (1 − rate)`` with ``keep ~ Bernoulli(1 − rate)`` drawn per element
    from ``key``, so ``E[out] = x`` and no rescaling is needed at evaluation time.

    Args:
      key: a PRNG key; the same key gives the same mask. Under ``vmap``, map over a batch
        of keys (``jax.random.split``) too, or every example gets the same mask.
      x: a floating array of any shape.
      rate: probability of dropping a unit, in [0, 1) (``ValueError`` otherwise when it is
        a concrete number; a traced rate is not checked and must stay below 1).
      deterministic: if True (evaluation), return ``x`` itself.

    Returns:
      An array of ``x``'s shape and dtype; ``x`` itself when ``rate == 0`` or
      ``deterministic``. The gradient with respect to ``x`` is ``keep / (1 − rate)``.

    References: Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
    Overfitting", JMLR (2014).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> x = jnp.ones(8)
      >>> out = lossjax.dropout(jax.random.key(0), x, rate=0.5)
      >>> print(jnp.unique(out))  # dropped units are 0, kept ones scaled by 1/(1 - 0.5)
      [0. 2.]
      >>> lossjax.dropout(jax.random.key(0), x, rate=0.5, deterministic=True) is x
      True
    """
    value = concrete_value(rate)
    if value is not None and not 0.0 <= value < 1.0:
        raise ValueError(
            f"rate must be in [0, 1), got {rate!r}: it is the probability of dropping a unit "
            "(pass e.g. rate=0.1; to switch dropout off use rate=0 or deterministic=True)"
        )
    if deterministic or value == 0.0:
        return x
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise ValueError(f"x must be a floating array for dropout, got dtype {dtype}")
    keep = jax.random.bernoulli(key, 1.0 - rate, jnp.shape(x))
    scaled = (x / (1.0 - rate)).astype(dtype)
    return jnp.where(keep, scaled, jnp.zeros((), dtype))

"""Inverted dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._validation import concrete_value


def dropout(key: jax.Array, x: jax.Array, *, rate: float, deterministic: bool = False) -> jax.Array:
    """Zero each unit with probability ``rate`` and scale kept units by ``1/(1 − rate)``.

    The expectation of the output equals ``x``. ``rate == 0`` or ``deterministic=True``
    returns ``x`` itself. The same ``key`` gives the same mask. ``rate`` must be in
    [0, 1): at 1 nothing is kept and the scale is infinite. References: Srivastava et al.,
    "Dropout" (2014).
    """
    value = concrete_value(rate)
    if value is not None and not 0.0 <= value < 1.0:
        raise ValueError(
            f"rate must be in [0, 1), got {rate!r}; rate is the probability of dropping a "
            "unit (use deterministic=True to disable dropout)"
        )
    if deterministic or value == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, jnp.shape(x))
    scaled = x / (1.0 - rate)
    return jnp.where(keep, scaled, jnp.zeros((), scaled.dtype)).astype(jnp.result_type(x))

"""reduce_on_plateau against optax.contrib's and a plain-Python reference of the rule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._contrib_reference import assert_same_trajectory


def _scales(opt, values):
    """The scale after each ``update(..., value=v)``: one jitted scan."""
    params = jnp.ones(2, jnp.float32)

    def body(state, value):
        _, state = opt.update(params, state, params, value=value)
        return state, state.scale

    return np.asarray(jax.jit(lambda v: jax.lax.scan(body, opt.init(params), v)[1])(
        jnp.asarray(values, jnp.float32)))


def _python_rule(values, factor, patience, rtol, atol, cooldown, size, min_scale):
    scale, best, plateau, cool, buffer, out = 1.0, np.inf, 0, 0, [], []
    for v in values:
        buffer.append(v)
        if len(buffer) == size:
            avg = float(np.mean(np.asarray(buffer, np.float64)))
            buffer = []
            if avg < (1 - rtol) * best - atol:
                best, plateau = avg, 0
            else:
                plateau += 1
            if cool > 0:
                cool, plateau = cool - 1, 0
            elif plateau == patience:
                scale, plateau, cool = max(scale * factor, min_scale), 0, cooldown
        out.append(scale)
    return np.asarray(out)


STALLED = [5.0, 4.0, 3.0] + [3.0] * 12 + [2.0] + [2.0] * 40


@pytest.mark.parametrize("kw", [
    {},
    dict(factor=0.5, patience=3, rtol=0.0, atol=0.01, cooldown=2, accumulation_size=2,
         min_scale=0.1),
    dict(factor=0.3, patience=2, rtol=1e-2, atol=0.0, cooldown=0, accumulation_size=1,
         min_scale=0.0),
])
def test_scale_drops_at_the_same_step_as_optax(kw):
    ours = _scales(lossjax.reduce_on_plateau(**kw), STALLED)
    theirs = _scales(optax.contrib.reduce_on_plateau(**kw), STALLED)
    np.testing.assert_array_equal(ours, theirs)
    full = dict(factor=0.1, patience=10, rtol=1e-4, atol=0.0, cooldown=0, accumulation_size=1,
                min_scale=0.0) | kw
    np.testing.assert_allclose(ours, _python_rule(
        STALLED, full["factor"], full["patience"], full["rtol"], full["atol"], full["cooldown"],
        full["accumulation_size"], full["min_scale"]), rtol=1e-5)
    assert ours[-1] < 1.0  # the stall did lower the scale


def test_chained_trajectory_equals_optax():
    def build(m):
        return optax.chain(m.sgd(0.5) if m is lossjax else optax.sgd(0.5),
                           m.reduce_on_plateau(factor=0.5, patience=5, accumulation_size=3))

    assert_same_trajectory(build(lossjax), build(optax.contrib), with_value=True)


@pytest.mark.parametrize("kw, name", [
    (dict(factor=1.0), "factor"), (dict(factor=0.0), "factor"), (dict(patience=0), "patience"),
    (dict(patience=1.5), "patience"), (dict(rtol=-0.1), "rtol"), (dict(rtol=1.5), "rtol"),
    (dict(atol=-1.0), "atol"), (dict(rtol=0.0, atol=0.0), "rtol"),
    (dict(cooldown=-1), "cooldown"), (dict(accumulation_size=0), "accumulation_size"),
    (dict(min_scale=-0.1), "min_scale"),
])
def test_bad_hyperparameters_raise(kw, name):
    with pytest.raises(ValueError, match=name):
        lossjax.reduce_on_plateau(**kw)

"""cautious(inner): every step satisfies <u, g> <= 0 (hypothesis), all-agreeing steps are
the inner optimizer's bit for bit, and cautious Adam equals a float64 NumPy reference over
100 steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from hypothesis import given, settings
from hypothesis import strategies as st

import lossjax
from tests.optimizers import _muon_reference as ref

STEPS = 8
SHAPE = (3, 4)


def _run(opt):
    @jax.jit
    def run(params, grads):
        def body(carry, g):
            p, s = carry
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), u

        return jax.lax.scan(body, (params, opt.init(params)), grads)[1]

    return run


INNERS = {
    "adamw": lambda: lossjax.adamw(0.1, weight_decay=0.3),
    "sgd-momentum": lambda: lossjax.sgd(0.1, momentum=0.9, nesterov=True),
    "muon": lambda: lossjax.muon(0.1, weight_decay=0.2),
}
RUNS = {name: _run(lossjax.cautious(build())) for name, build in INNERS.items()}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), inner=st.sampled_from(sorted(INNERS)))
def test_every_cautious_step_goes_downhill(seed, inner):
    rng = np.random.default_rng(seed)
    params = jnp.asarray(rng.normal(size=SHAPE), jnp.float32)
    grads = jnp.asarray(rng.normal(size=(STEPS, *SHAPE)) + rng.normal(size=SHAPE),
                        jnp.float32)
    updates = np.asarray(RUNS[inner](params, grads), np.float64)
    inner_products = np.sum(updates * np.asarray(grads, np.float64), axis=(1, 2))
    assert np.all(inner_products <= 0), inner_products


def test_all_agreeing_steps_are_adamw_bit_for_bit():
    # positive gradients and positive weights: AdamW's step (decay included) opposes g
    # in every coordinate, so the cautious mask keeps all of them
    params = jnp.linspace(0.5, 2.0, 12).reshape(SHAPE)
    grads = jnp.stack([jnp.abs(jnp.cos(params * (k + 1))) + 0.1 for k in range(20)])
    adamw = lossjax.adamw(1e-2, weight_decay=1e-3)

    @jax.jit
    def both(params, grads):
        return tuple(_run(opt).__wrapped__(params, grads)
                     for opt in (lossjax.cautious(adamw), adamw))

    ours, theirs = both(params, grads)
    np.testing.assert_array_equal(ours, theirs)


def test_cautious_adam_equals_float64_numpy_reference_over_100_steps(x64):
    rng = np.random.default_rng(4)
    shapes = {"w": (4, 3), "b": (3,)}
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    grads = ref.random_gradients(shapes, 100, seed=5)
    ours = ref.run_lossjax(lossjax.cautious(lossjax.adam(0.01)), params, grads)
    expected = ref.run_reference(ref.cautious_adam_reference(0.01), params, grads)
    ref.assert_close_to_reference(ours, expected, rtol=1e-10, atol=1e-13)

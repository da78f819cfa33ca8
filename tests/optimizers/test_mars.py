"""mars / scale_by_mars: float64 NumPy references over 100 steps (the AdamW and Lion
instances, with the correction's clipping active, cautious weight decay), ``gamma=0`` is
adamw bit for bit, the state is AdamW's plus one gradient buffer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers import _muon_reference as ref

SHAPES = {"w": (5, 3), "b": (3,)}

VARIANTS = {
    "adamw": (lambda: lossjax.mars(0.01, gamma=0.05, weight_decay=0.1),
              lambda: ref.mars_reference(0.01, gamma=0.05, wd=0.1)),
    "lion-cautious": (
        lambda: lossjax.mars(0.01, b1=0.9, gamma=0.1, weight_decay=0.5, optimizer="lion",
                             cautious_weight_decay=True, max_norm=2.0),
        lambda: ref.mars_reference(0.01, b1=0.9, gamma=0.1, wd=0.5, lion=True,
                                   cautious=True, max_norm=2.0)),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_equals_float64_numpy_reference_over_100_steps(name, x64):
    build, reference = VARIANTS[name]
    rng = np.random.default_rng(2)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    # gradients of norm ~1-3: the correction is clipped on some steps and not on others
    grads = ref.random_gradients(SHAPES, 100, seed=3, scale=0.6)
    ours = ref.run_lossjax(build(), params, grads)
    expected = ref.run_reference(reference(), params, grads)
    ref.assert_close_to_reference(ours, expected, rtol=1e-10, atol=1e-13)


def test_gamma_zero_is_adamw_bit_for_bit():
    params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(4, 3), "b": jnp.zeros(3)}
    grads = jax.tree.map(lambda p: jnp.stack([jnp.sin(p * (k + 1)) * 3 for k in range(20)]),
                         params)
    mars = lossjax.mars(1e-2, 0.9, 0.999, 1e-8, gamma=0.0, weight_decay=1e-3)
    adamw = lossjax.adamw(1e-2, 0.9, 0.999, 1e-8, weight_decay=1e-3)

    @jax.jit
    def both(params, grads):
        return tuple(_updates(opt, params, grads) for opt in (mars, adamw))

    ours, theirs = both(params, grads)
    jax.tree.map(np.testing.assert_array_equal, ours, theirs)


def _updates(opt, params, grads):
    def body(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), u

    return jax.lax.scan(body, (params, opt.init(params)), grads)[1]


def test_state_is_adamws_plus_one_gradient_buffer():
    params = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}
    size = lambda tree: sum(x.size for x in jax.tree.leaves(tree))  # noqa: E731
    mars = jax.eval_shape(lossjax.mars(1e-2).init, params)
    adamw = jax.eval_shape(lossjax.adamw(1e-2).init, params)
    assert size(mars) == size(adamw) + size(params)


@pytest.mark.parametrize("build, name", [
    (lambda: lossjax.mars(-1.0), "learning_rate"),
    (lambda: lossjax.mars(0.1, b1=1.0), "b1"),
    (lambda: lossjax.mars(0.1, b2=-0.5), "b2"),
    (lambda: lossjax.mars(0.1, gamma=-0.1), "gamma"),
    (lambda: lossjax.mars(0.1, max_norm=0.0), "max_norm"),
    (lambda: lossjax.mars(0.1, optimizer="sgd"), "optimizer"),
    (lambda: lossjax.mars(0.1, weight_decay=-1.0), "weight_decay"),
])
def test_bad_hyperparameters_raise(build, name):
    with pytest.raises(ValueError, match=name):
        build()

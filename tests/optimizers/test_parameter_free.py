"""prodigy, dadapt_adamw and dog against optax.contrib (0.2.8), and a float64 NumPy DoG."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._contrib_reference import (
    assert_checkpoint_continues_bit_for_bit,
    assert_same_trajectory,
)

# Hyperparameters away from the defaults, chosen where optax's own run is not chaotic (the
# estimate d is a running max: some settings make a one-ulp change flip which step sets it).
CASES = {
    "prodigy-defaults": lambda m: m.prodigy(),
    "prodigy-all": lambda m: m.prodigy(0.8, (0.85, 0.995), 0.95, 1e-7, 2e-6, 1.5, 1e-3, True),
    "dadapt-defaults": lambda m: m.dadapt_adamw(),
    "dadapt-all": lambda m: m.dadapt_adamw(0.5, (0.9, 0.99), 1e-8, 1e-6, 1e-4),
    "dog-defaults": lambda m: m.dog(),
    "dog-all": lambda m: m.dog(0.5, ("distance", 0.1), 1e-6, 1e-3, {"w": True, "b": False}),
    "dog-first-rate": lambda m: m.dog(1.0, ("learning_rate", 0.05)),
}


@pytest.mark.parametrize("name", CASES)
def test_trajectory_equals_optax_contrib(name):
    assert_same_trajectory(CASES[name](lossjax), CASES[name](optax.contrib))


def test_dog_matches_float64_numpy():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    target = np.array([1.0, -1.0])
    grad = lambda w: a @ (w - target)  # noqa: E731
    w0 = np.array([0.5, 0.5])
    w, r_bar, g_sum = w0.copy(), 1e-3 * (1 + np.linalg.norm(w0)), 0.0
    opt = lossjax.dog(init_step=("heuristic", 1e-3))
    v = jnp.asarray(w0, jnp.float32)
    state = opt.init(v)
    update = jax.jit(opt.update)  # one compilation, not one per operation
    for _ in range(25):
        g = grad(w)
        r_bar = max(r_bar, np.linalg.norm(w - w0))
        g_sum += g @ g
        w = w - r_bar / np.sqrt(g_sum + 1e-8) * g
        updates, state = update(jnp.asarray(grad(np.asarray(v, np.float64)), jnp.float32),
                                state, v)
        v = optax.apply_updates(v, updates)
    np.testing.assert_allclose(np.asarray(v), w, rtol=1e-4, atol=1e-5)
    assert np.linalg.norm(w - target) < 0.6 * np.linalg.norm(w0 - target)


@pytest.mark.parametrize("name", ["prodigy-all", "dog-all"])
def test_checkpoint_continues_bit_for_bit(name, tmp_path):
    assert_checkpoint_continues_bit_for_bit(CASES[name](lossjax), tmp_path)


@pytest.mark.parametrize("build, name", [
    (lambda: lossjax.prodigy(-1.0), "learning_rate"),
    (lambda: lossjax.prodigy(betas=(1.0, 0.9)), r"betas\[0\]"),
    (lambda: lossjax.prodigy(betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda: lossjax.prodigy(beta3=1.0), "beta3"),
    (lambda: lossjax.prodigy(eps=-1.0), "eps"),
    (lambda: lossjax.prodigy(estim_lr0=0.0), "estim_lr0"),
    (lambda: lossjax.prodigy(estim_lr_coef=0.0), "estim_lr_coef"),
    (lambda: lossjax.prodigy(weight_decay=-1.0), "weight_decay"),
    (lambda: lossjax.dadapt_adamw(betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: lossjax.dadapt_adamw(estim_lr0=-1.0), "estim_lr0"),
    (lambda: lossjax.dadapt_adamw(eps=-1.0), "eps"),
    (lambda: lossjax.dog(init_step=("nope", 1.0)), "init_step"),
    (lambda: lossjax.dog(init_step=("distance", -1.0)), "init_step"),
    (lambda: lossjax.dog(eps=-1.0), "eps"),
    (lambda: lossjax.dog(weight_decay=-1.0), "weight_decay"),
    (lambda: lossjax.dog(-1.0), "learning_rate"),
])
def test_bad_hyperparameters_raise(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_update_without_params_raises():
    opt = lossjax.prodigy()
    params = jnp.ones(3, jnp.float32)
    with pytest.raises(ValueError, match="params"):
        opt.update(params, opt.init(params))


@pytest.mark.parametrize("build", [
    lossjax.prodigy, lossjax.dog, lossjax.dadapt_adamw, lossjax.schedule_free_adamw,
    lambda: lossjax.muon(0.1), lambda: optax.chain(lossjax.adam(0.1),
                                                  lossjax.reduce_on_plateau())])
def test_state_survives_a_step_that_donates_params_and_state(build):
    """The state's copy of the parameters (params0, init_params, z) is its own buffer, and
    no two state fields share one (donating such a state fails)."""
    opt = build()
    params = {"w": jnp.ones((3, 2), jnp.float32)}
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.tree.map(lambda w: 0.1 * w, params)
        updates, state = opt.update(grads, state, params, value=jnp.float32(1.0))
        return optax.apply_updates(params, updates), state

    donating = jax.jit(step, donate_argnums=(0, 1))
    params, state = donating(params, state)
    params, state = donating(params, state)   # raised "Array has been deleted" before
    assert np.all(np.isfinite(np.asarray(params["w"])))


@pytest.mark.parametrize("build", [
    lossjax.prodigy, lossjax.dog, lossjax.dadapt_adamw, lossjax.schedule_free_adamw,
    lambda: lossjax.muon(0.1)])
def test_half_params_keep_float32_moments_and_stable_state_types(build):
    opt = build()
    params = {"w": jnp.ones((4, 3), jnp.bfloat16), "b": jnp.zeros((3,), jnp.bfloat16)}
    state = opt.init(params)
    assert jax.tree.map(jax.typeof, jax.eval_shape(opt.init, params)) == jax.tree.map(
        jax.typeof, state)
    grads = jax.tree.map(lambda p: p + 0.5, params)
    updates, new_state = jax.jit(opt.update)(grads, state, params)
    assert jax.tree.map(jax.typeof, new_state) == jax.tree.map(jax.typeof, state)
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))
    moments = jax.tree.leaves(_moments(state))
    assert all(x.dtype == jnp.float32 for x in moments)   # DoG keeps none


def _moments(node):
    """The moment fields (exp_avg, exp_avg_sq, grad_sum, mu, nu) of every NamedTuple in a
    state, however nested."""
    if hasattr(node, "_fields"):
        names = ("exp_avg", "exp_avg_sq", "grad_sum", "mu", "nu")
        return [getattr(node, f) if f in names else _moments(getattr(node, f))
                for f in node._fields]
    if isinstance(node, (tuple, list)):
        return [_moments(n) for n in node]
    return []

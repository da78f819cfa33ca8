"""schedule_free_sgd / schedule_free_adamw / schedule_free_eval_params against
optax.contrib (0.2.8) and a float64 NumPy reference of the paper's recursion."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._contrib_reference import (
    assert_checkpoint_continues_bit_for_bit,
    assert_same_trajectory,
    problem,
    trajectory,
)

CASES = {
    "sgd-defaults": (lambda m: m.schedule_free_sgd(0.05), {}),
    "sgd-all": (lambda m: m.schedule_free_sgd(0.1, 20, 0.8, 1e-2, 1.5, None), {}),
    "adamw-defaults": (lambda m: m.schedule_free_adamw(), {}),
    "adamw-all": (lambda m: m.schedule_free_adamw(0.02, 30, 0.95, 0.99, 1e-6, 1e-2, 1.0,
                                                  None), {}),
}


@pytest.mark.parametrize("name", CASES)
def test_trajectory_equals_optax_contrib(name):
    build, _ = CASES[name]
    assert_same_trajectory(build(lossjax), build(optax.contrib))


def test_eval_params_equal_optax_and_read_either_state():
    params, loss = problem()
    build = lambda m: m.schedule_free_adamw(0.02, warmup_steps=10)  # noqa: E731
    ours, state, _ = trajectory(build(lossjax), params, loss, steps=100)
    theirs, their_state, _ = trajectory(build(optax.contrib), params, loss, steps=100)
    x = lossjax.schedule_free_eval_params(state, ours)
    x_ref = optax.contrib.schedule_free_eval_params(their_state, theirs)
    # 100 float32 steps apart: optax forms 1 − b2ᵗ in float32 (a few ulps off), lossjax
    # without cancellation; the two drift by 2e-6
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), x, x_ref)
    # optax's helper reads our state too (same field names), and ours reads optax's.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
                 optax.contrib.schedule_free_eval_params(state, ours), x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
                 lossjax.schedule_free_eval_params(their_state, theirs), x_ref)
    gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
        jax.tree.leaves(x), jax.tree.leaves(ours), strict=True))
    assert gap > 1e-3  # x and y are different points: the comparison above means something


def test_sgd_matches_float64_numpy_recursion():
    """The paper's recursion, written in NumPy float64, with a warm-up and weight decay."""
    lr, warmup, b1, wd, power, steps = 0.1, 5, 0.9, 0.01, 2.0, 30
    w0 = np.array([1.0, -2.0, 0.5])
    target = np.array([0.3, 0.1, -0.2])
    grad = lambda w: 2 * (w - target)  # noqa: E731
    y = z = w0.copy()
    x = w0.copy()
    weight_sum, max_lr = 0.0, 0.0
    for t in range(1, steps + 1):
        rate = lr * min(t - 1, warmup) / warmup   # the step's rate (0-based count)
        max_lr = max(max_lr, lr * min(t, warmup) / warmup)
        weight = max_lr**power
        weight_sum += weight
        c = weight / weight_sum
        z = z - rate * (grad(y) + wd * y)
        x = (1 - c) * x + c * z
        y = b1 * x + (1 - b1) * z
    opt = lossjax.schedule_free_sgd(lr, warmup, b1, wd, power)
    w = jnp.asarray(w0, jnp.float32)
    state = opt.init(w)
    step = jax.jit(lambda w, s: opt.update(2 * (w - jnp.asarray(target, jnp.float32)), s, w))
    for _ in range(steps):
        updates, state = step(w, state)
        w = optax.apply_updates(w, updates)
    np.testing.assert_allclose(np.asarray(w), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(lossjax.schedule_free_eval_params(state, w)), x,
                               rtol=1e-5, atol=1e-6)


def test_injected_learning_rate_changes_without_retrace():
    params, loss = problem()
    opt = lossjax.inject_hyperparams(lossjax.schedule_free_adamw)(learning_rate=0.01)
    update = jax.jit(opt.update)
    grads = jax.grad(loss)(params)

    def size(state):
        return max(float(jnp.max(jnp.abs(u))) for u in jax.tree.leaves(
            update(grads, state, params)[0]))

    state = opt.init(params)
    assert size(state) > 1e-3
    assert size(lossjax.set_learning_rate(state, 0.0)) < 1e-6  # rounding of (y − 0.1·z)/0.9
    assert update._cache_size() == 1


def test_checkpoint_continues_bit_for_bit(tmp_path):
    assert_checkpoint_continues_bit_for_bit(lossjax.schedule_free_adamw(0.01, 3), tmp_path)


def test_state_is_arrays_and_init_accepts_shapes():
    params, _ = problem()
    opt = lossjax.schedule_free_adamw()
    shapes = jax.eval_shape(opt.init, params)
    assert jax.tree.map(lambda s: (s.shape, s.dtype), shapes) == jax.tree.map(
        lambda s: (s.shape, s.dtype), opt.init(params))


@pytest.mark.parametrize("build, name", [
    (lambda: lossjax.schedule_free_sgd(-1.0), "learning_rate"),
    (lambda: lossjax.schedule_free_sgd(0.1, warmup_steps=0), "warmup_steps"),
    (lambda: lossjax.schedule_free_sgd(0.1, b1=0.0), "b1"),
    (lambda: lossjax.schedule_free_sgd(0.1, b1=1.5), "b1"),
    (lambda: lossjax.schedule_free_sgd(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: lossjax.schedule_free_adamw(b2=1.0), "b2"),
    (lambda: lossjax.schedule_free_adamw(eps=-1.0), "eps"),
    (lambda: lossjax.schedule_free_adamw(weight_lr_power=-1.0), "weight_lr_power"),
    (lambda: lossjax.schedule_free_adamw(lambda c: 0.1, warmup_steps=3), "warmup_steps"),
])
def test_bad_hyperparameters_raise(build, name):
    with pytest.raises(ValueError, match=name):
        build()

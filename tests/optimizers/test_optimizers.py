import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax import schedules
from tests.optimizers._mlp import mlp_loss, not_bias, trajectory

STEPS = 300


def mlp_params(dtype=jnp.float32):
    k = jax.random.split(jax.random.key(0), 4)
    return {
        "dense1": {"w": jax.random.normal(k[0], (8, 16), dtype) * 0.3, "b": jnp.zeros(16, dtype)},
        "dense2": {"w": jax.random.normal(k[1], (16, 4), dtype) * 0.3, "b": jnp.zeros(4, dtype)},
    }


def _data():
    x = jax.random.normal(jax.random.key(1), (STEPS, 32, 8), jnp.float32)
    y = jax.random.randint(jax.random.key(2), (STEPS, 32), 0, 4)
    return x, y


def run_both(ours, theirs, params):
    """Both trajectories in one jitted function: one compilation per pair."""
    return jax.jit(lambda p, xs, ys: (trajectory(ours, p, xs, ys),
                                      trajectory(theirs, p, xs, ys)))(params, *_data())


PAIRS = {
    "gd": (lambda: lossjax.sgd(0.1), lambda: optax.sgd(0.1)),
    "sgd_momentum": (lambda: lossjax.sgd(0.05, momentum=0.9), lambda: optax.sgd(0.05, 0.9)),
    "sgd_nesterov": (lambda: lossjax.sgd(0.05, 0.9, nesterov=True),
                     lambda: optax.sgd(0.05, 0.9, nesterov=True)),
    "adam": (lambda: lossjax.adam(1e-2), lambda: optax.adam(1e-2)),
    "adam_schedule": (lambda: lossjax.adam(schedules.warmup_cosine_decay(0.0, 1e-2, 30, STEPS)),
                      lambda: optax.adam(optax.warmup_cosine_decay_schedule(0.0, 1e-2, 30, STEPS))),
    "adamw_mask": (lambda: lossjax.adamw(1e-2, weight_decay=0.05, mask=not_bias),
                   lambda: optax.adamw(1e-2, weight_decay=0.05, mask=not_bias)),
    "rmsprop": (lambda: lossjax.rmsprop(1e-3), lambda: optax.rmsprop(1e-3)),
    "rmsprop_centered_momentum": (
        lambda: lossjax.rmsprop(1e-3, centered=True, momentum=0.5, nesterov=True),
        lambda: optax.rmsprop(1e-3, centered=True, momentum=0.5, nesterov=True)),
    "rmsprop_eps_outside_sqrt": (lambda: lossjax.rmsprop(1e-3, 0.95, 1e-6, 0.1, False),
                                 lambda: optax.rmsprop(1e-3, 0.95, 1e-6, 0.1, False)),
    "adagrad": (lambda: lossjax.adagrad(0.05), lambda: optax.adagrad(0.05)),
    "clip_then_adam": (
        lambda: optax.chain(lossjax.clip_by_global_norm(0.5), lossjax.adam(1e-2)),
        lambda: optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-2))),
    "sgd_exponential_decay": (
        lambda: lossjax.sgd(schedules.exponential_decay(0.1, 50, 0.5), momentum=0.9),
        lambda: optax.sgd(optax.exponential_decay(0.1, 50, 0.5), momentum=0.9)),
}


@pytest.mark.parametrize("name", PAIRS)
def test_same_parameters_as_optax_after_300_steps(name):
    ours, theirs = PAIRS[name]
    params = mlp_params()
    got, expected = run_both(ours(), theirs(), params)
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), expected, params)
    assert max(jax.tree.leaves(moved)) > 1e-2  # the trajectory really went somewhere
    # float32: Adam's bias correction is 1 − b^t here and −expm1(t·log b) in lossjax (exact
    # for b2 near 1); after 300 steps the two roundings part by a few parts in 1e5.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=6e-5, atol=3e-6),
                 got, expected)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_scale_by_adam_one_step_against_numpy():
    g = np.array([0.5, -2.0, 0.0, 1e-3])
    m0, v0 = np.array([0.1, 0.0, 0.2, 0.0]), np.array([0.01, 0.0, 0.3, 0.0])
    tx = lossjax.scale_by_adam(b1=0.8, b2=0.99, eps=1e-6)
    state = lossjax.ScaleByAdamState(jnp.array(4, jnp.int32), jnp.asarray(m0), jnp.asarray(v0))
    direction, new = tx.update(jnp.asarray(g), state)
    m = 0.8 * m0 + 0.2 * g
    v = 0.99 * v0 + 0.01 * g**2
    expected = (m / (1 - 0.8**5)) / (np.sqrt(v / (1 - 0.99**5)) + 1e-6)
    np.testing.assert_allclose(direction, expected, rtol=1e-12)
    np.testing.assert_allclose(new.mu, m, rtol=1e-12)
    assert int(new.count) == 5


def test_clip_by_global_norm_against_numpy_and_at_zero():
    tree = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    clipped, _ = lossjax.clip_by_global_norm(1.0).update(tree, None)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-7)
    np.testing.assert_allclose(clipped["b"], [[0.8]], rtol=1e-7)
    same, _ = lossjax.clip_by_global_norm(10.0).update(tree, None)
    np.testing.assert_array_equal(same["a"], tree["a"])
    zeros = jax.tree.map(jnp.zeros_like, tree)  # optax #1752: no NaN for a zero gradient
    out, _ = lossjax.clip_by_global_norm(1.0).update(zeros, None)
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(out))


def test_float16_adam_does_not_nan():
    # optax #1755: eps=1e-8 underflows in float16 and 0/0 appears for zero gradients
    params = {"w": jnp.array([1.0, -1.0, 0.5], jnp.float16)}
    opt = lossjax.adam(1e-3)
    state = opt.init(params)
    for g in ([0.0, 0.0, 0.0], [1e-4, 0.0, -3.0], [0.0, 1e-7, 0.0]):
        updates, state = opt.update({"w": jnp.array(g, jnp.float16)}, state, params)
        params = optax.apply_updates(params, updates)
    assert np.all(np.isfinite(np.asarray(params["w"], np.float32)))
    assert params["w"].dtype == jnp.float16


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64])
@pytest.mark.parametrize("make", [lambda: lossjax.adam(1e-3), lambda: lossjax.sgd(0.1, 0.9),
                                  lambda: lossjax.rmsprop(1e-3, centered=True),
                                  lambda: lossjax.adagrad(0.1)])
def test_dtypes_of_params_and_state_are_stable(dtype, make):
    opt = make()
    params = {"w": jnp.ones(3, dtype)}
    state = opt.init(params)
    updates, new_state = opt.update({"w": jnp.full(3, 0.5, dtype)}, state, params)
    assert updates["w"].dtype == dtype
    assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_mu_dtype_stores_first_moment_in_bfloat16():
    opt = lossjax.scale_by_adam(mu_dtype=jnp.bfloat16)
    grads = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    state = opt.init(jnp.zeros(64, jnp.float32))
    m, v = np.zeros(64), np.zeros(64)
    for t, g in enumerate(grads, start=1):
        direction, state = opt.update(jnp.asarray(g), state)
        # the update uses the float32 moment; only the stored copy is rounded to bfloat16
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        expected = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(direction, expected, rtol=1e-5)
        m = np.asarray(jnp.asarray(m, jnp.float32).astype(jnp.bfloat16), np.float64)
        np.testing.assert_array_equal(np.asarray(state.mu, np.float64), m)
    assert state.mu.dtype == jnp.bfloat16 and state.nu.dtype == jnp.float32


def test_init_works_on_shape_dtype_struct():
    spec = {"w": jax.ShapeDtypeStruct((3, 2), jnp.float16)}
    for opt in (lossjax.adam(1e-3), lossjax.sgd(0.1, 0.9), lossjax.rmsprop(1e-3, centered=True),
                lossjax.adagrad(1.0)):
        state = opt.init(spec)
        moments = [x for x in jax.tree.leaves(state) if x.ndim]
        assert moments and all(x.shape == (3, 2) and x.dtype == jnp.float16 for x in moments)
        assert jax.tree.map(jax.typeof, jax.eval_shape(opt.init, spec)) == jax.tree.map(
            jax.typeof, state)


def test_learning_rate_changes_without_recompiling():
    opt = lossjax.inject_hyperparams(lossjax.adam)(learning_rate=1e-2)
    params = {"w": jnp.ones(4)}

    @jax.jit
    def step(params, state):
        updates, state = opt.update({"w": jnp.ones(4)}, state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    p1, state = step(params, state)
    state = lossjax.set_learning_rate(state, 0.0)
    p2, state = step(p1, state)
    np.testing.assert_array_equal(p2["w"], p1["w"])  # learning rate 0: no move
    state = lossjax.set_learning_rate(state, 1e-1)
    p3, _ = step(p2, state)
    assert np.all(np.asarray(p3["w"]) < np.asarray(p2["w"]) - 0.05)
    assert step._cache_size() == 1


def save_with_numpy(tree, directory):
    leaves, treedef = jax.tree.flatten(tree)
    buffer = io.BytesIO()
    np.savez(buffer, *[np.asarray(x) for x in leaves])

    def restore():
        buffer.seek(0)
        loaded = np.load(buffer)
        return jax.tree.unflatten(treedef, [jnp.asarray(loaded[f"arr_{i}"])
                                            for i in range(len(leaves))])

    return restore


def save_with_orbax(tree, directory):
    import orbax.checkpoint as ocp

    path = directory / "checkpoint"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree)
        checkpointer.wait_until_finished()

    def restore():
        with ocp.StandardCheckpointer() as checkpointer:
            return checkpointer.restore(path, jax.tree.map(jnp.zeros_like, tree))

    return restore


@pytest.mark.parametrize("save", [save_with_numpy, save_with_orbax])
def test_state_saved_mid_run_and_restored_continues_bit_for_bit(save, tmp_path):
    opt = optax.chain(lossjax.clip_by_global_norm(1.0), lossjax.adamw(1e-2, weight_decay=0.01))
    xs, ys = _data()

    @jax.jit
    def step(params, state, x, y):
        grads = jax.grad(mlp_loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = mlp_params()
    state = opt.init(params)
    for i in range(10):
        params, state = step(params, state, xs[i], ys[i])
    restore = save((params, state), tmp_path)
    for i in range(10, 20):
        params, state = step(params, state, xs[i], ys[i])
    restored_params, restored_state = restore()
    assert jax.tree.structure(restored_state) == jax.tree.structure(state)
    assert jax.tree.map(jax.typeof, restored_state) == jax.tree.map(jax.typeof, state)
    for i in range(10, 20):
        restored_params, restored_state = step(restored_params, restored_state, xs[i], ys[i])
    jax.tree.map(np.testing.assert_array_equal, restored_params, params)
    jax.tree.map(np.testing.assert_array_equal, restored_state, state)


def test_invalid_hyperparameters_raise_at_build_time():
    cases = [
        (lambda: lossjax.sgd(-0.1), "learning_rate"),
        (lambda: lossjax.sgd(0.1, momentum=-0.5), "momentum"),
        (lambda: lossjax.sgd(0.1, nesterov=True), "nesterov"),
        (lambda: lossjax.adam(1e-3, b1=1.0), "b1"),
        (lambda: lossjax.adam(1e-3, b2=-0.1), "b2"),
        (lambda: lossjax.adam(1e-3, eps=-1e-8), "eps"),
        (lambda: lossjax.adamw(1e-3, weight_decay=-1.0), "weight_decay"),
        (lambda: lossjax.rmsprop(1e-3, decay=1.5), "decay"),
        (lambda: lossjax.adagrad(1e-3, eps=-1.0), "eps"),
        (lambda: lossjax.clip_by_global_norm(0.0), "max_norm"),
        (lambda: schedules.warmup_cosine_decay(0.0, 1.0, 10, 5), "decay_steps"),
    ]
    for build, name in cases:
        with pytest.raises(ValueError, match=name):
            build()


def rosenbrock(p):
    x, y = p["xy"][0], p["xy"][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def quadratic(p):
    a = jnp.array([[3.0, 0.5], [0.5, 1.0]])
    w = p["xy"] - jnp.array([1.0, -2.0])
    return 0.5 * w @ a @ w


@pytest.mark.parametrize(
    "fn, make, steps, minimum",
    [
        (quadratic, lambda: lossjax.sgd(0.2), 300, [1.0, -2.0]),
        (quadratic, lambda: lossjax.sgd(0.05, momentum=0.9), 300, [1.0, -2.0]),
        (quadratic, lambda: lossjax.adam(0.05), 1000, [1.0, -2.0]),
        (rosenbrock, lambda: lossjax.sgd(1e-3), 10000, [1.0, 1.0]),
        (rosenbrock, lambda: lossjax.sgd(1e-3, momentum=0.9), 5000, [1.0, 1.0]),
        (rosenbrock, lambda: lossjax.adam(2e-2), 5000, [1.0, 1.0]),
    ],
)
def test_minimises_quadratic_and_rosenbrock(fn, make, steps, minimum):
    opt = make()
    params = {"xy": jnp.array([-1.2, 1.0], jnp.float32)}

    def step(carry, _):
        params, state = carry
        updates, state = opt.update(jax.grad(fn)(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    run = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=steps))
    (params, _), _ = run(params)
    np.testing.assert_allclose(params["xy"], minimum, atol=2e-2)


@pytest.mark.parametrize("make", [lambda: lossjax.sgd(0.1), lambda: lossjax.sgd(0.02, 0.9),
                                  lambda: lossjax.adam(schedules.cosine_decay(0.05, 1000))])
def test_stochastic_gradients_minimise_least_squares(make):
    # minibatches of 16 out of 256 noise-free examples: the gradient noise vanishes at w*
    x = jax.random.normal(jax.random.key(0), (256, 2), jnp.float32)
    w_star = jnp.array([1.0, -2.0])
    y = x @ w_star
    opt = make()

    def step(carry, key):
        params, state = carry
        idx = jax.random.randint(key, (16,), 0, 256)
        grads = jax.grad(lambda p: 0.5 * jnp.mean((x[idx] @ p["w"] - y[idx]) ** 2))(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    keys = jax.random.split(jax.random.key(1), 1000)
    params = {"w": jnp.zeros(2, jnp.float32)}
    (params, _), _ = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), keys))(params)
    np.testing.assert_allclose(params["w"], w_star, atol=1e-4)


def test_flax_nnx_model_trains_with_lossjax_adam():
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(8, 16, rngs=rngs)
            self.out = nnx.Linear(16, 4, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    model = Model(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, lossjax.inject_hyperparams(lossjax.adam)(learning_rate=1e-2),
                              wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(3), (64, 8), jnp.float32)
    y = (x[:, 0] > 0).astype(jnp.int32) + 2 * (x[:, 1] > 0).astype(jnp.int32)

    traces = []

    @nnx.jit
    def train_step(model, optimizer):
        traces.append(1)

        def loss_fn(model):
            return lossjax.softmax_cross_entropy_with_integer_labels(model(x), y)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    first = float(train_step(model, optimizer))
    for _ in range(50):  # (100 before: the loss is at 0.15x its start after 50 steps)
        last = float(train_step(model, optimizer))
    assert last < 0.3 * first
    # a learning rate of 0 freezes the model, without retracing the step
    lossjax.set_learning_rate(optimizer.opt_state, 0.0)
    frozen = float(train_step(model, optimizer))
    assert float(train_step(model, optimizer)) == frozen
    assert len(traces) == 1


def test_hyperparameters_may_be_traced_for_a_vmapped_sweep():
    xs, ys = _data()  # made once, outside the traced function
    start = mlp_params()

    def final_params(make, lr, b1):
        opt = make(lr, b1)
        params = start
        state = opt.init(params)
        for i in range(3):
            grads = jax.grad(mlp_loss)(params, xs[i], ys[i])
            updates, state = opt.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        return params

    rates, b1s = jnp.array([1e-3, 1e-2], jnp.float32), jnp.array([0.5, 0.9], jnp.float32)
    sweep = jax.vmap(lambda lr, b1: (final_params(lambda lr, b1: lossjax.adam(lr, b1=b1), lr, b1),
                                     final_params(lambda lr, b1: optax.adam(lr, b1=b1), lr, b1)))
    got, expected = jax.jit(sweep)(rates, b1s)  # one compilation for both
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 got, expected)

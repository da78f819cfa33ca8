"""add_decayed_weights, add_l1 and proximal_l1: formulas against NumPy, masks, placement in a
chain (L2 vs decoupled decay), and the lasso: exact zeros from the proximal step only."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.linear_model import Lasso

import lossjax


def make_tree(seed):
    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.normal(size=(3, 4))), "b": jnp.asarray(rng.normal(size=4))}


def weights_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def apply_once(transform, updates, params):
    return transform.update(updates, transform.init(params), params)[0]


def np_soft_threshold(z, s):
    z = np.asarray(z, np.float64)
    return np.sign(z) * np.maximum(np.abs(z) - s, 0.0)


def test_add_decayed_weights_against_numpy():
    u, w = make_tree(0), make_tree(1)
    out = apply_once(lossjax.add_decayed_weights(0.3), u, w)
    for k in u:
        np.testing.assert_allclose(out[k], np.asarray(u[k]) + 0.3 * np.asarray(w[k]), rtol=1e-15)


def test_add_l1_against_numpy_and_the_gradient_of_l1_penalty():
    u, w = make_tree(0), make_tree(1)
    w["w"] = w["w"].at[0, 0].set(0.0)
    out = apply_once(lossjax.add_l1(0.2), u, w)
    for k in u:
        np.testing.assert_allclose(out[k], np.asarray(u[k]) + 0.2 * np.sign(w[k]), rtol=1e-15)
    via_loss = jax.grad(lambda p: 0.2 * lossjax.l1_penalty(p))(w)
    for k in u:
        np.testing.assert_allclose(out[k], np.asarray(u[k]) + np.asarray(via_loss[k]), rtol=1e-15)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_proximal_l1_one_step_against_numpy():
    u, w = make_tree(0), make_tree(1)
    s = 0.6
    out = apply_once(lossjax.proximal_l1(s), u, w)
    new = optax.apply_updates(w, out)
    for k in u:
        expected = np_soft_threshold(np.asarray(w[k]) + np.asarray(u[k]), s)
        np.testing.assert_allclose(new[k], expected, rtol=1e-14, atol=1e-15)
        zeros = np.abs(np.asarray(w[k]) + np.asarray(u[k])) <= s
        assert zeros.any() and (~zeros).any()
        assert np.all(np.asarray(new[k])[zeros] == 0.0)  # exactly, not approximately


@pytest.mark.parametrize(
    "build", [lossjax.add_decayed_weights, lossjax.add_l1, lossjax.proximal_l1],
    ids=["add_decayed_weights", "add_l1", "proximal_l1"],
)
def test_masked_leaves_pass_through_unchanged(build):
    u, w = make_tree(0), make_tree(1)
    for mask in ({"w": True, "b": False}, weights_only):
        out = apply_once(build(0.5, mask=mask), u, w)
        assert out["b"] is u["b"]
        assert not np.allclose(out["w"], u["w"])


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_function_mask_sees_params_and_works_under_jit_in_a_chain():
    w = make_tree(1)
    g = make_tree(0)
    tx = optax.chain(lossjax.add_decayed_weights(0.1, mask=weights_only), lossjax.sgd(0.5),
                     lossjax.proximal_l1(0.05, mask=weights_only))
    state = tx.init(w)
    out, state = jax.jit(tx.update)(g, state, w)
    np.testing.assert_allclose(out["b"], -0.5 * np.asarray(g["b"]), rtol=1e-15)
    z = np.asarray(w["w"]) - 0.5 * (np.asarray(g["w"]) + 0.1 * np.asarray(w["w"]))
    np.testing.assert_allclose(optax.apply_updates(w, out)["w"], np_soft_threshold(z, 0.05),
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize(
    "build", [lossjax.add_decayed_weights, lossjax.add_l1, lossjax.proximal_l1],
    ids=["add_decayed_weights", "add_l1", "proximal_l1"],
)
def test_update_without_params_raises(build):
    tx = build(0.1)
    w = make_tree(0)
    with pytest.raises(ValueError, match="needs the parameters"):
        tx.update(w, tx.init(w))


@pytest.mark.parametrize(
    "build, name",
    [(lossjax.add_decayed_weights, "weight_decay"), (lossjax.add_l1, "strength"),
     (lossjax.proximal_l1, "strength")],
)
@pytest.mark.parametrize("value", [-0.1, float("nan")])
def test_negative_strength_raises_at_build_time(build, name, value):
    with pytest.raises(ValueError, match=name):
        build(value)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_proximal_l1_schedule_follows_the_step_count():
    w = {"w": jnp.asarray([1.0, -1.0, 0.25])}
    zero = {"w": jnp.zeros(3)}
    tx = lossjax.proximal_l1(lambda step: 0.1 * (step + 1))
    state = tx.init(w)
    expected = np.asarray(w["w"])
    for step in range(4):
        updates, state = jax.jit(tx.update)(zero, state, w)
        w = optax.apply_updates(w, updates)
        expected = np_soft_threshold(expected, 0.1 * (step + 1))
        np.testing.assert_allclose(w["w"], expected, rtol=1e-14, atol=1e-15)
    assert int(state.count) == 4
    np.testing.assert_array_equal(w["w"], [0.0, 0.0, 0.0])


# --- placement in a chain: L2 before the optimizer, decoupled decay after its scaling ---

def least_squares_problem():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(32, 5)))
    y = jnp.asarray(rng.normal(size=32))
    params = {"w": jnp.asarray(rng.normal(size=5)), "b": jnp.asarray(0.3)}
    loss = lambda p: lossjax.mse(x @ p["w"] + p["b"], y)  # noqa: E731
    return params, loss


def trajectory(tx, loss, params, steps=25):
    @jax.jit
    def step(carry, _):
        p, state = carry
        updates, state = tx.update(jax.grad(loss)(p), state, p)
        p = optax.apply_updates(p, updates)
        return (p, state), p

    return jax.lax.scan(step, (params, tx.init(params)), length=steps)[1]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_l2_penalty_in_the_loss_equals_add_decayed_weights_before_sgd(momentum):
    params, loss = least_squares_problem()
    lam, mask = 0.3, {"w": True, "b": False}
    with_penalty = trajectory(lossjax.sgd(0.05, momentum=momentum),
                              lambda p: loss(p) + lam * lossjax.l2_penalty(p, mask=mask), params)
    with_transform = trajectory(
        optax.chain(lossjax.add_decayed_weights(lam, mask=mask),
                    lossjax.sgd(0.05, momentum=momentum)),
        loss, params)
    without = trajectory(lossjax.sgd(0.05, momentum=momentum), loss, params)
    for k in params:
        np.testing.assert_allclose(with_transform[k], with_penalty[k], rtol=1e-13, atol=1e-15)
    assert not np.allclose(without["w"][-1], with_penalty["w"][-1], rtol=1e-3)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_decayed_weights_after_adam_scaling_is_adamw_and_differs_from_l2():
    params, loss = least_squares_problem()
    lr, wd, mask = 0.05, 0.3, {"w": True, "b": False}
    decoupled = trajectory(
        optax.chain(lossjax.scale_by_adam(), lossjax.add_decayed_weights(wd, mask=mask),
                    optax.scale(-lr)), loss, params)
    reference = trajectory(optax.adamw(lr, weight_decay=wd, mask=mask), loss, params)
    coupled = trajectory(
        optax.chain(lossjax.add_decayed_weights(wd, mask=mask), lossjax.adam(lr)), loss, params)
    for k in params:
        np.testing.assert_allclose(decoupled[k], reference[k], rtol=1e-12, atol=1e-14)
    assert not np.allclose(coupled["w"][-1], decoupled["w"][-1], rtol=1e-3)


# --- the lasso: ISTA (sgd + proximal_l1) against the L1 subgradient (sgd + add_l1) ---

def lasso_problem():
    rng = np.random.default_rng(3)
    n, d, support = 100, 20, np.array([1, 5, 11, 17])
    x = rng.normal(size=(n, d))
    w_true = np.zeros(d)
    w_true[support] = [2.0, -3.0, 1.5, -1.0]
    y = x @ w_true + 0.1 * rng.normal(size=n)
    return x, y, support


def test_lasso_proximal_l1_gives_exact_zeros_and_the_subgradient_does_not():
    x, y, support = lasso_problem()
    n, d = x.shape
    alpha = 0.1
    # objective ½·mse(Xw, y) + α·Σ|w| = (1/2n)·||Xw − y||² + α·||w||₁, sklearn's Lasso objective
    lr = 1.0 / np.linalg.eigvalsh(x.T @ x / n).max()
    loss = lambda p: 0.5 * lossjax.mse(jnp.asarray(x) @ p, jnp.asarray(y))  # noqa: E731
    w0 = jnp.zeros(d)
    ista = trajectory(optax.chain(lossjax.sgd(lr), lossjax.proximal_l1(lr * alpha)), loss, w0,
                      steps=500)[-1]
    subgradient = trajectory(optax.chain(lossjax.add_l1(alpha), lossjax.sgd(lr)), loss, w0,
                             steps=500)[-1]
    off = np.setdiff1d(np.arange(d), support)

    np.testing.assert_array_equal(np.flatnonzero(np.asarray(ista)), support)
    assert np.all(np.asarray(ista)[off] == 0.0)
    reference = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(x, y)
    np.testing.assert_allclose(ista, reference.coef_, atol=1e-6)

    # The subgradient method ends near the same solution but oscillates around zero: no entry
    # off the support is exactly zero.
    sub = np.asarray(subgradient)
    assert np.count_nonzero(sub[off] == 0.0) == 0
    assert np.abs(sub[off]).max() < lr * alpha * 2
    np.testing.assert_allclose(sub[support], reference.coef_[support], atol=0.05)


def test_add_decayed_weights_keeps_none_updates_none():
    # optax's convention: a None update (a sub-tree without gradients) stays None.
    w = (jnp.ones(2), {"a": jnp.full(2, 2.0), "b": jnp.ones(2)})
    tx = lossjax.add_decayed_weights(0.1)
    assert tx.update(None, tx.init(w), w)[0] is None
    out = tx.update((None, {"a": jnp.ones(2), "b": None}), tx.init(w), w)[0]
    assert out[0] is None and out[1]["b"] is None
    np.testing.assert_allclose(out[1]["a"], 1.0 + 0.1 * 2.0)

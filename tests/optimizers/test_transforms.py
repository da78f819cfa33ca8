"""Each transform alone, against a float64 NumPy reference written from its formula."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax import schedules

GRADS = np.random.default_rng(0).normal(size=(4, 5)) * np.array([[1.0, 1e-3, 0.0, 10.0, -2.0]])


def run_transform(tx, grads=GRADS, params=None):
    """Feed each row of ``grads`` to ``tx``; return the list of outputs and the final state."""
    params = jnp.zeros(grads.shape[1]) if params is None else params
    state = tx.init(params)
    outputs = []
    for g in grads:
        out, state = tx.update(jnp.asarray(g), state, params)
        outputs.append(np.asarray(out))
    return outputs, state


def adam_reference(grads, b1, b2, eps):
    m = v = np.zeros(grads.shape[1])
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        out.append((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out, m, v


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_scale_by_adam_matches_reference():
    got, state = run_transform(lossjax.scale_by_adam(b1=0.8, b2=0.99, eps=1e-6))
    expected, m, v = adam_reference(GRADS, 0.8, 0.99, 1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(state.mu, m, rtol=1e-12)
    np.testing.assert_allclose(state.nu, v, rtol=1e-12)
    assert int(state.count) == len(GRADS)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
@pytest.mark.parametrize("nesterov", [False, True])
def test_trace_matches_reference(nesterov):
    got, state = run_transform(lossjax.trace(0.7, nesterov=nesterov))
    b = np.zeros(GRADS.shape[1])
    for g, out in zip(GRADS, got, strict=True):
        b = g + 0.7 * b
        np.testing.assert_allclose(out, g + 0.7 * b if nesterov else b, rtol=1e-12)
    np.testing.assert_allclose(state.trace, b, rtol=1e-12)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
@pytest.mark.parametrize("centered, eps_in_sqrt", [(False, True), (False, False), (True, True)])
def test_scale_by_rms_matches_reference(centered, eps_in_sqrt):
    decay, eps, initial = 0.8, 1e-4, 0.5
    tx = lossjax.scale_by_rms(decay, eps, initial, eps_in_sqrt, centered=centered)
    got, state = run_transform(tx)
    m, v = np.zeros(GRADS.shape[1]), np.full(GRADS.shape[1], initial)
    for g, out in zip(GRADS, got, strict=True):
        m = decay * m + (1 - decay) * g
        v = decay * v + (1 - decay) * g**2
        second = v - m**2 if centered else v
        expected = g / np.sqrt(second + eps) if eps_in_sqrt else g / (np.sqrt(second) + eps)
        np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(state.nu, v, rtol=1e-12)
    assert hasattr(state, "mu") == centered  # optax's layouts: ScaleByRStdDevState if centered


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_scale_by_sum_of_squares_matches_reference_and_is_zero_where_sum_is_zero():
    got, state = run_transform(lossjax.scale_by_sum_of_squares(0.0, 1e-7))
    s = np.zeros(GRADS.shape[1])
    for g, out in zip(GRADS, got, strict=True):
        s = s + g**2
        expected = np.where(s > 0, g / np.sqrt(np.where(s > 0, s, 1.0) + 1e-7), 0.0)
        np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert np.all(np.stack(got)[:, 2] == 0)  # the all-zero column: 0, not 0/0
    np.testing.assert_allclose(state.sum_of_squares, s, rtol=1e-12)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_scale_by_learning_rate_with_float_and_schedule():
    got, state = run_transform(lossjax.scale_by_learning_rate(0.3))
    np.testing.assert_allclose(got, -0.3 * GRADS, rtol=1e-15)  # a float64 constant
    assert state == optax.EmptyState()  # optax's layout: a float rate is not in the state
    schedule = schedules.exponential_decay(1.0, 1, 0.5)
    got, state = run_transform(lossjax.scale_by_learning_rate(schedule))
    np.testing.assert_allclose(got, -(0.5 ** np.arange(4))[:, None] * GRADS, rtol=1e-7)
    assert int(state.count) == len(GRADS)


def test_set_learning_rate_reaches_every_injected_rate_in_a_chain():
    sgd = lossjax.inject_hyperparams(lossjax.sgd)
    opt = optax.chain(lossjax.clip_by_global_norm(1.0), sgd(0.1, momentum=0.5), sgd(0.2))
    state = lossjax.set_learning_rate(opt.init(jnp.zeros(3)), 0.25)
    rates = optax.tree_utils.tree_get_all_with_path(state, "learning_rate")
    assert [float(rate) for _, rate in rates] == [0.25, 0.25]
    with pytest.raises(ValueError, match="learning_rate"):
        lossjax.set_learning_rate(state, -1.0)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_clip_by_global_norm_matches_reference():
    tree = {"a": jnp.asarray(GRADS[0]), "b": jnp.asarray(GRADS[1:3])}
    norm = np.sqrt(np.sum(GRADS[:3] ** 2))
    np.testing.assert_allclose(lossjax.global_norm(tree), norm, rtol=1e-12)
    clipped, _ = lossjax.clip_by_global_norm(1.0).update(tree, lossjax.ClipByGlobalNormState())
    np.testing.assert_allclose(clipped["b"], GRADS[1:3] / norm, rtol=1e-12)
    np.testing.assert_allclose(lossjax.global_norm(clipped), 1.0, rtol=1e-12)


def test_mixed_dtype_tree_keeps_each_leaf_dtype(x64):
    params = {"h": jnp.ones(3, jnp.float16), "b": jnp.ones(2, jnp.bfloat16),
              "s": jnp.ones(4, jnp.float32), "d": jnp.ones(1, jnp.float64)}
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    opt = optax.chain(lossjax.clip_by_global_norm(1.0), lossjax.adam(1e-2))
    state = opt.init(params)
    updates, new_state = jax.jit(opt.update)(grads, state, params)
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, params)
    assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)
    # every leaf took Adam's first step: -lr · clip(g)/|clip(g)| = -lr in every coordinate
    for u in jax.tree.leaves(updates):
        np.testing.assert_allclose(np.asarray(u, np.float64), -1e-2, rtol=2e-3)


def test_per_leaf_arithmetic_is_traced_once_per_leaf_signature():
    params = {f"w{i}": jnp.ones(3, jnp.float32) for i in range(20)}
    params["matrix"] = jnp.ones((2, 2), jnp.float32)
    opt = lossjax.scale_by_adam()
    jaxpr = jax.make_jaxpr(opt.update)(params, opt.init(params))
    calls = [e for e in jaxpr.eqns if e.primitive.name == "jit" and len(e.outvars) == 3]
    assert len(calls) == 21
    assert len({id(e.params["jaxpr"]) for e in calls}) == 2  # shapes (3,) and (2, 2)

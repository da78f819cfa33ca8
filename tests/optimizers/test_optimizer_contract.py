"""Promises of particular optimizers beyond the registry's contract (``test_contract.py``):
integer gradients as optax, safe ``eps = 0``, ``b2`` near 1 against NumPy, overflow-free
norms, scalar rates, a saturating step count, Rprop's and Adadelta's conventions."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

import lossjax


def make(name, learning_rate=1e-2):
    return getattr(lossjax, name)(learning_rate)


def test_positional_adamw_call_sets_eps_root_not_weight_decay():
    params = jnp.array([1.0, -2.0])
    grads = jnp.array([0.5, 0.25])
    ours, theirs = lossjax.adamw(1e-1, 0.9, 0.999, 1e-8, 1e-3), optax.adamw(
        1e-1, 0.9, 0.999, 1e-8, 1e-3)
    got = ours.update(grads, ours.init(params), params)[0]
    expected = theirs.update(grads, theirs.init(params), params)[0]
    # rtol covers float32 rounding; a weight decay of 1e-3 would move the update by 1e-3.
    np.testing.assert_allclose(got, expected, rtol=2e-5)


@pytest.mark.parametrize("name", ["adam", "sgd", "signum", "adafactor", "lamb", "radam"])
def test_integer_leaves_get_float_updates_as_optax(name):
    params = {"w": jnp.array([1.0, 2.0]), "i": jnp.array([1, 2], jnp.int32)}
    grads = {"w": jnp.array([0.5, -1.0]), "i": jnp.array([3, -4], jnp.int32)}
    opt, ref = make(name), getattr(optax, name)(1e-2)

    @jax.jit  # both first updates in one compilation, not op by op
    def first_updates(grads, params):
        return (opt.update(grads, opt.init(params), params)[0],
                ref.update(grads, ref.init(params), params)[0])

    updates, expected = first_updates(grads, params)
    assert updates["i"].dtype == jnp.float32
    assert np.all(np.asarray(updates["i"]) != 0)  # not truncated to an integer 0
    np.testing.assert_allclose(updates["i"], expected["i"], rtol=1e-5)


@pytest.mark.parametrize("build", [
    lambda: lossjax.adam(1e-2, eps=0.0), lambda: lossjax.adamw(1e-2, eps=0.0, weight_decay=0.0),
    lambda: lossjax.nadam(1e-2, eps=0.0), lambda: lossjax.amsgrad(1e-2, eps=0.0),
    lambda: lossjax.adamax(1e-2, eps=0.0), lambda: lossjax.radam(1e-2, eps=0.0),
    lambda: lossjax.adabelief(1e-2, eps=0.0, eps_root=0.0),
    lambda: lossjax.scale_by_yogi(eps=0.0, initial_accumulator_value=0.0),
    lambda: lossjax.adan(1e-2, eps=0.0, eps_root=0.0), lambda: lossjax.ademamix(1e-2, eps=0.0),
    lambda: lossjax.rmsprop(1e-2, eps=0.0), lambda: lossjax.rmsprop(1e-2, eps=0.0,
                                                                   eps_in_sqrt=False),
    lambda: lossjax.novograd(1e-2, eps=0.0), lambda: lossjax.lamb(1e-2, eps=0.0),
    lambda: lossjax.adagrad(1e-2, 0.0, 0.0),
])
def test_eps_zero_gives_zero_steps_for_zero_gradients_not_nan(build):
    opt = build()
    params = jnp.array([1.0, -1.0, 0.5])
    state = opt.init(params)
    for g in ([0.0, 0.0, 0.0], [0.0, 1e-3, 0.0]):
        updates, state = opt.update(jnp.array(g), state, params)
        assert np.all(np.isfinite(np.asarray(updates)))
        assert float(updates[0]) == 0.0 and float(updates[2]) == 0.0


def test_b2_that_rounds_to_one_in_float32_still_steps():
    b2 = 1.0 - 1e-9
    assert np.float32(b2) == 1.0
    grads = np.random.default_rng(0).normal(size=(5, 3))
    tx = lossjax.scale_by_adam(b2=b2)
    state = tx.init(jnp.zeros(3, jnp.float32))
    m = v = np.zeros(3)
    for t, g in enumerate(grads, start=1):
        out, state = tx.update(jnp.asarray(g, jnp.float32), state)
        m = 0.9 * m + 0.1 * g
        v = b2 * v + (1 - b2) * g**2
        expected = (m / (1 - 0.9**t)) / (np.sqrt(v / -np.expm1(t * np.log(b2))) + 1e-8)
        np.testing.assert_allclose(out, expected, rtol=2e-3)


def test_global_norm_and_clipping_do_not_overflow_near_1e20():
    tree = {"a": jnp.array([3e20, 0.0], jnp.float32), "b": jnp.array([[4e20]], jnp.float32)}
    np.testing.assert_allclose(lossjax.global_norm(tree), 5e20, rtol=1e-6)
    clipped, _ = lossjax.clip_by_global_norm(1.0).update(tree, None)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[0.8]], rtol=1e-6)
    small = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}  # the plain path is unchanged
    np.testing.assert_allclose(jax.jit(lossjax.global_norm)(small), 5.0, rtol=1e-7)


def test_learning_rate_of_shape_1_keeps_a_scalar_parameter_scalar():
    param = jnp.asarray(2.0, jnp.float32)
    for opt in (lossjax.sgd(jnp.array([0.1])), lossjax.adam(jnp.array([0.1])),
                lossjax.lion(jnp.array([0.1]))):
        updates, _ = opt.update(jnp.asarray(1.0), opt.init(param), param)
        assert updates.shape == ()
    with pytest.raises(ValueError, match="learning_rate"):
        lossjax.sgd(jnp.array([0.1, 0.2]))


@pytest.mark.parametrize("name", ["adam", "amsgrad", "radam", "adan", "adopt", "ademamix",
                                  "lion", "novograd", "adafactor", "yogi"])
def test_step_count_saturates_at_the_int32_limit(name):
    opt = make(name)
    params = jnp.ones(3, jnp.float32)
    limit = jnp.iinfo(jnp.int32).max
    state = jax.tree.map(lambda x: jnp.full_like(x, limit) if x.dtype == jnp.int32 else x,
                         opt.init(params))
    for _ in range(2):
        updates, state = opt.update(jnp.array([0.5, -1.0, 2.0]), state, params)
        assert np.all(np.isfinite(np.asarray(updates)))
        counts = [int(x) for x in jax.tree.leaves(state) if x.dtype == jnp.int32]
        assert counts and all(c == limit for c in counts)  # no wrap to a negative count


def rprop_reference(grads, lr, eta_minus=0.5, eta_plus=1.2, lo=1e-6, hi=50.0):
    """iRprop⁻ (PyTorch's Rprop), float64."""
    eta = np.full(grads.shape[1], lr)
    previous = np.zeros(grads.shape[1])
    steps = []
    for g in grads:
        s = g * previous
        eta = np.where(s > 0, np.minimum(eta * eta_plus, hi),
                       np.where(s < 0, np.maximum(eta * eta_minus, lo), eta))
        g = np.where(s < 0, 0.0, g)
        previous = g
        steps.append(-eta * np.sign(g))
    return steps


def test_rprop_matches_the_algorithm_and_optax_one_step_late():
    grads = np.random.default_rng(0).normal(size=(12, 6))
    opt, ref = lossjax.rprop(0.1), optax.rprop(0.1)
    state, ref_state = opt.init(jnp.zeros(6)), ref.init(jnp.zeros(6))
    ours, theirs = [], []
    for g in grads:
        u, state = opt.update(jnp.asarray(g, jnp.float32), state)
        r, ref_state = ref.update(jnp.asarray(g, jnp.float32), ref_state)
        ours.append(np.asarray(u))
        theirs.append(np.asarray(r))
    np.testing.assert_allclose(ours, rprop_reference(grads, 0.1), rtol=1e-6)
    np.testing.assert_array_equal(theirs[0], 0.0)  # optax's first step does not move
    # optax applies each step one iteration late (dropped where the next gradient flips)
    ours, theirs = np.array(ours), np.array(theirs)
    flipped = grads[1:] * -ours[:-1] < 0
    np.testing.assert_allclose(theirs[1:], np.where(flipped, 0.0, ours[:-1]), rtol=1e-6)


def test_adadelta_without_learning_rate_descends_with_rate_one():
    params = jnp.array([1.0, -2.0])
    grads = jnp.array([0.5, -0.25])
    default, one = lossjax.adadelta(), lossjax.adadelta(1.0)
    expected, _ = optax.adadelta(1.0).update(grads, optax.adadelta(1.0).init(params), params)
    got, _ = default.update(grads, default.init(params), params)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got, one.update(grads, one.init(params), params)[0], rtol=0)
    assert np.all(np.sign(np.asarray(got)) == -np.sign(np.asarray(grads)))

"""What every lossjax optimizer promises beyond its trajectory: optax's signature, integer
and ``float0`` leaves, safe ``eps = 0``, ``b2`` near 1, overflow-free norms, scalar rates,
a saturating step count, ``eval_shape``, half precision, checkpoints, argument checks."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

import lossjax

OPTIMIZERS = [
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamaxw", "adamw",
    "adan", "ademamix", "adopt", "amsgrad", "lamb", "lars", "lion", "nadam", "nadamw",
    "novograd", "radam", "rmsprop", "rprop", "sgd", "sign_sgd", "signum", "yogi",
]
TRANSFORMS = [
    "clip_by_block_rms", "clip_by_global_norm", "scale_by_adadelta", "scale_by_adam",
    "scale_by_adamax", "scale_by_adan", "scale_by_ademamix", "scale_by_adopt",
    "scale_by_amsgrad", "scale_by_belief", "scale_by_factored_rms", "scale_by_lion",
    "scale_by_novograd", "scale_by_param_block_rms", "scale_by_radam", "scale_by_rms",
    "scale_by_rprop", "scale_by_sign", "scale_by_trust_ratio", "scale_by_yogi",
]


def reference(name):
    return getattr(optax, name, None) or getattr(optax.contrib, name)


def make(name, learning_rate=1e-2):
    return getattr(lossjax, name)(learning_rate)


def parameters(fn, kinds):
    return [(p.name, p.kind, None if callable(p.default) else p.default)
            for p in inspect.signature(fn).parameters.values() if p.kind in kinds]


POSITIONAL = (inspect.Parameter.POSITIONAL_OR_KEYWORD,)
ALL = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_signature_is_optaxs(name):
    # a call ported by changing the prefix optax. -> lossjax. means the same thing
    assert parameters(getattr(lossjax, name), ALL) == parameters(reference(name), ALL)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transform_positional_parameters_are_optaxs(name):
    assert (parameters(getattr(lossjax, name), POSITIONAL)
            == parameters(reference(name), POSITIONAL))


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
    opt, ref = make(name), reference(name)(1e-2)

    @jax.jit  # both first updates in one compilation, not op by op
    def first_updates(grads, params):
        return (opt.update(grads, opt.init(params), params)[0],
                ref.update(grads, ref.init(params), params)[0])

    updates, expected = first_updates(grads, params)
    assert updates["i"].dtype == jnp.float32
    assert np.all(np.asarray(updates["i"]) != 0)  # not truncated to an integer 0
    np.testing.assert_allclose(updates["i"], expected["i"], rtol=1e-5)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float0_gradients_of_integer_leaves_leave_them_unchanged(name):
    params = {"w": jnp.array([1.0, 2.0]), "steps": jnp.array([7, 9], jnp.int32)}
    grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2), allow_int=True)(params)
    assert grads["steps"].dtype == jax.dtypes.float0
    opt = make(name)
    state = opt.init(params)
    new = params
    for _ in range(2):  # ADOPT's first step only measures v
        updates, state = jax.jit(opt.update)(grads, state, new)
        new = optax.apply_updates(new, updates)
    np.testing.assert_array_equal(new["steps"], params["steps"])
    assert new["steps"].dtype == jnp.int32
    assert np.all(np.asarray(new["w"]) != np.asarray(params["w"]))


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


def mlp_spec(dtype):
    return {"w": jax.ShapeDtypeStruct((128, 160), dtype), "b": jax.ShapeDtypeStruct((160,), dtype)}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_init_under_eval_shape_is_a_tree_of_arrays(name):
    opt = make(name)
    shapes = jax.eval_shape(opt.init, mlp_spec(jnp.float32))
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(shapes))
    assert jax.tree.map(jax.typeof, shapes) == jax.tree.map(
        jax.typeof, opt.init(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                                          mlp_spec(jnp.float32))))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_half_precision_params_step_from_float32_arithmetic(name, dtype):
    # optax #1755: in float16, eps = 1e-8 is 0 and a zero gradient gave 0/0
    opt = make(name, 1e-3)
    params = {"w": jnp.array([1.0, -1.0, 0.5], dtype)}
    state = opt.init(params)
    ref = make(name, 1e-3)  # the same steps from float32 copies
    params32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    state32 = ref.init(params32)
    for g in ([0.0, 0.0, 0.0], [1e-4, 0.0, -3.0], [0.0, 1e-7, 0.0]):
        grads = {"w": jnp.array(g, dtype)}
        updates, state = opt.update(grads, state, params)
        assert updates["w"].dtype == dtype
        assert np.all(np.isfinite(np.asarray(updates["w"], np.float32)))
        updates32, state32 = ref.update(jax.tree.map(lambda x: x.astype(jnp.float32), grads),
                                        state32, params32)
        if g == [0.0, 0.0, 0.0]:  # first step: same moments, so float32's answer, rounded
            np.testing.assert_allclose(np.asarray(updates["w"], np.float32),
                                       updates32["w"], rtol=1e-2, atol=1e-6)
        params = optax.apply_updates(params, updates)
        params32 = optax.apply_updates(params32, updates32)
    assert jax.tree.map(lambda x: x.dtype, opt.init(params)) == jax.tree.map(
        lambda x: x.dtype, state)


@pytest.mark.parametrize("name", ["lion", "lamb", "adafactor"])
def test_orbax_restore_mid_run_continues_bit_for_bit(name, tmp_path):
    import orbax.checkpoint as ocp

    opt = make(name)
    k = jax.random.split(jax.random.key(0), 3)
    params = {"w": jax.random.normal(k[0], (128, 160)), "b": jnp.zeros(160)}
    xs = jax.random.normal(k[1], (20, 8, 128))

    @jax.jit
    def step(params, state, x):
        grads = jax.grad(lambda p: jnp.mean(jnp.tanh(x @ p["w"] + p["b"]) ** 2))(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    for i in range(10):
        params, state = step(params, state, xs[i])
    path = tmp_path / "checkpoint"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, (params, state))
        checkpointer.wait_until_finished()
    for i in range(10, 20):
        params, state = step(params, state, xs[i])
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, jax.tree.map(jnp.zeros_like, (params, state)))
    restored_params, restored_state = restored
    assert jax.tree.structure(restored_state) == jax.tree.structure(state)
    for i in range(10, 20):
        restored_params, restored_state = step(restored_params, restored_state, xs[i])
    jax.tree.map(np.testing.assert_array_equal, (restored_params, restored_state),
                 (params, state))


BAD = [
    ("learning_rate", lambda n: getattr(lossjax, n)(-1.0)),
    ("b1", lambda n: getattr(lossjax, n)(1e-3, b1=1.0)),
    ("b2", lambda n: getattr(lossjax, n)(1e-3, b2=-0.1)),
    ("eps", lambda n: getattr(lossjax, n)(1e-3, eps=-1e-8)),
    ("weight_decay", lambda n: getattr(lossjax, n)(1e-3, weight_decay=-1.0)),
]


def _accepts(name, argument):
    return argument in inspect.signature(getattr(lossjax, name)).parameters


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_bad_hyperparameters_raise_naming_the_argument(name):
    checked = 0
    for argument, build in BAD:
        if not _accepts(name, argument) or (name == "adafactor" and argument == "learning_rate"):
            continue
        with pytest.raises(ValueError, match=argument):
            build(name)
        checked += 1
    assert checked >= 1
    extra = {"adafactor": ("decay_rate", dict(decay_rate=1.5)),
             "adan": ("b3", dict(b3=1.0)), "ademamix": ("b3", dict(b3=-0.5)),
             "adadelta": ("rho", dict(rho=1.0)), "signum": ("beta", dict(beta=1.0)),
             "rprop": ("eta_minus", dict(eta_minus=1.5)),
             "lars": ("trust_coefficient", dict(trust_coefficient=-1.0)),
             "yogi": ("b1", dict(b1=-0.1))}
    if name in extra:
        argument, kwargs = extra[name]
        with pytest.raises(ValueError, match=argument):
            getattr(lossjax, name)(1e-3, **kwargs)


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

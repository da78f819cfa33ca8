"""inject_hyperparams over the registry: for every optimizer entry, the wrapped optimizer is
bitwise the unwrapped one over 300 steps (optax #1532: optax's drifts by ulps), and the
state's dtypes after ``update`` are those after ``init`` (tunix #1880)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._registry import ENTRIES, Entry
from tests.optimizers.test_contract import _grads, _params

STEPS = 300
OPTIMIZERS = [e for e in ENTRIES if e.kind == "optimizer" and not e.id and e.params is None
              and "jit" not in e.exempt and "inject_bitwise" not in e.exempt]


def _arguments(entry: Entry) -> dict:
    """The learning rate when it has no default; every other argument at its default."""
    rate = inspect.signature(entry.fn).parameters.get("learning_rate")
    return {"learning_rate": 1e-2} if rate is not None and rate.default is rate.empty else {}


@pytest.mark.parametrize("entry", OPTIMIZERS, ids=[e.test_id for e in OPTIMIZERS])
def test_inject_hyperparams_is_bitwise_the_optimizer_and_keeps_state_dtypes(entry):
    plain = entry.fn(**_arguments(entry))
    injected = lossjax.inject_hyperparams(entry.fn)(**_arguments(entry))

    def trajectory(opt):
        def body(carry, i):
            p, s = carry
            g = jax.tree.map(lambda x: x * jnp.cos(i.astype(x.dtype)), _grads(0))
            u, s = opt.update(g, s, p, **entry.kwargs(g, p))
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(body, (_params(), opt.init(_params())), jnp.arange(STEPS))[0]

    # Two programs, as a user compares them (one program may fuse the two differently).
    p_plain, _ = jax.jit(lambda: trajectory(plain))()
    p_injected, s_injected = jax.jit(lambda: trajectory(injected))()
    jax.tree.map(np.testing.assert_array_equal, p_injected, p_plain)
    start = jax.tree.map(jax.typeof, injected.init(_params()))
    assert jax.tree.map(jax.typeof, s_injected) == start
    assert not all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(p_plain), jax.tree.leaves(_params()), strict=True))


def test_a_changed_hyperparameter_takes_effect_and_restoring_it_is_bitwise_again():
    opt = lossjax.inject_hyperparams(lossjax.adamw)(learning_rate=0.1, weight_decay=0.01)
    plain = lossjax.adamw(0.1, weight_decay=0.01)
    params, grads = _params(), _grads(0)
    state, plain_state = opt.init(params), plain.init(params)
    update = jax.jit(opt.update)
    u, state = update(grads, state, params)
    u_plain, plain_state = jax.jit(plain.update)(grads, plain_state, params)
    jax.tree.map(np.testing.assert_array_equal, u, u_plain)
    state.hyperparams["learning_rate"] = jnp.asarray(0.05, jnp.float32)
    halved, _ = update(grads, state, params)
    ref, _ = lossjax.adamw(0.05, weight_decay=0.01).update(grads, plain_state, params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), halved, ref)
    state.hyperparams["learning_rate"] = jnp.asarray(0.1, jnp.float32)
    again, _ = update(grads, state, params)
    jax.tree.map(np.testing.assert_array_equal, again,
                 jax.jit(plain.update)(grads, plain_state, params)[0])


def test_changed_decays_and_eps_root_give_the_optimizer_built_with_them():
    # the scalar-select path: 1 − b1, log b2, √(1 − b2) and eps_root = 0's √v/√c follow
    # the held values once they are changed
    opt = lossjax.inject_hyperparams(lossjax.adamw)(learning_rate=1e-2)
    params, grads = _params(), _grads(0)
    state = opt.init(params)
    state.hyperparams.update(b1=jnp.float32(0.5), b2=jnp.float32(0.9),
                             eps_root=jnp.float32(1e-3), weight_decay=jnp.float32(0.1))
    plain = lossjax.adamw(1e-2, b1=0.5, b2=0.9, eps_root=1e-3, weight_decay=0.1)
    plain_state = plain.init(params)
    update, plain_update = jax.jit(opt.update), jax.jit(plain.update)
    for _ in range(3):
        u, state = update(grads, state, params)
        want, plain_state = plain_update(grads, plain_state, params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-6), u, want)


def test_b2_that_rounds_to_one_in_float32_is_bitwise_the_plain_optimizer():
    b2 = 1.0 - 1e-9  # 1.0 in float32: log b2 and 1 − b2 come from the Python number
    opt = lossjax.inject_hyperparams(lossjax.adam)(learning_rate=1e-2, b2=b2)
    plain = lossjax.adam(1e-2, b2=b2)
    params, grads = _params(), _grads(0)
    (u, _), (want, _) = jax.jit(lambda: (opt.update(grads, opt.init(params), params),
                                         plain.update(grads, plain.init(params), params)))()
    jax.tree.map(np.testing.assert_array_equal, u, want)
    assert np.all(np.abs(np.asarray(u["w"])) > 0)


def _other_tree():
    return {**{f"w{i}": jax.random.normal(jax.random.key(i), (256, 256 + 3 * i)) * 0.05
               for i in range(4)}, "b": jnp.linspace(-1.0, 1.0, 7)}


@pytest.mark.parametrize("name, kwargs", [
    ("adam", {}), ("adamw", {}), ("adamw", {"weight_decay": 0.0}), ("amsgrad", {}),
    ("nadamw", {}), ("radam", {}), ("yogi", {}), ("adabelief", {}), ("adamax", {}),
    ("sgd", {"momentum": 0.9}), ("lion", {})])
def test_bitwise_on_another_tree(name, kwargs):
    """Larger leaves of several shapes compile to other fusions than the registry's tree;
    the wrapped optimizer must still be bitwise the plain one (a 0/0 guard or a skipped
    ``weight_decay=0`` in one form only changes XLA:CPU's rounding: 50 steps find it)."""
    fn = getattr(lossjax, name)
    params = _other_tree()

    def trajectory(opt):
        def body(carry, i):
            p, s = carry
            g = jax.tree.map(lambda x: jnp.cos(3.0 * x + i.astype(x.dtype)), p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.jit(lambda: jax.lax.scan(body, (params, opt.init(params)),
                                            jnp.arange(50))[0][0])()

    plain = trajectory(fn(1e-3, **kwargs))
    injected = trajectory(lossjax.inject_hyperparams(fn)(learning_rate=1e-3, **kwargs))
    jax.tree.map(np.testing.assert_array_equal, injected, plain)

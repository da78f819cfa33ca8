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
from lossjax.optimizers import _wrappers
from tests.optimizers._registry import ENTRIES, Entry
from tests.optimizers.test_contract import _grads, _params

STEPS = 300
OPTIMIZERS = [e for e in ENTRIES if e.kind == "optimizer" and not e.id and e.params is None
              and "jit" not in e.exempt and "inject_bitwise" not in e.exempt]


# The tests compile with LLVM at -O0 and XLA:CPU's older loop emitters (the root
# conftest.py); users get the default optimised code, whose fused multiply-adds follow the
# program's structure differently. Bitwise checks also run with it, per program.
DEFAULT_CODEGEN = {"xla_backend_optimization_level": 3,
                   "xla_llvm_disable_expensive_passes": False,
                   "xla_cpu_use_fusion_emitters": True}


def _arguments(entry: Entry) -> dict:
    """The learning rate when it has no default; every other argument at its default."""
    rate = inspect.signature(entry.fn).parameters.get("learning_rate")
    return {"learning_rate": 1e-2} if rate is not None and rate.default is rate.empty else {}


@pytest.mark.parametrize("entry", OPTIMIZERS, ids=[e.test_id for e in OPTIMIZERS])
def test_inject_hyperparams_is_bitwise_the_optimizer_and_keeps_state_dtypes(entry,
                                                                            monkeypatch):
    plain = entry.fn(**_arguments(entry))
    injected = lossjax.inject_hyperparams(entry.fn)(**_arguments(entry))
    paths = []
    scalar_select = _wrappers._scalar_select_update

    def recording(*args, **kwargs):
        out = scalar_select(*args, **kwargs)
        paths.append("scalar selects" if out is not None else "lax.cond")
        return out

    monkeypatch.setattr(_wrappers, "_scalar_select_update", recording)

    def trajectory(opt):
        def body(carry, i):
            p, s = carry
            g = jax.tree.map(lambda x: x * jnp.cos(i.astype(x.dtype)), _grads(0))
            u, s = opt.update(g, s, p, **entry.kwargs(g, p))
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(body, (_params(), opt.init(_params())), jnp.arange(STEPS))[0]

    # Two programs, as a user compares them (one program may fuse the two differently),
    # compiled as users compile them (fused multiply-adds formed)
    p_plain, _ = jax.jit(lambda: trajectory(plain), compiler_options=DEFAULT_CODEGEN)()
    p_injected, s_injected = jax.jit(lambda: trajectory(injected),
                                     compiler_options=DEFAULT_CODEGEN)()
    jax.tree.map(np.testing.assert_array_equal, p_injected, p_plain)
    start = jax.tree.map(jax.typeof, injected.init(_params()))
    assert jax.tree.map(jax.typeof, s_injected) == start
    assert not all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(p_plain), jax.tree.leaves(_params()), strict=True))
    # the fast path, not the lax.cond fallback (none when no number is held)
    assert set(paths) <= {"scalar selects"}
    assert paths or not s_injected.hyperparams


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


def _tree_trajectory(opt, params, steps, compiler_options=None):
    def body(carry, i):
        p, s = carry
        g = jax.tree.map(lambda x: jnp.cos(3.0 * x + i.astype(x.dtype)), p)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    run = jax.jit(lambda: jax.lax.scan(body, (params, opt.init(params)),
                                       jnp.arange(steps))[0][0],
                  compiler_options=compiler_options)
    return run()


@pytest.mark.parametrize("name, kwargs", [
    ("adam", {}), ("adamw", {}), ("adamw", {"weight_decay": 0.0}), ("amsgrad", {}),
    ("nadam", {}), ("nadamw", {}), ("radam", {}), ("yogi", {}), ("adabelief", {}),
    ("adamax", {}), ("sgd", {"momentum": 0.9}), ("lion", {}), ("adadelta", {}),
    ("lamb", {}), ("novograd", {}), ("ftrl", {})])
def test_bitwise_on_another_tree(name, kwargs):
    """Larger leaves of several shapes compile to other fusions than the registry's tree;
    the wrapped optimizer must still be bitwise the plain one (a 0/0 guard, or a known 0
    such as ``weight_decay=0`` skipped in one form only, changes XLA:CPU's rounding: 50
    steps find it)."""
    fn = getattr(lossjax, name)
    params = _other_tree()
    plain = _tree_trajectory(fn(1e-3, **kwargs), params, 50)
    injected = _tree_trajectory(
        lossjax.inject_hyperparams(fn)(learning_rate=1e-3, **kwargs), params, 50)
    jax.tree.map(np.testing.assert_array_equal, injected, plain)


@pytest.mark.parametrize("name, kwargs", [
    ("adamw", {}), ("adamw", {"weight_decay": 0.0}), ("nadam", {}), ("adadelta", {}),
    ("lamb", {}), ("ftrl", {})])
def test_bitwise_with_the_default_optimised_code(name, kwargs):
    """The same check compiled as users compile (fused multiply-adds where the optimised
    code forms them): the held forms of a known 0 (``eps_root``, ``weight_decay``) must
    keep the plain optimizer's contractions."""
    fn = getattr(lossjax, name)
    params = {k: v for k, v in _other_tree().items() if k in ("w0", "b")}
    plain = _tree_trajectory(fn(1e-3, **kwargs), params, 100, DEFAULT_CODEGEN)
    injected = _tree_trajectory(lossjax.inject_hyperparams(fn)(learning_rate=1e-3, **kwargs),
                                params, 100, DEFAULT_CODEGEN)
    jax.tree.map(np.testing.assert_array_equal, injected, plain)


@pytest.mark.parametrize("name", ["adadelta", "lamb", "nadam"])
def test_a_hyperparameter_given_as_zero_takes_effect_once_changed(name):
    """``weight_decay`` (and ``eps_root``) given as 0 are held too: the plain optimizer
    skips the work for a known 0, the wrapped one does it once the held value changes."""
    fn = getattr(lossjax, name)
    field, value = ("eps_root", 1e-3) if name == "nadam" else ("weight_decay", 0.1)
    opt = lossjax.inject_hyperparams(fn)(learning_rate=1e-2)
    params, grads = _params(), _grads(0)
    state = opt.init(params)
    assert float(state.hyperparams[field]) == 0.0
    state.hyperparams[field] = jnp.float32(value)
    u, _ = jax.jit(opt.update)(grads, state, params)
    changed = fn(1e-2, **{field: value})
    want, _ = changed.update(grads, changed.init(params), params)
    unchanged, _ = fn(1e-2).update(grads, fn(1e-2).init(params), params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-6), u, want)
    assert not all(np.allclose(a, b, rtol=1e-4) for a, b in
                   zip(jax.tree.leaves(u), jax.tree.leaves(unchanged), strict=True))


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "lamb", "yogi", "sgd", "lion"])
def test_optax_factories_take_the_scalar_path_and_are_bitwise_optaxs(name, monkeypatch):
    """optax's own optimizers through lossjax's wrapper: a held number crosses optax's
    jitted helpers (``optax.tree.bias_correction``) as a pytree, so they take the fast
    path too, and stay bitwise the plain optax optimizer."""
    paths = []
    scalar_select = _wrappers._scalar_select_update

    def recording(*args, **kwargs):
        out = scalar_select(*args, **kwargs)
        paths.append(out is not None)
        return out

    monkeypatch.setattr(_wrappers, "_scalar_select_update", recording)
    fn = getattr(optax, name)
    params = {k: v for k, v in _other_tree().items() if k in ("w0", "b")}
    plain = _tree_trajectory(fn(1e-3), params, 50, DEFAULT_CODEGEN)
    injected = _tree_trajectory(lossjax.inject_hyperparams(fn)(learning_rate=1e-3), params,
                                50, DEFAULT_CODEGEN)
    jax.tree.map(np.testing.assert_array_equal, injected, plain)
    assert paths and all(paths)

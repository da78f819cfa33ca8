"""Flat parameter buffers (``lossjax.flatten_params``): the layout against a NumPy reference,
elementwise optimizers on the buffers equal to the per-leaf update bit for bit, gradients
through ``unflatten``, state conversion both ways (optax's states too), the guard against
non-elementwise optimizers, and a 2x4 mesh with FSDP-sharded parameters (in a child
process with 8 CPU devices)."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests._xla import run_on_cpu_devices

SHAPES = {"dense": {"w": ((5, 3), jnp.float32), "b": ((3,), jnp.float32)},
          "emb": ((4, 2, 2), jnp.bfloat16), "norm": ((6,), jnp.bfloat16),
          "scalar": ((), jnp.float32), "out": ((3, 4), jnp.float32)}
LABELS = {"dense": {"w": "decay", "b": "no_decay"}, "emb": "decay", "norm": "no_decay",
          "scalar": "no_decay", "out": "decay"}


def _tree(seed, scale=1.0):
    leaves, treedef = jax.tree.flatten(SHAPES, is_leaf=lambda x: isinstance(x, tuple)
                                       and len(x) == 2 and isinstance(x[0], tuple))
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return treedef.unflatten([(scale * jax.random.normal(k, shape)).astype(dtype)
                              for k, (shape, dtype) in zip(keys, leaves, strict=True)])


def _decay_mask(layout):
    return {name: label == "decay" for name, label in layout.labels.items()}


def _tree_mask(params):
    return jax.tree.map(lambda label, _: label == "decay", LABELS, params)


OPTIMIZERS = {
    "adam": lambda mask: lossjax.adam(1e-2),
    "adamw_masked": lambda mask: lossjax.adamw(1e-2, weight_decay=0.1, mask=mask),
    "sgd_momentum": lambda mask: lossjax.sgd(1e-2, momentum=0.9, nesterov=True),
    "rmsprop": lambda mask: lossjax.rmsprop(1e-2, momentum=0.5, centered=True),
    "adagrad": lambda mask: lossjax.adagrad(1e-1),
    "lion": lambda mask: lossjax.lion(1e-3, weight_decay=0.1, mask=mask),
    "sign_sgd": lambda mask: lossjax.sign_sgd(1e-3),
    "decayed_weights": lambda mask: optax.chain(lossjax.add_decayed_weights(0.1, mask=mask),
                                                lossjax.sgd(1e-2)),
}


def _steps(opt, params, grads_seq, compiler_options=None):
    @functools.partial(jax.jit, compiler_options=compiler_options)
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    for grads in grads_seq:
        params, state = step(params, state, grads)
    return params, state


def _assert_bitwise(got, expected):
    leaves_got, leaves_expected = jax.tree.leaves(got), jax.tree.leaves(expected)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, b in zip(leaves_got, leaves_expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))


def test_buffers_hold_the_raveled_leaves_grouped_by_label_and_dtype():
    params = _tree(0)
    buffers, layout = lossjax.flatten_params(params, labels=LABELS)
    # a one-element leaf stays a leaf of its own (XLA rounds its arithmetic differently)
    assert sorted(buffers) == ["decay/bfloat16", "decay/float32", "no_decay/bfloat16",
                               "no_decay/float32", "no_decay/float32/leaf['scalar']"]
    np.testing.assert_array_equal(buffers["no_decay/float32/leaf['scalar']"], params["scalar"])
    leaves = [x for x in jax.tree.leaves(params) if x.size > 1]
    labels = [lab for x, lab in zip(jax.tree.leaves(params), jax.tree.leaves(LABELS),
                                    strict=True) if x.size > 1]
    for name, buffer in buffers.items():
        if "leaf" in name:
            continue
        label, dtype = name.split("/")
        expected = np.concatenate([np.ravel(np.asarray(x, np.float64))
                                   for x, lab in zip(leaves, labels, strict=True)
                                   if lab == label and x.dtype == jnp.dtype(dtype)])
        assert buffer.dtype == jnp.dtype(dtype) and buffer.ndim == 1
        np.testing.assert_array_equal(np.asarray(buffer, np.float64), expected)
    assert layout.labels == {n: n.split("/")[0] for n in buffers}
    assert len(layout.offsets) == len(jax.tree.leaves(params))
    _assert_bitwise(layout.unflatten(buffers), params)
    _assert_bitwise(jax.jit(layout.unflatten)(buffers, layout.offsets), params)


def test_max_bytes_splits_a_group_between_leaves():
    params = {"a": jnp.arange(6.0), "b": jnp.arange(4.0).reshape(2, 2), "c": jnp.ones(5)}
    buffers, layout = lossjax.flatten_params(params, max_bytes=10 * 4)
    # a (24 bytes) + b (16) fit in 40 bytes; c starts the next buffer
    assert {n: b.shape for n, b in buffers.items()} == {"float32": (10,), "float32#1": (5,)}
    np.testing.assert_array_equal(buffers["float32"], np.r_[np.arange(6.0), np.arange(4.0)])
    _assert_bitwise(layout.unflatten(buffers), params)
    _assert_bitwise(layout.unflatten(buffers, layout.offsets), params)
    buffers, _ = lossjax.flatten_params(params, max_bytes=4)  # a leaf is never split
    assert [b.shape for b in buffers.values()] == [(6,), (4,), (5,)]
    with pytest.raises(ValueError, match="max_bytes"):
        lossjax.flatten_params(params, max_bytes=0)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_flat_update_equals_per_leaf_update_bit_for_bit(name):
    params = _tree(0)
    grads_seq = [_tree(1 + i, scale=0.5) for i in range(3)]
    expected_params, expected_state = _steps(OPTIMIZERS[name](_tree_mask), params, grads_seq)
    buffers, layout = lossjax.flatten_params(params, labels=LABELS)
    flat_params, flat_state = _steps(OPTIMIZERS[name](_decay_mask(layout)), buffers,
                                     [layout.flatten(g) for g in grads_seq])
    _assert_bitwise(layout.unflatten(flat_params), expected_params)
    _assert_bitwise(layout.to_tree(flat_state), expected_state)
    _assert_bitwise(layout.to_flat(expected_state), flat_state)


# the default optimised code (the suite compiles at -O0): XLA:CPU vectorises each loop and
# ends it with a scalar remainder, which may round an expression differently, and an
# element's place in the loop differs between a leaf and a buffer
OPTIMISED_CODEGEN = {"xla_backend_optimization_level": 3,
                     "xla_llvm_disable_expensive_passes": False,
                     "xla_cpu_use_fusion_emitters": True}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_flat_update_in_optimised_code_equals_per_leaf_to_one_unit_in_the_last_place(name):
    params = _tree(0)
    grads_seq = [_tree(1 + i, scale=0.5) for i in range(3)]
    expected, _ = _steps(OPTIMIZERS[name](_tree_mask), params, grads_seq, OPTIMISED_CODEGEN)
    buffers, layout = lossjax.flatten_params(params, labels=LABELS)
    got, _ = _steps(OPTIMIZERS[name](_decay_mask(layout)), buffers,
                    [layout.flatten(g) for g in grads_seq], OPTIMISED_CODEGEN)
    for a, b in zip(jax.tree.leaves(layout.unflatten(got)), jax.tree.leaves(expected),
                    strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype == jnp.bfloat16:  # one bfloat16 unit: 2**-7 relative
            np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                                       rtol=2.0**-7, atol=0)
        else:
            np.testing.assert_array_max_ulp(np.asarray(a), np.asarray(b), maxulp=1)


def test_clip_by_global_norm_on_buffers_equals_per_leaf_to_float_noise():
    params = _tree(0)
    grads_seq = [_tree(1 + i, scale=3.0) for i in range(3)]
    opt = optax.chain(lossjax.clip_by_global_norm(1.0), lossjax.adam(1e-2))
    expected, _ = _steps(opt, params, grads_seq)
    buffers, layout = lossjax.flatten_params(params)
    got, _ = _steps(opt, buffers, [layout.flatten(g) for g in grads_seq])
    got = layout.unflatten(got)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        tol = 1e-2 if a.dtype == jnp.bfloat16 else 1e-6  # bf16: a rounding flip is one ulp
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                   rtol=tol, atol=tol * 1e-2)


def _loss(params):
    return sum(jnp.sum(jnp.sin(x.astype(jnp.float32)) * x.astype(jnp.float32) ** 2)
               for x in jax.tree.leaves(params))


@pytest.mark.parametrize("with_offsets", [False, True])
def test_gradient_through_unflatten_is_the_tree_gradient_packed(with_offsets):
    params = _tree(0)
    buffers, layout = lossjax.flatten_params(params)
    expected = layout.flatten(jax.jit(jax.grad(_loss))(params))
    if with_offsets:
        got = jax.jit(jax.grad(lambda b, o: _loss(layout.unflatten(b, o))))(buffers,
                                                                           layout.offsets)
    else:
        got = jax.jit(jax.grad(lambda b: _loss(layout.unflatten(b))))(buffers)
    _assert_bitwise(got, expected)
    # and against the formula: d/dx sin(x)·x² = cos(x)·x² + 2x·sin(x), in float64
    for name, buffer in buffers.items():
        x = np.asarray(buffer, np.float64)
        tol = 2e-2 if buffer.dtype == jnp.bfloat16 else 1e-5
        np.testing.assert_allclose(np.asarray(got[name], np.float64),
                                   np.cos(x) * x**2 + 2 * x * np.sin(x), rtol=tol, atol=tol)


def test_optax_state_converts_to_flat_and_back():
    params = _tree(0)
    grads_seq = [_tree(1 + i) for i in range(2)]
    opt = optax.adamw(1e-2, weight_decay=0.1)
    _, optax_state = _steps(opt, params, grads_seq)
    buffers, layout = lossjax.flatten_params(params)
    flat = layout.to_flat(optax_state)
    assert jax.tree.structure(flat) == jax.tree.structure(opt.init(buffers))
    _assert_bitwise(layout.to_tree(flat), optax_state)
    # a per-leaf checkpoint resumed on buffers continues exactly as per-leaf training does
    resumed = opt.update(layout.flatten(grads_seq[0]), flat, buffers)[0]
    per_leaf = opt.update(grads_seq[0], optax_state, params)[0]
    _assert_bitwise(layout.unflatten(resumed), per_leaf)


def test_state_conversion_keeps_the_moments_dtype():
    params = _tree(0)
    buffers, layout = lossjax.flatten_params(params)
    opt = lossjax.adam(1e-2, mu_dtype=jnp.bfloat16)
    _, per_leaf = _steps(opt, params, [_tree(1)])
    flat = layout.to_flat(per_leaf)
    assert {x.dtype for x in flat[0].mu.values()} == {jnp.dtype(jnp.bfloat16)}
    _assert_bitwise(flat, _steps(opt, buffers, [layout.flatten(_tree(1))])[1])
    _assert_bitwise(layout.to_tree(flat), per_leaf)


def test_masked_state_converts_with_its_masked_nodes():
    params = _tree(0)
    buffers, layout = lossjax.flatten_params(params, labels=LABELS)
    per_leaf = optax.masked(optax.adam(1e-2), _tree_mask(params)).init(params)
    flat = optax.masked(optax.adam(1e-2), _decay_mask(layout)).init(buffers)
    assert jax.tree.structure(layout.to_tree(flat)) == jax.tree.structure(per_leaf)
    assert jax.tree.structure(layout.to_flat(per_leaf)) == jax.tree.structure(flat)
    unlabelled_buffers, unlabelled = lossjax.flatten_params(params)
    with pytest.raises(ValueError, match="masked and unmasked"):
        unlabelled.to_flat(per_leaf)
    del unlabelled_buffers


@pytest.mark.parametrize("name", ["adam", "adamw", "lion", "sign_sgd", "rmsprop", "adagrad"])
def test_check_elementwise_accepts_elementwise_optimizers(name):
    lossjax.check_elementwise(getattr(lossjax, name)(1e-2))


def test_check_elementwise_accepts_clipping_by_global_norm():
    lossjax.check_elementwise(optax.chain(lossjax.clip_by_global_norm(0.1), lossjax.adam(1e-2)))


@pytest.mark.parametrize("build", [
    lambda: lossjax.lamb(1e-2), lambda: lossjax.lars(1e-2), lambda: lossjax.muon(1e-2),
    lambda: lossjax.adafactor(1e-2), lambda: lossjax.novograd(1e-2),
    lambda: lossjax.clip_by_block_rms(0.1)], ids=["lamb", "lars", "muon", "adafactor",
                                                  "novograd", "clip_by_block_rms"])
def test_check_elementwise_rejects_whole_leaf_optimizers(build):
    with pytest.raises(ValueError, match="not elementwise"):
        lossjax.check_elementwise(build())


def test_bad_input_raises_value_error_naming_the_argument():
    params = _tree(0)
    with pytest.raises(ValueError, match="labels"):
        lossjax.flatten_params(params, labels={"dense": "a"})
    with pytest.raises(ValueError, match="params"):
        lossjax.flatten_params({"step": jnp.array(3)})
    with pytest.raises(ValueError, match="params"):
        lossjax.flatten_params({})
    buffers, layout = lossjax.flatten_params(params)
    with pytest.raises(ValueError, match="buffers"):
        layout.unflatten({"float32": buffers["float32"]})
    with pytest.raises(ValueError, match="offsets"):
        layout.unflatten(buffers, layout.offsets[:2])
    with pytest.raises(ValueError, match="tree"):
        layout.flatten({"a": jnp.zeros(3)})
    with pytest.raises(ValueError, match="steps"):
        lossjax.check_elementwise(lossjax.adam(1e-2), steps=0)


def test_fsdp_buffers_on_a_2x4_mesh_need_no_communication():
    proc = run_on_cpu_devices("-m", "tests.optimizers._flat_sharded_worker", devices=8)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["buffers"]["float32/fsdp(data)"] == [2, (16 * 6 + 8 * 3 + 4) // 2]
    assert report["buffers"]["float32/fsdp(data,model)"] == [8, 16 * 4 // 8]
    assert report["buffers"]["float32/replicated"] == [5]
    assert report["buffers"]["float32/leaf['t']"] == [4, 8]  # sharded along axis 1: its own
    assert report["buffer_specs"]["float32/fsdp(data)"] == "P('data', None)"
    assert all(report["rows_match_reference"].values()), report["rows_match_reference"]
    assert report["unflatten_equal"] and report["unflatten_shardings"]
    assert report["update_bitwise"] and report["state_bitwise"]
    # the elementwise update moves nothing between devices and copies no more than the
    # per-leaf update does (donation keeps parameters and state in place)
    assert report["update_collectives"] == []
    assert len(report["update_copies"]) <= len(report["tree_update_copies"]), report
    for mode in ("static", "dynamic"):
        assert report[f"grad_{mode}_moving"] == [], report[f"grad_{mode}_moving"]
        assert report[f"grad_{mode}_buffer_copies"] == []
        assert report[f"grad_{mode}_bitwise"]
        assert report[f"grad_{mode}_specs"]["float32/fsdp(data)"] == "P('data', None)"


def test_the_docs_page_example_runs_and_matches_the_per_leaf_training(capsys):
    import pathlib
    import re

    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "many_leaves.md"
    (code,) = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    exec(compile(code, str(page), "exec"), {"__name__": "many_leaves_page"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "['decay/float32', 'no_decay/float32']"
    assert "False" not in printed[1] and printed[1].count("True") == 6

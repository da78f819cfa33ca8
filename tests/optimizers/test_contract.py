"""The optimizer contract, run over every entry of the registry (``_registry.py``).

Each check is parametrised over the entries that do not exempt it (``Entry.exempt``, with
the reason). The tree is tiny (a 3x2 matrix and a bias) and every step runs jitted, so the
cost is about one compilation per entry and check. The checks:

* ``jit``: ``init`` eagerly, no state leaf sharing a buffer with another or with a
  parameter, steps jitted with the state donated, ``init`` under ``eval_shape`` on
  ``ShapeDtypeStruct`` gives the same tree, the updates have the parameters' tree and dtypes;
* ``optax``: the same state tree as the optax counterpart (structure, class names, leaf
  paths, shapes, dtypes), after ``init`` and after two steps;
* ``float64``: under x64 with float64 parameters, the same updates and state as optax to
  1e-12 over three steps (so float64 arithmetic stays float64), and the same with complex
  parameters unless ``complex`` is exempt or the entry raises ``ValueError`` for them;
* ``signature``: the same parameters (names, kinds, defaults) as the counterpart;
* ``half``: bfloat16 and float16 parameters give finite updates of their dtype and a state
  whose dtypes do not change;
* ``integer``: integer leaves (arrays and Python ints) with ``float0`` gradients stay
  unchanged; ``zero``: all-zero gradients give finite updates;
* ``complex``: complex parameters follow optax's numbers (``|g|²``) or raise ``ValueError``;
* ``b2``: every ``b2``/``adam_b2`` set to ``1 − 1e-9`` (1.0 in float32) still steps;
* ``bad``: a bad hyperparameter raises ``ValueError`` naming the argument;
* ``inject``: ``inject_hyperparams`` gives the plain optimizer's numbers, ``set_learning_rate``
  changes the rate on its state and raises ``ValueError`` on a plain one;
* ``orbax``: every state round-trips through one orbax checkpoint bit for bit;
* ``sharding``: states shard like their parameters on a 2x4 mesh (one child process).
"""

from __future__ import annotations

import inspect
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils
import pytest

import lossjax
from tests._xla import run_on_cpu_devices
from tests.optimizers._registry import ENTRIES, EXEMPT, Entry, entries_with

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARDING_WORKER = os.path.join(ROOT, "tests", "optimizers", "_contract_sharded_worker.py")


def _ids(entries: list[Entry]) -> list[str]:
    return [entry.test_id for entry in entries]


def _over(check: str):
    """``pytest.mark.parametrize`` over the entries that do not exempt ``check``."""
    entries = entries_with(check)
    return pytest.mark.parametrize("entry", entries, ids=_ids(entries))


def _with_reference(check: str):
    entries = [e for e in entries_with(check) if e.reference is not None]
    return pytest.mark.parametrize("entry", entries, ids=_ids(entries))


def _public_transformations() -> set[str]:
    names = set(lossjax.optimizers.__all__)
    return {name for name in names if not isinstance(getattr(lossjax.optimizers, name), type)}


def test_every_public_optimizer_transform_and_wrapper_has_an_entry():
    public = _public_transformations()
    covered = {entry.name for entry in ENTRIES} | set(EXEMPT)
    assert not public - covered, f"no registry entry: {sorted(public - covered)}"
    assert not covered - public, f"entries naming no public name: {sorted(covered - public)}"
    assert len({entry.test_id for entry in ENTRIES}) == len(ENTRIES), "duplicate entry ids"


# ------------------------------------------------------------------------------- the tree


W = [[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]]
B = [0.1, -0.2]
GW = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.05]]
GB = [-0.1, 0.2]
SCALES = (1.0, -0.5, 2.0)


def _params(dtype=jnp.float32):
    return {"w": jnp.array(W, dtype), "b": jnp.array(B, dtype)}


def _grads(step: int, dtype=jnp.float32, like=None):
    scale = SCALES[step % 3]
    grads = {"w": jnp.array(GW, dtype) * scale, "b": jnp.array(GB, dtype) * scale}
    if like is not None and jnp.iscomplexobj(like["w"]):
        grads = {k: g * (1.0 - 0.5j) for k, g in grads.items()}
    return grads


def _layout(state) -> tuple[str, list[tuple[str, tuple[int, ...], str]]]:
    """The state's tree (class names and nesting) and each leaf's path, shape and dtype."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    return str(treedef), [(jax.tree_util.keystr(path), tuple(np.shape(x)),
                           str(jnp.result_type(x))) for path, x in flat]


def _finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x, np.complex128 if jnp.iscomplexobj(x)
                                                  else np.float64))))
               for x in jax.tree.leaves(tree))


def _buffers(tree) -> list[int]:
    return [x.unsafe_buffer_pointer() for x in jax.tree.leaves(tree)
            if isinstance(x, jax.Array) and x.size]


# -------------------------------------------------------------------------------- checks


def _integer_params():
    return {**_params(), "steps": jnp.array([7, 9], jnp.int32), "n": 3}


def _integer_grads(step: int):
    return {**_grads(step), "steps": np.zeros((2,), jax.dtypes.float0),
            "n": np.zeros((), jax.dtypes.float0)}


def _complex_params(dtype=jnp.complex64):
    return {k: v * (1.0 + 0.25j) for k, v in _params(dtype).items()}


def _rejects_complex(entry: Entry) -> bool:
    """Whether ``entry`` raises ``ValueError`` naming complex parameters (traced only)."""
    opt = entry.build()
    params = _complex_params()
    try:
        jax.eval_shape(lambda: _steps(entry, opt, params, 1))
    except ValueError as error:
        assert "complex" in str(error), error
        return True
    return False


def _steps(entry: Entry, opt, params, steps: int, grads_fn=None, state=None):
    """``steps`` updates from ``params`` (traced inline: call inside ``jit``); returns the
    updates of each step, the last state and the last parameters. ``params`` may hold
    Python numbers: they reach ``init`` and ``update`` as they are."""
    grads_fn = grads_fn or (lambda step: _grads(step, jax.tree.leaves(params)[0].dtype, params))
    current = entry.wrap(params)
    state = opt.init(current) if state is None else state
    seen = []
    for step in range(steps):
        grads = grads_fn(step)
        updates, state = opt.update(grads, state, current, **entry.kwargs(grads, current))
        current = optax.apply_updates(current, updates)
        seen.append(updates)
    return seen, state, current


def _trajectory(entry: Entry, opt, params, steps: int, grads_fn=None):
    return jax.jit(lambda: _steps(entry, opt, params, steps, grads_fn))()


def _unwrap(tree):
    return tree.fast if isinstance(tree, optax.LookaheadParams) else tree


@_over("jit")
def test_contract_in_one_compiled_bundle(entry):
    """jit, donation, eval_shape, half precision, integer and float0 leaves, zero
    gradients, and complex parameters where optax has no counterpart: one compilation."""
    opt = entry.build()
    params = entry.wrap(_params())
    state = opt.init(params)
    pointers = _buffers(state)
    assert len(set(pointers)) == len(pointers), "two state leaves share one buffer"
    assert not set(pointers) & set(_buffers(params)), "a state leaf is a parameter's buffer"
    expected = jax.tree.map(jax.typeof, state)
    shapes = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), _params())
    assert jax.tree.map(jax.typeof, jax.eval_shape(lambda p: opt.init(entry.wrap(p)), shapes)
                        ) == expected, "init under eval_shape differs"
    half = [] if "half" in entry.exempt else [jnp.bfloat16, jnp.float16]
    complex_ok = ("complex" not in entry.exempt and entry.reference is None
                  and not _rejects_complex(entry))

    def bundle(state):
        out = {"f32": _steps(entry, opt, _params(), 3, state=state)}
        for dtype in half:
            out[jnp.dtype(dtype).name] = _steps(entry, opt, _params(dtype), 2)
        if "integer" not in entry.exempt:
            out["integer"] = _steps(entry, opt, _integer_params(), 2, _integer_grads)
        if "zero" not in entry.exempt:
            zeros = jax.tree.map(jnp.zeros_like, _grads(0))
            out["zero"] = _steps(entry, opt, _params(), 2, lambda step: zeros)
        if complex_ok:
            out["complex"] = _steps(entry, opt, _complex_params(), 3)
        return out

    out = jax.jit(bundle, donate_argnums=0)(state)
    updates, new_state, _ = out["f32"]
    assert _finite(updates), "non-finite float32 updates"
    assert jax.tree.structure(updates[0]) == jax.tree.structure(params)
    assert jax.tree.map(jax.typeof, new_state) == expected, "the state changed type"
    for dtype in half:
        updates, new_state, _ = out[jnp.dtype(dtype).name]
        assert _finite(updates), f"non-finite {dtype.__name__} updates"
        assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype(dtype)}
        initial = jax.eval_shape(lambda dtype=dtype: opt.init(entry.wrap(_params(dtype))))
        assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(
            lambda x: x.dtype, initial), f"{dtype.__name__} state changed dtype"
    if "integer" in out:
        updates, _, new = out["integer"]
        new = _unwrap(new)
        assert new["steps"].dtype == jnp.int32
        np.testing.assert_array_equal(new["steps"], [7, 9])
        assert int(new["n"]) == 3
        assert _finite([_unwrap(u)["w"] for u in updates])
    if "zero" in out:
        updates, new_state, _ = out["zero"]
        assert _finite(updates) and _finite(new_state), "zero gradients gave NaN"
    if "complex" in out:
        assert _finite(out["complex"][0]), "complex parameters gave NaN"


@_with_reference("optax")
def test_state_tree_is_optaxs(entry):
    """Same structure, class names, leaf paths, shapes and dtypes: a checkpoint of either
    restores into the other (the bundle checks that a step keeps the state's types)."""
    params = entry.wrap(_params())
    assert _layout(entry.build().init(params)) == _layout(entry.reference().init(params))


FLOAT64 = [e for e in entries_with("float64") if e.reference is not None]


@pytest.mark.parametrize("entry", FLOAT64, ids=_ids(FLOAT64))
def test_float64_and_complex_numbers_are_optaxs(entry, x64):
    """Under x64, float64 parameters: the same updates and state as optax to 1e-12 over
    three steps (float64 arithmetic stays float64); and, unless ``entry`` rejects complex
    parameters with a ``ValueError``, the same with complex128 parameters (``|g|²``)."""
    ours, theirs = entry.build(), entry.reference()
    cases = [_params(jnp.float64)]
    if "complex" not in entry.exempt and not _rejects_complex(entry):
        cases.append(_complex_params(jnp.complex128))
    runs = jax.jit(lambda: [(_steps(entry, ours, p, 3)[:2], _steps(entry, theirs, p, 3)[:2])
                            for p in cases])()
    for got_run, want_run in runs:
        assert str(jax.tree.structure(got_run)) == str(jax.tree.structure(want_run))
        for got, want in zip(jax.tree.leaves(got_run), jax.tree.leaves(want_run), strict=True):
            if jnp.issubdtype(want.dtype, jnp.inexact):
                assert got.dtype == want.dtype
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
            else:  # counters: optax's are int64 under x64 where lossjax keeps int32
                np.testing.assert_array_equal(got, want)


def _default(value):
    """A default as compared: functions and transformations by kind only."""
    if isinstance(value, optax.GradientTransformation):
        return "a GradientTransformation"
    return "a function" if callable(value) else value


def _parameters(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, _default(p.default))
            for p in inspect.signature(fn).parameters.values()]


@_with_reference("signature")
def test_signature_is_optaxs(entry):
    reference = (getattr(optax, entry.name, None) or getattr(optax.contrib, entry.name, None))
    if reference is None:
        pytest.fail(f"{entry.name} has a reference but optax has no such name: exempt "
                    "'signature' with the reason")
    assert _parameters(entry.fn) == _parameters(reference)


def _build_with(entry: Entry, **overrides):
    """``entry``'s function called with ``overrides`` (and a learning rate of 1e-2 where it
    takes one without a default)."""
    signature = inspect.signature(entry.fn)
    kwargs = dict(overrides)
    rate = signature.parameters.get("learning_rate")
    if rate is not None and rate.default is inspect.Parameter.empty:
        kwargs.setdefault("learning_rate", 1e-2)
    for name, parameter in signature.parameters.items():
        if parameter.default is inspect.Parameter.empty and name not in kwargs:
            return None  # needs an argument we cannot invent (an inner optimizer, a mask)
    return entry.fn(**kwargs)


def _decay_arguments(entry: Entry) -> list[str]:
    parameters = inspect.signature(entry.fn).parameters
    return [name for name in ("b2", "adam_b2") if name in parameters]


B2_ENTRIES = [e for e in entries_with("b2") if not e.id and _decay_arguments(e)]


@pytest.mark.parametrize("entry", B2_ENTRIES, ids=_ids(B2_ENTRIES))
def test_b2_that_rounds_to_one_in_float32_still_steps(entry):
    b2 = 1.0 - 1e-9
    assert np.float32(b2) == 1.0
    opt = _build_with(entry, **dict.fromkeys(_decay_arguments(entry), b2))
    updates, state, _ = _trajectory(entry, opt, _params(), 3)
    assert _finite(updates) and _finite(jax.tree.leaves(state))
    # the last step: ADOPT's first step only measures the second moment
    assert np.all(np.abs(np.asarray(updates[-1]["w"])) > 0)


BAD_VALUES = {"learning_rate": -1.0, "b1": -0.1, "b2": -0.1, "b3": -0.1, "eps": -1e-8,
              "eps_root": -1.0, "weight_decay": -1.0, "decay": -0.5, "momentum": -0.5,
              "adam_b1": -0.1, "adam_b2": -0.1, "rho": -0.5, "beta": -0.5}
BAD_ENTRIES = [e for e in entries_with("bad") if not e.id and e.kind != "wrapper"
               and set(BAD_VALUES) & set(inspect.signature(e.fn).parameters)
               and _build_with(e) is not None]


@pytest.mark.parametrize("entry", BAD_ENTRIES, ids=_ids(BAD_ENTRIES))
def test_bad_hyperparameters_raise_naming_the_argument(entry):
    for name in sorted(set(BAD_VALUES) & set(inspect.signature(entry.fn).parameters)):
        with pytest.raises(ValueError, match=name):
            _build_with(entry, **{name: BAD_VALUES[name]})


INJECT_ENTRIES = [e for e in entries_with("inject") if not e.id and e.kind == "optimizer"
                  and "learning_rate" in inspect.signature(e.fn).parameters]


@pytest.mark.parametrize("entry", INJECT_ENTRIES, ids=_ids(INJECT_ENTRIES))
def test_inject_hyperparams_and_set_learning_rate(entry):
    plain = _build_with(entry, learning_rate=1e-2)
    injected = lossjax.inject_hyperparams(entry.fn)(learning_rate=1e-2)
    params = _params()
    (want, plain_state, _), (got, state, _) = jax.jit(
        lambda: (_steps(entry, plain, params, 2), _steps(entry, injected, params, 2)))()
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert optax.tree_utils.tree_get(state, "learning_rate") == pytest.approx(1e-2)
    state = lossjax.set_learning_rate(state, 0.0)
    assert float(state.hyperparams["learning_rate"]) == 0.0
    with pytest.raises(ValueError, match="inject_hyperparams"):
        lossjax.set_learning_rate(plain_state, 1e-3)


def _is_key(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key)


def _bits(x):
    """``x`` as a NumPy array; a typed PRNG key as its key data."""
    return np.asarray(jax.random.key_data(x) if _is_key(x) else x)


def _zeros_like(x):
    """Zeros like ``x`` (the restore target); a typed PRNG key as the key of seed 0."""
    if _is_key(x):
        return jax.random.wrap_key_data(jnp.zeros_like(jax.random.key_data(x)),
                                        impl=jax.random.key_impl(x))
    return jnp.zeros_like(x)


def _random_like(tree, seed: int):
    """``tree`` with every leaf filled with random values of its dtype and shape."""
    rng = np.random.default_rng(seed)

    def fill(x):
        if _is_key(x):  # a typed PRNG key: random key data of its implementation
            data = jax.random.key_data(x)
            return jax.random.wrap_key_data(
                jnp.asarray(rng.integers(0, 2**32, data.shape, dtype=np.uint32)),
                impl=jax.random.key_impl(x))
        x = np.asarray(x)
        if x.dtype == bool:
            return jnp.asarray(rng.integers(0, 2, x.shape).astype(bool))
        if np.issubdtype(x.dtype, np.integer):
            return jnp.asarray(rng.integers(0, 100, x.shape).astype(x.dtype))
        return jnp.asarray(rng.normal(size=x.shape).astype(x.dtype))

    return jax.tree.map(fill, tree)


def test_every_state_round_trips_through_one_orbax_checkpoint(tmp_path):
    import orbax.checkpoint as ocp

    entries = entries_with("orbax")
    states = {entry.test_id: _random_like(entry.build().init(entry.wrap(_params())), i)
              for i, entry in enumerate(entries)}
    path = tmp_path / "states"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, states)
        checkpointer.wait_until_finished()
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, jax.tree.map(_zeros_like, states))
    assert jax.tree.structure(restored) == jax.tree.structure(states)
    for entry in entries:  # bit for bit, so a step from either continues identically
        for got, want in zip(jax.tree.leaves(restored[entry.test_id]),
                             jax.tree.leaves(states[entry.test_id]), strict=True):
            assert got.dtype == want.dtype, entry.test_id
            np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=entry.test_id)


def test_every_state_shards_like_its_params_on_a_2x4_mesh():
    # One test, one child process for every entry: a module fixture would start one child
    # per xdist worker.
    proc = run_on_cpu_devices(SHARDING_WORKER, devices=8)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    problems = {}
    for entry in entries_with("sharding"):
        result = report[entry.test_id]
        if result["error"] is not None:
            problems[entry.test_id] = result["error"]
        elif result["misplaced"] or not result["finite"]:
            problems[entry.test_id] = result
    assert not problems, problems


# ---------------------------------------------------------------------------- regressions


def test_adam_first_step_on_a_gradient_of_1e20_is_minus_lr_sign():
    # g² = 1e40 overflows float32: the second moment is formed from √(1 − b2)·g instead
    grads = jnp.array([1e20, -1e20, 3e-3], jnp.float32)
    opt = lossjax.adam(1e-2)
    updates, _ = jax.jit(opt.update)(grads, opt.init(jnp.zeros(3)))
    np.testing.assert_allclose(updates, [-1e-2, 1e-2, -1e-2], rtol=1e-5)


def test_lr_find_sweeps_an_optimizer_built_with_a_schedule():
    loss_fn = lambda w, batch: jnp.sum((w - batch) ** 2)  # noqa: E731
    result = lossjax.lr_find(
        loss_fn, jnp.zeros(3), [jnp.ones(3)],
        lambda lr: lossjax.sgd(lossjax.schedules.constant(lr)),
        min_lr=1e-4, max_lr=10.0, num_steps=30, smoothing=0.5)
    assert result.diverged  # the rate reached values where gradient descent diverges
    assert 0.01 < result.suggestion < 1.0


def test_set_learning_rate_names_inject_hyperparams_on_a_plain_state():
    state = lossjax.adam(lossjax.schedules.constant(1e-2)).init(jnp.zeros(2))
    with pytest.raises(ValueError, match="lossjax.inject_hyperparams"):
        lossjax.set_learning_rate(state, 1e-3)


def test_adam_with_b1_0_on_complex_parameters_is_optaxs():
    # the bias correction 1 − 0ᵗ = −expm1(t·log 0) formed in complex was −inf + nan·j
    params = _complex_params()
    grads = _grads(0, like=params)
    ours, theirs = lossjax.adam(1e-2, b1=0.0), optax.adam(1e-2, b1=0.0)
    got = jax.jit(ours.update)(grads, ours.init(params), params)[0]
    want = jax.jit(theirs.update)(grads, theirs.init(params), params)[0]
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4)

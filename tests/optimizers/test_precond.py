"""SOAP, Shampoo and PSGD Kron: float64 trajectories equal independent NumPy references
(``_precond_reference.py``) over 120 steps of a small MLP, with the expensive step every
step and every 10 steps; N-D and bf16 leaves, ``inject_hyperparams`` and an orbax round
trip; bad hyperparameters raise ``ValueError`` naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._contrib_reference import assert_checkpoint_continues_bit_for_bit
from tests.optimizers._precond_reference import (
    KronReference,
    ShampooReference,
    SoapReference,
    mlp_problem,
    run_reference,
)

STEPS = 120


def _mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] + params["b2"] - y) ** 2)


def _trajectory(opt, params, xs, ys):
    """Final parameters and every step's update: one jitted ``lax.scan``."""

    def body(carry, batch):
        p, s = carry
        u, s = opt.update(jax.grad(_mlp_loss)(p, *batch), s, p)
        return (optax.apply_updates(p, u), s), u

    @jax.jit
    def run(p, xs, ys):
        (p, _), us = jax.lax.scan(body, (p, opt.init(p)), (xs, ys))
        return p, us

    return run(params, xs, ys)


def assert_matches_reference(opt, reference, lr, *, tol=1e-10):
    """lossjax in float64 against the NumPy reference: final parameters and every update."""
    params, xs, ys = mlp_problem(STEPS)
    mine, updates = _trajectory(opt, params, xs, ys)
    theirs, their_updates = run_reference(reference, params, xs, ys, lr)
    for name in params:
        np.testing.assert_allclose(np.asarray(mine[name]), theirs[name], rtol=0, atol=tol)
        np.testing.assert_allclose(np.asarray(updates[name]),
                                   np.stack([u[name] for u in their_updates]), rtol=0,
                                   atol=tol)
    moved = max(np.max(np.abs(theirs[k] - params[k])) for k in params)
    assert moved > 0.3, "the trajectory barely moved: the comparison proves nothing"
    return mine, updates


SOAP_CASES = {
    # (frequency, hyperparameters): the basis refreshed every step with the defaults, and
    # every 10 steps with the other options
    "every-step": (1, dict(weight_decay=0.01)),
    "every-10": (10, dict(b1=0.9, b2=0.99, shampoo_beta=0.8, weight_decay=0.05,
                          correct_bias=False)),
}


@pytest.mark.parametrize("case", SOAP_CASES)
def test_soap_equals_numpy_reference(x64, case):
    frequency, kw = SOAP_CASES[case]
    lr = 3e-2
    assert_matches_reference(lossjax.soap(lr, precondition_frequency=frequency, **kw),
                             SoapReference(frequency=frequency, **kw), lr)


# ----------------------------------------------------------------------------- all three

# small instances whose expensive step runs often, for the checks below
BUILDERS = {
    "soap": lambda lr=1e-2: lossjax.soap(lr, precondition_frequency=2),
    "shampoo": lambda lr=1e-2: lossjax.shampoo(lr, block_size=4, graft_type="adam",
                                               start_preconditioning_step=1,
                                               preconditioning_compute_steps=2),
    "kron": lambda lr=1e-2: lossjax.kron(lr, preconditioner_update_probability=0.5),
}


def _steps(opt, params, grads):
    """The updates (stacked over steps) and final state of one jitted ``lax.scan`` over
    ``grads`` (leaves stacked over steps)."""

    def body(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), u

    @jax.jit
    def run(params, grads):
        (_, state), updates = jax.lax.scan(body, (params, opt.init(params)), grads)
        return updates, state

    return run(params, grads)


def _random_like(params, seed, steps=4):
    """Gradients for ``steps`` steps: leaves shaped ``[steps, *param.shape]``."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(jax.tree.leaves(params)))
    leaves = [jax.random.normal(k, (steps, *p.shape), jnp.float32).astype(p.dtype)
              for k, p in zip(keys, jax.tree.leaves(params), strict=True)]
    return jax.tree.unflatten(jax.tree.structure(params), leaves)


@pytest.mark.parametrize("name", BUILDERS)
def test_bf16_params_give_bf16_updates_close_to_float32(name):
    params = {"w": jnp.ones((6, 4), jnp.float32) * 0.3, "b": jnp.zeros((4,), jnp.float32)}
    grads = _random_like(params, 0)
    as_bf16 = lambda t: jax.tree.map(lambda x: x.astype(jnp.bfloat16), t)  # noqa: E731
    opt = BUILDERS[name]()
    half, state = _steps(opt, as_bf16(params), as_bf16(grads))
    # float32 from the same (bf16-rounded) gradients and start
    full, _ = _steps(opt, jax.tree.map(lambda x: x.astype(jnp.float32), as_bf16(params)),
                     jax.tree.map(lambda x: x.astype(jnp.float32), as_bf16(grads)))
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(half))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        np.asarray(a, np.float32), np.asarray(b), rtol=0.05, atol=3e-4), half, full)
    # statistics and factors stay in float32
    matrices = [x for x in jax.tree.leaves(state) if x.ndim == 2 and x.shape[0] == x.shape[1]]
    assert matrices and all(x.dtype == jnp.float32 for x in matrices)


@pytest.mark.parametrize("name", BUILDERS)
def test_under_inject_hyperparams_checkpoint_continues_bit_for_bit(name, tmp_path):
    # built by inject_hyperparams (the learning rate held in the state as data), saved
    # and restored with orbax mid-run, then continued: bit-for-bit the same steps
    opt = lossjax.inject_hyperparams(BUILDERS[name])(lr=1e-2)
    assert "lr" in opt.init({"w": jnp.zeros((2, 2))}).hyperparams
    assert_checkpoint_continues_bit_for_bit(opt, tmp_path, steps=3)


def test_soap_n_d_rule_and_merge_dims_equals_the_merged_matrix():
    # per axis by default; merged axes equal SOAP on the reshaped matrix
    params = {"conv": jnp.full((2, 2, 3, 4), 0.1, jnp.float32), "b": jnp.zeros(4)}
    state = lossjax.scale_by_soap(max_precond_dim=3).init(params)
    assert [s.shape for s in state.stats["conv"]] == [(2, 2), (2, 2), (3, 3)]   # 4 > 3
    assert state.stats["b"] == ()                                             # Adam
    assert [s.shape for s in lossjax.scale_by_soap(precondition_1d=True).init(
        params).stats["b"]] == [(4, 4)]
    grads = _random_like(params, 2)
    merged_opt = lossjax.soap(1e-2, merge_dims=True, max_precond_dim=12,
                              precondition_frequency=2)
    merged, state = _steps(merged_opt, params, grads)
    assert [s.shape for s in state[0].stats["conv"]] == [(12, 12), (4, 4)]
    flat_params = {"conv": params["conv"].reshape(12, 4), "b": params["b"]}
    flat_grads = {"conv": grads["conv"].reshape(4, 12, 4), "b": grads["b"]}
    flat, _ = _steps(lossjax.soap(1e-2, precondition_frequency=2), flat_params, flat_grads)
    np.testing.assert_allclose(merged["conv"].reshape(4, 12, 4), flat["conv"], rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("build, name", [
    (lambda: lossjax.soap(-1.0), "learning_rate"),
    (lambda: lossjax.soap(0.1, b1=1.0), "b1"),
    (lambda: lossjax.soap(0.1, b2=-0.1), "b2"),
    (lambda: lossjax.soap(0.1, shampoo_beta=1.5), "shampoo_beta"),
    (lambda: lossjax.soap(0.1, eps=-1.0), "eps"),
    (lambda: lossjax.soap(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: lossjax.soap(0.1, precondition_frequency=0), "precondition_frequency"),
    (lambda: lossjax.soap(0.1, max_precond_dim=2.5), "max_precond_dim"),
    (lambda: lossjax.shampoo(-1.0), "learning_rate"),
    (lambda: lossjax.shampoo(0.1, beta1=1.0), "beta1"),
    (lambda: lossjax.shampoo(0.1, beta2=1.5), "beta2"),
    (lambda: lossjax.shampoo(0.1, matrix_epsilon=-1.0), "matrix_epsilon"),
    (lambda: lossjax.shampoo(0.1, diagonal_epsilon=-1.0), "diagonal_epsilon"),
    (lambda: lossjax.shampoo(0.1, block_size=-1), "block_size"),
    (lambda: lossjax.shampoo(0.1, preconditioning_compute_steps=0),
     "preconditioning_compute_steps"),
    (lambda: lossjax.shampoo(0.1, start_preconditioning_step=-1), "start_preconditioning_step"),
    (lambda: lossjax.shampoo(0.1, graft_type="lion"), "graft_type"),
    (lambda: lossjax.kron(-1.0), "learning_rate"),
    (lambda: lossjax.kron(0.1, b1=1.0), "b1"),
    (lambda: lossjax.kron(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: lossjax.kron(0.1, preconditioner_update_probability=0.0),
     "preconditioner_update_probability"),
    (lambda: lossjax.kron(0.1, preconditioner_update_probability=1.5),
     "preconditioner_update_probability"),
    (lambda: lossjax.kron(0.1, memory_save_mode="some_diag"), "memory_save_mode"),
    (lambda: lossjax.kron(0.1, max_size_triangular=-1), "max_size_triangular"),
    (lambda: lossjax.kron(0.1, preconditioner_lr=-1.0), "preconditioner_lr"),
])
def test_bad_hyperparameters_raise(build, name):
    with pytest.raises(ValueError, match=name):
        build()


SHAMPOO_CASES = {
    # the roots every step, matrices cut into 2 x 2 blocks, Adam grafting, weight decay
    "every-step": dict(preconditioning_compute_steps=1, block_size=2, graft_type="adam",
                       best_effort_shape_interpretation=False, weight_decay=1e-3,
                       beta2=0.99),
    # every 10 steps, small axes merged (each 4 x 4 weight is one 16-vector), AdaGrad
    "every-10": dict(preconditioning_compute_steps=10, graft_type="adagrad",
                     start_preconditioning_step=3, nesterov=False),
    "rmsprop-normalized": dict(preconditioning_compute_steps=10, graft_type="rmsprop_normalized",
                               best_effort_shape_interpretation=False, beta2=0.95),
    "sgd": dict(preconditioning_compute_steps=2, best_effort_shape_interpretation=False),
}


@pytest.mark.parametrize("case", SHAMPOO_CASES)
def test_shampoo_equals_numpy_reference(x64, case):
    kw = SHAMPOO_CASES[case]
    lr = 3e-2 if kw.get("graft_type", "sgd") != "sgd" else 0.3
    assert_matches_reference(lossjax.shampoo(lr, **kw), ShampooReference(**kw), lr)


def test_shampoo_n_d_blocks_and_skipped_leaves():
    params = {"conv": jnp.zeros((3, 3, 4, 6)), "emb": jnp.zeros((50, 2)),
              "b": jnp.zeros(6), "s": jnp.zeros(())}
    state = lossjax.scale_by_shampoo(block_size=4, merge_small_dims_block_size=36,
                                     skip_preconditioning_dim_size_gt=40).init(params)
    # conv (3, 3, 4, 6) merges to (36, 6): 9 x 2 blocks, two statistics each
    assert [s.shape for s in state.statistics["conv"][:2]] == [(4, 4), (4, 4)]
    assert len(state.statistics["conv"]) == 9 * 2 * 2
    assert state.statistics["conv"][-1].shape == (2, 2)   # the last 36 x 6 corner block
    assert state.statistics["emb"] == () and state.statistics["s"] == ()   # grafted only
    assert [s.shape for s in state.statistics["b"]] == [(4, 4), (2, 2)]
    assert state.diagonal_statistics["b"] == ()   # "sgd" grafting keeps no second moment


def test_shampoo_statistics_sized_by_the_merged_axes_capped_at_the_block():
    # the reference's merge_small_dims(shape, 4096): an attention kernel [64, 4, 16]
    # (4096 numbers) becomes one 4096-vector, cut into 32 blocks of 128 with a 128 x 128
    # statistic each (full-matrix AdaGrad per block: 32 * 128**2 = 128x its size); without
    # the merge each axis keeps its own statistic, min(axis, block_size) wide
    params = {"attn": jnp.zeros((64, 4, 16)), "mlp": jnp.zeros((64, 256))}
    merged = lossjax.scale_by_shampoo().init(params).statistics
    assert [s.shape for s in merged["attn"]] == [(128, 128)] * 32
    assert [s.shape for s in merged["mlp"]] == [(64, 64), (128, 128)] * 2   # 16384 > 4096
    per_axis = lossjax.scale_by_shampoo(best_effort_shape_interpretation=False).init(params)
    assert [s.shape for s in per_axis.statistics["attn"]] == [(64, 64), (4, 4), (16, 16)]
    assert [s.shape for s in per_axis.preconditioners["attn"]] == [(64, 64), (4, 4), (16, 16)]


KRON_CASES = {
    # the fit every step (probability 1, psgd_jax's key), triangular factors for the
    # matrices and diagonal ones for the biases; also run against psgd_jax itself
    "every-step": (1.0, dict(weight_decay=1e-3)),
    # every 10 steps, the largest axis of each matrix diagonal, the fit on the gradient
    "every-10": (0.1, dict(b1=0.8, momentum_into_precond_update=False, preconditioner_lr=0.2,
                           preconditioner_init_scale=2.0, memory_save_mode="one_diag")),
}


@pytest.mark.parametrize("case", KRON_CASES)
def test_kron_equals_numpy_reference_and_psgd_jax(x64, case):
    probability, kw = KRON_CASES[case]
    lr = 2e-2
    reference = KronReference(
        probability=probability, b1=kw.get("b1", 0.9), weight_decay=kw.get("weight_decay", 0.0),
        momentum_into_precond_update=kw.get("momentum_into_precond_update", True),
        precond_lr=kw.get("preconditioner_lr", 0.1),
        init_scale=kw.get("preconditioner_init_scale", 1.0),
        one_diag=kw.get("memory_save_mode") == "one_diag")
    opt = lossjax.kron(lr, preconditioner_update_probability=probability, **kw)
    mine = assert_matches_reference(opt, reference, lr)
    if probability == 1.0:
        from tests.optimizers._psgd_jax import psgd_kron

        params, xs, ys = mlp_problem(STEPS)
        theirs = _trajectory(psgd_kron(lr, preconditioner_update_probability=probability,
                                       **kw), params, xs, ys)
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_kron_factor_rule_and_key_in_state():
    params = {"conv": jnp.zeros((3, 3, 2, 5)), "b": jnp.zeros(5), "s": jnp.zeros(())}
    state = lossjax.scale_by_kron(max_size_triangular=4).init(params)
    # size-3 and size-2 axes triangular, the size-5 axis over max_size_triangular diagonal
    assert [q.shape for q in state.preconditioners["conv"]] == [(3, 3), (3, 3), (2, 2), (5,)]
    assert [q.shape for q in state.preconditioners["b"]] == [(5,)]    # 1-D: diagonal
    assert [q.shape for q in state.preconditioners["s"]] == [()]
    one = lossjax.scale_by_kron(memory_save_mode="one_diag").init(params).preconditioners
    assert [q.ndim for q in one["conv"]] == [2, 2, 2, 1]              # the largest axis
    np.testing.assert_array_equal(lossjax.scale_by_kron(seed=7).init(params).key,
                                  jax.random.PRNGKey(7))
    half = lossjax.scale_by_kron(precond_dtype=jnp.bfloat16, mu_dtype=jnp.bfloat16).init(params)
    assert {q.dtype for q in jax.tree.leaves(half.preconditioners)} == {jnp.dtype(jnp.bfloat16)}
    assert {m.dtype for m in jax.tree.leaves(half.mu)} == {jnp.dtype(jnp.bfloat16)}

"""muon: trajectories equal optax.contrib.muon's, the matrix update is orthogonal (its
singular values are near 1), non-matrix leaves go to the AdamW fallback."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._contrib_reference import (
    assert_checkpoint_continues_bit_for_bit,
    assert_same_trajectory,
)


def _all_kw(m):
    dims = {"w": m.MuonDimensionNumbers(), "b": None}
    return dict(ns_coeffs="dion", ns_steps=5, beta=0.9, eps=1e-7, weight_decay=1e-2,
                weight_decay_mask={"w": True, "b": False}, mu_dtype=jnp.float32,
                nesterov=False, adaptive=True, preconditioning="aol", adam_b1=0.8,
                adam_b2=0.99, adam_eps_root=1e-9, adam_weight_decay=1e-3,
                adam_learning_rate=3e-3, muon_weight_dimension_numbers=dims,
                consistent_rms=0.2)


CASES = {
    "defaults": lambda m: m.muon(1e-2),
    "all": lambda m: m.muon(1e-2, **_all_kw(m)),
    "schatten-rows": lambda m: m.muon(1e-2, ((3.0, -3.2, 1.2),) * 4, 4,
                                      preconditioning="schatten"),
}


@pytest.mark.parametrize("name", CASES)
def test_trajectory_equals_optax_contrib(name):
    assert_same_trajectory(CASES[name](lossjax), CASES[name](optax.contrib))


def _first_update(opt, params, grads):
    updates, state = jax.jit(opt.update)(grads, opt.init(params), params)
    return updates, state


@jax.jit  # one compilation, not one per operation
def _spread_gradient():
    """Orthonormal ``u [64, 32]``, ``v [32, 32]`` and the gradients ``{"w": u Σ vᵀ, "b"}``,
    Σ's singular values spread over a factor 10."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    u, _ = jnp.linalg.qr(jax.random.normal(k1, (64, 32), jnp.float32))
    v, _ = jnp.linalg.qr(jax.random.normal(k2, (32, 32), jnp.float32))
    sigma = jnp.geomspace(1.0, 0.1, 32).astype(jnp.float32)
    grads = {"w": (u * sigma) @ v.T, "b": jnp.linspace(-1.0, 1.0, 32, dtype=jnp.float32)}
    return u, v, grads


def test_matrix_update_is_orthogonal_and_vectors_go_to_adamw():
    params = {"w": jnp.zeros((64, 32), jnp.float32), "b": jnp.zeros((32,), jnp.float32)}
    # singular values spread over a factor 10: Newton-Schulz still maps all of them near 1
    u, v, grads = _spread_gradient()
    lr = 0.1
    updates, state = _first_update(lossjax.muon(lr), params, grads)
    singular = np.linalg.svd(np.asarray(updates["w"]) / -lr, compute_uv=False)
    assert singular.min() > 0.6 and singular.max() < 1.25, singular   # polar factor ≈ U Vᵀ
    # the same singular vectors as the gradient: the update is ≈ −lr·U Vᵀ
    polar = np.asarray(u @ v.T)
    cosine = np.sum(np.asarray(updates["w"]) / -lr * polar) / (
        np.linalg.norm(np.asarray(updates["w"]) / lr) * np.linalg.norm(polar))
    assert cosine > 0.98
    # the bias took AdamW's (Nesterov) step, the same as optax.adamw's
    reference = optax.adamw(lr, eps=1e-8, weight_decay=0.0, nesterov=True)
    expected, _ = jax.jit(lambda g, p: reference.update(g, reference.init(p), p))(
        grads["b"], params["b"])
    np.testing.assert_allclose(updates["b"], expected, rtol=1e-6, atol=1e-7)
    assert state.nu["w"] == lossjax.optimizers._orthogonal._NotAdam()   # no Adam moment
    assert state.nu["b"].shape == (32,)


def test_n_d_weights_as_matrices_and_batched_equals_unbatched():
    params = {"conv": jnp.zeros((3, 3, 4, 8), jnp.float32),
              "heads": jnp.zeros((2, 16, 8), jnp.float32),
              "w1": jnp.zeros((16, 8), jnp.float32), "w2": jnp.zeros((16, 8), jnp.float32)}
    dims = {"conv": lossjax.MuonDimensionNumbers((0, 1, 2), 3),
            "heads": lossjax.MuonDimensionNumbers(1, 2),
            "w1": lossjax.MuonDimensionNumbers(), "w2": lossjax.MuonDimensionNumbers()}
    batched_opt, single_opt = (lossjax.muon(1.0, muon_weight_dimension_numbers=dims,
                                            batch_newton_schulz=batch) for batch in (True, False))

    @jax.jit  # the gradients and both first updates: one compilation
    def both(params):
        keys = jax.random.split(jax.random.PRNGKey(2), 4)
        grads = {name: jax.random.normal(k, p.shape, jnp.float32)
                 for k, (name, p) in zip(keys, params.items(), strict=True)}
        return tuple(opt.update(grads, opt.init(params), params)[0]
                     for opt in (batched_opt, single_opt))

    batched, single = both(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6),
                 batched, single)
    conv = -np.asarray(batched["conv"]).reshape(36, 8)
    assert np.all(np.abs(np.linalg.svd(conv, compute_uv=False) - 1) < 0.35)
    for head in -np.asarray(batched["heads"]):   # each batch slice on its own
        assert np.all(np.abs(np.linalg.svd(head, compute_uv=False) - 1) < 0.35)
    # by default only 2-D leaves are matrices: the 3-D and 4-D ones get Adam moments
    nu = lossjax.muon(1.0).init(params).nu
    assert nu["conv"].shape == (3, 3, 4, 8) and nu["heads"].shape == (2, 16, 8)
    assert nu["w1"] == lossjax.optimizers._orthogonal._NotAdam()


def test_checkpoint_continues_bit_for_bit(tmp_path):
    assert_checkpoint_continues_bit_for_bit(lossjax.muon(1e-2), tmp_path)


@pytest.mark.parametrize("build, name", [
    (lambda: lossjax.muon(-1.0), "learning_rate"),
    (lambda: lossjax.muon(0.1, beta=1.0), "beta"),
    (lambda: lossjax.muon(0.1, ns_steps=0), "ns_steps"),
    (lambda: lossjax.muon(0.1, ns_coeffs=(1.0, 2.0)), "ns_coeffs"),
    (lambda: lossjax.muon(0.1, ns_coeffs="nope"), "ns_coeffs"),
    (lambda: lossjax.muon(0.1, ((3.0, -3.2, 1.2),) * 6, 5), "ns_coeffs"),
    (lambda: lossjax.muon(0.1, eps=-1.0), "eps"),
    (lambda: lossjax.muon(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: lossjax.muon(0.1, preconditioning="qr"), "preconditioning"),
    (lambda: lossjax.muon(0.1, adam_b1=1.0), "adam_b1"),
    (lambda: lossjax.muon(0.1, adam_b2=-0.1), "adam_b2"),
    (lambda: lossjax.muon(0.1, adam_learning_rate=-1.0), "adam_learning_rate"),
    (lambda: lossjax.muon(0.1, consistent_rms=-1.0), "consistent_rms"),
])
def test_bad_hyperparameters_raise(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_bad_dimension_numbers_raise_at_init():
    opt = lossjax.muon(0.1, muon_weight_dimension_numbers=lossjax.MuonDimensionNumbers(0, 0))
    with pytest.raises(ValueError, match="muon_weight_dimension_numbers"):
        opt.init(jnp.zeros((3, 4), jnp.float32))

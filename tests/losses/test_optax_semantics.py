"""optax's meanings that lossjax's losses also take: a per-class ``where`` (same rank as the
logits), derivatives with respect to the labels, and optax's binary sparsemax loss.

References are float64 NumPy written from the formulas, and optax itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 5))
P = RNG.dirichlet(np.ones(5), size=4)
INT = np.array([0, 3, 2, 4])
# Ragged per-class mask: each example keeps its own classes (its label's among them);
# the last example keeps none and is left out.
MASK = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)


def _log_softmax_kept(x, keep):
    z = np.where(keep, x, -np.inf)
    return z - np.log(np.sum(np.exp(z), -1, keepdims=True))


def _ref_softmax_ce(x, t, keep):
    logp = _log_softmax_kept(x, keep)
    return -np.sum(np.where(keep, t * np.where(keep, logp, 0.0), 0.0), -1)


def _ref_int_ce(x, y, keep):
    z = np.where(keep, x, -np.inf)
    lse = np.log(np.sum(np.exp(z), -1))
    return lse - np.take_along_axis(x, y[:, None], -1)[:, 0]


def _ref_kl(logp, t, keep):
    terms = np.where(keep & (t > 0), t * (np.log(np.where(t > 0, t, 1.0)) - logp), 0.0)
    return terms.sum(-1)


def _ref_cosine(a, b, keep):
    a, b = np.where(keep, a, 0.0), np.where(keep, b, 0.0)
    return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


CASES = {
    "softmax_cross_entropy": (
        lambda w: lossjax.softmax_cross_entropy(X, P, where=w, reduction="none"),
        lambda w: optax.losses.softmax_cross_entropy(X, P, where=w),
        lambda keep: _ref_softmax_ce(X, P, keep)),
    "softmax_cross_entropy_with_integer_labels": (
        lambda w: lossjax.softmax_cross_entropy_with_integer_labels(X, INT, where=w,
                                                                    reduction="none"),
        lambda w: optax.losses.softmax_cross_entropy_with_integer_labels(X, INT, where=w),
        lambda keep: _ref_int_ce(X, INT, keep)),
    "poly1_cross_entropy": (
        lambda w: lossjax.poly1_cross_entropy(X, P, epsilon=2.0, where=w, reduction="none"),
        lambda w: optax.losses.poly_loss_cross_entropy(X, P, epsilon=2.0, where=w),
        lambda keep: _ref_softmax_ce(X, P, keep) + 2.0 * np.sum(
            np.where(keep, P * (1 - np.exp(_log_softmax_kept(X, keep))), 0.0), -1)),
    "kl_divergence": (
        lambda w: lossjax.kl_divergence(jax.nn.log_softmax(X), P, where=w, reduction="none"),
        lambda w: optax.losses.kl_divergence(jax.nn.log_softmax(X), P, where=w),
        lambda keep: _ref_kl(_log_softmax_kept(X, np.ones_like(keep)), P, keep)),
    "cosine_similarity": (
        lambda w: lossjax.cosine_similarity(X, P, where=w, reduction="none"),
        lambda w: optax.losses.cosine_similarity(X, P, where=w),
        lambda keep: _ref_cosine(X, P, keep)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_per_class_where_matches_numpy_and_optax(name, x64):
    ours, theirs, reference = CASES[name]
    got = np.asarray(ours(jnp.asarray(MASK)))
    with np.errstate(all="ignore"):  # the last row keeps no class: compared below
        expected = reference(MASK)[:3]
    np.testing.assert_allclose(got[:3], expected, rtol=1e-10)
    np.testing.assert_allclose(got[:3], np.asarray(theirs(jnp.asarray(MASK)))[:3], rtol=1e-6)
    assert got[3] == 0.0


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "kl_divergence",
                                  "cosine_similarity"])
def test_per_class_mask_mean_counts_examples_that_keep_a_class(name):
    ours = CASES[name][0]
    per_example = np.asarray(ours(jnp.asarray(MASK)))
    loss = {"softmax_cross_entropy": lossjax.softmax_cross_entropy,
            "kl_divergence": lossjax.kl_divergence,
            "cosine_similarity": lossjax.cosine_similarity}[name]
    first = jax.nn.log_softmax(X) if name == "kl_divergence" else X
    mean = loss(first, P, where=jnp.asarray(MASK))
    np.testing.assert_allclose(mean, per_example[:3].mean(), rtol=1e-5)


def test_dropped_logits_get_no_gradient_and_their_nans_do_not_leak():
    logits = jnp.asarray(X, jnp.float32).at[0, 1].set(jnp.nan).at[1, 0].set(jnp.inf)

    def total(x):
        return (lossjax.softmax_cross_entropy(x, P, where=jnp.asarray(MASK))
                + lossjax.softmax_cross_entropy_with_integer_labels(x, INT,
                                                                    where=jnp.asarray(MASK)))

    value, grad = jax.jit(jax.value_and_grad(total))(logits)
    assert np.isfinite(value)
    np.testing.assert_array_equal(np.asarray(grad)[~MASK], 0.0)
    assert np.all(np.isfinite(grad))


def test_per_class_where_on_ranking_softmax_is_the_item_mask():
    by_where = lossjax.ranking_softmax(X, P, where=jnp.asarray(MASK), reduction="none")
    by_item_mask = lossjax.ranking_softmax(X, P, item_mask=jnp.asarray(MASK),
                                           reduction="none")
    np.testing.assert_array_equal(by_where, by_item_mask)
    theirs = optax.losses.ranking_softmax_loss(X, P, where=jnp.asarray(MASK), reduce_fn=None)
    np.testing.assert_allclose(by_where, theirs, rtol=1e-5)


def test_a_per_class_where_on_a_per_example_loss_names_the_shapes():
    with pytest.raises(ValueError, match="where"):
        lossjax.multiclass_hinge(X, INT, where=jnp.asarray(MASK))


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_label_derivative_in_forward_and_reverse_mode(smoothing, x64):
    labels = jnp.asarray(np.eye(5)[INT])  # one-hot: most labels are 0

    def loss(t):
        return lossjax.softmax_cross_entropy(X, t, label_smoothing=smoothing, reduction="sum")

    log_p = X - np.log(np.exp(X).sum(-1, keepdims=True))
    expected = -(1.0 - smoothing) * log_p
    np.testing.assert_allclose(jax.jacfwd(loss)(labels), expected, rtol=1e-12)
    np.testing.assert_allclose(jax.grad(loss)(labels), expected, rtol=1e-12)
    tangent = RNG.normal(size=labels.shape)
    _, directional = jax.jvp(loss, (labels,), (jnp.asarray(tangent),))
    np.testing.assert_allclose(directional, np.sum(expected * tangent), rtol=1e-12)


def test_ranking_label_derivative_in_forward_mode(x64):
    labels = jnp.asarray(np.eye(5)[INT])
    jac = jax.jacfwd(lambda t: lossjax.ranking_softmax(X, t, reduction="sum"))(labels)
    np.testing.assert_allclose(jac, -(X - np.log(np.exp(X).sum(-1, keepdims=True))),
                               rtol=1e-12)


def _ref_binary_sparsemax(x, y01):
    s = -(2.0 * y01 - 1.0) * x
    return np.where(s <= -1, 0.0, np.where(s >= 1, s, (s + 1) ** 2 / 4))


def test_binary_sparsemax_loss_matches_numpy_and_optax(x64):
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.5, -0.9])
    y01 = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    ours = jax.jit(lambda a, b: lossjax.binary_sparsemax_loss(a, b, reduction="none"))
    np.testing.assert_allclose(ours(x, y01), _ref_binary_sparsemax(x, y01), rtol=1e-12)
    np.testing.assert_allclose(ours(x, 2 * y01 - 1), _ref_binary_sparsemax(x, y01),
                               rtol=1e-12)
    np.testing.assert_allclose(ours(x, y01), optax.losses.sparsemax_loss(x, y01), rtol=1e-12)
    # d/dx: −y·clip((s + 1)/2, 0, 1) with y = ±1, s = −y·x
    y = 2.0 * y01 - 1.0
    expected = -y * np.clip((-y * x + 1) / 2, 0, 1)
    grad = jax.grad(lambda a: lossjax.binary_sparsemax_loss(a, y01, reduction="sum"))(x)
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_log_cosh_without_targets_is_the_loss_of_the_errors(x64):
    errors = np.array([-800.0, -1.5, 0.0, 0.3, 2.0])
    expected = np.abs(errors) + np.log1p(np.exp(-2 * np.abs(errors))) - np.log(2.0)
    np.testing.assert_allclose(lossjax.log_cosh(errors, reduction="none"), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(lossjax.log_cosh(errors), expected.mean(), rtol=1e-12)


def test_vtrace_sample_mask_carries_the_error_over_padded_steps(x64):
    v, v_next, r = RNG.normal(size=(3, 6))
    gamma, rho = RNG.uniform(0.5, 1.0, 6), RNG.uniform(0.2, 2.0, 6)
    learnable = np.array([True, True, False, True, False, True])
    got = lossjax.vtrace(v, v_next, r, gamma, rho, lambda_=0.9, sample_mask=learnable)
    # e_t = m_t (δ_t + γ_t c_t e_{t+1}) + (1 − m_t) e_{t+1}
    delta = np.minimum(1.0, rho) * (r + gamma * v_next - v)
    c = 0.9 * np.minimum(1.0, rho)
    expected, e = np.zeros(6), 0.0
    for t in reversed(range(6)):
        e = delta[t] + gamma[t] * c[t] * e if learnable[t] else e
        expected[t] = e
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="sample_mask"):
        lossjax.vtrace(v, v_next, r, gamma, rho, sample_mask=learnable.astype(float))


@pytest.mark.parametrize("n", [1, 2, 4, 9])
def test_n_step_returns_with_lambda(n, x64):
    r, v = RNG.normal(size=(2, 7))
    gamma, lam = RNG.uniform(0.5, 1.0, 7), RNG.uniform(0.0, 1.0, 7)

    def g(s, k):
        # G^{k+1}_s = r_s + γ_s ((1 − λ_s) v_s + λ_s G^k_{s+1}), G^0_s = v_{s−1} (the value
        # of the state before step s); past the end every return is v_{T−1}.
        if s >= 7:
            return v[6]
        if k == 0:
            return v[s - 1]
        return r[s] + gamma[s] * ((1 - lam[s]) * v[s] + lam[s] * g(s + 1, k - 1))

    expected = np.array([g(t, n) for t in range(7)])
    got = lossjax.n_step_returns(r, gamma, v, n=n, lambda_=lam)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_discounted_returns_takes_rlax_per_step_values(x64):
    r, gamma, v = RNG.normal(size=7), RNG.uniform(0.5, 1.0, 7), RNG.normal(size=7)
    np.testing.assert_allclose(lossjax.discounted_returns(r, gamma, v),
                               lossjax.discounted_returns(r, gamma, v[-1]), rtol=1e-12)


def test_cosine_decay_takes_step_counts_past_int32():
    schedule = jax.jit(lossjax.schedules.cosine_decay(1000.0, int(1e10)))
    np.testing.assert_allclose(schedule(int(1e9)), 500.0 * (1 + np.cos(np.pi * 0.1)),
                               rtol=1e-6)

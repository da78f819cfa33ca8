"""Hypothesis property tests: non-negativity, zero at a perfect prediction, shift
invariance of softmax losses, Huber's bounds, KL >= 0."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lossjax

SETTINGS = settings(max_examples=25, deadline=None)
finite = st.floats(-50, 50, allow_nan=False, width=32)
vectors = arrays(np.float32, st.integers(1, 8), elements=finite)
REGRESSION = (lossjax.mse, lossjax.mae, lossjax.huber, lossjax.smooth_l1, lossjax.log_cosh)


@SETTINGS
@given(vectors, st.integers(0, 2**31 - 1))
def test_regression_losses_non_negative_and_zero_at_perfect_prediction(p, seed):
    t = np.random.default_rng(seed).normal(size=p.shape).astype(np.float32)
    for loss in REGRESSION:
        assert float(loss(p, t)) >= 0.0
        assert float(loss(p, p)) == 0.0


@SETTINGS
@given(vectors, st.floats(0.05, 5.0))
@pytest.mark.usefixtures("x64")
def test_huber_between_quadratic_and_linear_bounds(e, delta):
    t = np.zeros_like(e)
    h = np.asarray(lossjax.huber(e, t, delta=delta, reduction="none"), np.float64)
    a = np.abs(e.astype(np.float64))
    assert np.all(h <= 0.5 * a**2 + 1e-4 * (1 + a**2))
    assert np.all(h <= delta * a + 1e-4 * (1 + a))
    assert np.all(h >= delta * a - 0.5 * delta**2 - 1e-4 * (1 + a))


@SETTINGS
@given(arrays(np.float32, (3, 5), elements=finite), st.floats(-1e3, 1e3, width=32),
       st.integers(0, 4))
def test_softmax_losses_invariant_to_logit_shift(x, c, label):
    y = np.full((3,), label)
    base = lossjax.softmax_cross_entropy_with_integer_labels(x, y)
    shifted = lossjax.softmax_cross_entropy_with_integer_labels(x + c, y)
    np.testing.assert_allclose(shifted, base, rtol=1e-3, atol=1e-3 * (1 + abs(c)) * 1e-2)
    onehot = np.eye(5, dtype=np.float32)[y]
    np.testing.assert_allclose(lossjax.softmax_cross_entropy(x + c, onehot),
                               lossjax.softmax_cross_entropy(x, onehot),
                               rtol=1e-3, atol=1e-3 * (1 + abs(c)) * 1e-2)
    assert float(base) >= 0.0


@SETTINGS
@given(st.integers(2, 6), st.integers(0, 2**31 - 1))
@pytest.mark.usefixtures("x64")
def test_kl_non_negative(k, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.5, size=4)
    t = rng.dirichlet(np.ones(k) * 0.5, size=4)
    assert np.all(np.asarray(lossjax.kl_divergence(jnp.log(p), t, reduction="none")) >= -1e-12)


@SETTINGS
@given(arrays(np.float32, (6,), elements=finite), st.integers(0, 2**31 - 1))
def test_binary_losses_non_negative(x, seed):
    y = (np.random.default_rng(seed).uniform(size=6) > 0.5).astype(np.float32)
    for loss in (lossjax.sigmoid_binary_cross_entropy, lossjax.sigmoid_focal_loss,
                 lossjax.hinge, lossjax.squared_hinge):
        assert float(loss(x, y)) >= 0.0

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax
from tests import _reference as ref


def _distributions(shape, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    t = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    return p, t


@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 4)])
@pytest.mark.usefixtures("x64")
def test_kl_matches_numpy_and_optax(shape):
    p, t = _distributions(shape, 0)
    expected = ref.kl(p, t)
    np.testing.assert_allclose(lossjax.kl_divergence(np.log(p), t, reduction="none"), expected,
                               rtol=1e-10)
    np.testing.assert_allclose(lossjax.kl_divergence(np.log(p), t), expected.mean(), rtol=1e-10)
    np.testing.assert_allclose(
        lossjax.kl_divergence(np.log(p), np.log(t), log_targets=True, reduction="none"),
        expected, rtol=1e-10)
    np.testing.assert_allclose(lossjax.kl_divergence(np.log(p), t, reduction="none"),
                               optax.kl_divergence(np.log(p), t), rtol=1e-8)


@pytest.mark.usefixtures("x64")
def test_kl_gradients_match_finite_differences():
    p, t = _distributions((3, 5), 1)
    check_grads(lambda lp, tt: lossjax.kl_divergence(lp, tt), (np.log(p), t), order=2,
                modes=["rev"])
    check_grads(lambda lp, lt: lossjax.kl_divergence(lp, lt, log_targets=True),
                (np.log(p), np.log(t)), order=2, modes=["rev"])


def test_kl_zero_prediction_where_target_is_zero_is_finite():
    # optax #1786 / PyTorch: NaN here. The exact value is finite: 0 log 0 = 0.
    p = jnp.array([[0.0, 0.25, 0.75]], jnp.float32)
    t = jnp.array([[0.0, 0.5, 0.5]], jnp.float32)
    for log_targets, targets in ((False, t), (True, jnp.log(t))):
        value, grads = jax.value_and_grad(
            lambda lp, tt, lt=log_targets: lossjax.kl_divergence(lp, tt, log_targets=lt),
            argnums=(0, 1))(jnp.log(p), targets)
        np.testing.assert_allclose(value, ref.kl(p[:, 1:], t[:, 1:])[0], rtol=1e-6)
        assert np.all(np.isfinite(grads[0])) and np.all(np.isfinite(grads[1]))
        assert grads[0][0, 0] == 0.0


@pytest.mark.usefixtures("x64")
def test_kl_of_identical_distributions_is_zero_and_missing_support_is_inf():
    p, _ = _distributions((4, 3), 2)
    np.testing.assert_allclose(lossjax.kl_divergence(np.log(p), p), 0.0, atol=1e-12)
    inf = lossjax.kl_divergence(jnp.log(jnp.array([0.0, 1.0])), jnp.array([0.5, 0.5]))
    assert np.isposinf(inf)


def test_kl_bad_input_raises():
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        lossjax.kl_divergence(jnp.zeros(3), jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="reduction"):
        lossjax.kl_divergence(jnp.zeros(3), jnp.zeros(3), reduction="batchmean")


@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 4)])
@pytest.mark.usefixtures("x64")
def test_generalized_kl_matches_numpy_and_optax(shape):
    rng = np.random.default_rng(4)
    p = rng.uniform(0.1, 3.0, size=shape)  # unnormalised measures
    t = rng.uniform(0.1, 3.0, size=shape)
    t[..., 0] = 0.0
    expected = ref.generalized_kl(p, t)
    got = lossjax.generalized_kl_divergence(np.log(p), t, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, optax.losses.generalized_kl_divergence(np.log(p), t),
                               rtol=1e-10)
    with np.errstate(divide="ignore"):
        log_t = np.log(t)
    np.testing.assert_allclose(
        lossjax.generalized_kl_divergence(np.log(p), log_t, log_targets=True, reduction="none"),
        expected, rtol=1e-12)
    np.testing.assert_allclose(lossjax.generalized_kl_divergence(np.log(p), t, reduction="sum"),
                               expected.sum(), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_generalized_kl_reduces_to_kl_and_is_zero_at_equality():
    p, t = _distributions((4, 5), 5)
    np.testing.assert_allclose(lossjax.generalized_kl_divergence(np.log(p), t),
                               lossjax.kl_divergence(np.log(p), t), rtol=1e-12)
    m = np.random.default_rng(6).uniform(0.5, 2.0, size=(3, 4))
    np.testing.assert_allclose(lossjax.generalized_kl_divergence(np.log(m), m), 0.0, atol=1e-14)


@pytest.mark.usefixtures("x64")
def test_generalized_kl_gradient():
    rng = np.random.default_rng(7)
    p, t = rng.uniform(0.2, 2.0, (3, 4)), rng.uniform(0.2, 2.0, (3, 4))
    check_grads(lambda lp, tt: lossjax.generalized_kl_divergence(lp, tt), (np.log(p), t),
                order=2, modes=["rev"])
    # d/d log p_k of [-t_k log p_k + p_k] = p_k - t_k.
    got = jax.grad(lambda lp: lossjax.generalized_kl_divergence(lp, t, reduction="sum"))(
        np.log(p))
    np.testing.assert_allclose(got, p - t, rtol=1e-12)
    t0 = t.copy()
    t0[:, 1] = 0.0
    value, (g_lp, g_t) = jax.value_and_grad(
        lambda lp, tt: lossjax.generalized_kl_divergence(lp, tt), argnums=(0, 1))(np.log(p), t0)
    assert np.isfinite(value) and np.all(np.isfinite(g_lp)) and np.all(np.isfinite(g_t))


@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 4)])
@pytest.mark.usefixtures("x64")
def test_jensen_shannon_matches_numpy_and_scipy(shape):
    from scipy.spatial.distance import jensenshannon

    p, t = _distributions(shape, 8)
    expected = ref.jensen_shannon(p, t)
    got = lossjax.jensen_shannon_divergence(np.log(p), t, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # SciPy returns the Jensen-Shannon *distance*, the square root of the divergence.
    np.testing.assert_allclose(got, jensenshannon(p, t, axis=-1) ** 2, rtol=1e-10)
    np.testing.assert_allclose(
        lossjax.jensen_shannon_divergence(np.log(p), np.log(t), log_targets=True,
                                          reduction="none"), expected, rtol=1e-12)
    np.testing.assert_allclose(lossjax.jensen_shannon_divergence(np.log(t), p, reduction="none"),
                               expected, rtol=1e-12)  # symmetric


@pytest.mark.usefixtures("x64")
def test_jensen_shannon_bounds_zeros_and_gradients():
    p, t = _distributions((4, 5), 9)
    np.testing.assert_allclose(lossjax.jensen_shannon_divergence(np.log(p), p), 0.0, atol=1e-14)
    disjoint_p = jnp.array([[0.5, 0.5, 0.0, 0.0]])
    disjoint_t = jnp.array([[0.0, 0.0, 0.25, 0.75]])
    np.testing.assert_allclose(
        lossjax.jensen_shannon_divergence(jnp.log(disjoint_p), disjoint_t), np.log(2.0),
        rtol=1e-12)
    check_grads(lambda lp, tt: lossjax.jensen_shannon_divergence(lp, tt), (np.log(p), t),
                order=2, modes=["rev"])
    # Zeros in both arguments (same and different classes): finite value and gradients.
    zp = jnp.array([[0.0, 0.0, 0.4, 0.6], [0.0, 0.2, 0.3, 0.5]])
    zt = jnp.array([[0.0, 0.5, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])
    value, grads = jax.value_and_grad(
        lambda lp, tt: lossjax.jensen_shannon_divergence(lp, tt), argnums=(0, 1))(
        jnp.log(zp), zt)
    np.testing.assert_allclose(value, ref.jensen_shannon(zp, zt).mean(), rtol=1e-12)
    assert np.all(np.isfinite(grads[0])) and np.all(np.isfinite(grads[1]))
    assert grads[0][0, 0] == 0.0 and grads[0][0, 1] == 0.0



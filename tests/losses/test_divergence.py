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


def test_kl_where_and_half_precision():
    p, t = _distributions((6, 4), 3)
    m = np.array([True, False, True, True, False, True])
    np.testing.assert_allclose(lossjax.kl_divergence(np.log(p), t, where=m),
                               ref.kl(p, t)[m].mean(), rtol=1e-10)
    v = lossjax.kl_divergence(jnp.log(jnp.asarray(p, jnp.bfloat16)), jnp.asarray(t, jnp.bfloat16))
    assert v.dtype == jnp.float32

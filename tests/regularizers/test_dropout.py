"""dropout: binomial bounds on the kept fraction and the mean, identity cases, key
determinism, gradients through the kept units only, jit/grad/vmap and dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax

N = 200_000


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_kept_fraction_and_mean_within_five_sigma(rate):
    x = jax.random.normal(jax.random.key(1), (N,), jnp.float64) + 1.0
    out = np.asarray(lossjax.dropout(jax.random.key(0), x, rate=rate))
    kept = out != 0.0
    p = 1.0 - rate
    # number kept ~ Binomial(N, 1 − rate)
    assert abs(kept.sum() - N * p) <= 5 * np.sqrt(N * p * rate)
    # out_i − x_i has mean 0 and variance x_i²·rate/(1 − rate)
    sigma_mean = np.sqrt(np.sum(np.asarray(x) ** 2) * rate / p) / N
    assert abs(out.mean() - np.asarray(x).mean()) <= 5 * sigma_mean
    np.testing.assert_allclose(out[kept], np.asarray(x)[kept] / p, rtol=1e-15)


def test_rate_zero_and_deterministic_return_x_itself():
    x = jnp.arange(6.0).reshape(2, 3)
    assert lossjax.dropout(jax.random.key(0), x, rate=0.0) is x
    assert lossjax.dropout(jax.random.key(0), x, rate=0.5, deterministic=True) is x
    assert lossjax.dropout(None, x, rate=0.5, deterministic=True) is x


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_rate_outside_unit_interval_raises(rate):
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\).*deterministic=True"):
        lossjax.dropout(jax.random.key(0), jnp.ones(3), rate=rate)


def test_integer_input_raises():
    with pytest.raises(ValueError, match="x must be a floating array"):
        lossjax.dropout(jax.random.key(0), jnp.ones(3, jnp.int32), rate=0.5)


def test_same_key_same_mask_other_key_other_mask():
    x = jnp.ones((64, 64), jnp.float32)
    a = lossjax.dropout(jax.random.key(7), x, rate=0.5)
    b = lossjax.dropout(jax.random.key(7), x, rate=0.5)
    c = lossjax.dropout(jax.random.key(8), x, rate=0.5)
    np.testing.assert_array_equal(a, b)
    assert np.any(np.asarray(a) != np.asarray(c))


def test_jit_matches_eager_with_a_traced_rate():
    x = jax.random.normal(jax.random.key(1), (32, 16), jnp.float32)
    eager = lossjax.dropout(jax.random.key(0), x, rate=0.25)
    jitted = jax.jit(lambda k, x, r: lossjax.dropout(k, x, rate=r))(jax.random.key(0), x, 0.25)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_gradient_is_keep_mask_over_keep_probability():
    rate = 0.4
    key = jax.random.key(3)
    x = jax.random.normal(jax.random.key(1), (50, 20), jnp.float64)
    cotangent = jax.random.normal(jax.random.key(2), x.shape, jnp.float64)
    grad = jax.grad(lambda x: jnp.sum(cotangent * lossjax.dropout(key, x, rate=rate)))(x)
    keep = np.asarray(lossjax.dropout(key, jnp.ones_like(x), rate=rate)) != 0.0
    assert 0 < keep.sum() < keep.size
    np.testing.assert_allclose(grad, np.asarray(cotangent) * keep / (1 - rate), rtol=1e-15)
    assert np.all(np.asarray(grad)[~keep] == 0.0)


def test_vmap_over_keys_gives_each_example_its_own_mask():
    keys = jax.random.split(jax.random.key(0), 8)
    x = jnp.ones((8, 100), jnp.float32)
    batched = jax.vmap(lambda k, row: lossjax.dropout(k, row, rate=0.5))(keys, x)
    for i in range(8):
        np.testing.assert_array_equal(batched[i], lossjax.dropout(keys[i], x[i], rate=0.5))
    assert np.any(np.asarray(batched[0]) != np.asarray(batched[1]))


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64])
def test_dtype_is_kept(dtype):
    x = jnp.ones((16,), dtype)
    out = lossjax.dropout(jax.random.key(0), x, rate=0.5)
    assert out.dtype == dtype
    assert set(np.asarray(out, np.float64).tolist()) <= {0.0, 2.0}
    traced = jax.jit(lambda x, r: lossjax.dropout(jax.random.key(0), x, rate=r))(x, 0.5)
    assert traced.dtype == dtype

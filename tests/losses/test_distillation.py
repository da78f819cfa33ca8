"""distillation_loss against a float64 NumPy reference of Hinton et al.'s T²-scaled KL."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from tests.losses import _task_reference as ref

RNG = np.random.default_rng(0)
S, T = RNG.normal(0, 2, (6, 5)), RNG.normal(0, 2, (6, 5))


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_values_reductions_and_gradient(temperature):
    ref.check_reductions(lossjax.distillation_loss, (S.astype(np.float32), T.astype(np.float32)),
                         ref.distillation(S, T, temperature), np.linspace(0.5, 2, 6),
                         temperature=temperature)
    with jax.enable_x64(True):
        gs, gt = jax.grad(lambda s, t: lossjax.distillation_loss(
            s, t, temperature=temperature, reduction="sum"), (0, 1))(jnp.asarray(S), jnp.asarray(T))
        expected = ref.numeric_grad(lambda s: ref.distillation(s, T, temperature).sum(), S)
        np.testing.assert_allclose(gs, expected, rtol=1e-6, atol=1e-9)
        assert np.all(gt == 0)  # the teacher is held constant


def test_class_axis_and_zero_teacher_probability():
    np.testing.assert_allclose(
        lossjax.distillation_loss(S.T.astype(np.float32), T.T.astype(np.float32), axis=0,
                                  reduction="none"), ref.distillation(S, T), rtol=1e-5)
    t = jnp.array([[0.0, -jnp.inf, 1.0]], jnp.float32)
    s = jnp.array([[1.0, 2.0, 0.0]], jnp.float32)
    v, g = jax.value_and_grad(lambda s: lossjax.distillation_loss(s, t))(s)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, ref.distillation(np.array([[1.0, 2.0, 0.0]]),
                                                   np.array([[0.0, -1e300, 1.0]])), rtol=1e-5)


def test_bad_input_names_the_argument():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="temperature"):
        lossjax.distillation_loss(x, x, temperature=-1.0)
    with pytest.raises(ValueError, match="teacher_logits"):
        lossjax.distillation_loss(x, jnp.zeros((2, 4)))

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


# ----- divergences: TRL's generalized JSD (GKD) ------------------------------------------

from tests.losses import _post_training_reference as trl  # noqa: E402

S3, T3 = RNG.normal(0, 2, (2, 5, 7)), RNG.normal(0, 2, (2, 5, 7))
LABELS = np.array([[3, -100, 1, 0, -100], [-100, 2, 2, 6, 5]])


@pytest.mark.parametrize("divergence, beta", [("forward_kl", 0.0), ("reverse_kl", 1.0),
                                              ("jsd", 0.5), ("jsd", 0.1)])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_divergences_match_trl_generalized_jsd(x64, divergence, beta, temperature):
    def ours(s, labels):
        return lossjax.distillation_loss(s, T3, divergence=divergence, beta=max(beta, 0.1),
                                         temperature=temperature, labels=labels)

    trl_beta = {"forward_kl": 0.0, "reverse_kl": 1.0}.get(divergence, beta)
    for labels in (None, LABELS):
        value, grad = jax.jit(jax.value_and_grad(ours))(S3, labels)

        def reference(s, labels=labels):
            return trl.generalized_jsd(s, T3, labels, trl_beta, temperature)

        # TRL's generalized_jsd_loss has no T² factor.
        np.testing.assert_allclose(value / temperature**2, reference(S3), rtol=1e-10)
        np.testing.assert_allclose(grad / temperature**2, ref.numeric_grad(reference, S3),
                                   rtol=1e-6, atol=1e-9)
        if labels is not None:
            assert np.all(np.asarray(grad)[labels == -100] == 0.0)


def test_ignored_tokens_may_hold_nan_and_jsd_handles_zero_teacher_probability():
    s = np.where((LABELS == -100)[..., None], np.nan, S3).astype(np.float32)
    kept = LABELS != -100

    @jax.jit
    def both(s):
        out = []
        for d in ("forward_kl", "reverse_kl", "jsd"):
            value, grad = jax.value_and_grad(lambda s, d=d: lossjax.distillation_loss(
                s, T3.astype(np.float32), divergence=d, labels=LABELS))(s)
            clean = lossjax.distillation_loss(S3[kept].astype(np.float32),
                                              T3[kept].astype(np.float32), divergence=d)
            out.append((value, grad, clean))
        return out

    for value, grad, clean in both(s):
        np.testing.assert_allclose(value, clean, rtol=1e-6)
        assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[LABELS == -100] == 0)
    t = jnp.array([[0.0, -jnp.inf, 1.0]])
    v, g = jax.jit(jax.value_and_grad(lambda s: lossjax.distillation_loss(
        s, t, divergence="jsd")))(jnp.array([[1.0, 2.0, 0.0]]))
    assert np.isfinite(v) and np.all(np.isfinite(g))


def test_divergence_errors_name_the_argument():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="divergence"):
        lossjax.distillation_loss(x, x, divergence="kl")
    with pytest.raises(ValueError, match="beta"):
        lossjax.distillation_loss(x, x, divergence="jsd", beta=1.0)
    with pytest.raises(ValueError, match="labels"):
        lossjax.distillation_loss(x, x, labels=jnp.zeros(3, jnp.int32))

"""DPO, IPO, SimPO and ORPO against float64 NumPy references of TRL's formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import lossjax
from tests.losses import _task_reference as ref

N = 8
RNG = np.random.default_rng(0)
LOGPS = [-RNG.uniform(0.05, 3.0, N) for _ in range(4)]
WEIGHTS = np.linspace(0.5, 2, N)

CASES = [  # (loss, number of log-prob inputs, options, reference)
    (lossjax.dpo_loss, 4, {}, ref.dpo),
    (lossjax.dpo_loss, 4, {"beta": 0.5, "label_smoothing": 0.2},
     lambda *x: ref.dpo(*x, beta=0.5, ls=0.2)),
    (lossjax.ipo_loss, 4, {"beta": 0.3}, lambda *x: ref.ipo(*x, beta=0.3)),
    (lossjax.simpo_loss, 2, {}, ref.simpo),
    (lossjax.simpo_loss, 2, {"beta": 2.5, "gamma": 1.0},
     lambda *x: ref.simpo(*x, beta=2.5, gamma=1.0)),
    (lossjax.orpo_loss, 2, {}, ref.orpo),
    (lossjax.orpo_loss, 2, {"beta": 0.25}, lambda *x: ref.orpo(*x, beta=0.25)),
]
IDS = [f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("loss, n, options, reference", CASES, ids=IDS)
def test_values_reductions_and_gradients(loss, n, options, reference):
    args = [x.astype(np.float32) for x in LOGPS[:n]]
    ref.check_reductions(loss, args, reference(*LOGPS[:n]), WEIGHTS, **options)
    with jax.enable_x64(True):
        grads = jax.grad(lambda *xs: loss(*xs, reduction="sum", **options), tuple(range(n)))(
            *map(jnp.asarray, LOGPS[:n]))
        for i, g in enumerate(grads):
            def along_i(x, i=i):
                return reference(*[x if j == i else LOGPS[j] for j in range(n)]).sum()
            np.testing.assert_allclose(g, ref.numeric_grad(along_i, LOGPS[i]), rtol=1e-6,
                                       atol=1e-9)
        if loss is lossjax.orpo_loss:  # the capped, rewritten log-odds
            check_grads(lambda *xs: loss(*xs, **options), tuple(map(jnp.asarray, LOGPS[:n])),
                        order=1, modes=["rev"], eps=1e-5)


@pytest.mark.parametrize("loss, n, options, reference", CASES[::2], ids=IDS[::2])
def test_rewards_are_masked_and_carry_no_gradient(loss, n, options, reference):
    args = [x.astype(np.float32) for x in LOGPS[:n]]
    mask = np.arange(N) % 3 != 1
    value, chosen, rejected = loss(*args, return_rewards=True, where=mask, **options)
    np.testing.assert_allclose(value, loss(*args, where=mask, **options), rtol=1e-6)
    beta = options.get("beta", 2.0 if loss is lossjax.simpo_loss else 0.1)
    if n == 4:
        expected = beta * (LOGPS[0] - LOGPS[2]), beta * (LOGPS[1] - LOGPS[3])
    else:
        expected = beta * LOGPS[0], beta * LOGPS[1]
    for got, want in zip((chosen, rejected), expected, strict=True):
        np.testing.assert_allclose(got, np.where(mask, want, 0.0), rtol=1e-5, atol=1e-7)
    # Rewards are for logging: they carry no gradient.
    g = jax.grad(lambda x: jnp.sum(loss(x, *args[1:], return_rewards=True, **options)[1]))(
        args[0])
    assert np.all(g == 0)


def test_orpo_is_finite_where_trl_overflows():
    c = jnp.array([0.0, -1e-9, -1e-8, -1e-30, -0.5], jnp.float32)
    r = jnp.array([-1.0, -1e-7, -2.0, -3.0, 0.0], jnp.float32)
    value, (gc, gr) = jax.value_and_grad(
        lambda c, r: lossjax.orpo_loss(c, r, reduction="sum"), (0, 1))(c, r)
    assert np.isfinite(value) and np.all(np.isfinite(gc)) and np.all(np.isfinite(gr))
    invalid = lossjax.orpo_loss(jnp.array([0.1, -1.0]), jnp.array([-1.0, -2.0]),
                                reduction="none")
    assert np.isnan(invalid[0]) and np.isfinite(invalid[1])
    # TRL's log1p(-exp(x)) in float32: exp(-1e-8) rounds to 1 and the log-odds overflow.
    with np.errstate(divide="ignore"):
        assert np.isinf(np.log1p(-np.exp(np.float32(-1e-8))))
    # Where float64 still resolves it, the value matches the exact formula.
    c64, r64 = np.array([-1e-8, -1e-4]), np.array([-2.0, -1e-3])
    np.testing.assert_allclose(lossjax.orpo_loss(c64.astype(np.float32), r64.astype(np.float32),
                                                 reduction="none"),
                               ref.orpo(c64, r64), rtol=1e-4)


def test_bad_input_names_the_argument():
    x = jnp.zeros(3) - 1.0
    with pytest.raises(ValueError, match="beta"):
        lossjax.dpo_loss(x, x, x, x, beta=-0.1)
    with pytest.raises(ValueError, match="beta"):
        lossjax.ipo_loss(x, x, x, x, beta=0.0)
    with pytest.raises(ValueError, match="beta"):
        lossjax.simpo_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        lossjax.orpo_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        lossjax.dpo_loss(x, x, x, x, label_smoothing=1.5)
    with pytest.raises(ValueError, match="reference_rejected_logps"):
        lossjax.dpo_loss(x, x, x, jnp.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        lossjax.simpo_loss(x, x, reduction="avg")

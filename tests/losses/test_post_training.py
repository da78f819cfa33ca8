"""grpo_loss, group_relative_advantages, kto_loss, cpo_loss and reward_model_loss against
float64 NumPy transcriptions of TRL's formulas (tests/losses/_post_training_reference.py),
values and gradients, on padded batches with completion lengths 1..L, NaN in the padding
and all-padding rows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from tests.losses import _post_training_reference as trl
from tests.losses._task_reference import numeric_grad

B, L = 5, 6
RNG = np.random.default_rng(26)
LENGTHS = np.array([1, 3, 6, 2, 5])  # 1..L
MASK = np.arange(L)[None, :] < LENGTHS[:, None]
LP = -RNG.uniform(0.05, 3.0, (B, L))
OLD = LP + RNG.uniform(-0.35, 0.35, (B, L))
REF = LP + RNG.uniform(-0.5, 0.5, (B, L))
ADV = np.array([1.2, -0.7, 0.4, -1.5, 0.9])


def _padded(x):
    """``x`` with NaN in the padding (what a real batch may hold there)."""
    return np.where(MASK, x, np.nan)


GRPO_CASES = [  # (loss_type, options for both, reference-only options)
    ("grpo", {"epsilon": 0.2}, {}),
    ("bnpo", {"epsilon": 0.1, "epsilon_high": 0.28, "beta": 0.04}, {}),
    ("dr_grpo", {"beta": 0.1, "max_length": 8}, {"max_len": 8}),
    ("dr_grpo", {}, {"max_len": L}),
    ("dapo", {"epsilon_high": 0.28, "num_tokens": 40.0, "delta": 1.25}, {"num_items": 40.0}),
    ("dapo", {"beta": 0.02}, {"num_items": MASK.sum()}),
    ("cispo", {"epsilon_high": 1.1, "beta": 0.05}, {"num_items": MASK.sum()}),
    ("gspo", {"epsilon": 3e-2, "epsilon_high": 4e-2, "beta": 0.02}, {}),
]
_RENAME = {"epsilon": "eps", "epsilon_high": "eps_high"}


def _reference(loss_type, options, ref_only, lp=LP, detached=None):
    kw = {_RENAME.get(k, k): v for k, v in options.items()
          if k not in ("num_tokens", "max_length", "loss_type")}
    return trl.grpo(lp, OLD, ADV, MASK, loss_type, ref=REF, detached_lp=detached,
                    **kw, **ref_only)


@pytest.mark.parametrize("loss_type, options, ref_only", GRPO_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(GRPO_CASES)])
def test_grpo_matches_trl_values_metrics_and_gradients(x64, loss_type, options, ref_only):
    options = {**options, "loss_type": loss_type}

    @jax.jit
    def run(lp, old, adv, ref):
        def f(lp):
            return lossjax.grpo_loss(lp, old, adv, ref_logprobs=ref, where=MASK,
                                     return_metrics=True, **options)
        (loss, metrics), grad = jax.value_and_grad(f, has_aux=True)(lp)
        tokens = lossjax.grpo_loss(lp, old, adv, ref_logprobs=ref, where=MASK,
                                   reduction="none", **options)
        return loss, metrics, grad, tokens

    loss, metrics, grad, tokens = run(*map(jnp.asarray, (_padded(LP), _padded(OLD), ADV,
                                                         _padded(REF))))
    expected, per_token, expected_metrics = _reference(loss_type, options, ref_only)
    np.testing.assert_allclose(loss, expected, rtol=1e-10)
    np.testing.assert_allclose(tokens, per_token, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(np.array(metrics), np.array(expected_metrics), rtol=1e-10,
                               atol=1e-15)
    expected_grad = numeric_grad(
        lambda x: _reference(loss_type, options, ref_only, np.where(MASK, x, LP),
                             detached=LP)[0], LP)
    np.testing.assert_allclose(grad, np.where(MASK, expected_grad, 0.0), rtol=1e-6,
                               atol=1e-10)
    assert np.all(grad[~MASK] == 0.0)


def test_grpo_clipping_shows_in_the_metrics_and_the_gradient():
    lp = jnp.log(jnp.array([[0.5, 0.5, 0.5, 0.5]]))
    old = jnp.log(jnp.array([[0.25, 0.5, 0.8, 0.25]]))  # ratios 2, 1, 0.625, 2
    step = jax.jit(jax.value_and_grad(
        lambda x, adv: lossjax.grpo_loss(x, old, adv, loss_type="bnpo", return_metrics=True),
        has_aux=True))
    for adv, clipped in ((1.0, [True, False, False, True]), (-1.0, [False, False, True, False])):
        (loss, m), g = step(lp, jnp.array([adv]))
        np.testing.assert_allclose(m.clip_fraction, np.mean(clipped))
        assert np.all((g[0] == 0) == np.array(clipped))  # a clipped token passes no gradient
    # Clip-higher: epsilon_high = 1.5 lets the ratio-2 tokens through.
    _, m = lossjax.grpo_loss(lp, old, jnp.array([1.0]), epsilon_high=1.5, return_metrics=True)
    assert float(m.clip_fraction) == 0.0


def test_grpo_all_padding_rows_are_exactly_zero_and_left_out():
    mask = MASK.copy()
    mask[[1, 3]] = False
    lp, old, ref = (jnp.asarray(np.where(mask, x, np.nan)) for x in (LP, OLD, REF))
    keep = np.array([0, 2, 4])
    for loss_type in ("grpo", "bnpo", "dapo", "gspo", "dr_grpo"):
        def f(lp, loss_type=loss_type, mask=mask):
            return lossjax.grpo_loss(lp, old, jnp.asarray(ADV), ref_logprobs=ref, beta=0.1,
                                     where=mask, loss_type=loss_type)
        value, grad = jax.jit(jax.value_and_grad(f))(lp)
        tokens = lossjax.grpo_loss(lp, old, jnp.asarray(ADV), ref_logprobs=ref, beta=0.1,
                                   where=mask, loss_type=loss_type, reduction="none")
        grad, tokens = np.asarray(grad), np.asarray(tokens)
        assert np.all(grad[[1, 3]] == 0.0) and np.all(tokens[[1, 3]] == 0.0)
        assert np.all(np.isfinite(grad)) and np.isfinite(value)
        # The value is that of the batch without those rows (Dr. GRPO: the normaliser
        # is the constant batch_size · max_length, so the full batch's B counts).
        expected, _, _ = trl.grpo(LP[keep], OLD[keep], ADV[keep], MASK[keep], loss_type,
                                  ref=REF[keep], beta=0.1, max_len=L * B / len(keep),
                                  num_items=mask.sum())
        np.testing.assert_allclose(value, expected, rtol=1e-5)
    zero = lossjax.grpo_loss(lp, old, jnp.asarray(ADV), where=np.zeros_like(mask),
                             loss_type="grpo")
    assert float(zero) == 0.0


def test_grpo_single_update_gradient_is_the_policy_gradient():
    lp = jnp.asarray(LP, jnp.float32)
    g = jax.grad(lambda x: lossjax.grpo_loss(x, jax.lax.stop_gradient(x), jnp.asarray(ADV),
                                             where=MASK, loss_type="bnpo"))(lp)
    np.testing.assert_allclose(g, np.where(MASK, -ADV[:, None] / MASK.sum(), 0), rtol=1e-6)


def test_grpo_bad_input_names_the_argument():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="loss_type"):
        lossjax.grpo_loss(x, x, jnp.zeros(2), loss_type="ppo")
    with pytest.raises(ValueError, match="advantages"):
        lossjax.grpo_loss(x, x, jnp.zeros(3))
    with pytest.raises(ValueError, match="epsilon_high"):
        lossjax.grpo_loss(x, x, jnp.zeros(2), epsilon_high=-0.1)
    with pytest.raises(ValueError, match="max_length"):
        lossjax.grpo_loss(x, x, jnp.zeros(2), loss_type="dr_grpo", max_length=0)
    with pytest.raises(ValueError, match="ref_logprobs"):
        lossjax.grpo_loss(x, x, jnp.zeros(2), ref_logprobs=jnp.zeros((2, 4)))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_relative_advantages_match_trl(scale):
    rewards = np.round(RNG.uniform(0, 1, 12), 1)
    rewards[4:8] = 1.0  # a group with one reward: advantages 0
    got = lossjax.group_relative_advantages(rewards.astype(np.float32), 4,
                                            scale={"group": "std"}.get(scale, scale))
    np.testing.assert_allclose(got, trl.grpo_advantages(rewards, 4, scale), rtol=1e-5,
                               atol=1e-6)
    assert np.all(got[4:8] == 0.0)


def test_leave_one_out_baseline_matches_rloo():
    rewards = RNG.normal(size=(2, 12))
    got = lossjax.group_relative_advantages(rewards.astype(np.float32), 3,
                                            baseline="leave_one_out", scale="none")
    np.testing.assert_allclose(got, [trl.rloo_advantages(r, 3) for r in rewards], rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="group_size"):
        lossjax.group_relative_advantages(rewards, 5)
    with pytest.raises(ValueError, match="baseline"):
        lossjax.group_relative_advantages(rewards, 3, baseline="median")


N = 8
POLICY, REFERENCE, POLICY_KL, REFERENCE_KL = (-RNG.uniform(5, 15, N) for _ in range(4))
DESIRABLE = np.array([1, 0, 0, 1, 1, 0, 1, 0], bool)


@pytest.mark.parametrize("desirable", [DESIRABLE, np.ones(N, bool), np.zeros(N, bool)],
                         ids=["mixed", "only-desirable", "only-undesirable"])
@pytest.mark.parametrize("with_kl", [True, False], ids=["kl", "no-kl"])
def test_kto_matches_trl(x64, desirable, with_kl):
    kl_kw = {"policy_kl_logps": POLICY_KL, "reference_kl_logps": REFERENCE_KL} if with_kl else {}
    options = {"beta": 0.3, "desirable_weight": 1.33, "undesirable_weight": 0.8}
    ref_kl = (POLICY_KL, REFERENCE_KL) if with_kl else (None, None)
    reference = trl.kto(POLICY, REFERENCE, desirable, *ref_kl, **{
        "beta": 0.3, "desirable_weight": 1.33, "undesirable_weight": 0.8})

    @jax.jit
    def run(p, r):
        def f(p):
            value, rewards, kl = lossjax.kto_loss(p, r, desirable, **kl_kw,
                                                  return_rewards=True, **options)
            return value, (rewards, kl)
        return jax.value_and_grad(f, has_aux=True)(p)

    (value, (rewards, kl)), grad = run(jnp.asarray(POLICY), jnp.asarray(REFERENCE))
    np.testing.assert_allclose(value, reference[1], rtol=1e-10)
    np.testing.assert_allclose(kl, reference[2], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(rewards, 0.3 * (POLICY - REFERENCE), rtol=1e-10)

    def ref_value(p):
        return trl.kto(p, REFERENCE, desirable, *ref_kl, **{
            "beta": 0.3, "desirable_weight": 1.33, "undesirable_weight": 0.8})[1]
    np.testing.assert_allclose(grad, numeric_grad(ref_value, POLICY), rtol=1e-6, atol=1e-12)


def test_kto_kl_point_is_held_constant_and_masked():
    kl_grad = jax.grad(lambda x: lossjax.kto_loss(
        POLICY, REFERENCE, DESIRABLE, policy_kl_logps=x, reference_kl_logps=REFERENCE_KL))(
        jnp.asarray(POLICY_KL, jnp.float32))
    assert np.all(kl_grad == 0)
    mask = np.arange(N) != 2
    poisoned = [np.where(mask, x, np.nan).astype(np.float32)
                for x in (POLICY, REFERENCE, POLICY_KL, REFERENCE_KL)]
    got = lossjax.kto_loss(poisoned[0], poisoned[1], DESIRABLE, policy_kl_logps=poisoned[2],
                           reference_kl_logps=poisoned[3], where=mask)
    expected = trl.kto(POLICY[mask], REFERENCE[mask], DESIRABLE[mask], POLICY_KL[mask],
                       REFERENCE_KL[mask])[1]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="desirable"):
        lossjax.kto_loss(POLICY, REFERENCE, DESIRABLE.astype(np.float32))
    with pytest.raises(ValueError, match="reference_kl_logps"):
        lossjax.kto_loss(POLICY, REFERENCE, DESIRABLE, policy_kl_logps=POLICY_KL)


def test_cpo_matches_trl_with_its_token_mean_nll(x64):
    chosen, rejected = POLICY, REFERENCE
    token_ce = RNG.uniform(0.1, 3.0, (N, 4))
    lengths = np.array([4, 2, 3, 1, 4, 4, 2, 3])
    token_ce = np.where(np.arange(4) < lengths[:, None], token_ce, 0.0)
    trl_nll = token_ce.sum() / lengths.sum()  # cross_entropy over the chosen tokens
    per_pair_nll = token_ce.sum(1) * N / lengths.sum()
    options = {"beta": 0.2, "label_smoothing": 0.1, "alpha": 0.7}
    f = jax.jit(jax.value_and_grad(lambda c, r, nll: lossjax.cpo_loss(
        c, r, chosen_nll=nll, **options), (0, 1)))
    value, (gc, gr) = f(chosen, rejected, per_pair_nll)
    expected = trl.cpo(chosen, rejected, 0.2, 0.1).mean() + 0.7 * trl_nll
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    np.testing.assert_allclose(gc, numeric_grad(lambda c: trl.cpo(c, rejected, 0.2, 0.1).mean(),
                                                chosen), rtol=1e-6)
    np.testing.assert_allclose(gr, numeric_grad(lambda r: trl.cpo(chosen, r, 0.2, 0.1).mean(),
                                                rejected), rtol=1e-6)
    # Without chosen_nll, the NLL is the paper's −log π(y_w | x) per pair.
    np.testing.assert_allclose(lossjax.cpo_loss(chosen, rejected, **options, reduction="none"),
                               trl.cpo(chosen, rejected, 0.2, 0.1) - 0.7 * chosen, rtol=1e-10)


def test_reward_model_loss_matches_trl(x64):
    c, r = RNG.normal(size=N), RNG.normal(size=N)
    margin = RNG.uniform(0, 1, N)
    f = jax.jit(jax.value_and_grad(lambda c, r: lossjax.reward_model_loss(
        c, r, margin=margin, center_rewards_coefficient=0.01), (0, 1)))
    value, (gc, gr) = f(c, r)
    np.testing.assert_allclose(value, trl.reward_model(c, r, margin, 0.01), rtol=1e-10)
    np.testing.assert_allclose(gc, numeric_grad(lambda c: trl.reward_model(c, r, margin, 0.01),
                                                c), rtol=1e-6)
    np.testing.assert_allclose(gr, numeric_grad(lambda r: trl.reward_model(c, r, margin, 0.01),
                                                r), rtol=1e-6)
    np.testing.assert_allclose(lossjax.reward_model_loss(c, r), trl.reward_model(c, r),
                               rtol=1e-10)
    with pytest.raises(ValueError, match="margin"):
        lossjax.reward_model_loss(c, r, margin=np.zeros(3))
    with pytest.raises(ValueError, match="center_rewards_coefficient"):
        lossjax.reward_model_loss(c, r, center_rewards_coefficient=-1.0)

"""Float64 NumPy transcriptions of TRL's post-training formulas (GRPOTrainer._compute_loss
and its advantages, RLOOTrainer's baseline, KTOTrainer.kto_loss, CPOTrainer.cpo_loss,
RewardTrainer.compute_loss, GKDTrainer.generalized_jsd_loss), written from TRL's source
(trl 1.16): variable-sized selections where TRL uses them, PyTorch's conventions
(``torch.std`` with Bessel's correction, ``F.kl_div(input, target) = KL(target ‖ input)``)."""

import numpy as np

from tests.losses._task_reference import log_sigmoid


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def grpo(lp, old, adv, mask, loss_type, *, eps=0.2, eps_high=None, beta=0.0, ref=None,
         delta=None, max_len=None, num_items=None, detached_lp=None):
    """TRL's loss and its metrics. ``detached_lp`` is the value ``.detach()`` sees (CISPO's
    clamped ratio): a finite-difference gradient holds it fixed."""
    eps_high = eps if eps_high is None else eps_high
    m = mask.astype(np.float64)
    frozen = lp if detached_lp is None else detached_lp
    a = adv[:, None]

    def coefficient(x):
        log_ratio = x - old
        if loss_type == "gspo":  # importance_sampling_level="sequence"
            return np.exp((log_ratio * m).sum(-1) / np.maximum(m.sum(-1), 1.0))[:, None]
        return np.exp(log_ratio)

    coef_1 = coefficient(lp)
    if loss_type == "cispo":
        per_token = -np.minimum(coefficient(frozen), eps_high) * a * lp
    else:
        coef_2 = np.clip(coef_1, 1 - eps, 1 + eps_high)
        c1 = coef_1 if delta is None else np.minimum(coef_1, delta)
        per_token = -np.minimum(c1 * a, coef_2 * a)
    kl = np.zeros_like(lp)
    if ref is not None:
        kl = np.exp(ref - lp) - (ref - lp) - 1
        per_token = per_token + beta * kl
    if loss_type in ("grpo", "gspo"):
        loss = ((per_token * m).sum(-1) / np.maximum(m.sum(-1), 1.0)).mean()
    elif loss_type == "bnpo":
        loss = (per_token * m).sum() / max(m.sum(), 1.0)
    elif loss_type == "dr_grpo":
        loss = (per_token * m).sum() / (per_token.shape[0] * max_len)
    else:
        loss = (per_token * m).sum() / max(num_items, 1.0)

    def masked_mean(x):
        if x.shape[1] == 1:  # a sequence-level ratio: one value per sequence
            return x.mean()
        return (x * m).sum() / m.sum()

    if loss_type == "cispo":
        low, high = np.zeros_like(lp, bool), (coef_1 > eps_high) & (a > 0)
    else:
        low, high = (coef_1 < 1 - eps) & (a < 0), (coef_1 > 1 + eps_high) & (a > 0)
    metrics = (masked_mean(kl), masked_mean((low | high).astype(float)),
               masked_mean(low.astype(float)), masked_mean(high.astype(float)))
    return loss, per_token * m, metrics


def grpo_advantages(rewards, group_size, scale="group", eps=1e-4):
    grouped = rewards.reshape(-1, group_size)
    mean = np.repeat(grouped.mean(1), group_size)
    if scale == "group":
        std = np.repeat(grouped.std(1, ddof=1), group_size)
    else:
        std = np.full_like(rewards, rewards.std(ddof=1))
    advantages = rewards - mean
    return advantages if scale == "none" else advantages / (std + eps)


def rloo_advantages(rewards, group_size):
    grouped = rewards.reshape(-1, group_size)
    baselines = (grouped.sum(1, keepdims=True) - grouped) / (group_size - 1)
    return rewards - baselines.reshape(-1)


def kto(policy, reference, desirable, policy_kl=None, reference_kl=None, beta=0.1,
        desirable_weight=1.0, undesirable_weight=1.0):
    """TRL's losses, concatenated (desirable first), with the mean of them and the KL."""
    if policy_kl is None:
        kl = 0.0
    else:
        kl = max((policy_kl - reference_kl).mean(), 0.0)
    chosen = policy[desirable] - reference[desirable]
    rejected = policy[~desirable] - reference[~desirable]
    chosen_losses = 1 - sigmoid(beta * (chosen - kl))
    rejected_losses = 1 - sigmoid(beta * (kl - rejected))
    losses = np.concatenate([desirable_weight * chosen_losses,
                             undesirable_weight * rejected_losses])
    return losses, np.nanmean(losses), kl


def cpo(chosen, rejected, beta=0.1, label_smoothing=0.0):
    logits = chosen - rejected
    return (-log_sigmoid(beta * logits) * (1 - label_smoothing)
            - log_sigmoid(-beta * logits) * label_smoothing)


def reward_model(chosen, rejected, margin=None, center=None):
    diff = chosen - rejected - (0.0 if margin is None else margin)
    loss = -log_sigmoid(diff).mean()
    if center is not None:
        loss += center * np.mean((chosen + rejected) ** 2)
    return loss


def kl_div(input_log, target_log):
    """``F.kl_div(input, target, reduction="none", log_target=True)``."""
    return np.exp(target_log) * (target_log - input_log)


def generalized_jsd(student, teacher, labels=None, beta=0.5, temperature=1.0):
    """GKDTrainer.generalized_jsd_loss, ``reduction="batchmean"``."""
    s = log_softmax(student / temperature)
    t = log_softmax(teacher / temperature)
    if beta == 0:
        jsd = kl_div(s, t)
    elif beta == 1:
        jsd = kl_div(t, s)
    else:
        mixture = np.logaddexp(s + np.log1p(-beta), t + np.log(beta))
        jsd = beta * kl_div(mixture, t) + (1 - beta) * kl_div(mixture, s)
    if labels is not None:
        mask = labels != -100
        return jsd[mask].sum() / mask.sum()
    return jsd.sum() / (jsd.shape[0] * jsd.shape[1])

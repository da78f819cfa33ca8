"""Post-training losses. GRPO: ``[B, T]`` token log-probabilities and one advantage per
sequence (masking example 0 drops sequence 0: row 0 of every argument); KTO, CPO and the
reward model: one number per completion or pair."""

import numpy as np

from tests.losses._registry import Sample, floats

_B, _T = 3, 4
_LOGPS = floats(230, _B, _T, low=-3.0, high=-0.1)
_OLD = _LOGPS + floats(231, _B, _T, low=-0.4, high=0.4)
_REF = _LOGPS + floats(232, _B, _T, low=-0.5, high=0.5)
_ADV = np.array([1.0, -0.5, 0.8], np.float32)
_GRPO_ARGS = (_LOGPS, _OLD, _ADV)
_MEAN = {"mean": "reduction='mean' divides by loss_type's normaliser, not the token count"}
_CLIP = {"epsilon": (0.2, 0.1), "epsilon_high": (0.28, 0.2)}

_SEQ = tuple(floats(240 + i, 6, low=-8.0, high=-0.5) for i in range(4))
_DESIRABLE = np.array([True, False, True, True, False, False])
_PAIRS = tuple(floats(250 + i, 3, 2, low=-8.0, high=-0.5) for i in range(2))

SAMPLES = [
    Sample("grpo_loss", _GRPO_ARGS, kwargs={"ref_logprobs": _REF},
           hyper={**_CLIP, "beta": (0.04, 0.0), "delta": (3.0, 1.1)}, skip=_MEAN),
    Sample("grpo_loss", _GRPO_ARGS, kwargs={"loss_type": "grpo"}, hyper=_CLIP, skip=_MEAN,
           id="grpo"),
    Sample("grpo_loss", _GRPO_ARGS, kwargs={"loss_type": "gspo", "ref_logprobs": _REF},
           hyper={**_CLIP, "beta": (0.04, 0.0)}, skip=_MEAN, id="gspo"),
    Sample("grpo_loss", _GRPO_ARGS, kwargs={"loss_type": "cispo"},
           hyper={"epsilon_high": (5.0, 1.1)}, skip=_MEAN, id="cispo"),
    Sample("kto_loss", (_SEQ[0], _SEQ[1], _DESIRABLE),
           hyper={"beta": (0.1, 0.5), "desirable_weight": (1.0, 1.33),
                  "undesirable_weight": (1.0, 0.0)}),
    Sample("kto_loss", (_SEQ[0], _SEQ[1], _DESIRABLE),
           kwargs={"policy_kl_logps": _SEQ[2], "reference_kl_logps": _SEQ[3]},
           hyper={"beta": (0.1, 0.5)},
           skip={"where_independent": "the KL reference point is a mean over the kept "
                                      "examples"}, id="kl"),
    Sample("cpo_loss", _PAIRS,
           hyper={"beta": (0.1, 0.5), "label_smoothing": (0.1, 0.0), "alpha": (1.0, 0.0)}),
    Sample("reward_model_loss", _PAIRS, kwargs={"margin": floats(260, 3, 2, low=0.0)},
           hyper={"center_rewards_coefficient": (0.01, 0.0)}),
]

EXEMPT = {
    "group_relative_advantages": "an estimator of advantages from rewards, not a reduced "
                                 "loss (grpo_loss takes its output)",
    "GRPOMetrics": "the NamedTuple of metrics grpo_loss returns, not a function",
}

"""Reinforcement-learning losses: time-major ``[T, B]`` steps (``[T, B, A]`` with actions).

The examples are the steps: masking example 0 drops time step 0 of every batch entry, the
slice at index 0 of axis 0 of every per-step array (action values and logits included).
"""

from tests.losses._registry import Sample, floats, int_labels

_T, _B, _A = 3, 2, 4
_LOGITS = floats(70, _T, _B, _A)
_ACTIONS = int_labels(71, _A, _T, _B)
_ADVANTAGES = floats(72, _T, _B)
_VALUES, _RETURNS = floats(73, _T, _B), floats(74, _T, _B)
_REWARDS = floats(75, _T, _B)
_DISCOUNTS = floats(76, _T, _B, low=0.0, high=1.0)
_Q, _NEXT_Q, _SELECTOR = floats(77, _T, _B, _A), floats(78, _T, _B, _A), floats(79, _T, _B, _A)

_HUBER = {"huber_delta": (1.0, 0.5)}

SAMPLES = [
    Sample("policy_gradient_loss", (_LOGITS, _ACTIONS, _ADVANTAGES), mismatch=(1, 2)),
    Sample("entropy_loss", (_LOGITS,),
           skip={"shapes": "one input: there is no second shape to mismatch"}),
    Sample("clipped_surrogate_loss", (floats(80, _T, _B, low=0.5, high=1.5), _ADVANTAGES),
           hyper={"epsilon": (0.2, 0.0)}),
    Sample("clipped_value_loss", (_VALUES, floats(81, _T, _B), _RETURNS),
           hyper={"epsilon": (0.2, 0.0)}),
    Sample("td_loss", (_VALUES, _REWARDS, _DISCOUNTS, floats(82, _T, _B)), hyper=_HUBER),
    Sample("q_learning_loss", (_Q, _ACTIONS, _REWARDS, _DISCOUNTS, _NEXT_Q),
           hyper=_HUBER, mismatch=(0, 4)),
    Sample("double_q_learning_loss", (_Q, _ACTIONS, _REWARDS, _DISCOUNTS, _NEXT_Q, _SELECTOR),
           hyper=_HUBER, mismatch=(4, 5)),
]

_ESTIMATOR = ("an estimator of {}, one per step, not a reduced loss: no weights, where or "
              "reduction (losses such as td_loss take its output as their target)")

EXEMPT = {
    "discounted_returns": _ESTIMATOR.format("returns"),
    "lambda_returns": _ESTIMATOR.format("TD(λ) returns"),
    "n_step_returns": _ESTIMATOR.format("n-step returns"),
    "generalized_advantage_estimation": _ESTIMATOR.format("advantages"),
    "vtrace": _ESTIMATOR.format("V-trace errors"),
}

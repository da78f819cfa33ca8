"""Regression losses: elementwise, predictions and targets of one shape."""

from tests.losses._registry import Sample, floats

_P, _T = floats(0, 3, 2), floats(1, 3, 2)
_POS_P, _POS_T = floats(2, 3, 2, low=0.1, high=3.0), floats(3, 3, 2, low=0.5, high=3.0)

SAMPLES = [
    Sample("mse", (_P, _T)),
    Sample("mae", (_P, _T)),
    Sample("huber", (_P, _T), hyper={"delta": (1.0, 0.5)}),
    Sample("smooth_l1", (_P, _T), hyper={"beta": (1.0, 0.0)}),
    Sample("log_cosh", (_P, _T)),
    Sample("msle", (_POS_P, _POS_T), hyper={"eps": (1e-7, 1e-3)}),
    Sample("mape", (_P, _POS_T), hyper={"eps": (1e-7, 1e-3)}),
]

EXEMPT = {
    "reduce_loss": "the reduction every loss hands its unreduced value to, not a loss",
    "elementwise_loss": "a decorator that builds losses; mse, mae and log_cosh are built "
                        "with it and registered",
}

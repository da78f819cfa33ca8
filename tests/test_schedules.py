import numpy as np
import optax
import pytest

from lossjax import schedules

STEPS = np.arange(0, 130)

PAIRS = {
    "constant": (schedules.constant(0.3), optax.constant_schedule(0.3)),
    "exponential": (schedules.exponential_decay(1.0, 10, 0.7),
                    optax.exponential_decay(1.0, 10, 0.7)),
    "exponential_staircase_end": (
        schedules.exponential_decay(1.0, 10, 0.5, transition_begin=5, staircase=True,
                                    end_value=0.1),
        optax.exponential_decay(1.0, 10, 0.5, transition_begin=5, staircase=True,
                                end_value=0.1)),
    "cosine": (schedules.cosine_decay(2.0, 50, alpha=0.1),
               optax.cosine_decay_schedule(2.0, 50, 0.1)),
    "warmup_cosine": (schedules.warmup_cosine_decay(0.0, 1.0, 10, 100, 0.05),
                      optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.05)),
    "piecewise": (schedules.piecewise_constant(1.0, {10: 0.5, 40: 0.1}),
                  optax.piecewise_constant_schedule(1.0, {10: 0.5, 40: 0.1})),
}


@pytest.mark.parametrize("name", PAIRS)
def test_schedules_match_optax(name):
    ours, theirs = PAIRS[name]
    np.testing.assert_allclose([float(ours(s)) for s in STEPS],
                               [float(theirs(s)) for s in STEPS], rtol=1e-6, atol=1e-7)


def test_schedules_match_formulas():
    warm = schedules.warmup_cosine_decay(0.0, 1.0, 10, 110, 0.0)
    assert float(warm(5)) == pytest.approx(0.5)
    assert float(warm(60)) == pytest.approx(0.5, abs=1e-6)  # half-way through the cosine
    assert float(warm(110)) == pytest.approx(0.0, abs=1e-7)
    assert float(schedules.exponential_decay(1.0, 10, 0.5)(20)) == pytest.approx(0.25)
    assert float(schedules.piecewise_constant(1.0, {3: 0.1})(3)) == pytest.approx(0.1)


def test_bad_schedule_arguments_raise():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.cosine_decay(1.0, 0)
    with pytest.raises(ValueError, match="alpha"):
        schedules.cosine_decay(1.0, 10, alpha=2.0)
    with pytest.raises(ValueError, match="transition_steps"):
        schedules.exponential_decay(1.0, 0, 0.5)

import jax
import numpy as np
import optax
import pytest

import lossjax
from lossjax import schedules

N = 260
STEPS = np.arange(N)
CYCLE = dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=60, end_value=0.1)

# (lossjax schedule, optax schedule), built with the same positional arguments.
PAIRS = {
    "constant": (schedules.constant(0.3), optax.constant_schedule(0.3)),
    "linear": (schedules.linear(1.0, 0.2, 100, 20), optax.linear_schedule(1.0, 0.2, 100, 20)),
    "polynomial": (schedules.polynomial(1.0, 0.1, 2.5, 80, 5),
                   optax.polynomial_schedule(1.0, 0.1, 2.5, 80, 5)),
    "exponential": (schedules.exponential_decay(1.0, 10, 0.7),
                    optax.exponential_decay(1.0, 10, 0.7)),
    "exponential_staircase_end": (schedules.exponential_decay(1.0, 10, 0.5, 5, True, 0.1),
                                  optax.exponential_decay(1.0, 10, 0.5, 5, True, 0.1)),
    "exponential_growth_capped": (schedules.exponential_decay(0.1, 20, 1.5, 0, False, 2.0),
                                  optax.exponential_decay(0.1, 20, 1.5, 0, False, 2.0)),
    "cosine": (schedules.cosine_decay(2.0, 50, 0.1, 2.0),
               optax.cosine_decay_schedule(2.0, 50, 0.1, 2.0)),
    "warmup_cosine": (schedules.warmup_cosine_decay(0.0, 1.0, 10, 100, 0.05, 1.5),
                      optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.05, 1.5)),
    "warmup_cosine_no_warmup": (schedules.warmup_cosine_decay(0.5, 1.0, 0, 100),
                                optax.warmup_cosine_decay_schedule(0.5, 1.0, 0, 100)),
    "warmup_constant": (schedules.warmup_constant(0.1, 1.0, 30),
                        optax.warmup_constant_schedule(0.1, 1.0, 30)),
    "warmup_exponential": (
        schedules.warmup_exponential_decay(0.0, 1.0, 20, 15, 0.6, 10, True, 0.05),
        optax.warmup_exponential_decay_schedule(0.0, 1.0, 20, 15, 0.6, 10, True, 0.05)),
    "piecewise_constant": (schedules.piecewise_constant(1.0, {10: 0.5, 40: 0.1}),
                           optax.piecewise_constant_schedule(1.0, {10: 0.5, 40: 0.1})),
    "piecewise_linear": (
        schedules.piecewise_interpolate("linear", 0.5, {15: 2.0, 60: 0.3, 200: 0.1}),
        optax.piecewise_interpolate_schedule("linear", 0.5, {15: 2.0, 60: 0.3, 200: 0.1})),
    "piecewise_cosine": (
        schedules.piecewise_interpolate("cosine", 0.5, {0: 1.5, 50: 0.2, 120: 3.0}),
        optax.piecewise_interpolate_schedule("cosine", 0.5, {0: 1.5, 50: 0.2, 120: 3.0})),
    "join": (schedules.join([schedules.linear(0.0, 1.0, 20), schedules.cosine_decay(1.0, 100)],
                            [20]),
             optax.join_schedules([optax.linear_schedule(0.0, 1.0, 20),
                                   optax.cosine_decay_schedule(1.0, 100)], [20])),
    "sgdr": (schedules.sgdr([CYCLE, {**CYCLE, "peak_value": 0.5}, CYCLE]),
             optax.sgdr_schedule([CYCLE, {**CYCLE, "peak_value": 0.5}, CYCLE])),
    "linear_onecycle": (schedules.linear_onecycle(200, 1.0, 0.25, 0.8, 10.0, 100.0),
                        optax.linear_onecycle_schedule(200, 1.0, 0.25, 0.8, 10.0, 100.0)),
    "cosine_onecycle": (schedules.cosine_onecycle(200, 1.0, 0.3, 20.0, 1e3),
                        optax.cosine_onecycle_schedule(200, 1.0, 0.3, 20.0, 1e3)),
}


# Under jit, optax's polynomial schedule with a fractional power gives NaN once the
# transition ends (1 − s/T dips below 0); its eager values are the reference there.
EAGER_REFERENCE = {"polynomial"}


def optax_values(schedule, eager=False):
    """optax's values at every step (one jitted, vmapped call unless ``eager``)."""
    if eager:
        return np.array([float(schedule(int(s))) for s in STEPS])
    return np.asarray(jax.jit(jax.vmap(schedule))(STEPS.astype(np.int32)), np.float64)


@pytest.mark.parametrize("name", PAIRS)
def test_schedules_match_optax_at_every_step_under_jit(name):
    ours, theirs = PAIRS[name]
    expected = optax_values(theirs, eager=name in EAGER_REFERENCE)
    jitted = schedules.values(ours, N)
    assert jitted.dtype == np.float32
    np.testing.assert_allclose(jitted, expected, rtol=2e-6, atol=2e-7)
    eager = [float(ours(int(s))) for s in STEPS[::13]]
    np.testing.assert_allclose(eager, expected[::13], rtol=2e-6, atol=2e-7)


def inverse_sqrt_reference(peak, warmup, t):
    t = np.asarray(t, np.float64)
    return peak * np.minimum(t / warmup, np.sqrt(warmup / np.maximum(t, 1)))


def wsd_reference(peak, w, s, d, init, end, shape, t):
    t = np.asarray(t, np.float64)
    f = np.clip((t - w - s) / d, 0.0, 1.0)
    cooldown = {"linear": 1 - f, "cosine": 0.5 * (1 + np.cos(np.pi * f)), "sqrt": 1 - np.sqrt(f)}
    out = end + (peak - end) * cooldown[shape]
    return np.where(t < w, init + (peak - init) * t / max(w, 1), out)


def test_inverse_sqrt_matches_its_formula():
    np.testing.assert_allclose(schedules.values(schedules.inverse_sqrt(2.0, 40), N),
                               inverse_sqrt_reference(2.0, 40, STEPS), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("shape", ["linear", "cosine", "sqrt"])
def test_warmup_stable_decay_matches_its_formula(shape):
    for args in [(1.0, 20, 100, 80, 0.1, 0.01), (0.5, 0, 50, 150, 0.0, 0.0)]:
        peak, w, s, d, init, end = args
        ours = schedules.warmup_stable_decay(peak, w, s, d, init_value=init, end_value=end,
                                             decay_shape=shape)
        np.testing.assert_allclose(schedules.values(ours, N),
                                   wsd_reference(*args, shape, STEPS), rtol=2e-6, atol=1e-7)
    wsd = schedules.warmup_stable_decay(1.0, 10, 20, 10, decay_shape=shape)
    assert float(wsd(30)) == 1.0 and float(wsd(40)) == 0.0 and float(wsd(10**6)) == 0.0


def test_wsd_linear_equals_optax_pieces_joined():
    ours = schedules.warmup_stable_decay(1.0, 20, 100, 80, init_value=0.1, end_value=0.01)
    theirs = optax.join_schedules([optax.linear_schedule(0.1, 1.0, 20),
                                   optax.constant_schedule(1.0),
                                   optax.linear_schedule(1.0, 0.01, 80)], [20, 120])
    np.testing.assert_allclose(schedules.values(ours, N), optax_values(theirs),
                               rtol=2e-6, atol=2e-7)


def test_schedules_trace_under_jit_and_vmap_with_traced_steps():
    wsd = schedules.warmup_stable_decay(1.0, 10, 80, 10, decay_shape="cosine")
    batch = jax.jit(jax.vmap(wsd))(np.array([0, 5, 50, 95], np.int32))
    np.testing.assert_allclose(batch, [0.0, 0.5, 1.0, 0.5], atol=1e-6)


def test_all_lists_every_public_schedule():
    public = {name for name in dir(schedules) if not name.startswith("_")
              and callable(getattr(schedules, name))}
    assert set(schedules.__all__) == public


def test_plot_draws_the_schedule():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = schedules.plot(schedules.inverse_sqrt(1.0, 10), 50, label="inverse_sqrt")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(),
                               inverse_sqrt_reference(1.0, 10, np.arange(50)), rtol=2e-6)
    plt.close(ax.figure)


def test_plot_without_matplotlib_says_so(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        schedules.plot(schedules.constant(0.1), 10)


@pytest.mark.parametrize("build, name", [
    (lambda: schedules.cosine_decay(1.0, 0), "decay_steps"),
    (lambda: schedules.cosine_decay(1.0, 10, alpha=2.0), "alpha"),
    (lambda: schedules.exponential_decay(1.0, 0, 0.5), "transition_steps"),
    (lambda: schedules.linear(1.0, 0.0, 0), "transition_steps"),
    (lambda: schedules.polynomial(1.0, 0.0, 1, 10, -1), "transition_begin"),
    (lambda: schedules.warmup_cosine_decay(0.0, 1.0, 10, 5), "decay_steps"),
    (lambda: schedules.warmup_constant(0.0, 1.0, -1), "warmup_steps"),
    (lambda: schedules.piecewise_interpolate("cubic", 1.0), "interpolate_type"),
    (lambda: schedules.piecewise_constant(1.0, {10: -0.5}), "boundaries_and_scales"),
    (lambda: schedules.join([schedules.constant(1.0)], [5]), "boundaries"),
    (lambda: schedules.linear_onecycle(0, 1.0), "transition_steps"),
    (lambda: schedules.cosine_onecycle(100, 1.0, pct_start=1.5), "pct_start"),
    (lambda: schedules.inverse_sqrt(1.0, 0), "warmup_steps"),
    (lambda: schedules.warmup_stable_decay(1.0, -5, 10, 10), "warmup_steps"),
    (lambda: schedules.warmup_stable_decay(1.0, 5, -10, 10), "stable_steps"),
    (lambda: schedules.warmup_stable_decay(1.0, 5, 10, 0), "decay_steps"),
    (lambda: schedules.warmup_stable_decay(1.0, 100, 800, 0.1), "decay_steps.*fraction"),
    (lambda: schedules.warmup_stable_decay(1.0, 5, 10, 10, decay_shape="exp"), "decay_shape"),
    (lambda: schedules.values(schedules.constant(1.0), 0), "steps"),
])
def test_bad_schedule_arguments_raise_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_optax_names_are_aliases_of_the_same_schedules():
    """A port from optax changes only the prefix: every optax schedule name is there, in
    lossjax.schedules and flat, and is the lossjax function whose values CASES checks."""
    optax_names = [n for n in dir(optax.schedules) if not n.startswith("_")
                   and (n.endswith(("_schedule", "_schedules")) or n == "exponential_decay")]
    assert len(optax_names) == 14
    for name in optax_names:
        alias = getattr(schedules, name)
        assert getattr(lossjax, name) is alias
        short = name.removesuffix("_schedules").removesuffix("_schedule")
        assert alias is getattr(schedules, short), name

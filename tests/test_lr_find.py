"""lr_find: the learning-rate range test, its three rules and its zero-lag smoothing.

Two kinds of problem: least squares, whose sweep is checked against float64 gradient
descent in NumPy, and a "scripted" loss that returns the batch itself, so the raw losses
are exactly a curve the test chooses and each rule can be checked against its definition.
"""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax


def _problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)) * np.linspace(0.3, 1.5, 8)
    y = x @ rng.normal(size=8) + 0.1 * rng.normal(size=128)
    return x, y


def _loss(w, batch):
    x, y = batch
    return jnp.mean(jnp.square(x @ w - y))


def _numpy_sweep(x, y, rates):
    """Gradient descent in float64 at each rate of the sweep; the loss before each step."""
    w, losses = np.zeros(x.shape[1]), []
    for rate in rates:
        r = x @ w - y
        losses.append(np.mean(r**2))
        w = w - rate * 2 * x.T @ r / len(y)
    return np.asarray(losses)


def _scripted(curve, **kwargs):
    """lr_find on a loss equal to the batch: the raw losses are ``curve``."""
    def loss_fn(w, batch):
        return batch + 0.0 * jnp.sum(w)

    batches = iter([np.float32(v) for v in curve])
    return lossjax.lr_find(loss_fn, jnp.zeros(2), batches, lossjax.sgd,
                           num_steps=len(curve), divergence_factor=1e6, **kwargs)


def _ema(values, beta):
    out, average = [], 0.0
    for i, v in enumerate(values):
        average = beta * average + (1 - beta) * v
        out.append(average / (1 - beta ** (i + 1)))
    return np.asarray(out)


def _half_fall(curve):
    """(first, last): the first index at or below halfway from curve[0] down to the
    minimum, and the minimum's index; written out as a loop."""
    last = min(range(len(curve)), key=lambda k: curve[k])
    halfway = curve[last] + (curve[0] - curve[last]) / 2
    first = next(k for k in range(last + 1) if curve[k] <= halfway)
    return first, last


def test_full_batch_sweep_follows_gradient_descent_and_rules_read_it():
    x, y = _problem()
    batch = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    result = lossjax.lr_find(_loss, jnp.zeros(8, jnp.float32), [batch], lossjax.sgd,
                             smoothing=0.0, method="steepest")
    all_rates = 1e-7 * 1e8 ** (np.arange(100) / 99)
    n = len(result.losses)
    np.testing.assert_allclose(result.learning_rates, all_rates[:n], rtol=1e-12)
    reference = _numpy_sweep(x, y, all_rates)
    # the sweep followed the float64 run until it blew up, then stopped early
    np.testing.assert_allclose(result.raw_losses[: n - 5], reference[: n - 5], rtol=1e-3)
    assert result.diverged and n < 100
    two_over_l = 2 / np.linalg.eigvalsh(2 * x.T @ x / len(y)).max()
    assert result.learning_rates[-1] > two_over_l   # stopped only after GD's limit 2/L
    # smoothing 0: the curve is the raw losses, capped at 4x the lowest after the lowest
    best = int(np.argmin(result.raw_losses))
    expected = result.raw_losses.copy()
    expected[best:] = np.minimum(expected[best:], 4 * expected[best])
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12)
    slopes = np.gradient(reference, np.log(all_rates))
    fastest = all_rates[slopes <= 0.5 * slopes.min()]
    assert result.method == "steepest" and result.suggestion == result.suggestions["steepest"]
    assert fastest.min() <= result.suggestion <= fastest.max(), (result.suggestion, fastest)
    np.testing.assert_allclose(result.suggestions["minimum"], all_rates[best] / 10, rtol=1e-9)
    assert result.suggestions["valley"] < two_over_l


def test_each_rule_on_a_scripted_curve():
    # flat, a long slow fall over 4 decades, a minimum, then a blow-up: a fresh
    # Transformer's shape; the steepest part is early (at step 25)
    t = np.arange(100)
    curve = 5.0 - 1.2 * np.tanh((t - 25) / 4.0) - 0.03 * np.clip(t - 30, 0, 45)
    curve = np.where(t > 75, curve[75] + 0.2 * np.clip(t - 75, 0, None) ** 1.5, curve)
    result = _scripted(curve, min_lr=1e-6, max_lr=1e2, smoothing=0.0)
    rates = result.learning_rates
    np.testing.assert_array_equal(result.raw_losses, curve.astype(np.float32))
    assert not result.diverged and result.method == "valley"
    assert result.suggestion == result.suggestions["valley"]
    assert set(result.suggestions) == {"valley", "steepest", "minimum"}
    np.testing.assert_allclose(result.suggestions["minimum"], rates[75] / 10, rtol=1e-9)
    np.testing.assert_allclose(result.suggestions["steepest"], rates[25], rtol=1e-9)
    first, last = _half_fall([float(v) for v in curve.astype(np.float32)])
    assert last == 75 and 25 < first < 75
    np.testing.assert_allclose(result.suggestions["valley"],
                               np.sqrt(rates[first] * rates[last]), rtol=1e-9)


def test_valley_ignores_a_slow_early_drift():
    # 40 steps of a slow drift (5.0 -> 4.8), then the real fall to 1.0 at step 70: the
    # valley is in the lower half of the real fall, not in the drift
    t = np.arange(90)
    curve = np.where(t < 40, 5.0 - 0.005 * t, 4.8 - 3.8 * np.clip((t - 40) / 30, 0, 1))
    curve = np.where(t > 70, 1.0 + 0.3 * (t - 70), curve)
    result = _scripted(curve, min_lr=1e-6, max_lr=1.0, smoothing=0.0)
    rates = result.learning_rates
    # step 55 is the first at or below halfway, (5 + 1) / 2: 4.8 - 3.8 * 15/30 = 2.9
    np.testing.assert_allclose(result.suggestions["valley"], np.sqrt(rates[55] * rates[70]),
                               rtol=1e-9)


def test_smoothing_has_no_lag():
    # a noisy valley with its minimum at step 60: the one-way 0.9 average puts it later,
    # the forward-backward one where it is
    rng = np.random.default_rng(1)
    t = np.arange(100)
    clean = 3.0 + ((t - 60) / 25.0) ** 2
    curve = clean + 0.05 * rng.normal(size=100)
    result = _scripted(curve, smoothing=0.9)
    forward = _ema(curve.astype(np.float32).astype(np.float64), 0.9)
    backward = _ema(forward[::-1], 0.9)[::-1]
    np.testing.assert_allclose(result.losses, backward, rtol=1e-6)
    assert abs(int(np.argmin(result.losses)) - 60) <= 2
    assert int(np.argmin(forward)) - 60 >= 5


def test_diverged_tail_is_capped_in_the_curve():
    curve = np.concatenate([np.linspace(2.0, 1.0, 30), [1e6, np.inf]])
    result = lossjax.lr_find(lambda w, b: b + 0.0 * jnp.sum(w), jnp.zeros(1),
                             iter([np.float32(v) for v in curve]), lossjax.sgd,
                             num_steps=40, smoothing=0.5)
    assert result.diverged and len(result.raw_losses) == 31   # stopped at the 1e6
    # the 1e6 counts as 4x the running average's lowest (about 1.0): the curve stays low
    assert np.all(np.isfinite(result.losses)) and result.losses.max() < 5.0
    assert int(np.argmin(result.losses)) >= 25


@pytest.mark.parametrize("make_optimizer", [
    lossjax.sgd,
    lambda lr: lossjax.sgd(lossjax.schedules.constant(lr)),
    lambda lr: optax.sgd(lr),   # holds no rate in its state
], ids=["float", "schedule", "optax"])
def test_every_step_uses_its_rate(make_optimizer):
    # loss = w: each SGD step moves w by -rate, so the loss before step i is -Σ rates[:i]
    result = lossjax.lr_find(lambda w, batch: w[0], jnp.zeros(1), [None], make_optimizer,
                             min_lr=1e-3, max_lr=1.0, num_steps=12, smoothing=0.0,
                             divergence_factor=1e9)
    rates = result.learning_rates
    expected = -np.concatenate([[0.0], np.cumsum(rates)[:-1]])
    np.testing.assert_allclose(result.raw_losses, expected, rtol=1e-5, atol=1e-9)


def test_minibatch_sweep_compiles_once_and_leaves_params_alone():
    x, y = _problem()
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    batches = [(x32[i : i + 32], y32[i : i + 32]) for i in range(0, 128, 32)]
    params = {"w": np.zeros(8, np.float32)}
    before = params["w"].copy()
    traces = []

    def loss(p, batch):
        traces.append(1)
        return _loss(p["w"], batch)

    result = lossjax.lr_find(loss, params, batches, lambda lr: lossjax.sgd(lr, momentum=0.0))
    assert len(traces) == 1   # one compilation for the whole sweep
    np.testing.assert_array_equal(params["w"], before)   # the caller's params untouched
    assert len(result.learning_rates) == len(result.losses) == len(result.raw_losses)
    two_over_l = 2 / np.linalg.eigvalsh(2 * x.T @ x / len(y)).max()
    for rule, rate in result.suggestions.items():
        assert 1e-4 < rate < two_over_l, (rule, rate)


def test_iterator_shorter_than_num_steps_ends_the_sweep():
    x, y = _problem()
    batches = iter([(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))] * 20)
    result = lossjax.lr_find(_loss, jnp.zeros(8, jnp.float32), batches, lossjax.adam)
    assert len(result.learning_rates) == 20 and not result.diverged


def test_plot_draws_raw_and_smoothed_losses_and_marks_the_rules(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    t = np.arange(40)
    result = _scripted(3.0 + ((t - 25) / 10.0) ** 2, min_lr=1e-4, max_lr=1.0, smoothing=0.5)
    ax = result.plot(path=tmp_path / "lr.png")
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["batch loss"].get_ydata(), result.raw_losses)
    np.testing.assert_array_equal(lines["smoothed loss"].get_ydata(), result.losses)
    labels = [label for label in lines if ":" in label]
    assert len(labels) == 3
    assert [label for label in labels if "(suggestion)" in label] == [
        f"valley: {result.suggestion:.2g} (suggestion)"]
    assert (tmp_path / "lr.png").stat().st_size > 1000


@pytest.mark.parametrize("kw, name", [
    (dict(min_lr=0.0), "min_lr"), (dict(max_lr=-1.0), "max_lr"),
    (dict(min_lr=1.0, max_lr=0.5), "max_lr"), (dict(num_steps=1), "num_steps"),
    (dict(smoothing=1.0), "smoothing"), (dict(divergence_factor=1.0), "divergence_factor"),
    (dict(method="steep"), "method"),
])
def test_bad_arguments_raise(kw, name):
    with pytest.raises(ValueError, match=name):
        lossjax.lr_find(_loss, jnp.zeros(8), [None], lossjax.sgd, **kw)


def test_optimizer_that_branches_on_the_rate_is_refused():
    def make(lr):
        return lossjax.sgd(lr) if lr < 0.5 else lossjax.adam(lr)

    with pytest.raises(ValueError, match="make_optimizer"):
        lossjax.lr_find(_loss, jnp.zeros(8), [None], make)


def test_cli_lr_find_writes_the_plot_and_says_what_it_swept(tmp_path, capsys):
    from lossjax import cli

    output = tmp_path / "plots" / "lr.png"
    status = cli.main(["lr-find", "--num-steps", "30", "--min-lr", "1e-3", "--method",
                       "minimum", "--output", str(output)])
    out = capsys.readouterr().out
    assert status == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "swept the learning rate from 0.001 to " in out
    for rule in ("valley", "steepest", "minimum"):
        assert f"rule {rule}" in out
    assert "(rule: minimum)" in out and str(output.resolve()) in out


def test_cli_lr_find_rejects_an_empty_range(capsys):
    from lossjax import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lr-find", "--min-lr", "1", "--max-lr", "0.5"])
    assert exit_info.value.code != 0
    assert "--max-lr" in capsys.readouterr().err

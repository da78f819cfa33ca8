"""lr_find: the learning-rate range test on a least-squares problem."""

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


def test_full_batch_suggestion_is_where_the_loss_falls_fastest():
    x, y = _problem()
    batch = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    result = lossjax.lr_find(_loss, jnp.zeros(8, jnp.float32), [batch], lossjax.sgd,
                             smoothing=0.0)
    expected_rates = 1e-7 * (10.0 / 1e-7) ** (np.arange(len(result.learning_rates)) / 99)
    np.testing.assert_allclose(result.learning_rates, expected_rates, rtol=1e-12)
    reference = _numpy_sweep(x, y, 1e-7 * 1e8 ** (np.arange(100) / 99))
    slopes = np.gradient(reference, np.log(1e-7 * 1e8 ** (np.arange(100) / 99)))
    fastest = (1e-7 * 1e8 ** (np.arange(100) / 99))[slopes <= 0.5 * slopes.min()]
    assert fastest.min() <= result.suggestion <= fastest.max(), (result.suggestion, fastest)
    # the sweep followed the float64 run until it blew up, then stopped early
    n = len(result.losses)
    np.testing.assert_allclose(result.raw_losses[: n - 5], reference[: n - 5], rtol=1e-3)
    assert result.diverged and n < 100
    assert result.losses[-1] > 4 * result.losses.min()
    assert np.all(result.losses[:-1] <= 4 * np.minimum.accumulate(result.losses[:-1]))
    two_over_l = 2 / np.linalg.eigvalsh(2 * x.T @ x / len(y)).max()
    assert result.learning_rates[-1] > two_over_l   # stopped only after GD's limit 2/L


def test_minibatch_suggestion_with_default_smoothing_is_below_divergence():
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
    assert 0.01 < result.suggestion < two_over_l


def test_iterator_shorter_than_num_steps_ends_the_sweep():
    x, y = _problem()
    batches = iter([(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))] * 20)
    result = lossjax.lr_find(_loss, jnp.zeros(8, jnp.float32), batches, lossjax.adam)
    assert len(result.learning_rates) == 20 and not result.diverged


def test_plot_marks_the_suggestion(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    x, y = _problem()
    batch = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    result = lossjax.lr_find(_loss, jnp.zeros(8, jnp.float32), [batch], lossjax.sgd,
                             num_steps=40, smoothing=0.5)
    ax = result.plot(path=tmp_path / "lr.png")
    assert ax.get_xscale() == "log"
    assert (tmp_path / "lr.png").stat().st_size > 1000


@pytest.mark.parametrize("kw, name", [
    (dict(min_lr=0.0), "min_lr"), (dict(max_lr=-1.0), "max_lr"),
    (dict(min_lr=1.0, max_lr=0.5), "max_lr"), (dict(num_steps=1), "num_steps"),
    (dict(smoothing=1.0), "smoothing"), (dict(divergence_factor=1.0), "divergence_factor"),
])
def test_bad_arguments_raise(kw, name):
    with pytest.raises(ValueError, match=name):
        lossjax.lr_find(_loss, jnp.zeros(8), [None], lossjax.sgd, **kw)


def test_any_optimizer_that_takes_the_rate_sweeps_it():
    # the rate is an argument of the compiled step: optax's sgd and a schedule work too
    x, y = _problem()
    batch = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    runs = [lossjax.lr_find(_loss, jnp.zeros(8, jnp.float32), [batch], make, num_steps=20,
                            smoothing=0.0)
            for make in (lossjax.sgd, optax.sgd,
                         lambda lr: lossjax.sgd(lossjax.schedules.constant(lr)))]
    for run in runs[1:]:
        np.testing.assert_allclose(run.losses, runs[0].losses, rtol=1e-5)


def test_cli_lr_find_writes_the_plot(tmp_path, capsys):
    from lossjax import cli

    output = tmp_path / "plots" / "lr.png"
    status = cli.main(["lr-find", "--num-steps", "30", "--min-lr", "1e-3", "--output",
                       str(output)])
    out = capsys.readouterr().out
    assert status == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "suggested learning rate:" in out and str(output.resolve()) in out


def test_cli_lr_find_rejects_an_empty_range(capsys):
    from lossjax import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lr-find", "--min-lr", "1", "--max-lr", "0.5"])
    assert exit_info.value.code != 0
    assert "--max-lr" in capsys.readouterr().err

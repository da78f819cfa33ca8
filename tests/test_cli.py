"""``lossjax demo`` and the digits training code it runs (in-process, few epochs)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from lossjax import cli
from lossjax.examples import digits


@pytest.fixture(scope="module")
def data() -> digits.Data:
    return digits.load_data(seed=0)


def test_demo_runs_compares_optimizers_and_writes_png(tmp_path, capsys):
    output = tmp_path / "curves" / "loss.png"
    status = cli.main(["demo", "--epochs", "1", "--output", str(output), "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(output.resolve()) in out
    for label in ("GD (full batch)", "SGD + momentum", "Adam", "Adam + L2 + dropout",
                  "Schedule-free AdamW", "Prodigy"):
        assert f"\n{label}: lr" in out
    assert out.count("epoch   1  train loss") == 6
    table = out[out.index("\nrun "):]
    assert "val acc" in table and "Adam + L2 + dropout" in table


def test_demo_single_run_with_flags(tmp_path, capsys):
    output = tmp_path / "one.png"
    status = cli.main(["demo", "--optimizer", "sgd", "--loss", "multiclass_hinge",
                       "--learning-rate", "0.01", "--l2", "0.001", "--dropout", "0.1",
                       "--batch-size", "128", "--epochs", "2", "--seed", "3",
                       "--output", str(output), "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0 and output.exists()
    assert "SGD + momentum + L2 + dropout: lr 0.01, l2 0.001, dropout 0.1" in out
    assert "Adam" not in out
    assert out.count("  epoch ") == 2
    # 1437 training examples in batches of 128 (remainder dropped): 11 steps per epoch.
    assert "   22  " in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "--epochs: must be a positive integer"),
        (["--learning-rate", "-0.1"], "--learning-rate: must be a positive number"),
        (["--dropout", "1.0"], "--dropout: must be in [0, 1)"),
        (["--l2", "-1"], "--l2: must be >= 0"),
        (["--optimizer", "lbfgs"], "--optimizer: invalid choice"),
        (["--loss", "nope"], "--loss: invalid choice"),
        (["--batch-size", "100000"], "--batch-size: must be at most the 1437 training"),
        (["--epochs", "two"], "--epochs: invalid"),
    ],
)
def test_bad_flags_exit_nonzero_with_clear_error(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", *flags, "--output", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_missing_command_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--loss", "--optimizer", "--learning-rate", "--epochs", "--batch-size", "--l2",
                 "--dropout", "--seed", "--output"):
        assert flag in help_text


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["lr-find", "--help"]])
def test_help_is_plain_text(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "lr-find" in help_text or "--output" in help_text
    for markup in ("``", ":func:", ":class:", ".. "):
        assert markup not in help_text, f"reStructuredText {markup!r} in {argv} help"


def test_adam_defaults_reach_95_percent_validation_accuracy(data):
    history = digits.train(digits.Config(optimizer="adam"), data)
    assert history.val_accuracy[-1] >= 0.95
    assert history.train_loss[-1] < history.train_loss[0] / 10


def test_train_step_compiles_once_per_configuration(data):
    config = digits.Config(optimizer="sgd", l2=1e-3, dropout=0.2)
    optimizer = digits.make_optimizer(config)
    params = digits.init_mlp(jax.random.PRNGKey(0), [64, 16, 10])
    opt_state = optimizer.init(params)
    step = digits.make_train_step(config, optimizer)
    rng = np.random.default_rng(0)
    losses = []
    for i, index in enumerate(digits.batches(rng, len(data.x_train), config.batch_size)):
        params, opt_state, loss = step(params, opt_state, jax.random.PRNGKey(i),
                                       data.x_train[index], data.y_train[index])
        losses.append(float(loss))
    assert step._cache_size() == 1
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_batches_cover_each_example_at_most_once():
    rng = np.random.default_rng(0)
    parts = digits.batches(rng, 10, 3)
    assert [len(p) for p in parts] == [3, 3, 3]
    flat = np.concatenate(parts)
    assert len(set(flat.tolist())) == 9 and flat.max() < 10
    np.testing.assert_array_equal(digits.batches(rng, 5, 8)[0], np.arange(5))


def test_l2_penalty_skips_biases_and_dropout_is_training_only(data):
    params = digits.init_mlp(jax.random.PRNGKey(1), [64, 8, 10])
    x, y = data.x_train[:32], data.y_train[:32]
    plain = digits.objective(params, x, y, None, digits.Config())
    with_l2 = digits.objective(params, x, y, None, digits.Config(l2=0.5))
    weights_sq = sum(float(np.sum(np.square(layer["w"]))) for layer in params)
    np.testing.assert_allclose(float(with_l2 - plain), 0.5 * 0.5 * weights_sq, rtol=1e-5)
    shifted = [{"w": layer["w"], "b": layer["b"] + 3.0} for layer in params]
    shifted_plain = digits.objective(shifted, x, y, None, digits.Config())
    shifted_l2 = digits.objective(shifted, x, y, None, digits.Config(l2=0.5))
    np.testing.assert_allclose(float(shifted_l2 - shifted_plain), float(with_l2 - plain),
                               rtol=1e-5)
    key = jax.random.PRNGKey(2)
    dropped = digits.mlp_logits(params, x, key=key, dropout_rate=0.5)
    assert not np.allclose(dropped, digits.mlp_logits(params, x))
    np.testing.assert_array_equal(digits.mlp_logits(params, x, key=key, dropout_rate=0.0),
                                  digits.mlp_logits(params, x))

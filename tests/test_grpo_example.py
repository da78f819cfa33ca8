"""The GRPO example runs end to end: a few steps of a small configuration, rewards and
metrics finite, and main() prints the line the README promises."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lossjax.examples import grpo_digit_sum as example


def test_targets_and_rewards_are_right():
    a, b = np.array([3, 9, 0]), np.array([4, 6, 0])
    target = np.asarray(example.targets(a, b))
    np.testing.assert_array_equal(target, [[7, 0, 10], [5, 1, 10], [0, 0, 10]])
    np.testing.assert_array_equal(example.rewards(target, a, b), [1, 1, 1])
    wrong = target.copy()
    wrong[0, 1], wrong[1, 2], wrong[2, 0] = 10, 3, 1  # early <eos>, no <eos>, wrong digit
    np.testing.assert_array_equal(example.rewards(wrong, a, b), [0, 0, 0])
    tokens = jnp.array([[3, 10, 4], [10, 1, 10], [1, 2, 3]])
    np.testing.assert_array_equal(example.completion_mask(tokens),
                                  [[1, 1, 0], [1, 0, 0], [1, 1, 1]])


def test_a_few_steps_run_and_main_prints_the_final_accuracy(capsys):
    config = example.Config(steps=3, prompts=4, group_size=4, hidden=16)
    _, history = example.train(config, eval_every=3)
    assert history.reward.shape == (3,) and np.all(np.isfinite(history.kl))
    assert np.all((0 <= history.clip_fraction) & (history.clip_fraction <= 1))
    assert history.eval_steps.tolist() == [3]
    assert example.main(["--steps", "2", "--prompts", "4", "--group-size", "4", "--quiet",
                         "--loss-type", "gspo"]) == 0
    assert "final accuracy: " in capsys.readouterr().out

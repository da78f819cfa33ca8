"""The PPO example learns: a few updates on CartPole raise the episode return."""

from __future__ import annotations

import sys

import jax
import numpy as np

from lossjax.examples import ppo_cartpole as ppo


def test_a_few_ppo_updates_raise_the_return():
    config = ppo.Config(total_steps=8 * 64 * 12, num_envs=8, num_steps=64)
    reported = []
    train = jax.jit(ppo.make_train(config, report=lambda *a: reported.append(a)))
    key = jax.random.key(0)
    # Compiling, not running, is this test's cost: skip XLA's slow CPU optimisations.
    compiled = train.lower(key).compile(compiler_options={"xla_backend_optimization_level": 0})
    _, metrics = compiled(key)
    returns = np.asarray(metrics["episode_return"])
    assert returns.shape == (12,) and len(reported) == 12
    # A random CartPole policy lasts about 20 steps; a few updates at least double that.
    assert np.nanmean(returns[-3:]) > 2 * returns[0] > 0
    for name in ("actor", "critic", "entropy"):
        assert np.all(np.isfinite(metrics[name]))


def test_missing_gymnax_prints_the_install_hint(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gymnax", None)
    assert ppo.main(["--quiet"]) == 1
    assert 'pip install "lossjax[rl]"' in capsys.readouterr().err

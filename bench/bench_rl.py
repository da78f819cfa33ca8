"""RL returns against rlax, and the PPO example's environment throughput.

    python -m bench.bench_rl            # [T = 1024, B = 1024], PPO on 131,072 env steps
    python -m bench.bench_rl --quick    # small shapes, few repeats, a short PPO run

GAE and λ-returns: lossjax's batched functions (time on axis 0, the batch carried inside one
reverse scan) against ``jax.vmap`` of rlax's single-trajectory functions over the batch
axis, both jitted, on the same float32 arrays, values checked equal first, timed in
alternation (medians) so background load hits both alike; the forward pass and the
gradient of the sum with respect to the values. Ratio = lossjax / rlax.

PPO: ``lossjax.examples.ppo_cartpole``'s whole jitted training run (rollouts and learning),
compiled first, then timed once: environment steps per second of wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import rlax

import lossjax
from bench._timing import interleaved_medians, print_table

SHAPE = (1024, 1024)
QUICK_SHAPE = (128, 64)
LAMBDA = 0.95


def make_inputs(time_steps: int, batch: int, seed: int = 0):
    """float32 rewards, discounts (episode ends about every 50 steps) and values [T + 1, B]."""
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(time_steps, batch)).astype(np.float32)
    discounts = np.where(rng.uniform(size=(time_steps, batch)) < 0.02, 0.0, 0.99)
    values = rng.normal(size=(time_steps + 1, batch)).astype(np.float32)
    return jnp.asarray(rewards), jnp.asarray(discounts, jnp.float32), jnp.asarray(values)


def gae_lossjax(rewards, discounts, values):
    return lossjax.generalized_advantage_estimation(rewards, discounts, values, lambda_=LAMBDA)


def gae_rlax(rewards, discounts, values):
    one = lambda r, g, v: rlax.truncated_generalized_advantage_estimation(r, g, LAMBDA, v)  # noqa: E731
    return jax.vmap(one, in_axes=1, out_axes=1)(rewards, discounts, values)


def lambda_lossjax(rewards, discounts, values):
    return lossjax.lambda_returns(rewards, discounts, values[1:], lambda_=LAMBDA)


def lambda_rlax(rewards, discounts, values):
    one = lambda r, g, v: rlax.lambda_returns(r, g, v, LAMBDA)  # noqa: E731
    return jax.vmap(one, in_axes=1, out_axes=1)(rewards, discounts, values[1:])


def _grad_of_sum(fn):
    return jax.grad(lambda r, g, v: jnp.sum(fn(r, g, v)), argnums=2)


def returns_rows(shape: tuple[int, int], repeats: int) -> list[dict[str, Any]]:
    args = make_inputs(*shape)
    rows = []
    for name, ours, theirs in (("GAE", gae_lossjax, gae_rlax),
                               ("lambda_returns", lambda_lossjax, lambda_rlax)):
        for kind, wrap in (("forward", lambda f: f), ("grad wrt values", _grad_of_sum)):
            ours_jit, theirs_jit = jax.jit(wrap(ours)), jax.jit(wrap(theirs))
            np.testing.assert_allclose(ours_jit(*args), theirs_jit(*args), rtol=1e-4, atol=1e-4)
            ms_ours, ms_theirs = (1e3 * t for t in interleaved_medians(
                [(ours_jit, args), (theirs_jit, args)], repeats=repeats))
            rows.append({"name": f"{name} {kind} [T={shape[0]}, B={shape[1]}]",
                         "lossjax_ms": ms_ours, "rlax_ms": ms_theirs,
                         "ratio": ms_ours / ms_theirs})
    return rows


def ppo_row(total_steps: int) -> dict[str, Any]:
    from lossjax.examples import ppo_cartpole as ppo

    config = dataclasses.replace(ppo.Config(), total_steps=total_steps)
    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = jax.jit(ppo.make_train(config)).lower(key).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = jax.block_until_ready(compiled(key))
    seconds = time.perf_counter() - start
    steps = config.num_updates * config.num_envs * config.num_steps
    return {"name": f"PPO CartPole, {config.num_envs} envs, {steps} env steps",
            "env_steps_per_s": steps / seconds, "train_s": seconds, "compile_s": compile_s,
            "last_episode_return": float(np.nanmean(np.asarray(metrics["episode_return"])[-4:]))}


def main(quick: bool = False) -> list[dict[str, Any]]:
    rows = returns_rows(QUICK_SHAPE if quick else SHAPE, repeats=3 if quick else 15)
    print_table("RL returns: lossjax vs jax.vmap(rlax)", ["case", "lossjax ms", "rlax ms", "ratio"],
                [[r["name"], r["lossjax_ms"], r["rlax_ms"], r["ratio"]] for r in rows])
    ppo = ppo_row(16 * 128 * (8 if quick else 64))
    print_table("PPO example throughput", ["case", "env steps/s", "train s", "compile s"],
                [[ppo["name"], ppo["env_steps_per_s"], ppo["train_s"], ppo["compile_s"]]])
    return [*rows, ppo]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)

"""GRPO from rewards alone: a tiny policy learns to write the sum of two digits.

    python -m lossjax.examples.grpo_digit_sum                       # dapo, 400 steps
    python -m lossjax.examples.grpo_digit_sum --loss-type grpo --steps 300
    python -m lossjax.examples.grpo_digit_sum --compare --seeds 3   # every loss_type, same budget
    python -m lossjax.examples.grpo_digit_sum --plot grpo.png       # reward and KL over training

The prompt is two digits ``a`` and ``b``; the policy writes ``a + b`` as its units digit,
its tens digit and an end-of-sequence token (``7 0 <eos>`` for 7, ``5 1 <eos>`` for 15),
one token at a time from the vocabulary ``0``–``9`` and ``<eos>``. A sampled completion
ends at its first ``<eos>``, so completions of one group differ in length (one to three
tokens), which is where the ``loss_type``s differ. The reward is 1 for a correct
completion and 0 otherwise: nothing tells the policy which token was wrong. A random
policy is right once in 1331 tries.

The policy is an MLP over the prompt, the position and the previous token; its last layer
is an unembedding matrix, and the log-probabilities of the sampled tokens come from
:func:`lossjax.per_token_logprobs` (hidden states and that matrix, never the logits). Each
step samples ``--group-size`` completions for each of ``--prompts`` random prompts, turns
their rewards into :func:`lossjax.group_relative_advantages`, and takes two Adam steps on
:func:`lossjax.grpo_loss` (the second one off-policy, so the clipping acts), with a k3 KL
penalty towards the initial policy. Accuracy is greedy decoding's over all 100 prompts.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax

EOS, VOCAB, LENGTH = 10, 11, 3
FEATURES = 10 + 10 + LENGTH + VOCAB + 1  # a, b, position, previous token (or BOS)
Params = dict[str, jax.Array]


class Config(NamedTuple):
    """Training settings (the defaults reach 90% accuracy in a few hundred steps)."""

    loss_type: str = "dapo"
    steps: int = 400
    prompts: int = 32
    group_size: int = 16
    hidden: int = 128
    learning_rate: float = 3e-3
    beta: float = 0.1
    epsilon: float = 0.2
    epsilon_high: float = 0.28
    updates_per_batch: int = 2
    seed: int = 0


class History(NamedTuple):
    reward: np.ndarray
    kl: np.ndarray
    clip_fraction: np.ndarray
    accuracy: np.ndarray  # evaluated every `eval_every` steps
    eval_steps: np.ndarray


def init_params(key: jax.Array, hidden: int) -> Params:
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (FEATURES, hidden)) / np.sqrt(FEATURES),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, hidden)) / np.sqrt(hidden),
        "b2": jnp.zeros(hidden),
        "unembed": jax.random.normal(k3, (hidden, VOCAB)) * 0.01,
    }


def _hidden(params: Params, a: jax.Array, b: jax.Array, position: int | jax.Array,
            previous: jax.Array) -> jax.Array:
    """The last hidden state at one position; ``previous`` is ``VOCAB`` for BOS."""
    x = jnp.concatenate([jax.nn.one_hot(a, 10), jax.nn.one_hot(b, 10),
                         jax.nn.one_hot(jnp.broadcast_to(position, a.shape), LENGTH),
                         jax.nn.one_hot(previous, VOCAB + 1)], axis=-1)
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    return jax.nn.relu(h @ params["w2"] + params["b2"])


def generate(params: Params, a: jax.Array, b: jax.Array, key: jax.Array | None
             ) -> tuple[jax.Array, jax.Array]:
    """``[n, LENGTH]`` tokens (sampled, or greedy without a key) and the completion mask:
    a token counts up to and including the first ``<eos>``."""
    previous = jnp.full(a.shape, VOCAB)
    tokens = []
    for t in range(LENGTH):
        logits = _hidden(params, a, b, t, previous) @ params["unembed"]
        if key is None:
            token = jnp.argmax(logits, -1)
        else:
            key, sub = jax.random.split(key)
            token = jax.random.categorical(sub, logits)
        tokens.append(token)
        previous = token
    tokens = jnp.stack(tokens, 1)
    return tokens, completion_mask(tokens)


def completion_mask(tokens: jax.Array) -> jax.Array:
    """True up to and including the first ``<eos>``; after it, padding."""
    ended_before = jnp.cumsum(tokens == EOS, axis=1) - (tokens == EOS)
    return ended_before == 0


def targets(a: jax.Array, b: jax.Array) -> jax.Array:
    """The correct completion: the units digit, the tens digit (0 or 1), ``<eos>``."""
    s = a + b
    return jnp.stack([s % 10, s // 10, jnp.full_like(s, EOS)], 1)


def rewards(tokens: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """1 where the completion is exactly the sum's two digits followed by ``<eos>``, else 0."""
    return jnp.all(tokens == targets(a, b), axis=1).astype(jnp.float32)


def token_logprobs(params: Params, a: jax.Array, b: jax.Array, tokens: jax.Array) -> jax.Array:
    """``[n, LENGTH]`` log-probabilities of ``tokens`` (teacher-forced)."""
    previous = jnp.concatenate([jnp.full(a.shape + (1,), VOCAB), tokens[:, :-1]], 1)
    hidden = jax.vmap(lambda t, p: _hidden(params, a, b, t, p), in_axes=(0, 1), out_axes=1)(
        jnp.arange(LENGTH), previous)
    return lossjax.per_token_logprobs(hidden, params["unembed"], tokens)


def make_step(config: Config, optimizer: optax.GradientTransformation, reference: Params):
    def loss_fn(params, batch, old_logprobs, advantages):
        a, b, tokens, mask, ref_logprobs = batch
        logprobs = token_logprobs(params, a, b, tokens)
        return lossjax.grpo_loss(
            logprobs, old_logprobs, advantages, ref_logprobs=ref_logprobs, where=mask,
            loss_type=config.loss_type, beta=config.beta, epsilon=config.epsilon,
            epsilon_high=5.0 if config.loss_type == "cispo" else config.epsilon_high,
            max_length=LENGTH, return_metrics=True)

    @jax.jit
    def step(params, opt_state, key):
        k_prompt, k_sample = jax.random.split(key)
        digits = jax.random.randint(k_prompt, (2, config.prompts), 0, 10)
        a, b = (jnp.repeat(d, config.group_size) for d in digits)  # groups are adjacent
        tokens, mask = generate(params, a, b, k_sample)
        reward = rewards(tokens, a, b)
        advantages = lossjax.group_relative_advantages(reward, config.group_size)
        old_logprobs = token_logprobs(params, a, b, tokens)
        batch = (a, b, tokens, mask, token_logprobs(reference, a, b, tokens))
        metrics = None
        for _ in range(config.updates_per_batch):
            (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, batch, old_logprobs, advantages)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return params, opt_state, jnp.mean(reward), metrics

    return step


@jax.jit
def accuracy(params: Params) -> jax.Array:
    a, b = (x.reshape(-1) for x in jnp.meshgrid(jnp.arange(10), jnp.arange(10)))
    tokens, _ = generate(params, a, b, None)
    return jnp.mean(rewards(tokens, a, b))


def train(config: Config, eval_every: int = 10, verbose: bool = False
          ) -> tuple[Params, History]:
    key = jax.random.key(config.seed)
    key, init_key = jax.random.split(key)
    params = init_params(init_key, config.hidden)
    reference = params
    optimizer = lossjax.adam(config.learning_rate)
    opt_state = optimizer.init(params)
    step = make_step(config, optimizer, reference)
    reward, kl, clip, acc, at = [], [], [], [], []
    for i in range(config.steps):
        key, sub = jax.random.split(key)
        params, opt_state, r, metrics = step(params, opt_state, sub)
        reward.append(float(r))
        kl.append(float(metrics.kl))
        clip.append(float(metrics.clip_fraction))
        if (i + 1) % eval_every == 0 or i + 1 == config.steps:
            acc.append(float(accuracy(params)))
            at.append(i + 1)
            if verbose:
                print(f"step {i + 1:4d}  reward {np.mean(reward[-eval_every:]):.3f}  "
                      f"kl {kl[-1]:.4f}  clip {clip[-1]:.3f}  accuracy {acc[-1]:.2f}",
                      flush=True)
    return params, History(np.array(reward), np.array(kl), np.array(clip), np.array(acc),
                           np.array(at))


def steps_to(history: History, threshold: float) -> int | None:
    """The first evaluated step whose greedy accuracy reaches ``threshold``."""
    reached = np.nonzero(history.accuracy >= threshold)[0]
    return int(history.eval_steps[reached[0]]) if reached.size else None


def compare(config: Config, seeds: Sequence[int]) -> None:
    """Train every ``loss_type`` with the same budget and seeds; print the steps each needs
    to reach 50% and 90% greedy accuracy (mean over the seeds that reach it)."""
    print(f"{len(seeds)} seed(s), {config.steps} steps each")
    print("loss_type  steps to 50%        steps to 90%        final accuracy  seconds")
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "gspo"):
        start = time.perf_counter()
        runs = [train(config._replace(loss_type=loss_type, seed=s))[1] for s in seeds]

        def summary(threshold: float, runs: list[History] = runs) -> str:
            steps = [steps_to(h, threshold) for h in runs]
            reached = [s for s in steps if s is not None]
            mean = f"{np.mean(reached):.0f}" if reached else "-"
            return f"{mean} ({len(reached)}/{len(runs)} runs)"

        final = np.mean([h.accuracy[-1] for h in runs])
        print(f"{loss_type:9s}  {summary(0.5):18s}  {summary(0.9):18s}  {final:14.2f}  "
              f"{time.perf_counter() - start:7.1f}", flush=True)


def plot(history: History, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    steps = np.arange(1, len(history.reward) + 1)
    left.plot(steps, history.reward, lw=0.6, alpha=0.5, label="mean reward (sampled)")
    left.plot(history.eval_steps, history.accuracy, lw=1.6, label="greedy accuracy")
    left.set_xlabel("step")
    left.set_ylim(0, 1.02)
    left.legend(loc="lower right")
    right.plot(steps, history.kl, lw=0.8, color="C2")
    right.set_xlabel("step")
    right.set_ylabel("KL(π ‖ π_ref), k3 estimate")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Config()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loss-type", default=defaults.loss_type,
                        choices=["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "gspo"])
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--prompts", type=int, default=defaults.prompts)
    parser.add_argument("--group-size", type=int, default=defaults.group_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--beta", type=float, default=defaults.beta)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--compare", action="store_true",
                        help="train every loss_type with the same budget and compare")
    parser.add_argument("--seeds", type=int, default=1,
                        help="with --compare: how many seeds (from --seed) per loss_type")
    parser.add_argument("--plot", metavar="PATH", help="save reward and KL curves to PATH")
    parser.add_argument("--quiet", action="store_true", help="no per-evaluation lines")
    args = parser.parse_args(argv)
    config = Config(loss_type=args.loss_type, steps=args.steps, prompts=args.prompts,
                    group_size=args.group_size, learning_rate=args.learning_rate,
                    beta=args.beta, seed=args.seed)
    if args.compare:
        compare(config, range(args.seed, args.seed + args.seeds))
        return 0
    start = time.perf_counter()
    _, history = train(config, verbose=not args.quiet)
    print(f"trained {config.steps} steps ({config.loss_type}) in "
          f"{time.perf_counter() - start:.1f} s")
    if args.plot:
        plot(history, args.plot, f"GRPO ({config.loss_type}) on digit sums")
        print(f"plot saved to {args.plot}")
    print(f"final accuracy: {history.accuracy[-1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

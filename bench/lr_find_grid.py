"""``lossjax.lr_find``'s suggestions against a grid search of the peak learning rate.

``python -m bench.lr_find_grid [--quick] [--models digits char] [--output-dir DIR]``

Two models, each trained with AdamW (weight decay 0.01) under a warmup-cosine schedule
(5% warmup) whose peak rate is the one tuned:

- ``digits``: the demo's MLP (64 -> 128 -> 10, ReLU) on scikit-learn's digits, batch 64,
  600 steps (about 27 epochs), validation cross-entropy on the held-out 20%.
- ``char``: a character-level Transformer (2 pre-norm blocks, width 64, 4 heads, context
  64, learned positions, 110k parameters) on the English text of Python's own ``pydoc``
  topics (``pydoc_data.topics``, about 0.6 MB, in every Python install: nothing is
  downloaded), batch 32, 800 steps, validation cross-entropy (nats per character) on the
  last 10% of the text.

For each model: the grid trains one run per peak rate (log-spaced) with the same data
order and initialisation; ``lr_find`` sweeps ``1e-6 .. 10`` in 100 steps from the same
initialisation with ``lambda lr: lossjax.adamw(lr, weight_decay=0.01)``; then a full run
at each rule's suggestion is trained and scored. Two more rows for comparison: "old", the
rule lossjax used before (the steepest slope of a one-way 0.98 moving average), and the
middle of the longest falling subsequence of the curve (fast.ai's "valley"). Everything
is jitted once per model (the peak rate is an argument), so the grid costs compile + runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from lossjax.optimizers._lr_find import _exponential_average, _steepest


@dataclasses.dataclass
class Task:
    name: str
    params: Any
    loss_fn: Callable[[Any, Any], jax.Array]  # (params, batch) -> scalar
    train_batches: Callable[[int], Any]  # steps -> stacked batches for lax.scan
    sweep_batches: list[Any]
    val_loss: Callable[[Any], jax.Array]
    steps: int


def _adamw(rate: Any, steps: int) -> optax.GradientTransformation:
    schedule = lossjax.schedules.warmup_cosine_decay(0.0, 1.0, max(steps // 20, 1), steps)
    return lossjax.adamw(lambda t: rate * schedule(t), weight_decay=0.01)


def make_trainer(task: Task) -> Callable[[float], float]:
    batches = task.train_batches(task.steps)

    @jax.jit
    def run(rate):
        optimizer = _adamw(rate, task.steps)

        def step(carry, batch):
            params, state = carry
            grads = jax.grad(task.loss_fn)(params, batch)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (task.params, optimizer.init(task.params)),
                                      batches)
        return task.val_loss(params)

    def score(rate: float) -> float:
        value = float(run(jnp.float32(rate)))
        return value if np.isfinite(value) else float("inf")

    return score


# --------------------------------------------------------------------------- digits MLP


def digits_task(steps: int) -> Task:
    from lossjax.examples.digits import init_mlp, load_data, mlp_logits

    data = load_data(seed=0)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    xv, yv = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
    params = init_mlp(jax.random.PRNGKey(0), [64, 128, 10])

    def loss_fn(p, batch):
        return lossjax.softmax_cross_entropy_with_integer_labels(mlp_logits(p, batch[0]),
                                                                 batch[1])

    def indices(steps, seed):
        rng = np.random.default_rng(seed)
        per_epoch = len(x) // 64
        order = np.concatenate([rng.permutation(len(x))[: per_epoch * 64]
                                for _ in range(steps // per_epoch + 1)])
        return order[: steps * 64].reshape(steps, 64)

    def train_batches(steps):
        index = indices(steps, 1)
        return x[index], y[index]

    sweep = [(x[i], y[i]) for i in indices(100, 2)]
    return Task("digits MLP", params, loss_fn, train_batches, sweep,
                lambda p: loss_fn(p, (xv, yv)), steps)


# --------------------------------------------------------------------- char Transformer

WIDTH, HEADS, LAYERS, CONTEXT = 64, 4, 2, 64


def _text() -> tuple[np.ndarray, int]:
    from pydoc_data.topics import topics

    text = "\n".join(topics[key] for key in sorted(topics))
    text = "".join(ch if ch.isascii() else "?" for ch in text)
    vocab = sorted(set(text))
    lookup = {ch: i for i, ch in enumerate(vocab)}
    return np.array([lookup[ch] for ch in text], np.int32), len(vocab)


def init_transformer(key: jax.Array, vocab: int) -> dict:
    keys = iter(jax.random.split(key, 4 + 4 * LAYERS))

    def dense(fan_in, fan_out, scale=1.0):
        return jax.random.normal(next(keys), (fan_in, fan_out)) * scale / np.sqrt(fan_in)

    blocks = [{"ln1": jnp.ones(WIDTH), "qkv": dense(WIDTH, 3 * WIDTH),
               "proj": dense(WIDTH, WIDTH, 1 / np.sqrt(2 * LAYERS)), "ln2": jnp.ones(WIDTH),
               "up": dense(WIDTH, 4 * WIDTH),
               "down": dense(4 * WIDTH, WIDTH, 1 / np.sqrt(2 * LAYERS))}
              for _ in range(LAYERS)]
    return {"embed": jax.random.normal(next(keys), (vocab, WIDTH)) * 0.02,
            "pos": jax.random.normal(next(keys), (CONTEXT, WIDTH)) * 0.02,
            "blocks": blocks, "ln_f": jnp.ones(WIDTH), "head": dense(WIDTH, vocab)}


def _norm(x, scale):
    x = x - x.mean(-1, keepdims=True)
    return scale * x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True) + 1e-5)


def transformer_logits(params: dict, tokens: jax.Array) -> jax.Array:
    """``tokens [B, T] -> logits [B, T, V]``, causal."""
    t = tokens.shape[-1]
    x = params["embed"][tokens] + params["pos"][:t]
    mask = jnp.tril(jnp.ones((t, t), bool))
    for block in params["blocks"]:
        h = _norm(x, block["ln1"]) @ block["qkv"]
        q, k, v = (a.reshape(*a.shape[:-1], HEADS, WIDTH // HEADS)
                   for a in jnp.split(h, 3, axis=-1))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(WIDTH // HEADS)
        attention = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", attention, v).reshape(x.shape)
        x = x + out @ block["proj"]
        x = x + jax.nn.gelu(_norm(x, block["ln2"]) @ block["up"]) @ block["down"]
    return _norm(x, params["ln_f"]) @ params["head"]


def char_task(steps: int) -> Task:
    ids, vocab = _text()
    split = int(0.9 * len(ids))
    train, val = ids[:split], ids[split:]
    params = init_transformer(jax.random.PRNGKey(0), vocab)

    def loss_fn(p, batch):
        logits = transformer_logits(p, batch[:, :-1])
        return lossjax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:])

    def windows(source, count, seed):
        starts = np.random.default_rng(seed).integers(0, len(source) - CONTEXT - 1, count)
        return jnp.asarray(np.stack([source[s : s + CONTEXT + 1] for s in starts]))

    val_batch = windows(val, 256, 3)
    return Task("char Transformer", params, loss_fn,
                lambda n: windows(train, n * 32, 1).reshape(n, 32, CONTEXT + 1),
                list(windows(train, 100 * 32, 2).reshape(100, 32, CONTEXT + 1)),
                lambda p: loss_fn(p, val_batch), steps)


# ----------------------------------------------------------------------------- compare


def _longest_falling_run(values: np.ndarray) -> tuple[int, int]:
    """(first, last) of a longest strictly falling subsequence (O(n²) recursion): the
    "valley" of fast.ai, kept here to show why lossjax measures the fall instead."""
    length, previous = np.ones(len(values), int), np.full(len(values), -1)
    for i in range(len(values)):
        for j in range(i):
            if values[j] > values[i] and length[j] + 1 > length[i]:
                length[i], previous[i] = length[j] + 1, j
    last = first = int(np.argmax(length))
    while previous[first] >= 0:
        first = int(previous[first])
    return first, last


def compare(task: Task, grid: np.ndarray) -> dict:
    start = time.perf_counter()
    score = make_trainer(task)
    grid_losses = [score(rate) for rate in grid]
    sweep = lossjax.lr_find(task.loss_fn, task.params, task.sweep_batches,
                            lambda lr: lossjax.adamw(lr, weight_decay=0.01),
                            min_lr=1e-6, max_lr=10.0, num_steps=100)
    old_curve = _exponential_average(sweep.raw_losses, 0.98)
    old = float(sweep.learning_rates[_steepest(np.log(sweep.learning_rates), old_curve,
                                               10, 5)])
    first, last = _longest_falling_run(sweep.losses[: int(np.argmin(sweep.losses)) + 1])
    longest = float(np.sqrt(sweep.learning_rates[first] * sweep.learning_rates[last]))
    picks = {**sweep.suggestions, "old (steepest, one-way 0.98)": old,
             "longest falling run (fast.ai-style valley)": longest}
    best = int(np.argmin(grid_losses))
    return {
        "model": task.name, "steps": task.steps,
        "grid": [[float(r), float(v)] for r, v in zip(grid, grid_losses, strict=True)],
        "best_rate": float(grid[best]), "best_val": float(grid_losses[best]),
        "rules": {name: {"rate": rate, "val": score(rate)} for name, rate in picks.items()},
        "sweep": {"learning_rates": sweep.learning_rates.tolist(),
                  "raw_losses": sweep.raw_losses.tolist(), "losses": sweep.losses.tolist(),
                  "diverged": sweep.diverged},
        "seconds": time.perf_counter() - start,
    }


def plot(results: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 7), squeeze=False)
    for column, result in enumerate(results):
        sweep = result["sweep"]
        top, bottom = axes[0, column], axes[1, column]
        rates = np.asarray(sweep["learning_rates"])
        top.plot(rates, sweep["raw_losses"], color="C0", alpha=0.3, linewidth=0.8,
                 label="batch loss")
        top.plot(rates, sweep["losses"], color="C0", label="smoothed (zero-lag)")
        top.plot(rates, _exponential_average(np.asarray(sweep["raw_losses"]), 0.98),
                 color="C7", linestyle="--", label="one-way 0.98 (before)")
        grid = np.asarray(result["grid"])
        bottom.plot(grid[:, 0], grid[:, 1], "o-", color="k", label="grid (peak rate)")
        for index, (name, rule) in enumerate(result["rules"].items()):
            for ax in (top, bottom):
                ax.axvline(rule["rate"], color=f"C{index + 1}", linewidth=1,
                           label=f"{name}: {rule['rate']:.2g}" if ax is bottom else None)
        first = sweep["raw_losses"][0]
        top.set(xscale="log", title=f"{result['model']}: lr_find sweep",
                ylabel="training loss", ylim=(0, 1.6 * first))
        bottom.set(xscale="log", xlabel="learning rate",
                   ylabel=f"validation loss after {result['steps']} steps",
                   ylim=(0.9 * grid[:, 1].min(), min(grid[:, 1].max(), 3 * grid[:, 1].min())))
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(results: list[dict]) -> str:
    lines = ["| model | rule | suggested rate | val loss at it | best grid rate | "
             "best grid val loss |", "|---|---|---|---|---|---|"]
    for result in results:
        for name, rule in result["rules"].items():
            lines.append(f"| {result['model']} | {name} | {rule['rate']:.2g} | "
                         f"{rule['val']:.3f} | {result['best_rate']:.2g} | "
                         f"{result['best_val']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, coarse grid")
    parser.add_argument("--models", nargs="+", choices=["digits", "char"],
                        default=["digits", "char"])
    parser.add_argument("--output-dir", default="bench/results", type=pathlib.Path)
    args = parser.parse_args(argv)
    grid = np.logspace(-4, 0, 5 if args.quick else 9)
    makers = {"digits": lambda: digits_task(60 if args.quick else 600),
              "char": lambda: char_task(40 if args.quick else 800)}
    results = [compare(makers[name](), grid) for name in args.models]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "lr_find_grid.json").write_text(json.dumps(results, indent=1))
    plot(results, args.output_dir / "lr_find_grid.png")
    for result in results:
        grid_text = ", ".join(f"{r:.2g}: {v:.3f}" for r, v in result["grid"])
        print(f"{result['model']} ({result['seconds']:.0f} s) grid: {grid_text}")
    print(table(results))
    return results


if __name__ == "__main__":
    main()

"""Adaptive-learning-rate optimizers: step time vs optax.contrib, and steps to 97% on digits.

    python -m bench.bench_adaptive [--quick]

1. Step time: one donated jitted ``params, state <- step(params, state, grads)`` on 100
   leaves (99 matrices [256, 384] + a bias [384], float32), lossjax and optax.contrib timed
   in alternation in one process (``interleaved_medians``); ratio = lossjax / optax. Muon
   twice: Newton–Schulz batched over the 99 same-shaped matrices (one [99, 256, 384]
   iteration, the default on one device) and one matrix at a time.
2. Steps to 97% validation accuracy on the digits MLP (64 -> 128 -> 10, batches of 64,
   22 steps per epoch, accuracy checked after each epoch, at most 40 epochs), next to Adam
   at its best rate of {1e-3, 3e-3, 1e-2} (tuned) and SGD + momentum at ``lr_find``'s
   suggestion.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from bench._timing import interleaved_medians, print_table
from lossjax.examples import digits

STEP_CASES = {  # name: (lossjax's, optax's)
    "schedule_free_adamw": (lambda: lossjax.schedule_free_adamw(1e-3),
                            lambda: optax.contrib.schedule_free_adamw(1e-3)),
    "prodigy": (lambda: lossjax.prodigy(), lambda: optax.contrib.prodigy()),
    "muon (batched NS)": (lambda: lossjax.muon(0.02, batch_newton_schulz=True),
                          lambda: optax.contrib.muon(0.02)),
    "muon (NS per leaf)": (lambda: lossjax.muon(0.02, batch_newton_schulz=False),
                           lambda: optax.contrib.muon(0.02)),
}


def make_params(matrices: int, shape: tuple[int, int]) -> dict[str, jax.Array]:
    keys = jax.random.split(jax.random.key(0), matrices + 1)
    params = {f"w{i:03d}": jax.random.normal(k, shape, jnp.float32) * 0.05
              for i, k in enumerate(keys[:-1])}
    params["bias"] = jnp.zeros((shape[1],), jnp.float32)
    return params


def make_step(opt: optax.GradientTransformation):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def step_times(quick: bool) -> list[dict[str, Any]]:
    matrices, shape = (9, (64, 96)) if quick else (99, (256, 384))
    rows = []
    for name, (ours, theirs) in STEP_CASES.items():
        repeats = 3 if quick else (7 if "muon" in name else 20)
        params = make_params(matrices, shape)
        grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), params)
        contenders = []
        for build in (ours, theirs):
            opt = build()
            step = make_step(opt)
            holder = {"p": jax.tree.map(jnp.copy, params), "s": opt.init(params)}

            def call(step=step, holder=holder, grads=grads):
                holder["p"], holder["s"] = step(holder["p"], holder["s"], grads)
                return holder["p"]

            contenders.append((call, ()))
        mine, ref = interleaved_medians(contenders, repeats=repeats, warmup=2)
        rows.append({"name": name, "lossjax_ms": mine * 1e3, "optax_ms": ref * 1e3,
                     "ratio": mine / ref})
    print_table(f"Step time, {matrices} x {list(shape)} + bias, float32 (lossjax / optax)",
                ["optimizer", "lossjax ms", "optax.contrib ms", "ratio"],
                [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"]] for r in rows])
    return rows


def steps_to_accuracy(optimizer, data, *, target=0.97, max_epochs=40, evaluate_at=None):
    """Training steps until validation accuracy >= ``target`` (checked every epoch)."""
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_val, y_val = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
    batch, n_batches = 64, len(data.x_train) // 64
    params = digits.init_mlp(jax.random.PRNGKey(0), [64, 128, 10])
    state = optimizer.init(params)

    def loss_fn(p, xb, yb):
        return lossjax.softmax_cross_entropy_with_integer_labels(digits.mlp_logits(p, xb), yb)

    @jax.jit
    def epoch(params, state, order):
        def step(carry, index):
            p, s = carry
            loss, g = jax.value_and_grad(loss_fn)(p, x[index], y[index])
            u, s = optimizer.update(g, s, p, value=loss)
            return (optax.apply_updates(p, u), s), loss

        (params, state), _ = jax.lax.scan(step, (params, state), order)
        point = params if evaluate_at is None else evaluate_at(state, params)
        return params, state, jnp.mean(jnp.argmax(digits.mlp_logits(point, x_val), -1) == y_val)

    rng = np.random.default_rng(0)
    for e in range(1, max_epochs + 1):
        order = rng.permutation(len(data.x_train))[: n_batches * batch].reshape(n_batches, batch)
        params, state, accuracy = epoch(params, state, order)
        if float(accuracy) >= target:
            return e * n_batches
    return None


def accuracy_race(quick: bool) -> list[dict[str, Any]]:
    data = digits.load_data(seed=0)
    max_epochs = 10 if quick else 40
    adam = {lr: steps_to_accuracy(lossjax.adam(lr), data, max_epochs=max_epochs)
            for lr in (1e-3, 3e-3, 1e-2)}
    best_lr = min(adam, key=lambda lr: adam[lr] or 10**9)
    suggestion = digits.lr_range_test(data, optimizer="sgd", num_steps=100).suggestion
    n_batches = len(data.x_train) // 64
    methods = {
        f"Adam, tuned lr {best_lr:g}": (lossjax.adam(best_lr), None),
        f"SGD + momentum at lr_find's {suggestion:.2g}": (
            lossjax.sgd(suggestion, momentum=0.9), None),
        "schedule_free_adamw (default 0.0025)": (lossjax.schedule_free_adamw(),
                                                 lossjax.schedule_free_eval_params),
        "prodigy (no lr)": (lossjax.prodigy(), None),
        "dadapt_adamw (no lr)": (lossjax.dadapt_adamw(), None),
        "dog (no lr)": (lossjax.dog(), None),
        "muon 0.02": (lossjax.muon(0.02), None),
        "SGD at suggestion + reduce_on_plateau": (optax.chain(
            lossjax.sgd(suggestion, momentum=0.9),
            lossjax.reduce_on_plateau(factor=0.3, patience=1, rtol=0.1,
                                      accumulation_size=n_batches)),
            None),
    }
    rows = []
    for name, (opt, at) in methods.items():
        steps = steps_to_accuracy(opt, data, max_epochs=max_epochs, evaluate_at=at)
        rows.append({"name": name, "steps_to_97": steps})
    print_table("Steps to 97% validation accuracy on digits (checked each 22-step epoch)",
                ["method", "steps"],
                [[r["name"], r["steps_to_97"] or f"> {max_epochs * n_batches}"]
                 for r in rows])
    print(f"Adam rate sweep (steps): {adam}")
    return rows


def main(quick: bool = False) -> list[dict[str, Any]]:
    return step_times(quick) + accuracy_race(quick)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    main(parser.parse_args().quick)

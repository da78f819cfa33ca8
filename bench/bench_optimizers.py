"""Optimizers: lossjax vs optax, one donated jitted step ``params, state <- step(...)``.

    python -m bench.bench_optimizers [--quick]

Cases: Adam and SGD+momentum on 200 float32 leaves holding ~20M parameters (bandwidth
bound: Adam's floor is 28 bytes/param, reading g, m, v, p and writing m, v, p), and on
200 leaves of 100 parameters (per-leaf overhead bound). Also compile time (trace + lower
+ compile) of the step.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import optax

import lossjax
from bench._timing import compile_seconds, interleaved_medians, print_table


def make_params(leaves: int, per_leaf: int) -> dict[str, jax.Array]:
    keys = jax.random.split(jax.random.key(0), leaves)
    return {f"p{i:03d}": jax.random.normal(k, (per_leaf,), jnp.float32) for i, k in enumerate(keys)}


def make_step(opt):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def _case(name: str, ours, theirs, leaves: int, per_leaf: int, repeats: int) -> dict[str, Any]:
    params = make_params(leaves, per_leaf)
    grads = jax.tree.map(lambda p: 0.01 * p, params)
    runs = []
    for opt in (ours, theirs):
        step = jax.jit(make_step(opt), donate_argnums=(0, 1))
        holder = {"params": jax.tree.map(jnp.copy, params), "state": opt.init(params)}

        def call(step=step, holder=holder):
            holder["params"], holder["state"] = step(holder["params"], holder["state"], grads)
            return holder["params"]

        runs.append((call, ()))
    ms_ours, ms_theirs = (1e3 * s for s in interleaved_medians(runs, repeats=repeats))
    compiles = []
    for opt in (ours, theirs):
        state = opt.init(params)
        compiles.append(min(compile_seconds(make_step(opt), params, state, grads) for _ in range(3)))
    n = leaves * per_leaf
    return {"name": f"{name} step, {leaves} leaves x {per_leaf} f32 ({n / 1e6:g}M)",
            "lossjax_ms": ms_ours, "optax_ms": ms_theirs, "ratio": ms_ours / ms_theirs,
            "lossjax_compile_s": compiles[0], "optax_compile_s": compiles[1],
            "compile_ratio": compiles[0] / compiles[1],
            "lossjax_bytes_per_param_per_ms": None if per_leaf < 10_000 else n / ms_ours}


def main(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 5 if quick else 30
    big = 10_000 if quick else 100_000
    rows = [
        _case("adam", lossjax.adam(1e-3), optax.adam(1e-3), 200, big, repeats),
        _case("sgd momentum", lossjax.sgd(1e-2, 0.9), optax.sgd(1e-2, 0.9), 200, big, repeats),
        _case("adam", lossjax.adam(1e-3), optax.adam(1e-3), 200, 100, repeats),
    ]
    print_table(
        "Optimizer step (donated), float32, CPU (ratio = lossjax / optax)",
        ["case", "lossjax ms", "optax ms", "ratio", "lossjax compile s", "optax compile s",
         "compile ratio"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"], r["lossjax_compile_s"],
          r["optax_compile_s"], r["compile_ratio"]] for r in rows],
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    main(parser.parse_args().quick)

"""Optimizers: lossjax vs optax, one donated jitted step ``params, state <- step(...)``.

    python -m bench.bench_optimizers [--quick]

Cases, float32, the two contenders timed in alternation in one process:

- Adam, SGD with momentum, and clip_by_global_norm + Adam on 200 leaves holding ~20M
  parameters: bandwidth bound. Adam must read g, m, v, p and write m, v, p: 28 bytes per
  parameter at the least. "floor ms" is those 28 bytes at the bandwidth that a one-pass
  ``p + g`` step (12 bytes per parameter) reaches in the same run; "bytes/param" is the
  traffic lossjax's step would move at that bandwidth (what the time is worth in bytes).
- Adam on 200 leaves of 100 parameters: per-leaf overhead bound.

Compile time is trace + lower + compile of the step from cold caches (``jax.clear_caches``
before each measurement, so no trace, lowering or executable is reused), best of a few.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import optax

import lossjax
from bench._timing import compile_seconds, interleaved_medians, print_table

ADAM_BYTES_PER_PARAM = 28  # read g, m, v, p; write m, v, p (float32)


def make_params(leaves: int, per_leaf: int) -> dict[str, jax.Array]:
    keys = jax.random.split(jax.random.key(0), leaves)
    return {f"p{i:03d}": jax.random.normal(k, (per_leaf,), jnp.float32)
            for i, k in enumerate(keys)}


def make_step(opt: optax.GradientTransformation):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def plain_step(params, state, grads):
    """One fused pass ``p + g`` per leaf: 12 bytes per parameter, the bandwidth probe."""
    return jax.tree.map(jnp.add, params, grads), state


def _donated_call(step, params, state, grads):
    """A zero-argument call running the donated step on its own copy of params and state."""
    compiled = jax.jit(step, donate_argnums=(0, 1))
    holder = {"params": jax.tree.map(jnp.copy, params), "state": state}

    def call():
        holder["params"], holder["state"] = compiled(holder["params"], holder["state"], grads)
        return holder["params"]

    return call, ()


def cold_compile_seconds(step, *args: Any, tries: int = 3) -> float:
    """Best of ``tries`` trace + lower + compile times, each from cleared caches."""
    times = []
    for _ in range(tries):
        jax.clear_caches()
        times.append(compile_seconds(step, *args))
    return min(times)


def _case(name: str, ours, theirs, leaves: int, per_leaf: int, repeats: int,
          probe: bool) -> dict[str, Any]:
    params = make_params(leaves, per_leaf)
    grads = jax.tree.map(lambda p: 0.01 * p, params)
    steps = [(make_step(ours), ours.init(params)), (make_step(theirs), theirs.init(params))]
    if probe:
        steps.append((plain_step, ()))
    runs = [_donated_call(step, params, state, grads) for step, state in steps]
    medians = [1e3 * s for s in interleaved_medians(runs, repeats=repeats)]
    compiles = [cold_compile_seconds(step, params, state, grads) for step, state in steps[:2]]
    n = leaves * per_leaf
    row = {"name": f"{name}, {leaves} leaves x {per_leaf} f32 ({n / 1e6:g}M)",
           "lossjax_ms": medians[0], "optax_ms": medians[1], "ratio": medians[0] / medians[1],
           "lossjax_compile_s": compiles[0], "optax_compile_s": compiles[1],
           "compile_ratio": compiles[0] / compiles[1], "floor_ms": None, "bytes_per_param": None}
    if probe:
        bytes_per_ms = 12 * n / medians[2]
        row["floor_ms"] = ADAM_BYTES_PER_PARAM * n / bytes_per_ms
        row["bytes_per_param"] = medians[0] * bytes_per_ms / n
    return row


def main(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 5 if quick else 30
    big = 10_000 if quick else 100_000
    clip_adam = (optax.chain(lossjax.clip_by_global_norm(1.0), lossjax.adam(1e-3)),
                 optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)))
    rows = [
        _case("adam", lossjax.adam(1e-3), optax.adam(1e-3), 200, big, repeats, probe=True),
        _case("sgd momentum", lossjax.sgd(1e-2, 0.9), optax.sgd(1e-2, 0.9), 200, big, repeats,
              probe=False),
        _case("clip + adam", *clip_adam, 200, big, repeats, probe=False),
        _case("adam", lossjax.adam(1e-3), optax.adam(1e-3), 200, 100, repeats, probe=False),
    ]

    def fmt(x):
        return "" if x is None else x

    print_table(
        "Optimizer step (donated), float32, CPU (ratio = lossjax / optax)",
        ["case", "lossjax ms", "optax ms", "ratio", "floor ms (28 B/param)",
         "lossjax bytes/param", "lossjax compile s", "optax compile s", "compile ratio"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"], fmt(r["floor_ms"]),
          fmt(r["bytes_per_param"]), r["lossjax_compile_s"], r["optax_compile_s"],
          r["compile_ratio"]] for r in rows],
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    main(parser.parse_args().quick)

"""Optimizers: lossjax vs optax, one donated jitted step ``params, state <- step(...)``.

    python -m bench.bench_optimizers [--quick]
    python -m bench.bench_optimizers --wave2 [--quick]   # every optimizer, and state memory

Cases, float32, the two contenders timed in alternation in one process:

- Adam, SGD with momentum, and clip_by_global_norm + Adam on 200 leaves holding ~20M
  parameters: bandwidth bound. Adam must read g, m, v, p and write m, v, p: 28 bytes per
  parameter at the least. "floor ms" is those 28 bytes at the bandwidth that a one-pass
  ``p + g`` step (12 bytes per parameter) reaches in the same run; "bytes/param" is the
  traffic lossjax's step would move at that bandwidth (what the time is worth in bytes).
- Adam on 200 leaves of 100 parameters: per-leaf overhead bound.

Compile time is trace + lower + compile of the step, each measured in a fresh Python process
(so no trace, lowering, executable or kernel is reused; ``jax.clear_caches`` in one process
left the ratio swinging between 0.67 and 0.96), best of three, the contenders taking turns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

import lossjax
from bench._timing import compile_seconds, interleaved_medians, print_table

ADAM_BYTES_PER_PARAM = 28  # read g, m, v, p; write m, v, p (float32)
REPO = Path(__file__).resolve().parents[1]
OPTIMIZERS = {  # name: (lossjax's, optax's)
    "adam": (lambda: lossjax.adam(1e-3), lambda: optax.adam(1e-3)),
    "sgd momentum": (lambda: lossjax.sgd(1e-2, 0.9), lambda: optax.sgd(1e-2, 0.9)),
    "clip + adam": (
        lambda: optax.chain(lossjax.clip_by_global_norm(1.0), lossjax.adam(1e-3)),
        lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))),
}


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


def cold_compile_seconds(name: str, contender: str, leaves: int, per_leaf: int) -> float:
    """Trace + lower + compile of the step in a fresh Python process: nothing is warm."""
    command = [sys.executable, "-m", "bench.bench_optimizers", "--cold-compile", name,
               contender, str(leaves), str(per_leaf)]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _child_compile(name: str, contender: str, leaves: int, per_leaf: int) -> None:
    opt = OPTIMIZERS[name][0 if contender == "lossjax" else 1]()
    params = {f"p{i:03d}": jax.ShapeDtypeStruct((per_leaf,), jnp.float32)
              for i in range(leaves)}
    state = jax.eval_shape(opt.init, params)
    print(compile_seconds(make_step(opt), params, state, params))


def _case(name: str, leaves: int, per_leaf: int, repeats: int, tries: int,
          probe: bool) -> dict[str, Any]:
    ours, theirs = (make() for make in OPTIMIZERS[name])
    params = make_params(leaves, per_leaf)
    grads = jax.tree.map(lambda p: 0.01 * p, params)
    steps = [(make_step(ours), ours.init(params)), (make_step(theirs), theirs.init(params))]
    if probe:
        steps.append((plain_step, ()))
    runs = [_donated_call(step, params, state, grads) for step, state in steps]
    medians = [1e3 * s for s in interleaved_medians(runs, repeats=repeats)]
    trials = [[cold_compile_seconds(name, who, leaves, per_leaf) for who in ("lossjax", "optax")]
              for _ in range(tries)]
    compiles = [min(trial[i] for trial in trials) for i in (0, 1)]
    n = leaves * per_leaf
    row = {"name": f"{name}, {leaves} leaves x {per_leaf} f32 ({n / 1e6:g}M)",
           "lossjax_ms": medians[0], "optax_ms": medians[1], "ratio": medians[0] / medians[1],
           "lossjax_compile_s": compiles[0], "optax_compile_s": compiles[1],
           "compile_ratio": compiles[0] / compiles[1]}
    if probe:
        bytes_per_ms = 12 * n / medians[2]
        row["floor_ms"] = ADAM_BYTES_PER_PARAM * n / bytes_per_ms
        row["bytes_per_param"] = medians[0] * bytes_per_ms / n
    return row


def main(quick: bool = False) -> list[dict[str, Any]]:
    repeats, tries = (5, 1) if quick else (30, 3)
    big = 10_000 if quick else 100_000
    rows = [
        _case("adam", 200, big, repeats, tries, probe=True),
        _case("sgd momentum", 200, big, repeats, tries, probe=False),
        _case("clip + adam", 200, big, repeats, tries, probe=False),
        _case("adam", 200, 100, repeats, tries, probe=False),
    ]
    print_table(
        "Optimizer step (donated), float32, CPU (ratio = lossjax / optax)",
        ["case", "lossjax ms", "optax ms", "ratio", "floor ms (28 B/param)",
         "lossjax bytes/param", "lossjax compile s", "optax compile s", "compile ratio"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"], r.get("floor_ms", ""),
          r.get("bytes_per_param", ""), r["lossjax_compile_s"], r["optax_compile_s"],
          r["compile_ratio"]] for r in rows],
    )
    return rows


WAVE2 = ["sgd", "adagrad", "rmsprop", "adadelta", "rprop", "adam", "adamw", "amsgrad",
         "adamax", "adamaxw", "nadam", "nadamw", "radam", "adabelief", "yogi", "adan", "adopt",
         "ademamix", "novograd", "sign_sgd", "signum", "lion", "lamb", "lars", "adafactor"]


def _pair(name: str) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    reference = getattr(optax, name, None) or getattr(optax.contrib, name)
    return getattr(lossjax, name)(1e-3), reference(1e-3)


def state_bytes(opt: optax.GradientTransformation, params: Any) -> int:
    """Bytes of the optimizer state for ``params``, from ``eval_shape`` (nothing allocated)."""
    shapes = jax.eval_shape(opt.init, params)
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def wave2(quick: bool = False) -> list[dict[str, Any]]:
    """Every optimizer's donated step on 99 × [256, 384] + a [384] bias (9.7M float32
    parameters; 9 matrices with ``--quick``), timed in alternation with optax's, and the
    state memory of Adafactor and Lion for a [4096, 4096] matrix against Adam's."""
    repeats, matrices = (5, 9) if quick else (20, 99)
    keys = jax.random.split(jax.random.key(0), matrices + 1)
    params = {f"w{i:02d}": jax.random.normal(k, (256, 384), jnp.float32)
              for i, k in enumerate(keys[:-1])}
    params["bias"] = jax.random.normal(keys[-1], (384,), jnp.float32)
    grads = jax.tree.map(lambda p: 0.01 * p, params)
    rows = []
    for name in WAVE2:
        ours, theirs = _pair(name)
        # copies: an init may hand out one buffer twice (equal constants), not donatable twice
        runs = [_donated_call(make_step(opt), params, jax.tree.map(jnp.copy, opt.init(params)),
                              grads) for opt in (ours, theirs)]
        medians = [1e3 * t for t in interleaved_medians(runs, repeats=repeats)]
        rows.append({"name": name, "lossjax_ms": medians[0], "optax_ms": medians[1],
                     "ratio": medians[0] / medians[1]})
        del runs
    print_table(
        f"Every optimizer: donated step, {matrices} x [256, 384] + bias, float32, CPU "
        "(ratio = lossjax / optax)",
        ["optimizer", "lossjax ms", "optax ms", "ratio"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"]] for r in rows])
    matrix = {"w": jax.ShapeDtypeStruct((4096, 4096), jnp.float32)}
    adam = state_bytes(lossjax.adam(1e-3), matrix)
    memory = [[name, state_bytes(getattr(lossjax, name)(1e-3), matrix),
               state_bytes(getattr(lossjax, name)(1e-3), matrix) / adam]
              for name in ("adam", "lion", "adafactor")]
    print_table("Optimizer state for one [4096, 4096] float32 matrix (eval_shape)",
                ["optimizer", "state bytes", "fraction of Adam's"], memory)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument("--wave2", action="store_true",
                        help="every optimizer against optax, and state memory")
    parser.add_argument("--cold-compile", nargs=4, metavar=("NAME", "WHO", "LEAVES", "SIZE"),
                        help="(internal) print one cold compile time and exit")
    args = parser.parse_args()
    if args.cold_compile:
        name, who, leaves, size = args.cold_compile
        _child_compile(name, who, int(leaves), int(size))
    elif args.wave2:
        wave2(args.quick)
    else:
        main(args.quick)

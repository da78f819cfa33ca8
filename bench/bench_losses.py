"""Losses: lossjax vs optax on the same arrays, plus the read-bandwidth floor.

    python -m bench.bench_losses [--quick]

1. softmax_cross_entropy_with_integer_labels, forward and value_and_grad, logits [N, V].
2. mse (mean) over M float32 values vs optax and vs ``jnp.sum(p) + jnp.sum(t)``, which
   reads the same bytes and does no other work: its time is this machine's read floor.
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


def _cross_entropy_rows(n: int, v: int, repeats: int) -> list[dict[str, Any]]:
    logits = jax.random.normal(jax.random.key(0), (n, v), jnp.float32)
    labels = jax.random.randint(jax.random.key(1), (n,), 0, v)

    def ours(x, y):
        return lossjax.softmax_cross_entropy_with_integer_labels(x, y)

    def theirs(x, y):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(x, y))

    np.testing.assert_allclose(jax.jit(ours)(logits, labels), jax.jit(theirs)(logits, labels),
                               rtol=1e-5)
    rows = []
    for mode, wrap in (("forward", lambda f: f), ("value_and_grad", jax.value_and_grad)):
        a, b = jax.jit(wrap(ours)), jax.jit(wrap(theirs))
        ms_a, ms_b = (1e3 * s for s in interleaved_medians(
            [(a, (logits, labels)), (b, (logits, labels))], repeats=repeats))
        rows.append({"name": f"CE int labels {mode} [{n}, {v}]", "lossjax_ms": ms_a,
                     "optax_ms": ms_b, "ratio": ms_a / ms_b})
    return rows


def _mse_row(m: int, repeats: int) -> dict[str, Any]:
    p = jax.random.normal(jax.random.key(2), (m,), jnp.float32)
    t = jax.random.normal(jax.random.key(3), (m,), jnp.float32)
    ours = jax.jit(lambda p, t: lossjax.mse(p, t))
    theirs = jax.jit(lambda p, t: jnp.mean(optax.squared_error(p, t)))
    floor = jax.jit(lambda p, t: jnp.sum(p) + jnp.sum(t))
    np.testing.assert_allclose(ours(p, t), theirs(p, t), rtol=1e-4)
    ms_ours, ms_theirs, ms_floor = (1e3 * s for s in interleaved_medians(
        [(ours, (p, t)), (theirs, (p, t)), (floor, (p, t))], repeats=repeats))
    gbytes = 2 * m * 4 / 1e9
    return {"name": f"mse mean over {m / 1e6:g}M f32", "lossjax_ms": ms_ours,
            "optax_ms": ms_theirs, "ratio": ms_ours / ms_theirs, "floor_ms": ms_floor,
            "fraction_of_read_bandwidth": ms_floor / ms_ours,
            "read_GBps": gbytes / (ms_floor / 1e3)}


def main(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 5 if quick else 20
    n, v = (512, 4096) if quick else (4096, 32768)
    rows = _cross_entropy_rows(n, v, repeats)
    rows.append(_mse_row(5_000_000 if quick else 50_000_000, repeats))
    print_table(
        "Losses, float32, CPU (ratio = lossjax / optax)",
        ["case", "lossjax ms", "optax ms", "ratio", "share of read bandwidth"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"],
          r.get("fraction_of_read_bandwidth", "")] for r in rows],
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    main(parser.parse_args().quick)

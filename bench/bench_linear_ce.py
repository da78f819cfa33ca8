"""linear_cross_entropy against the materialised logits: time and compiled memory.

Naive version: ``optax.softmax_cross_entropy_with_integer_labels(h @ W, y).mean()``, the
``[N, V]`` logits and their gradient held whole. Both are ``jax.value_and_grad`` w.r.t.
``h`` and ``W`` under ``jit``, on the same float32 arrays in one process.

Run from the repository root::

    python -m bench.bench_linear_ce             # N=4096, D=512, V=32768 side by side
    python -m bench.bench_linear_ce --quick     # a small shape, a few repeats
    python -m bench.bench_linear_ce --headline  # N=16384, D=1024, V=131072, ours only

``--headline`` runs in its own process so that its peak RSS is its own: it prints the
naive version's compiled memory requirement (compiled, never run) and then one timed
step of ours.
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import optax

import lossjax
from bench._timing import median_seconds, print_table, temp_bytes

MIB = 2**20


def _inputs(n: int, d: int, v: int):
    kh, kw, ky = jax.random.split(jax.random.PRNGKey(0), 3)
    h = jax.random.normal(kh, (n, d), jnp.float32)
    w = jax.random.normal(kw, (d, v), jnp.float32) * (d**-0.5)
    y = jax.random.randint(ky, (n,), 0, v, jnp.int32)
    return h, w, y


def _naive(h, w, y):
    return optax.softmax_cross_entropy_with_integer_labels(h @ w, y).mean()


def _ours(h, w, y):
    return lossjax.linear_cross_entropy(h, w, y)


def _ours_recompute(h, w, y):
    # return_lse keeps the lse cotangent open, so this takes the recomputing backward
    # rule (four matrix products instead of three).
    loss, _ = lossjax.linear_cross_entropy(h, w, y, return_lse=True)
    return loss


def _step(loss):
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def _compiled_bytes(loss, *args) -> tuple[int, int]:
    """(temp bytes, temp + argument + output bytes) of the compiled value_and_grad."""
    m = _step(loss).lower(*args).compile().memory_analysis()
    return m.temp_size_in_bytes, (m.temp_size_in_bytes + m.argument_size_in_bytes
                                  + m.output_size_in_bytes)


def main(quick: bool = False) -> list[dict]:
    n, d, v = (2048, 256, 16384) if quick else (4096, 512, 32768)
    repeats = 3 if quick else 5
    h, w, y = _inputs(n, d, v)

    naive_value, (naive_dh, naive_dw) = _step(_naive)(h, w, y)
    naive_s = median_seconds(_step(_naive), h, w, y, repeats=repeats, warmup=1)
    naive_temp = temp_bytes(jax.value_and_grad(_naive, argnums=(0, 1)), h, w, y)

    rows = []
    for name, loss in [("linear_cross_entropy (fused)", _ours),
                       ("linear_cross_entropy (recompute)", _ours_recompute)]:
        value, (dh, dw) = _step(loss)(h, w, y)
        err = max(float(jnp.abs(value - naive_value) / jnp.abs(naive_value)),
                  float(jnp.max(jnp.abs(dh - naive_dh)) / jnp.max(jnp.abs(naive_dh))),
                  float(jnp.max(jnp.abs(dw - naive_dw)) / jnp.max(jnp.abs(naive_dw))))
        ours_s = median_seconds(_step(loss), h, w, y, repeats=repeats, warmup=1)
        ours_temp = temp_bytes(jax.value_and_grad(loss, argnums=(0, 1)), h, w, y)
        rows.append({
            "name": f"{name} N={n} D={d} V={v}",
            "lossjax_ms": 1e3 * ours_s, "optax_ms": 1e3 * naive_s, "ratio": ours_s / naive_s,
            "lossjax_temp_mib": ours_temp / MIB, "optax_temp_mib": naive_temp / MIB,
            "temp_ratio": ours_temp / naive_temp, "max_rel_err": err,
        })
    print_table(
        f"value_and_grad, float32, N={n} D={d} V={v} (naive: optax CE on h @ W)",
        ["variant", "lossjax ms", "naive ms", "time ratio", "lossjax temp MiB",
         "naive temp MiB", "temp ratio", "max rel err vs naive"],
        [[r["name"].split(" N=")[0], r["lossjax_ms"], r["optax_ms"], r["ratio"],
          r["lossjax_temp_mib"], r["optax_temp_mib"], r["temp_ratio"], r["max_rel_err"]]
         for r in rows],
    )
    return rows


def headline() -> dict:
    """N=16384, D=1024, V=131072: ours runs; the naive version is only compiled."""
    n, d, v = 16384, 1024, 131072
    shapes = (jax.ShapeDtypeStruct((n, d), jnp.float32), jax.ShapeDtypeStruct((d, v), jnp.float32),
              jax.ShapeDtypeStruct((n,), jnp.int32))
    naive_temp, naive_total = _compiled_bytes(_naive, *shapes)
    ours_temp, ours_total = _compiled_bytes(_ours, *shapes)

    h, w, y = _inputs(n, d, v)
    start = time.perf_counter()
    step = _step(_ours).lower(h, w, y).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    value, grads = jax.block_until_ready(step(h, w, y))
    step_s = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    row = {
        "name": f"headline N={n} D={d} V={v}", "lossjax_ms": 1e3 * step_s,
        "compile_s": compile_s, "peak_rss_mib": rss_mib,
        "lossjax_temp_mib": ours_temp / MIB, "lossjax_total_mib": ours_total / MIB,
        "optax_temp_mib": naive_temp / MIB, "optax_total_mib": naive_total / MIB,
        "loss": float(value), "finite_grads": bool(all(jnp.all(jnp.isfinite(g)) for g in grads)),
    }
    print_table(
        f"headline: value_and_grad, float32, N={n} D={d} V={v}",
        ["", "step s", "compile s", "peak RSS MiB", "compiled temp MiB",
         "temp + args + outputs MiB"],
        [["linear_cross_entropy", step_s, compile_s, rss_mib, ours_temp / MIB,
          ours_total / MIB],
         ["naive (compiled only)", "-", "-", "-", naive_temp / MIB, naive_total / MIB]],
    )
    print(f"\nloss = {row['loss']:.6f}, gradients finite: {row['finite_grads']}")
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shape, few repeats")
    parser.add_argument("--headline", action="store_true",
                        help="N=16384, D=1024, V=131072 (minutes on 2 cores)")
    args = parser.parse_args()
    if args.headline:
        headline()
    else:
        main(quick=args.quick)

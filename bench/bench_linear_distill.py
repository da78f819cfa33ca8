"""linear_distillation_loss against the dense distillation_loss of the two models' logits:
compiled memory and time.

Dense version: ``distillation_loss(h_s @ W_s, h_t @ W_t)``, both ``[N, V]`` logit matrices
(and the student's gradient) held whole. Both are ``jax.value_and_grad`` w.r.t. the
student's ``h_s`` and ``W_s`` under ``jit``, float32, forward KL at ``T = 2``, on the same
arrays in one process.

Run from the repository root::

    python -m bench.bench_linear_distill           # memory at N=4096, D=512, V=32768;
                                                   # time at N=2048, D=256, V=16384
    python -m bench.bench_linear_distill --quick   # a small shape, a few repeats
    python -m bench.bench_linear_distill --full    # time at N=4096, D=512, V=32768 too

Memory is XLA's compiled ``temp_size_in_bytes`` (compiled from shapes, never run), so the
dense version's need at the full size is measured without allocating it.
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp

import lossjax
from bench._timing import interleaved_medians, print_table

MIB = 2**20
FULL = (4096, 512, 32768)


def _inputs(n: int, d: int, v: int):
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    hs, ht = (jax.random.normal(k, (n, d), jnp.float32) for k in keys[:2])
    ws, wt = (jax.random.normal(k, (d, v), jnp.float32) * d**-0.5 for k in keys[2:])
    return hs, ws, ht, wt


def _dense(hs, ws, ht, wt, divergence="forward_kl"):
    return lossjax.distillation_loss(hs @ ws, ht @ wt, temperature=2.0, divergence=divergence)


def _blocked(hs, ws, ht, wt, divergence="forward_kl"):
    return lossjax.linear_distillation_loss(hs, ws, ht, wt, temperature=2.0,
                                            divergence=divergence)


def _step(loss):
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def _temp_mib(loss, n: int, d: int, v: int) -> float:
    shapes = [jax.ShapeDtypeStruct(s, jnp.float32) for s in ((n, d), (d, v), (n, d), (d, v))]
    return _step(loss).lower(*shapes).compile().memory_analysis().temp_size_in_bytes / MIB


def main(quick: bool = False, full: bool = False) -> list[dict]:
    memory_shape = (1024, 256, 8192) if quick else FULL
    time_shape = (1024, 256, 8192) if quick else (FULL if full else (2048, 256, 16384))
    repeats = 3 if quick else 5
    rows = []
    for divergence in ("forward_kl", "jsd"):
        dense = functools.partial(_dense, divergence=divergence)
        blocked = functools.partial(_blocked, divergence=divergence)
        dense_mib, blocked_mib = (_temp_mib(f, *memory_shape) for f in (dense, blocked))
        args = _inputs(*time_shape)
        (dv, (dh, dw)), (bv, (bh, bw)) = _step(dense)(*args), _step(blocked)(*args)
        err = max(float(jnp.abs(bv - dv) / jnp.abs(dv)),
                  float(jnp.max(jnp.abs(bh - dh)) / jnp.max(jnp.abs(dh))),
                  float(jnp.max(jnp.abs(bw - dw)) / jnp.max(jnp.abs(dw))))
        blocked_s, dense_s = interleaved_medians(
            [(_step(blocked), args), (_step(dense), args)], repeats=repeats, warmup=1)
        rows.append({
            "name": f"linear_distillation_loss {divergence}",
            "lossjax_ms": 1e3 * blocked_s, "optax_ms": 1e3 * dense_s,
            "ratio": blocked_s / dense_s, "time_shape": "N={} D={} V={}".format(*time_shape),
            "memory_shape": "N={} D={} V={}".format(*memory_shape),
            "lossjax_temp_mib": blocked_mib, "dense_temp_mib": dense_mib,
            "temp_ratio": blocked_mib / dense_mib, "max_rel_err": err,
        })
    print_table(
        "value_and_grad w.r.t. the student, float32 (dense: distillation_loss of h @ W)",
        ["divergence", "blocked ms", "dense ms", "time ratio", "time at", "blocked temp MiB",
         "dense temp MiB", "temp ratio", "memory at", "max rel err vs dense"],
        [[r["name"].split()[-1], r["lossjax_ms"], r["optax_ms"], r["ratio"], r["time_shape"],
          r["lossjax_temp_mib"], r["dense_temp_mib"], r["temp_ratio"], r["memory_shape"],
          r["max_rel_err"]] for r in rows],
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true", help="time at N=4096 D=512 V=32768")
    args = parser.parse_args()
    main(quick=args.quick, full=args.full)

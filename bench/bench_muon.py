"""Muon: Newton–Schulz choices, step time vs optax.contrib.muon, and what sharding costs.

    python -m bench.bench_muon [--quick]

1. Orthogonalisation after 5 steps on random bf16 matrices (a batch of 8 per shape, the
   iteration in float32 as Muon runs it): for each coefficient table and method, the
   largest ``|σ − 1|`` over the singular values of the result, the relative Frobenius
   distance to the exact polar factor ``UVᵀ`` (float64 SVD of the same bf16 input), and
   the median time of the jitted iteration on this CPU, all in one run; "ratio" is the
   time over the ``standard`` preset's on the same shape.
2. Step time: one donated jitted step of ``lossjax.muon`` vs ``optax.contrib.muon`` on a
   transformer-like tree (6 layers of q/k/v/o ``[256, 256]``, MLP ``[256, 1024]`` and
   ``[1024, 256]``, biases, norms), timed in alternation; lossjax with its defaults
   (batched, Gram for wide matrices) and with the standard iteration one leaf at a time.
3. Sharding (8 virtual CPU devices, 2x4 mesh, in a child process): the Muon step on
   explicitly sharded ``P("data", "model")`` matrices (each gathered whole for its
   iteration) vs the same step on replicated matrices; the bytes the compiled step
   all-gathers. Virtual CPU devices share this machine's 2 cores, so the time ratio shows
   the gather's bookkeeping, not a network's cost.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib

import lossjax
from bench._timing import interleaved_medians, print_table

NS_CASES = {  # name: (coefficients, method)
    "standard": ("standard", "standard"),
    "dion": ("dion", "standard"),
    "polar_express": ("polar_express", "standard"),
    "polar_express gram": ("polar_express", "gram"),
    "standard gram": ("standard", "gram"),
}


def _coeffs(name: str) -> tuple[tuple[float, float, float], ...]:
    table = lossjax.NS_COEFFS_PRESETS[name]
    return (table * 5)[:5] if len(table) == 1 else table[:5]


def orthogonalisation(quick: bool) -> list[dict[str, Any]]:
    shapes = [(64, 64), (32, 256)] if quick else [(256, 256), (128, 1024), (64, 2048)]
    rows = []
    for shape in shapes:
        x = jax.random.normal(jax.random.key(0), (8, *shape), jnp.float32).astype(jnp.bfloat16)
        x64 = np.asarray(x.astype(jnp.float32), np.float64)
        u, _, vt = np.linalg.svd(x64, full_matrices=False)
        polar = u @ vt
        calls, results = [], {}
        for name, (coeffs, method) in NS_CASES.items():
            fn = jax.jit(functools.partial(lossjax.newton_schulz, coeffs=_coeffs(coeffs),
                                           method=method))
            results[name] = np.asarray(fn(x), np.float64)
            calls.append((fn, (x,)))
        times = dict(zip(NS_CASES, interleaved_medians(calls, repeats=5 if quick else 20),
                         strict=True))
        for name, out in results.items():
            sigma = np.linalg.svd(out, compute_uv=False)
            rows.append({
                "name": f"NS {name} {list(shape)}",
                "max_sigma_error": float(np.max(np.abs(sigma - 1))),
                "polar_distance": float(np.linalg.norm(out - polar) / np.linalg.norm(polar)),
                "lossjax_ms": times[name] * 1e3,
                "ratio": times[name] / times["standard"]})
    print_table("Newton-Schulz, 5 steps, 8 random bf16 matrices per shape (float32 iteration)",
                ["case", "max |σ-1|", "‖O - UVᵀ‖/‖UVᵀ‖", "ms", "time / standard"],
                [[r["name"], r["max_sigma_error"], r["polar_distance"], r["lossjax_ms"],
                  r["ratio"]] for r in rows])
    return rows


def transformer_params(layers: int, d: int) -> dict[str, Any]:
    keys = iter(jax.random.split(jax.random.key(1), 8 * layers))
    params: dict[str, Any] = {}
    for i in range(layers):
        layer = {name: {"kernel": 0.05 * jax.random.normal(next(keys), (d, d)),
                        "bias": jnp.zeros(d)} for name in ("query", "key", "value", "out")}
        layer["up"] = {"kernel": 0.05 * jax.random.normal(next(keys), (d, 4 * d)),
                       "bias": jnp.zeros(4 * d)}
        layer["down"] = {"kernel": 0.05 * jax.random.normal(next(keys), (4 * d, d)),
                         "bias": jnp.zeros(d)}
        layer["norm"] = {"scale": jnp.ones(d)}
        params[f"layer{i}"] = layer
    return params


def _donated_step(opt):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def step_time(quick: bool) -> list[dict[str, Any]]:
    layers, d = (2, 64) if quick else (6, 256)
    params = transformer_params(layers, d)
    grads = jax.tree.map(lambda p: 1e-3 * jnp.cos(p + 1.0), params)
    cases = {
        "muon (defaults: batched, Gram for wide)": lambda: lossjax.muon(0.02),
        "muon (standard NS, per leaf)": lambda: lossjax.muon(
            0.02, newton_schulz_method="standard", batch_newton_schulz=False),
    }
    rows = []
    for name, build in cases.items():
        contenders = []
        for opt in (build(), optax.contrib.muon(0.02)):
            step = _donated_step(opt)
            holder = {"p": jax.tree.map(jnp.copy, params), "s": opt.init(params)}

            def call(step=step, holder=holder):
                holder["p"], holder["s"] = step(holder["p"], holder["s"], grads)
                return holder["p"]

            contenders.append((call, ()))
        mine, theirs = interleaved_medians(contenders, repeats=3 if quick else 15, warmup=2)
        rows.append({"name": name, "lossjax_ms": mine * 1e3, "optax_ms": theirs * 1e3,
                     "ratio": mine / theirs})
    print_table(f"Muon step, {layers} transformer layers, d={d}, float32 (lossjax / optax)",
                ["case", "lossjax ms", "optax.contrib ms", "ratio"],
                [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"]] for r in rows])
    return rows


SHARDED_CHILD = r"""
import json, re, sys
import jax, jax.numpy as jnp, optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
sys.path.insert(0, sys.argv[1])
import lossjax
from bench._timing import interleaved_medians
quick = sys.argv[2] == "1"
n, d = (4, 64) if quick else (8, 512)
mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
keys = jax.random.split(jax.random.key(0), n)
params = {f"w{i}": jax.random.normal(k, (d, d)) for i, k in enumerate(keys)}
grads = jax.tree.map(lambda p: jnp.cos(p), params)
opt = lossjax.muon(0.02)
def step(p, g):
    updates, _ = opt.update(g, opt.init(p), p)
    return optax.apply_updates(p, updates)
out = {}
with jax.set_mesh(mesh):
    calls = []
    for spec in (P("data", "model"), P()):
        put = lambda t: jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, spec)), t)
        args = (put(params), put(grads))
        fn = jax.jit(step)
        hlo = fn.lower(*args).compile().as_text()
        gathered = sum(eval("*".join(s.split(",")) or "1") * 4 for s in
                       re.findall(r"= f32\[([\d,]+)\]\{[^}]*\} all-gather\(", hlo))
        out[str(spec)] = {"gathered_bytes": gathered}
        calls.append((fn, args))
    times = interleaved_medians(calls, repeats=3 if quick else 10)
for spec, t in zip(out, times):
    out[spec]["ms"] = t * 1e3
print(json.dumps({"n": n, "d": d, **out}))
"""


def sharding_cost(quick: bool) -> list[dict[str, Any]]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} "
                         "--xla_force_host_platform_device_count=8".strip())
    proc = subprocess.run([sys.executable, "-c", SHARDED_CHILD, root, "1" if quick else "0"],
                          env=env, capture_output=True, text=True, timeout=900, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    sharded, replicated = report["P('data', 'model')"], report["P()"]
    row = {"name": f"muon step, {report['n']} x [{report['d']}, {report['d']}] on a 2x4 mesh",
           "lossjax_ms": sharded["ms"], "replicated_ms": replicated["ms"],
           "ratio": sharded["ms"] / replicated["ms"],
           "gathered_MiB": sharded["gathered_bytes"] / 2**20}
    print_table("Muon on explicitly sharded matrices vs replicated (8 virtual CPU devices)",
                ["case", "sharded ms", "replicated ms", "ratio", "all-gathered MiB"],
                [[row["name"], row["lossjax_ms"], row["replicated_ms"], row["ratio"],
                  row["gathered_MiB"]]])
    return [row]


def main(quick: bool = False) -> list[dict[str, Any]]:
    return orthogonalisation(quick) + step_time(quick) + sharding_cost(quick)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)

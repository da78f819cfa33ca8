"""SOAP, Shampoo and PSGD Kron: float64 agreement with their references, state bytes per
matrix, and step time against AdamW with the expensive step every 10 steps.

    python -m bench.bench_precond [--quick]

1. Agreement: 120 steps of the tests' small MLP (``tests/optimizers/_precond_reference``)
   in float64, the expensive step every step and every 10 steps; the largest absolute
   difference of the parameters and of every update from the NumPy references (and, for
   Kron, from psgd_jax with update probability 1 and the same key).
2. State: numbers held per ``m × n`` weight matrix (no scalars), from ``init`` on
   ``jax.ShapeDtypeStruct``s, against Adam's ``2mn``.
3. Step time: a 4-layer MLP of 256-wide matrices, batch 2048 (a small LM step's token
   count: 32 sequences of 64); steps 1..10 as one jitted
   ``lax.scan`` (so one expensive step in ten), per-step medians timed in alternation with
   AdamW's. LAPACK runs single-threaded (see below).
"""

from __future__ import annotations

import argparse
import os
import sys

# LAPACK (eigh, QR) with one thread per process: on a shared, loaded machine OpenBLAS's
# default thread pool oversubscribes the cores and makes a 256 x 256 eigh take seconds
# instead of milliseconds. Set before numpy loads (python -m bench.bench_precond).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from bench._timing import interleaved_medians


def _agreement() -> list[dict]:
    from tests.optimizers._precond_reference import (
        KronReference,
        ShampooReference,
        SoapReference,
        mlp_problem,
        run_reference,
    )
    from tests.optimizers.test_precond import _trajectory

    params, xs, ys = mlp_problem(120)
    cases = [
        ("soap every step", lossjax.soap(3e-2, precondition_frequency=1, weight_decay=0.01),
         SoapReference(frequency=1, weight_decay=0.01), 3e-2),
        ("soap every 10", lossjax.soap(3e-2, weight_decay=0.01),
         SoapReference(frequency=10, weight_decay=0.01), 3e-2),
        ("shampoo every step (adam graft, 2x2 blocks)",
         lossjax.shampoo(3e-2, block_size=2, graft_type="adam", beta2=0.99,
                         best_effort_shape_interpretation=False),
         ShampooReference(block_size=2, graft_type="adam", beta2=0.99,
                          best_effort_shape_interpretation=False), 3e-2),
        ("shampoo every 10 (adagrad graft, merged)",
         lossjax.shampoo(3e-2, graft_type="adagrad", preconditioning_compute_steps=10),
         ShampooReference(graft_type="adagrad", preconditioning_compute_steps=10), 3e-2),
        ("kron every step", lossjax.kron(2e-2, preconditioner_update_probability=1.0),
         KronReference(probability=1.0), 2e-2),
        ("kron every 10", lossjax.kron(2e-2, preconditioner_update_probability=0.1),
         KronReference(probability=0.1), 2e-2),
    ]
    rows = []
    for name, opt, reference, lr in cases:
        mine, updates = _trajectory(opt, params, xs, ys)
        theirs, their_updates = run_reference(reference, params, xs, ys, lr)
        param_diff = max(float(np.max(np.abs(np.asarray(mine[k]) - theirs[k]))) for k in params)
        update_diff = max(float(np.max(np.abs(np.asarray(updates[k])
                                              - np.stack([u[k] for u in their_updates]))))
                          for k in params)
        moved = max(float(np.max(np.abs(theirs[k] - params[k]))) for k in params)
        rows.append({"name": f"{name} vs NumPy", "max_param_diff": param_diff,
                     "max_update_diff": update_diff, "params_moved": moved})
    try:
        from tests.optimizers._psgd_jax import psgd_kron
    except ImportError:
        return rows
    mine, updates = _trajectory(lossjax.kron(2e-2, preconditioner_update_probability=1.0),
                                params, xs, ys)
    theirs, their_updates = _trajectory(psgd_kron(2e-2, preconditioner_update_probability=1.0),
                                        params, xs, ys)
    rows.append({
        "name": "kron every step vs psgd_jax 0.2.9",
        "max_param_diff": max(float(jnp.max(jnp.abs(mine[k] - theirs[k]))) for k in params),
        "max_update_diff": max(float(jnp.max(jnp.abs(updates[k] - their_updates[k])))
                               for k in params),
        "params_moved": max(float(jnp.max(jnp.abs(theirs[k] - params[k]))) for k in params)})
    return rows


def _state_numbers(opt, shape) -> int:
    spec = {"w": jax.ShapeDtypeStruct(shape, jnp.float32)}
    state = jax.eval_shape(opt.init, spec)
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state) if x.ndim > 0
               and x.dtype != jnp.uint32)


def _state_bytes() -> list[dict]:
    rows = []
    for m, n in ((1024, 256), (4096, 1024)):
        adam = _state_numbers(lossjax.adamw(1e-3), (m, n))
        for name, opt in [
                ("adamw", lossjax.adamw(1e-3)),
                ("soap", lossjax.soap(3e-3)),
                ("shampoo (block 128, sgd graft)", lossjax.shampoo(0.1)),
                ("shampoo (block 128, adam graft)", lossjax.shampoo(1e-3, graft_type="adam")),
                ("shampoo (block 1024, adam graft)",
                 lossjax.shampoo(1e-3, block_size=1024, graft_type="adam")),
                ("kron", lossjax.kron(1e-3)),
                ("kron one_diag", lossjax.kron(1e-3, memory_save_mode="one_diag"))]:
            numbers = _state_numbers(opt, (m, n))
            rows.append({"name": f"state {name} [{m}x{n}]", "state_numbers": numbers,
                         "state_bytes_f32": 4 * numbers, "vs_adam": numbers / adam})
    return rows


def _mlp(width: int, depth: int, batch: int):
    keys = jax.random.split(jax.random.PRNGKey(0), depth + 2)
    params = {f"l{i}": {"w": jax.random.normal(keys[i], (width, width)) / np.sqrt(width),
                        "b": jnp.zeros(width)} for i in range(depth)}
    xs = jax.random.normal(keys[-2], (10, batch, width))
    ys = jax.random.normal(keys[-1], (10, batch, width))

    def loss(p, x, y):
        for i in range(depth):
            x = jnp.tanh(x @ p[f"l{i}"]["w"] + p[f"l{i}"]["b"])
        return jnp.mean((x - y) ** 2)

    return params, xs, ys, loss


def _step_times(quick: bool) -> list[dict]:
    width, depth, batch = (64, 2, 256) if quick else (256, 4, 2048)
    params, xs, ys, loss = _mlp(width, depth, batch)

    def ten_steps(opt):
        def body(carry, batch):
            p, s = carry
            u, s = opt.update(jax.grad(loss)(p, *batch), s, p)
            return (optax.apply_updates(p, u), s), None

        @jax.jit
        def run(p, s):
            return jax.lax.scan(body, (p, s), (xs, ys))[0]

        # start after one step, so that the ten timed steps are steps 1..10: one basis
        # refresh / root computation / fit each (SOAP's first-step eigh is not timed)
        first = jax.jit(lambda p, s: body((p, s), (xs[0], ys[0]))[0])
        return run, first(params, opt.init(params))

    opts = {"adamw": lossjax.adamw(1e-3),
            "soap (refresh every 10)": lossjax.soap(3e-3, precondition_frequency=10),
            "shampoo (roots every 10)": lossjax.shampoo(1e-3, graft_type="adam",
                                                        preconditioning_compute_steps=10),
            "kron (fit every 10)": lossjax.kron(1e-3, preconditioner_update_probability=0.1)}
    calls = [ten_steps(opt) for opt in opts.values()]
    seconds = interleaved_medians(calls, repeats=3 if quick else 15, warmup=2)
    base = seconds[0]
    return [{"name": f"step {name} [{depth}x{width}x{width}, batch {batch}]",
             "lossjax_ms": 1e3 * s / 10, "adamw_ms": 1e3 * base / 10, "ratio": s / base}
            for name, s in zip(opts, seconds, strict=True)]


def main(quick: bool = False, parts: tuple[str, ...] = ("agreement", "state", "time")
         ) -> list[dict]:
    rows = []
    if "agreement" in parts:
        with jax.enable_x64(True):
            rows += _agreement()
    if "state" in parts:
        rows += _state_bytes()
    if "time" in parts:
        rows += _step_times(quick)
    for row in rows:
        print(" | ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in row.items()))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", nargs="+", default=["agreement", "state", "time"],
                        choices=["agreement", "state", "time"])
    args = parser.parse_args()
    main(args.quick, tuple(args.parts))

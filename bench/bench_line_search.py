"""L-BFGS and Polyak SGD: lossjax vs optax, one donated jitted iteration of the full loop.

    python -m bench.bench_line_search [--quick]

Parameters: 100 leaves, 99 x [256, 384] plus a [384] bias (9.7M float32). Objective: the
separable quadratic ``f(w) = ½ Σ d·(w − t)²`` with curvatures ``d`` spread over [1, 10], so
L-BFGS keeps iterating (an isotropic quadratic would be solved in one step).

- lbfgs: the documented loop, ``value_and_grad_from_state`` + ``update(..., value=, grad=,
  value_fn=)`` + ``apply_updates``, default arguments (memory 10, zoom line search). Each
  contender first runs 12 iterations, so the timed ones have a full memory and a real line
  search; "evaluations" is how many the last search made.
- polyak_sgd: ``jax.value_and_grad`` + ``update(..., value=)`` + ``apply_updates``.

Both contenders are timed in alternation in one process (``interleaved_medians``); ratio =
lossjax / optax. "state MiB" is the optimizer state from ``jax.eval_shape(opt.init, params)``.
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
from bench.bench_optimizers import _donated_call

WARM_ITERATIONS = 12


def make_problem(leaves: int, shape: tuple[int, int]):
    """Parameters (``leaves − 1`` matrices and a bias) and the quadratic objective."""
    rng = np.random.default_rng(0)
    shapes = [shape] * (leaves - 1) + [shape[1:]]
    params = {f"p{i:03d}": jnp.zeros(s, jnp.float32) for i, s in enumerate(shapes)}
    targets = {k: jnp.asarray(rng.normal(size=p.shape), jnp.float32) for k, p in params.items()}
    curvatures = {k: jnp.asarray(rng.uniform(1.0, 10.0, size=p.shape), jnp.float32)
                  for k, p in params.items()}

    def f(w):
        terms = jax.tree.map(lambda x, t, d: jnp.sum(d * (x - t) ** 2), w, targets, curvatures)
        return 0.5 * sum(jax.tree.leaves(terms))

    return params, f


def lbfgs_step(module: Any, f):
    opt = module.lbfgs()
    value_and_grad = module.value_and_grad_from_state(f)

    def step(params, state, _):
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(params, updates), state

    return opt, step


def polyak_step(module: Any, f):
    opt = module.polyak_sgd(max_learning_rate=0.2)

    def step(params, state, _):
        value, grad = jax.value_and_grad(f)(params)
        updates, state = opt.update(grad, state, params, value=value)
        return optax.apply_updates(params, updates), state

    return opt, step


def _state_mib(opt, params) -> float:
    shapes = jax.eval_shape(opt.init, params)
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes)) / 2**20


def _warm_state(opt, step, params):
    """Params and state after ``WARM_ITERATIONS`` (memory full, line search active)."""
    run = jax.jit(step)
    params, state = jax.tree.map(jnp.copy, params), opt.init(params)
    for _ in range(WARM_ITERATIONS):
        params, state = run(params, state, ())
    return params, state


def _case(name: str, make_step, params, f, repeats: int) -> dict[str, Any]:
    contenders = [make_step(lossjax, f), make_step(optax, f)]
    warm = [_warm_state(opt, step, params) for opt, step in contenders]
    infos = [getattr(state[-1], "info", None) for _, state in warm]
    calls = [_donated_call(step, p, s, ()) for (_, step), (p, s) in zip(contenders, warm,
                                                                         strict=True)]
    ours, theirs = (1e3 * t for t in interleaved_medians(calls, repeats=repeats))
    n = sum(p.size for p in jax.tree.leaves(params))
    row = {"name": f"{name}, {len(params)} leaves ({n / 1e6:.1f}M f32)",
           "lossjax_ms": ours, "optax_ms": theirs, "ratio": ours / theirs,
           "lossjax_state_mib": _state_mib(contenders[0][0], params),
           "optax_state_mib": _state_mib(contenders[1][0], params)}
    if infos[0] is not None:
        row["evaluations"] = f"{int(infos[0].num_linesearch_steps)} / " \
                             f"{int(infos[1].num_linesearch_steps)}"
    return row


def main(quick: bool = False) -> list[dict[str, Any]]:
    shape, repeats = ((64, 96), 5) if quick else ((256, 384), 30)
    params, f = make_problem(100, shape)
    rows = [_case("lbfgs", lbfgs_step, params, f, repeats),
            _case("polyak_sgd", polyak_step, params, f, repeats)]
    print_table(
        "Step size from the loss: one iteration (donated), float32, CPU "
        "(ratio = lossjax / optax)",
        ["case", "lossjax ms", "optax ms", "ratio", "state MiB lossjax", "state MiB optax",
         "line-search evaluations (lossjax / optax)"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"], r["lossjax_state_mib"],
          r["optax_state_mib"], r.get("evaluations", "")] for r in rows])
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    main(parser.parse_args().quick)

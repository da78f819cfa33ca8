"""Wrappers: lossjax vs optax, one jitted step ``updates, state <- opt.update(g, state, p)``.

    python -m bench.bench_wrappers [--quick]

Cases, float32, 8 leaves holding ~8M parameters (quick: ~130k), Adam inside each wrapper;
the two contenders timed in alternation in one process:

- ``multi_steps`` (k = 8) against ``optax.MultiSteps``: an accumulating call (7 of every 8)
  and an applying call, timed separately; and the compiled step's temporary memory.
  lossjax runs the inner Adam inside ``lax.cond`` only on the applying call; optax computes
  it on every call and keeps the old state with ``where``.
- ``apply_if_finite`` and ``inject_hyperparams`` around Adam.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import optax

import lossjax
from bench._timing import interleaved_medians, print_table, temp_bytes


def _params(quick: bool) -> dict[str, jax.Array]:
    n = 128 if quick else 1024
    keys = jax.random.split(jax.random.key(0), 8)
    return {f"w{i}": jax.random.normal(k, (n, n), jnp.float32) for i, k in enumerate(keys)}


def _update(opt):
    return jax.jit(lambda g, s, p: opt.update(g, s, p))


def _row(name: str, ours, theirs, args_ours, args_theirs, repeats: int) -> dict[str, Any]:
    t_ours, t_theirs = interleaved_medians([(ours, args_ours), (theirs, args_theirs)],
                                           repeats=repeats)
    return {"name": name, "lossjax_ms": 1e3 * t_ours, "optax_ms": 1e3 * t_theirs,
            "ratio": t_ours / t_theirs}


def main(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 5 if quick else 20
    params = _params(quick)
    grads = jax.tree.map(lambda p: 0.01 * p, params)
    rows = []

    ours = lossjax.multi_steps(lossjax.adam(1e-3), 8)
    theirs = optax.MultiSteps(optax.adam(1e-3), 8).gradient_transformation()
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    up_ours, up_theirs = _update(ours), _update(theirs)
    rows.append(_row("multi_steps k=8, accumulating call", up_ours, up_theirs,
                     (grads, s_ours, params), (grads, s_theirs, params), repeats))
    # the applying call: the 8th of a window
    s_ours = s_ours._replace(mini_step=jnp.asarray(7, jnp.int32))
    s_theirs = s_theirs._replace(mini_step=jnp.asarray(7, jnp.int32))
    rows.append(_row("multi_steps k=8, applying call", up_ours, up_theirs,
                     (grads, s_ours, params), (grads, s_theirs, params), repeats))
    mib = 2.0**20
    rows.append({"name": "multi_steps k=8, compiled temp MiB",
                 "lossjax_ms": temp_bytes(ours.update, grads, s_ours, params) / mib,
                 "optax_ms": temp_bytes(theirs.update, grads, s_theirs, params) / mib,
                 "ratio": float("nan")})

    for name, make_ours, make_theirs in [
        ("apply_if_finite(adam)", lambda: lossjax.apply_if_finite(lossjax.adam(1e-3), 5),
         lambda: optax.apply_if_finite(optax.adam(1e-3), 5)),
        ("inject_hyperparams(adam)", lambda: lossjax.inject_hyperparams(lossjax.adam)(1e-3),
         lambda: optax.inject_hyperparams(optax.adam)(1e-3)),
    ]:
        ours, theirs = make_ours(), make_theirs()
        rows.append(_row(name, _update(ours), _update(theirs),
                         (grads, ours.init(params), params),
                         (grads, theirs.init(params), params), repeats))

    print_table("Wrappers (lossjax / optax; the temp row is MiB, not ms)",
                ["case", "lossjax", "optax", "ratio"],
                [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"]] for r in rows])
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)

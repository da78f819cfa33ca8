"""Run in a child process with 8 virtual CPU devices (see ``test_contract.py``).

For every registry entry, on a 2x4 mesh: ``init`` on parameters sharded
``P("data", "model")`` (the matrix) and ``P("model")`` (the bias), then one jitted step.
Every state leaf shaped like a parameter and named after it must carry that parameter's
sharding, after ``init`` and after the step. Prints one JSON line:
``{test_id: {"error": ..., "misplaced": [paths]}}``.
"""

import json
import sys

import jax
import jax.numpy as jnp
import optax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from tests.optimizers._registry import ENTRIES

SPECS = {"w": P("data", "model"), "b": P("model")}


def misplaced(state, params, mesh):
    """Paths of the state leaves shaped like a parameter, named after it, sharded otherwise."""
    wrong = []

    def check(path, leaf):
        names = jax.tree_util.keystr(path)
        for key, spec in SPECS.items():
            if names.endswith(f"['{key}']") and leaf.shape == params[key].shape:
                if not leaf.sharding.is_equivalent_to(NamedSharding(mesh, spec), leaf.ndim):
                    wrong.append(names)

    jax.tree_util.tree_map_with_path(check, state)
    return wrong


def main():
    # Auto axes: XLA propagates shardings (the usual set-up; Explicit axes would make a
    # line search's dot products ask for an output sharding)
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    k = jax.random.split(jax.random.key(0), 4)
    params = {"w": jax.random.normal(k[0], (4, 8)), "b": jax.random.normal(k[1], (8,))}
    grads = {"w": jax.random.normal(k[2], (4, 8)), "b": jax.random.normal(k[3], (8,))}
    put = lambda tree: {key: jax.device_put(x, NamedSharding(mesh, SPECS[key]))  # noqa: E731
                        for key, x in tree.items()}
    params, grads = put(params), put(grads)
    report = {}
    for entry in ENTRIES:
        try:
            opt = entry.build()

            def step(params, state, grads, opt=opt, entry=entry):
                wrapped = entry.wrap(params)
                updates, state = opt.update(grads, state, wrapped, **entry.kwargs(grads, wrapped))
                return optax.apply_updates(wrapped, updates), state

            state = opt.init(entry.wrap(params))
            wrong = misplaced(state, params, mesh)
            _, new_state = jax.jit(step)(params, state, grads)
            wrong += misplaced(new_state, params, mesh)
            report[entry.test_id] = {"error": None, "misplaced": sorted(set(wrong)),
                                     "finite": bool(all(jnp.all(jnp.isfinite(x))
                                                        for x in jax.tree.leaves(new_state)
                                                        if jnp.issubdtype(x.dtype, jnp.inexact)))}
        except Exception as error:  # reported to the test, which names the entry
            report[entry.test_id] = {"error": f"{type(error).__name__}: {error}"[:500]}
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())

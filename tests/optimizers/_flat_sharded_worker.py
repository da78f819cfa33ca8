"""Run in a child process with 8 virtual CPU devices (see ``test_flat.py``).

On a 2x4 mesh ("data", "model"): parameters sharded along axis 0 over "data" (FSDP, two
shards, float32 and bfloat16), along axis 0 over both axes (eight shards), replicated, and
along axis 1 (a leaf of its own). Packs them with ``flatten_params`` and prints one JSON
line: the buffers' shapes and whether their rows hold the leaves' shards (NumPy
reference); whether ``unflatten`` gives the leaves back with their shardings; whether the
flat update equals the per-leaf one bit for bit; the data-moving collectives and the
parameter-sized copies in the compiled update and in the compiled gradient through
``unflatten`` (both offset modes).
"""

import json
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import lossjax
from tests._xla import DATA_MOVING_COLLECTIVES, hlo_ops

SHAPES = {"w1": ((16, 6), jnp.float32, P("data")), "w2": ((8, 3), jnp.float32, P("data")),
          "b": ((4,), jnp.float32, P("data")), "h": ((6, 2), jnp.bfloat16, P("data")),
          "big": ((16, 4), jnp.float32, P(("data", "model"))),
          "r": ((5,), jnp.float32, P()), "t": ((4, 8), jnp.float32, P(None, "model"))}


def numpy_rows(leaves, rows):
    """The reference layout of a buffer: row k = every leaf's k-th shard, raveled."""
    return np.stack([np.concatenate([np.asarray(x, np.float64)[k * (x.shape[0] // rows):
                                                               (k + 1) * (x.shape[0] // rows)]
                                     .ravel() for x in leaves]) for k in range(rows)])


def loss(params):
    return sum(jnp.sum(jnp.sin(x.astype(jnp.float32)) * x.astype(jnp.float32))
               for x in jax.tree.leaves(params))


def main():
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    keys = jax.random.split(jax.random.key(0), 2 * len(SHAPES))
    params, grads = {}, {}
    for i, (name, (shape, dtype, spec)) in enumerate(SHAPES.items()):
        sharding = NamedSharding(mesh, spec)
        params[name] = jax.device_put(jax.random.normal(keys[2 * i], shape, dtype), sharding)
        grads[name] = jax.device_put(jax.random.normal(keys[2 * i + 1], shape, dtype), sharding)
    buffers, layout = lossjax.flatten_params(params)
    report = {"buffers": {n: list(b.shape) for n, b in buffers.items()},
              "buffer_specs": {n: str(b.sharding.spec) for n, b in buffers.items()}}

    groups = {"float32/fsdp(data)": ["b", "w1", "w2"], "bfloat16/fsdp(data)": ["h"],
              "float32/fsdp(data,model)": ["big"]}
    report["rows_match_reference"] = {
        n: bool(np.array_equal(np.asarray(buffers[n], np.float64),
                               numpy_rows([params[k] for k in names], buffers[n].shape[0])))
        for n, names in groups.items() if n in buffers}

    back = jax.jit(layout.unflatten)(buffers)
    report["unflatten_equal"] = all(bool(jnp.array_equal(back[k], params[k])) for k in params)
    report["unflatten_shardings"] = all(
        back[k].sharding.is_equivalent_to(params[k].sharding, params[k].ndim) for k in params)

    opt = lossjax.adamw(1e-2, weight_decay=0.1)

    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    tree_params, tree_state = params, opt.init(params)
    flat_params, flat_state = buffers, opt.init(buffers)
    flat_grads = jax.jit(layout.flatten)(grads)
    jit_step = jax.jit(step, donate_argnums=(0, 1))
    for _ in range(3):
        tree_params, tree_state = jax.jit(step)(tree_params, tree_state, grads)
        flat_params, flat_state = jit_step(flat_params, flat_state, flat_grads)
    got = layout.unflatten(flat_params)
    report["update_bitwise"] = all(bool(jnp.array_equal(got[k], tree_params[k])) for k in params)
    report["state_bitwise"] = all(
        bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(layout.to_tree(flat_state)),
                                                    jax.tree.leaves(tree_state), strict=True))

    update_hlo = jax.jit(step, donate_argnums=(0, 1)).lower(
        flat_params, flat_state, flat_grads).compile().as_text()
    report["update_collectives"] = hlo_ops(update_hlo, DATA_MOVING_COLLECTIVES + ("all-reduce",))
    report["update_copies"] = hlo_ops(update_hlo, ("copy",))
    tree_hlo = jax.jit(step, donate_argnums=(0, 1)).lower(
        params, opt.init(params), grads).compile().as_text()
    report["tree_update_copies"] = hlo_ops(tree_hlo, ("copy",))

    tree_grads = jax.jit(jax.grad(loss))(tree_params)  # equal to flat_params, unflattened
    offsets = layout.offsets
    for mode, fn, args in (
            ("static", jax.grad(lambda b: loss(layout.unflatten(b))), (flat_params,)),
            ("dynamic", jax.grad(lambda b, o: loss(layout.unflatten(b, o))),
             (flat_params, offsets))):
        compiled = jax.jit(fn).lower(*args).compile()
        text = compiled.as_text()
        report[f"grad_{mode}_moving"] = hlo_ops(text, DATA_MOVING_COLLECTIVES)
        sizes = {tuple(b.sharding.shard_shape(b.shape)) for b in flat_params.values()}
        report[f"grad_{mode}_buffer_copies"] = [
            line for line in hlo_ops(text, ("copy",))
            if any(re.search(r"\[" + ",".join(map(str, s)) + r"\]", line) for s in sizes)]
        g = compiled(*args)
        report[f"grad_{mode}_specs"] = {n: str(x.sharding.spec) for n, x in g.items()}
        got = layout.unflatten(g)
        report[f"grad_{mode}_bitwise"] = all(bool(jnp.array_equal(got[k], tree_grads[k]))
                                             for k in tree_grads)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())

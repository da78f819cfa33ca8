"""Run in a child process with 8 virtual CPU devices (see test_wave2_sharding.py).

For lion, lamb and adafactor on a 2x4 mesh: the state is initialised sharded like the
parameters (Adafactor's row / column statistics on the matching mesh axis), one jitted
step runs with the shardings XLA chooses, and we report whether the new state kept those
shardings, the all-gathers in the compiled step, and the largest difference from the
same step on one device. Prints one JSON line.
"""

import json
import sys

import jax
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import lossjax

SHAPE = (256, 384)  # largest axis 1 ("model"), second largest axis 0 ("data")


def state_spec(state, params_spec):
    """The sharding each state leaf should have: a param-shaped leaf like its param; the
    factored statistics of the matrix on the axis they keep; scalars replicated."""
    w_spec, b_spec = params_spec["w"], params_spec["b"]
    shapes = {SHAPE: w_spec, (SHAPE[1],): b_spec}
    row, col = P(w_spec[0]), P(w_spec[1])

    def spec(path, leaf):
        names = jax.tree_util.keystr(path)
        if "v_row" in names and "['w']" in names:
            return row
        if "v_col" in names and "['w']" in names:
            return col
        return shapes.get(tuple(leaf.shape), P())

    return jax.tree_util.tree_map_with_path(spec, state)


def main():
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    params_spec = {"w": P("data", "model"), "b": P("model")}
    k = jax.random.split(jax.random.key(0), 3)
    params = {"w": jax.random.normal(k[0], SHAPE), "b": jax.random.normal(k[1], SHAPE[1:])}
    grads = jax.tree.map(lambda p: jax.random.normal(k[2], p.shape), params)
    put = lambda tree, specs: jax.tree.map(  # noqa: E731
        lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, specs)
    report = {}
    for name, opt in [("lion", lossjax.lion(1e-3)), ("lamb", lossjax.lamb(1e-3)),
                      ("adafactor", lossjax.adafactor(1e-2, min_dim_size_to_factor=128))]:
        specs = state_spec(jax.eval_shape(opt.init, params), params_spec)
        shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), specs)
        sharded_params = put(params, params_spec)
        state = jax.jit(opt.init, out_shardings=shardings)(sharded_params)

        def step(params, state, grads, opt=opt):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        compiled = jax.jit(step).lower(sharded_params, state, put(grads, params_spec)).compile()
        new_params, new_state = compiled(sharded_params, state, put(grads, params_spec))
        kept = jax.tree.leaves(jax.tree.map(
            lambda x, s: x.sharding.is_equivalent_to(NamedSharding(mesh, s), x.ndim),
            new_state, specs))
        hlo = compiled.as_text()
        gathers = [line.split("=")[1].split("all-gather")[0].strip()
                   for line in hlo.splitlines() if "all-gather" in line and "=" in line]
        one_device = jax.jit(step)(params, opt.init(params), grads)
        diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                   for a, b in zip(jax.tree.leaves((new_params, new_state)),
                                   jax.tree.leaves(one_device), strict=True))
        report[name] = {
            "state_kept_sharding": all(kept), "n_state_leaves": len(kept),
            "all_gathers": gathers, "max_diff_from_one_device": diff,
            "v_row": str(_factored(new_state, "v_row")),
            "v_col": str(_factored(new_state, "v_col")),
        }
    print(json.dumps(report))


def _factored(state, field):
    """The partition spec of the matrix's ``field`` statistic, if the chain has one."""
    for part in state:
        if hasattr(part, field):
            return getattr(part, field)["w"].sharding.spec
    return None


if __name__ == "__main__":
    sys.exit(main())

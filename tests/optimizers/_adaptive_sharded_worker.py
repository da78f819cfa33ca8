"""Child process of tests/optimizers/test_adaptive_sharding.py (8 virtual CPU devices).

For each optimizer: parameters sharded over a 2x4 mesh, one jitted step, and for every
state leaf shaped like a parameter, whether its sharding equals that parameter's.
Prints one JSON line.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import lossjax

BUILDERS = {
    "schedule_free_adamw": lambda: lossjax.schedule_free_adamw(1e-2),
    "prodigy": lambda: lossjax.prodigy(),
    "dadapt_adamw": lambda: lossjax.dadapt_adamw(),
    "dog": lambda: lossjax.dog(),
    "muon": lambda: lossjax.muon(1e-2),
    "reduce_on_plateau": lambda: optax.chain(lossjax.adam(1e-2), lossjax.reduce_on_plateau()),
}


def main() -> None:
    assert jax.device_count() == 8
    # Mesh(...) has Auto axes (the compiler propagates shardings), as lossjax.examples.sharded_lm
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    specs = {"w": PartitionSpec("data", "model"), "v": PartitionSpec("model", None),
             "b": PartitionSpec("model")}
    shapes = {"w": (16, 8), "v": (8, 16), "b": (8,)}
    params = {k: jax.device_put(jnp.ones(shapes[k], jnp.float32) * 0.1,
                                NamedSharding(mesh, specs[k])) for k in shapes}
    grads = jax.tree.map(lambda p: p * 0.5, params)
    out = {}
    for name, build in BUILDERS.items():
        opt = build()

        @jax.jit
        def step(params, state, grads, opt=opt):
            updates, state = opt.update(grads, state, params, value=jnp.float32(1.0))
            return optax.apply_updates(params, updates), state

        state = jax.jit(opt.init)(params)
        new_params, state = step(params, state, grads)
        by_shape = {p.shape: p for p in params.values()}   # the three shapes differ
        checks = [leaf.sharding.is_equivalent_to(by_shape[leaf.shape].sharding, leaf.ndim)
                  for leaf in jax.tree.leaves(state) if leaf.shape in by_shape]
        out[name] = {"checked": len(checks), "all_same": all(checks),
                     "params_same": all(new_params[k].sharding.is_equivalent_to(
                         params[k].sharding, params[k].ndim) for k in params)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

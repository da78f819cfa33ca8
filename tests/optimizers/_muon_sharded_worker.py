"""Run in a child process with 8 virtual CPU devices (see test_muon_sharding.py).

Muon on a 2x4 mesh, two ways: parameters on a mesh made by ``jax.make_mesh`` with explicit
axes (``AxisType.Explicit``), and FSDP-sharded matrices (``P("data", "model")``, XLA's
automatic sharding). For each: the largest difference of one jitted step from the same
step on one device, whether the updates and the new state keep the parameters' sharding,
and the all-gathers in the compiled step (Muon gathers each matrix for the Newton–Schulz
iteration). Prints one JSON line.
"""

import json
import re

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import lossjax

SPECS = {"w": P("data", "model"), "qkv": P("data", None, None), "b": P("model")}


def params_and_grads():
    k = jax.random.split(jax.random.key(0), 6)
    params = {"w": jax.random.normal(k[0], (16, 32)), "qkv": jax.random.normal(k[1], (16, 4, 8)),
              "b": jax.random.normal(k[2], (32,))}
    grads = {"w": jax.random.normal(k[3], (16, 32)), "qkv": jax.random.normal(k[4], (16, 4, 8)),
             "b": jax.random.normal(k[5], (32,))}
    return params, grads


def step(opt):
    def run(params, grads):
        updates, state = opt.update(grads, opt.init(params), params)
        return updates, state

    return run


def sharded_run(mesh, opt, params, grads):
    put = lambda tree: jax.tree.map(  # noqa: E731
        lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, SPECS)
    fn = jax.jit(step(opt))
    sharded = (put(params), put(grads))
    hlo = fn.lower(*sharded).compile().as_text()
    updates, state = fn(*sharded)
    kept = all(u.sharding.spec == SPECS[name] for name, u in updates.items())
    gathers = sorted(set(re.findall(r"all-gather[^\n]*?f32\[([\d,]+)\]", hlo)))
    return updates, state, kept, gathers


def main():
    params, grads = params_and_grads()
    opt = lossjax.muon(0.1)
    expected = jax.jit(step(opt))(params, grads)[0]
    report = {}
    for name, axis_types in (("explicit", (AxisType.Explicit,) * 2),
                             ("fsdp", (AxisType.Auto,) * 2)):
        mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=axis_types)
        with jax.set_mesh(mesh):
            updates, state, kept, gathers = sharded_run(mesh, opt, params, grads)
        diff = max(float(np.max(np.abs(np.asarray(updates[k]) - np.asarray(expected[k]))))
                   for k in expected)
        mu = state.inner_states["muon"].inner_state[0].mu["w"]
        report[name] = {"max_diff_from_one_device": diff, "updates_kept_sharding": kept,
                        "mu_spec": str(mu.sharding.spec), "all_gathers": gathers}
    print(json.dumps(report))


if __name__ == "__main__":
    main()

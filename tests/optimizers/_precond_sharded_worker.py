"""Run in a child process with 8 virtual CPU devices (see test_precond_sharding.py).

SOAP, Shampoo and Kron in float64 on a 2x4 mesh with the parameters FSDP-sharded (first axis over
both mesh axes). The state is initialised by the documented rule: leaves shaped like a
parameter (moments, momenta, grafting statistics) sharded like it, the Kronecker factors
(statistics, bases, roots, Kron's Q) and scalars replicated. Three jitted steps run with
the expensive step included (SOAP's eigh then a QR refresh, Shampoo's roots, Kron's fit);
we report whether the state kept those shardings and the largest difference from the same
steps on one device. Prints one JSON line.
"""

import json
import sys

import jax
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import lossjax

FSDP = ("data", "model")
FACTOR_FIELDS = ("stats", "bases", "statistics", "preconditioners", "key")


def state_spec(state, params, params_spec):
    """A state leaf under a parameter's name, shaped like it and not a factor: that
    parameter's spec; everything else replicated."""

    def spec(path, leaf):
        names = jax.tree_util.keystr(path)
        if any(f".{field}" in names for field in FACTOR_FIELDS):
            return P()
        for name, p in params.items():
            if f"['{name}']" in names and tuple(leaf.shape) == p.shape:
                return params_spec[name]
        return P()

    return jax.tree_util.tree_map_with_path(spec, state)


def main():
    # float64: the comparison should see sharding mistakes, not float32 rounding that an
    # eigendecomposition amplifies (SOAP's basis turns fast near close eigenvalues; in
    # float32 its sharded run differs from one device's by ~4e-5 here, Shampoo's and
    # Kron's by ~1e-7)
    jax.config.update("jax_enable_x64", True)
    # Auto axes: XLA propagates the shardings through the step (explicit-axis meshes,
    # sharding in types, are not supported by these optimizers yet)
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    k = jax.random.split(jax.random.key(0), 4)
    # square weights: SOAP's first basis is the eigenbasis of one gradient's Gram
    # matrix, whose null space (any non-square weight has one) has no preferred basis, so
    # two programs differing only in rounding may pick different ones there and step
    # differently; full-rank Gram matrices make the comparison meaningful
    params = {"w1": jax.random.normal(k[0], (8, 8)) * 0.3,
              "w2": jax.random.normal(k[1], (8, 8)) * 0.3,
              "b": jax.numpy.zeros((8,))}
    params_spec = {"w1": P(FSDP, None), "w2": P(FSDP, None), "b": P(FSDP)}
    # a new batch each step: with one fixed batch SOAP's second gradient is almost the
    # first, nearly diagonal in the first gradient's own eigenbasis, and Adam's first
    # step there is the sign of entries that are rounding noise
    xs = jax.random.normal(k[2], (3, 32, 8))
    ys = jax.random.normal(k[3], (3, 32, 8))

    def loss(p, x, y):
        h = jax.numpy.tanh(x @ p["w1"] @ p["w2"] + p["b"])
        return jax.numpy.mean((h - y) ** 2)

    put = lambda tree, specs: jax.tree.map(  # noqa: E731
        lambda a, s: jax.device_put(a, NamedSharding(mesh, s)), tree, specs)
    report = {}
    for name, opt in [
            ("soap", lossjax.soap(1e-2, precondition_frequency=2)),
            ("shampoo", lossjax.shampoo(1e-2, block_size=4, graft_type="adam",
                                        start_preconditioning_step=1,
                                        best_effort_shape_interpretation=False)),
            ("kron", lossjax.kron(1e-2, preconditioner_update_probability=1.0))]:
        specs = state_spec(jax.eval_shape(opt.init, params), params, params_spec)
        shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), specs)

        def steps(p, s, opt=opt):
            def body(carry, batch):
                p, s = carry
                updates, s = opt.update(jax.grad(loss)(p, *batch), s, p)
                return (optax.apply_updates(p, updates), s), None

            return jax.lax.scan(body, (p, s), (xs, ys))[0]

        sharded_params = put(params, params_spec)
        param_shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), params_spec)
        state = jax.jit(opt.init, out_shardings=shardings)(sharded_params)
        # the rule as jit's out_shardings: the step keeps the state where it was
        compiled = jax.jit(steps, out_shardings=(param_shardings, shardings)).lower(
            sharded_params, state).compile()
        new_params, new_state = compiled(sharded_params, state)
        hlo = compiled.as_text()
        gathered = sorted({line.split("all-gather(")[0].split("=")[-1].strip()
                           for line in hlo.splitlines() if "all-gather(" in line})
        kept = jax.tree.leaves(jax.tree.map(
            lambda a, s: a.sharding.is_equivalent_to(NamedSharding(mesh, s), a.ndim),
            new_state, specs))
        params_kept = all(jax.tree.leaves(jax.tree.map(
            lambda a, s: a.sharding.is_equivalent_to(NamedSharding(mesh, s), a.ndim),
            new_params, params_spec)))
        one = jax.devices()[0]
        single = jax.jit(steps)(jax.device_put(params, one),
                                jax.device_put(opt.init(params), one))
        # parameters, not state: eigenvector signs (SOAP's bases, and the moments in
        # them) may differ between the two programs without changing any step
        diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                   for a, b in zip(jax.tree.leaves(new_params), jax.tree.leaves(single[0]),
                                   strict=True))
        moved = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                    for a, b in zip(jax.tree.leaves(new_params), jax.tree.leaves(params),
                                    strict=True))
        report[name] = {"state_kept_sharding": all(kept), "params_kept_sharding": params_kept,
                        "max_diff_from_one_device": diff, "moved": moved,
                        "all_gathers": gathered}
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())

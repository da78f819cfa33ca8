"""Child process of tests/test_sharding.py: trains lossjax.examples.sharded_lm on CPU devices.

A JAX process fixes its device count at start-up, so the 8-device runs happen here, started
with ``--xla_force_host_platform_device_count``. Prints one JSON line on stdout.

    python tests/_sharded_worker.py mesh STEPS
        8 devices in one process: runs on 1x1, 8x1 and 2x4 meshes; the example's default
        run (200 steps, one device); lossjax.multi_steps' accumulator on the 2x4 mesh.
    python tests/_sharded_worker.py multihost STEPS COORDINATOR NUM_PROCESSES PROCESS_ID
        one of several processes (4 devices each) joined by jax.distributed; a 2x4 mesh.
"""

import json
import sys

import jax
import numpy as np

from lossjax import ScaleByAdamState
from lossjax.examples import sharded_lm as lm

MESHES = {"single": (1, 1), "dp": (8, 1), "fsdp": (2, 4)}


def _adam_state(state) -> ScaleByAdamState:
    is_adam = lambda x: isinstance(x, ScaleByAdamState)  # noqa: E731
    (adam,) = [s for s in jax.tree.leaves(state, is_leaf=is_adam) if is_adam(s)]
    return adam


def _shard_shape(x: jax.Array) -> list[int]:
    return list(x.addressable_shards[0].data.shape)


def _describe(run: lm.Run, mesh) -> dict:
    adam = _adam_state(run.state)
    cfg = lm.Config()
    batch = lm.shard_batch(mesh, *lm.synthetic_batch(cfg, 0))
    hlo = run.trainer.step.lower(run.params, run.state, batch, jax.random.key(0)).compile()
    return {
        "losses": run.losses.tolist(),
        "eval_loss": run.eval_loss,
        "params": {k: np.asarray(v).tolist() for k, v in run.params.items()},
        "param_specs": {k: str(v.sharding.spec) for k, v in run.params.items()},
        "param_shards": {k: _shard_shape(v) for k, v in run.params.items()},
        "moments": {
            name: {k: {"spec": str(m[k].sharding.spec), "shard": _shard_shape(m[k]),
                       "same_sharding": m[k].sharding.is_equivalent_to(
                           run.params[k].sharding, run.params[k].ndim)}
                   for k in run.params}
            for name, m in (("mu", adam.mu), ("nu", adam.nu))
        },
        "count_spec": str(adam.count.sharding.spec),
        "hlo": hlo.as_text(),
    }


def _same_shardings(tree, params) -> dict:
    return {k: tree[k].sharding.is_equivalent_to(params[k].sharding, params[k].ndim)
            for k in params}


def multi_steps_shardings(mesh) -> dict:
    """Whether multi_steps' accumulator (eager init; after a jitted step with no
    out_shardings) and the inner Adam's moments take each parameter's sharding."""
    import lossjax

    cfg = lm.Config()
    params = lm.init_params(jax.random.key(0), cfg)
    shardings = jax.tree.map(
        lambda p: jax.sharding.NamedSharding(mesh, lm.param_spec(p.shape, mesh.shape["fsdp"])),
        params)
    params = jax.device_put(params, shardings)
    tx = lossjax.multi_steps(lossjax.adam(1e-2), 2)
    state = tx.init(params)
    at_init = _same_shardings(state.acc_grads, params)
    step = jax.jit(lambda p, s: tx.update(p, s, p))
    _, state = step(params, state)
    after_step = _same_shardings(state.acc_grads, params)
    _, state = step(params, state)  # the inner Adam ran
    adam = _adam_state(state)
    return {"init": at_init, "step": after_step,
            "mu": _same_shardings(adam.mu, params), "nu": _same_shardings(adam.nu, params),
            "acc_shard": {k: _shard_shape(v) for k, v in state.acc_grads.items()},
            "param_shard": {k: _shard_shape(v) for k, v in params.items()}}


def mesh_runs(steps: int) -> dict:
    assert jax.device_count() == 8, jax.devices()
    out = {}
    for name, (data, fsdp) in MESHES.items():
        mesh = lm.make_mesh(data, fsdp)
        out[name] = _describe(lm.train(lm.Config(), mesh, steps), mesh)
    default = lm.train(lm.Config(), lm.make_mesh(1, 1), 200, eval_every=20)
    out["default_run"] = {"eval_losses": default.eval_losses.tolist(),
                          "losses": default.losses.tolist()}
    out["multi_steps"] = multi_steps_shardings(lm.make_mesh(*MESHES["fsdp"]))
    return out


def ctc_batch() -> tuple[np.ndarray, ...]:
    """A fixed CTC batch: logits [8, 12, 5], labels [8, 4] and their lengths."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 12, 5)).astype(np.float32)
    labels = rng.integers(1, 5, size=(8, 4)).astype(np.int32)
    return logits, labels, np.full(8, 12, np.int32), np.array([4, 3, 2, 1] * 2, np.int32)


def _global_ctc_loss(mesh) -> float:
    """Eager ctc_loss on arrays sharded over both processes (not fully addressable here)."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import lossjax

    def put(x):
        sharding = NamedSharding(mesh, P(("data", "fsdp")))
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    arrays = [put(x) for x in ctc_batch()]
    assert not arrays[1].is_fully_addressable
    loss = lossjax.ctc_loss(arrays[0], arrays[1], logit_lengths=arrays[2],
                            label_lengths=arrays[3])
    return float(np.asarray(loss))


def multihost_run(steps: int, coordinator: str, num_processes: int, process_id: int) -> dict:
    # Short timeouts: if the other process dies, fail within a minute instead of five.
    jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=60,
                               heartbeat_timeout_seconds=30, shutdown_timeout_seconds=30)
    from jax.experimental import multihost_utils

    mesh = lm.make_mesh(2, 4)
    run = lm.train(lm.Config(), mesh, steps)
    params = multihost_utils.process_allgather(run.params, tiled=True)
    return {
        "process_count": jax.process_count(),
        "local_devices": jax.local_device_count(),
        # which processes own each data row of the mesh
        "row_processes": [sorted({d.process_index for d in row}) for row in mesh.devices],
        "losses": run.losses.tolist(),
        "params": {k: np.asarray(v).tolist() for k, v in params.items()},
        "global_ctc_loss": _global_ctc_loss(mesh),
    }


if __name__ == "__main__":
    mode, steps = sys.argv[1], int(sys.argv[2])
    if mode == "mesh":
        result = mesh_runs(steps)
    else:
        result = multihost_run(steps, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    if jax.process_index() == 0:
        print(json.dumps(result))

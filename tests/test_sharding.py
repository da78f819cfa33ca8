"""lossjax training on 8 virtual CPU devices: data parallel and data + FSDP sharding.

A JAX process fixes its device count at start-up, so the work runs in a child process with
``--xla_force_host_platform_device_count=8`` (this file is also the child's script). The
child trains ``lossjax.examples.sharded_lm`` for 30 steps on one device, on an 8x1
(data-parallel) mesh and on a 2x4 (data x fsdp) mesh, and reports losses, parameters,
shardings and the collectives in the compiled step as JSON.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

STEPS = 30
COLLECTIVE = re.compile(
    r"= (.*?) (all-gather|all-reduce|reduce-scatter|all-to-all|collective-permute)(?:-start)?\(")


def _child() -> None:
    import jax

    from lossjax import ScaleByAdamState
    from lossjax.examples import sharded_lm as lm

    assert jax.device_count() == 8
    cfg = lm.Config()
    out = {}
    for name, (data, fsdp) in {"single": (1, 1), "dp": (8, 1), "fsdp": (2, 4)}.items():
        mesh = lm.make_mesh(data, fsdp)
        losses, params, state, step = lm.train(cfg, mesh, STEPS)
        adam = [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, ScaleByAdamState))
                if isinstance(s, ScaleByAdamState)][0]
        same_sharding = all(
            moment[k].sharding.is_equivalent_to(params[k].sharding, params[k].ndim)
            for moment in (adam.mu, adam.nu) for k in params)
        contexts, targets = lm.synthetic_batches(cfg, 1)
        batch = jax.device_put((contexts[0], targets[0]),
                               jax.sharding.NamedSharding(mesh, lm.P(("data", "fsdp"))))
        hlo = step.lower(params, state, batch, jax.random.key(0)).compile().as_text()
        out[name] = {
            "losses": losses.tolist(),
            "params": {k: np.asarray(v).tolist() for k, v in params.items()},
            "param_specs": {k: str(v.sharding.spec) for k, v in params.items()},
            "state_sharded_like_params": same_sharding,
            "collectives": [[m.group(2), m.group(1)] for m in COLLECTIVE.finditer(hlo)],
        }
    print(json.dumps(out))


@pytest.fixture(scope="module")
def runs():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                          timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["dp", "fsdp"])
def test_same_losses_and_parameters_as_one_device(runs, name):
    single, sharded = runs["single"], runs[name]
    assert single["losses"][-1] < single["losses"][0] - 0.3  # it trains
    np.testing.assert_allclose(sharded["losses"], single["losses"], rtol=2e-5, atol=2e-5)
    for key, value in single["params"].items():
        np.testing.assert_allclose(sharded["params"][key], value, rtol=1e-4, atol=1e-5)


def test_parameters_are_sharded_and_state_follows_them(runs):
    assert not any("fsdp" in spec for spec in runs["dp"]["param_specs"].values())
    assert all("fsdp" in spec for spec in runs["fsdp"]["param_specs"].values())
    for name in ("single", "dp", "fsdp"):
        assert runs[name]["state_sharded_like_params"], name


def _full_param_shapes(run):
    return {"f32[" + ",".join(str(n) for n in np.shape(v)) + "]" for v in run["params"].values()}


def test_data_parallel_step_has_no_all_gather_and_one_gradient_all_reduce(runs):
    kinds = [kind for kind, _ in runs["dp"]["collectives"]]
    assert "all-gather" not in kinds and "all-to-all" not in kinds
    assert 1 <= kinds.count("all-reduce") <= 2


def test_fsdp_step_gathers_each_parameter_at_most_once(runs):
    run = runs["fsdp"]
    full = _full_param_shapes(run)
    gathered = [shape.split("{")[0] for kind, shape in run["collectives"] if kind == "all-gather"]
    full_gathers = [s for s in gathered if s in full]
    # FSDP needs each sharded parameter whole once for the forward/backward; a second gather
    # of the same shape would be the optimizer state or a replicated gradient copy.
    assert len(full_gathers) == len(set(full_gathers)) <= len(run["params"])
    # the global-norm clip is an all-reduce of scalars, not a gather of the gradients
    scalar_reduces = [
        shape for kind, shape in run["collectives"]
        if kind == "all-reduce" and set(re.findall(r"f32\[[^\]]*\]", shape)) == {"f32[]"}
    ]
    assert scalar_reduces


if __name__ == "__main__":
    _child()

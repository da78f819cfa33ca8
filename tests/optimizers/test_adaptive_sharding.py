"""States of the adaptive optimizers shard like their parameters (8 virtual CPU devices in
a child process: a JAX process fixes its device count at start-up)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "optimizers", "_adaptive_sharded_worker.py")


def test_states_shard_like_params():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(
                   [ROOT, os.environ.get("PYTHONPATH", "")]))
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, WORKER], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, r in result.items():
        assert r["checked"] >= 3, (name, r)   # every parameter-shaped state leaf was looked at
        assert r["all_same"], (name, r)
        assert r["params_same"], (name, r)

"""States of the adaptive optimizers shard like their parameters (8 virtual CPU devices in
a child process: a JAX process fixes its device count at start-up)."""

import json
import os

from tests._xla import run_on_cpu_devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "optimizers", "_adaptive_sharded_worker.py")


def test_states_shard_like_params():
    proc = run_on_cpu_devices(WORKER, devices=8)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, r in result.items():
        assert r["checked"] >= 3, (name, r)   # every parameter-shaped state leaf was looked at
        assert r["all_same"], (name, r)
        assert r["params_same"], (name, r)

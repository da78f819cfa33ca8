"""Lion, LAMB and Adafactor states on 8 virtual CPU devices (a 2x4 mesh, in a child
process: a JAX process fixes its device count at start-up).

The state shards like the parameters and stays so after a jitted step; Adafactor's row
statistic of a ``P("data", "model")`` matrix is sharded on ``"data"``, its column
statistic on ``"model"``; the compiled step gathers no moment (no all-gather at all: the
trust ratios and factored means need only all-reduces); the numbers equal one device's.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "optimizers", "_wave2_sharded_worker.py")


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, WORKER], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["lion", "lamb", "adafactor"])
def test_state_shards_like_params_without_gathering_a_moment(report, name):
    result = report[name]
    assert result["state_kept_sharding"]
    assert result["all_gathers"] == []
    assert result["max_diff_from_one_device"] < 1e-5


def test_adafactor_statistics_are_sharded_on_the_matching_axis(report):
    assert report["adafactor"]["v_row"] == "P('data',)"
    assert report["adafactor"]["v_col"] == "P('model',)"

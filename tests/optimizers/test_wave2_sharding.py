"""Lion, LAMB and Adafactor states on 8 virtual CPU devices (a 2x4 mesh, in a child
process: a JAX process fixes its device count at start-up).

The state shards like the parameters and stays so after a jitted step; Adafactor's row
statistic of a ``P("data", "model")`` matrix is sharded on ``"data"``, its column
statistic on ``"model"``; the compiled step gathers no moment (no all-gather at all: the
trust ratios and factored means need only all-reduces); the numbers equal one device's.
"""

import json
import os

import pytest

from tests._xla import run_on_cpu_devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "optimizers", "_wave2_sharded_worker.py")


@pytest.fixture(scope="module")
def report():
    proc = run_on_cpu_devices(WORKER, devices=8)
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

"""SOAP, Shampoo and Kron on 8 virtual CPU devices (a 2x4 mesh, one child process for
all three): with FSDP-sharded parameters and the state sharded by the documented rule
(parameter-shaped leaves like their parameter, Kronecker factors replicated), three steps
that include the expensive step keep those shardings and equal one device's to 1e-5
(in float64; see the worker for why)."""

import json
import os

import pytest

from tests._xla import run_on_cpu_devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "optimizers", "_precond_sharded_worker.py")


@pytest.fixture(scope="module")
def report():
    proc = run_on_cpu_devices(WORKER, devices=8)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["soap", "shampoo", "kron"])
def test_sharded_state_and_result_equal_one_device(report, name):
    result = report[name]
    assert result["state_kept_sharding"] and result["params_kept_sharding"]
    assert result["max_diff_from_one_device"] < 1e-5
    assert result["moved"] > 1e-3

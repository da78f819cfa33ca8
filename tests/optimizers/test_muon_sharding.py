"""Muon on 8 virtual CPU devices (a 2x4 mesh, in a child process: a JAX process fixes its
device count at start-up): on a mesh with explicit axes (``jax.make_mesh(...,
axis_types=Explicit)``) and on FSDP-sharded matrices the step equals one device's. Each
Muon matrix is gathered whole for its Newton–Schulz iteration (the all-gathers of the
compiled step are the matrices' full shapes); the updates of the explicit mesh keep the
parameters' sharding."""

import json
import os

import pytest

from tests._xla import run_on_cpu_devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "optimizers", "_muon_sharded_worker.py")


@pytest.fixture(scope="module")
def report():
    proc = run_on_cpu_devices(WORKER, devices=8)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mesh", ["explicit", "fsdp"])
def test_sharded_step_equals_one_device(report, mesh):
    assert report[mesh]["max_diff_from_one_device"] < 1e-6
    assert report[mesh]["mu_spec"] == "P('data', 'model')"


def test_explicit_mesh_gathers_each_matrix_and_keeps_the_sharding(report):
    assert report["explicit"]["updates_kept_sharding"]
    assert {"16,32", "16,4,8"} <= set(report["explicit"]["all_gathers"])

"""The training benchmark's harness runs end to end, and its steps-to-target is right."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

from bench.train import harness, report
from bench.train.optimizers import BY_NAME, OptimizerSpec, select
from bench.train.workloads import Workload, char_split


def _toy_workload() -> Workload:
    """Least squares on 16 fixed points in 3-D; batches of 4 rows."""
    x = jax.random.normal(jax.random.key(7), (16, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5])

    def loss(params, rows):
        return jnp.mean((x[rows] @ params["w"] - y[rows]) ** 2)

    return Workload(
        name="toy", init=lambda key: {"w": 0.1 * jax.random.normal(key, (3,))}, loss=loss,
        batch=lambda key: jax.random.choice(key, 16, (4,), replace=False),
        val_loss=lambda params: loss(params, jnp.arange(16)), steps=6, eval_every=3,
        warmup=1, description="toy least squares", lr_scale=10.0)


def test_harness_runs_two_optimizers_end_to_end():
    workload = _toy_workload()
    lines = []
    entries = harness.run_workload(workload, [BY_NAME["adamw"], BY_NAME["lion"]], seeds=2,
                                   grid_factors=(0.5, 1.0), timing_repeats=1,
                                   baseline=BY_NAME["adamw"], log=lines.append)
    assert list(entries) == ["adamw", "lion"]
    for entry in entries.values():
        assert entry["error"] is None
        assert [r["lr"] for r in entry["grid"]] == pytest.approx(
            [10 * entry["center_lr"] * f for f in (0.5, 1.0)])
        best = min(entry["grid"], key=lambda r: r["final"])
        assert entry["best_lr"] == best["lr"]
        assert [r["seed"] for r in entry["runs"]] == [0, 1]
        assert all(r["steps"] == [0, 3, 6] and len(r["val"]) == 3 for r in entry["runs"])
        assert entry["ms_per_step"] > 0 and entry["adamw_ms_per_step"] > 0
    # Two float32 moments of the 3 parameters (24 bytes) plus int32 step counts; Lion one.
    assert entries["adamw"]["state_bytes"] % 4 == 0 and entries["adamw"]["state_bytes"] > 24
    assert entries["adamw"]["state_bytes"] - entries["lion"]["state_bytes"] >= 12
    assert entries["adamw"]["param_bytes"] == 12
    rows = {r["name"]: r for r in report.summarize({"name": "toy", "optimizers": entries})}
    assert rows["adamw"]["steps_ratio"] is not None
    adamw_finals = [r["final"] for r in entries["adamw"]["runs"]]
    assert rows["adamw"]["final_mean"] == pytest.approx(sum(adamw_finals) / 2)
    table = report.markdown_table(list(rows.values()))
    assert "| AdamW |" in table and "| Lion |" in table
    assert any("lion lr=" in line for line in lines)


def test_steps_to_target_on_a_hand_made_curve():
    steps = [0, 10, 20, 30, 40]
    values = [4.0, 3.0, 2.0, 1.5, 1.0]
    assert report.steps_to_target(steps, values, 2.5) == pytest.approx(15.0)
    assert report.steps_to_target(steps, values, 2.0) == pytest.approx(20.0)
    assert report.steps_to_target(steps, values, 1.25) == pytest.approx(35.0)
    assert report.steps_to_target(steps, values, 0.9) is None
    assert report.steps_to_target(steps, values, 5.0) == 0.0
    # The first crossing counts, not a later one after the curve rose again.
    assert report.steps_to_target([0, 10, 20, 30], [3.0, 1.0, 2.0, 0.5], 1.5) == 7.5


def test_state_bytes_counts_every_leaf_and_key_data():
    tree = {"m": jnp.zeros((3, 2)), "count": jnp.zeros([], jnp.int32),
            "key": jax.random.key(0), "half": jax.ShapeDtypeStruct((4,), jnp.bfloat16)}
    assert harness.state_bytes(tree) == 24 + 4 + 8 + 8


def test_mean_curve_turns_infinite_after_a_diverged_seed():
    runs = [{"steps": [0, 5, 10], "val": [3.0, 2.0, 1.0]}, {"steps": [0, 5], "val": [3.0, 4.0]}]
    steps, values = report.mean_curve(runs)
    assert steps == [0, 5, 10] and values[:2] == [3.0, 3.0] and math.isinf(values[2])


def test_missing_optimizers_are_reported_not_fatal():
    ghost = OptimizerSpec("ghost", "Ghost", ("no_such_optimizer",), lambda s: None, 1.0)
    assert not ghost.available()
    specs, missing = select(["lion"])
    assert [s.name for s in specs] == ["adamw", "lion"] and missing == []
    with pytest.raises(ValueError, match="unknown optimizers"):
        select(["ghost"])


def test_char_split_holds_out_the_last_tenth():
    train, val, vocab = char_split("abcdefghij" * 10)
    assert (len(train), len(val), vocab) == (90, 10, 10)
    assert val.tolist() == list(range(10))


def test_per_workload_centre_moves_the_grid_and_time_all_times_everyone():
    workload = _toy_workload()
    lion = BY_NAME["lion"]
    moved = OptimizerSpec("lion", lion.label, lion.requires, lion.build, lion.center_lr,
                          centers=(("toy", 7e-3), ("other", 1.0)))
    assert moved.center("toy") == 7e-3 and moved.center("charlm") == lion.center_lr
    entries = harness.run_workload(workload, [BY_NAME["adamw"], moved], seeds=1,
                                   grid_factors=(1.0, 2.0), timing_repeats=1,
                                   baseline=BY_NAME["adamw"], log=lambda line: None)
    assert [r["lr"] for r in entries["lion"]["grid"]] == pytest.approx([0.07, 0.14])
    assert entries["lion"]["center_lr"] == 7e-3
    ms = harness.time_all(workload, [BY_NAME["adamw"], moved], repeats=1, log=lambda _: None)
    assert sorted(ms) == ["adamw", "lion"] and all(v > 0 for v in ms.values())

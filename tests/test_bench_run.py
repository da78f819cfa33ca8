"""The benchmark runner aggregates sub-benchmarks and survives missing or failing ones."""

from __future__ import annotations

import json
import sys
import types

import pytest

from bench import run


@pytest.fixture
def fake_benchmarks(monkeypatch):
    good = types.ModuleType("bench.bench_losses")

    def good_main(quick=False):
        print("own table")
        return [{"name": "mse", "lossjax_ms": 0.5, "optax_ms": 1.0, "ratio": 0.5,
                 "quick": quick}]

    good.main = good_main
    bad = types.ModuleType("bench.bench_ctc")

    def bad_main(quick=False):
        raise RuntimeError("boom")

    bad.main = bad_main
    monkeypatch.setitem(sys.modules, "bench.bench_losses", good)
    monkeypatch.setitem(sys.modules, "bench.bench_ctc", bad)
    monkeypatch.setattr(run, "BENCHMARKS", ("losses", "ctc", "does_not_exist"))


def test_runner_reports_ok_failed_and_missing(fake_benchmarks, tmp_path, capsys):
    status = run.main(["--quick", "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1
    assert "| losses | mse | 0.5 | 1 | 0.5 | quick=True |" in out
    assert "| ctc | **failed**: RuntimeError: boom |" in out
    assert "| does_not_exist | **missing**: no module bench.bench_does_not_exist |" in out
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["quick"] is True
    assert record["benchmarks"]["losses"]["rows"][0]["ratio"] == 0.5
    assert [record["benchmarks"][n]["status"] for n in ("losses", "ctc", "does_not_exist")] == [
        "ok", "failed", "missing"]
    assert (tmp_path / "losses.log").read_text() == "own table\n"
    assert "RuntimeError: boom" in (tmp_path / "ctc.log").read_text()
    assert (tmp_path / "ratios.png").read_bytes()[:4] == b"\x89PNG"


def test_runner_exits_zero_when_all_ran(fake_benchmarks, tmp_path, capsys):
    assert run.main(["--only", "losses", "--output-dir", str(tmp_path)]) == 0
    assert "quick=False" in capsys.readouterr().out

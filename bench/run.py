"""Run every lossjax benchmark and report them together.

    python -m bench             # full run
    python -m bench --quick     # small shapes, few repeats (a smoke run)
    python bench/run.py --only losses ctc

Each benchmark is a module ``bench.bench_<name>`` with ``main(quick: bool) -> list[dict]``;
each row has at least ``name`` and usually ``lossjax_ms``, ``optax_ms`` and ``ratio``
(lossjax / optax, below 1 is faster). The runner shows a progress bar over the benchmarks
(each one's own printout goes to ``bench/results/<name>.log``), prints one Markdown table
of all rows, and writes ``bench/results/results.json`` and ``bench/results/ratios.png``.
A benchmark that is missing or raises is reported as such; the others still run, and the
exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import io
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

if __package__ in (None, ""):
    # `python bench/run.py`: make `bench` importable as a package from the repository root.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BENCHMARKS = ("losses", "zoo", "optimizers", "ctc", "linear_ce", "tasks", "rl", "wrappers",
              "line_search", "adaptive", "muon", "contrib", "many_leaves")
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
_MAIN_COLUMNS = ("name", "lossjax_ms", "optax_ms", "ratio")


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    import jax
    import optax

    device = jax.devices()[0]
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
    }


def run_one(name: str, quick: bool, log_dir: str) -> dict[str, Any]:
    """Import and run ``bench.bench_<name>``; never raises.

    Returns ``{"status": "ok" | "missing" | "failed", "seconds", "rows", "error"}``; the
    benchmark's printout is saved to ``<log_dir>/<name>.log``.
    """
    module_name = f"bench.bench_{name}"
    start = time.perf_counter()
    captured = io.StringIO()
    result: dict[str, Any] = {"status": "ok", "rows": [], "error": None}
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        result.update(status="missing", error=f"no module {module_name}")
    except Exception as error:  # noqa: BLE001 - a broken benchmark must not stop the others
        result.update(status="failed", error=f"import: {type(error).__name__}: {error}")
        captured.write(traceback.format_exc())
    else:
        try:
            with contextlib.redirect_stdout(captured):
                rows = module.main(quick=quick)
            result["rows"] = [dict(row) for row in rows]
        except Exception as error:  # noqa: BLE001
            result.update(status="failed", error=f"{type(error).__name__}: {error}")
            captured.write(traceback.format_exc())
    result["seconds"] = time.perf_counter() - start
    with open(os.path.join(log_dir, f"{name}.log"), "w") as log:
        log.write(captured.getvalue())
    return result


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One table of every row: benchmark, case, lossjax ms, optax ms, ratio, other columns."""
    header = ["benchmark", "case", "lossjax ms", "optax ms", "ratio", "other"]
    rows = []
    for bench_name, result in results.items():
        if result["status"] != "ok":
            rows.append([bench_name, f"**{result['status']}**: {result['error']}", "", "", "", ""])
            continue
        for row in result["rows"]:
            extra = ", ".join(f"{k}={_cell(v)}" for k, v in row.items() if k not in _MAIN_COLUMNS)
            rows.append([bench_name, _cell(row.get("name")), _cell(row.get("lossjax_ms")),
                         _cell(row.get("optax_ms")), _cell(row.get("ratio")), extra])
    return header, rows


def print_markdown(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def plot_ratios(results: dict[str, dict[str, Any]], path: str) -> str | None:
    """Horizontal bars of lossjax/optax time ratios (log scale, 1 = parity); None if none."""
    bars = [
        (f"{bench_name}: {row.get('name')}", float(row["ratio"]))
        for bench_name, result in results.items()
        for row in result["rows"]
        if isinstance(row.get("ratio"), (int, float)) and math.isfinite(row["ratio"])
        and row["ratio"] > 0
    ]
    if not bars:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, ratios = zip(*bars, strict=True)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(bars) + 1.2))
    colors = ["tab:green" if r <= 1 else "tab:red" for r in ratios]
    ax.barh(range(len(bars)), ratios, color=colors)
    ax.set_yticks(range(len(bars)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("lossjax time / optax time (log scale; < 1: lossjax faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; return 0 if every one ran, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small shapes and few repeats: checks everything runs")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME",
                        help=f"run only these benchmarks (of: {', '.join(BENCHMARKS)})")
    parser.add_argument("--output-dir", default=RESULTS_DIR,
                        help="where the JSON, the PNG and the logs go (default: bench/results)")
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm

    os.makedirs(args.output_dir, exist_ok=True)
    names = args.only or BENCHMARKS
    info = machine()
    print(f"machine: {info['processor']}, {info['cpu_count']} CPUs, {info['backend']} "
          f"({info['device']}); jax {info['jax']}, optax {info['optax']}")
    results: dict[str, dict[str, Any]] = {}
    with tqdm(names, desc="benchmarks", unit="bench", file=sys.stdout) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            results[name] = run_one(name, args.quick, args.output_dir)
            result = results[name]
            note = "" if result["status"] == "ok" else f": {result['error']}"
            bar.write(f"  {name}: {result['status']} in {result['seconds']:.1f}s, "
                      f"{len(result['rows'])} rows{note}")
    header, rows = table(results)
    print_markdown(f"lossjax vs optax ({'quick' if args.quick else 'full'} run, "
                   f"{info['backend']}: {info['device']})", header, rows)
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": info,
        "benchmarks": results,
    }
    json_path = os.path.join(args.output_dir, "results.json")
    with open(json_path, "w") as f:
        json.dump(record, f, indent=2, default=str)
    png_path = plot_ratios(results, os.path.join(args.output_dir, "ratios.png"))
    print(f"\nresults: {json_path}")
    print(f"chart:   {png_path}" if png_path else "chart:   (no ratios to plot)")
    print(f"logs:    {args.output_dir}/<benchmark>.log")
    failed = [name for name, r in results.items() if r["status"] != "ok"]
    if failed:
        print(f"not completed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

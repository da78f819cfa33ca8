"""Command line of the training benchmark (``python -m bench.train --help``).

Results go to ``bench/results/train.json`` (every run's validation curve, the grid, the
timings and state sizes), saved after each optimizer, and the leaderboard to
``bench/results/train.md`` and stdout. ``--resume`` keeps what that file already holds and
trains only the (workload, optimizer) pairs it lacks, plus those named by ``--rerun``
(AdamW is timed again beside them, so time ratios always come from one process).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.train import harness, report
from bench.train.optimizers import BY_NAME, select
from bench.train.workloads import WORKLOADS

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
QUICK_DIVISOR = 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"1/{QUICK_DIVISOR} of the step budget, 2 seeds, 2 timing repeats")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=None)
    parser.add_argument("--optimizers", nargs="+", choices=list(BY_NAME), default=None,
                        help="contenders (AdamW is always added); default: all")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (2 with --quick)")
    parser.add_argument("--grid-factors", type=float, nargs="+", default=harness.GRID_FACTORS,
                        help="learning-rate grid as multiples of each optimizer's centre")
    parser.add_argument("--timing-repeats", type=int, default=None)
    parser.add_argument("--output", default=os.path.join(RESULTS, "train.json"))
    parser.add_argument("--resume", action="store_true",
                        help="keep the results already in --output; train only what is missing")
    parser.add_argument("--rerun", nargs="+", choices=list(BY_NAME), default=(),
                        help="with --resume: train these again even if present")
    parser.add_argument("--report-only", action="store_true",
                        help="only print the table (and --plot) from --output")
    parser.add_argument("--include", nargs="+", default=(),
                        help="with --report-only: add the workloads and optimizers of these "
                             "result files that --output lacks (runs split over processes)")
    parser.add_argument("--timing-only", action="store_true",
                        help="no training: time every optimizer's compiled chunk in one "
                             "round-robin with AdamW (--timing-repeats, default 11) and "
                             "print the ratios; results to <output>_timing.json")
    parser.add_argument("--plot", nargs="?", const=os.path.join(RESULTS, "train.png"),
                        default=None, help="write the curves to this PNG")
    return parser


def _machine() -> dict[str, str]:
    from bench.run import machine

    return machine()


def _save(path: str, results: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(results, f, default=float)
    os.replace(temporary, path)


def _load(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark as ``args`` say and return (and save) the results."""
    seeds = args.seeds or (2 if args.quick else 3)
    repeats = args.timing_repeats or (2 if args.quick else 5)
    specs, missing = select(args.optimizers)
    print(f"optimizers: {', '.join(s.name for s in specs)}; missing from this lossjax: "
          f"{', '.join(missing) or 'none'}", flush=True)
    results: dict[str, Any] = {"workloads": {}}
    if args.resume and os.path.exists(args.output):
        results = _load(args.output)
    results.update(machine=_machine(), quick=args.quick, seeds=seeds,
                   grid_factors=list(args.grid_factors), missing=missing,
                   date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"))
    for name in args.workloads or list(WORKLOADS):
        workload = WORKLOADS[name]()
        if args.quick:
            workload = workload.scaled(workload.steps // QUICK_DIVISOR,
                                       workload.eval_every // 2)
        stored = results["workloads"].setdefault(name, {"optimizers": {}})
        if (stored.get("steps"), stored.get("eval_every")) != (workload.steps,
                                                               workload.eval_every):
            stored["optimizers"] = {}
        stored.update(name=name, description=workload.description, steps=workload.steps,
                      eval_every=workload.eval_every, warmup=workload.warmup)
        todo = [s for s in specs if s.name not in stored["optimizers"]
                or stored["optimizers"][s.name].get("error") or s.name in args.rerun]

        def keep(optimizer: str, entry: dict[str, Any], stored=stored) -> None:
            stored["optimizers"][optimizer] = entry
            _save(args.output, results)

        began = time.perf_counter()
        entries = harness.run_workload(workload, todo, seeds=seeds,
                                       grid_factors=args.grid_factors,
                                       timing_repeats=repeats, baseline=BY_NAME["adamw"],
                                       log=lambda line: print(line, flush=True),
                                       on_entry=keep)
        stored["optimizers"].update(entries)
        order = [s.name for s in specs] + [n for n in stored["optimizers"]
                                           if n not in {s.name for s in specs}]
        stored["optimizers"] = {n: stored["optimizers"][n] for n in order
                                if n in stored["optimizers"]}
        stored.setdefault("seconds", {})[datetime.datetime.now().isoformat()] = (
            time.perf_counter() - began)
        _save(args.output, results)
    return results


def timing_only(args: argparse.Namespace) -> str:
    """Every optimizer's step time in one round-robin per workload, as a Markdown table."""
    specs, _ = select(args.optimizers)
    repeats = args.timing_repeats or 11
    lines, results = [], {"machine": _machine(), "repeats": repeats, "workloads": {}}
    for name in args.workloads or list(WORKLOADS):
        workload = WORKLOADS[name]()
        print(f"[{name}] timing {len(specs)} optimizers in alternation", flush=True)
        ms = harness.time_all(workload, specs, repeats=repeats,
                              log=lambda line: print(line, flush=True))
        results["workloads"][name] = ms
        lines += [f"### {name}: ms per step, all optimizers in one round-robin "
                  f"(median of {repeats})", "", "| optimizer | ms/step | x AdamW time |",
                  "|---|---|---|"]
        lines += [f"| {BY_NAME[n].label} | {v:.2f} | {v / ms['adamw']:.2f} |"
                  for n, v in sorted(ms.items(), key=lambda item: item[1])]
        lines.append("")
    _save(os.path.splitext(args.output)[0] + "_timing.json", results)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    began = time.perf_counter()
    if args.timing_only:
        print(timing_only(args))
        print(f"wall time: {time.perf_counter() - began:.0f} s", file=sys.stderr)
        return 0
    results = _load(args.output) if args.report_only else train(args)
    for path in args.include:
        other = _load(path)
        for name, workload in other["workloads"].items():
            mine = results["workloads"].setdefault(name, workload)
            if mine is not workload:
                for optimizer, entry in workload["optimizers"].items():
                    mine["optimizers"].setdefault(optimizer, entry)
        results["missing"] = sorted(set(results.get("missing") or [])
                                    & set(other.get("missing") or []))
    table = report.markdown(results)
    print(table)
    if not args.report_only:
        with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
            f.write(table)
    if args.plot:
        print(f"curves: {report.plot(results, args.plot)}")
    print(f"wall time: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    failed = [n for w in results["workloads"].values() for n, e in w["optimizers"].items()
              if e.get("error")]
    return 1 if failed else 0

"""Leaderboard tables and curves from the training benchmark's JSON results.

Everything relative to AdamW is computed here, from the stored validation curves, so a
result file extended later (``--resume``) is summarised the same way.

- Target: AdamW's final validation loss, averaged over its seeds.
- Steps to target: the first step at which an optimizer's seed-averaged validation curve
  reaches the target, interpolated linearly between the two evaluations around the
  crossing; "not reached" when it never does. The ratio divides by AdamW's own steps to
  that target on its averaged curve (the budget, unless its curve dips below its final
  value earlier).
- Final validation loss: mean ± standard deviation over seeds (a diverged seed makes it
  +inf).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np


def steps_to_target(steps: Sequence[float], values: Sequence[float], target: float,
                    ) -> float | None:
    """First step at which the piecewise-linear curve ``(steps[i], values[i])`` is at or
    below ``target``; ``None`` if it never is.

    >>> steps_to_target([0, 10, 20], [3.0, 2.0, 1.0], 1.5)
    15.0
    """
    for i, value in enumerate(values):
        if value <= target:
            if i == 0:
                return float(steps[0])
            before = values[i - 1]
            fraction = (before - target) / (before - value)
            return float(steps[i - 1] + fraction * (steps[i] - steps[i - 1]))
    return None


def mean_curve(runs: Sequence[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """Seed-averaged validation curve; a run that diverged contributes +inf after it stopped
    (so the average is +inf from there)."""
    steps = max((r["steps"] for r in runs), key=len)
    padded = [list(r["val"]) + [math.inf] * (len(steps) - len(r["val"])) for r in runs]
    return list(steps), [float(np.mean(column)) for column in zip(*padded, strict=True)]


def _finals(entry: dict[str, Any]) -> list[float]:
    return [r["final"] for r in entry["runs"]]


def summarize(workload: dict[str, Any], baseline: str = "adamw") -> list[dict[str, Any]]:
    """One row per optimizer of a workload's results (see the module doc for the columns)."""
    optimizers = workload["optimizers"]
    base = optimizers.get(baseline)
    if base is None or base.get("error"):
        raise ValueError(f"workload {workload.get('name')!r} has no {baseline} results")
    target = statistics.fmean(_finals(base))
    base_steps = steps_to_target(*mean_curve(base["runs"]), target)
    base_in_run = _in_run_ms(base)
    paired = [e["adamw_ms_per_step"] for e in optimizers.values()
              if not e.get("error") and e.get("adamw_ms_per_step")]
    rows = []
    for name, entry in optimizers.items():
        row: dict[str, Any] = {"name": name, "label": entry["label"], "error": entry["error"]}
        if entry["error"]:
            rows.append(row)
            continue
        finals = _finals(entry)
        steps = steps_to_target(*mean_curve(entry["runs"]), target)
        seed_steps = [steps_to_target(r["steps"], r["val"], target) for r in entry["runs"]]
        row.update(
            best_lr=entry["best_lr"], edge=entry.get("best_at_grid_edge", False),
            final_mean=statistics.fmean(finals),
            final_sd=statistics.stdev(finals) if len(finals) > 1 else 0.0,
            steps=steps, steps_ratio=None if steps is None or not base_steps
            else steps / base_steps,
            seeds_reaching=sum(s is not None for s in seed_steps), seeds=len(finals),
            ms=entry.get("ms_per_step"), ms_ratio=_ratio(entry.get("ms_per_step"),
                                                         entry.get("adamw_ms_per_step")),
            in_run_ratio=_ratio(_in_run_ms(entry), base_in_run),
            state_bytes=entry["state_bytes"],
            state_ratio=entry["state_bytes"] / entry["param_bytes"],
        )
        if name == baseline and row["ms"] is None and paired:
            # AdamW timed beside every other optimizer: its median over those pairings.
            row.update(ms=statistics.median(paired), ms_ratio=1.0)
        rows.append(row)
    return rows


def _in_run_ms(entry: dict[str, Any]) -> float | None:
    """Median over seeds of the training runs' own time per step (ms)."""
    if entry.get("in_run_ms_per_step"):
        return entry["in_run_ms_per_step"]
    runs = entry.get("runs") or []
    return 1e3 * statistics.median(r["seconds_per_step"] for r in runs) if runs else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The leaderboard of one workload as a Markdown table, best final loss first."""
    header = ("| optimizer | lr (best of grid) | final val loss (mean ± sd) | steps to AdamW's "
              "final | x AdamW steps | ms/step | x AdamW time | x AdamW time in run | "
              "state bytes | state / params |")
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    ok = sorted((r for r in rows if not r["error"]), key=lambda r: r["final_mean"])
    for r in ok:
        steps = ("not reached" if r["steps"] is None else f"{r['steps']:.0f}")
        steps += f" ({r['seeds_reaching']}/{r['seeds']} seeds)"
        lr = f"{r['best_lr']:.3g}" + (" (edge)" if r["edge"] else "")
        lines.append(
            f"| {r['label']} | {lr} | {r['final_mean']:.4f} ± {r['final_sd']:.4f} | {steps} | "
            f"{_fmt(r['steps_ratio'], '.2f')} | {_fmt(r['ms'], '.2f')} | "
            f"{_fmt(r['ms_ratio'], '.2f')} | {_fmt(r['in_run_ratio'], '.2f')} | "
            f"{r['state_bytes']:,} | {r['state_ratio']:.2f} |")
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['label']} | **failed**: {r['error'].splitlines()[0][:150]} |"
                         + " |" * 8)
    return "\n".join(lines)


GOALS = {"soap": (0.8, 2.0), "kron": (0.8, 2.0), "muon": (0.8, None)}
"""Char-LM goals: (steps ratio, amortised step-time ratio) to AdamW; ``None``: no goal."""


def _verdict(value: float | None, goal: float, missing: str = "not reached: missed") -> str:
    if value is None:
        return missing
    return f"{value:.2f}x ({'met' if value <= goal else 'missed'})"


def goals(results: dict[str, Any], workload: str = "charlm") -> list[str]:
    """One line per optimizer with a char-LM goal: its steps and time ratios to AdamW."""
    if workload not in results["workloads"]:
        return []
    rows = {r["name"]: r for r in summarize(results["workloads"][workload])}
    lines = []
    for name, (steps_goal, time_goal) in GOALS.items():
        row = rows.get(name)
        if row is None:
            lines.append(f"- {name}: not in this run")
            continue
        if row["error"]:
            lines.append(f"- {row['label']}: failed ({row['error'].splitlines()[0][:100]})")
            continue
        line = (f"- {row['label']}: steps to AdamW's final loss "
                f"{_verdict(row['steps_ratio'], steps_goal)} against <= {steps_goal}x")
        if time_goal is not None:
            line += (f"; step time {_verdict(row['ms_ratio'], time_goal, 'not timed')} in "
                     f"alternation, {_verdict(row['in_run_ratio'], time_goal, 'not timed')} "
                     f"in the runs, "
                     f"against <= {time_goal}x")
        lines.append(line)
    return lines


def markdown(results: dict[str, Any]) -> str:
    """Every workload's table with its description, and the optimizers that were missing."""
    parts = []
    for name, workload in results["workloads"].items():
        parts.append(f"### {name}\n\n{workload['description']}; {workload['steps']} steps, "
                     f"validation every {workload['eval_every']}.\n")
        parts.append(markdown_table(summarize(workload)) + "\n")
    if "charlm" in results["workloads"]:
        parts.append("Goals on the char-LM:\n\n" + "\n".join(goals(results)) + "\n")
    missing = results.get("missing") or []
    parts.append("Missing from this lossjax: " + (", ".join(missing) if missing else "none")
                 + ".\n")
    return "\n".join(parts)


def plot(results: dict[str, Any], path: str) -> str:
    """Seed-averaged validation curves of every optimizer, one panel per workload (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = results["workloads"]
    fig, axes = plt.subplots(1, len(workloads), figsize=(5.2 * len(workloads), 4.2),
                             squeeze=False)
    names = list(dict.fromkeys(n for w in workloads.values() for n in w["optimizers"]))
    colors = {n: f"C{i % 10}" for i, n in enumerate(names)}
    styles = {n: "-" if i < 10 else "--" for i, n in enumerate(names)}
    for ax, (wname, workload) in zip(axes[0], workloads.items(), strict=True):
        target = statistics.fmean(_finals(workload["optimizers"]["adamw"]))
        finite = []
        for name, entry in workload["optimizers"].items():
            if entry["error"]:
                continue
            steps, values = mean_curve(entry["runs"])
            ax.plot(steps[1:], values[1:], color=colors[name], linestyle=styles[name],
                    linewidth=2.2 if name == "adamw" else 1.2, label=entry["label"])
            finite += [v for v in values[1:] if math.isfinite(v)]
        ax.axhline(target, color="black", linewidth=0.7, linestyle=":")
        if finite:
            low = min(finite)
            ax.set_ylim(low - 0.05 * abs(low), float(np.quantile(finite, 0.9)))
        ax.set(title=wname, xlabel="step", ylabel="validation loss (mean of seeds)")
        ax.grid(alpha=0.3)
    labels: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    fig.legend(list(labels.values()), list(labels), loc="lower center", fontsize=8,
               ncol=min(6, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0.06 * math.ceil(len(labels) / 6), 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

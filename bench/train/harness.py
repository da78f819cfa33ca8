"""Train every contender on a workload: learning-rate grid, seeds, timing, state bytes.

Protocol (the same for every optimizer, AdamW included):

1. One optimizer object and one compiled training chunk per (workload, optimizer):
   ``eval_every`` steps in a ``lax.scan``, batches drawn inside from ``(seed, step)``, the
   peak learning rate a traced argument (so the grid reuses the compiled chunk). The
   schedule is linear warm-up over 10% of the budget, then cosine decay to 10% of the peak
   at the last step (schedule-free AdamW: warm-up, then constant; its averaging replaces
   the decay).
2. Learning-rate grid: ``center · lr_scale · factor`` (the optimizer's centre, the
   workload's scale, the same factors for everyone), run with seed 0; the point with the
   lowest final validation loss wins (a run whose loss turns non-finite counts as
   diverged, final loss +inf).
3. Seeds 1 .. S-1 at the chosen rate (seed 0 is the grid run). Seeds change the
   initialisation and the batches; for one seed every optimizer sees the same batches.
4. Step time: right after an optimizer trains, its compiled chunk (from its last state) and
   AdamW's are timed in alternation in one process (``interleaved_medians``), so the ratio
   to AdamW shares the machine's load. The in-run time (all chunks of every seed, compile
   excluded) is recorded too.
5. State bytes: ``jax.eval_shape(optimizer.init, params)``, summed over leaves.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bench._timing import interleaved_medians
from bench.train.optimizers import OptimizerSpec
from bench.train.workloads import Workload
from lossjax import schedules

GRID_FACTORS = (1 / 3, 1.0, 3.0)
"""Learning-rate grid: these multiples of each optimizer's ``center_lr``."""

_INIT_KEY, _DATA_KEY = 0, 1


def lr_factor(kind: str, warmup: int, steps: int) -> Callable[[Any], Any]:
    """The schedule shape (peak 1): ``"cosine"`` or ``"constant"`` after the warm-up."""
    if kind == "cosine":
        return schedules.warmup_cosine_decay(0.0, 1.0, warmup, steps, end_value=0.1)
    if kind == "constant":
        return schedules.warmup_constant(0.0, 1.0, warmup)
    raise ValueError(f"schedule must be 'cosine' or 'constant', got {kind!r}")


def state_bytes(tree: Any) -> int:
    """Bytes of the arrays (or ShapeDtypeStructs) in ``tree``; a PRNG key counts its data."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            total += math.prod(leaf.shape) * 8
        else:
            total += math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
    return total


@dataclasses.dataclass
class Compiled:
    """A workload's training functions for one optimizer, compiled once."""

    init: Callable[[Any], tuple[Any, Any]]
    chunk: Callable[..., tuple[Any, Any, jax.Array]]
    evaluate: Callable[[Any, Any], jax.Array]
    compile_seconds: float
    state_bytes: int
    param_bytes: int


class _Peak:
    """The peak learning rate, read by the schedule while a chunk is being traced.

    Each optimizer is built once, outside ``jit`` (some constructors need concrete
    values), with a schedule that multiplies the schedule's shape by ``value``; the
    compiled chunk sets ``value`` to its traced learning-rate argument before it calls
    ``update``, so one compiled chunk serves every point of the grid.
    """

    def __init__(self) -> None:
        self.value: Any = 1.0

    def schedule(self, factor: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda count: self.value * factor(count)


def compile_for(workload: Workload, spec: OptimizerSpec) -> Compiled:
    """jit-compile ``init(seed)``, ``chunk(params, state, lr, seed, start)`` and
    ``evaluate(params, state)`` for ``spec`` on ``workload``."""
    peak = _Peak()
    opt = spec.build(peak.schedule(lr_factor(spec.schedule, workload.warmup, workload.steps)))

    def init(seed):
        params = workload.init(jax.random.fold_in(jax.random.key(_INIT_KEY), seed))
        return params, opt.init(params)

    def chunk(params, state, lr, seed, start):
        peak.value = lr
        data_key = jax.random.fold_in(jax.random.key(_DATA_KEY), seed)

        def body(carry, step):
            params, state = carry
            batch = workload.batch(jax.random.fold_in(data_key, step))
            loss, grads = jax.value_and_grad(workload.loss)(params, batch)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        steps = start + jnp.arange(workload.eval_every, dtype=jnp.int32)
        try:
            (params, state), losses = jax.lax.scan(body, (params, state), steps)
        finally:
            peak.value = 1.0
        return params, state, losses

    def evaluate(params, state):
        point = spec.eval_params(state, params) if spec.eval_params else params
        return workload.val_loss(point)

    start_time = time.perf_counter()
    seed = jnp.int32(0)
    init_c = jax.jit(init).lower(seed).compile()
    params, state = jax.eval_shape(init, seed)
    chunk_c = jax.jit(chunk).lower(params, state, jnp.float32(1.0), seed, jnp.int32(0)).compile()
    evaluate_c = jax.jit(evaluate).lower(params, state).compile()
    return Compiled(init_c, chunk_c, evaluate_c, time.perf_counter() - start_time,
                    state_bytes(state), state_bytes(params))


def train_run(workload: Workload, compiled: Compiled, lr: float, seed: int,
              ) -> tuple[dict[str, Any], Any]:
    """One run: ``({"lr", "seed", "steps", "val", "train", "diverged", "seconds_per_step"},
    (params, state))``. ``val[i]`` is the validation loss after ``steps[i]`` steps (from 0);
    a run stops at the first non-finite training or validation loss (``diverged``)."""
    params, state = compiled.init(jnp.int32(seed))
    steps, val, train = [0], [float(compiled.evaluate(params, state))], []
    seconds, diverged = 0.0, False
    for start in range(0, workload.steps, workload.eval_every):
        began = time.perf_counter()
        params, state, losses = compiled.chunk(params, state, jnp.float32(lr),
                                               jnp.int32(seed), jnp.int32(start))
        losses = np.asarray(losses)
        seconds += time.perf_counter() - began
        value = float(compiled.evaluate(params, state))
        if not (np.all(np.isfinite(losses)) and math.isfinite(value)):
            diverged = True
            break
        steps.append(start + workload.eval_every)
        val.append(value)
        train.append(float(losses.mean()))
    run = {"lr": lr, "seed": seed, "steps": steps, "val": val, "train": train,
           "diverged": diverged, "final": math.inf if diverged else val[-1],
           "seconds_per_step": seconds / max(1, steps[-1])}
    return run, (params, state)


def run_optimizer(workload: Workload, spec: OptimizerSpec, *, seeds: int,
                  grid_factors: Sequence[float], log: Callable[[str], None],
                  ) -> tuple[dict[str, Any], tuple[Compiled, Any, float] | None]:
    """Grid on seed 0, then the other seeds at the best rate. Never raises: an optimizer
    that fails to build, compile or run is recorded with its error and traceback.

    Returns the JSON-able entry and, for the timing phase, ``(compiled, last (params,
    state), best lr)`` (``None`` after an error)."""
    entry: dict[str, Any] = {"label": spec.label, "center_lr": spec.center(workload.name),
                             "schedule": spec.schedule, "error": None}
    try:
        compiled = compile_for(workload, spec)
        entry.update(compile_seconds=compiled.compile_seconds,
                     state_bytes=compiled.state_bytes, param_bytes=compiled.param_bytes)
        grid, last = [], {}
        for factor in grid_factors:
            lr = spec.center(workload.name) * workload.lr_scale * factor
            run, last[lr] = train_run(workload, compiled, lr, 0)
            grid.append(run)
            log(f"  {spec.name} lr={lr:.3g} seed 0: final val {run['final']:.4f}"
                f"{' (diverged)' if run['diverged'] else ''}, "
                f"{1e3 * run['seconds_per_step']:.1f} ms/step")
        best = min(grid, key=lambda r: r["final"])
        runs = [best]
        for seed in range(1, seeds):
            run, _ = train_run(workload, compiled, best["lr"], seed)
            runs.append(run)
            log(f"  {spec.name} lr={best['lr']:.3g} seed {seed}: final val {run['final']:.4f}")
        entry.update(grid=[{k: r[k] for k in ("lr", "final", "diverged")} for r in grid],
                     best_lr=best["lr"], runs=runs,
                     best_at_grid_edge=best["lr"] in (grid[0]["lr"], grid[-1]["lr"])
                     and len(grid) > 1)
        return entry, (compiled, last[best["lr"]], best["lr"])
    except Exception as error:  # noqa: BLE001 - one broken optimizer must not stop the rest
        entry["error"] = f"{type(error).__name__}: {error}"
        entry["traceback"] = traceback.format_exc()
        log(f"  {spec.name} FAILED: {entry['error']}")
        return entry, None


def time_chunks(workload: Workload, timed: dict[str, tuple[Compiled, Any, float]], *,
                repeats: int) -> dict[str, float]:
    """Milliseconds per step of each optimizer's compiled chunk from its last state, all
    timed in alternation (median of ``repeats``)."""
    names = list(timed)
    calls = [(timed[n][0].chunk, (*timed[n][1], jnp.float32(timed[n][2]), jnp.int32(0),
                                  jnp.int32(workload.steps))) for n in names]
    medians = interleaved_medians(calls, repeats=repeats, warmup=1)
    return {n: 1e3 * m / workload.eval_every for n, m in zip(names, medians, strict=True)}


def time_all(workload: Workload, specs: Sequence[OptimizerSpec], *, repeats: int,
             log: Callable[[str], None] = print) -> dict[str, float]:
    """Milliseconds per step of every spec's compiled chunk, all timed in alternation in
    one round-robin (no training): each starts from its state after one chunk from the
    initialisation (seed 0, its grid centre), so a chunk holds the same number of
    expensive steps (SOAP's refresh, Shampoo's roots) as one in the middle of training."""
    timed: dict[str, tuple[Compiled, Any, float]] = {}
    for spec in specs:
        compiled = compile_for(workload, spec)
        lr = spec.center(workload.name) * workload.lr_scale
        params, state = compiled.init(jnp.int32(0))
        params, state, _ = compiled.chunk(params, state, jnp.float32(lr), jnp.int32(0),
                                          jnp.int32(0))
        timed[spec.name] = (compiled, (params, state), lr)
        log(f"  {spec.name} compiled")
    return time_chunks(workload, timed, repeats=repeats)


def run_workload(workload: Workload, specs: Sequence[OptimizerSpec], *, seeds: int = 3,
                 grid_factors: Sequence[float] = GRID_FACTORS, timing_repeats: int = 5,
                 baseline: OptimizerSpec | None = None,
                 log: Callable[[str], None] = print,
                 on_entry: Callable[[str, dict[str, Any]], None] | None = None,
                 ) -> dict[str, dict[str, Any]]:
    """Train every spec on ``workload``; ``{name: entry}`` with each entry's timing.

    ``baseline`` (AdamW's spec; default the first spec) is timed in alternation with each
    other optimizer right after that one trains, even when it is not among ``specs`` (a
    resumed run), so every time ratio comes from one process and a run stopped early
    keeps the ratios of what finished. ``on_entry(name, entry)`` is called after each
    optimizer (e.g. to save progress).
    """
    baseline = baseline or specs[0]
    entries: dict[str, dict[str, Any]] = {}
    base: tuple[Compiled, Any, float] | None = None
    if baseline.name not in {s.name for s in specs}:
        compiled = compile_for(workload, baseline)
        base = (compiled, compiled.init(jnp.int32(0)),
                baseline.center(workload.name) * workload.lr_scale)
    for spec in specs:
        log(f"[{workload.name}] {spec.label}")
        entry, timing = run_optimizer(workload, spec, seeds=seeds, grid_factors=grid_factors,
                                      log=log)
        entries[spec.name] = entry
        if spec.name == baseline.name:
            base = timing
        if timing is not None and base is not None:
            pair = {baseline.name: base, spec.name: timing}
            ms = time_chunks(workload, pair, repeats=timing_repeats)
            entry.update(ms_per_step=ms[spec.name], adamw_ms_per_step=ms[baseline.name],
                         in_run_ms_per_step=1e3 * statistics.median(
                             r["seconds_per_step"] for r in entry["runs"]))
            log(f"  {spec.name} {ms[spec.name]:.2f} ms/step, {baseline.name} "
                f"{ms[baseline.name]:.2f} (in alternation)")
        if on_entry is not None:
            on_entry(spec.name, entry)
    return entries

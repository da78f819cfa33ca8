"""Timing and memory helpers shared by every benchmark in bench/.

Method: compile once, warm up, then time ``repeats`` calls each ended by
``block_until_ready``; report the median. Memory comes from XLA's compiled memory analysis.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def median_seconds(fn: Callable[..., Any], *args: Any, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn(*args)`` (blocked until ready) over ``repeats`` calls."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]], *, repeats: int = 20, warmup: int = 3
) -> list[float]:
    """Median wall time of each ``fn(*args)``, timed in alternation, each round starting
    one call later (A, B, C, then B, C, A, then C, A, B, ...).

    Alternating spreads any background load evenly over the contenders, so their ratio
    stays meaningful on a shared machine; rotating the order spreads the cost of coming
    first in a round (measured: the same compiled program read 4% slower in first place
    than in second, every round).
    """
    for fn, args in calls:
        for _ in range(warmup):
            jax.block_until_ready(fn(*args))
    times: list[list[float]] = [[] for _ in calls]
    for round_ in range(repeats):
        for k in range(len(calls)):
            i = (round_ + k) % len(calls)
            fn, args = calls[i]
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def compile_seconds(fn: Callable[..., Any], *args: Any) -> float:
    """Wall time of trace + lower + compile of ``jax.jit(fn)`` (a fresh jit each call)."""
    start = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - start


def temp_bytes(fn: Callable[..., Any], *args: Any) -> int:
    """XLA's temporary buffer size for ``jax.jit(fn)(*args)``, in bytes."""
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print a Markdown table (so it pastes straight into bench/README.md)."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        cells = [f"{c:.4g}" if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(cells) + " |")

"""CTC loss: lossjax.ctc_loss against optax.ctc_loss, value_and_grad, same arrays, one process.

    python -m bench.bench_ctc            # the two issue shapes
    python -m bench.bench_ctc --quick    # small shapes, few repeats

The two are timed in alternation (medians), so background load hits both alike. Both
losses are summed over the batch (optax returns per-sequence values); the gradient is
taken with respect to the logits. Sequence lengths vary across the batch (between 70% and
100% of the maximum), labels are drawn from the non-blank classes, and the two libraries get
the same padding expressed in their own conventions (lengths vs 0/1 paddings).
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from bench._timing import interleaved_medians, print_table, temp_bytes

SHAPES = ((16, 200, 32, 50), (64, 400, 64, 100))  # (B, T, K, L)
QUICK_SHAPES = ((4, 50, 8, 12),)


def make_inputs(batch: int, time: int, classes: int, max_label: int, seed: int = 0):
    """Random float32 logits, labels in [1, K) and lengths in [0.7, 1] of the maximum."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, time, classes)).astype(np.float32)
    labels = rng.integers(1, classes, size=(batch, max_label)).astype(np.int32)
    logit_lengths = rng.integers(int(0.7 * time), time + 1, size=batch).astype(np.int32)
    label_lengths = rng.integers(int(0.7 * max_label), max_label + 1,
                                 size=batch).astype(np.int32)
    return logits, labels, logit_lengths, label_lengths


def lossjax_fn(logits, labels, logit_lengths, label_lengths):
    return lossjax.ctc_loss(logits, labels, logit_lengths=logit_lengths,
                            label_lengths=label_lengths, reduction="sum")


def optax_fn(logits, labels, logit_paddings, label_paddings):
    return jnp.sum(optax.ctc_loss(logits, logit_paddings, labels, label_paddings))


def paddings(lengths: np.ndarray, size: int) -> np.ndarray:
    """optax's convention: 1.0 at padded positions."""
    return (np.arange(size)[None, :] >= lengths[:, None]).astype(np.float32)


def main(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 3 if quick else 25
    rows = []
    for batch, time, classes, max_label in QUICK_SHAPES if quick else SHAPES:
        logits, labels, logit_lengths, label_lengths = make_inputs(batch, time, classes,
                                                                   max_label)
        ours_args = tuple(map(jnp.asarray, (logits, labels, logit_lengths, label_lengths)))
        optax_args = tuple(map(jnp.asarray, (logits, labels, paddings(logit_lengths, time),
                                             paddings(label_lengths, max_label))))
        ours = jax.jit(jax.value_and_grad(lossjax_fn))
        theirs = jax.jit(jax.value_and_grad(optax_fn))
        value_ours, _ = ours(*ours_args)
        value_theirs, _ = theirs(*optax_args)
        if not np.isclose(value_ours, value_theirs, rtol=1e-4):
            raise AssertionError(f"losses differ: lossjax {value_ours} vs optax {value_theirs}")
        ms_ours, ms_theirs = (1e3 * t for t in interleaved_medians(
            [(ours, ours_args), (theirs, optax_args)], repeats=repeats))
        rows.append({
            "name": f"value_and_grad B={batch} T={time} K={classes} L={max_label}",
            "lossjax_ms": ms_ours,
            "optax_ms": ms_theirs,
            "ratio": ms_ours / ms_theirs,
            "lossjax_temp_mib": temp_bytes(jax.value_and_grad(lossjax_fn), *ours_args) / 2**20,
            "optax_temp_mib": temp_bytes(jax.value_and_grad(optax_fn), *optax_args) / 2**20,
        })
    print_table(
        "CTC value_and_grad (sum over batch), float32",
        ["case", "lossjax ms", "optax ms", "ratio", "lossjax temp MiB", "optax temp MiB"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"], r["lossjax_temp_mib"],
          r["optax_temp_mib"]] for r in rows],
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    main(quick=parser.parse_args().quick)

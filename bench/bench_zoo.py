"""The loss zoo against optax: value_and_grad time and XLA temp memory, float32, one process.

    python -m bench.bench_zoo [--quick]

Every case optax also has: both sides are jitted ``value_and_grad`` of the mean loss with
respect to the first argument, checked equal first, then timed in alternation
(``interleaved_medians``). ``ratio`` = lossjax / optax (below 1 is faster); ``mem ratio``
compares ``memory_analysis().temp_size_in_bytes``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from bench._timing import interleaved_medians, print_table, temp_bytes


def _case(name: str, ours: Callable, theirs: Callable, args: tuple, repeats: int,
          rtol: float = 1e-4) -> dict[str, Any]:
    a, b = jax.jit(jax.value_and_grad(ours)), jax.jit(jax.value_and_grad(theirs))
    (va, ga), (vb, gb) = a(*args), b(*args)
    np.testing.assert_allclose(va, vb, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(ga, gb, rtol=rtol, atol=1e-6)
    ms_a, ms_b = (1e3 * s for s in interleaved_medians([(a, args), (b, args)], repeats=repeats))
    mem_a = temp_bytes(jax.value_and_grad(ours), *args)
    mem_b = temp_bytes(jax.value_and_grad(theirs), *args)
    return {"name": name, "lossjax_ms": ms_a, "optax_ms": ms_b, "ratio": ms_a / ms_b,
            "lossjax_temp_MiB": mem_a / 2**20, "optax_temp_MiB": mem_b / 2**20,
            "mem_ratio": mem_a / max(mem_b, 1)}


def _normal(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def main(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 5 if quick else 20
    n, d = (1024, 64) if quick else (8192, 256)
    p, t, neg = _normal(0, (n, d)), _normal(1, (n, d)), _normal(2, (n, d))
    k = 128 if quick else 1024
    logits = 3 * _normal(3, (n, k))
    labels = jax.random.randint(jax.random.key(4), (n,), 0, k)
    one_hot = jax.nn.one_hot(labels, k)
    b = 256 if quick else 1024
    emb = _normal(5, (b, 128))
    groups = jnp.arange(b) // 2  # two views per image: lossjax's mean equals optax's
    seg_shape = (4, 32, 32, 4) if quick else (16, 128, 128, 4)
    seg_logits = _normal(6, seg_shape)
    seg_targets = jax.nn.one_hot(jax.random.randint(jax.random.key(7), seg_shape[:-1], 0, 4), 4)
    lists = _normal(8, (n, 64))
    relevance = jax.random.randint(jax.random.key(9), (n, 64), 0, 4).astype(jnp.float32)
    measures = jax.random.uniform(jax.random.key(10), (n, k), minval=0.1, maxval=2.0)

    rows = [
        _case(f"cosine_distance [{n}, {d}]",
              lambda x, y: lossjax.cosine_distance(x, y, eps=1e-4),
              lambda x, y: jnp.mean(optax.losses.cosine_distance(x, y, epsilon=1e-8)),
              (p, t), repeats),
        _case(f"triplet_margin [{n}, {d}]",
              lambda a, pos, ng: lossjax.triplet_margin(a, pos, ng),
              lambda a, pos, ng: jnp.mean(optax.losses.triplet_margin_loss(a, pos, ng)),
              (p, t, neg), repeats),
        _case(f"ntxent [{b}, 128], two views", lambda e: lossjax.ntxent(e, groups),
              lambda e: optax.losses.ntxent(e, groups), (emb,), repeats),
        _case(f"poly1_cross_entropy [{n}, {k}]", lambda x: lossjax.poly1_cross_entropy(x, one_hot),
              lambda x: jnp.mean(optax.losses.poly_loss_cross_entropy(x, one_hot)), (logits,),
              repeats),
        _case(f"sparsemax_loss [{n}, {k}]", lambda x: lossjax.sparsemax_loss(x, labels),
              lambda x: jnp.mean(optax.losses.multiclass_sparsemax_loss(x, labels)), (logits,),
              repeats),
        _case(f"generalized_kl_divergence [{n}, {k}]",
              lambda x: lossjax.generalized_kl_divergence(x, measures),
              lambda x: jnp.mean(optax.losses.generalized_kl_divergence(x, measures)),
              (jnp.log(measures[::-1]),), repeats),
        _case(f"ranking_softmax [{n}, 64]", lambda s: lossjax.ranking_softmax(s, relevance),
              lambda s: optax.losses.ranking_softmax_loss(s, relevance), (lists,), repeats),
        _case(f"tversky/dice from logits {list(seg_shape)}",
              lambda x: lossjax.tversky(x, seg_targets, from_logits=True),
              lambda x: jnp.mean(optax.losses.dice_loss(x, seg_targets)), (seg_logits,),
              repeats),
    ]
    print_table(
        "Loss zoo, value_and_grad, float32, CPU (ratio = lossjax / optax)",
        ["case", "lossjax ms", "optax ms", "ratio", "temp MiB lossjax", "temp MiB optax",
         "mem ratio"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"], r["lossjax_temp_MiB"],
          r["optax_temp_MiB"], r["mem_ratio"]] for r in rows],
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    main(parser.parse_args().quick)

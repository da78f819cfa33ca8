"""Task losses: blocked CLIP/SigLIP against their dense form, box IoU losses against plain jnp.

Contrastive: ``jax.value_and_grad`` w.r.t. both embeddings, ``logit_scale`` (and SigLIP's
``logit_bias``) under ``jit``, float32, dense (``block_size=None``: the ``[B, B]`` logits
held whole, as a straightforward implementation does) against ``block_size=K`` (tiles,
a ``custom_vjp``); compiled temp memory from XLA's memory analysis, time as the median of
interleaved calls. Boxes: ``value_and_grad`` of the mean loss over ``N`` box pairs against
a straightforward ``jnp`` transcription of torchvision's formula.

Run from the repository root::

    python -m bench.bench_tasks             # B=8192, D=256, K=1024; N=2**20 boxes
    python -m bench.bench_tasks --quick     # B=2048, K=256; N=2**16 boxes
    python -m bench.bench_tasks --headline  # B=65536: compiled memory of both, no run
    python -m bench.bench_tasks --headline --run   # ... and one timed blocked step
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp

import lossjax
from bench._timing import interleaved_medians, print_table

MIB = 2**20


def _embeddings(b: int, d: int):
    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (b, d), jnp.float32)
    e = a + jax.random.normal(kb, (b, d), jnp.float32)
    return (a / jnp.linalg.norm(a, axis=1, keepdims=True),
            e / jnp.linalg.norm(e, axis=1, keepdims=True))


def _contrastive_step(name: str, block: int | None):
    if name == "clip":
        def loss(a, b, s, t):
            return lossjax.clip_loss(a, b, logit_scale=s, block_size=block)
        return jax.jit(jax.value_and_grad(loss, (0, 1, 2)))

    def loss(a, b, s, t):
        return lossjax.siglip_loss(a, b, logit_scale=s, logit_bias=t, block_size=block)
    return jax.jit(jax.value_and_grad(loss, (0, 1, 2, 3)))


def _memory(step, *args) -> tuple[float, float]:
    m = step.lower(*args).compile().memory_analysis()
    return m.temp_size_in_bytes / MIB, (m.temp_size_in_bytes + m.argument_size_in_bytes
                                        + m.output_size_in_bytes) / MIB


def contrastive(b: int, d: int, block: int, repeats: int) -> list[dict]:
    a, e = _embeddings(b, d)
    args = (a, e, jnp.float32(10.0), jnp.float32(-10.0))
    rows = []
    for name in ("siglip", "clip"):
        dense, blocked = _contrastive_step(name, None), _contrastive_step(name, block)
        ref_value, ref_grads = dense(*args)
        value, grads = blocked(*args)
        err = max([abs(float(value - ref_value)) / abs(float(ref_value))]
                  + [float(jnp.max(jnp.abs(g - r)) / jnp.max(jnp.abs(r)))
                     for g, r in zip(grads, ref_grads, strict=True)])
        dense_s, blocked_s = interleaved_medians([(dense, args), (blocked, args)],
                                                 repeats=repeats, warmup=1)
        dense_mib, _ = _memory(dense, *args)
        blocked_mib, _ = _memory(blocked, *args)
        rows.append({
            "name": f"{name}_loss B={b} D={d} block={block}",
            "lossjax_ms": 1e3 * blocked_s, "dense_ms": 1e3 * dense_s,
            "ratio": blocked_s / dense_s, "blocked_temp_mib": blocked_mib,
            "dense_temp_mib": dense_mib, "temp_ratio": blocked_mib / dense_mib,
            "max_rel_err": err,
        })
    print_table(
        f"value_and_grad, float32, B={b} D={d}: block_size={block} vs dense",
        ["loss", "blocked ms", "dense ms", "time ratio", "blocked temp MiB",
         "dense temp MiB", "temp ratio", "max rel err"],
        [[r["name"].split(" ")[0], r["lossjax_ms"], r["dense_ms"], r["ratio"],
          r["blocked_temp_mib"], r["dense_temp_mib"], r["temp_ratio"], r["max_rel_err"]]
         for r in rows])
    return rows


# ----- boxes ------------------------------------------------------------------------------

def _plain_overlap(p, t, eps):
    """torchvision's ``_loss_inter_union`` and enclosing box, transcribed to jnp as is."""
    x1, y1, x2, y2 = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    x1g, y1g, x2g, y2g = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
    xi1, yi1 = jnp.maximum(x1, x1g), jnp.maximum(y1, y1g)
    xi2, yi2 = jnp.minimum(x2, x2g), jnp.minimum(y2, y2g)
    inter = jnp.where((yi2 > yi1) & (xi2 > xi1), (xi2 - xi1) * (yi2 - yi1), 0.0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    enclosing = (jnp.minimum(x1, x1g), jnp.minimum(y1, y1g),
                 jnp.maximum(x2, x2g), jnp.maximum(y2, y2g))
    return inter / (union + eps), union, enclosing


def _plain_giou(p, t, eps=1e-7):
    """torchvision's generalized_box_iou_loss in plain jnp (mean)."""
    iou, union, (xc1, yc1, xc2, yc2) = _plain_overlap(p, t, eps)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    return jnp.mean(1 - (iou - (area_c - union) / (area_c + eps)))


def _plain_ciou(p, t, eps=1e-7):
    """torchvision's complete_box_iou_loss in plain jnp (mean)."""
    iou, _, (xc1, yc1, xc2, yc2) = _plain_overlap(p, t, eps)
    diag = (xc2 - xc1) ** 2 + (yc2 - yc1) ** 2 + eps
    dist = (((p[:, 0] + p[:, 2]) - (t[:, 0] + t[:, 2])) ** 2
            + ((p[:, 1] + p[:, 3]) - (t[:, 1] + t[:, 3])) ** 2) / 4
    v = (4 / math.pi**2) * (jnp.arctan((t[:, 2] - t[:, 0]) / (t[:, 3] - t[:, 1]))
                            - jnp.arctan((p[:, 2] - p[:, 0]) / (p[:, 3] - p[:, 1]))) ** 2
    alpha = jax.lax.stop_gradient(v / (1 - iou + v + eps))
    return jnp.mean(1 - iou + dist / diag + alpha * v)


def boxes(n: int, repeats: int) -> list[dict]:
    kc, ks = jax.random.split(jax.random.PRNGKey(1))
    corner = jax.random.uniform(kc, (2, n, 2), jnp.float32, 0, 4)
    size = jax.random.uniform(ks, (2, n, 2), jnp.float32, 0.5, 3)
    p, t = (jnp.concatenate([corner[i], corner[i] + size[i]], -1) for i in range(2))
    rows = []
    for name, ours, plain in [("giou_loss", lossjax.giou_loss, _plain_giou),
                              ("ciou_loss", lossjax.ciou_loss, _plain_ciou)]:
        ours_step = jax.jit(jax.value_and_grad(ours))
        plain_step = jax.jit(jax.value_and_grad(plain))
        err = abs(float(ours_step(p, t)[0] - plain_step(p, t)[0]))
        ours_s, plain_s = interleaved_medians([(ours_step, (p, t)), (plain_step, (p, t))],
                                              repeats=repeats)
        rows.append({"name": f"{name} N={n}", "lossjax_ms": 1e3 * ours_s,
                     "plain_ms": 1e3 * plain_s, "ratio": ours_s / plain_s, "abs_err": err})
    print_table(f"value_and_grad of the mean box loss, float32, N={n} pairs",
                ["loss", "lossjax ms", "plain jnp ms", "ratio", "abs err"],
                [[r["name"].split(" ")[0], r["lossjax_ms"], r["plain_ms"], r["ratio"],
                  r["abs_err"]] for r in rows])
    return rows


def main(quick: bool = False) -> list[dict]:
    if quick:
        return contrastive(2048, 256, 256, repeats=3) + boxes(2**16, repeats=10)
    return contrastive(8192, 256, 1024, repeats=5) + boxes(2**20, repeats=10)


def headline(b: int = 65536, d: int = 256, block: int = 1024, run: bool = False) -> dict:
    """Compiled memory of dense and blocked SigLIP at a batch dense cannot hold in 24 GiB."""
    shapes = (jax.ShapeDtypeStruct((b, d), jnp.float32),) * 2 + (
        jax.ShapeDtypeStruct((), jnp.float32),) * 2
    dense_temp, dense_total = _memory(_contrastive_step("siglip", None), *shapes)
    blocked_temp, blocked_total = _memory(_contrastive_step("siglip", block), *shapes)
    row = {"name": f"siglip_loss headline B={b} D={d} block={block}",
           "dense_temp_mib": dense_temp, "dense_total_mib": dense_total,
           "blocked_temp_mib": blocked_temp, "blocked_total_mib": blocked_total}
    table = [["dense (compiled only)", dense_temp, dense_total, "-"]]
    if run:
        a, e = _embeddings(b, d)
        step = _contrastive_step("siglip", block)
        args = (a, e, jnp.float32(10.0), jnp.float32(-10.0))
        jax.block_until_ready(step(*args))
        start = time.perf_counter()
        jax.block_until_ready(step(*args))
        row["lossjax_ms"] = 1e3 * (time.perf_counter() - start)
    table.append([f"block_size={block}", blocked_temp, blocked_total,
                  row.get("lossjax_ms", "not run")])
    print_table(f"headline: SigLIP value_and_grad, float32, B={b} D={d}",
                ["", "compiled temp MiB", "temp + args + outputs MiB", "step ms"], table)
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument("--headline", action="store_true", help="B=65536 compiled memory")
    parser.add_argument("--run", action="store_true", help="with --headline: time one step")
    parser.add_argument("--batch", type=int, default=65536, help="with --headline: B")
    args = parser.parse_args()
    if args.headline:
        headline(b=args.batch, run=args.run)
    else:
        main(quick=args.quick)

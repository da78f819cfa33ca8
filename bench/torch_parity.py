"""Cross-check lossjax against PyTorch's losses, value and gradient, in float64.

    pip install torch==2.13.0   # not a lossjax dependency; CI does not install it
    python -m bench.torch_parity

Not a benchmark and not a test (CI has no torch): a one-command check that the losses
lossjax documents as "PyTorch's X" give PyTorch's numbers. For each pair it prints the
largest relative difference of the value and of the gradient with respect to the first
input; exit status 1 when any exceeds its tolerance. Known convention differences are
checked as such (triplet_margin's eps placement gives O(eps) differences).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import lossjax  # noqa: E402

torch.set_default_dtype(torch.float64)
RNG = np.random.default_rng(0)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def compare(name: str, ours: Callable, theirs: Callable, *inputs, tol: float = 1e-10) -> bool:
    """``ours(*jnp inputs)`` vs ``theirs(*torch inputs)``; gradient w.r.t. the first input."""
    value, grad = jax.value_and_grad(ours)(*[jnp.asarray(x) for x in inputs])
    tensors = [torch.tensor(x) for x in inputs]
    tensors[0].requires_grad_(True)
    expected = theirs(*tensors)
    expected.backward()
    dv = _rel(value, expected.detach().numpy())
    dg = _rel(grad, tensors[0].grad.numpy())
    ok = dv <= tol and dg <= tol
    print(f"| {name} | {dv:.1e} | {dg:.1e} | {'ok' if ok else 'DIFFERS'} |")
    return ok


def main() -> int:
    n, k = 8, 5
    p, t = RNG.normal(size=(n, k)), RNG.normal(size=(n, k))
    logits = 2 * RNG.normal(size=(n, k))
    labels = RNG.integers(0, k, size=n)
    labels_ignored = labels.copy()
    labels_ignored[2] = -100
    class_w = RNG.uniform(0.5, 2.0, size=k)
    probs01 = RNG.uniform(0.05, 0.95, size=(n, k))
    targets01 = (RNG.random((n, k)) > 0.5).astype(np.float64)
    signs = np.where(targets01 > 0, 1.0, -1.0)
    counts = RNG.poisson(3.0, size=(n, k)).astype(np.float64)
    rates = RNG.uniform(0.1, 4.0, size=(n, k))
    var = RNG.uniform(0.0, 2.0, size=(n, k))
    var[0, :2] = 0.0  # clamped
    soft = RNG.dirichlet(np.ones(k), size=n)
    a, pos, neg = (RNG.normal(size=(n, k)) for _ in range(3))
    pair_signs = RNG.choice([-1.0, 1.0], size=n)
    multi_hot = (RNG.random((n, k)) > 0.6).astype(np.float64)
    multi_hot[:, 0] = 1.0
    # PyTorch's MultiLabelMarginLoss takes the positive class indices, -1 terminated.
    index_lists = -np.ones((n, k), np.int64)
    for i, row in enumerate(multi_hot):
        idx = np.flatnonzero(row)
        index_lists[i, : len(idx)] = idx

    print("| lossjax | value rel. diff | grad rel. diff | |")
    print("|---|---|---|---|")
    checks = [
        compare("mse", lossjax.mse, F.mse_loss, p, t),
        compare("mae", lossjax.mae, F.l1_loss, p, t),
        compare("huber(delta=0.7)", lambda x, y: lossjax.huber(x, y, delta=0.7),
                lambda x, y: F.huber_loss(x, y, delta=0.7), p, t),
        compare("smooth_l1(beta=0.7)", lambda x, y: lossjax.smooth_l1(x, y, beta=0.7),
                lambda x, y: F.smooth_l1_loss(x, y, beta=0.7), p, t),
        compare("softmax_cross_entropy_with_integer_labels (smoothing, weights, ignore)",
                lambda x: lossjax.softmax_cross_entropy_with_integer_labels(
                    x, jnp.asarray(labels_ignored), label_smoothing=0.1,
                    class_weights=class_w, ignore_index=-100),
                lambda x: F.cross_entropy(x, torch.tensor(labels_ignored), weight=torch.tensor(
                    class_w), ignore_index=-100, label_smoothing=0.1), logits),
        compare("softmax_cross_entropy (soft labels)",
                lambda x: lossjax.softmax_cross_entropy(x, jnp.asarray(soft)),
                lambda x: F.cross_entropy(x, torch.tensor(soft)), logits),
        compare("softmax_cross_entropy_with_integer_labels(log_softmax) = nll_loss",
                lambda x: lossjax.softmax_cross_entropy_with_integer_labels(
                    jax.nn.log_softmax(x), jnp.asarray(labels)),
                lambda x: F.nll_loss(F.log_softmax(x, -1), torch.tensor(labels)), logits),
        compare("sigmoid_binary_cross_entropy", lossjax.sigmoid_binary_cross_entropy,
                F.binary_cross_entropy_with_logits, logits, targets01),
        compare("binary_cross_entropy", lossjax.binary_cross_entropy, F.binary_cross_entropy,
                probs01, targets01),
        compare("kl_divergence", lambda x: lossjax.kl_divergence(x, jnp.asarray(soft)),
                lambda x: F.kl_div(x, torch.tensor(soft), reduction="batchmean"),
                np.log(RNG.dirichlet(np.ones(k), size=n))),
        compare("poisson_nll(log_input=True, full=True)",
                lambda x: lossjax.poisson_nll(x, jnp.asarray(counts), full=True),
                lambda x: F.poisson_nll_loss(x, torch.tensor(counts), full=True), p),
        compare("poisson_nll(log_input=False)",
                lambda x: lossjax.poisson_nll(x, jnp.asarray(counts), log_input=False),
                lambda x: F.poisson_nll_loss(x, torch.tensor(counts), log_input=False), rates),
        compare("gaussian_nll(full=True), grad w.r.t. variance (2 clamped)",
                lambda v: lossjax.gaussian_nll(jnp.asarray(p), jnp.asarray(t), v, full=True),
                lambda v: F.gaussian_nll_loss(torch.tensor(p), torch.tensor(t), v, full=True),
                var),
        compare("margin_ranking(margin=0.3)",
                lambda x: lossjax.margin_ranking(x, jnp.asarray(t[:, 0]),
                                                 jnp.asarray(pair_signs), margin=0.3),
                lambda x: F.margin_ranking_loss(x, torch.tensor(t[:, 0]),
                                                torch.tensor(pair_signs), margin=0.3),
                p[:, 0]),
        compare("cosine_similarity", lambda x: lossjax.cosine_similarity(x, jnp.asarray(t)),
                lambda x: F.cosine_similarity(x, torch.tensor(t)).mean(), p),
        compare("cosine_embedding(margin=0.2)",
                lambda x: lossjax.cosine_embedding(x, jnp.asarray(t), jnp.asarray(pair_signs),
                                                   margin=0.2),
                lambda x: F.cosine_embedding_loss(x, torch.tensor(t), torch.tensor(pair_signs),
                                                  margin=0.2), p),
        compare("hinge_embedding(margin=1.5)",
                lambda x: lossjax.hinge_embedding(x, jnp.asarray(signs), margin=1.5),
                lambda x: F.hinge_embedding_loss(x, torch.tensor(signs), margin=1.5),
                np.abs(p)),
        compare("triplet_margin(swap=True), eps placement differs: O(eps)",
                lambda x: lossjax.triplet_margin(x, jnp.asarray(pos), jnp.asarray(neg),
                                                 swap=True),
                lambda x: F.triplet_margin_loss(x, torch.tensor(pos), torch.tensor(neg),
                                                swap=True), a, tol=1e-3),
        compare("triplet_margin(distance=cosine) = triplet_margin_with_distance_loss",
                lambda x: lossjax.triplet_margin(
                    x, jnp.asarray(pos), jnp.asarray(neg), margin=0.5,
                    distance=lambda u, w: lossjax.cosine_distance(u, w, reduction="none")),
                lambda x: F.triplet_margin_with_distance_loss(
                    x, torch.tensor(pos), torch.tensor(neg), margin=0.5,
                    distance_function=lambda u, w: 1 - F.cosine_similarity(u, w)), a),
        compare("soft_margin", lambda x: lossjax.soft_margin(x, jnp.asarray(signs)),
                lambda x: F.soft_margin_loss(x, torch.tensor(signs)), logits),
        compare("multilabel_soft_margin(class_weights)",
                lambda x: lossjax.multilabel_soft_margin(x, jnp.asarray(targets01),
                                                         class_weights=class_w),
                lambda x: F.multilabel_soft_margin_loss(x, torch.tensor(targets01),
                                                        weight=torch.tensor(class_w)), logits),
        compare("multi_margin(p=2, margin=0.8, class_weights)",
                lambda x: lossjax.multi_margin(x, jnp.asarray(labels), p=2, margin=0.8,
                                               class_weights=class_w),
                lambda x: F.multi_margin_loss(x, torch.tensor(labels), p=2, margin=0.8,
                                              weight=torch.tensor(class_w)), logits),
        compare("multilabel_margin",
                lambda x: lossjax.multilabel_margin(x, jnp.asarray(multi_hot)),
                lambda x: F.multilabel_margin_loss(x, torch.tensor(index_lists)), logits),
        _compare_ctc(),
        _compare_linear_cross_entropy(),
    ]
    failed = checks.count(False)
    print(f"\n{len(checks) - failed}/{len(checks)} agree within tolerance")
    return 1 if failed else 0


def _compare_ctc() -> bool:
    b, steps, k, length = 3, 12, 5, 4
    logits = RNG.normal(size=(b, steps, k))
    labels = RNG.integers(1, k, size=(b, length))
    logit_lengths = np.array([12, 10, 9])
    label_lengths = np.array([4, 3, 2])

    def ours(x):
        return lossjax.ctc_loss(x, jnp.asarray(labels), logit_lengths=jnp.asarray(logit_lengths),
                                label_lengths=jnp.asarray(label_lengths))

    def theirs(x):
        log_probs = F.log_softmax(x, -1).transpose(0, 1)  # [T, B, K]
        return F.ctc_loss(log_probs, torch.tensor(labels), torch.tensor(logit_lengths),
                          torch.tensor(label_lengths), blank=0, reduction="mean")

    return compare("ctc_loss (mean: per-sequence NLL / label length, then mean)", ours, theirs,
                   logits, tol=1e-9)


def _compare_linear_cross_entropy() -> bool:
    n, d, v = 16, 8, 40
    hidden = RNG.normal(size=(n, d))
    weight = RNG.normal(size=(d, v)) / np.sqrt(d)  # lossjax: [D, V]; PyTorch: [V, D]
    labels = RNG.integers(0, v, size=n)
    labels[3] = -100

    def ours(h):
        return lossjax.linear_cross_entropy(h, jnp.asarray(weight), jnp.asarray(labels),
                                            ignore_index=-100, label_smoothing=0.1,
                                            chunk_size=8)

    def theirs(h):
        return F.linear_cross_entropy(h, torch.tensor(weight.T), torch.tensor(labels),
                                      ignore_index=-100, label_smoothing=0.1)

    return compare("linear_cross_entropy (ignore_index, label_smoothing, chunked)", ours, theirs,
                   hidden)


if __name__ == "__main__":
    sys.exit(main())

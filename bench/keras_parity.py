"""Cross-check lossjax against Keras 3's losses (JAX backend), value and gradient, float64.

    pip install keras==3.15.1   # not a lossjax dependency; CI does not install it
    python -m bench.keras_parity

Like ``bench/torch_parity.py``: not a test (CI has no Keras), a one-command check that the
losses the README maps to Keras give Keras' per-example numbers. Keras runs on the JAX
backend, so both gradients come from ``jax.grad``. Conventions that differ are mapped
explicitly (Keras' CosineSimilarity is −cos; its Tversky weighs (1 − p)·t with ``alpha``).

Two Keras behaviours set the tolerances: ``keras.ops.mean`` on the JAX backend reduces in
float32 even for float64 inputs (so losses Keras averages over the last axis agree to ~1e-7,
checked at 1e-6), and Keras' Circle differentiates through the self-paced weights, which
the paper and lossjax hold constant (values are compared, gradients are not).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import lossjax  # noqa: E402

keras.config.set_floatx("float64")
keras.config.set_epsilon(1e-7)
RNG = np.random.default_rng(0)
K = keras.losses


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def compare(name: str, ours: Callable, theirs: Callable, x, tol: float = 1e-10,
            grad: bool = True) -> bool:
    """Per-example values ``ours(x)`` vs ``theirs(x)``, and the gradient of their sums."""
    x = jnp.asarray(x)
    dv = _rel(ours(x), theirs(x))
    dg = 0.0
    if grad:
        dg = _rel(jax.grad(lambda v: jnp.sum(ours(v)))(x),
                  jax.grad(lambda v: jnp.sum(theirs(v)))(x))
    ok = dv <= tol and dg <= tol
    shown = f"{dg:.1e}" if grad else "not compared"
    print(f"| {name} | {dv:.1e} | {shown} | {'ok' if ok else 'DIFFERS'} |")
    return ok


def main() -> int:
    n, k = 8, 5
    p, t = RNG.normal(size=(n, k)), RNG.normal(size=(n, k))
    pos_p, pos_t = RNG.uniform(0.1, 3.0, size=(n, k)), RNG.uniform(0.1, 3.0, size=(n, k))
    logits = 2 * RNG.normal(size=(n, k))
    labels = RNG.integers(0, k, size=n)
    one_hot = np.eye(k)[labels]
    bits = (RNG.random((n, k)) > 0.5).astype(np.float64)
    soft = RNG.dirichlet(np.ones(k), size=n)
    seg_p = RNG.uniform(0.01, 0.99, size=(n, 16, 1))
    seg_t = (RNG.random((n, 16, 1)) > 0.6).astype(np.float64)
    emb = RNG.normal(size=(12, 6))
    emb_labels = RNG.integers(0, 3, size=12)

    def per_row(fn):  # lossjax elementwise losses averaged over the last axis, as Keras does
        return lambda *a, **kw: jnp.mean(fn(*a, reduction="none", **kw), axis=-1)

    print("| lossjax | value rel. diff | grad rel. diff | |")
    print("|---|---|---|---|")
    checks = [
        compare("mse", lambda x: per_row(lossjax.mse)(x, t),
                lambda x: K.mean_squared_error(t, x), p, tol=1e-6),
        compare("mae", lambda x: per_row(lossjax.mae)(x, t),
                lambda x: K.mean_absolute_error(t, x), p, tol=1e-6),
        compare("huber(delta=0.7)", lambda x: per_row(lossjax.huber)(x, t, delta=0.7),
                lambda x: K.huber(t, x, delta=0.7), p, tol=1e-6),
        compare("log_cosh", lambda x: per_row(lossjax.log_cosh)(x, t),
                lambda x: K.log_cosh(t, x), p, tol=1e-6),
        compare("msle", lambda x: per_row(lossjax.msle)(x, pos_t),
                lambda x: K.mean_squared_logarithmic_error(pos_t, x), pos_p, tol=1e-6),
        compare("mape", lambda x: per_row(lossjax.mape)(x, t),
                lambda x: K.mean_absolute_percentage_error(t, x), p, tol=1e-6),
        compare("softmax_cross_entropy(label_smoothing=0.1)",
                lambda x: lossjax.softmax_cross_entropy(x, soft, label_smoothing=0.1,
                                                        reduction="none"),
                lambda x: K.categorical_crossentropy(soft, x, from_logits=True,
                                                     label_smoothing=0.1), logits),
        compare("softmax_cross_entropy_with_integer_labels",
                lambda x: lossjax.softmax_cross_entropy_with_integer_labels(
                    x, labels, reduction="none"),
                lambda x: K.sparse_categorical_crossentropy(labels, x, from_logits=True),
                logits),
        compare("sigmoid_binary_cross_entropy",
                lambda x: per_row(lossjax.sigmoid_binary_cross_entropy)(x, bits),
                lambda x: K.binary_crossentropy(bits, x, from_logits=True), logits, tol=1e-6),
        compare("binary_cross_entropy", lambda x: per_row(lossjax.binary_cross_entropy)(x, bits),
                lambda x: K.binary_crossentropy(bits, x), 1 / (1 + np.exp(-logits)),
                tol=1e-6),
        compare("sigmoid_focal_loss(alpha=0.25, gamma=2)",
                lambda x: per_row(lossjax.sigmoid_focal_loss)(x, bits, alpha=0.25),
                lambda x: K.binary_focal_crossentropy(bits, x, from_logits=True,
                                                      apply_class_balancing=True),
                logits, tol=1e-6),
        compare("softmax_focal_loss(alpha=0.25, gamma=2)",
                lambda x: lossjax.softmax_focal_loss(x, one_hot, alpha=0.25, reduction="none"),
                lambda x: K.categorical_focal_crossentropy(one_hot, x, from_logits=True),
                logits, tol=1e-9),
        compare("generalized_cross_entropy(q=0.7) (Keras takes probabilities)",
                lambda x: lossjax.generalized_cross_entropy(x, labels, q=0.7, reduction="none"),
                lambda x: K.categorical_generalized_cross_entropy(
                    labels, jax.nn.softmax(x), q=0.7), logits),
        compare("hinge", lambda x: per_row(lossjax.hinge)(x, bits),
                lambda x: K.hinge(bits, x), p, tol=1e-6),
        compare("squared_hinge", lambda x: per_row(lossjax.squared_hinge)(x, bits),
                lambda x: K.squared_hinge(bits, x), p, tol=1e-6),
        compare("categorical_hinge",
                lambda x: lossjax.categorical_hinge(x, one_hot, reduction="none"),
                lambda x: K.categorical_hinge(one_hot, x), p),
        compare("kl_divergence (Keras takes probabilities)",
                lambda x: lossjax.kl_divergence(jnp.log(x), soft, reduction="none"),
                lambda x: K.kl_divergence(soft, x), RNG.dirichlet(np.ones(k), size=n)),
        compare("poisson_nll(log_input=False, eps=1e-7)",
                lambda x: per_row(lossjax.poisson_nll)(x, pos_t, log_input=False, eps=1e-7),
                lambda x: K.poisson(pos_t, x), pos_p, tol=1e-6),
        compare("cosine_similarity (Keras: its negative)",
                lambda x: -lossjax.cosine_similarity(x, t, reduction="none"),
                lambda x: K.cosine_similarity(t, x), p, tol=1e-9),
        compare("dice(smooth=0) (Keras: epsilon in the denominator)",
                lambda x: lossjax.dice(x, seg_t, smooth=0.0, reduction="none"),
                lambda x: K.dice(seg_t, x, axis=(1, 2)), seg_p, tol=1e-6),
        compare("tversky(alpha=0.3, beta=0.7) = Keras tversky(alpha=0.7, beta=0.3)",
                lambda x: lossjax.tversky(x[None], seg_t[:1][None], alpha=0.3, beta=0.7,
                                          smooth=0.0, reduction="none")[0],
                lambda x: K.tversky(seg_t[:1], x, alpha=0.7, beta=0.3), seg_p[:1], tol=1e-6),
        compare("circle(gamma=8, margin=0.25) (Keras on normalised embeddings)",
                lambda x: lossjax.circle(x, emb_labels, gamma=8.0, margin=0.25,
                                         reduction="none"),
                lambda x: K.circle(emb_labels, x / jnp.linalg.norm(x, axis=1, keepdims=True),
                                   gamma=8.0, margin=0.25), emb, tol=1e-9, grad=False),
    ]
    failed = checks.count(False)
    print(f"\n{len(checks) - failed}/{len(checks)} agree within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

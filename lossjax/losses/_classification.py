"""Classification losses: softmax / sigmoid cross-entropy, hinge and focal losses.

Each computes one loss per example (the class axis reduced) and hands it to
:func:`~lossjax.losses._reduce.reduce_loss`, so ``weights``, ``where`` and ``reduction``
behave the same everywhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._validation import check_in_range, check_non_negative, concrete_value
from lossjax.losses._reduce import (
    broadcast_mask,
    check_reduction,
    check_same_shape,
    compute_dtype,
    reduce_loss,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "binary_cross_entropy",
    "categorical_hinge",
    "generalized_cross_entropy",
    "hinge",
    "multiclass_hinge",
    "multiclass_perceptron",
    "multi_margin",
    "multilabel_margin",
    "multilabel_soft_margin",
    "perceptron",
    "poly1_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_focal_loss",
    "soft_margin",
    "sparsemax",
    "sparsemax_loss",
    "squared_hinge",
]


def check_integer_labels(labels: Array, logits_shape: tuple[int, ...], axis: int) -> int:
    """Check integer dtype and shape ``logits_shape`` without ``axis``; return the class axis."""
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"labels must be integer class indices, got dtype {labels.dtype}; "
            "for one-hot or soft labels use softmax_cross_entropy"
        )
    ndim = len(logits_shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for logits of shape {logits_shape}")
    axis = axis % ndim
    expected = logits_shape[:axis] + logits_shape[axis + 1:]
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"labels has shape {tuple(labels.shape)} but logits has shape {logits_shape}; "
            f"labels must have the logits' shape without the class axis {axis}: {expected}"
        )
    return axis


def _scores_and_integer_labels(
    scores: ArrayLike, labels: ArrayLike, axis: int
) -> tuple[Array, Array, Array]:
    """Float scores with the class ``axis`` last, the labels' one-hot (an out-of-range label
    counts as class 0) and the out-of-range mask (those examples' loss is set to NaN)."""
    scores, labels = jnp.asarray(scores), jnp.asarray(labels)
    axis = check_integer_labels(labels, tuple(scores.shape), axis)
    scores = jnp.moveaxis(scores.astype(compute_dtype(scores.dtype)), axis, -1)
    safe, _, out_of_range = integer_label_validity(labels, scores.shape[-1], None)
    one_hot = jax.nn.one_hot(safe, scores.shape[-1], dtype=scores.dtype)
    return scores, one_hot, out_of_range


def checked_class_weights(class_weights: ArrayLike, num_classes: int, dtype) -> Array:
    """``class_weights`` as a ``[K]`` array of ``dtype``; ``ValueError`` for another shape."""
    class_weights = jnp.asarray(class_weights, dtype)
    if class_weights.shape != (num_classes,):
        raise ValueError(
            f"class_weights has shape {class_weights.shape}; expected ({num_classes},), "
            "one weight per class"
        )
    return class_weights


def integer_label_validity(
    labels: Array, num_classes: int, ignore_index: int | None
) -> tuple[Array, Array, Array]:
    """Split integer labels into ``(safe_labels, kept, out_of_range)``.

    ``kept`` is False for ``ignore_index``; ``out_of_range`` marks other labels outside
    ``[0, num_classes)`` (their loss becomes NaN); ``safe_labels`` replaces both by 0 so
    that gathers stay in bounds.
    """
    kept = jnp.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    in_range = (labels >= 0) & (labels < num_classes)
    out_of_range = kept & ~in_range
    safe = jnp.where(kept & in_range, labels, 0)
    return safe, kept, out_of_range


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    class_weights: ArrayLike | None = None,
    z_loss: float = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Cross-entropy of softmax(logits) against integer class indices.

    Per example, with ``lse = logsumexp(x)``, ``K`` classes, smoothing ``ε`` and class
    weights ``w`` (all ones when not given)::

        loss = (1 − ε)·w_y·(lse − x_y) + ε·Σ_k w_k·(lse − x_k)/K + z_loss·lse²

    This is PyTorch's ``cross_entropy`` (label smoothing included) plus PaLM's z-loss.
    ``ignore_index`` labels behave as ``where=False``. With ``class_weights`` and
    ``reduction="mean"`` the sum is divided by ``Σ w_y`` over the kept examples (PyTorch's
    convention); otherwise ``mean`` divides by the number of kept examples.

    Args:
      logits: ``[..., K, ...]`` unnormalised scores; the class axis is ``axis``.
      labels: integer ``[...]``, the logits' shape without ``axis``. A label outside
        ``[0, K)`` that is not ``ignore_index`` gives NaN for that example (jit cannot raise).
      class_weights: optional ``[K]`` per-class weights.
      z_loss: coefficient of ``lse²`` (keeps logits from drifting), >= 0.

    Returns:
      Scalar for ``"mean"``/``"sum"``; ``[...]`` per-example losses for ``"none"``.
    """
    check_reduction(reduction)
    check_in_range("label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=True)
    check_non_negative("z_loss", z_loss)
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    axis = check_integer_labels(labels, tuple(logits.shape), axis)
    logits = jnp.moveaxis(logits.astype(compute_dtype(logits.dtype)), axis, -1)
    num_classes = logits.shape[-1]
    safe_labels, kept, out_of_range = integer_label_validity(labels, num_classes, ignore_index)

    lse = jax.nn.logsumexp(logits, axis=-1)
    label_logit = jnp.take_along_axis(logits, safe_labels[..., None], axis=-1)[..., 0]
    if class_weights is None:
        label_weight = jnp.ones((), logits.dtype)
        smooth_term = lse - jnp.mean(logits, axis=-1)
    else:
        class_weights = checked_class_weights(class_weights, num_classes, logits.dtype)
        label_weight = class_weights[safe_labels]
        smooth_term = (jnp.sum(class_weights) * lse - logits @ class_weights) / num_classes
    loss = label_weight * (lse - label_logit)
    if label_smoothing:
        loss = (1.0 - label_smoothing) * loss + label_smoothing * smooth_term
    if z_loss:
        loss = loss + z_loss * jnp.square(lse)
    loss = jnp.where(out_of_range, jnp.nan, loss)

    mask = kept if where is None else kept & broadcast_mask(where, kept.shape)
    normalizer = None
    if class_weights is not None and reduction == "mean":
        normalizer = jnp.sum(jnp.where(mask, label_weight, 0.0))
    return reduce_loss(
        loss, weights=weights, where=mask, reduction=reduction, normalizer=normalizer
    )


def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    label_smoothing: float = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Cross-entropy of softmax(logits) against a label distribution (one-hot or soft).

    Per example: ``−Σ_k t_k · log_softmax(x)_k`` with ``t = (1 − ε)·labels + ε/K``.
    Terms with ``t_k = 0`` count as 0 even where ``x_k = −inf`` (optax #896 gives NaN there).

    Args:
      logits, labels: the same shape ``[..., K, ...]``; the class axis is ``axis``.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-example losses (class axis removed) for ``"none"``.
    """
    check_reduction(reduction)
    check_in_range("label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=True)
    logits, labels = _paired_float_inputs("logits", logits, "labels", labels, axis)
    if label_smoothing:
        labels = (1.0 - label_smoothing) * labels + label_smoothing / labels.shape[-1]
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    terms = jnp.where(labels == 0, 0.0, labels * log_probs)
    return reduce_loss(-jnp.sum(terms, axis=-1), weights=weights, where=where,
                       reduction=reduction)


def _paired_float_inputs(
    name_a: str, a: ArrayLike, name_b: str, b: ArrayLike, class_axis: int | None = None
) -> tuple[Array, Array]:
    """Two same-shape arrays cast to the compute dtype; ``class_axis``, if given, moved last."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    check_same_shape(name_a, a, name_b, b)
    dtype = compute_dtype(a.dtype, b.dtype)
    a, b = a.astype(dtype), b.astype(dtype)
    if class_axis is None:
        return a, b
    return jnp.moveaxis(a, class_axis, -1), jnp.moveaxis(b, class_axis, -1)


def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Binary cross-entropy from logits, elementwise: ``softplus(x) − x·y``.

    Equals ``−y·log σ(x) − (1 − y)·log(1 − σ(x))`` without ever forming σ(x), so it is
    finite for any finite logit. ``labels`` are probabilities in [0, 1], same shape.
    """
    check_reduction(reduction)
    x, y = _paired_float_inputs("logits", logits, "labels", labels)
    return reduce_loss(jax.nn.softplus(x) - x * y, weights=weights, where=where,
                       reduction=reduction)


def binary_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Binary cross-entropy from probabilities: ``−y·log p − (1 − y)·log(1 − p)``.

    ``p`` is clipped to ``[eps, 1 − eps]`` first (Keras' convention), so a probability of
    exactly 0 or 1 gives a finite loss and gradient. Prefer
    :func:`sigmoid_binary_cross_entropy` when logits are available.
    """
    check_reduction(reduction)
    check_in_range("eps", eps, 0.0, 0.5)
    p, y = _paired_float_inputs("probs", probs, "labels", labels)
    p = jnp.clip(p, eps, 1.0 - eps)
    loss = -(y * jnp.log(p) + (1.0 - y) * jnp.log1p(-p))
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def signed_labels(labels: Array) -> Array:
    """Binary labels as ±1: a 0 label is read as −1, anything else is kept."""
    return jnp.where(labels == 0, -1.0, labels)


def hinge(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Binary hinge loss, elementwise: ``max(0, 1 − y·s)``.

    ``labels`` may be in {−1, 1} or {0, 1}: a 0 label is read as −1. At the margin
    ``y·s = 1`` the subgradient used is 0.
    """
    check_reduction(reduction)
    s, y = _paired_float_inputs("scores", scores, "labels", labels)
    return reduce_loss(jax.nn.relu(1.0 - signed_labels(y) * s), weights=weights,
                       where=where, reduction=reduction)


def squared_hinge(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Squared hinge loss, elementwise: ``max(0, 1 − y·s)²``; labels in {−1, 1} or {0, 1}."""
    check_reduction(reduction)
    s, y = _paired_float_inputs("scores", scores, "labels", labels)
    return reduce_loss(jnp.square(jax.nn.relu(1.0 - signed_labels(y) * s)), weights=weights,
                       where=where, reduction=reduction)


def multiclass_hinge(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Crammer–Singer multiclass hinge: ``max_k (s_k + [k ≠ y]) − s_y`` per example.

    ``scores`` ``[..., K]``, integer ``labels`` ``[...]``; an out-of-range label gives NaN.
    Equals optax's ``multiclass_hinge_loss``. References: Crammer & Singer, "On the
    Algorithmic Implementation of Multiclass Kernel-based Vector Machines" (2001).
    """
    check_reduction(reduction)
    scores, one_hot, out_of_range = _scores_and_integer_labels(scores, labels, -1)
    label_score = jnp.sum(scores * one_hot, axis=-1)
    loss = jnp.max(scores + 1.0 - one_hot, axis=-1) - label_score
    loss = jnp.where(out_of_range, jnp.nan, loss)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def _safe_power(base: Array, exponent: float) -> Array:
    """``base ** exponent`` for ``base >= 0`` whose gradient is 0, not inf or NaN, at 0.

    The focal factor ``(1 − p)^γ`` with ``0 < γ < 1`` has an infinite slope at ``p = 1``;
    there the loss term it multiplies vanishes faster, so the true gradient is 0.
    """
    positive = base > 0
    return jnp.where(positive, jnp.where(positive, base, 1.0) ** exponent, 0.0)


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Focal loss, elementwise: ``α_t · (1 − p_t)^γ · BCE(x, y)``.

    ``p = σ(x)``, ``p_t = p·y + (1 − p)(1 − y)``, ``α_t = α·y + (1 − α)(1 − y)`` (no α term
    when ``alpha`` is None). ``gamma = 0`` and ``alpha = None`` give sigmoid BCE.
    References: Lin et al., "Focal Loss for Dense Object Detection" (2017).
    """
    check_reduction(reduction)
    check_non_negative("gamma", gamma)
    if alpha is not None:
        check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    x, y = _paired_float_inputs("logits", logits, "labels", labels)
    bce = jax.nn.softplus(x) - x * y
    p = jax.nn.sigmoid(x)
    one_minus_pt = p + y - 2.0 * p * y
    loss = bce if gamma == 0 else bce * _safe_power(one_minus_pt, gamma)
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def poly1_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float = 2.0,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Poly-1 loss: cross-entropy plus ``ε·(1 − p_t)``, per example.

    ``CE = −Σ_k t_k·log_softmax(x)_k`` and ``p_t = Σ_k t_k·softmax(x)_k`` (the probability
    given to the label distribution). ``epsilon = 0`` is :func:`softmax_cross_entropy`;
    ``epsilon`` may be negative (down-weights the leading polynomial term) as long as it is
    ``>= −1`` (below that the loss is unbounded below). The default 2.0 is optax's
    ``poly_loss_cross_entropy`` default. For integer labels pass ``jax.nn.one_hot(labels, K)``.

    Args:
      logits, labels: the same shape ``[..., K, ...]``; ``labels`` a distribution over ``axis``.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-example losses (class axis removed) for ``"none"``.

    References: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification
    Loss Functions" (ICLR 2022).
    """
    check_reduction(reduction)
    check_in_range("epsilon", epsilon, -1.0, float("inf"))
    logits, labels = _paired_float_inputs("logits", logits, "labels", labels, axis)
    # x − logsumexp(x) rather than jax.nn.log_softmax: XLA:CPU then fuses the backward pass
    # (value_and_grad 1.2x faster at [8192, 1024], on par with optax).
    log_probs = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    cross_entropy = -jnp.sum(jnp.where(labels == 0, 0.0, labels * log_probs), axis=-1)
    p_t = jnp.sum(labels * jnp.exp(log_probs), axis=-1)
    loss = cross_entropy + epsilon * (1.0 - p_t)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def sparsemax(logits: ArrayLike, *, axis: int = -1) -> Array:
    """Euclidean projection of ``logits`` onto the probability simplex along ``axis``.

    ``sparsemax(z)_k = max(z_k − τ(z), 0)`` with ``τ`` chosen so the result sums to 1:
    sort ``z`` descending, the support size is ``k* = max{k : 1 + k·z_(k) > Σ_{j≤k} z_(j)}``
    and ``τ = (Σ_{j≤k*} z_(j) − 1) / k*``. Unlike softmax it gives exact zeros. Its
    derivative is written in closed form (a ``custom_jvp``, so ``jax.grad`` never
    differentiates the sort): on the support ``S``, ``dp = dz − mean_S(dz)``, else 0.
    Higher derivatives work (the Jacobian is piecewise constant).

    References: Martins & Astudillo, "From Softmax to Sparsemax" (ICML 2016).
    """
    z = jnp.asarray(logits)
    z = jnp.moveaxis(z.astype(compute_dtype(z.dtype)), axis, -1)
    return jnp.moveaxis(_sparsemax_last_axis(z), -1, axis)


@jax.custom_jvp
def _sparsemax_last_axis(z: Array) -> Array:
    z_sorted = -jnp.sort(-z, axis=-1)
    cumulative = jnp.cumsum(z_sorted, axis=-1)
    ks = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    support_size = jnp.sum(1.0 + ks * z_sorted > cumulative, axis=-1, keepdims=True)
    support_sum = jnp.take_along_axis(cumulative, support_size - 1, axis=-1)
    tau = (support_sum - 1.0) / support_size.astype(z.dtype)
    return jax.nn.relu(z - tau)


@_sparsemax_last_axis.defjvp
def _sparsemax_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (z,), (dz,) = primals, tangents
    p = _sparsemax_last_axis(z)
    support = (p > 0).astype(z.dtype)
    mean_on_support = jnp.sum(dz * support, axis=-1, keepdims=True) / jnp.sum(
        support, axis=-1, keepdims=True)
    return p, support * (dz - mean_on_support)


def sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multiclass sparsemax loss with integer labels, per example.

    With ``p = sparsemax(z)``:
    ``loss = ½(1 − ‖p‖²) + Σ_k p_k·(z_k − z_y) = −z_y + ½Σ_{k∈S}(z_k² − τ²) + ½``,
    the sparse analogue of softmax cross-entropy (its gradient is ``p − onehot(y)``; it is 0
    exactly when the label alone is in the support with margin). ``jax.grad`` gives that
    gradient. An out-of-range label gives NaN. Equals optax's ``multiclass_sparsemax_loss``.

    Args:
      logits: ``[..., K, ...]`` scores; the class axis is ``axis``.
      labels: integer ``[...]``, the logits' shape without ``axis``.

    References: Martins & Astudillo, "From Softmax to Sparsemax" (ICML 2016).
    """
    check_reduction(reduction)
    z, one_hot, out_of_range = _scores_and_integer_labels(logits, labels, axis)
    p = sparsemax(z, axis=-1)
    label_score = jnp.sum(z * one_hot, axis=-1, keepdims=True)
    loss = 0.5 * (1.0 - jnp.sum(p * p, axis=-1)) + jnp.sum(p * (z - label_score), axis=-1)
    loss = jnp.where(out_of_range, jnp.nan, loss)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def categorical_hinge(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Keras' categorical hinge, per example: ``max(0, neg − pos + 1)``.

    ``pos = Σ_k t_k·s_k`` and ``neg = max_k (1 − t_k)·s_k`` with one-hot ``targets``. This is
    Keras' exact definition, including its quirk: the true class enters ``neg`` as ``0``, so
    when every wrong-class score is negative ``neg`` is 0, not the largest wrong score (use
    :func:`multiclass_hinge` for the Crammer–Singer loss over wrong classes only). The
    subgradient at the hinge is 0.

    Args:
      predictions: ``[..., K, ...]`` scores; ``targets``: one-hot, the same shape.
    """
    check_reduction(reduction)
    s, t = _paired_float_inputs("predictions", predictions, "targets", targets, axis)
    pos = jnp.sum(t * s, axis=-1)
    neg = jnp.max((1.0 - t) * s, axis=-1)
    return reduce_loss(jax.nn.relu(neg - pos + 1.0), weights=weights, where=where,
                       reduction=reduction)


def soft_margin(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Soft-margin (logistic) loss, elementwise: ``log(1 + exp(−y·s))``.

    PyTorch's ``SoftMarginLoss``; labels in {−1, 1} or {0, 1} (0 read as −1). It is
    :func:`sigmoid_binary_cross_entropy` with {0, 1} labels, written as ``softplus(−y·s)``.
    """
    check_reduction(reduction)
    s, y = _paired_float_inputs("scores", scores, "labels", labels)
    return reduce_loss(jax.nn.softplus(-signed_labels(y) * s), weights=weights, where=where,
                       reduction=reduction)


def perceptron(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Perceptron loss, elementwise: ``max(0, −y·s)``; labels in {−1, 1} or {0, 1}.

    Hinge without the margin; optax's ``perceptron_loss``. Subgradient 0 at ``y·s = 0``.
    """
    check_reduction(reduction)
    s, y = _paired_float_inputs("scores", scores, "labels", labels)
    return reduce_loss(jax.nn.relu(-signed_labels(y) * s), weights=weights, where=where,
                       reduction=reduction)


def multiclass_perceptron(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multiclass perceptron loss, per example: ``max_k s_k − s_y`` (integer labels).

    optax's ``multiclass_perceptron_loss``; an out-of-range label gives NaN.
    """
    check_reduction(reduction)
    s, one_hot, out_of_range = _scores_and_integer_labels(scores, labels, axis)
    loss = jnp.max(s, axis=-1) - jnp.sum(s * one_hot, axis=-1)
    return reduce_loss(jnp.where(out_of_range, jnp.nan, loss), weights=weights, where=where,
                       reduction=reduction)


def multi_margin(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    p: int = 1,
    margin: float = 1.0,
    class_weights: ArrayLike | None = None,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Weston–Watkins multiclass hinge, per example (PyTorch's ``MultiMarginLoss``).

    ``loss = w_y/K · Σ_{k≠y} max(0, margin − s_y + s_k)^p`` with ``p`` 1 or 2 and optional
    per-class weights ``w`` ``[K]`` (PyTorch's ``weight``). Unlike :func:`multiclass_hinge`
    (Crammer–Singer: the worst wrong class only) every violating class counts. Integer
    labels; an out-of-range label gives NaN.
    """
    check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    check_non_negative("margin", margin)
    s, one_hot, out_of_range = _scores_and_integer_labels(scores, labels, axis)
    num_classes = s.shape[-1]
    label_score = jnp.sum(s * one_hot, axis=-1, keepdims=True)
    violation = jax.nn.relu(margin - label_score + s) * (1.0 - one_hot)
    loss = jnp.sum(violation**p, axis=-1) / num_classes
    if class_weights is not None:
        loss = loss * (one_hot @ checked_class_weights(class_weights, num_classes, s.dtype))
    return reduce_loss(jnp.where(out_of_range, jnp.nan, loss), weights=weights, where=where,
                       reduction=reduction)


def multilabel_margin(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multi-label hinge, per example (PyTorch's ``MultiLabelMarginLoss``).

    ``loss = 1/K · Σ_{j: y_j=1} Σ_{i: y_i=0} max(0, 1 − (s_j − s_i))``: every positive class
    should beat every negative class by 1. ``labels`` is a multi-hot ``{0, 1}`` array of the
    scores' shape (PyTorch takes −1-padded index lists instead; convert with
    ``jnp.zeros(K).at[idx].set(1)``). A row with no positive or no negative class has loss 0.
    """
    check_reduction(reduction)
    s, y = _paired_float_inputs("scores", scores, "labels", labels, axis)
    # pairs[..., j, i] = hinge of positive j against negative i
    pairs = jax.nn.relu(1.0 - (s[..., :, None] - s[..., None, :]))
    pair_mask = y[..., :, None] * (1.0 - y[..., None, :])
    loss = jnp.sum(pairs * pair_mask, axis=(-2, -1)) / s.shape[-1]
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def multilabel_soft_margin(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multi-label logistic loss, per example (PyTorch's ``MultiLabelSoftMarginLoss``).

    ``loss = 1/K · Σ_k w_k·[softplus(x_k) − y_k·x_k]``: the class-mean of
    :func:`sigmoid_binary_cross_entropy`, one value per example; ``labels`` in {0, 1} (or
    probabilities), ``class_weights`` optional ``[K]``.
    """
    check_reduction(reduction)
    x, y = _paired_float_inputs("logits", logits, "labels", labels, axis)
    per_class = jax.nn.softplus(x) - x * y
    if class_weights is not None:
        per_class = per_class * checked_class_weights(class_weights, x.shape[-1], x.dtype)
    return reduce_loss(jnp.mean(per_class, axis=-1), weights=weights, where=where,
                       reduction=reduction)


def softmax_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Categorical focal loss from logits, per example: ``−α·Σ_k t_k (1 − p_k)^γ log p_k``.

    ``p = softmax(logits)``; ``labels`` one-hot or soft, same shape. ``alpha = None`` means 1
    (Keras' ``CategoricalFocalCrossentropy`` defaults to ``alpha = 0.25``, a constant factor);
    ``gamma = 0`` and no alpha give :func:`softmax_cross_entropy`. Terms with ``t_k = 0``
    count 0 even at ``−inf`` logits.

    References: Lin et al., "Focal Loss for Dense Object Detection" (2017).
    """
    check_reduction(reduction)
    check_non_negative("gamma", gamma)
    if alpha is not None:
        check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    x, t = _paired_float_inputs("logits", logits, "labels", labels, axis)
    absent = t == 0
    # Safe log-probabilities where t = 0 keep 0·(−inf) out of the backward pass too.
    log_p = jnp.where(absent, -1.0, jax.nn.log_softmax(x, axis=-1))
    modulating = 1.0 if gamma == 0 else _safe_power(-jnp.expm1(log_p), gamma)
    terms = jnp.where(absent, 0.0, t * modulating * log_p)
    loss = -jnp.sum(terms, axis=-1)
    if alpha is not None:
        loss = alpha * loss
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def generalized_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    q: float = 0.5,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Generalized cross-entropy, per example: ``(1 − p_y^q) / q`` with ``p = softmax(x)``.

    A noise-robust loss between cross-entropy (``q → 0``) and MAE on probabilities
    (``q = 1``); computed as ``−expm1(q·log p_y)/q`` so it stays accurate for small ``q``.
    Integer labels; an out-of-range label gives NaN. Keras 3's
    ``CategoricalGeneralizedCrossEntropy`` (which takes probabilities, not logits).

    Args:
      q: in (0, 1].

    References: Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural
    Networks with Noisy Labels" (NeurIPS 2018).
    """
    check_reduction(reduction)
    check_in_range("q", q, 0.0, 1.0, high_inclusive=True)
    if concrete_value(q) == 0.0:
        raise ValueError("q must be > 0 (q → 0 is softmax_cross_entropy_with_integer_labels)")
    x, one_hot, out_of_range = _scores_and_integer_labels(logits, labels, axis)
    log_p_y = jnp.sum(jax.nn.log_softmax(x, axis=-1) * one_hot, axis=-1)
    loss = -jnp.expm1(q * log_p_y) / q
    return reduce_loss(jnp.where(out_of_range, jnp.nan, loss), weights=weights, where=where,
                       reduction=reduction)

"""Metric-learning losses: triplet margin, contrastive, NT-Xent, circle, hinge embedding.

Each computes one loss per example (triplet, pair or anchor) and hands it to
:func:`~lossjax.losses._reduce.reduce_loss`, so ``weights`` and ``where`` are per example.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lossjax._numerics import (
    abs_zero_subgradient,
    masked_logsumexp,
    safe_normalize,
    safe_sqrt,
)
from lossjax._validation import check_non_negative, check_positive, concrete_value
from lossjax.losses._inputs import (
    check_per_example,
    class_axis_inputs,
    elementwise_inputs,
    example_mask,
    float_inputs,
    keep_entries,
    normalize_axis,
    pair_loss_by_label,
    real_array,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["circle", "contrastive", "hinge_embedding", "ntxent", "triplet_margin"]


def _lp_distance(x: Array, y: Array, p: float, eps: float, axis: int) -> Array:
    # (Σ|x − y|^p + eps)^(1/p); |·| has subgradient 0 at 0, so x == y gives a zero gradient
    # whenever eps > 0.
    diff = x - y
    if concrete_value(p) == 2.0:
        total = jnp.sum(jnp.square(diff), axis=axis)
        return jnp.sqrt(total + eps)
    total = jnp.sum(abs_zero_subgradient(diff) ** p, axis=axis)
    return (total + eps) ** (1.0 / p)


def triplet_margin(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    *,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    distance: Callable[[Array, Array], Array] | None = None,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Triplet margin loss per triplet: ``max(0, d(a, pos) − d(a, neg) + margin)``.

    ``d(x, y) = (Σ|x − y|^p + eps)^(1/p)`` along ``axis``: ``eps`` sits inside the sum
    (optax's ``triplet_margin_loss`` convention), which keeps the value and the gradient
    finite when embeddings coincide (the gradient there is 0). PyTorch instead adds ``eps``
    to the difference vector, ``‖x − y + eps‖_p``, so the two differ by O(eps).
    With ``swap=True`` the negative distance is ``min(d(a, neg), d(pos, neg))`` (PyTorch's
    distance swap). At the hinge the subgradient used is 0. Equals optax for ``p = 2``
    (optax omits ``|·|``, so odd ``p`` differ there).

    ``distance``, when given, replaces the p-norm (``p`` and ``eps`` are then unused): a
    function ``(x, y) -> d`` of two arrays of the inputs' shape with the feature axis moved
    last, returning one distance per example, e.g. ``lambda x, y: 1 − cos(x, y)``. That is
    PyTorch's ``TripletMarginWithDistanceLoss``; its finiteness is the function's own.

    Args:
      anchors, positives, negatives: the same shape ``[..., D, ...]``; ``axis`` is the
        feature axis.
      margin: >= 0. p: the norm degree, >= 1. eps: >= 0 (``eps = 0`` gives a non-finite
        gradient at coinciding embeddings for ``p > 1``).

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-triplet losses (``axis`` removed) for ``"none"``.

    References: Balntas et al., "Learning local feature descriptors with triplets and
    shallow convolutional neural networks" (BMVC 2016); Schroff et al., "FaceNet" (2015).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.triplet_margin(
      ...     jnp.array([[0.0, 0.0]]),
      ...     jnp.array([[1.0, 0.0]]),
      ...     jnp.array([[1.5, 0.0]]))
      Array(0.5, dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("margin", margin)
    check_non_negative("eps", eps)
    pv = concrete_value(p)
    if pv is not None and not pv >= 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    a, pos, neg = class_axis_inputs(("anchors", anchors), ("positives", positives),
                                    ("negatives", negatives), axis=axis, where=where)

    def dist(x: Array, y: Array) -> Array:
        if distance is None:
            return _lp_distance(x, y, p, eps, -1)
        return _checked_distance(distance, x, y)

    d_pos = dist(a, pos)
    d_neg = dist(a, neg)
    if swap:
        d_neg = jnp.minimum(d_neg, dist(pos, neg))
    loss = jax.nn.relu(d_pos - d_neg + margin)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def _checked_distance(distance: Callable[[Array, Array], Array], x: Array, y: Array) -> Array:
    d = jnp.asarray(distance(x, y))
    if tuple(d.shape) != tuple(x.shape[:-1]):
        raise ValueError(
            f"distance returned shape {tuple(d.shape)}; it must return one distance per "
            f"example, shape {tuple(x.shape[:-1])} (the feature axis is moved last)"
        )
    return d


def contrastive(
    embeddings1: ArrayLike,
    embeddings2: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 1.0,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Pairwise contrastive loss per pair, with ``d = ‖e1 − e2‖₂`` along ``axis``.

    ``d²`` for a similar pair (label 1), ``max(0, margin − d)²`` for a dissimilar pair
    (label 0). Labels must be in {0, 1} (TensorFlow Addons' ``contrastive_loss``
    convention, without the ½ of Hadsell et al.); any other value gives NaN for that pair
    (jit cannot raise). ``d²`` is summed directly; ``d`` uses a guarded square root, so at
    identical embeddings the value is ``margin²`` (dissimilar) or 0 (similar) and the
    gradient is the subgradient 0.

    Args:
      embeddings1, embeddings2: the same shape ``[..., D, ...]``; ``axis`` is the feature
        axis.
      labels: ``embeddings1``'s shape without ``axis``.
      margin: >= 0.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-pair losses for ``"none"``.

    References: Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant
    Mapping" (CVPR 2006).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.contrastive(
      ...     jnp.array([[0.0, 0.0], [0.0, 0.0]]),
      ...     jnp.array([[3.0, 0.0], [0.5, 0.0]]),
      ...     jnp.array([1, 0]))
      Array(4.625, dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("margin", margin)
    labels = real_array("labels", labels)
    shape = jnp.shape(embeddings1)
    check_per_example(labels, shape, normalize_axis(axis, shape, "embeddings1"), "embeddings1")
    e1, e2 = class_axis_inputs(("embeddings1", embeddings1), ("embeddings2", embeddings2),
                               axis=axis, where=where)
    squared = jnp.sum(jnp.square(e1 - e2), axis=-1)
    distance = safe_sqrt(squared)
    loss = pair_loss_by_label(labels, squared, jnp.square(jax.nn.relu(margin - distance)),
                              dissimilar_labels=(0,))
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def ntxent(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 0.07,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """NT-Xent (normalized temperature-scaled cross-entropy) per anchor, as in SimCLR.

    With ``s_ij = cos(e_i, e_j) / temperature``, positives ``P(i) = {j ≠ i : y_j = y_i}`` and
    negatives ``N(i) = {k : y_k ≠ y_i}``::

        ℓ_ij = −log(exp(s_ij) / (exp(s_ij) + Σ_{k∈N(i)} exp(s_ik)))
        loss_i = mean_{j∈P(i)} ℓ_ij

    Other positives are not in the denominator (optax's and pytorch-metric-learning's
    convention). An anchor with no positive is left out (loss 0, not counted by ``"mean"``,
    zero gradient); with no negative every ``ℓ_ij`` is 0. Norms are clamped at 1e-8 as in
    :func:`~lossjax.cosine_similarity`, so zero or identical embeddings stay finite.
    ``"mean"`` averages over anchors; ``optax.losses.ntxent`` averages over positive pairs,
    which is the same number when every label group has the same size (e.g. two views per
    image).

    Args:
      embeddings: ``[B, D]``.
      labels: integer ``[B]``; equal labels mark positive pairs.
      temperature: > 0.
      weights: optional per-anchor ``[B]`` weights.
      where: optional boolean ``[B]``; a False row is dropped from the batch entirely (not
        an anchor, positive or negative: padding), and its gradient is exactly 0.

    Returns:
      Scalar for ``"mean"``/``"sum"``; the ``[B]`` per-anchor losses for ``"none"``.

    References: Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations" (ICML 2020); Sohn, "Improved Deep Metric Learning with Multi-class
    N-pair Loss Objective" (NeurIPS 2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.ntxent(
      ...     jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]),
      ...     jnp.array([0, 0, 1, 1]),
      ...     temperature=1.0)
      Array(0.5514, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("temperature", temperature)
    e, labels, valid = _batch_embeddings_and_labels(embeddings, labels, where)
    batch = e.shape[0]
    u = safe_normalize(e, -1, 1e-8)
    sims = (u @ u.T) / temperature
    both_valid = valid[:, None] & valid[None, :]
    same = labels[:, None] == labels[None, :]
    positives = same & ~jnp.eye(batch, dtype=bool) & both_valid
    negatives = ~same & both_valid

    has_negative = jnp.any(negatives, axis=1)
    lse_neg = masked_logsumexp(sims, negatives)

    # ℓ_ij = log(1 + exp(L_i − s_ij)) = softplus(L_i − s_ij); 0 when there is no negative.
    pair_loss = jax.nn.softplus(lse_neg[:, None] - sims)
    pair_loss = jnp.where(positives & has_negative[:, None], pair_loss, 0.0)
    num_positives = jnp.sum(positives, axis=1)
    has_positive = num_positives > 0
    loss = jnp.sum(pair_loss, axis=1) / jnp.maximum(num_positives, 1).astype(e.dtype)
    return reduce_loss(loss, weights=weights, where=valid & has_positive, reduction=reduction)


def hinge_embedding(
    distances: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Hinge embedding loss, elementwise (PyTorch's ``HingeEmbeddingLoss``).

    ``x`` for label 1 and ``max(0, margin − x)`` for label −1. A 0 label is read as −1, as
    in :func:`~lossjax.hinge` (PyTorch adds both terms for any label other than ±1); any
    other label gives NaN (jit cannot raise). ``distances`` are typically non-negative
    (e.g. an L1 distance between two inputs). At ``x = margin`` the subgradient used is 0.

    Args:
      distances, labels: the same shape.
      margin: any real number (PyTorch's default 1.0).

    Returns:
      Scalar for ``"mean"``/``"sum"``; elementwise losses for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.hinge_embedding(jnp.array([0.3, 0.3]), jnp.array([1, -1]))
      Array(0.5, dtype=float32)
    """
    check_reduction(reduction)
    x, labels = elementwise_inputs(("distances", distances), ("labels", labels), where=where)
    loss = pair_loss_by_label(labels, x, jax.nn.relu(margin - x))
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def circle(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    gamma: float = 80.0,
    margin: float = 0.4,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Circle loss per anchor (Keras 3's ``Circle``; pytorch-metric-learning's ``CircleLoss``).

    With cosine similarities ``s`` of the anchor to its positives ``P`` (same label, itself
    excluded) and negatives ``N``, ``m = margin``::

        α_p = max(0, 1 + m − s_p),  α_n = max(0, s_n + m)        (self-paced weights)
        loss = softplus(logsumexp_P(−γ·α_p·(s_p − (1 − m))) + logsumexp_N(γ·α_n·(s_n − m)))

    The weights ``α`` are constants for the gradient, as in the paper. The embeddings are
    L2-normalised here (norms clamped at 1e-8, so zero vectors stay finite); Keras expects
    normalised inputs and clamps the cosine distance at 0, which is the same value for
    normalised inputs. An anchor with no positive or no negative is left out (loss 0, not
    counted by ``"mean"``, zero gradient). Keras' ``ref_embeddings``/``ref_labels`` are not
    supported: concatenate the references into the batch and mask them with ``where``.

    Args:
      embeddings: ``[B, D]``. labels: integer ``[B]`` class ids.
      gamma: > 0, the scale. margin: the relaxation ``m``, in [0, 1).
      where: optional boolean ``[B]``; a False row is dropped from the batch entirely.

    Returns:
      Scalar for ``"mean"``/``"sum"``; the ``[B]`` per-anchor losses for ``"none"``.

    References: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization" (CVPR 2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.circle(
      ...     jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]),
      ...     jnp.array([0, 0, 1, 1]),
      ...     gamma=1.0)
      Array(0.897, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("gamma", gamma)
    mv = concrete_value(margin)
    if mv is not None and not 0.0 <= mv < 1.0:
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    e, labels, valid = _batch_embeddings_and_labels(embeddings, labels, where)
    u = safe_normalize(e, -1, 1e-8)
    sims = u @ u.T
    batch = e.shape[0]
    both_valid = valid[:, None] & valid[None, :]
    same = labels[:, None] == labels[None, :]
    positives = same & ~jnp.eye(batch, dtype=bool) & both_valid
    negatives = ~same & both_valid
    alpha_p = jax.lax.stop_gradient(jax.nn.relu(1.0 + margin - sims))
    alpha_n = jax.lax.stop_gradient(jax.nn.relu(sims + margin))
    lse_p = masked_logsumexp(-gamma * alpha_p * (sims - (1.0 - margin)), positives)
    lse_n = masked_logsumexp(gamma * alpha_n * (sims - margin), negatives)
    has_both = jnp.any(positives, axis=1) & jnp.any(negatives, axis=1)
    loss = jnp.where(has_both, jax.nn.softplus(lse_p + lse_n), 0.0)
    return reduce_loss(loss, weights=weights, where=has_both, reduction=reduction)


def _batch_embeddings_and_labels(
    embeddings: ArrayLike, labels: ArrayLike, where: ArrayLike | None
) -> tuple[Array, Array, Array]:
    """Check ``[B, D]`` embeddings and integer ``[B]`` labels; return them with the row mask
    (``where`` rows masked out get a stopped gradient)."""
    (e,) = float_inputs(("embeddings", embeddings))
    labels = real_array("labels", labels)
    if e.ndim != 2:
        raise ValueError(f"embeddings must have shape [B, D], got shape {tuple(e.shape)}")
    if labels.shape != (e.shape[0],):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)} but embeddings has shape "
            f"{tuple(e.shape)}; labels must have shape ({e.shape[0]},)"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integer group ids, got dtype {labels.dtype}")
    mask = example_mask(where, (e.shape[0],))
    (e,) = keep_entries(mask, e, feature_axes=(-1,))
    valid = jnp.ones((e.shape[0],), bool) if mask is None else mask
    return e, labels, valid

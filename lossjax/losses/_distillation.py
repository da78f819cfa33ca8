"""Knowledge distillation: a student matches a teacher's temperature-softened outputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._numerics import DIVERGENCES, distillation_divergence
from lossjax._validation import check_positive, concrete_value
from lossjax.losses._inputs import class_axis_inputs, example_mask, keep_entries, real_array
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["distillation_loss"]


def check_divergence(divergence: str, beta: float) -> None:
    """``divergence`` one of :data:`DIVERGENCES`; for ``"jsd"``, ``0 < beta < 1`` when known."""
    if not isinstance(divergence, str) or divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(map(repr, DIVERGENCES))}; "
                         f"got {divergence!r}")
    b = concrete_value(beta)
    if divergence == "jsd" and b is not None and not 0.0 < b < 1.0:
        raise ValueError(f"beta must be in (0, 1) for divergence='jsd', got {beta!r} "
                         "(beta = 0 and 1 are divergence='forward_kl' and 'reverse_kl')")


def distillation_loss(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 1.0,
    axis: int = -1,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    labels: ArrayLike | None = None,
    ignore_index: int = -100,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Distillation loss ``T²·D(softmax(s/T), softmax(t/T))`` per example (or token).

    ``s`` are the student's logits, ``t`` the teacher's, ``T`` the temperature; with
    student ``p = softmax(s/T)`` and teacher ``q = softmax(t/T)``, ``divergence`` picks ``D``:

    * ``"forward_kl"`` (default): ``KL(q ‖ p) = Σ q·(log q − log p)``, Hinton et al.'s
      soft-target loss; PyTorch writes it ``T**2 * kl_div(log_softmax(s/T), softmax(t/T),
      reduction="batchmean")``, the same number for ``reduction="mean"``.
    * ``"reverse_kl"``: ``KL(p ‖ q)``, mode-seeking (GKD, MiniLLM).
    * ``"jsd"``: the generalized Jensen–Shannon divergence
      ``β·KL(q ‖ m) + (1 − β)·KL(p ‖ m)``, ``m = (1 − β)·p + β·q``, ``0 < β < 1``.

    TRL's ``generalized_jsd_loss`` (GKD) is this loss divided by ``T²`` (equal at ``T = 1``);
    its ``beta=0`` and ``beta=1`` are ``"forward_kl"`` and ``"reverse_kl"`` here. The
    teacher is held constant (``stop_gradient``): only the student learns. The ``T²``
    factor keeps the gradient's size independent of ``T``. A class the teacher gives
    probability 0 (a logit of ``−inf``) contributes exactly 0 to the forward KL and to
    the teacher's half of the JSD, and makes the reverse KL infinite.

    References: Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network"
    (2015); Agarwal et al., "On-Policy Distillation of Language Models: Learning from
    Self-Generated Mistakes" (GKD, ICLR 2024).

    Args:
      student_logits: ``[..., K]`` logits of the model being trained.
      teacher_logits: the same shape.
      temperature: ``T > 0``.
      axis: the class axis.
      divergence: ``"forward_kl"``, ``"reverse_kl"`` or ``"jsd"``.
      beta: the JSD's interpolation ``β`` (used by ``"jsd"`` only).
      labels: optional integer ``[...]`` (the logits' shape without ``axis``), e.g. a
        language model's targets; entries equal to ``ignore_index`` behave as
        ``where=False`` (TRL's ``labels != -100`` mask).
      ignore_index: the label that drops an example (only with ``labels``).

    Returns:
      Scalar for ``"mean"``/``"sum"`` (over examples); per example for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> s, t = jnp.array([[1.0, 2.0, 3.0]]), jnp.array([[3.0, 2.0, 1.0]])
      >>> lossjax.distillation_loss(s, t, temperature=2.0)
      Array(1.280627, dtype=float32)
      >>> lossjax.distillation_loss(s, t, divergence="jsd", beta=0.5)
      Array(0.247588, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("temperature", temperature)
    check_divergence(divergence, beta)
    s, t = class_axis_inputs(("student_logits", student_logits),
                             ("teacher_logits", teacher_logits), axis=axis, where=where)
    mask = label_mask(labels, ignore_index, s.shape[:-1], where)
    s, t = keep_entries(mask, s, t, feature_axes=(-1,))
    t = jax.lax.stop_gradient(t)
    log_p_teacher = jax.nn.log_softmax(t / temperature, axis=-1)
    log_p_student = jax.nn.log_softmax(s / temperature, axis=-1)
    loss = temperature**2 * distillation_divergence(log_p_student, log_p_teacher, divergence,
                                                    beta)
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


def label_mask(labels: ArrayLike | None, ignore_index: int, shape: tuple[int, ...],
               where: ArrayLike | None) -> Array | None:
    """``where`` (broadcast to the per-example ``shape``) and ``labels != ignore_index``."""
    mask = example_mask(where, shape)
    if labels is None:
        return mask
    labels = real_array("labels", labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integer token ids, got dtype {labels.dtype}")
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(f"labels has shape {tuple(labels.shape)}; expected {tuple(shape)}, the "
                         "logits' shape without the class axis")
    kept = labels != ignore_index
    return kept if mask is None else mask & kept

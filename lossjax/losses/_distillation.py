"""Knowledge distillation: a student matches a teacher's temperature-softened outputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._validation import check_positive
from lossjax.losses._inputs import class_axis_inputs
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["distillation_loss"]


def distillation_loss(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 1.0,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Soft-target distillation loss ``T²·KL(softmax(t/T) ‖ softmax(s/T))`` per example.

    ``s`` are the student's logits, ``t`` the teacher's, ``T`` the temperature. The teacher
    is held constant (``stop_gradient``): only the student learns. The ``T²`` factor keeps
    the gradient's size independent of ``T`` (Hinton et al.), so the term can be mixed
    with the hard-label cross-entropy without retuning its weight. A class the teacher
    gives probability 0 (a logit of ``−inf``) contributes exactly 0.

    PyTorch writes this as ``T**2 * kl_div(log_softmax(s/T), softmax(t/T),
    reduction="batchmean")``: the same number for ``reduction="mean"``.

    Reference: Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network"
    (2015).

    Args:
      student_logits: ``[..., K]`` logits of the model being trained.
      teacher_logits: the same shape.
      temperature: ``T > 0``.
      axis: the class axis.

    Returns:
      Scalar for ``"mean"``/``"sum"`` (over examples); per example for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.distillation_loss(jnp.array([[1.0, 2.0, 3.0]]),
      ...                           jnp.array([[3.0, 2.0, 1.0]]), temperature=2.0)
      Array(1.280627, dtype=float32)
    """
    check_reduction(reduction)
    check_positive("temperature", temperature)
    s, t = class_axis_inputs(("student_logits", student_logits),
                             ("teacher_logits", teacher_logits), axis=axis, where=where)
    t = jax.lax.stop_gradient(t)
    log_p_teacher = jax.nn.log_softmax(t / temperature, axis=-1)
    log_p_student = jax.nn.log_softmax(s / temperature, axis=-1)
    present = log_p_teacher > -jnp.inf
    safe_teacher = jnp.where(present, log_p_teacher, 0.0)
    safe_student = jnp.where(present, log_p_student, 0.0)
    terms = jnp.where(present, jnp.exp(safe_teacher) * (safe_teacher - safe_student), 0.0)
    loss = temperature**2 * jnp.sum(terms, axis=-1)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)

"""Schedule-free SGD and AdamW: no learning-rate decay schedule needed.

Three sequences: ``z`` takes the base optimizer's steps, ``x`` is a weighted running average
of ``z`` (the point to evaluate at), and the parameters the model trains with are
``y = (1 − β₁)·z + β₁·x``, where gradients are taken::

    z_{t+1} = z_t − γ_t·d_t                    (d_t: the base direction at y_t)
    x_{t+1} = (1 − c_{t+1})·x_t + c_{t+1}·z_{t+1}
    y_{t+1} = (1 − β₁)·z_{t+1} + β₁·x_{t+1}

with ``c_{t+1} = w_t / Σ_{i≤t} w_i`` and ``w_t = (max_{i≤t} γ_i)^p`` (``p`` =
``weight_lr_power``), which keeps the warm-up steps from dominating the average. Only
``z`` is stored; ``x`` is recovered from ``y`` and ``z``, so the memory is the base
optimizer's plus one copy of the parameters.

Same arguments, defaults and numbers as ``optax.contrib.schedule_free_sgd`` /
``schedule_free_adamw`` (0.2.8), and the state has the same field names, so
:func:`schedule_free_eval_params` also accepts optax's state and vice versa.

References: Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less
Scheduled" (2024), https://arxiv.org/abs/2405.15682.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import (
    check_in_range,
    check_non_negative,
    check_positive,
    concrete_value,
)
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_array_leaves,
    bias_correction_factor,
    compute_dtype,
    dtype_of,
    ema_of_squares,
    full_like,
    increment_count,
    is_float0,
    per_leaf,
    scalar_dtype,
    upcast,
)
from lossjax.optimizers._transforms import (
    ScaleByRmsWithCountState,
    ScaleByScheduleState,
)

Array = jax.Array


class ScheduleFreeAdamWState(NamedTuple):
    """The state lossjax 0.x kept for :func:`schedule_free_adamw`'s base optimizer (no
    longer built: the base state is now optax's, see :class:`ScheduleFreeState`)."""

    nu: Any
    learning_rate: Any


class ScheduleFreeState(NamedTuple):
    """State of the schedule-free optimizers (optax's field names).

    ``b1``: β₁; ``weight_sum``: ``Σ w_i``; ``step_count``: steps taken + 1 (int32);
    ``max_lr``: the largest rate so far; ``base_optimizer_state``: the state optax keeps
    for the base optimizer (``sgd(lr)``'s, after ``add_decayed_weights``' when
    ``weight_decay`` is set; AdamW without momentum: ``(ScaleByRmsWithCountState(count,
    nu), EmptyState(), lr)``), where ``lr`` is a ``ScaleByScheduleState(count)`` for a
    schedule or a warm-up and empty for a float rate; ``z``: the base iterate.
    """

    b1: Array
    weight_sum: Array
    step_count: Array
    max_lr: Array
    base_optimizer_state: Any
    z: Any


def schedule_free_eval_params(state: Any, params: Any) -> Any:
    """The averaged point ``x = (y − (1 − β₁)·z) / β₁`` to evaluate (validate, test, save).

    Training continues from ``params`` (``y``); evaluate the model at the returned tree.
    Works on the state of :func:`schedule_free_sgd`, :func:`schedule_free_adamw`, optax's
    ``schedule_free`` optimizers, or any state holding one (e.g. inside ``optax.chain``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> opt = lossjax.schedule_free_sgd(0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = opt.init(params)
      >>> for _ in range(2):
      ...     updates, state = opt.update(params, state, params)  # gradient of ½‖w‖²
      ...     params = optax.apply_updates(params, updates)
      >>> params  # y: where the gradients are taken
      Array([ 0.3625, -0.725], dtype=float32)
      >>> lossjax.schedule_free_eval_params(state, params)  # x: where to evaluate
      Array([ 0.375, -0.75 ], dtype=float32)
    """
    found = _find_state(state)
    b1 = found.b1
    return jax.tree.map(
        lambda y, z: (y - (1.0 - b1) * z).astype(y.dtype) / b1.astype(y.dtype), params, found.z)


def _moment(p: Any) -> Array:
    """Zeros shaped like ``p``, stored in float32 at least (half params keep full moments)."""
    return full_like(p, dtype=compute_dtype(dtype_of(p)))


def _find_state(state: Any) -> Any:
    def is_schedule_free(node: Any) -> bool:
        return hasattr(node, "b1") and hasattr(node, "z") and hasattr(node, "weight_sum")

    found = [s for s in jax.tree.leaves(state, is_leaf=is_schedule_free) if is_schedule_free(s)]
    if len(found) != 1:
        raise ValueError("schedule_free_eval_params needs the state of one schedule-free "
                         f"optimizer, found {len(found)} in {type(state).__name__}")
    return found[0]


def _warmed_up(learning_rate: ScalarOrSchedule, warmup_steps: int | None):
    """``rate(count)``, the rate at step ``count``, and whether it depends on ``count``."""
    if callable(learning_rate):
        if warmup_steps is not None:
            raise ValueError("warmup_steps needs a float learning_rate (put the warm-up in "
                             "the schedule instead)")
        return learning_rate, True
    if warmup_steps is None:
        return (lambda count: learning_rate), False

    def warm(count):
        # optax's warmup_constant_schedule(0, rate, warmup_steps), written the same way.
        fraction = 1.0 - jnp.clip(count, 0, warmup_steps) / warmup_steps
        return (0.0 - learning_rate) * fraction + learning_rate

    return warm, True


def _is_schedule_state(node: Any) -> bool:
    return isinstance(node, ScaleByScheduleState)


def _check_common(learning_rate, warmup_steps, b1, weight_decay, weight_lr_power) -> None:
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)
    if warmup_steps is not None:
        check_positive("warmup_steps", warmup_steps)
    check_in_range("b1", b1, 0.0, 1.0, high_inclusive=True)
    check_positive("b1", b1)
    if weight_decay is not None:
        check_non_negative("weight_decay", weight_decay)
    check_non_negative("weight_lr_power", weight_lr_power)


def _schedule_free(
    learning_rate: ScalarOrSchedule,
    warmup_steps: int | None,
    b1: float,
    weight_decay: float | None,
    weight_lr_power: float,
    state_dtype: Any,
    adam: tuple[float, float] | None,
) -> optax.GradientTransformationExtraArgs:
    """Schedule-free with the SGD direction ``g`` (``adam=None``) or AdamW's ``g/(√v̂ + ε)``
    (``adam=(b2, eps)``); ``weight_decay`` adds ``wd·y`` to the direction."""
    rate, scheduled = _warmed_up(learning_rate, warmup_steps)
    decays = weight_decay is not None and concrete_value(weight_decay) != 0

    def step(u, y32, z, lr, ck):
        if decays:
            u = u + weight_decay * y32
        z_new = upcast(z) + (-lr) * u
        x = (y32 - (1.0 - b1) * upcast(z)) / b1
        x = (1.0 - ck) * x + ck * z_new
        y_new = b1 * x + (1.0 - b1) * z_new
        return y_new - y32, z_new

    def sgd_leaf(g, y, z, lr, ck):
        update, z_new = step(upcast(g), upcast(y), z, lr, ck)
        return update.astype(y.dtype), z_new.astype(z.dtype)

    def adam_leaf(g, y, z, v, lr, ck, correction):
        assert adam is not None  # this leaf rule is chosen only when adam is set
        b2, eps = adam
        g32 = upcast(g)
        v32 = ema_of_squares(upcast(v), g32, b2)
        direction = g32 * (1.0 / (jnp.sqrt(v32 / correction) + eps))
        update, z_new = step(direction, upcast(y), z, lr, ck)
        return update.astype(y.dtype), z_new.astype(z.dtype), v32.astype(v.dtype)

    apply = per_leaf(adam_leaf, 3) if adam else per_leaf(sgd_leaf, 2)

    def base_state(count, nu):
        """optax's state of the base optimizer after ``count`` steps (each count its own
        buffer: a step that donates the state frees each leaf once)."""
        lr_part = ScaleByScheduleState(jnp.array(count, copy=True)) if scheduled else \
            optax.EmptyState()
        if adam:
            return (ScaleByRmsWithCountState(count, nu), optax.EmptyState(), lr_part)
        sgd_part = (optax.EmptyState(), lr_part)
        return sgd_part if weight_decay is None else (optax.EmptyState(), sgd_part)

    def base_count(base):
        if adam:
            return base[0].count
        found = [n for n in jax.tree.leaves(base, is_leaf=_is_schedule_state)
                 if _is_schedule_state(n)]
        return found[0].count if found else jnp.zeros([], jnp.int32)

    def init(params):
        dtype = scalar_dtype(params)
        nu = jax.tree.map(_moment, params) if adam else None
        # a copy, never the caller's buffer: a step that donates params must not free z
        z = jax.tree.map(lambda p: jnp.array(p, state_dtype or dtype_of(p), copy=True), params)
        return ScheduleFreeState(
            b1=jnp.asarray(b1, dtype), weight_sum=jnp.zeros([], dtype),
            step_count=jnp.ones([], jnp.int32), max_lr=jnp.zeros([], dtype),
            base_optimizer_state=base_state(jnp.zeros([], jnp.int32), nu), z=z)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("schedule-free optimizers need the parameters: call "
                             "update(grads, state, params)")
        dtype = state.max_lr.dtype
        count = base_count(state.base_optimizer_state)
        # optax evaluates the base optimizer's rate at its own count (0, 1, ...) and the
        # averaging weight at step_count (1, 2, ...): with a warm-up they differ by a step.
        lr = jnp.asarray(rate(count), dtype)
        max_lr = jnp.maximum(state.max_lr, jnp.asarray(rate(state.step_count), dtype))
        weight = max_lr**weight_lr_power
        weight_sum = state.weight_sum + weight
        ck = jnp.where(jnp.isnan(weight) | jnp.isnan(weight_sum), jnp.nan,
                       jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf))
        if adam:
            # 1 − b2ᵗ without cancellation (optax forms it in float32, where it is 0 for a
            # b2 within 6e-8 of 1: its steps are then 0)
            correction = bias_correction_factor(adam[0], state.step_count, dtype)
            updates, z, nu = apply((updates, params, state.z,
                                    state.base_optimizer_state[0].nu), (lr, ck, correction))
        else:
            updates, z = apply((updates, params, state.z), (lr, ck))
            nu = None
        base = base_state(increment_count(count), nu)
        return updates, ScheduleFreeState(state.b1, weight_sum, increment_count(state.step_count),
                                          max_lr, base, z)

    return optax.GradientTransformationExtraArgs(init, update)


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    weight_decay: float | None = None,
    weight_lr_power: float = 2.0,
    state_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Schedule-free SGD: ``z ← z − γ·(g + wd·y)`` with the averaging above.

    Train with the parameters this updates (``y``); evaluate, validate and save at
    :func:`schedule_free_eval_params` (``x``). Keep ``γ`` constant after an optional
    linear warm-up: no decay schedule is needed, that is the point.

    Args:
      learning_rate: ``γ >= 0``, a float (a constant of the compiled step; to change it
        between steps, build through :func:`inject_hyperparams`) or a schedule.
      warmup_steps: linear warm-up from 0 to ``learning_rate`` over this many steps
        (float rates only).
      b1: interpolation ``β₁`` in ``(0, 1]`` (``y`` between ``z`` and ``x``).
      weight_decay: L2 coefficient added to the gradient (coupled: scaled by ``γ``, as in
        PyTorch's and optax's SGD), or ``None``.
      weight_lr_power: ``p`` in the averaging weight ``w_t = (max γ)^p``.
      state_dtype: dtype to store ``z`` in (default: the parameters').

    Unlike Keras or PyTorch optimizers, ``y`` (trained) and ``x`` (evaluated) differ:
    the reference implementation's ``optimizer.eval()`` swaps them in place; here call
    :func:`schedule_free_eval_params`.

    References: Defazio et al., "The Road Less Scheduled" (2024).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w**2)
      >>> opt = lossjax.schedule_free_sgd(0.1)
      >>> params = jnp.array([1.0, 2.0, 3.0]); state = opt.init(params)
      >>> for _ in range(20):
      ...     updates, state = opt.update(jax.grad(f)(params), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> f(lossjax.schedule_free_eval_params(state, params))  # optax: the same
      Array(0.00022956, dtype=float32)
    """
    _check_common(learning_rate, warmup_steps, b1, weight_decay, weight_lr_power)
    return _schedule_free(learning_rate, warmup_steps, b1, weight_decay,
                          weight_lr_power, state_dtype, adam=None)


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    weight_lr_power: float = 2.0,
    state_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Schedule-free AdamW: ``z ← z − γ·(g/(√v̂ + ε) + wd·y)``, ``v̂ = v/(1 − β₂ᵗ)``,
    ``v ← β₂·v + (1 − β₂)·g²``, with the averaging above (no first moment: the
    interpolation replaces Adam's momentum).

    Train with the parameters this updates (``y``); evaluate at
    :func:`schedule_free_eval_params`. The defaults (``γ = 0.0025``) are optax's; the
    authors recommend a warm-up (``warmup_steps``) and tuning ``γ`` and ``β₁`` per problem.

    Args:
      learning_rate: ``γ >= 0``, a float (a constant of the compiled step; to change it
        between steps, build through :func:`inject_hyperparams`) or a schedule.
      warmup_steps: linear warm-up from 0 to ``learning_rate`` (float rates only).
      b1: interpolation ``β₁`` in ``(0, 1]``.
      b2: second-moment decay in ``[0, 1)``.
      eps: ``>= 0``, added to ``√v̂``.
      weight_decay: decoupled weight decay (times ``γ``, PyTorch's AdamW convention).
      weight_lr_power: ``p`` in the averaging weight ``w_t = (max γ)^p``.
      state_dtype: dtype to store ``z`` in (default: the parameters').

    PyTorch (``schedulefree.AdamWScheduleFree``) swaps ``x`` and ``y`` in place with
    ``optimizer.eval()``/``.train()``; Keras has no schedule-free optimizer.

    References: Defazio et al., "The Road Less Scheduled" (2024).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w**2)
      >>> opt = lossjax.schedule_free_adamw(0.5, warmup_steps=5)
      >>> params = jnp.array([1.0, 2.0, 3.0]); state = opt.init(params)
      >>> for _ in range(30):
      ...     updates, state = opt.update(jax.grad(f)(params), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> f(lossjax.schedule_free_eval_params(state, params))  # optax: the same
      Array(0.07058, dtype=float32)
    """
    _check_common(learning_rate, warmup_steps, b1, weight_decay, weight_lr_power)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    return _schedule_free(learning_rate, warmup_steps, b1, weight_decay, weight_lr_power,
                          state_dtype, adam=(b2, eps))


def schedule_free(
    base_optimizer: optax.GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    weight_lr_power: float = 2.0,
    state_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Make any optimizer schedule-free: its updates move ``z``, and the parameters are
    the interpolation ``y`` of ``z`` and the running average ``x`` (see the module notes)::

        z_{t+1} = z_t + u_t          (u_t: base_optimizer's update at y_t, its −γ included)

    ``learning_rate`` (the base optimizer's, a float or a schedule of the step 1, 2, ...)
    only sets the averaging weights ``w_t = (max γ)^weight_lr_power``. Switch the base
    optimizer's momentum off (``b1=0`` for Adam): the interpolation replaces it. Extra
    keyword arguments of ``update`` go to ``base_optimizer``. Evaluate at
    :func:`schedule_free_eval_params`. Same arguments, numbers and state as
    ``optax.contrib.schedule_free``.

    References: Defazio et al., "The Road Less Scheduled" (2024).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w**2)
      >>> opt = lossjax.schedule_free(lossjax.sgd(0.1), learning_rate=0.1)
      >>> params = jnp.array([1.0, 2.0, 3.0]); state = opt.init(params)
      >>> for _ in range(20):
      ...     updates, state = opt.update(jax.grad(f)(params), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> f(lossjax.schedule_free_eval_params(state, params))  # = schedule_free_sgd(0.1)
      Array(0.00022956, dtype=float32)
    """
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)
    check_in_range("b1", b1, 0.0, 1.0, high_inclusive=True)
    check_positive("b1", b1)
    check_non_negative("weight_lr_power", weight_lr_power)
    base = optax.with_extra_args_support(base_optimizer)

    def leaf(u, z, y, ck):
        z_new = (upcast(z) + upcast(u)).astype(z.dtype)
        y32, z_new32 = upcast(y), upcast(z_new)
        ck = ck.astype(y32.dtype)
        x = (y32 - (1.0 - b1) * upcast(z)) / b1
        x = (1.0 - ck) * x + ck * z_new32
        y_new = b1 * x + (1.0 - b1) * z_new32
        return (y_new - y32).astype(y.dtype), z_new

    apply = per_leaf(leaf, 2)

    def init(params):
        dtype = _lowest_float_dtype(params)
        z = jax.tree.map(lambda p: jnp.array(p, state_dtype or dtype_of(p), copy=True), params)
        return ScheduleFreeState(
            b1=jnp.asarray(b1, dtype), weight_sum=jnp.zeros([], dtype),
            step_count=jnp.ones([], jnp.int32), max_lr=jnp.zeros([], dtype),
            base_optimizer_state=base.init(params), z=z)

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("schedule_free needs the parameters: call "
                             "update(grads, state, params)")
        dtype = state.max_lr.dtype
        lr = learning_rate(state.step_count) if callable(learning_rate) else learning_rate
        max_lr = jnp.maximum(state.max_lr, jnp.asarray(lr, dtype))
        weight = max_lr**weight_lr_power
        weight_sum = state.weight_sum + weight
        ck = jnp.where(jnp.isnan(weight) | jnp.isnan(weight_sum), jnp.nan,
                       jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf))
        base_updates, base_state = base.update(updates, state.base_optimizer_state, params,
                                               **extra_args)
        # an integer leaf (float0 gradient) is not trained: its z stays, its update is 0
        base_updates = jax.tree.map(lambda g, u: g if is_float0(g) else u, updates,
                                    base_updates)
        new_updates, z = apply((base_updates, state.z, as_array_leaves(params)), (ck,))
        return new_updates, ScheduleFreeState(state.b1, weight_sum,
                                              increment_count(state.step_count), max_lr,
                                              base_state, z)

    return optax.GradientTransformationExtraArgs(init, update)


def _lowest_float_dtype(params: Any) -> Any:
    """The lowest inexact dtype among the parameters, the one the others promote from
    (optax keeps its scalars in it; complex for complex parameters, as optax's); integer
    leaves are not trained and do not count."""
    lowest = None
    for p in jax.tree.leaves(params):
        dtype = dtype_of(p)
        if jnp.issubdtype(dtype, jnp.inexact):
            lowest = dtype if lowest is None or jnp.promote_types(lowest, dtype) == lowest \
                else lowest
    return jnp.float32 if lowest is None else lowest

"""Optimizers that estimate their own step size: Prodigy, D-Adaptation AdamW and DoG.

Each keeps a running estimate ``d`` of the distance from the initial point to a solution
(in the Adam norm for Prodigy and D-Adaptation, the Euclidean norm for DoG) and steps by
``d`` times a ratio built from the gradients; ``learning_rate`` is then a dimensionless
multiplier (1.0, or a schedule that treats 1.0 as its peak), not a rate to tune.

The estimate is a sum over all parameters (a global scalar per step), so these are not
per-leaf optimizers: under sharding each step all-reduces a few scalars. Same arguments,
defaults and numbers as ``optax.contrib.prodigy``, ``dadapt_adamw`` and ``dog`` (0.2.8);
the state field names are optax's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    abs_sq,
    compute_dtype,
    dtype_of,
    full_like,
    increment_count,
    per_leaf,
    reject_complex,
    safe_div,
    scalar_dtype,
    scale_leaf,
    trained_leaves,
    upcast,
    without_float0,
)
from lossjax.optimizers._transforms import (
    scale_by_learning_rate,
)
from lossjax.regularizers import add_decayed_weights

Array = jax.Array


def _check_betas(betas: tuple[float, float]) -> tuple[float, float]:
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    beta1, beta2 = betas
    check_in_range("betas[0]", beta1, 0.0, 1.0)
    check_in_range("betas[1]", beta2, 0.0, 1.0)
    return beta1, beta2


def _check_multiplier(learning_rate: ScalarOrSchedule) -> None:
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)


def _needs_params(name: str, params: Any) -> None:
    if params is None:
        raise ValueError(f"{name} needs the parameters: call update(grads, state, params)")


def _total(tree: Any) -> Array:
    """Sum of the per-leaf partial sums in ``tree`` (0 for an empty tree)."""
    return sum(jax.tree.leaves(tree), jnp.zeros([]))


def _zero_moments(params: Any) -> dict[str, Any]:
    """``exp_avg``, ``exp_avg_sq`` and ``grad_sum``: zeros shaped like ``params``, in
    float32 at least."""
    return {name: jax.tree.map(lambda p: full_like(p, dtype=compute_dtype(dtype_of(p))), params)
            for name in ("exp_avg", "exp_avg_sq", "grad_sum")}


def _copy(params: Any) -> Any:
    """A copy of the initial parameters: a step that donates ``params`` must not free it."""
    return jax.tree.map(lambda p: jnp.array(p, copy=True), params)


def _adam_step_size(
    learning_rate: ScalarOrSchedule, beta1: float, beta2: float, count: Array, d: Array
) -> tuple[Array, Array, Array]:
    """``(t, d, η)`` with ``t = count + 1`` and ``η = d·λ(count)·√(1 − β₂ᵗ)/(1 − β₁ᵗ)``: the
    Adam bias corrections folded into the step size, as in the papers."""
    t = increment_count(count)
    multiplier = learning_rate(count) if callable(learning_rate) else learning_rate
    correction = (((1 - beta2**t) ** 0.5) / (1 - beta1**t)).astype(d.dtype)
    return t, d, (d * multiplier * correction).astype(d.dtype)


class ProdigyState(NamedTuple):
    """``exp_avg``, ``exp_avg_sq``: Adam's moments of ``d·g``; ``grad_sum``: the weighted
    sum ``s``; ``params0``: the initial point; ``estim_lr``: ``d``; ``numerator_weighted``:
    the running numerator of ``d``'s estimate; ``count``: steps taken (int32)."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: Array
    numerator_weighted: Array
    count: Array


def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    beta3: float | None = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    estim_lr_coef: float = 1.0,
    weight_decay: float = 0.0,
    safeguard_warmup: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Prodigy: AdamW whose step size ``d`` is estimated from the run itself.

    With ``λ_t`` the schedule multiplier, ``η_t = d_t·λ_t·√(1 − β₂ᵗ)/(1 − β₁ᵗ)``::

        m ← β₁·m + (1 − β₁)·d·g          v ← β₂·v + (1 − β₂)·d²·g²
        r ← β₃·r + (d/d₀)·η·⟨g, w₀ − w⟩  s ← β₃·s + (η/d₀)·d·g
        d ← max(d, coef·r/‖s‖₁)
        w ← w − η·(m/(√v + d·ε) + wd·w)

    ``d`` starts at ``estim_lr0`` (an under-estimate) and only grows. Needs ``params`` in
    ``update``. The state holds a copy of the initial parameters (``params0``).

    Args:
      learning_rate: multiplier ``λ`` of the estimated rate: 1.0, or a schedule with peak
        1.0 (the authors recommend a linear or cosine decay with a short warm-up).
      betas: Adam's ``(β₁, β₂)``, each in ``[0, 1)``.
      beta3: decay of ``r`` and ``s`` in ``[0, 1)``; default ``√β₂``.
      eps: ``>= 0``, Adam's ε (times ``d``).
      estim_lr0: ``d₀ > 0``, the initial estimate.
      estim_lr_coef: ``coef > 0``, multiplies every estimate (PyTorch's ``d_coef``).
      weight_decay: decoupled weight decay ``>= 0`` (times ``η``).
      safeguard_warmup: use ``d`` instead of ``η`` in ``s`` (for schedules that warm up).

    PyTorch's ``prodigyopt.Prodigy`` names these ``lr``, ``betas``, ``beta3``, ``d0``,
    ``d_coef``, ``weight_decay``, ``safeguard_warmup``; its ``decouple=True`` default is the
    decay here, and it can also bias-correct (``use_bias_correction``); Keras has none.

    References: Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
    Learner" (2023), https://arxiv.org/abs/2306.06101.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w**2)
      >>> opt = lossjax.prodigy()
      >>> params = jnp.array([1.0, 2.0, 3.0]); state = opt.init(params)
      >>> @jax.jit
      ... def step(params, state):  # compiled once, reused for every step
      ...     updates, state = opt.update(jax.grad(f)(params), state, params)
      ...     return optax.apply_updates(params, updates), state
      >>> for _ in range(200):
      ...     params, state = step(params, state)
      >>> f(params), state.estim_lr  # d grew from 1e-6 to 0.83 on its own; optax: the same
      (Array(8.375e-08, dtype=float32), Array(0.83274, dtype=float32))
    """
    beta1, beta2 = _check_betas(betas)
    b3 = beta2**0.5 if beta3 is None else beta3
    check_in_range("beta3", b3, 0.0, 1.0)
    _check_multiplier(learning_rate)
    check_non_negative("eps", eps)
    check_positive("estim_lr0", estim_lr0)
    check_positive("estim_lr_coef", estim_lr_coef)
    check_non_negative("weight_decay", weight_decay)

    def moments_leaf(g, w, w0, m, v, s, d, sum_scale):
        g32, w32 = upcast(g), upcast(w)
        dg = d * g32
        numerator = jnp.sum(g32 * (upcast(w0) - w32))
        m32 = beta1 * upcast(m) + (1 - beta1) * dg
        v32 = beta2 * upcast(v) + (1 - beta2) * dg * dg
        s32 = b3 * upcast(s) + sum_scale * dg / estim_lr0
        return (m32.astype(m.dtype), v32.astype(v.dtype), s32.astype(s.dtype), numerator,
                jnp.sum(jnp.abs(s32)))

    def step_leaf(w, m, v, dlr, d_eps):
        w32 = upcast(w)
        out = -weight_decay * dlr * w32 - dlr * upcast(m) / (jnp.sqrt(upcast(v)) + d_eps)
        return (out.astype(w.dtype),)

    moments = per_leaf(moments_leaf, 5)
    steps = per_leaf(step_leaf, 1)

    def init(params):
        reject_complex("prodigy", params)
        dtype = scalar_dtype(params)
        return ProdigyState(
            **_zero_moments(params), params0=_copy(params),
            estim_lr=jnp.asarray(estim_lr0, dtype), numerator_weighted=jnp.zeros([], dtype),
            count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _needs_params("prodigy", params)
        count, d, dlr = _adam_step_size(learning_rate, beta1, beta2, state.count,
                                        state.estim_lr)
        sum_scale = d if safeguard_warmup else dlr
        # an integer leaf's float0 gradient counts as 0 (as in dadapt_adamw)
        m, v, s, numerators, abs_sums = moments(
            (without_float0(updates), params, state.params0, state.exp_avg, state.exp_avg_sq,
             state.grad_sum),
            (d, sum_scale))
        numerator = b3 * state.numerator_weighted + (d / estim_lr0) * dlr * _total(numerators)
        # all-zero gradients so far: no estimate (0/0), d stays
        estimate = estim_lr_coef * safe_div(numerator, _total(abs_sums), True)
        new_d = jnp.maximum(d, estimate).astype(d.dtype)
        (out,) = steps((params, m, v), (dlr, new_d * eps))
        return out, ProdigyState(m, v, s, state.params0, new_d,
                                 numerator.astype(d.dtype), count)

    return optax.GradientTransformationExtraArgs(init, update)


class DAdaptAdamWState(NamedTuple):
    """``exp_avg``, ``exp_avg_sq``: Adam's moments (the first scaled by the step size);
    ``grad_sum``: the weighted sum ``s``; ``estim_lr``: ``d``; ``numerator_weighted``: the
    running numerator of ``d``'s estimate; ``count``: steps taken (int32)."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    estim_lr: Array
    numerator_weighted: Array
    count: Array


def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    weight_decay: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """D-Adaptation AdamW: AdamW whose step size is a lower bound ``d`` on the distance to
    a solution, estimated as it goes.

    With ``η_t = d_t·λ_t·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`` and ``c = √β₂``::

        r ← c·r + (1 − c)·η·⟨g, s/(√v + ε)⟩     (s and v from the previous step)
        m ← β₁·m + (1 − β₁)·η·g                 v ← β₂·v + (1 − β₂)·g²
        s ← c·s + (1 − c)·η·g
        d ← max(d, r / ((1 − c)·‖s‖₁))
        w ← w − m/(√v + ε) − wd·η·w

    ``d`` starts at ``estim_lr0`` and only grows. Needs ``params`` in ``update``.

    Args:
      learning_rate: multiplier ``λ`` of the estimated rate: 1.0 or a schedule peaking at 1.
      betas: Adam's ``(β₁, β₂)``, each in ``[0, 1)``.
      eps: ``>= 0``, Adam's ε.
      estim_lr0: ``d₀ > 0``, the initial estimate.
      weight_decay: decoupled weight decay ``>= 0`` (times ``η``).

    PyTorch's ``dadaptation.DAdaptAdam`` calls ``estim_lr0`` ``d0`` and adds options
    (``growth_rate``, ``decouple``, ``use_bias_correction``) not here; Keras has none.

    References: Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation"
    (ICML 2023), https://arxiv.org/abs/2301.07733.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w**2)
      >>> opt = lossjax.dadapt_adamw()
      >>> params = jnp.array([1.0, 2.0, 3.0]); state = opt.init(params)
      >>> @jax.jit
      ... def step(params, state):  # compiled once, reused for every step
      ...     updates, state = opt.update(jax.grad(f)(params), state, params)
      ...     return optax.apply_updates(params, updates), state
      >>> for _ in range(50):
      ...     params, state = step(params, state)
      >>> f(params), state.estim_lr  # optax: the same
      (Array(0.458, dtype=float32), Array(2.9037, dtype=float32))
    """
    beta1, beta2 = _check_betas(betas)
    _check_multiplier(learning_rate)
    check_non_negative("eps", eps)
    check_positive("estim_lr0", estim_lr0)
    check_non_negative("weight_decay", weight_decay)
    root_beta2 = beta2**0.5

    def leaf(g, w, m, v, s, dlr):
        g32, w32, v_old, s_old = upcast(g), upcast(w), upcast(v), upcast(s)
        numerator = jnp.sum(g32 * (s_old / (jnp.sqrt(v_old) + eps)))
        m32 = beta1 * upcast(m) + (1 - beta1) * dlr * g32
        v32 = beta2 * v_old + (1 - beta2) * abs_sq(g32)
        s32 = root_beta2 * s_old + (1 - root_beta2) * dlr * g32
        out = -weight_decay * dlr * w32 - m32 / (jnp.sqrt(v32) + eps)
        return (out.astype(w.dtype), m32.astype(m.dtype), v32.astype(v.dtype),
                s32.astype(s.dtype), numerator, jnp.sum(jnp.abs(s32)))

    apply = per_leaf(leaf, 6)

    def init(params):
        reject_complex("dadapt_adamw", params)
        dtype = scalar_dtype(params)
        return DAdaptAdamWState(
            **_zero_moments(params), estim_lr=jnp.asarray(estim_lr0, dtype),
            numerator_weighted=jnp.zeros([], dtype), count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _needs_params("dadapt_adamw", params)
        count, d, dlr = _adam_step_size(learning_rate, beta1, beta2, state.count,
                                        state.estim_lr)
        # an integer leaf's float0 gradient counts as 0 (its update is then 0): the leaf
        # function's outputs do not mirror its inputs, so per_leaf cannot skip it
        out, m, v, s, numerators, abs_sums = apply(
            (without_float0(updates), params, state.exp_avg, state.exp_avg_sq, state.grad_sum),
            (dlr,))
        numerator = (root_beta2 * state.numerator_weighted
                     + (1 - root_beta2) * dlr * _total(numerators))
        # all-zero gradients so far: no estimate (0/0), d stays
        estimate = safe_div(numerator, (1 - root_beta2) * _total(abs_sums), True)
        new_d = jnp.maximum(d, estimate).astype(d.dtype)
        return out, DAdaptAdamWState(m, v, s, new_d, numerator.astype(d.dtype), count)

    return optax.GradientTransformationExtraArgs(init, update)


class DoGState(NamedTuple):
    """``is_init_step``: True before the first step; ``init_params``: ``w₀``;
    ``max_dist``: ``r̄ = max_t ‖w_t − w₀‖``; ``sum_sq_norm_grads``: ``Σ‖g‖²``."""

    is_init_step: Array
    init_params: Any
    max_dist: Array
    sum_sq_norm_grads: Array


InitStep = tuple[Literal["distance", "learning_rate", "heuristic"], float]
_INIT_STEP_KINDS = ("distance", "learning_rate", "heuristic")


def _check_init_step(init_step: InitStep) -> tuple[str, float]:
    try:
        kind, value = init_step
    except (TypeError, ValueError):
        raise ValueError(f"init_step must be a pair (kind, value), got {init_step!r}") from None
    if kind not in _INIT_STEP_KINDS:
        raise ValueError(f"init_step's kind must be one of {_INIT_STEP_KINDS}, got {kind!r}")
    check_non_negative("init_step's value", value)
    return kind, value


def scale_by_dog(init_step: InitStep, eps: float = 1e-8) -> optax.GradientTransformation:
    """DoG's step size: ``u ← u · r̄_t/√(Σ_{k≤t}‖g_k‖² + eps)``, ``r̄_t = max_{k≤t}‖w_k − w₀‖``.

    ``init_step`` fixes the first step: ``("distance", r)`` sets ``r̄₀ = r``;
    ``("heuristic", α)`` sets ``r̄₀ = α·(1 + ‖w₀‖)`` (``init`` must then see the real
    parameters, integer leaves included: ``init`` sees no gradient); ``("learning_rate",
    η)`` takes a first step of ``η``. An integer leaf (a ``float0`` gradient) adds nothing
    to ``r̄_t`` and ``Σ‖g‖²``. See :func:`dog`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.scale_by_dog(("distance", 1.0))
      >>> w0, g = jnp.zeros(2), jnp.array([3.0, 4.0])
      >>> u, state = opt.update(g, opt.init(w0), w0)
      >>> u  # r̄ = 1, Σ‖g‖² = 25: g · 1/5
      Array([0.6, 0.8], dtype=float32)
      >>> u, state = opt.update(g, state, jnp.array([-3.0, -4.0]))
      >>> u  # r̄ = ‖w − w₀‖ = 5, Σ‖g‖² = 50: g · 5/√50
      Array([2.12132, 2.82843 ], dtype=float32)
    """
    kind, value = _check_init_step(init_step)
    check_non_negative("eps", eps)

    def sums_leaf(g, w, w0):
        g32 = upcast(g)
        diff = upcast(w0) - upcast(w)
        return jnp.sum(abs_sq(diff)), jnp.sum(abs_sq(g32))

    sums = per_leaf(sums_leaf, 2)
    scale = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        dtype = scalar_dtype(params)
        if kind == "distance":
            r0 = jnp.asarray(value, dtype)
        elif kind == "heuristic":
            squares = [jnp.sum(abs_sq(upcast(p))) for p in jax.tree.leaves(params)]
            r0 = value * (1 + jnp.sqrt(_total(squares).astype(dtype)))
        else:
            r0 = jnp.zeros([], dtype)
        return DoGState(jnp.asarray(True), _copy(params),
                        jnp.asarray(r0, dtype), jnp.zeros([], dtype))

    def update(updates, state, params=None):
        _needs_params("dog", params)
        # an integer leaf (float0 gradient) is not trained and adds to neither sum
        dist_sq, grad_sq = sums((without_float0(updates), trained_leaves(updates, params),
                                 trained_leaves(updates, state.init_params)))
        max_dist = jnp.maximum(state.max_dist, jnp.sqrt(_total(dist_sq))).astype(
            state.max_dist.dtype)
        sum_sq = (state.sum_sq_norm_grads + _total(grad_sq)).astype(max_dist.dtype)
        rate = max_dist / jnp.sqrt(sum_sq + eps)
        if kind == "learning_rate":
            rate = jnp.where(state.is_init_step, value, rate)
        (updates,) = scale((updates,), (rate,))
        return updates, DoGState(jnp.asarray(False), state.init_params, max_dist, sum_sq)

    return optax.GradientTransformation(init, update)


def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: InitStep = ("heuristic", 1e-6),
    eps: float = 1e-8,
    weight_decay: float | None = None,
    mask: Any | Callable[[Any], Any] | None = None,
) -> optax.GradientTransformation:
    """Distance over Gradients: SGD with the step size ``η_t = r̄_t/√(Σ_{k≤t}‖g_k‖² + ε)``.

    ``r̄_t = max_{k≤t}‖w_k − w₀‖`` (norms over all parameters together)::

        w ← w − λ·η_t·(g + wd·w)

    The step grows as the iterates move away from ``w₀`` and shrinks with the accumulated
    gradient norm. The authors recommend evaluating a running average of the iterates
    (e.g. Polyak averaging).

    Args:
      learning_rate: multiplier ``λ`` (1.0, or a schedule).
      init_step: ``("heuristic", α)`` (default ``α = 1e-6``; 1e-4 with batch norm):
        ``r̄₀ = α(1 + ‖w₀‖)``, ``init`` must see the real parameters;
        ``("distance", r)``: ``r̄₀ = r``; ``("learning_rate", η)``: first step ``η``.
      eps: ``>= 0`` in the denominator.
      weight_decay: L2 coefficient ``wd`` added to the gradient before the step size is
        computed, or ``None``.
      mask: which leaves decay (a pytree of bools or a function of the parameters).

    PyTorch's ``dog.DoG`` names ``init_step``'s distance ``reps_rel`` (relative, the
    heuristic here); Keras has no DoG.

    References: Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic
    Step Size Schedule" (ICML 2023), https://arxiv.org/abs/2302.12022.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w**2)
      >>> opt = lossjax.dog(init_step=("distance", 1.0))
      >>> params = jnp.array([1.0, 2.0, 3.0]); state = opt.init(params)
      >>> for _ in range(20):
      ...     updates, state = opt.update(jax.grad(f)(params), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> f(params)  # optax: the same
      Array(1.4223e-16, dtype=float32)
    """
    _check_multiplier(learning_rate)
    decay = optax.identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return optax.chain(decay, scale_by_dog(init_step, eps), scale_by_learning_rate(learning_rate))


# ------------------------------------------------------------------------------ DoWG


class DoWGState(NamedTuple):
    """``init_params``: ``w₀``; ``weighted_sq_norm_grads``: ``v_t = Σ r̄_k²·‖g_k‖²``;
    ``estim_sq_dist``: ``r̄_t²`` (optax's fields)."""

    init_params: Any
    weighted_sq_norm_grads: Array
    estim_sq_dist: Array


def scale_by_dowg(
    init_estim_sq_dist: float | None = None, eps: float = 1e-4
) -> optax.GradientTransformation:
    """DoWG's step size: ``u ← u · r̄_t²/(√v_t + eps)``, with ``r̄_t² = max(r̄²_{t−1},
    ‖w_t − w₀‖²)`` and ``v_t = v_{t−1} + r̄_t²·‖g_t‖²``; ``r̄₀² = init_estim_sq_dist``
    (``eps`` when ``None``). An integer leaf (a ``float0`` gradient) adds nothing to the
    norms. See :func:`dowg`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_dowg(init_estim_sq_dist=4.0, eps=0.0)
      >>> w = jnp.zeros(2)
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(w), w)[0]  # g · 4/(2·5)
      Array([1.2, 1.6], dtype=float32)
    """
    check_non_negative("eps", eps)
    if init_estim_sq_dist is not None:
        check_non_negative("init_estim_sq_dist", init_estim_sq_dist)

    def sums_leaf(g, w, w0):
        g32 = upcast(g)
        diff = upcast(w0) - upcast(w)
        return jnp.sum(abs_sq(diff)), jnp.sum(abs_sq(g32))

    sums = per_leaf(sums_leaf, 2)
    scale = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        dtype = scalar_dtype(params)
        r0 = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(_copy(params), jnp.zeros([], dtype), jnp.asarray(r0, dtype))

    def update(updates, state, params=None):
        _needs_params("dowg", params)
        # an integer leaf (float0 gradient) is not trained and adds to neither sum
        dist_sq, grad_sq = sums((without_float0(updates), trained_leaves(updates, params),
                                 trained_leaves(updates, state.init_params)))
        dtype = state.estim_sq_dist.dtype
        estim = jnp.maximum(state.estim_sq_dist, _total(dist_sq).astype(dtype))
        weighted = estim * _total(grad_sq).astype(dtype) + state.weighted_sq_norm_grads
        rate = estim / (jnp.sqrt(weighted) + eps)
        (updates,) = scale((updates,), (rate,))
        return updates, DoWGState(state.init_params, weighted, estim)

    return optax.GradientTransformation(init, update)


def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: float | None = None,
    eps: float = 1e-4,
    weight_decay: float | None = None,
    mask: Any | Callable[[Any], Any] | None = None,
) -> optax.GradientTransformation:
    """Distance over Weighted Gradients: ``w ← w − λ·r̄_t²/(√v_t + eps)·(g + wd·w)``.

    Like :func:`dog`, but the gradient norms are weighted by the distance estimate
    (:func:`scale_by_dowg`), which makes it adapt to smoothness too. Same arguments,
    defaults and numbers as ``optax.contrib.dowg``.

    References: Khaled, Mishchenko & Jin, "DoWG Unleashed: An Efficient Universal
    Parameter-Free Gradient Descent Method" (2023).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> opt = lossjax.dowg()
      >>> w = jnp.array([1.0, 2.0, 3.0])
      >>> state = opt.init(w)
      >>> u, state = opt.update(2 * w, state, w)  # gradient of ‖w‖²
      >>> optax.apply_updates(w, u)
      Array([0.99..., 1.99..., 2.99...], dtype=float32)
    """
    _check_multiplier(learning_rate)
    decay = optax.identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return optax.chain(decay, scale_by_dowg(init_estim_sq_dist, eps),
                       scale_by_learning_rate(learning_rate))

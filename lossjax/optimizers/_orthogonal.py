"""Muon: momentum orthogonalised by Newton–Schulz iterations, for matrix parameters.

For a weight matrix the momentum ``M`` (``m × n``) is replaced by an approximation of its
polar factor ``U Vᵀ`` (``M = U Σ Vᵀ``): every singular value is pushed towards 1, so the
step has the same size in every direction the gradient spans (steepest descent under the
spectral norm). The polar factor comes from a few odd-polynomial iterations
``X ← a·X + (b·A + c·A²)·X`` with ``A = X Xᵀ``, started from ``M/‖M‖_F``; the default
coefficients ``(3.4445, −4.7750, 2.0315)`` maximise the slope at 0 and leave the singular
values in roughly ``[0.7, 1.2]`` after 5 steps rather than exactly at 1.

Leaves that are not matrices (biases, norm scales, and by default anything that is not
2-D) are trained with AdamW instead, as in optax. Same arguments, defaults and numbers as
``optax.contrib.muon`` (0.2.8). On one device, same-shaped matrices are orthogonalised
together as one batched iteration, which is faster than one call per leaf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._mask import Mask, mask_flags
from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    compute_dtype,
    full_like,
    increment_count,
    scalar_dtype,
    upcast,
)
from lossjax.optimizers._transforms import (
    LearningRateState,
)

Array = jax.Array

NS_COEFFS_PRESETS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "standard": ((3.4445, -4.7750, 2.0315),),
    "dion": ((4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377),
             (3.7418, -5.5913, 2.3037), (2.8769, -3.1427, 1.2046),
             (2.8366, -3.0525, 1.2012)),
}
"""Newton–Schulz coefficient presets (Jordan's ``"standard"``; the Dion paper's per-step)."""

_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix Muon orthogonalises.

    ``reduction_axis``: the input (contracted) axes, ``output_axis``: the output axes (an
    int or a sequence each). Every other axis is a batch axis: each slice is orthogonalised
    on its own. E.g. a conv kernel ``[h, w, c_in, c_out]`` as a ``(h·w·c_in) × c_out``
    matrix: ``MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)``; stacked
    per-head weights ``[heads, d, k]``: ``MuonDimensionNumbers(1, 2)``. optax's own
    ``MuonDimensionNumbers`` are accepted too.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_dim_nums(node: Any) -> bool:
    return hasattr(node, "reduction_axis") and hasattr(node, "output_axis")


class _NotAdam(NamedTuple):
    """Placeholder in ``MuonState.nu`` for a leaf Muon trains (no second moment)."""


class MuonState(NamedTuple):
    """``count``: steps taken (int32); ``mu``: the momentum of every leaf (Muon's for
    matrices, Adam's first moment for the others); ``nu``: Adam's second moment for the
    fallback leaves (an empty placeholder for matrices); ``learning_rate``,
    ``adam_learning_rate``: the held rates (:func:`set_learning_rate` sets both)."""

    count: Array
    mu: Any
    nu: Any
    learning_rate: LearningRateState
    adam_learning_rate: LearningRateState


class _Matrix(NamedTuple):
    """How a leaf maps to a batch of matrices ``[batch, rows, cols]`` (rows <= cols)."""

    transpose: tuple[int, ...]
    flat_shape: tuple[int, int, int]
    unflat_shape: tuple[int, ...]
    swap: bool
    fan_in: int
    fan_out: int

    def to_batch(self, x: Array) -> Array:
        x = x.transpose(self.transpose).reshape(self.flat_shape)
        return jnp.swapaxes(x, -1, -2) if self.swap else x

    def from_batch(self, x: Array) -> Array:
        if self.swap:
            x = jnp.swapaxes(x, -1, -2)
        inverse = tuple(sorted(range(len(self.transpose)), key=lambda i: self.transpose[i]))
        return x.reshape(self.unflat_shape).transpose(inverse)


def _axes(axes: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    return tuple(a % ndim for a in ((axes,) if isinstance(axes, int) else axes))


def _matrix_layout(shape: tuple[int, ...], dims: Any) -> _Matrix:
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"muon_weight_dimension_numbers: a Muon leaf needs rank >= 2, got "
                         f"shape {shape}")
    reduction, output = _axes(dims.reduction_axis, ndim), _axes(dims.output_axis, ndim)
    if set(reduction) & set(output) or not reduction or not output:
        raise ValueError(f"muon_weight_dimension_numbers: reduction axes {reduction} and "
                         f"output axes {output} must be non-empty and disjoint "
                         f"(shape {shape})")
    batch = tuple(a for a in range(ndim) if a not in reduction + output)
    transpose = batch + reduction + output
    fan_in = math.prod(shape[a] for a in reduction)
    fan_out = math.prod(shape[a] for a in output)
    flat = (math.prod(shape[a] for a in batch), fan_in, fan_out)
    return _Matrix(transpose, flat, tuple(shape[a] for a in transpose), fan_in > fan_out,
                   fan_in, fan_out)


def _base_iteration(x: Array, a: Array, coeffs: tuple[float, float, float]) -> Array:
    c0, c1, c2 = coeffs
    b = c1 * a + c2 * (a @ a)
    return c0 * x + b @ x


def _gram(x: Array) -> Array:
    return x @ jnp.swapaxes(x, -1, -2)


def newton_schulz(
    x: Array,
    coeffs: Sequence[tuple[float, float, float]],
    preconditioning: str = "frobenius",
    eps: float = 1e-8,
) -> Array:
    """Approximate polar factor of each matrix in ``x [batch, rows, cols]`` (rows <= cols).

    One iteration per entry of ``coeffs``. ``preconditioning`` scales the start so every
    singular value is at most about 1: ``"frobenius"`` divides by ``‖X‖_F``,
    ``"spectral"`` by ``‖X‖₂`` (an SVD: slower); ``"aol"`` (Boissin et al. 2025) and
    ``"schatten"`` (Grishina et al. 2025) fold a cheaper rescaling into the first step.
    Runs in float32 at least.
    """
    x = upcast(x)
    if preconditioning == "frobenius":
        x = x / (jnp.sqrt(jnp.sum(x * x, axis=(-2, -1), keepdims=True)) + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2, axis=(-2, -1), keepdims=True) + eps)
    for i, step in enumerate(coeffs):
        a = _gram(x)
        if i == 0 and preconditioning == "aol":
            s = jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.abs(a), axis=-1, keepdims=True), eps))
            x, a = x * s, a * s * jnp.swapaxes(s, -1, -2)
        elif i == 0 and preconditioning == "schatten":
            norm = jnp.sqrt(jnp.sum(a * a, axis=(-2, -1), keepdims=True))
            s = jax.lax.rsqrt(jnp.maximum(norm, eps))
            x, a = x * s, a * s * s
        x = _base_iteration(x, a, step)
    return x


def _resolve_coeffs(ns_coeffs: Any, ns_steps: int) -> tuple[tuple[float, float, float], ...]:
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in NS_COEFFS_PRESETS:
            raise ValueError(f"ns_coeffs: unknown preset {ns_coeffs!r}, expected one of "
                             f"{sorted(NS_COEFFS_PRESETS)}")
        table = NS_COEFFS_PRESETS[ns_coeffs]
        return table * ns_steps if len(table) == 1 else table
    shape = jnp.shape(jnp.asarray(ns_coeffs))
    if len(shape) not in (1, 2) or shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {shape}")
    rows = [(float(a), float(b), float(c)) for a, b, c in jnp.asarray(ns_coeffs).reshape(-1, 3)]
    if len(shape) == 1:
        return tuple(rows) * ns_steps
    if len(rows) > ns_steps:
        raise ValueError(f"ns_coeffs has {len(rows)} rows: more than ns_steps={ns_steps}")
    return tuple(rows)


def _leaf_dims(muon_weight_dimension_numbers: Any, params: Any) -> list[Any]:
    """Per leaf of ``params``: its ``MuonDimensionNumbers`` (Muon) or ``None`` (AdamW)."""
    treedef = jax.tree.structure(params)
    leaves = treedef.flatten_up_to(params)
    if muon_weight_dimension_numbers is None:
        return [MuonDimensionNumbers() if jnp.ndim(p) == 2 else None for p in leaves]
    dims = muon_weight_dimension_numbers
    if callable(dims) and not _is_dim_nums(dims):
        dims = dims(params)
    spread = jax.tree.map(lambda d, sub: jax.tree.map(lambda _: d, sub), dims, params,
                          is_leaf=lambda n: n is None or _is_dim_nums(n))
    return treedef.flatten_up_to(spread)


def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: Any = (3.4445, -4.7750, 2.0315),
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    weight_decay_mask: Mask = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps_root: float = 0.0,
    adam_weight_decay: float = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: float | None = None,
    batch_newton_schulz: bool | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Muon (MomentUm Orthogonalized by Newton–Schulz) for matrices, AdamW for the rest.

    For a matrix leaf ``W`` (``fan_in × fan_out``), with ``t`` the step::

        M ← β·M + (1 − β)·G
        M̂ = β·M/(1 − β^{t+1}) + (1 − β)·G/(1 − βᵗ)     (Nesterov; else M/(1 − βᵗ))
        O = NewtonSchulz(M̂)                             (≈ U Vᵀ for M̂ = U Σ Vᵀ)
        W ← W − lr·(s·O + wd·W),   s = √max(1, fan_out/fan_in)

    (``consistent_rms=ρ``: ``s = ρ·√max(fan_in, fan_out)``, Liu et al. 2025; ``adaptive``:
    ``O ← ⟨M̂, O⟩·O``, Bernstein & Newhouse 2024). Other leaves take AdamW steps
    (Nesterov when ``nesterov``) with ``adam_*`` and ``eps``.

    Args:
      learning_rate: Muon's rate (a float held in the state, or a schedule).
      ns_coeffs: ``(a, b, c)`` used for every step, rows ``[(a, b, c), ...]`` (one per
        step), or a preset name (``"standard"``, ``"dion"``).
      ns_steps: Newton–Schulz steps (for a single ``(a, b, c)``).
      beta: momentum in ``[0, 1)``.
      eps: added to the normaliser before the iteration, and AdamW's ε.
      weight_decay, weight_decay_mask: decoupled decay of the Muon leaves (times ``lr``),
        and which of them decay (pytree of bools or a function of the parameters).
      mu_dtype: dtype to store the momenta in.
      nesterov, adaptive, preconditioning: see above and :func:`newton_schulz`.
      adam_b1, adam_b2, adam_eps_root, adam_weight_decay: the AdamW fallback.
      adam_learning_rate: the fallback's rate (default: ``learning_rate``).
      muon_weight_dimension_numbers: which leaves are matrices, and how to read N-D
        weights as matrices: a pytree (or prefix, or a function of the parameters) of
        :class:`MuonDimensionNumbers` (Muon) and ``None`` (AdamW). Default: 2-D leaves
        are ``fan_in × fan_out`` matrices, everything else goes to AdamW.
      batch_newton_schulz: orthogonalise same-shaped matrices together (one batched
        iteration, faster than one per leaf) or one by one. Same numbers either way, up
        to float rounding. ``None`` (default): batched when JAX sees a single device;
        with several devices one by one, because stacking differently sharded leaves
        makes XLA reshard them (and the state would not stay sharded like the
        parameters).

    PyTorch 2.9's ``torch.optim.Muon`` accepts only 2-D parameters (the caller routes the
    rest to another optimizer) and scales by ``0.2·√max(fan_in, fan_out)`` by default
    (``consistent_rms=0.2`` here); Keras 3's ``Muon`` picks the AdamW leaves by rank and
    by name. Keras and PyTorch store ``W`` as ``fan_out × fan_in``: here rows are the
    input axis (``x @ W``), as in Flax.

    References: Jordan et al., "Muon: An optimizer for hidden layers in neural networks"
    (2024), https://kellerjordan.github.io/posts/muon/; Bernstein & Newhouse, "Old
    Optimizer, New Norm: An Anthology" (2024); Liu et al., "Muon is Scalable for LLM
    Training" (2025).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> opt = lossjax.muon(0.1)
      >>> params = {"w": jnp.eye(3)[:, :2] * 5.0, "b": jnp.zeros(2)}
      >>> grads = {"w": jnp.array([[1.0, 0.0], [0.0, 1e-3], [0.0, 0.0]]), "b": jnp.ones(2)}
      >>> updates, _ = opt.update(grads, opt.init(params), params)
      >>> jnp.linalg.svd(updates["w"], compute_uv=False)  # both directions ≈ the same size
      Array([0.0..., 0.0...], dtype=float32)
      >>> updates["b"]  # AdamW's first step: −lr·sign(g)
      Array([-0.1, -0.1], dtype=float32)
    """
    check_in_range("beta", beta, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("weight_decay", weight_decay)
    check_in_range("adam_b1", adam_b1, 0.0, 1.0)
    check_in_range("adam_b2", adam_b2, 0.0, 1.0)
    check_non_negative("adam_eps_root", adam_eps_root)
    check_non_negative("adam_weight_decay", adam_weight_decay)
    if not isinstance(ns_steps, int) or ns_steps < 1:
        raise ValueError(f"ns_steps must be a positive int, got {ns_steps!r}")
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"preconditioning must be one of {_PRECONDITIONINGS}, got "
                         f"{preconditioning!r}")
    if consistent_rms is not None:
        check_non_negative("consistent_rms", consistent_rms)
    for name, rate in (("learning_rate", learning_rate),
                       ("adam_learning_rate", adam_learning_rate)):
        if rate is not None and not callable(rate):
            check_non_negative(name, rate)
    coeffs = _resolve_coeffs(ns_coeffs, ns_steps)
    separate_adam_rate = adam_learning_rate is not None

    def momentum_leaf(g, m, c1, c1_next):
        g32 = upcast(g)
        m32 = (1 - beta) * g32 + beta * upcast(m)
        if nesterov:
            hat = beta * (m32 / c1_next) + (1 - beta) * (g32 / c1)
        else:
            hat = m32 / c1
        return hat, m32.astype(m.dtype)

    def adam_leaf(g, w, m, v, lr, c1, c1_next, c2):
        g32 = upcast(g)
        m32 = (1 - adam_b1) * g32 + adam_b1 * upcast(m)
        v32 = (1 - adam_b2) * (g32 * g32) + adam_b2 * upcast(v)
        if nesterov:
            hat = adam_b1 * (m32 / c1_next) + (1 - adam_b1) * (g32 / c1)
        else:
            hat = m32 / c1
        u = hat / (jnp.sqrt(v32 / c2 + adam_eps_root) + eps)
        u = u + adam_weight_decay * upcast(w)
        return (-lr * u).astype(w.dtype), m32.astype(m.dtype), v32.astype(v.dtype)

    momentum_fn = jax.jit(momentum_leaf)
    adam_fn = jax.jit(adam_leaf)

    def finish(o, hat, w, lr, scale, decay):
        if adaptive:
            o = jnp.sum(hat * o) * o
        u = scale * o
        if decay:
            u = u + weight_decay * upcast(w)
        return (-lr * u).astype(w.dtype)

    def shape_scale(layout: _Matrix) -> float:
        if consistent_rms is not None:
            return math.sqrt(max(layout.fan_in, layout.fan_out)) * consistent_rms
        return math.sqrt(max(1.0, layout.fan_out / layout.fan_in))

    def layouts(params):
        dims = _leaf_dims(muon_weight_dimension_numbers, params)
        leaves = jax.tree.leaves(params)
        return [None if d is None else _matrix_layout(jnp.shape(p), d)
                for p, d in zip(leaves, dims, strict=True)]

    def orthogonalize(hats: list[Array], plan: list[_Matrix]) -> list[Array]:
        batches = [layout.to_batch(h) for h, layout in zip(hats, plan, strict=True)]
        batched = jax.device_count() == 1 if batch_newton_schulz is None else \
            batch_newton_schulz
        if not batched:
            outs = [newton_schulz(b, coeffs, preconditioning, eps) for b in batches]
        else:
            groups: dict[tuple[Any, ...], list[int]] = {}
            for i, b in enumerate(batches):
                # Explicitly sharded matrices only stack with same-sharded ones.
                spec = getattr(getattr(jax.typeof(b), "sharding", None), "spec", None)
                groups.setdefault((b.shape[1:], b.dtype, str(spec)), []).append(i)
            outs: list[Any] = [None] * len(batches)
            for members in groups.values():
                stacked = jnp.concatenate([batches[i] for i in members])
                result = newton_schulz(stacked, coeffs, preconditioning, eps)
                sizes = [batches[i].shape[0] for i in members]
                for i, part in zip(members, jnp.split(result, list(_cumsum(sizes))),
                                   strict=True):
                    outs[i] = part
        return [layout.from_batch(o) for o, layout in zip(outs, plan, strict=True)]

    def init(params):
        plan = layouts(params)
        treedef = jax.tree.structure(params)
        leaves = jax.tree.leaves(params)
        mu = [full_like(p, dtype=mu_dtype or compute_dtype(p.dtype)) for p in leaves]
        nu = [_NotAdam() if layout is not None else full_like(p, dtype=compute_dtype(p.dtype))
              for p, layout in zip(leaves, plan, strict=True)]
        rate = 0.0 if callable(learning_rate) else learning_rate
        adam_rate = (0.0 if callable(adam_learning_rate) else adam_learning_rate
                     if separate_adam_rate else rate)
        # a fresh buffer per field: a step that donates the state must not see one twice
        def zero():
            return jnp.zeros([], jnp.int32)

        return MuonState(zero(), treedef.unflatten(mu), treedef.unflatten(nu),
                         LearningRateState(zero(), jnp.asarray(rate, jnp.float32)),
                         LearningRateState(zero(), jnp.asarray(adam_rate, jnp.float32)))

    def rate_at(schedule, held: LearningRateState, dtype):
        value = schedule(held.count) if callable(schedule) else held.learning_rate
        return jnp.asarray(value, dtype)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("muon needs the parameters: call update(grads, state, params)")
        plan = layouts(params)
        treedef = jax.tree.structure(params)
        grads = treedef.flatten_up_to(updates)
        weights = treedef.flatten_up_to(params)
        mus = treedef.flatten_up_to(state.mu)
        nus = treedef.flatten_up_to(state.nu)
        decays = treedef.flatten_up_to(mask_flags(weight_decay_mask, params))
        dtype = scalar_dtype(updates)
        count = increment_count(state.count)
        lr = rate_at(learning_rate, state.learning_rate, dtype)
        adam_lr = rate_at(adam_learning_rate if separate_adam_rate else learning_rate,
                          state.adam_learning_rate, dtype)

        def correction(b, n):
            return (1 - b**n).astype(dtype)

        c1, c1_next = correction(beta, count), correction(beta, increment_count(count))
        a1, a1_next = correction(adam_b1, count), correction(adam_b1, increment_count(count))
        a2 = correction(adam_b2, count)

        out, new_mu, new_nu = list(grads), list(mus), list(nus)
        matrix_ids, hats = [], []
        for i, layout in enumerate(plan):
            if layout is None:
                out[i], new_mu[i], new_nu[i] = adam_fn(grads[i], weights[i], mus[i], nus[i],
                                                       adam_lr, a1, a1_next, a2)
            else:
                hat, new_mu[i] = momentum_fn(grads[i], mus[i], c1, c1_next)
                matrix_ids.append(i)
                hats.append(hat)
        orthogonal = orthogonalize(hats, [plan[i] for i in matrix_ids])
        for i, hat, o in zip(matrix_ids, hats, orthogonal, strict=True):
            out[i] = finish(o, hat, weights[i], lr, shape_scale(plan[i]),
                            bool(weight_decay) and decays[i])
        next_lr = LearningRateState(increment_count(state.learning_rate.count),
                                    state.learning_rate.learning_rate)
        next_adam_lr = LearningRateState(increment_count(state.adam_learning_rate.count),
                                         state.adam_learning_rate.learning_rate)
        return treedef.unflatten(out), MuonState(
            count, treedef.unflatten(new_mu), treedef.unflatten(new_nu), next_lr, next_adam_lr)

    return optax.GradientTransformationExtraArgs(init, update)


def _cumsum(sizes: list[int]) -> list[int]:
    """Split points of consecutive blocks of ``sizes`` (all but the last boundary)."""
    points, total = [], 0
    for size in sizes[:-1]:
        total += size
        points.append(total)
    return points

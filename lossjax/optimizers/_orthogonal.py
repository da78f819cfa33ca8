"""Muon and its relatives: momentum orthogonalised by Newton–Schulz iterations.

For a weight matrix the momentum ``M`` (``m × n``) is replaced by an approximation of its
polar factor ``U Vᵀ`` (``M = U Σ Vᵀ``): every singular value is pushed towards 1, so the
step has the same size in every direction the gradient spans (steepest descent under the
spectral norm). The polar factor comes from a few odd-polynomial iterations
``X ← a·X + (b·A + c·A²)·X`` with ``A = X Xᵀ``, started from ``M/‖M‖_F``.

The pieces are public and composed: :func:`scale_by_muon` (the orthogonalised momentum),
the AdamW fallback built from :func:`scale_by_adam`, and a partition of the leaves by
label, so :func:`muon`'s state has ``optax.contrib.muon``'s layout and every fix to Adam
reaches Muon's fallback. :func:`muon_labels` reads which leaves are hidden-layer matrices
from their paths in a Flax (NNX or Linen) tree. Variants: NorMuon and AdaMuon (a second
moment after the orthogonalisation), cautious weight decay, MuonClip's :func:`qk_clip`,
and :func:`scion`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax import transforms as optax_transforms

from lossjax._mask import Mask, mask_flags
from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    abs_sq,
    as_update,
    bias_correction_factor,
    compute_dtype,
    dtype_of,
    exponential_average,
    full_like,
    increment_count,
    is_float0,
    per_leaf,
    real_scalar_dtype,
    scalar_dtype,
    scale_by_constant,
    shape_of,
    upcast,
    without_float0,
)
from lossjax.optimizers._transforms import scale_by_adam, scale_by_learning_rate
from lossjax.regularizers import add_cautious_decayed_weights, add_decayed_weights

Array = jax.Array

_POLAR_EXPRESS_TABLE = (
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
)
_POLAR_EXPRESS_SAFETY = 1.01


def _with_safety(rows, safety):
    # p(x/s)·... : the first rows are damped by the safety factor, the last one is kept
    damped = tuple((a / safety, b / safety**3, c / safety**5) for a, b, c in rows[:-1])
    return damped + rows[-1:]


class _CoefficientPresets(dict):
    """Newton–Schulz coefficient presets: Jordan's ``"standard"`` (one ``(a, b, c)`` for every
    step), the Dion paper's per-step rows, and Polar Express's per-step optimal rows (Amsel et
    al. 2025, Algorithm 1: the published table, all rows but the last divided by the safety
    factor 1.01 as ``(a/1.01, b/1.01³, c/1.01⁵)``). ``ns_steps`` takes the first rows of
    ``"polar_express"`` (its last row repeats beyond 8 steps). The paper's code also starts from
    ``X/(1.01·‖X‖_F + 1e-7)``; here every preset starts from the ``preconditioning`` chosen
    (``X/(‖X‖_F + eps)`` by default)."""


NS_COEFFS_PRESETS: dict[str, tuple[tuple[float, float, float], ...]] = _CoefficientPresets({
    "standard": ((3.4445, -4.7750, 2.0315),),
    "dion": ((4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377),
             (3.7418, -5.5913, 2.3037), (2.8769, -3.1427, 1.2046),
             (2.8366, -3.0525, 1.2012)),
    "polar_express": _with_safety(_POLAR_EXPRESS_TABLE, _POLAR_EXPRESS_SAFETY),
})


_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
_METHODS = ("standard", "gram", "auto")


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix Muon orthogonalises.

    ``reduction_axis``: the input (contracted) axes, ``output_axis``: the output axes (an
    int or a sequence each). Every other axis is a batch axis: each slice is orthogonalised
    on its own. E.g. a conv kernel ``[h, w, c_in, c_out]`` as a ``(h·w·c_in) × c_out``
    matrix: ``MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)``; a Flax
    attention query kernel ``[d, heads, head_dim]``: ``MuonDimensionNumbers(0, (1, 2))``.
    optax's own ``MuonDimensionNumbers`` are accepted too.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_dim_nums(node: Any) -> bool:
    return hasattr(node, "reduction_axis") and hasattr(node, "output_axis")


def _is_dims_leaf(node: Any) -> bool:
    return node is None or _is_dim_nums(node) or isinstance(node, optax_transforms.MaskedNode)


class MuonState(NamedTuple):
    """optax.contrib's layout: ``count`` (int32 steps), ``mu`` (the momentum of each
    matrix), ``ns_coeffs`` (the Newton–Schulz coefficients, ``(3,)`` or ``(n, 3)``)."""

    count: Array
    mu: Any
    ns_coeffs: Array


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

    @property
    def output_axis_of_batch(self) -> int:
        """The axis of ``to_batch``'s result that indexes output units."""
        return -2 if self.swap else -1


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


# ----------------------------------------------------------------- Newton–Schulz iterations


def _gram(x: Array) -> Array:
    """``X Xᴴ`` (the conjugate transpose: a complex matrix's polar factor needs it)."""
    return x @ jnp.conj(jnp.swapaxes(x, -1, -2))


def _precondition(x: Array, a: Array, preconditioning: str, eps: float):
    """The first step's cheaper rescaling of AOL (Boissin et al.) or Schatten-4
    (Grishina et al.): returns the rescaled ``x`` and its Gram matrix ``a``."""
    if preconditioning == "aol":
        s = jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.abs(a), axis=-1, keepdims=True), eps))
        return x * s, a * s * jnp.swapaxes(s, -1, -2)
    if preconditioning == "schatten":
        norm = jnp.sqrt(jnp.sum(abs_sq(a), axis=(-2, -1), keepdims=True))
        s = jax.lax.rsqrt(jnp.maximum(norm, eps))
        return x * s, a * s * s
    return x, a


def _use_gram(shape: tuple[int, ...], method: str) -> bool:
    rows, cols = shape[-2], shape[-1]
    return method == "gram" or (method == "auto" and cols >= 2 * rows)


def newton_schulz(
    x: Array,
    coeffs: Sequence[tuple[float, float, float]],
    preconditioning: str = "frobenius",
    eps: float = 1e-8,
    *,
    method: Literal["standard", "gram", "auto"] = "standard",
) -> Array:
    """Approximate polar factor of each matrix in ``x [batch, rows, cols]`` (rows <= cols).

    One iteration ``X ← p(X Xᵀ)·X``, ``p(A) = a·I + b·A + c·A²``, per row ``(a, b, c)`` of
    ``coeffs``. ``preconditioning`` scales the start so every singular value is at most
    about 1: ``"frobenius"`` divides by ``‖X‖_F + eps``, ``"spectral"`` by ``‖X‖₂ + eps``
    (an SVD: slower); ``"aol"`` (Boissin et al. 2025) and ``"schatten"`` (Grishina et al.
    2025) fold a cheaper rescaling into the first step.

    ``method="gram"`` runs the same polynomials on the ``rows × rows`` Gram matrix only:
    with ``A₀ = X₀X₀ᵀ``, ``Q_k = p_k(A_k)``, ``P ← Q_k P`` and ``A_{k+1} = Q_k A_k Q_k``, the
    result is ``P X₀`` (equal in exact arithmetic). For wide matrices (``cols ≫ rows``) it
    costs ``2·rows²·cols + 4k·rows³`` flops instead of ``k(2·rows²·cols + rows³)``;
    ``"auto"`` picks it when ``cols >= 2·rows``. Runs in float32 at least.

    References: Jordan et al., "Muon" (2024); Amsel et al., "The Polar Express: Optimal
    Matrix Sign Methods and Their Application to the Muon Algorithm" (2025).

    Examples:
      >>> import jax.numpy as jnp
      >>> from lossjax.optimizers import NS_COEFFS_PRESETS, newton_schulz
      >>> x = jnp.array([[[3.0, 0.0, 0.0], [0.0, 0.5, 0.0]]])
      >>> y = newton_schulz(x, NS_COEFFS_PRESETS["polar_express"][:5])
      >>> print(jnp.linalg.svd(y[0], compute_uv=False))   # both singular values near 1
      [1.00 0.98]
    """
    x = upcast(x)
    if preconditioning == "frobenius":
        x = x / (jnp.sqrt(jnp.sum(abs_sq(x), axis=(-2, -1), keepdims=True)) + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2, axis=(-2, -1), keepdims=True) + eps)
    if _use_gram(x.shape, method):
        return _gram_newton_schulz(x, coeffs, preconditioning, eps)
    for i, (c0, c1, c2) in enumerate(coeffs):
        a = _gram(x)
        if i == 0:
            x, a = _precondition(x, a, preconditioning, eps)
        x = c0 * x + (c1 * a + c2 * (a @ a)) @ x
    return x


def _gram_newton_schulz(x, coeffs, preconditioning, eps):
    a = _gram(x)
    x, a = _precondition(x, a, preconditioning, eps)
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)

    def polynomial(a, row):
        c0, c1, c2 = row
        return c0 * eye + c1 * a + c2 * (a @ a)

    p = polynomial(a, coeffs[0])
    a = p @ a @ p
    for row in coeffs[1:]:
        q = polynomial(a, row)
        p = q @ p
        a = q @ a @ q
    return p @ x


def _resolve_coeffs(ns_coeffs: Any, ns_steps: int) -> tuple[tuple[float, float, float], ...]:
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in NS_COEFFS_PRESETS:
            raise ValueError(f"ns_coeffs: unknown preset {ns_coeffs!r}, expected one of "
                             f"{sorted(NS_COEFFS_PRESETS)}")
        table = NS_COEFFS_PRESETS[ns_coeffs]
        if len(table) == 1:
            return table * ns_steps
        if ns_coeffs == "polar_express":
            return (table + table[-1:] * ns_steps)[:ns_steps]
        return table
    # NumPy, not jnp: the rows are constants of the compiled step (built inside a jit too)
    table = np.asarray(ns_coeffs, np.float64)
    shape = table.shape
    if len(shape) not in (1, 2) or shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {shape}")
    rows = [(float(a), float(b), float(c)) for a, b, c in table.reshape(-1, 3)]
    if len(shape) == 1:
        return tuple(rows) * ns_steps
    if len(rows) > ns_steps:
        raise ValueError(f"ns_coeffs has {len(rows)} rows: more than ns_steps={ns_steps}")
    return tuple(rows)


def _coeffs_state(ns_coeffs: Any, rows: tuple[tuple[float, float, float], ...]) -> Array:
    """What optax keeps in ``MuonState.ns_coeffs``: one ``(3,)`` row, or the rows."""
    single = (isinstance(ns_coeffs, str) and len(NS_COEFFS_PRESETS[ns_coeffs]) == 1) or (
        not isinstance(ns_coeffs, str) and np.ndim(ns_coeffs) == 1)
    return jnp.asarray(rows[0] if single else rows)   # optax: the default float dtype


# ----------------------------------------------------------------------- the leaf layouts


def _explicit_spec(x: Array) -> Any:
    """The partition spec of an explicitly sharded array (``jax.make_mesh(...,
    axis_types=Explicit)``), or ``None``: its matmuls would need an output sharding."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    if sharding is None:
        return None
    mesh = getattr(sharding, "mesh", None)
    types = getattr(mesh, "axis_types", ()) or ()
    if not any(t == jax.sharding.AxisType.Explicit for t in types):
        return None
    spec = sharding.spec
    return spec if any(s is not None for s in spec) else None


def _resolve_dims(spec: Any, tree: Any) -> list[Any]:
    """Per leaf of ``tree``: its ``MuonDimensionNumbers``, or ``None`` (not a Muon leaf).

    ``spec``: ``None`` (:func:`muon_labels`' defaults), one ``MuonDimensionNumbers`` for
    every leaf, a pytree (or prefix) of them and ``None``, or a function of the tree.
    """
    treedef = jax.tree.structure(tree)
    if spec is None:
        spec = muon_labels(tree)
    elif callable(spec) and not _is_dim_nums(spec):
        spec = spec(tree)
    if _is_dim_nums(spec):
        return [spec] * treedef.num_leaves
    spread = jax.tree.map(lambda d, sub: jax.tree.map(lambda _: d, sub), spec, tree,
                          is_leaf=_is_dims_leaf)
    return treedef.flatten_up_to(spread)


def _cumsum(sizes: list[int]) -> list[int]:
    """Split points of consecutive blocks of ``sizes`` (all but the last boundary)."""
    points, total = [], 0
    for size in sizes[:-1]:
        total += size
        points.append(total)
    return points


def _orthogonalize(hats: list[Array], plan: list[_Matrix], coeffs, preconditioning: str,
                   eps: float, method: Literal["standard", "gram", "auto"],
                   batched: bool | None) -> list[Array]:
    """Newton–Schulz on every leaf, same-shaped matrices stacked into one batched call.

    An explicitly sharded leaf is gathered (``reshard`` to replicated), orthogonalised and
    resharded like it was: the iteration's matmuls contract the sharded axes.
    """
    specs = [_explicit_spec(h) for h in hats]
    replicated = jax.sharding.PartitionSpec()
    batches = [layout.to_batch(h if s is None else jax.sharding.reshard(h, replicated))
               for h, layout, s in zip(hats, plan, specs, strict=True)]
    if batched is None:
        batched = jax.device_count() == 1
    outs: list[Any] = [None] * len(batches)
    if not batched:
        outs = [newton_schulz(b, coeffs, preconditioning, eps, method=method)
                for b in batches]
    else:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, b in enumerate(batches):
            groups.setdefault((b.shape[1:], b.dtype), []).append(i)
        for members in groups.values():
            stacked = jnp.concatenate([batches[i] for i in members])
            result = newton_schulz(stacked, coeffs, preconditioning, eps, method=method)
            sizes = [batches[i].shape[0] for i in members]
            for i, part in zip(members, jnp.split(result, _cumsum(sizes)), strict=True):
                outs[i] = part
    results = [layout.from_batch(o) for o, layout in zip(outs, plan, strict=True)]
    return [r if s is None else jax.sharding.reshard(r, s)
            for r, s in zip(results, specs, strict=True)]


def _check_muon_leaf(x: Any) -> None:
    if not jnp.issubdtype(dtype_of(x), jnp.inexact):
        raise ValueError(f"muon_weight_dimension_numbers: an integer leaf (shape "
                         f"{shape_of(x)}) "
                         "cannot be a Muon matrix; give it None")


# ------------------------------------------------------------------------- scale_by_muon


def scale_by_muon(
    ns_coeffs: Any = (3.4445, -4.7750, 2.0315),
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    weight_dimension_numbers: Any = None,
    newton_schulz_method: Literal["standard", "gram", "auto"] = "auto",
    sign_momentum: bool = False,
    batch_newton_schulz: bool | None = None,
) -> optax.GradientTransformation:
    """Muon's direction: the Newton–Schulz polar factor of the (Nesterov) momentum.

    ``M ← β·M + (1 − β)·G``; ``M̂ = β·M/(1 − β^{t+1}) + (1 − β)·G/(1 − βᵗ)`` (Nesterov;
    else ``M/(1 − βᵗ)``); the direction is ``NewtonSchulz(M̂)`` (``adaptive``: times
    ``⟨M̂, O⟩``, Bernstein & Newhouse 2024; ``sign_momentum``: of ``sign(M̂)``, AdaMuon's
    sign stabilisation). State and arguments as ``optax.contrib.scale_by_muon``.

    Args:
      ns_coeffs: ``(a, b, c)`` for every step, rows ``[(a, b, c), ...]`` (one per step), or
        a preset of :data:`NS_COEFFS_PRESETS` (``"standard"``, ``"dion"``,
        ``"polar_express"``).
      ns_steps: Newton–Schulz steps (for a single ``(a, b, c)`` or ``"polar_express"``).
      beta: momentum in ``[0, 1)``.
      eps: added to the normaliser before the iteration.
      mu_dtype: dtype to store the momentum in.
      nesterov, adaptive, preconditioning: see above and :func:`newton_schulz`.
      weight_dimension_numbers: how each leaf reads as a matrix: one
        :class:`MuonDimensionNumbers` (or a pytree or function giving one per leaf, where
        ``None`` marks a leaf passed through unchanged); ``None``: every leaf is a 2-D
        ``fan_in × fan_out`` matrix.
      newton_schulz_method: ``"standard"``, ``"gram"`` or ``"auto"`` (Gram iteration for
        matrices at least twice as wide as tall; see :func:`newton_schulz`).
      sign_momentum: orthogonalise ``sign(M̂)`` instead of ``M̂``.
      batch_newton_schulz: stack same-shaped matrices into one batched iteration (faster
        than one call per leaf; the same numbers up to rounding). ``None``: batched on one
        device; one by one with several, where stacking differently sharded leaves makes
        XLA reshard them. An explicitly sharded matrix is gathered for the iteration.

    References: Jordan et al., "Muon: An optimizer for hidden layers in neural networks"
    (2024), https://kellerjordan.github.io/posts/muon/.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_muon(ns_coeffs="polar_express")
      >>> g = jnp.array([[2.0, 0.0], [0.0, 0.1]])
      >>> direction, _ = tx.update(g, tx.init(g))
      >>> jnp.round(direction, 2)
      Array([[1.  , 0.  ],
             [0.  , 0.97]], dtype=float32)
    """
    check_in_range("beta", beta, 0.0, 1.0)
    check_non_negative("eps", eps)
    if isinstance(ns_steps, bool) or not hasattr(ns_steps, "__index__"):
        raise ValueError(f"ns_steps must be a positive int, got {ns_steps!r}")
    ns_steps = operator.index(ns_steps)   # a traced count raises: it must be static
    if ns_steps < 1:
        raise ValueError(f"ns_steps must be a positive int, got {ns_steps!r}")
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"preconditioning must be one of {_PRECONDITIONINGS}, got "
                         f"{preconditioning!r}")
    if newton_schulz_method not in _METHODS:
        raise ValueError(f"newton_schulz_method must be one of {_METHODS}, got "
                         f"{newton_schulz_method!r}")
    coeffs = _resolve_coeffs(ns_coeffs, ns_steps)
    dims_spec = MuonDimensionNumbers() if weight_dimension_numbers is None else \
        weight_dimension_numbers

    def momentum_leaf(g, m, c1, c1_next):
        g32 = upcast(g)
        m32 = (1 - beta) * g32 + beta * upcast(m)
        if nesterov:
            hat = beta * (m32 / c1_next) + (1 - beta) * (g32 / c1)
        else:
            hat = m32 / c1
        return hat, m32.astype(m.dtype)

    momentum = per_leaf(momentum_leaf, 2)

    def init(params):
        for p, d in zip(jax.tree.leaves(params), _resolve_dims(dims_spec, params),
                        strict=True):
            if d is None:
                continue
            _check_muon_leaf(p)
            _matrix_layout(tuple(p.shape), d)
        mu = jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params)
        return MuonState(jnp.zeros([], jnp.int32), mu, _coeffs_state(ns_coeffs, coeffs))

    def update(updates, state, params=None):
        del params
        dtype = real_scalar_dtype(updates)
        count = increment_count(state.count)
        c1 = bias_correction_factor(beta, count, dtype)
        c1_next = bias_correction_factor(beta, increment_count(count), dtype)
        hats, mu = momentum((updates, state.mu), (c1, c1_next))
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        leaves = treedef.flatten_up_to(hats)
        dims = _resolve_dims(dims_spec, updates)
        live = [i for i, g in enumerate(grads) if not is_float0(g) and dims[i] is not None]
        plan = [_matrix_layout(tuple(grads[i].shape), dims[i]) for i in live]
        inputs = [jnp.sign(leaves[i]) if sign_momentum else leaves[i] for i in live]
        orthogonal = _orthogonalize(inputs, plan, coeffs, preconditioning, eps,
                                    newton_schulz_method, batch_newton_schulz)
        # a leaf that is no matrix passes through (a float0 one as per_leaf's zero update)
        out = [h if d is not None else jnp.zeros(g.shape, jnp.float32) if is_float0(g) else g
               for g, h, d in zip(grads, leaves, dims, strict=True)]
        for i, x, o in zip(live, inputs, orthogonal, strict=True):
            if adaptive:
                o = jnp.sum(jnp.conj(x) * o) * o
            out[i] = as_update(o, grads[i])
        return treedef.unflatten(out), MuonState(count, mu, state.ns_coeffs)

    return optax.GradientTransformation(init, update)


# ------------------------------------------------------------ the pieces after the direction


def _scale_by_shape(dims_spec: Any, consistent_rms: float | None, floor: float = 1.0
                    ) -> optax.GradientTransformation:
    """``u ← s·u`` per matrix: ``s = √max(floor, fan_out/fan_in)`` (width transfer), or
    ``ρ·√max(fan_in, fan_out)`` with ``consistent_rms=ρ``. Stateless."""

    def factor(layout: _Matrix) -> float:
        if consistent_rms is not None:
            return math.sqrt(max(layout.fan_in, layout.fan_out)) * consistent_rms
        return math.sqrt(max(floor, layout.fan_out / layout.fan_in))

    def update(updates, state, params=None):
        del params
        treedef = jax.tree.structure(updates)
        leaves = treedef.flatten_up_to(updates)
        dims = _resolve_dims(dims_spec, updates)
        out = [u if is_float0(u) else
               as_update(upcast(u) * factor(_matrix_layout(tuple(u.shape), d)), u)
               for u, d in zip(leaves, dims, strict=True)]
        return treedef.unflatten(out), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class ScaleByMuonSecondMomentState(NamedTuple):
    """``nu``: the running second moment of the orthogonalised direction, per output unit
    (NorMuon: shape ``[batch, fan_out]``) or per element (AdaMuon: the leaf's shape)."""

    nu: Any


def _second_moment(dims_spec: Any, b2: float, eps: float, per_unit: bool,
                   rms: float) -> optax.GradientTransformation:
    """``v ← b2·v + (1 − b2)·O²`` (mean over the inputs of each output unit with
    ``per_unit``), ``Ô = O/(√v + eps)``, then ``Ô ← rms·√(fan_in·fan_out)·Ô/‖Ô‖_F`` per
    matrix (so every matrix steps with RMS ``rms``)."""

    def stat(p, d):
        # real (|O|² of a complex leaf); an elementwise one is sharded like its parameter
        dtype = jnp.finfo(compute_dtype(dtype_of(p))).dtype
        if not per_unit:
            return full_like(p, dtype=dtype)
        layout = _matrix_layout(tuple(p.shape), d)
        return jnp.zeros((layout.flat_shape[0], layout.fan_out), dtype)

    def init(params):
        leaves = jax.tree.leaves(params)
        dims = _resolve_dims(dims_spec, params)
        treedef = jax.tree.structure(params)
        return ScaleByMuonSecondMomentState(treedef.unflatten(
            [stat(p, d) for p, d in zip(leaves, dims, strict=True)]))

    def leaf(o, v, layout):
        dtype = v.dtype
        x = layout.to_batch(upcast(o))     # [batch, rows, cols], output units on one axis
        unit_axis = layout.output_axis_of_batch
        in_axis = -1 if unit_axis == -2 else -2
        if per_unit:
            v = b2 * v + (1 - b2) * jnp.mean(abs_sq(x), axis=in_axis)
            scaled = x / (jnp.sqrt(jnp.expand_dims(v, in_axis)) + eps)
        else:
            v_batch = layout.to_batch(v)
            v_batch = b2 * v_batch + (1 - b2) * abs_sq(x)
            scaled = x / (jnp.sqrt(v_batch) + eps)
            v = layout.from_batch(v_batch)
        norm = jnp.sqrt(jnp.sum(abs_sq(scaled), axis=(-2, -1), keepdims=True))
        size = math.sqrt(layout.fan_in * layout.fan_out)
        scaled = scaled * (rms * size / (norm + eps))
        return as_update(layout.from_batch(scaled), o), v.astype(dtype)

    def update(updates, state, params=None):
        del params
        treedef = jax.tree.structure(updates)
        leaves = treedef.flatten_up_to(updates)
        nus = treedef.flatten_up_to(state.nu)
        dims = _resolve_dims(dims_spec, updates)
        out, new = [], []
        for u, v, d in zip(leaves, nus, dims, strict=True):
            if is_float0(u):
                out.append(u)
                new.append(v)
                continue
            o, v = leaf(u, v, _matrix_layout(tuple(u.shape), d))
            out.append(o)
            new.append(v)
        return treedef.unflatten(out), ScaleByMuonSecondMomentState(treedef.unflatten(new))

    return optax.GradientTransformation(init, update)


def _decay(weight_decay: float, mask: Mask, cautious: bool) -> list[optax.GradientTransformation]:
    if cautious:
        return [add_cautious_decayed_weights(weight_decay, mask=mask)]
    return [add_decayed_weights(weight_decay, mask=mask)]


# ---------------------------------------------------------------------------- the labels

_EMBEDDING_NAMES = ("embedding", "embeddings", "embed", "wte", "wpe", "tok_embeddings",
                    "token_embedding", "position_embedding", "pos_embedding", "embed_tokens")
_HEAD_NAMES = ("head", "lm_head", "unembed", "unembedding", "logits", "classifier",
               "readout", "output", "output_layer", "decoder_head")
_OUT_PROJECTION_NAMES = ("out", "o_proj", "out_proj", "wo", "proj_out", "o")
_VECTOR_NAMES = ("bias", "scale", "b", "beta", "gamma", "offset")


def _path_names(path: Sequence[Any]) -> list[str]:
    names = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                names.append(str(getattr(key, attr)))
                break
        else:
            names.append(str(key))
    return [n for n in names if n != "value"]


def _default_dims(names: list[str], x: Any) -> MuonDimensionNumbers | None:
    shape = tuple(getattr(x, "shape", ()))
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.inexact) or len(shape) < 2:
        return None                          # integers, scalars, biases, norms
    lowered = [n.lower() for n in names]
    if lowered and lowered[-1] in _VECTOR_NAMES:
        return None                          # per-head biases [heads, head_dim], norm scales
    if any(n in _EMBEDDING_NAMES or n.endswith("embedding") for n in lowered):
        return None                          # embedding tables
    if any(n in _HEAD_NAMES or n.endswith("_head") for n in lowered):
        return None                          # output heads
    if len(shape) == 2:
        return MuonDimensionNumbers(0, 1)
    module = lowered[-2] if len(lowered) >= 2 else ""
    if len(shape) == 3 and module in _OUT_PROJECTION_NAMES:
        return MuonDimensionNumbers((0, 1), 2)   # attention output [heads, head_dim, d]
    if len(shape) == 3 and "conv" not in module:
        return MuonDimensionNumbers(0, (1, 2))   # attention q/k/v [d, heads, head_dim]
    return MuonDimensionNumbers(tuple(range(len(shape) - 1)), len(shape) - 1)  # conv


def muon_labels(
    params: Any,
    *,
    overrides: Mapping[str, MuonDimensionNumbers | None] | None = None,
) -> Any:
    """Which leaves Muon trains, read from the parameters' paths (Flax NNX or Linen trees).

    Returns a pytree with the structure of ``params`` holding a
    :class:`MuonDimensionNumbers` per Muon leaf and ``None`` per fallback (AdamW) leaf: pass
    it (or ``muon_labels`` itself) as ``muon_weight_dimension_numbers``. :func:`muon`'s
    default. The rules, first match wins:

    1. ``overrides``: ``{regex: dims or None}``, searched (``re.search``) in the leaf's path
       joined by ``/`` (e.g. ``"layers/0/attn/query/kernel"``), in the order given;
    2. not a floating-point (real or complex) array, fewer than 2 axes, or named ``bias``,
       ``scale``, ``b``, ``beta``, ``gamma``, ``offset`` (biases and norm scales, per-head
       ones included) → ``None``;
    3. a path component naming an embedding (``embedding``, ``embed``, ``wte``, ... or
       ending in ``embedding``) or an output head (``head``, ``lm_head``, ``unembed``,
       ``logits``, ``classifier``, ``readout``, ``output``, ... or ending in ``_head``) →
       ``None``;
    4. 2-D → ``MuonDimensionNumbers(0, 1)`` (Flax's ``[in, out]`` kernel);
    5. 3-D in a module named ``out``/``o_proj``/``out_proj``/``wo`` (NNX/Linen attention's
       output ``[heads, head_dim, d]``) → ``((0, 1), 2)``; other 3-D not in a ``conv``
       module (attention query/key/value ``[d, heads, head_dim]``) → ``(0, (1, 2))``;
    6. N-D (convolution kernels ``[..., c_in, c_out]``) → every axis but the last in,
       the last out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> params = {"embed": {"embedding": jnp.zeros((10, 4))},
      ...           "attn": {"query": {"kernel": jnp.zeros((4, 2, 2))}},
      ...           "mlp": {"kernel": jnp.zeros((4, 8)), "bias": jnp.zeros(8)},
      ...           "lm_head": {"kernel": jnp.zeros((4, 10))}}
      >>> labels = lossjax.muon_labels(params)
      >>> labels["attn"]["query"]["kernel"], labels["mlp"]["bias"], labels["lm_head"]
      (MuonDimensionNumbers(reduction_axis=0, output_axis=(1, 2)), None, {'kernel': None})
      >>> lossjax.muon_labels(params, overrides={"mlp": None})["mlp"]["kernel"] is None
      True
    """
    patterns = [(re.compile(pattern), dims) for pattern, dims in (overrides or {}).items()]

    def label(path, x):
        names = _path_names(path)
        joined = "/".join(names)
        for pattern, dims in patterns:
            if pattern.search(joined):
                return dims
        return _default_dims(names, x)

    return jax.tree_util.tree_map_with_path(label, params)


def _labels_fn(dims_spec: Any) -> Callable[[Any], Any]:
    """The partition labels (``"muon"``/``"adam"``) of a parameter tree."""

    def labels(tree):
        treedef = jax.tree.structure(tree)
        dims = _resolve_dims(dims_spec, tree)
        return treedef.unflatten(["muon" if d is not None else "adam" for d in dims])

    return labels


# --------------------------------------------------------------------------------- muon


def _check_rates(**rates: Any) -> None:
    for name, rate in rates.items():
        if rate is not None and not callable(rate):
            check_non_negative(name, rate)


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
    newton_schulz_method: Literal["standard", "gram", "auto"] = "auto",
    second_moment: Literal["normuon", "adamuon"] | None = None,
    b2: float = 0.95,
    cautious_weight_decay: bool = False,
    batch_newton_schulz: bool | None = None,
) -> optax.GradientTransformation:
    """Muon (MomentUm Orthogonalized by Newton–Schulz) for hidden matrices, AdamW for the rest.

    For a Muon leaf ``W`` (read as ``fan_in × fan_out`` matrices), with ``t`` the step::

        O = NewtonSchulz(M̂)                     (:func:`scale_by_muon`)
        W ← W − lr·(s·O + wd·W),   s = √max(1, fan_out/fan_in)

    (``consistent_rms=ρ``: ``s = ρ·√max(fan_in, fan_out)``, Liu et al. 2025;
    ``cautious_weight_decay``: ``wd·W`` only where ``O`` and ``W`` agree in sign). Other
    leaves take AdamW steps (:func:`scale_by_adam`, Nesterov when ``nesterov``) with
    ``adam_*`` and ``eps``. Built as ``partition({"muon": chain(scale_by_muon, shape
    scale, decay, learning rate), "adam": AdamW})``: the state has
    ``optax.contrib.muon``'s layout, leaf for leaf.

    ``second_moment="normuon"`` (Li et al. 2025): ``v ← b2·v + (1 − b2)·mean_in(O²)`` per
    output unit, ``Ô = O/(√v + eps)``, and ``s·O`` becomes ``0.2·√(fan_in·fan_out)·Ô/‖Ô‖_F``;
    ``"adamuon"`` (Si et al. 2025): ``O = NewtonSchulz(sign(M̂))``, ``v`` elementwise,
    the same RMS-0.2 scaling (both replace the shape scale; the state adds ``nu``).

    Args:
      learning_rate: Muon's rate (a float, a constant of the step, or a schedule).
      ns_coeffs: see :func:`scale_by_muon`, as are ``ns_steps``, ``beta``, ``eps`` (AdamW's
        ε too), ``mu_dtype``, ``nesterov``, ``adaptive``, ``preconditioning``,
        ``newton_schulz_method`` and ``batch_newton_schulz``.
      weight_decay, weight_decay_mask: decoupled decay of the Muon leaves (times ``lr``),
        and which of them decay (pytree of bools or a function of the parameters).
      adam_b1, adam_b2, adam_eps_root, adam_weight_decay: the AdamW fallback.
      adam_learning_rate: the fallback's rate (default: ``learning_rate``).
      muon_weight_dimension_numbers: which leaves are Muon matrices and how to read them:
        a pytree (or prefix, or a function of the parameters) of
        :class:`MuonDimensionNumbers` (Muon) and ``None`` (AdamW). Default:
        :func:`muon_labels` (hidden-layer matrices and N-D kernels to Muon; embeddings,
        output heads, norms, biases to AdamW).
      consistent_rms: RMS-matching shape scale (``0.2`` matches AdamW's update RMS).
      second_moment, b2: NorMuon / AdaMuon (above) and their second moment's decay.
      cautious_weight_decay: decay only where the update and the weight agree in sign.

    Deliberate differences from ``optax.contrib.muon`` (0.2.8): the default labels read
    paths and shapes (optax sends every 2-D leaf to Muon, embeddings and heads included,
    and every other rank to AdamW); ``"auto"`` runs wide matrices through the Gram
    iteration (equal in exact arithmetic, within float32 rounding); integer Muon leaves
    raise ``ValueError``. Complex matrices are Muon leaves, as in optax (``X Xᴴ`` in the
    iteration, ``|·|²`` in the norms).

    References: Jordan et al., "Muon: An optimizer for hidden layers in neural networks"
    (2024), https://kellerjordan.github.io/posts/muon/; Liu et al., "Muon is Scalable for
    LLM Training" (2025); Li et al., "NorMuon: Making Muon more efficient and scalable"
    (2025); Si et al., "AdaMuon: Adaptive Muon Optimizer" (2025).

    Examples:
      >>> import jax.numpy as jnp
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
    check_non_negative("weight_decay", weight_decay)
    check_in_range("adam_b1", adam_b1, 0.0, 1.0)
    check_in_range("adam_b2", adam_b2, 0.0, 1.0)
    check_non_negative("adam_eps_root", adam_eps_root)
    check_non_negative("adam_weight_decay", adam_weight_decay)
    check_in_range("b2", b2, 0.0, 1.0)
    if consistent_rms is not None:
        check_non_negative("consistent_rms", consistent_rms)
    if second_moment not in (None, "normuon", "adamuon"):
        raise ValueError(f"second_moment must be None, 'normuon' or 'adamuon', got "
                         f"{second_moment!r}")
    _check_rates(learning_rate=learning_rate, adam_learning_rate=adam_learning_rate)
    dims_spec = muon_weight_dimension_numbers
    direction = scale_by_muon(
        ns_coeffs, ns_steps, beta, eps, mu_dtype, nesterov=nesterov, adaptive=adaptive,
        preconditioning=preconditioning, weight_dimension_numbers=_dims_or_labels(dims_spec),
        newton_schulz_method=newton_schulz_method,
        sign_momentum=second_moment == "adamuon", batch_newton_schulz=batch_newton_schulz)
    if second_moment is None:
        scaling = _scale_by_shape(_dims_or_labels(dims_spec), consistent_rms)
    else:
        scaling = _second_moment(_dims_or_labels(dims_spec), b2, eps,
                                 second_moment == "normuon", 0.2)
    muon_part = optax.chain(direction, scaling,
                            *_decay(weight_decay, weight_decay_mask, cautious_weight_decay),
                            scale_by_learning_rate(learning_rate))
    adam_part = optax.chain(
        scale_by_adam(adam_b1, adam_b2, eps, adam_eps_root, mu_dtype, nesterov=nesterov),
        add_decayed_weights(adam_weight_decay),
        scale_by_learning_rate(learning_rate if adam_learning_rate is None
                               else adam_learning_rate))
    return optax_transforms.partition({"muon": muon_part, "adam": adam_part},
                                      _labels_fn(dims_spec))


def _dims_or_labels(dims_spec: Any) -> Any:
    """The dimension numbers a piece inside the partition uses: the user's, or the
    default labels (the piece sees only its own leaves, with their paths)."""
    return muon_labels if dims_spec is None else dims_spec


def _second_moment_muon(kind: Literal["normuon", "adamuon"]
                        ) -> Callable[..., optax.GradientTransformation]:
    def build(
        learning_rate: ScalarOrSchedule,
        beta: float = 0.95,
        b2: float = 0.95,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        weight_decay_mask: Mask = None,
        mu_dtype: Any = None,
        *,
        ns_coeffs: Any = (3.4445, -4.7750, 2.0315),
        ns_steps: int = 5,
        nesterov: bool = True,
        adam_b1: float = 0.9,
        adam_b2: float = 0.999,
        adam_eps_root: float = 0.0,
        adam_weight_decay: float = 0.0,
        adam_learning_rate: ScalarOrSchedule | None = None,
        muon_weight_dimension_numbers: Any = None,
        newton_schulz_method: Literal["standard", "gram", "auto"] = "auto",
        cautious_weight_decay: bool = False,
        batch_newton_schulz: bool | None = None,
    ) -> optax.GradientTransformation:
        return muon(learning_rate, ns_coeffs, ns_steps, beta, eps, weight_decay,
                    weight_decay_mask, mu_dtype, nesterov=nesterov, adam_b1=adam_b1,
                    adam_b2=adam_b2, adam_eps_root=adam_eps_root,
                    adam_weight_decay=adam_weight_decay,
                    adam_learning_rate=adam_learning_rate,
                    muon_weight_dimension_numbers=muon_weight_dimension_numbers,
                    newton_schulz_method=newton_schulz_method, second_moment=kind, b2=b2,
                    cautious_weight_decay=cautious_weight_decay,
                    batch_newton_schulz=batch_newton_schulz)

    return build


normuon = _second_moment_muon("normuon")
normuon.__name__ = normuon.__qualname__ = "normuon"
normuon.__doc__ = """NorMuon: :func:`muon` with ``second_moment="normuon"``.

    A per-neuron second moment after the orthogonalisation, ``v ← b2·v + (1 − b2)·mean_in(O²)``,
    ``Ô = O/(√v + eps)``, and steps of RMS 0.2 per matrix (see :func:`muon` for the other
    arguments).

    References: Li et al., "NorMuon: Making Muon more efficient and scalable" (2025),
    arXiv:2510.05491.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.normuon(0.1)
      >>> w = jnp.zeros((4, 4))
      >>> u, _ = opt.update(jnp.eye(4), opt.init(w), w)
      >>> float(jnp.sqrt(jnp.mean(u**2)) / 0.1)   # RMS 0.2 per matrix
      0.2...
    """

adamuon = _second_moment_muon("adamuon")
adamuon.__name__ = adamuon.__qualname__ = "adamuon"
adamuon.__doc__ = """AdaMuon: :func:`muon` with ``second_moment="adamuon"``.

    The sign of the momentum is orthogonalised, an elementwise second moment
    ``v ← b2·v + (1 − b2)·O²`` divides the result, and the step has RMS 0.2 per matrix
    (see :func:`muon` for the other arguments).

    References: Si et al., "AdaMuon: Adaptive Muon Optimizer" (2025), arXiv:2507.11005.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adamuon(0.1)
      >>> w = jnp.zeros((4, 4))
      >>> u, _ = opt.update(jnp.eye(4), opt.init(w), w)
      >>> float(jnp.sqrt(jnp.mean(u**2)) / 0.1)
      0.2...
    """


# -------------------------------------------------------------------------------- qk_clip


def _clip_leaf(u, w, logit_max, threshold, exponent):
    w32, u32 = upcast(w), upcast(u)
    factor = jnp.minimum(1.0, threshold / jnp.maximum(upcast(logit_max), 1e-30)) ** exponent
    return (as_update((w32 + u32) * factor - w32, u),)


def qk_clip(threshold: float = 100.0, alpha: float = 0.5, key_mask: Mask = None
            ) -> optax.GradientTransformation:
    """MuonClip's QK-clip: rescale query and key weights whose attention logits grew too big.

    Chained after the optimizer; ``update(updates, state, params,
    attention_logit_max=tree)`` takes the maxima from the user: ``tree`` has the structure of
    the parameters (or a prefix of it), with ``None`` for leaves that are not query/key
    weights and, for a query or key kernel, the largest attention logit seen this step for
    each head, shaped to broadcast against the kernel (e.g. ``(1, heads, 1)`` for a Flax
    ``[d, heads, head_dim]`` kernel). With ``γ = min(1, τ/S_max)`` the new weights are
    ``(W + u)·γ^α`` for queries and ``(W + u)·γ^{1−α}`` for keys (``key_mask`` selects the
    keys; with ``alpha = 0.5`` both get ``√γ`` and ``key_mask`` may be omitted), so the
    logit ``q·k`` shrinks by ``γ`` exactly. Stateless.

    References: Kimi Team, "Kimi K2: Open Agentic Intelligence" (2025), MuonClip.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.qk_clip(threshold=10.0)
      >>> w = {"q": jnp.ones((2, 1, 2)), "b": jnp.ones(2)}
      >>> u = {"q": jnp.zeros((2, 1, 2)), "b": jnp.zeros(2)}
      >>> new, _ = tx.update(u, tx.init(w), w,
      ...                    attention_logit_max={"q": jnp.full((1, 1, 1), 40.0), "b": None})
      >>> new["q"][0, 0]   # W·√(10/40) − W
      Array([-0.5, -0.5], dtype=float32)
    """
    check_positive("threshold", threshold)
    check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    if alpha != 0.5 and key_mask is None:
        raise ValueError("key_mask: needed when alpha != 0.5 (queries get γ^alpha, keys "
                         "γ^(1 - alpha))")
    apply = per_leaf(_clip_leaf, 1, trace_once=False)

    def update(updates, state, params=None, *, attention_logit_max=None, **extra):
        del extra
        if attention_logit_max is None:
            return without_float0(updates), state
        if params is None:
            raise ValueError("qk_clip needs the parameters: call update(u, state, params, "
                             "attention_logit_max=...)")
        treedef = jax.tree.structure(updates)
        spread = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub),
                              attention_logit_max, updates, is_leaf=lambda n: n is None)
        maxima = treedef.flatten_up_to(spread)
        keys = treedef.flatten_up_to(mask_flags(key_mask, updates)) if key_mask is not None \
            else [False] * treedef.num_leaves
        dtype = scalar_dtype(updates)
        out = []
        for u, w, m, is_key in zip(treedef.flatten_up_to(updates),
                                   treedef.flatten_up_to(params), maxima, keys, strict=True):
            if m is None or is_float0(u):
                out.append(without_float0(u))
                continue
            exponent = (1.0 - alpha) if (is_key and key_mask is not None) else alpha
            out.append(apply((u, w, m), (jnp.asarray(threshold, dtype),
                                         jnp.asarray(exponent, dtype)))[0])
        return treedef.unflatten(out), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update)


# ---------------------------------------------------------------------------------- scion


def _sign_leaf(u):
    return (jnp.sign(u),)


def _sign() -> optax.GradientTransformation:
    apply = per_leaf(_sign_leaf, 1, trace_once=False)

    def update(updates, state, params=None):
        del params
        return apply((updates,))[0], state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def scion(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.1,
    spectral_radius: float = 1.0,
    sign_radius: float = 1.0,
    *,
    constrained: bool = False,
    ns_coeffs: Any = (3.4445, -4.7750, 2.0315),
    ns_steps: int = 5,
    weight_dimension_numbers: Any = None,
) -> optax.GradientTransformation:
    """Scion: steps along the linear minimisation oracle (LMO) of a per-layer norm.

    ``d ← (1 − α)·d + α·g`` (``α = momentum``, no bias correction: the LMOs are
    scale-free); matrices (the Muon leaves of ``weight_dimension_numbers``, default
    :func:`muon_labels`) step along the spectral-norm LMO ``ρ_s·√(fan_out/fan_in)·U Vᵀ``
    (``UVᵀ`` from Newton–Schulz), every other leaf along the sign (ℓ∞) LMO
    ``ρ_∞·sign(d)``: ``W ← W − lr·lmo(d)`` (unconstrained Scion), or with ``constrained``
    ``W ← (1 − lr)·W − lr·lmo(d)`` (the weights stay in the norm ball of radius ``ρ``).

    References: Pethick et al., "Training Deep Learning Models with Norm-Constrained LMOs"
    (2025), arXiv:2502.07529.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.scion(0.1)
      >>> params = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)}
      >>> grads = {"w": jnp.diag(jnp.array([3.0, 0.5])), "b": jnp.array([2.0, -0.1])}
      >>> u, _ = opt.update(grads, opt.init(params), params)
      >>> u["b"]
      Array([-0.1,  0.1], dtype=float32)
    """
    check_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
    if momentum == 0:
        raise ValueError("momentum must be in (0, 1], got 0 (the direction would stay 0)")
    check_non_negative("spectral_radius", spectral_radius)
    check_non_negative("sign_radius", sign_radius)
    _check_rates(learning_rate=learning_rate)
    dims_spec = _dims_or_labels(weight_dimension_numbers)
    decay = [add_decayed_weights(1.0)] if constrained else []
    spectral = optax.chain(
        scale_by_muon(ns_coeffs, ns_steps, 1.0 - momentum, nesterov=False,
                      weight_dimension_numbers=dims_spec),
        _scale_by_shape(dims_spec, None, floor=0.0), scale_by_constant(spectral_radius), *decay,
        scale_by_learning_rate(learning_rate))
    sign = optax.chain(exponential_average(1.0 - momentum), _sign(),
                       scale_by_constant(sign_radius), *decay,
                       scale_by_learning_rate(learning_rate))
    return optax_transforms.partition({"spectral": spectral, "sign": sign},
                                      _scion_labels(dims_spec))


def _scion_labels(dims_spec: Any) -> Callable[[Any], Any]:
    muon_or_adam = _labels_fn(dims_spec)
    return lambda tree: jax.tree.map(lambda label: "spectral" if label == "muon" else "sign",
                                     muon_or_adam(tree))

"""Flat parameter buffers: a model's many leaves packed into a few arrays, for optimizers
whose update is elementwise.

An optimizer's update is traced, and compiled, leaf by leaf: its program, and XLA's
compile time, grow with the number of parameter leaves. PyTorch's ``foreach``/fused
optimizers avoid that by updating many tensors at once. Here the parameters themselves are
held as a few buffers (one per dtype, sharding and user label), the optimizer runs on the
buffers (a handful of leaves, whatever the model's size), and the model reads its weights
with :meth:`FlatLayout.unflatten` (slices and reshapes: XLA fuses a slice into an
elementwise consumer, and copies it before a matrix product), whose gradient is one
``concatenate`` per buffer.

Layout of one buffer: a replicated (or single-device) group is a 1-D array, the leaves'
raveled values one after the other. A group of leaves sharded along their first axis over
``N`` devices (FSDP) is a 2-D ``[N, total / N]`` array sharded along axis 0, row ``k``
holding every leaf's ``k``-th shard, so slicing a leaf out of it and its gradient's
concatenation need no communication. A leaf sharded any other way, or of one element, is
its own buffer, kept as it is; a group over ``max_bytes`` continues in another buffer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.core import Tracer

Array = jax.Array

__all__ = ["FlatLayout", "check_elementwise", "flatten_params"]


@dataclasses.dataclass(frozen=True)
class _Slot:
    """Where one parameter leaf lives: columns ``[offset, offset + width)`` of every row of
    buffer ``buffer`` (``width = size / rows``), or the whole buffer when ``own``."""

    buffer: str
    offset: int
    width: int
    shape: tuple[int, ...]
    own: bool


@dataclasses.dataclass(frozen=True)
class _Buffer:
    rows: int  # 1: a 1-D buffer; N > 1: [N, columns], sharded along axis 0
    columns: int
    dtype: Any
    sharding: Any  # jax.sharding.Sharding of the buffer, or None (default placement)
    label: Hashable
    shape: tuple[int, ...]  # the buffer's shape


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name


def _first_axis_spec(sharding: Any, ndim: int) -> Any:
    """The mesh axis (name or tuple of names) that shards axis 0 only, or ``None`` when the
    sharding is not "first axis over some mesh axes, the other axes whole"."""
    if not isinstance(sharding, jax.sharding.NamedSharding) or ndim == 0:
        return None
    spec = tuple(sharding.spec) + (None,) * (ndim - len(sharding.spec))
    if spec[0] is None or any(s is not None for s in spec[1:]):
        return None
    return spec[0]


def _placement(leaf: Any, rows_hint: int | None) -> tuple[str, int, Any, bool]:
    """``(group key part, rows, buffer sharding, own)`` for one leaf."""
    shape = tuple(np.shape(leaf))
    if math.prod(shape) == 1:
        # XLA simplifies the arithmetic of one-element arrays as scalars (it rewrites
        # (c·g)² as c²·g², for one), so packing them would round differently: kept apart
        return "", 0, getattr(leaf, "sharding", None), True
    if rows_hint is not None:  # a layout built without devices (check_elementwise's probe)
        if shape and shape[0] % rows_hint == 0:
            return f"rows{rows_hint}", rows_hint, None, False
        return "", 1, None, False
    sharding = getattr(leaf, "sharding", None)
    if sharding is None or sharding.is_fully_replicated:
        placed = (sharding if isinstance(sharding, jax.sharding.NamedSharding) else None)
        if placed is not None:
            placed = jax.sharding.NamedSharding(placed.mesh, jax.sharding.PartitionSpec())
        return ("" if placed is None else "replicated"), 1, placed, False
    axis = _first_axis_spec(sharding, len(shape))
    if axis is not None:
        names = axis if isinstance(axis, tuple) else (axis,)
        rows = math.prod(sharding.mesh.shape[name] for name in names)
        if shape[0] % rows == 0:
            buffer_sharding = jax.sharding.NamedSharding(
                sharding.mesh, jax.sharding.PartitionSpec(axis, None))
            return f"fsdp({','.join(names)})", rows, buffer_sharding, False
    return "", 0, sharding, True


def _resolve_labels(labels: Any, params: Any) -> list[Hashable]:
    leaves = jax.tree.leaves(params)
    if labels is None:
        return [None] * len(leaves)
    if callable(labels):
        labels = labels(params)
    try:
        flat = jax.tree.leaves(jax.tree.map(lambda label, _: label, labels, params))
    except (ValueError, TypeError) as error:
        raise ValueError(f"labels must have the structure of params: {error}") from error
    for label in flat:
        if not isinstance(label, Hashable):
            raise ValueError(f"labels must be hashable (e.g. strings), got {label!r}")
    return flat


class FlatLayout:
    """Where each parameter leaf lives in the flat buffers :func:`flatten_params` made.

    Attributes:
      names: the buffers' names, in order (the keys of the buffers dict).
      labels: ``{buffer name: label}`` (``None`` without labels), e.g. to build a mask over
        the buffers: ``{name: label == "decay" for name, label in layout.labels.items()}``.
      shapes: ``{buffer name: jax.ShapeDtypeStruct}`` (with the buffer's sharding).

    The layout is static (no arrays): close over it in jitted functions.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> params = {"b": jnp.zeros(2), "w": jnp.ones((2, 3))}
      >>> buffers, layout = lossjax.flatten_params(params)
      >>> layout.names, buffers["float32"].shape
      (('float32',), (8,))
      >>> layout.unflatten(buffers)["w"]
      Array([[1., 1., 1.],
             [1., 1., 1.]], dtype=float32)
    """

    def __init__(self, treedef: Any, slots: tuple[_Slot, ...], buffers: dict[str, _Buffer]):
        self._treedef = treedef
        self._slots = slots
        self._buffers = buffers
        self._members: dict[str, list[int]] = {n: [] for n in buffers}  # slot indices
        for i, slot in enumerate(slots):
            self._members[slot.buffer].append(i)
        self.names: tuple[str, ...] = tuple(buffers)
        self.labels: dict[str, Hashable] = {n: b.label for n, b in buffers.items()}
        self.shapes: dict[str, jax.ShapeDtypeStruct] = {
            n: jax.ShapeDtypeStruct(b.shape, b.dtype, sharding=b.sharding)
            for n, b in buffers.items()}
        self._unflatten_static, self._unflatten_dynamic = self._make_unflatten()
        # outside a trace, slices with constant offsets would compile one program per leaf
        # (eagerly) or one kernel per leaf (jitted): read with the offsets as arguments
        self._read_eagerly = jax.jit(self._read)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n!r}: {b.dtype}{list(b.shape)}" for n, b in self._buffers.items())
        return f"FlatLayout({len(self._slots)} leaves in {{{shapes}}})"

    # -- packing and unpacking ---------------------------------------------------------------

    def flatten(self, tree: Any) -> dict[str, Array]:
        """Pack a tree with the parameters' structure and shapes (parameters, gradients, one
        moment of a per-leaf optimizer state) into buffers of this layout: one
        ``concatenate`` per buffer (a copy; for set-up and conversions, not every step)."""
        leaves = self._tree_leaves(tree, "tree")
        pieces: dict[str, list[Array]] = {n: [] for n in self._buffers}
        for slot, leaf in zip(self._slots, leaves, strict=True):
            pieces[slot.buffer].append(leaf)
        return {n: self._pack(n, pieces[n]) for n in self._buffers}

    @property
    def offsets(self) -> tuple[Array, ...]:
        """Where each leaf starts in its buffer, as int32 scalars (one per parameter leaf):
        pass them into the jitted step as an argument and on to :meth:`unflatten`, so that
        XLA sees them as runtime values and compiles one kernel per leaf shape instead of
        one per leaf (a new array each call: fetch it once and keep it)."""
        return tuple(jnp.asarray(s.offset, jnp.int32) for s in self._slots)

    def unflatten(self, buffers: dict[str, Array], offsets: Any = None) -> Any:
        """The parameter tree read out of ``buffers``: each leaf a slice and a reshape of its
        buffer. Differentiable: the gradient with respect to each buffer is one
        ``concatenate`` of its leaves' gradients, so ``jax.grad`` of a loss of
        ``layout.unflatten(buffers)`` is the gradient with respect to the buffers.

        Args:
          buffers: ``{name: array}`` as :func:`flatten_params` returned them (or updated).
          offsets: ``None``, or :attr:`offsets` passed through the jitted function's
            arguments. With ``None`` the slices' offsets are compile-time constants, which
            makes XLA:CPU compile a separate kernel for every leaf (its compile time grows
            ~10x faster with the number of leaves than a tree's); with the offsets as
            runtime arguments, leaves of one shape share their kernels. Results are the same.
        """
        self._check_buffers(buffers, "buffers")
        if offsets is None and not _traced(buffers):
            return self._read_eagerly(buffers, self.offsets)
        if offsets is None:
            return self._unflatten_static(buffers)
        if len(offsets) != len(self._slots):
            raise ValueError(f"offsets must be layout.offsets ({len(self._slots)} scalars), "
                             f"got {len(offsets)}")
        return self._unflatten_dynamic(buffers, tuple(offsets))

    def _pack(self, name: str, leaves: list[Any]) -> Array:
        spec = self._buffers[name]
        # the leaves' own dtype: a state's moments may be stored in another (mu_dtype)
        if self._slots[self._members[name][0]].own:
            return jnp.asarray(leaves[0])
        if spec.rows == 1:
            parts = [jnp.ravel(jnp.asarray(x)) for x in leaves]
            axis = 0
        else:
            parts = [jnp.reshape(jnp.asarray(x), (spec.rows, -1)) for x in leaves]
            axis = 1
        buffer = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=axis)
        if spec.sharding is not None:
            buffer = jax.lax.with_sharding_constraint(buffer, spec.sharding)
        return buffer

    def _read(self, buffers: dict[str, Array], offsets: tuple[Any, ...] | None = None) -> Any:
        leaves = []
        for i, slot in enumerate(self._slots):
            buffer = buffers[slot.buffer]
            if slot.own:
                leaves.append(buffer)
                continue
            rows = self._buffers[slot.buffer].rows
            if offsets is not None:
                start = (offsets[i],) if rows == 1 else (jnp.int32(0), offsets[i])
                piece = jax.lax.dynamic_slice(buffer, start, (slot.width,) if rows == 1
                                              else (rows, slot.width))
            else:
                piece = jax.lax.slice_in_dim(buffer, slot.offset, slot.offset + slot.width,
                                             axis=0 if rows == 1 else 1)
            leaves.append(jnp.reshape(piece, slot.shape))
        return self._treedef.unflatten(leaves)

    def _make_unflatten(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        @jax.custom_vjp
        def static(buffers):
            return self._read(buffers)

        static.defvjp(lambda buffers: (self._read(buffers), None),
                      lambda _, cotangent: (self.flatten(cotangent),))

        @jax.custom_vjp
        def dynamic(buffers, offsets):
            return self._read(buffers, offsets)

        def backward(offsets, cotangent):
            zeros = tuple(np.zeros((), jax.dtypes.float0) for _ in offsets)
            return self.flatten(cotangent), zeros

        dynamic.defvjp(lambda buffers, offsets: (self._read(buffers, offsets), offsets),
                       backward)
        return static, dynamic

    # -- optimizer states ---------------------------------------------------------------------

    def to_flat(self, state: Any) -> Any:
        """An optimizer state of the per-leaf layout (what the optimizer's ``init`` returns
        for the parameter tree, or a checkpoint of it) converted to this layout: every
        sub-tree with the parameters' structure and shapes is packed into buffers
        (``optax.MaskedNode`` leaves, as masked wrappers store them, are kept when a whole
        buffer's leaves are masked); anything else (step counts, scalars) is kept."""
        return jax.tree.map(self._to_flat_node, state, is_leaf=self._is_params_like)

    def to_tree(self, state: Any) -> Any:
        """The inverse of :meth:`to_flat`: every sub-tree that is a dict of this layout's
        buffers (same names and shapes) is unpacked into the parameters' tree, so the state
        loads into the per-leaf optimizer (lossjax's or optax's) and checkpoints written
        from flat training stay in the per-leaf format."""
        return jax.tree.map(self._to_tree_node, state, is_leaf=self._is_buffers_like)

    def _is_params_like(self, node: Any) -> bool:
        leaves, treedef = jax.tree.flatten(node, is_leaf=_is_masked)
        if treedef != self._treedef:
            return False
        return all(_is_masked(x) or tuple(np.shape(x)) == s.shape
                   for x, s in zip(leaves, self._slots, strict=True))

    def _is_buffers_like(self, node: Any) -> bool:
        if not isinstance(node, dict) or set(node) != set(self._buffers):
            return False
        return all(_is_masked(node[n]) or tuple(np.shape(node[n])) == b.shape
                   for n, b in self._buffers.items())

    def _to_flat_node(self, node: Any) -> Any:
        if not self._is_params_like(node):
            return node
        leaves = jax.tree.leaves(node, is_leaf=_is_masked)
        grouped: dict[str, list[Any]] = {n: [] for n in self._buffers}
        for slot, leaf in zip(self._slots, leaves, strict=True):
            grouped[slot.buffer].append(leaf)
        out = {}
        for name, group in grouped.items():
            masked = [_is_masked(x) for x in group]
            if all(masked):
                out[name] = group[0]
            elif any(masked):
                raise ValueError(
                    f"state: buffer {name!r} holds both masked and unmasked leaves; give "
                    "flatten_params labels that separate them")
            else:
                out[name] = self._pack(name, group)
        return out

    def _to_tree_node(self, node: Any) -> Any:
        if not self._is_buffers_like(node):
            return node
        masked = {n for n in self._buffers if _is_masked(node[n])}
        present = {n: (jnp.zeros(b.shape, b.dtype) if n in masked else node[n])
                   for n, b in self._buffers.items()}
        leaves = jax.tree.leaves(self._read(present) if _traced(present)
                                 else self._read_eagerly(present, self.offsets))
        leaves = [node[s.buffer] if s.buffer in masked else x
                  for s, x in zip(self._slots, leaves, strict=True)]
        return self._treedef.unflatten(leaves)

    # -- checks --------------------------------------------------------------------------------

    def _tree_leaves(self, tree: Any, what: str) -> list[Any]:
        leaves, treedef = jax.tree.flatten(tree)
        if treedef != self._treedef:
            raise ValueError(f"{what} must have the parameters' structure {self._treedef}, "
                             f"got {treedef}")
        for leaf, slot in zip(leaves, self._slots, strict=True):
            if tuple(np.shape(leaf)) != slot.shape:
                raise ValueError(f"{what}: a leaf has shape {np.shape(leaf)}, the layout "
                                 f"expects {slot.shape}")
        return leaves

    def _check_buffers(self, buffers: Any, what: str) -> None:
        if not isinstance(buffers, dict) or set(buffers) != set(self._buffers):
            got = sorted(buffers) if isinstance(buffers, dict) else type(buffers).__name__
            raise ValueError(f"{what} must be a dict with keys {list(self._buffers)}, got "
                             f"{got}")
        for name, spec in self._buffers.items():
            if tuple(np.shape(buffers[name])) != spec.shape:
                raise ValueError(f"{what}[{name!r}] must have shape {spec.shape}, got "
                                 f"{np.shape(buffers[name])}")


def _traced(buffers: dict[str, Any]) -> bool:
    return any(isinstance(x, Tracer) for x in buffers.values())


def _is_masked(node: Any) -> bool:
    return isinstance(node, optax.MaskedNode)


def _build_layout(params: Any, labels: Any, rows_hint: int | None,
                  max_bytes: int | None = None) -> FlatLayout:
    leaves, treedef = jax.tree.flatten(params)
    if not leaves:
        raise ValueError("params must have at least one array leaf")
    label_of = _resolve_labels(labels, params)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    groups: dict[str, dict[str, Any]] = {}
    chunk_of: dict[str, int] = {}  # base name -> the chunk being filled
    slots = []
    for leaf, label, path in zip(leaves, label_of, paths, strict=True):
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            leaf = jnp.asarray(leaf)
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise ValueError(f"params: leaf {path} has dtype {leaf.dtype}; flat buffers hold "
                             "floating-point parameters only")
        key_part, rows, sharding, own = _placement(leaf, rows_hint)
        parts = [] if label is None else [str(label)]
        parts.append(_dtype_name(leaf.dtype))
        if own:
            parts.append(f"leaf{path}")
        elif key_part:
            parts.append(key_part)
        base = "/".join(parts)
        chunk = chunk_of.setdefault(base, 0)
        name = base if chunk == 0 else f"{base}#{chunk}"
        row_bytes = math.prod(leaf.shape) // max(rows, 1) * leaf.dtype.itemsize
        current = groups.get(name)
        if (max_bytes is not None and current is not None and not own
                and (current["columns"] * leaf.dtype.itemsize + row_bytes > max_bytes)):
            chunk_of[base] = chunk = chunk + 1
            name = f"{base}#{chunk}"
        group = groups.setdefault(name, {"rows": max(rows, 1), "columns": 0,
                                         "dtype": leaf.dtype, "sharding": sharding,
                                         "label": label, "own": own, "shape": None})
        if group["label"] != label:  # two labels with the same str(): keep them apart
            raise ValueError(f"labels: two labels print as {label!s}; use distinct strings")
        size = math.prod(leaf.shape)
        width = size // group["rows"]
        slots.append(_Slot(name, group["columns"], width, tuple(leaf.shape), own))
        group["columns"] += width
        if own:
            group["shape"] = tuple(leaf.shape)
    buffers = {}
    for name, g in groups.items():
        if g["own"]:
            shape = g["shape"]
        else:
            shape = (g["columns"],) if g["rows"] == 1 else (g["rows"], g["columns"])
        buffers[name] = _Buffer(g["rows"], g["columns"], g["dtype"], g["sharding"], g["label"],
                                shape)
    return FlatLayout(treedef, tuple(slots), buffers)


def flatten_params(params: Any, *, labels: Any = None, max_bytes: int | None = 16 * 2**20
                   ) -> tuple[dict[str, Array], FlatLayout]:
    """Pack a parameter tree into a few flat buffers: ``(buffers, layout)``.

    Leaves are grouped by (label, dtype, sharding); each group becomes one buffer, in leaf
    order. Replicated or single-device leaves make a 1-D buffer; leaves sharded along their
    first axis over ``N`` devices (FSDP) make a ``[N, total / N]`` buffer sharded along its
    first axis, row ``k`` holding every leaf's ``k``-th shard; a leaf sharded another way,
    or of one element, is its own buffer. A group larger than ``max_bytes`` (per device)
    continues in a next buffer (``"...#1"``, ``"...#2"``). ``buffers`` is
    ``{name: array}``, named ``"<label>/<dtype>[/<sharding>][#<chunk>]"``.

    Train on the buffers: ``layout.unflatten(buffers, offsets)`` gives the model its tree
    (slices; pass ``layout.offsets`` in as an argument of the jitted step, see
    :meth:`FlatLayout.unflatten`), ``jax.grad`` with respect to the buffers concatenates
    the gradients once per buffer, and an **elementwise** optimizer (Adam family, SGD and
    momentum, RMSprop, Adagrad, Lion, sign methods, weight decay; see
    :func:`check_elementwise`) updates a handful of buffers instead of every leaf: its
    compile time no longer grows with the number of leaves, and its results equal the
    per-leaf update's bit for bit (as far as XLA compiles the step's scalars alike, and on
    CPU a loop's vectorised body and its scalar remainder alike: a last-bit difference in
    a few elements is possible; see the docs page "Many parameter leaves").
    The model pays instead: on CPU a weight read by a matrix product is copied out of its
    buffer, and its gradient copied into the concatenation.
    ``layout.to_tree(state)`` / ``layout.to_flat(state)`` convert optimizer states between
    the two layouts (checkpoints).

    Args:
      params: a pytree of floating-point arrays.
      labels: ``None``, or a pytree of hashable labels with ``params``' structure (or a
        function ``params -> labels``), e.g. ``"decay"`` / ``"no_decay"``: leaves with
        different labels go to different buffers, so a mask over the buffers
        (``layout.labels``) can treat them differently.
      max_bytes: the most bytes (per device) a buffer holds before the group continues in
        another one (a leaf is never split), or ``None`` for no limit. The 16 MiB default
        keeps each buffer, and each step's gradient buffer, below the size from which
        glibc's ``malloc`` maps fresh pages on every allocation (32 MiB): above it, a
        48-layer model's gradient step on CPU ran at half speed.

    Returns:
      ``(buffers, layout)``: the packed values (a copy) and the :class:`FlatLayout`.

    Raises:
      ValueError: ``params`` has no leaves or a non-floating leaf, ``labels`` does not
        match its structure, or ``max_bytes`` is not positive.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> import lossjax
      >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> labels = {"w": "decay", "b": "no_decay"}
      >>> buffers, layout = lossjax.flatten_params(params, labels=labels)
      >>> sorted(buffers)
      ['decay/float32', 'no_decay/float32']
      >>> decay = {name: label == "decay" for name, label in layout.labels.items()}
      >>> opt = lossjax.adamw(0.1, weight_decay=0.5, mask=decay)
      >>> state = opt.init(buffers)
      >>> loss = lambda p: jnp.sum(p["w"] * 2.0) + jnp.sum(p["b"])
      >>> grads = jax.grad(lambda bufs: loss(layout.unflatten(bufs)))(buffers)
      >>> updates, state = opt.update(grads, state, buffers)
      >>> layout.unflatten(optax.apply_updates(buffers, updates))["b"]
      Array([-0.1, -0.1, -0.1], dtype=float32)
    """
    if max_bytes is not None and max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive or None, got {max_bytes}")
    layout = _build_layout(params, labels, None, max_bytes)
    buffers = layout.flatten(params)
    originals = {id(x) for x in jax.tree.leaves(params)}
    for name, spec in layout.shapes.items():
        if id(buffers[name]) in originals:  # a leaf of its own: copy, so donating is safe
            buffers[name] = jnp.copy(buffers[name])
        if spec.sharding is not None:
            buffers[name] = jax.device_put(buffers[name], spec.sharding)
    return buffers, layout


def check_elementwise(optimizer: optax.GradientTransformation, *, steps: int = 3,
                      rtol: float = 1e-4) -> None:
    """Raise ``ValueError`` when ``optimizer`` gives different results on flat buffers than
    leaf by leaf, i.e. when it is not elementwise and must not run on flat buffers.

    It runs ``steps`` updates of ``optimizer`` on a small probe tree (a 128 x 130 matrix, a
    4 x 5 matrix and a 6-vector, of different scales) leaf by leaf and on the probe's 1-D
    and 2-D (two-row, as FSDP lays it out) flat buffers, and compares. Optimizers that
    treat a leaf as a whole fail it: per-leaf norms or trust ratios (LAMB, LARS, clipping
    by block RMS, Adafactor's update clipping and factored moments), matrix
    preconditioners and orthogonalisation (Muon, Shampoo, SOAP, Kron), layer-wise moments
    (NovoGrad). Clipping by global norm passes (its sum runs in another order: equal to
    float noise, not bitwise). It cannot see a difference that the probe does not show:
    use it as a guard, with the list above.

    Args:
      optimizer: the transformation to check.
      steps: updates to compare.
      rtol: how far (as a fraction of the largest step a leaf took) the results may
        differ: float noise, as when XLA fuses the step's scalars differently.

    Raises:
      ValueError: ``optimizer`` is not elementwise (the message says by how much it differs).

    Examples:
      >>> import lossjax
      >>> lossjax.check_elementwise(lossjax.adamw(1e-3))
      >>> lossjax.check_elementwise(lossjax.lamb(1e-3))
      Traceback (most recent call last):
        ...
      ValueError: optimizer is not elementwise: ...
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    keys = jax.random.split(jax.random.key(0), 4 + 3 * steps)
    params = {"matrix": jax.random.normal(keys[0], (128, 130)),
              "small": 30.0 * jax.random.normal(keys[1], (4, 5)),
              "vector": 0.01 * jax.random.normal(keys[2], (6,))}
    grads = [{"matrix": jax.random.normal(keys[3 + 3 * i], (128, 130)),
              "small": 5.0 * jax.random.normal(keys[4 + 3 * i], (4, 5)),
              "vector": 0.1 * jax.random.normal(keys[5 + 3 * i], (6,))} for i in range(steps)]
    expected = _run(optimizer, params, grads)
    for rows in (1, 2):
        layout = _build_layout(params, None, rows)
        flat = _run(optimizer, layout.flatten(params), [layout.flatten(g) for g in grads])
        got = layout.unflatten(flat)
        for name in params:
            a, b = np.asarray(expected[name]), np.asarray(got[name])
            step = float(np.max(np.abs(a - np.asarray(params[name]))))
            error = float(np.max(np.abs(a - b))) / max(step, np.finfo(np.float32).tiny)
            if error > rtol:
                layout_name = "1-D" if rows == 1 else "two-row (FSDP)"
                raise ValueError(
                    f"optimizer is not elementwise: on {layout_name} flat buffers leaf "
                    f"{name!r} moves differently from the per-leaf update (by {error:.3g} "
                    "of its largest step); do not run it on flat buffers")


def _run(optimizer: optax.GradientTransformation, params: Any, grads: list[Any]) -> Any:
    @jax.jit
    def step(params, state, grads):
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = optimizer.init(params)
    for g in grads:
        params, state = step(params, state, g)
    return params

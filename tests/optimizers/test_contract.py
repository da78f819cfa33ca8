"""The optimizer contract, run over every entry of the registry (``_registry.py``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._registry import ENTRIES, EXEMPT, Entry, entries_with


def _ids(entries: list[Entry]) -> list[str]:
    return [entry.test_id for entry in entries]


def _public_transformations() -> set[str]:
    names = set(lossjax.optimizers.__all__)
    return {name for name in names if not isinstance(getattr(lossjax.optimizers, name), type)}


def test_every_public_optimizer_transform_and_wrapper_has_an_entry():
    public = _public_transformations()
    covered = {entry.name for entry in ENTRIES} | set(EXEMPT)
    assert not public - covered, f"no registry entry: {sorted(public - covered)}"
    assert not covered - public, f"entries naming no public name: {sorted(covered - public)}"
    assert len({entry.test_id for entry in ENTRIES}) == len(ENTRIES), "duplicate entry ids"


def _params(dtype=jnp.float32):
    return {"w": jnp.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]], dtype),
            "b": jnp.array([0.1, -0.2], dtype)}


def _grads(step: int, dtype=jnp.float32):
    scale = (1.0, -0.5, 2.0)[step % 3]
    return {"w": jnp.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.05]], dtype) * scale,
            "b": jnp.array([-0.1, 0.2], dtype) * scale}


def _run(entry: Entry, opt, params, steps: int):
    """``steps`` jitted steps from ``params``: the list of updates and the last state."""

    @jax.jit
    def trajectory(params):
        wrapped = entry.wrap(params)
        state = opt.init(wrapped)
        updates_seen = []
        for step in range(steps):
            grads = _grads(step, jax.tree.leaves(params)[0].dtype)
            updates, state = opt.update(grads, state, wrapped, **entry.kwargs(grads, wrapped))
            wrapped = optax.apply_updates(wrapped, updates)
            updates_seen.append(updates)
        return updates_seen, state

    return trajectory(params)


@pytest.mark.parametrize("entry", entries_with("jit"), ids=_ids(entries_with("jit")))
def test_init_and_update_jit_and_init_evaluates_on_shapes(entry):
    opt = entry.build()
    params = _params()
    updates, state = _run(entry, opt, params, 3)
    for step_updates in updates:
        for u in jax.tree.leaves(step_updates):
            assert np.all(np.isfinite(np.asarray(u)))
    shapes = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    abstract = jax.eval_shape(lambda p: opt.init(entry.wrap(p)), shapes)
    concrete = opt.init(entry.wrap(params))
    assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    assert jax.tree.map(jax.typeof, abstract) == jax.tree.map(jax.typeof, concrete)
    assert jax.tree.map(jax.typeof, state) == jax.tree.map(jax.typeof, concrete)

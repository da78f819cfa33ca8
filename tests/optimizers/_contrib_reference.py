"""Shared set-up for the tests that compare lossjax optimizers with optax.contrib's.

The problem is a small least-squares fit (convex, so float rounding is not amplified by
chaos): ``w [6, 4]``, ``b [4]``, ``x [32, 6]``, all float32. A trajectory is one jitted
``lax.scan``: one compilation per run.

Tolerance. Two float32 implementations of the same formulas differ in the order of their
sums (XLA fuses and reduces differently for different jit structures), so they agree to a
few ulps per step, and a trajectory carries that noise forward. We measure how much optax's
*own* trajectory moves under such noise: optax is also run vmapped (another jit
structure), from the parameters and from the parameters moved by one ulp (``nextafter``),
and compared with its plain run. The test allows 10x that spread, plus 1e-6 (about 8
float32 ulps at the parameters' scale of 1) for the cases where the spread rounds to 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

STEPS = 300


def problem():
    kw, kx, ky = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"w": jax.random.normal(kw, (6, 4), jnp.float32),
              "b": jnp.zeros((4,), jnp.float32)}
    x = jax.random.normal(kx, (32, 6), jnp.float32)
    y = jax.random.normal(ky, (32, 4), jnp.float32)

    def loss(p):
        return jnp.mean(jnp.square(x @ p["w"] + p["b"] - y))

    return params, loss


def trajectory(opt, params, loss, *, steps=STEPS, with_value=False):
    """Final parameters, final state and the losses of ``steps`` steps (one compilation)."""

    def body(carry, _):
        p, s = carry
        value, grads = jax.value_and_grad(loss)(p)
        extra = {"value": value} if with_value else {}
        updates, s = opt.update(grads, s, p, **extra)
        return (optax.apply_updates(p, updates), s), value

    @jax.jit
    def run(p):
        (p, s), values = jax.lax.scan(body, (p, opt.init(p)), None, length=steps)
        return p, s, values

    return run(params)


def reference_and_spread(opt, params, loss, **kw):
    """optax's final parameters from ``params`` (the same jit structure as ours), and how
    far optax's own result moves under another jit structure (vmapped) and a start one
    ulp away."""
    reference = trajectory(opt, params, loss, **kw)[0]
    bumped = jax.tree.map(lambda a: jnp.nextafter(a, jnp.inf), params)
    both = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, bumped)
    finals = jax.vmap(lambda p: trajectory(opt, p, loss, **kw)[0])(both)
    spread = max(float(jnp.max(jnp.abs(a[i] - b))) for i in (0, 1)
                 for a, b in zip(jax.tree.leaves(finals), jax.tree.leaves(reference),
                                 strict=True))
    return reference, spread


def assert_same_trajectory(mine, reference, *, with_value=False, steps=STEPS):
    params, loss = problem()
    ours, _, values = trajectory(mine, params, loss, with_value=with_value, steps=steps)
    theirs, spread = reference_and_spread(reference, params, loss, with_value=with_value,
                                          steps=steps)
    atol = 10 * spread + 1e-6
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)
    moved = max(float(jnp.max(jnp.abs(a - b)))
                for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(params), strict=True))
    assert moved > 100 * atol, "the trajectory barely moved: the comparison proves nothing"
    assert float(values[-1]) < float(values[0])


def save_and_restore_with_orbax(tree, directory):
    import orbax.checkpoint as ocp

    path = directory / "checkpoint"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree)
        checkpointer.wait_until_finished()
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path, jax.tree.map(jnp.zeros_like, tree))


def assert_checkpoint_continues_bit_for_bit(opt, tmp_path, *, steps=5):
    """Save (params, state) mid-run with orbax, restore, and continue: bit-equal."""
    params, loss = problem()

    @jax.jit
    def step(p, s):
        updates, s = opt.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, updates), s

    state = opt.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    restored = save_and_restore_with_orbax((params, state), tmp_path)
    assert jax.tree.structure(restored) == jax.tree.structure((params, state))
    assert jax.tree.map(jax.typeof, restored) == jax.tree.map(jax.typeof, (params, state))
    original = (params, state)
    for _ in range(steps):
        original = step(*original)
        restored = step(*restored)
    jax.tree.map(np.testing.assert_array_equal, restored, original)

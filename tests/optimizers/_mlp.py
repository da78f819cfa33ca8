"""The two-layer tanh MLP that the optimizer trajectory tests train (``{"dense1": {"w",
"b"}, "dense2": {"w", "b"}}``; each test file picks its own widths and data)."""

import jax
import jax.numpy as jnp
import optax

import lossjax


def mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["dense1"]["w"] + params["dense1"]["b"])
    logits = h @ params["dense2"]["w"] + params["dense2"]["b"]
    return lossjax.softmax_cross_entropy_with_integer_labels(logits, y)


def trajectory(opt, params, xs, ys):
    """Parameters after one ``opt`` step per batch of ``(xs, ys)`` (a ``lax.scan``)."""

    def step(carry, batch):
        params, state = carry
        grads = jax.grad(mlp_loss)(params, *batch)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), (xs, ys))
    return params


def not_bias(params):
    """A mask that is True for the weight matrices, False for the biases."""
    return jax.tree.map(lambda p: p.ndim > 1, params)

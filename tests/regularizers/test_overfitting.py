"""Overfitting on scikit-learn's digits (bundled, no download) and its cure: a 64-256-10 MLP
trained full-batch on 300 images memorises them and its validation loss climbs; L2
(``l2_penalty`` on the weight matrices) and dropout on the hidden layer end lower.

All settings and seeds run in one compiled, vmapped call: the L2 strength and the dropout
rate are traced arguments, so the three curves share a single compilation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import lossjax
from tests._xla import OPTIMIZED_CODEGEN

N_TRAIN, N_VAL, HIDDEN, STEPS, EVAL_EVERY, LAST = 300, 400, 256, 600, 20, 5
SETTINGS = {"none": (0.0, 0.0), "l2": (1e-3, 0.0), "dropout": (0.0, 0.5)}  # (λ, rate)


def digits_split(seed):
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    train, val = order[:N_TRAIN], order[N_TRAIN:N_TRAIN + N_VAL]
    x = (x / 16.0).astype(np.float32)
    return x[train], y[train], x[val], y[val]


def mlp(params, x, key=None, rate=0.0):
    hidden = jax.nn.relu(x @ params["w1"] + params["b1"])
    if key is not None:
        hidden = lossjax.dropout(key, hidden, rate=rate)
    return hidden @ params["w2"] + params["b2"]


def weight_matrices(params):
    return jax.tree.map(lambda a: a.ndim == 2, params)


def curves(key, data, l2, rate):
    """Train/validation cross-entropy every EVAL_EVERY steps of sgd(0.1, momentum=0.9)."""
    x_train, y_train, x_val, y_val = data
    k1, k2, k_dropout = jax.random.split(key, 3)
    params = {
        "w1": jax.random.normal(k1, (64, HIDDEN), jnp.float32) / 8.0,
        "b1": jnp.zeros(HIDDEN, jnp.float32),
        "w2": jax.random.normal(k2, (HIDDEN, 10), jnp.float32) / np.sqrt(HIDDEN),
        "b2": jnp.zeros(10, jnp.float32),
    }
    xent = lossjax.softmax_cross_entropy_with_integer_labels
    optimizer = lossjax.sgd(0.1, momentum=0.9)

    def objective(p, step_key):
        data_loss = xent(mlp(p, x_train, step_key, rate), y_train)
        return data_loss + l2 * lossjax.l2_penalty(p, mask=weight_matrices)

    def step(carry, step_key):
        p, state = carry
        updates, state = optimizer.update(jax.grad(objective)(p, step_key), state, p)
        return (optax.apply_updates(p, updates), state), None

    def block(carry, step_keys):
        carry, _ = jax.lax.scan(step, carry, step_keys)
        p = carry[0]
        return carry, (xent(mlp(p, x_train), y_train), xent(mlp(p, x_val), y_val))

    keys = jax.random.split(k_dropout, (STEPS // EVAL_EVERY, EVAL_EVERY))
    return jax.lax.scan(block, (params, optimizer.init(params)), keys)[1]


def run_settings(split_seed, seeds=2):
    """{setting: (train_loss, val_loss)}, each [seeds, STEPS // EVAL_EVERY]."""
    data = tuple(jnp.asarray(a) for a in digits_split(split_seed))
    l2, rate = (jnp.asarray(v, jnp.float32) for v in zip(*SETTINGS.values(), strict=True))
    keys = jax.random.split(jax.random.key(0), seeds)
    over_seeds = jax.vmap(lambda k, a, r: curves(k, data, a, r), in_axes=(0, None, None))
    train, val = jax.jit(jax.vmap(over_seeds, in_axes=(None, 0, 0)),
                         compiler_options=OPTIMIZED_CODEGEN)(keys, l2, rate)
    return {name: (np.asarray(train[i]), np.asarray(val[i])) for i, name in enumerate(SETTINGS)}


def test_l2_and_dropout_lower_the_final_validation_loss_of_an_overfitting_mlp():
    runs = run_settings(split_seed=0)
    train, val = runs["none"]
    # Overfitting: training loss near 0 while validation loss climbs past its minimum.
    assert train[:, -1].max() < 0.01
    assert np.all(val[:, -1] > 1.05 * val.min(axis=1))
    # Averaged over the last LAST evaluations and 2 seeds; with this configuration both
    # inequalities held, by 2-23%, on each of the data splits 0-4 tried when it was chosen.
    final = {name: v[:, -LAST:].mean() for name, (_, v) in runs.items()}
    assert final["l2"] < final["none"], final
    assert final["dropout"] < final["none"], final
    # ...at the price of a higher training loss.
    assert runs["l2"][0][:, -1].mean() > train[:, -1].mean()

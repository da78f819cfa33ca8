"""The training benchmark's workloads: offline data, a model, a loss and a batch sampler.

Every workload is a :class:`Workload`: pure functions of JAX arrays, so that a whole chunk
of training steps (batch sampling included) runs inside one compiled ``lax.scan``. Batches
are drawn from ``(seed, step)`` alone, so every optimizer sees the same batches for a seed.

- ``charlm``: a character-level Transformer language model (Flax NNX: token and position
  ``nnx.Embed``, pre-LayerNorm blocks with ``nnx.MultiHeadAttention``, whose query/key/value
  kernels are 3-D ``(in, heads, head_dim)`` and output kernel ``(heads, head_dim, out)``, a
  GELU MLP, an ``nnx.Linear`` output head) on the Python documentation that ships with
  Python (``pydoc_data.topics``); the last 10% of the text is held out for validation.
- ``digits_cnn``: a small convolutional network on scikit-learn's handwritten digits (8x8),
  the split of :func:`lossjax.examples.digits.load_data` (80% train, 20% validation).
- ``digits_autoencoder``: a deep tanh MLP autoencoder (64-128-64-8-64-128-64, sigmoid
  output, squared error) on the same digits: the classic hard curvature problem on which
  second-order methods (K-FAC, Shampoo) are usually shown.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import lossjax

Params = Any
Batch = Any


@dataclasses.dataclass(frozen=True)
class Workload:
    """One training problem.

    ``init(key) -> params``; ``loss(params, batch) -> scalar`` (the training objective);
    ``batch(key) -> batch`` (one training batch, drawn inside ``jit``);
    ``val_loss(params) -> scalar`` (on the fixed validation set); ``steps``: the step
    budget; ``eval_every``: steps between validation evaluations (also the size of one
    compiled chunk); ``warmup``: linear warm-up steps of the learning-rate schedule.
    ``description``: one line for the report; ``lr_scale`` multiplies every optimizer's
    learning-rate grid (small models take larger steps).
    """

    name: str
    init: Callable[[jax.Array], Params]
    loss: Callable[[Params, Batch], jax.Array]
    batch: Callable[[jax.Array], Batch]
    val_loss: Callable[[Params], jax.Array]
    steps: int
    eval_every: int
    warmup: int
    description: str
    lr_scale: float = 1.0

    def scaled(self, steps: int, eval_every: int) -> Workload:
        """The same problem with another step budget (the warm-up stays 10% of it)."""
        return dataclasses.replace(self, steps=steps, eval_every=eval_every,
                                   warmup=max(1, steps // 10))


# --------------------------------------------------------------------------- char-LM


def python_docs_text() -> str:
    """The Python documentation topics that ship with Python, in a fixed order."""
    from pydoc_data import topics

    return "".join(topics.topics[key] for key in sorted(topics.topics))


def char_split(text: str, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray, int]:
    """Token ids of the first ``1 - val_fraction`` and the last ``val_fraction`` of ``text``,
    and the vocabulary size (every character of ``text``, sorted)."""
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))
    cut = int(len(ids) * (1.0 - val_fraction))
    return ids[:cut], ids[cut:], len(vocab)


def _lm_module(vocab: int, context: int, width: int, heads: int, layers: int, key: jax.Array):
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.ln1 = nnx.LayerNorm(width, rngs=rngs)
            self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=width,
                                               decode=False, rngs=rngs)
            self.ln2 = nnx.LayerNorm(width, rngs=rngs)
            self.mlp_in = nnx.Linear(width, 4 * width, rngs=rngs)
            self.mlp_out = nnx.Linear(4 * width, width, rngs=rngs)

        def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
            x = x + self.attn(self.ln1(x), mask=mask)
            return x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.ln2(x))))

    class CharTransformer(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.embed = nnx.Embed(vocab, width, rngs=rngs)
            self.pos_embed = nnx.Embed(context, width, rngs=rngs)
            self.blocks = nnx.List([Block(rngs) for _ in range(layers)])
            self.ln_f = nnx.LayerNorm(width, rngs=rngs)
            self.head = nnx.Linear(width, vocab, rngs=rngs)

        def __call__(self, tokens: jax.Array) -> jax.Array:
            x = self.embed(tokens) + self.pos_embed(jnp.arange(tokens.shape[-1]))
            mask = nnx.make_causal_mask(tokens)
            for block in self.blocks:
                x = block(x, mask)
            return self.head(self.ln_f(x))

    return CharTransformer(nnx.Rngs(params=key))


def charlm(*, context: int = 64, width: int = 64, heads: int = 4, layers: int = 2,
           batch_size: int = 16, steps: int = 300, eval_every: int = 20,
           val_windows: int = 64) -> Workload:
    """The character-level Transformer LM on ``pydoc_data.topics`` (see the module doc)."""
    from flax import nnx

    train_ids, val_ids, vocab = char_split(python_docs_text())
    train = jnp.asarray(train_ids)
    starts = np.linspace(0, len(val_ids) - context - 1, val_windows).astype(np.int64)
    val = jnp.asarray(np.stack([val_ids[s : s + context + 1] for s in starts]))
    make = functools.partial(_lm_module, vocab, context, width, heads, layers)
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: make(jax.random.key(0))))

    def init(key: jax.Array) -> Params:
        return nnx.to_pure_dict(nnx.state(make(key), nnx.Param))

    def token_loss(params: Params, windows: jax.Array) -> jax.Array:
        logits = nnx.merge(graphdef, params)(windows[:, :-1])
        return lossjax.softmax_cross_entropy_with_integer_labels(logits, windows[:, 1:])

    def batch(key: jax.Array) -> jax.Array:
        offsets = jax.random.randint(key, (batch_size,), 0, train.shape[0] - context - 1)
        return jax.vmap(lambda o: jax.lax.dynamic_slice(train, (o,), (context + 1,)))(offsets)

    return Workload(
        name="charlm", init=init, loss=token_loss, batch=batch,
        val_loss=lambda params: token_loss(params, val), steps=steps, eval_every=eval_every,
        warmup=max(1, steps // 10),
        description=(f"char-level Transformer LM (Flax NNX, {layers} layers, d={width}, "
                     f"{heads} heads, context {context}, vocab {vocab}) on pydoc_data.topics "
                     f"({len(train_ids)} train / {len(val_ids)} validation characters), "
                     f"batches of {batch_size}x{context} tokens; validation loss in nats per "
                     f"character over {val_windows} held-out windows"))


# --------------------------------------------------------------------------- digits


def _digits(seed: int = 0):
    from lossjax.examples.digits import load_data

    return load_data(seed=seed)


def _sample_rows(key: jax.Array, n: int, batch_size: int) -> jax.Array:
    return jax.random.choice(key, n, (batch_size,), replace=False)


def _dense(key: jax.Array, fan_in: int, fan_out: int, gain: float = 2.0) -> dict[str, jax.Array]:
    return {"kernel": jax.random.normal(key, (fan_in, fan_out)) * jnp.sqrt(gain / fan_in),
            "bias": jnp.zeros((fan_out,))}


def digits_cnn(*, batch_size: int = 64, steps: int = 300, eval_every: int = 20) -> Workload:
    """Conv 3x3 (1->16) - ReLU - conv 3x3 stride 2 (16->32) - ReLU - dense 512->64 - ReLU -
    dense 64->10, cross-entropy; parameters named as Flax names them (``kernel``/``bias``,
    conv kernels ``(h, w, in, out)``)."""
    data = _digits()
    x_train = jnp.asarray(data.x_train.reshape(-1, 8, 8, 1))
    y_train = jnp.asarray(data.y_train)
    x_val = jnp.asarray(data.x_val.reshape(-1, 8, 8, 1))
    y_val = jnp.asarray(data.y_val)

    def init(key: jax.Array) -> Params:
        k1, k2, k3, k4 = jax.random.split(key, 4)
        return {
            "conv1": {"kernel": jax.random.normal(k1, (3, 3, 1, 16)) * jnp.sqrt(2.0 / 9),
                      "bias": jnp.zeros((16,))},
            "conv2": {"kernel": jax.random.normal(k2, (3, 3, 16, 32)) * jnp.sqrt(2.0 / 144),
                      "bias": jnp.zeros((32,))},
            "dense": _dense(k3, 4 * 4 * 32, 64),
            "head": _dense(k4, 64, 10, gain=1.0),
        }

    def conv(x: jax.Array, layer: dict[str, jax.Array], stride: int) -> jax.Array:
        # 3x3 convolution, padding 1, as one matrix product over the 9 shifted slices (im2col):
        # on CPU, XLA's convolution gradients are several times slower for 8x8 images.
        height, width = x.shape[1], x.shape[2]
        padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate(
            [padded[:, i : i + height : stride, j : j + width : stride, :]
             for i in range(3) for j in range(3)], axis=-1)
        kernel = layer["kernel"].reshape(-1, layer["kernel"].shape[-1])
        return jax.nn.relu(patches @ kernel + layer["bias"])

    def logits(params: Params, x: jax.Array) -> jax.Array:
        h = conv(conv(x, params["conv1"], 1), params["conv2"], 2).reshape(x.shape[0], -1)
        h = jax.nn.relu(h @ params["dense"]["kernel"] + params["dense"]["bias"])
        return h @ params["head"]["kernel"] + params["head"]["bias"]

    def loss(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        return lossjax.softmax_cross_entropy_with_integer_labels(logits(params, batch[0]),
                                                                 batch[1])

    def batch(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        rows = _sample_rows(key, x_train.shape[0], batch_size)
        return x_train[rows], y_train[rows]

    return Workload(
        name="digits_cnn", init=init, loss=loss, batch=batch,
        val_loss=lambda params: loss(params, (x_val, y_val)), steps=steps,
        eval_every=eval_every, warmup=max(1, steps // 10),
        description=(f"CNN on sklearn digits ({x_train.shape[0]} train / {x_val.shape[0]} "
                     f"validation images), batches of {batch_size}; validation cross-entropy"))


def digits_autoencoder(*, sizes: tuple[int, ...] = (64, 128, 64, 8, 64, 128, 64),
                       batch_size: int = 64, steps: int = 300, eval_every: int = 20) -> Workload:
    """A tanh MLP autoencoder with a sigmoid output and squared error (summed over the 64
    pixels, averaged over images); layers ``layer0 .. layer{n-2}``, the last named ``head``."""
    data = _digits()
    x_train = jnp.asarray(data.x_train)
    x_val = jnp.asarray(data.x_val)
    names = [*(f"layer{i}" for i in range(len(sizes) - 2)), "head"]

    def init(key: jax.Array) -> Params:
        keys = jax.random.split(key, len(names))
        return {name: _dense(k, a, b, gain=1.0)
                for name, k, a, b in zip(names, keys, sizes[:-1], sizes[1:], strict=True)}

    def reconstruct(params: Params, x: jax.Array) -> jax.Array:
        for name in names[:-1]:
            x = jnp.tanh(x @ params[name]["kernel"] + params[name]["bias"])
        return jax.nn.sigmoid(x @ params["head"]["kernel"] + params["head"]["bias"])

    def loss(params: Params, x: jax.Array) -> jax.Array:
        return sizes[-1] * lossjax.mse(reconstruct(params, x), x)

    def batch(key: jax.Array) -> jax.Array:
        return x_train[_sample_rows(key, x_train.shape[0], batch_size)]

    return Workload(
        name="digits_autoencoder", init=init, loss=loss, batch=batch,
        val_loss=lambda params: loss(params, x_val), steps=steps, eval_every=eval_every,
        warmup=max(1, steps // 10),
        description=(f"tanh MLP autoencoder {'-'.join(map(str, sizes))} on sklearn digits, "
                     f"batches of {batch_size}; validation squared error per image"))


WORKLOADS: dict[str, Callable[..., Workload]] = {
    "charlm": charlm,
    "digits_cnn": digits_cnn,
    "digits_autoencoder": digits_autoencoder,
}
"""Workload factories by name, in report order."""

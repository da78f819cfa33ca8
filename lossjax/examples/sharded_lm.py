"""Train a small MLP language model on many devices: data parallel + FSDP.

    python -m lossjax.examples.sharded_lm --mesh 2,4 --steps 30
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m lossjax.examples.sharded_lm

The mesh has two axes: ``data`` (the batch is split across it) and ``fsdp`` (each
parameter's largest divisible axis is split across it, and the batch too). Parameters and
the optimizer state live sharded; XLA's SPMD partitioner inserts the all-gathers that
FSDP needs in the forward/backward and reduce-scatters / all-reduces the gradients.
lossjax's cross-entropy, ``clip_by_global_norm`` (an all-reduce of one scalar), ``adamw``
and ``dropout`` run unchanged under the sharding: nothing is gathered to one device and
nothing syncs with the host inside the step.

The model predicts the next token from the concatenated embeddings of the ``context``
tokens before it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import lossjax


class Config(NamedTuple):
    vocab: int = 64
    dim: int = 32
    hidden: int = 64
    context: int = 4
    batch: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    dropout: float = 0.1


def init_params(key: jax.Array, cfg: Config) -> dict[str, jax.Array]:
    k = jax.random.split(key, 3)
    scale = lambda fan_in: 1.0 / np.sqrt(fan_in)  # noqa: E731
    return {
        "embed": jax.random.normal(k[0], (cfg.vocab, cfg.dim), jnp.float32) * 0.5,
        "w1": jax.random.normal(k[1], (cfg.context * cfg.dim, cfg.hidden), jnp.float32)
        * scale(cfg.context * cfg.dim),
        "b1": jnp.zeros((cfg.hidden,), jnp.float32),
        "w_out": jax.random.normal(k[2], (cfg.hidden, cfg.vocab), jnp.float32) * scale(cfg.hidden),
    }


def forward(params: dict[str, jax.Array], context: jax.Array, key: jax.Array, cfg: Config,
            train: bool) -> jax.Array:
    """Logits ``[B, vocab]`` from context tokens ``[B, context]``."""
    x = params["embed"][context].reshape(context.shape[0], -1)
    h = jax.nn.gelu(x @ params["w1"] + params["b1"])
    h = lossjax.dropout(key, h, rate=cfg.dropout, deterministic=not train)
    return h @ params["w_out"]


def loss_fn(params, batch, key, cfg: Config) -> jax.Array:
    context, target = batch
    return lossjax.softmax_cross_entropy_with_integer_labels(
        forward(params, context, key, cfg, train=True), target)


def make_optimizer(cfg: Config) -> optax.GradientTransformation:
    decay_matrices = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)  # noqa: E731
    return optax.chain(
        lossjax.clip_by_global_norm(cfg.max_grad_norm),
        lossjax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay, mask=decay_matrices),
    )


def param_spec(shape: Sequence[int], fsdp_size: int) -> P:
    """Shard the largest axis that ``fsdp_size`` divides along ``fsdp``; else replicate."""
    candidates = [i for i, n in enumerate(shape) if n % fsdp_size == 0 and n >= fsdp_size]
    if fsdp_size == 1 or not candidates:
        return P()
    axis = max(candidates, key=lambda i: shape[i])
    return P(*[("fsdp" if i == axis else None) for i in range(len(shape))])


def make_mesh(data: int, fsdp: int, devices: Sequence[Any] | None = None) -> Mesh:
    devices = list(devices if devices is not None else jax.devices())[: data * fsdp]
    if len(devices) < data * fsdp:
        raise ValueError(f"mesh {data}x{fsdp} needs {data * fsdp} devices, found {len(devices)}")
    return Mesh(np.array(devices).reshape(data, fsdp), ("data", "fsdp"))


def synthetic_batches(cfg: Config, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable toy language: the next token is the last one plus 1 (mod vocab), 10% noise."""
    rng = np.random.default_rng(seed)
    context = rng.integers(0, cfg.vocab, size=(steps, cfg.batch, cfg.context))
    target = (context[..., -1] + 1) % cfg.vocab
    noise = rng.uniform(size=target.shape) < 0.1
    target = np.where(noise, rng.integers(0, cfg.vocab, size=target.shape), target)
    return context.astype(np.int32), target.astype(np.int32)


def build_train_step(cfg: Config, mesh: Mesh, params: Any):
    """Jitted, donated step with explicit shardings; returns (step, shardings)."""
    fsdp = mesh.shape["fsdp"]
    opt = make_optimizer(cfg)
    param_shardings = jax.tree.map(lambda p: NamedSharding(mesh, param_spec(p.shape, fsdp)),
                                   params)
    state_shapes = jax.eval_shape(opt.init, params)
    # Each state leaf shaped like a parameter takes that parameter's spec; scalars replicate.
    state_shardings = jax.tree.map(
        lambda s: NamedSharding(mesh, param_spec(s.shape, fsdp) if s.ndim else P()), state_shapes)
    batch_sharding = NamedSharding(mesh, P(("data", "fsdp")))
    replicated = NamedSharding(mesh, P())

    def step(params, state, batch, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key, cfg)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    step = jax.jit(
        step,
        in_shardings=(param_shardings, state_shardings, (batch_sharding, batch_sharding),
                      replicated),
        out_shardings=(param_shardings, state_shardings, replicated),
        donate_argnums=(0, 1),
    )
    init = jax.jit(opt.init, in_shardings=(param_shardings,), out_shardings=state_shardings)
    return step, init, param_shardings, batch_sharding


def train(cfg: Config, mesh: Mesh, steps: int, seed: int = 0):
    """Run ``steps`` steps on ``mesh``; return (losses, params, opt_state, step)."""
    params = init_params(jax.random.key(seed), cfg)
    step, init, param_shardings, batch_sharding = build_train_step(cfg, mesh, params)
    params = jax.device_put(params, param_shardings)
    state = init(params)
    contexts, targets = synthetic_batches(cfg, steps, seed)
    losses = []
    for i in range(steps):
        batch = jax.device_put((contexts[i], targets[i]), batch_sharding)
        params, state, loss = step(params, state, batch, jax.random.key(1000 + i))
        losses.append(loss)
    return np.array(jax.device_get(losses)), params, state, step


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mesh", default=None,
                        help="DATA,FSDP mesh shape (default: all devices on data)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mesh is None:
        data, fsdp = jax.device_count(), 1
    else:
        try:
            data, fsdp = (int(x) for x in args.mesh.split(","))
        except ValueError:
            parser.error(f"--mesh must be DATA,FSDP (two integers), got {args.mesh!r}")
    mesh = make_mesh(data, fsdp)
    losses, params, _, _ = train(Config(), mesh, args.steps, args.seed)
    print(f"mesh data={data} fsdp={fsdp} on {jax.device_count()} {jax.default_backend()} devices")
    for i in range(0, len(losses), max(len(losses) // 10, 1)):
        print(f"step {i:4d}  loss {losses[i]:.4f}")
    print(f"final loss {losses[-1]:.4f}; w1 sharding {params['w1'].sharding.spec}")


if __name__ == "__main__":
    main()

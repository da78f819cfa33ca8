"""Train a small MLP language model on many devices: data parallel + FSDP.

    export XLA_FLAGS=--xla_force_host_platform_device_count=8  # 8 CPU devices
    python -m lossjax.examples.sharded_lm --mesh 2,4

The mesh has two axes: ``data`` and ``fsdp``. The batch is split across both; each
parameter's largest axis that the ``fsdp`` size divides is split across ``fsdp``, and the
optimizer state takes its parameter's sharding. XLA's SPMD partitioner inserts the
all-gathers of parameter shards that the forward/backward needs and reduces the gradients
back to their shards. lossjax's ``linear_cross_entropy`` (the output layer and its loss,
without ``[batch, vocab]`` logits), ``dropout``, ``clip_by_global_norm`` (an all-reduce of
one scalar) and ``adamw`` run unchanged under the sharding: nothing is gathered to one
device and nothing syncs with the host inside the step.

The learning rate follows a warmup-stable-decay schedule over the run
(``lossjax.schedules.warmup_stable_decay``): a short linear warm-up, a plateau at the peak,
then a linear decay to 0 over the last half. A constant rate this high keeps the loss
bouncing (and creeping back up once the model is confident); the decay lets it settle, so
the held-out loss is lowest at the end. Training losses of single 32-example batches are
noisy (10% of the targets are random), so the script prints 10-step means and the
held-out loss on 512 examples.

On several hosts, run the same command on every host with ``--distributed`` (and
``--coordinator host0:1234 --num-processes N --process-id i`` where the cluster is not
detected automatically): the mesh then spans every host's devices and each host builds only
its own shards of the batch.

The model predicts the next token from the concatenated embeddings of the ``context``
tokens before it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import lossjax

Params = dict[str, jax.Array]
Batch = tuple[jax.Array, jax.Array]

# The batch axis is split over every device: "data" across groups, "fsdp" within a group.
BATCH_SPEC = P(("data", "fsdp"))


class Config(NamedTuple):
    vocab: int = 128
    dim: int = 32
    hidden: int = 64
    context: int = 4
    batch: int = 32
    learning_rate: float = 1e-2  # the schedule's peak
    warmup_fraction: float = 0.05  # of the run's steps
    decay_fraction: float = 0.5  # the last half of the run decays linearly to 0
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    dropout: float = 0.1


def init_params(key: jax.Array, cfg: Config) -> Params:
    """``embed [V, D]``, ``w1 [context·D, H]``, ``b1 [H]``, ``w_out [H, V]`` (float32)."""
    k = jax.random.split(key, 3)
    fan_in = cfg.context * cfg.dim
    return {
        "embed": jax.random.normal(k[0], (cfg.vocab, cfg.dim), jnp.float32) * 0.5,
        "w1": jax.random.normal(k[1], (fan_in, cfg.hidden), jnp.float32) / np.sqrt(fan_in),
        "b1": jnp.zeros((cfg.hidden,), jnp.float32),
        "w_out": jax.random.normal(k[2], (cfg.hidden, cfg.vocab), jnp.float32)
        / np.sqrt(cfg.hidden),
    }


def features(params: Params, context: jax.Array, key: jax.Array | None, cfg: Config,
             layout: NamedSharding | None = None) -> jax.Array:
    """Last hidden layer ``[B, H]`` from context tokens ``[B, context]``; dropout if ``key``.

    ``layout``: the batch sharding that activations are pinned to, so that the partitioner
    gathers the (small) parameter shards instead of moving activations between devices.
    """
    pin = (lambda x: x) if layout is None else (
        lambda x: jax.lax.with_sharding_constraint(x, layout))
    x = pin(params["embed"][context].reshape(context.shape[0], -1))
    h = pin(jax.nn.gelu(x @ params["w1"] + params["b1"]))
    return h if key is None else lossjax.dropout(key, h, rate=cfg.dropout)


def loss_fn(params: Params, batch: Batch, key: jax.Array, cfg: Config,
            layout: NamedSharding | None = None) -> jax.Array:
    """Mean next-token cross-entropy; ``h @ w_out`` is never materialised as logits."""
    context, target = batch
    loss = lossjax.linear_cross_entropy(features(params, context, key, cfg, layout),
                                        params["w_out"], target)
    return cast(jax.Array, loss)  # an array: return_lse is off


def eval_loss(params: Params, batch: Batch, cfg: Config,
              layout: NamedSharding | None = None) -> jax.Array:
    """Cross-entropy without dropout, from the materialised ``[B, V]`` logits."""
    context, target = batch
    logits = features(params, context, None, cfg, layout) @ params["w_out"]
    return lossjax.softmax_cross_entropy_with_integer_labels(logits, target)


def learning_rate_schedule(cfg: Config, steps: int) -> lossjax.schedules.Schedule:
    """Warmup-stable-decay over ``steps``: warm-up and decay take the configured fractions
    (at least one step each); the plateau takes the rest."""
    warmup = max(1, round(cfg.warmup_fraction * steps))
    decay = max(1, round(cfg.decay_fraction * steps))
    stable = max(steps - warmup - decay, 0)
    return lossjax.schedules.warmup_stable_decay(cfg.learning_rate, warmup, stable, decay)


def make_optimizer(cfg: Config, steps: int) -> optax.GradientTransformation:
    """Clip the global gradient norm, then AdamW (weight decay on matrices only) with the
    warmup-stable-decay rate over ``steps``."""
    decay_matrices = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)  # noqa: E731
    return optax.chain(
        lossjax.clip_by_global_norm(cfg.max_grad_norm),
        lossjax.adamw(learning_rate_schedule(cfg, steps), weight_decay=cfg.weight_decay,
                      mask=decay_matrices),
    )


def param_spec(shape: Sequence[int], fsdp_size: int) -> P:
    """Shard the largest axis that ``fsdp_size`` divides along ``fsdp``; else replicate."""
    candidates = [i for i, n in enumerate(shape) if n % fsdp_size == 0 and n >= fsdp_size]
    if fsdp_size == 1 or not candidates:
        return P()
    axis = max(candidates, key=lambda i: shape[i])
    return P(*[("fsdp" if i == axis else None) for i in range(len(shape))])


def make_mesh(data: int, fsdp: int, devices: Sequence[Any] | None = None) -> Mesh:
    """A ``(data, fsdp)`` mesh on the first ``data·fsdp`` devices (all hosts' devices).

    ``jax.devices()`` lists devices host by host, so on several hosts each host holds
    whole ``fsdp`` groups and the parameter all-gathers stay within a host.
    """
    devices = list(devices if devices is not None else jax.devices())
    if data < 1 or fsdp < 1 or len(devices) < data * fsdp:
        raise ValueError(f"mesh {data}x{fsdp} needs {data * fsdp} devices, found {len(devices)}")
    return Mesh(np.array(devices[: data * fsdp]).reshape(data, fsdp), ("data", "fsdp"))


def synthetic_batch(cfg: Config, step: int, seed: int = 0,
                    held_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A learnable toy language: the next token is the last one plus 1 (mod vocab), 10% noise.

    Returns contexts ``[batch, context]`` and targets ``[batch]`` (int32), a function of
    ``(seed, held_out, step)`` only: the same on every host and for any number of steps.
    """
    rng = np.random.default_rng([seed, int(held_out), step])
    context = rng.integers(0, cfg.vocab, size=(cfg.batch, cfg.context))
    target = (context[:, -1] + 1) % cfg.vocab
    noise = rng.uniform(size=target.shape) < 0.1
    target = np.where(noise, rng.integers(0, cfg.vocab, size=target.shape), target)
    return context.astype(np.int32), target.astype(np.int32)


def shard_batch(mesh: Mesh, *arrays: np.ndarray) -> tuple[jax.Array, ...]:
    """Global arrays from host data, each host building only its own devices' shards.

    Every host holds the whole (synthetic) batch here; a real loader that reads only this
    host's rows would use ``jax.make_array_from_process_local_data`` instead.
    """
    sharding = NamedSharding(mesh, BATCH_SPEC)
    return tuple(jax.make_array_from_callback(a.shape, sharding, lambda idx, a=a: a[idx])
                 for a in arrays)


class Trainer(NamedTuple):
    """Jitted functions of one mesh (``.lower(...)`` gives their compiled HLO)."""

    init: jax.stages.Wrapped  # params -> optimizer state
    step: jax.stages.Wrapped  # (params, state, batch, key) -> (params, state, loss)
    evaluate: jax.stages.Wrapped  # (params, batch) -> loss without dropout
    param_shardings: Any
    state_shardings: Any


def build_trainer(cfg: Config, mesh: Mesh, params: Params, steps: int) -> Trainer:
    """Jitted optimizer init, train step (parameters and state donated) and evaluation.

    Each optimizer-state leaf shaped like a parameter gets that parameter's sharding (Adam's
    moments mirror the parameter tree); scalar leaves (the step count) are replicated.
    """
    fsdp = mesh.shape["fsdp"]
    opt = make_optimizer(cfg, steps)
    param_shardings = jax.tree.map(lambda p: NamedSharding(mesh, param_spec(p.shape, fsdp)),
                                   params)
    state_shardings = jax.tree.map(
        lambda s: NamedSharding(mesh, param_spec(s.shape, fsdp) if s.ndim else P()),
        jax.eval_shape(opt.init, params))
    layout = NamedSharding(mesh, BATCH_SPEC)
    replicated = NamedSharding(mesh, P())

    def step(params, state, batch, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key, cfg, layout)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    step = jax.jit(step, in_shardings=(param_shardings, state_shardings, (layout, layout),
                                       replicated),
                   out_shardings=(param_shardings, state_shardings, replicated),
                   donate_argnums=(0, 1))
    evaluate = jax.jit(lambda p, b: eval_loss(p, b, cfg, layout),
                       in_shardings=(param_shardings, (layout, layout)), out_shardings=replicated)
    init = jax.jit(opt.init, in_shardings=(param_shardings,), out_shardings=state_shardings)
    return Trainer(init, step, evaluate, param_shardings, state_shardings)


HELD_OUT_BATCHES = 16  # the held-out loss averages this many batches (512 examples)


class Run(NamedTuple):
    losses: np.ndarray  # [steps] training loss before each step
    eval_loss: float  # held-out loss (no dropout) after training
    eval_steps: np.ndarray  # steps after which the held-out loss was measured
    eval_losses: np.ndarray  # the held-out loss after each of eval_steps (last = eval_loss)
    params: Params
    state: Any
    trainer: Trainer


def train(cfg: Config, mesh: Mesh, steps: int, seed: int = 0,
          eval_every: int | None = None) -> Run:
    """Initialise on ``mesh`` and run ``steps`` steps on synthetic batches; measure the
    held-out loss every ``eval_every`` steps (if given) and at the end."""
    params = init_params(jax.random.key(seed), cfg)
    trainer = build_trainer(cfg, mesh, params, steps)
    params = jax.device_put(params, trainer.param_shardings)
    state = trainer.init(params)
    held_out = [shard_batch(mesh, *synthetic_batch(cfg, j, seed, held_out=True))
                for j in range(HELD_OUT_BATCHES)]

    def evaluate(params) -> float:
        # Each loss is a replicated scalar that every process can read; adding them as
        # global arrays outside jit would need every process to dispatch the same ops.
        return float(np.mean([float(trainer.evaluate(params, batch)) for batch in held_out]))

    losses, eval_steps, eval_losses = [], [], []
    for i in range(steps):
        batch = shard_batch(mesh, *synthetic_batch(cfg, i, seed))
        params, state, loss = trainer.step(params, state, batch,
                                           jax.random.fold_in(jax.random.key(seed + 1), i))
        losses.append(loss)  # kept on device: reading it here would sync every step
        if i + 1 == steps or (eval_every and (i + 1) % eval_every == 0):
            eval_steps.append(i + 1)
            eval_losses.append(evaluate(params))
    eval_losses = np.array(eval_losses)
    return Run(np.array(jax.device_get(losses)), float(eval_losses[-1]), np.array(eval_steps),
               eval_losses, params, state, trainer)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mesh", default=None,
                        help="DATA,FSDP mesh shape (default: every device on data)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distributed", action="store_true",
                        help="call jax.distributed.initialize() first (one process per host)")
    parser.add_argument("--coordinator", default=None, help="with --distributed: HOST:PORT")
    parser.add_argument("--num-processes", type=int, default=None)
    parser.add_argument("--process-id", type=int, default=None)
    args = parser.parse_args(argv)
    if args.distributed:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    if args.mesh is None:
        data, fsdp = jax.device_count(), 1
    else:
        try:
            data, fsdp = (int(x) for x in args.mesh.split(","))
        except ValueError:
            parser.error(f"--mesh must be DATA,FSDP (two integers), got {args.mesh!r}")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    try:
        mesh = make_mesh(data, fsdp)
    except ValueError as err:
        parser.error(str(err))
    every = max(args.steps // 10, 1)
    run = train(Config(), mesh, args.steps, args.seed, eval_every=every)
    if jax.process_index() == 0:
        print(f"mesh data={data} fsdp={fsdp} on {jax.device_count()} {jax.default_backend()} "
              f"devices, {jax.process_count()} process(es)")
        for step, held_out in zip(run.eval_steps, run.eval_losses, strict=True):
            recent = run.losses[max(step - 10, 0):step].mean()
            print(f"step {step:4d}  train loss (last 10 steps) {recent:.4f}  "
                  f"held-out loss {held_out:.4f}")
        print(f"final held-out loss {run.eval_loss:.4f} (best {run.eval_losses.min():.4f})")
        print("parameter shardings: " + ", ".join(
            f"{k} {cast(NamedSharding, v.sharding).spec}" for k, v in run.params.items()))


if __name__ == "__main__":
    main()

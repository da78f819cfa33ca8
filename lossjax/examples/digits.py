"""A small MLP classifier on scikit-learn's handwritten digits, trained with lossjax.

The digits (1797 images of 8×8 pixels, 10 classes) ship inside scikit-learn, so nothing is
downloaded. This module is what ``lossjax demo`` and the notebooks call; run it alone with
``python -m lossjax.examples.digits`` (the same as ``lossjax demo``).

Everything here is plain JAX: parameters are a list of ``{"w", "b"}`` dicts, the loss is a
lossjax loss plus ``l2 · l2_penalty`` on the weights (not the biases), dropout is
:func:`lossjax.dropout` on the hidden activations, and the optimizer is a lossjax
``GradientTransformation`` applied with ``optax.apply_updates``. The train step is jitted
once per configuration and reused for every batch of every epoch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax

Params = list[dict[str, jax.Array]]
LossFn = Callable[[jax.Array, jax.Array], jax.Array]

NUM_CLASSES = 10


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return lossjax.softmax_cross_entropy_with_integer_labels(logits, labels)


def _multiclass_hinge(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return lossjax.multiclass_hinge(logits, labels)


def _focal(logits: jax.Array, labels: jax.Array) -> jax.Array:
    # Focal loss is a per-class (one-vs-rest) sigmoid loss; sum over classes, mean over examples.
    one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return NUM_CLASSES * lossjax.sigmoid_focal_loss(logits, one_hot, gamma=2.0)


def _label_smoothing(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return lossjax.softmax_cross_entropy_with_integer_labels(logits, labels, label_smoothing=0.1)


LOSSES: dict[str, LossFn] = {
    "cross_entropy": _cross_entropy,
    "label_smoothing": _label_smoothing,
    "multiclass_hinge": _multiclass_hinge,
    "focal": _focal,
}
"""Training losses by CLI name: ``logits [B, 10]``, integer ``labels [B]`` -> scalar."""

DEFAULT_LEARNING_RATES: dict[str, float] = {
    "gd": 0.5, "sgd": 0.05, "adam": 3e-3, "schedule_free_adamw": 0.0025, "prodigy": 1.0}
"""A learning rate that works on digits for each optimizer (full-batch GD takes big steps).
Schedule-free AdamW and Prodigy keep their library defaults (optax's): not tuned here;
Prodigy's 1.0 multiplies the step size it estimates itself."""

OPTIMIZERS = tuple(DEFAULT_LEARNING_RATES)


@dataclasses.dataclass(frozen=True)
class Config:
    """One training run.

    ``optimizer``: ``"gd"`` (full-batch gradient descent: one step per epoch), ``"sgd"``
    (mini-batch SGD with momentum 0.9), ``"adam"``, ``"schedule_free_adamw"`` (evaluated at
    its averaged point) or ``"prodigy"`` (estimates its own step size). ``learning_rate=None`` picks
    :data:`DEFAULT_LEARNING_RATES`. ``l2`` multiplies ``l2_penalty`` (½Σw² over weight
    matrices); ``dropout`` is the drop rate of the hidden activations during training.
    """

    optimizer: str = "adam"
    loss: str = "cross_entropy"
    learning_rate: float | None = None
    epochs: int = 20
    batch_size: int = 64
    l2: float = 0.0
    dropout: float = 0.0
    hidden: tuple[int, ...] = (128,)
    seed: int = 0

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``"adam + L2 + dropout"``."""
        name = {"gd": "GD (full batch)", "sgd": "SGD + momentum", "adam": "Adam",
                "schedule_free_adamw": "Schedule-free AdamW",
                "prodigy": "Prodigy"}[self.optimizer]
        if self.l2:
            name += " + L2"
        if self.dropout:
            name += " + dropout"
        return name

    @property
    def lr(self) -> float:
        """The learning rate actually used."""
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LEARNING_RATES[self.optimizer]


class Data(NamedTuple):
    """Train/validation split: features ``[N, 64]`` float32 in [0, 1], labels ``[N]`` int32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclasses.dataclass
class History:
    """Per-epoch metrics of one run (lists of length ``epochs``), and the final parameters."""

    config: Config
    train_loss: list[float] = dataclasses.field(default_factory=list)
    train_accuracy: list[float] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    val_accuracy: list[float] = dataclasses.field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    params: Params | None = None


def load_data(*, seed: int = 0, val_fraction: float = 0.2) -> Data:
    """Load scikit-learn's digits and split them, stratified by class.

    Pixels (0..16) are scaled to [0, 1]. The split depends only on ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits: Any = load_digits()  # a Bunch; sklearn's stubs say Bunch | tuple
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_val, y_train, y_val = cast(list[np.ndarray], train_test_split(
        x, y, test_size=val_fraction, random_state=seed, stratify=y
    ))
    return Data(x_train, y_train, x_val, y_val)


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> Params:
    """He-initialised dense layers ``sizes[0] -> ... -> sizes[-1]`` (zero biases)."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {
            "w": jax.random.normal(k, (fan_in, fan_out), jnp.float32) * jnp.sqrt(2.0 / fan_in),
            "b": jnp.zeros((fan_out,), jnp.float32),
        }
        for k, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_logits(
    params: Params, x: jax.Array, *, key: jax.Array | None = None, dropout_rate: float = 0.0
) -> jax.Array:
    """``x [B, D] -> logits [B, K]``: ReLU hidden layers; dropout after each when ``key``."""
    *hidden, last = params
    for i, layer in enumerate(hidden):
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
        if key is not None:
            x = lossjax.dropout(jax.random.fold_in(key, i), x, rate=dropout_rate)
    return x @ last["w"] + last["b"]


def weights_only(params: Params) -> list[dict[str, bool]]:
    """Mask for penalties: True on weight matrices, False on biases (biases are not shrunk)."""
    return [{"w": True, "b": False} for _ in params]


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """The lossjax optimizer for ``config.optimizer`` at ``config.lr``."""
    if config.optimizer == "adam":
        return lossjax.adam(config.lr)
    if config.optimizer == "sgd":
        return lossjax.sgd(config.lr, momentum=0.9)
    if config.optimizer == "gd":
        return lossjax.sgd(config.lr)
    if config.optimizer == "schedule_free_adamw":
        return lossjax.schedule_free_adamw(config.lr)
    if config.optimizer == "prodigy":
        return lossjax.prodigy(config.lr)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")


def evaluation_params(config: Config, opt_state: Any, params: Params) -> Params:
    """The parameters to evaluate: schedule-free AdamW's averaged point, else ``params``."""
    if config.optimizer == "schedule_free_adamw":
        return lossjax.schedule_free_eval_params(opt_state, params)
    return params


def objective(
    params: Params, x: jax.Array, y: jax.Array, key: jax.Array | None, config: Config
) -> jax.Array:
    """Training objective: ``loss(logits, y) + l2 · ½Σ‖W‖²`` (dropout active when ``key``)."""
    logits = mlp_logits(params, x, key=key, dropout_rate=config.dropout)
    value = LOSSES[config.loss](logits, y)
    if config.l2:
        value = value + config.l2 * lossjax.l2_penalty(params, mask=weights_only)
    return value


def make_train_step(config: Config, optimizer: optax.GradientTransformation) -> Callable:
    """``(params, opt_state, key, x, y) -> (params, opt_state, loss)``, jitted once."""

    def step(params, opt_state, key, x, y):
        loss, grads = jax.value_and_grad(objective)(params, x, y, key, config)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step)


def make_evaluate(config: Config) -> Callable:
    """``(params, x, y) -> (loss, accuracy)`` without dropout or penalty, jitted once."""

    def evaluate(params, x, y):
        logits = mlp_logits(params, x)
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y)
        return LOSSES[config.loss](logits, y), accuracy

    return jax.jit(evaluate)


def batches(rng: np.random.Generator, n: int, batch_size: int) -> list[np.ndarray]:
    """A shuffled epoch as index arrays of exactly ``batch_size`` (the remainder is dropped,
    so the jitted step sees one shape; ``batch_size >= n`` gives one full batch)."""
    if batch_size >= n:
        return [np.arange(n)]
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


class EpochMetrics(NamedTuple):
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float


def train(
    config: Config,
    data: Data,
    *,
    progress: Callable[[Sequence[Any], str], Iterable[Any]] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> History:
    """Train one MLP with ``config`` on ``data``; return its per-epoch history.

    ``progress(batches, description)`` may wrap each epoch's batch list (e.g. a tqdm bar);
    ``on_epoch`` is called with each epoch's metrics. Full-batch GD (``optimizer="gd"``)
    ignores ``batch_size`` and takes one step per epoch over the whole training set.
    """
    start = time.perf_counter()
    key = jax.random.PRNGKey(config.seed)
    init_key, dropout_key = jax.random.split(key)
    sizes = [data.x_train.shape[1], *config.hidden, NUM_CLASSES]
    params = init_mlp(init_key, sizes)
    optimizer = make_optimizer(config)
    opt_state = optimizer.init(params)
    step = make_train_step(config, optimizer)
    evaluate = make_evaluate(config)
    use_dropout = config.dropout > 0

    @jax.jit
    def step_on_batch(params, opt_state, step_count, x, y, index):
        # The batch gather and the dropout key inside one compiled call: done eagerly they
        # cost more than the step itself on a small MLP.
        step_key = jax.random.fold_in(dropout_key, step_count) if use_dropout else None
        return step(params, opt_state, step_key, x[index], y[index])

    batch_size = len(data.x_train) if config.optimizer == "gd" else config.batch_size
    rng = np.random.default_rng(config.seed)
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_val, y_val = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
    history = History(config)
    for epoch in range(1, config.epochs + 1):
        epoch_batches = batches(rng, len(data.x_train), batch_size)
        if progress is not None:
            epoch_batches = progress(epoch_batches, f"{config.label} {epoch}/{config.epochs}")
        for index in epoch_batches:
            params, opt_state, _ = step_on_batch(params, opt_state, history.steps, x_train,
                                                 y_train, index)
            history.steps += 1
        eval_params = evaluation_params(config, opt_state, params)
        train_loss, train_acc = evaluate(eval_params, x_train, y_train)
        val_loss, val_acc = evaluate(eval_params, x_val, y_val)
        metrics = EpochMetrics(epoch, float(train_loss), float(train_acc), float(val_loss),
                               float(val_acc))
        history.train_loss.append(metrics.train_loss)
        history.train_accuracy.append(metrics.train_accuracy)
        history.val_loss.append(metrics.val_loss)
        history.val_accuracy.append(metrics.val_accuracy)
        if on_epoch is not None:
            on_epoch(metrics)
    history.params = evaluation_params(config, opt_state, params)
    history.seconds = time.perf_counter() - start
    return history


def lr_range_test(
    data: Data,
    *,
    optimizer: str = "sgd",
    batch_size: int = 64,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    num_steps: int = 100,
    method: str = "valley",
    seed: int = 0,
) -> lossjax.LRFindResult:
    """:func:`lossjax.lr_find` on the digits MLP (64 -> 128 -> 10, cross-entropy).

    ``optimizer``: ``"sgd"`` (momentum 0.9, as the demo's SGD run) or ``"adam"``;
    ``method``: the rule that picks the suggestion (see :func:`lossjax.lr_find`). The
    mini-batches are one shuffled epoch of ``batch_size`` examples, cycled.
    """
    makers = {"sgd": lambda lr: lossjax.sgd(lr, momentum=0.9), "adam": lossjax.adam}
    if optimizer not in makers:
        raise ValueError(f"optimizer must be one of {sorted(makers)}, got {optimizer!r}")
    config = Config(optimizer=optimizer, seed=seed)
    params = init_mlp(jax.random.split(jax.random.PRNGKey(seed))[0],
                      [data.x_train.shape[1], *config.hidden, NUM_CLASSES])
    order = batches(np.random.default_rng(seed), len(data.x_train), batch_size)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    epoch = [(x[index], y[index]) for index in order]

    def loss_fn(params, batch):
        return objective(params, batch[0], batch[1], None, config)

    return lossjax.lr_find(loss_fn, params, epoch, makers[optimizer], min_lr=min_lr,
                           max_lr=max_lr, num_steps=num_steps, method=method)


def plot_histories(histories: Sequence[History], path: str) -> str:
    """Write train (solid) and validation (dashed) loss, and validation accuracy, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, h in enumerate(histories):
        color = f"C{i}"
        epochs = np.arange(1, len(h.train_loss) + 1)
        ax_loss.plot(epochs, h.train_loss, color=color, label=f"{h.config.label} (train)")
        ax_loss.plot(epochs, h.val_loss, color=color, linestyle="--", label="(validation)")
        ax_acc.plot(epochs, h.val_accuracy, color=color, label=h.config.label)
    positive = all(min(h.train_loss + h.val_loss) > 0 for h in histories)
    ax_loss.set(xlabel="epoch", ylabel=f"{histories[0].config.loss} loss",
                yscale="log" if positive else "linear",
                title="Loss: train (solid) / validation (dashed)")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    ax_acc.axhline(0.95, color="grey", linewidth=0.8, linestyle=":")
    ax_loss.legend(fontsize=7, ncol=2)
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    import sys

    from lossjax.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))

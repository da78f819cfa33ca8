"""The learning-rate range test: train briefly while the learning rate grows geometrically,
and read a good rate off the loss curve (Smith 2015; fast.ai's ``lr_find``)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._validation import check_in_range, check_positive


@dataclasses.dataclass(frozen=True)
class LRFindResult:
    """What :func:`lr_find` measured.

    ``learning_rates``: the rate of each step taken; ``losses``: the smoothed training loss
    at each (same length); ``raw_losses``: the unsmoothed batch losses; ``suggestion``: the
    rate where the smoothed loss falls fastest per decade of rate; ``diverged``: whether
    the sweep stopped early because the loss blew up.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    diverged: bool

    def plot(self, ax: Any = None, path: str | None = None) -> Any:
        """Draw the smoothed loss against the learning rate (log scale), the suggestion
        marked; returns the matplotlib ``Axes``. ``path``: also save the figure there.

        Needs matplotlib (``pip install 'lossjax[demo]'``).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("LRFindResult.plot needs matplotlib: pip install "
                              "'lossjax[demo]' (or pip install matplotlib)") from None
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.learning_rates, self.losses, label="smoothed loss")
        at = np.interp(np.log(self.suggestion), np.log(self.learning_rates), self.losses)
        ax.plot([self.suggestion], [at], "o", color="C3",
                label=f"suggestion {self.suggestion:.2g}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="training loss (smoothed)",
               title="Learning-rate range test")
        ax.legend()
        if path is not None:
            ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        return ax


def _batch_stream(batches: Iterable[Any], num_steps: int):
    """A list or tuple is cycled; any other iterable is read once, up to ``num_steps``."""
    if isinstance(batches, Sequence):
        if len(batches) == 0:
            raise ValueError("batches is empty")
        return itertools.islice(itertools.cycle(batches), num_steps)
    return itertools.islice(iter(batches), num_steps)


def _steepest(learning_rates: np.ndarray, losses: np.ndarray, skip: int, half: int) -> float:
    """The rate where ``d loss / d log(rate)`` is most negative, between the first ``skip``
    points (the moving average is still mostly its first few batches there) and the
    minimum of the loss. The slope at ``i`` is taken across ``[i − half, i + half]``, so a
    batch-to-batch wobble of the loss does not pass for the steepest descent."""
    stop = int(np.argmin(losses)) + 1
    start = min(skip, max(stop - 3, 0))
    losses, logs = losses[start:stop], np.log(learning_rates[start:stop])
    if len(losses) < 3:
        return float(learning_rates[stop - 1])
    half = max(1, min(half, (len(losses) - 1) // 2))
    centers = np.arange(half, len(losses) - half)
    slopes = (losses[centers + half] - losses[centers - half]) / (
        logs[centers + half] - logs[centers - half])
    return float(learning_rates[start + int(centers[np.argmin(slopes)])])


def lr_find(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    batches: Iterable[Any],
    make_optimizer: Callable[[float], optax.GradientTransformation],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
) -> LRFindResult:
    """Learning-rate range test: one short training run with a growing learning rate.

    Step ``i`` (of ``num_steps``) trains with ``lr_i = min_lr·(max_lr/min_lr)^(i/(n−1))`` and
    records the batch loss ``ℓ_i``; the smoothed loss is the debiased moving average
    ``a_i = β·a_{i−1} + (1 − β)·ℓ_i``, ``L_i = a_i/(1 − β^{i+1})`` (``β = smoothing``).
    The run stops early when ``L_i > divergence_factor · min L`` or the loss is not finite.
    The suggestion is the rate where ``L`` falls fastest against ``log lr`` (fast.ai's
    "steep", with the slope at step ``i`` taken from ``i ± num_steps // 20`` so that a
    batch-to-batch wobble is not mistaken for it), looking between the first
    ``num_steps // 10`` steps (as fast.ai: mostly the first batches' noise) and the
    minimum of ``L``. Pick it, or a little less.

    The step is compiled once: it calls ``make_optimizer(rate)`` with the rate as a traced
    scalar (an argument of the compiled step), so ``make_optimizer`` may use it anywhere
    a lossjax optimizer takes a rate, a schedule included
    (``lambda lr: lossjax.adam(lossjax.schedules.constant(lr))``), but must not need it as
    a Python number. The optimizer state must not depend on the rate.
    The caller's ``params`` are not changed (the sweep trains a copy); restart training
    from them with the chosen rate.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the starting parameters.
      batches: a list or tuple of batches (cycled), or an iterable that yields at least
        ``num_steps`` batches (the sweep ends early if it runs out).
      make_optimizer: ``rate -> GradientTransformation``, e.g. ``lossjax.sgd`` or
        ``lambda lr: lossjax.adam(lr)``.
      min_lr, max_lr: the range, ``0 < min_lr < max_lr``.
      num_steps: rates tried (>= 2).
      smoothing: ``β`` in ``[0, 1)``: 0.98 as fast.ai (for noisy mini-batch losses); use
        less for short sweeps or full-batch losses (the average lags ``β/(1 − β)`` steps).
      divergence_factor: stop when the smoothed loss exceeds this times its minimum (> 1).

    Differences: fast.ai's ``Learner.lr_find`` (PyTorch) runs the same test and also
    restores the model; its "valley" suggestion is not implemented. Keras has none.

    References: Smith, "Cyclical Learning Rates for Training Neural Networks" (2015,
    arXiv:1506.01186), section 3.3; Howard & Gugger, fastai (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> loss_fn = lambda w, batch: jnp.sum((w - batch) ** 2)   # minimum at the batch
      >>> result = lossjax.lr_find(loss_fn, jnp.zeros(3), [jnp.ones(3)], lossjax.sgd,
      ...                          min_lr=1e-4, max_lr=10.0, num_steps=30, smoothing=0.5)
      >>> result.learning_rates[:2], result.diverged
      (array([0.0001 , 0.000149...]), True)
      >>> 0.01 < result.suggestion < 1.0   # gradient descent diverges above 1.0 here
      True
    """
    check_positive("min_lr", min_lr)
    check_positive("max_lr", max_lr)
    if not max_lr > min_lr:
        raise ValueError(f"max_lr must be > min_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an int >= 2, got {num_steps!r}")
    check_in_range("smoothing", smoothing, 0.0, 1.0)
    if not divergence_factor > 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor!r}")
    rates = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))
    state = make_optimizer(float(rates[0])).init(params)

    @jax.jit
    def step(params, state, rate, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = make_optimizer(rate).update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    current = jax.tree.map(jnp.asarray, params)
    raw, smoothed, average, best, diverged = [], [], 0.0, np.inf, False
    for i, batch in enumerate(_batch_stream(batches, num_steps)):
        current, state, loss = step(current, state, jnp.float32(rates[i]), batch)
        loss = float(loss)
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (i + 1))
        raw.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if not np.isfinite(value) or value > divergence_factor * best:
            diverged = True
            break
    if not smoothed:
        raise ValueError("batches yielded no batch")
    count = len(smoothed)
    losses = np.asarray(smoothed)
    finite = np.isfinite(losses)
    suggestion = _steepest(rates[:count][finite], losses[finite], num_steps // 10,
                           num_steps // 20)
    return LRFindResult(rates[:count], losses, np.asarray(raw), suggestion, diverged)

"""The learning-rate range test: train briefly while the learning rate grows geometrically,
and read a good rate off the loss curve (Smith 2015; fast.ai's ``lr_find``)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._validation import check_in_range, check_positive

METHODS = ("valley", "steepest", "minimum")


@dataclasses.dataclass(frozen=True)
class LRFindResult:
    """What :func:`lr_find` measured.

    ``learning_rates``: the rate of each step taken; ``raw_losses``: the batch loss at each;
    ``losses``: the smoothed loss at each (same length, see :func:`lr_find`);
    ``suggestion``: the rate the rule ``method`` picks; ``suggestions``: the rate each rule
    (``"valley"``, ``"steepest"``, ``"minimum"``) picks, so that you can compare them;
    ``diverged``: whether the sweep stopped early because the loss blew up.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    diverged: bool
    method: str = "valley"
    suggestions: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def plot(self, ax: Any = None, path: str | None = None) -> Any:
        """Draw the batch losses (thin, pale) under the smoothed loss against the learning
        rate (log scale), each rule's suggestion marked and the chosen one labelled;
        returns the matplotlib ``Axes``. ``path``: also save the figure there.

        Needs matplotlib (``pip install 'lossjax[demo]'``).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("LRFindResult.plot needs matplotlib: pip install "
                              "'lossjax[demo]' (or pip install matplotlib)") from None
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.learning_rates, self.raw_losses, color="C0", alpha=0.3, linewidth=0.8,
                label="batch loss")
        ax.plot(self.learning_rates, self.losses, color="C0", label="smoothed loss")
        log_rates = np.log(self.learning_rates)
        for index, (name, rate) in enumerate(sorted(self.suggestions.items())):
            at = np.interp(np.log(rate), log_rates, self.losses)
            chosen = name == self.method
            ax.plot([rate], [at], "o" if chosen else "x", color=f"C{index + 1}",
                    markersize=8 if chosen else 6,
                    label=f"{name}: {rate:.2g}" + (" (suggestion)" if chosen else ""))
        finite = self.raw_losses[np.isfinite(self.raw_losses)]
        if finite.size:
            # the last batches of a diverged sweep would squash the curve: stop at the cap
            low = min(finite.min(), self.losses.min())
            high = min(finite.max(), 2 * self.losses[0] - low) if self.diverged else finite.max()
            pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
            ax.set_ylim(low - pad, high + pad)
        ax.set(xscale="log", xlabel="learning rate", ylabel="training loss",
               title="Learning-rate range test")
        ax.legend(fontsize=8)
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


def _exponential_average(values: np.ndarray, beta: float) -> np.ndarray:
    """The debiased moving average ``a_i = β·a_{i−1} + (1 − β)·x_i``, ``a_i/(1 − β^{i+1})``."""
    out, average = np.empty(len(values)), 0.0
    for i, value in enumerate(values):
        average = beta * average + (1 - beta) * value
        out[i] = average / (1 - beta ** (i + 1))
    return out


def smooth(raw_losses: np.ndarray, beta: float, cap: float, after: int) -> np.ndarray:
    """Zero-lag smoothing: the debiased moving average run forwards, then backwards over
    that. A one-way average lags ``β/(1 − β)`` steps, which moves the curve's minimum to a
    larger rate; the backward pass moves it back. Losses past index ``after`` above ``cap``
    (a diverged sweep's last batches) count as ``cap``, so the blow-up does not leak into
    the curve before it."""
    capped = np.array(raw_losses, dtype=np.float64)
    capped[after + 1 :] = np.minimum(capped[after + 1 :], cap)
    forward = _exponential_average(capped, beta)
    return _exponential_average(forward[::-1], beta)[::-1]


def _descent(losses: np.ndarray, skip: int) -> tuple[int, int]:
    """``[start, stop)``: from ``skip`` (the first points' noise) to just past the minimum."""
    stop = int(np.argmin(losses)) + 1
    return min(skip, max(stop - 3, 0)), stop


def _steepest(log_rates: np.ndarray, losses: np.ndarray, skip: int, half: int) -> int:
    """The index where ``d loss / d log(rate)`` is most negative before the minimum; the
    slope at ``i`` is taken across ``[i − half, i + half]``."""
    start, stop = _descent(losses, skip)
    if stop - start < 3:
        return stop - 1
    half = max(1, min(half, (stop - start - 1) // 2))
    centers = np.arange(start + half, stop - half)
    slopes = (losses[centers + half] - losses[centers - half]) / (
        log_rates[centers + half] - log_rates[centers - half])
    return int(centers[np.argmin(slopes)])


def _valley(losses: np.ndarray) -> tuple[int, int]:
    """``(first, last)``: the lower half of the fall, from the first point where ``losses``
    has made half of its drop (from its first value to its minimum) to the minimum."""
    last = int(np.argmin(losses))
    level = losses[last] + 0.5 * (losses[0] - losses[last])
    first = int(np.argmax(losses[: last + 1] <= level))
    return first, last


def suggest(learning_rates: np.ndarray, losses: np.ndarray, method: str) -> float:
    """The rate a rule reads off a smoothed loss curve (see :func:`lr_find`)."""
    n = len(losses)
    log_rates = np.log(learning_rates)
    if method == "minimum":
        return float(learning_rates[int(np.argmin(losses))] / 10)
    if method == "steepest":
        return float(learning_rates[_steepest(log_rates, losses, n // 10, max(n // 20, 1))])
    first, last = _valley(losses)
    return float(np.exp((log_rates[first] + log_rates[last]) / 2))


def lr_find(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    batches: Iterable[Any],
    make_optimizer: Callable[[Any], optax.GradientTransformation],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    method: str = "valley",
    smoothing: float = 0.9,
    divergence_factor: float = 4.0,
) -> LRFindResult:
    """Learning-rate range test: one short training run with a growing learning rate.

    Step ``i`` (of ``num_steps``) trains with ``lr_i = min_lr·(max_lr/min_lr)^(i/(n−1))`` and
    records the batch loss ``ℓ_i``. The run stops early when the loss is not finite or
    its running average ``a_i = β·a_{i−1} + (1 − β)·ℓ_i`` (debiased, ``β = smoothing``)
    exceeds ``divergence_factor`` times its minimum. The smoothed curve ``L`` is that
    average run forwards and then backwards, with no lag (a one-way average of 0.98, as
    fast.ai's, puts the minimum about ten times too far right on a 100-step sweep); past
    the running average's lowest point, losses above the stopping threshold count as the
    threshold, so a blow-up does not leak into the curve before it.

    ``method`` picks the rule that reads a rate off ``L``; every rule's pick is in
    ``result.suggestions``:

    - ``"valley"`` (default): the geometric middle of the lower half of the fall, between
      the first rate at which ``L`` has made half of its drop (from its first value to its
      minimum) and the rate at the minimum. In the spirit of fast.ai's ``valley`` (the
      middle of the descent), but measured by how far the loss has fallen rather than by
      how long it keeps falling, so a slow early drift does not drag it to tiny rates.
    - ``"steepest"``: where ``L`` falls fastest against ``log lr`` before its minimum
      (slope taken across ``i ± n // 20``, after the first ``n // 10`` of the ``n`` steps
      taken, where the curve is mostly the first batches' noise). Tends to
      suggest too little for freshly initialised Transformers, whose loss first falls
      steeply at small rates.
    - ``"minimum"``: the rate at the minimum of ``L``, divided by 10 (Smith's and fast.ai's
      "minimum / 10").

    The step is compiled once: the optimizer is
    ``lossjax.inject_hyperparams(make_optimizer)(learning_rate=lr)`` and each step sets
    ``state.hyperparams["learning_rate"]``, so ``make_optimizer`` may build any optimizer
    from the rate, including one that wraps it in a schedule
    (``lambda lr: lossjax.adam(lossjax.schedules.constant(lr))``), or optax's. The
    caller's ``params`` are not changed (the sweep trains a copy); restart training from
    them with the chosen rate (or somewhat less: the rules read a rate at which training
    still goes down, not the best peak rate of a long schedule).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the starting parameters.
      batches: a list or tuple of batches (cycled), or an iterable that yields at least
        ``num_steps`` batches (the sweep ends early if it runs out).
      make_optimizer: ``rate -> GradientTransformation`` (one argument, the learning
        rate), e.g. ``lossjax.sgd`` or ``lambda lr: lossjax.adamw(lr, weight_decay=0.1)``.
      min_lr, max_lr: the range, ``0 < min_lr < max_lr``.
      num_steps: rates tried (>= 2).
      method: ``"valley"``, ``"steepest"`` or ``"minimum"``.
      smoothing: ``β`` in ``[0, 1)``; 0 draws the raw losses. More for noisy mini-batch
        losses or long sweeps.
      divergence_factor: stop when the running average exceeds this times its minimum (> 1).

    Differences: fast.ai's ``Learner.lr_find`` (PyTorch) runs the same test with a one-way
    average (β = 0.98) and offers the same rules; its ``valley`` is the middle of the
    longest falling subsequence, which on a lag-free curve starts at the first, barely
    falling rates (``bench/lr_find_grid.py``: 2e-4 for both test models); ours takes the
    lower half of the fall instead. Keras has none.

    References: Smith, "Cyclical Learning Rates for Training Neural Networks" (2015,
    arXiv:1506.01186), section 3.3; Howard & Gugger, "fastai: a layered API for deep
    learning" (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> loss_fn = lambda w, batch: jnp.sum((w - batch) ** 2)   # minimum at the batch
      >>> result = lossjax.lr_find(loss_fn, jnp.zeros(3), [jnp.ones(3)], lossjax.sgd,
      ...                          min_lr=1e-4, max_lr=10.0, num_steps=30, smoothing=0.5)
      >>> result.learning_rates[:2], result.diverged, result.method
      (array([0.0001 , 0.000149...]), True, 'valley')
      >>> 0.01 < result.suggestion < 1.0   # gradient descent diverges above 1.0 here
      True
    """
    from lossjax.optimizers import inject_hyperparams  # the public package: built by now

    check_positive("min_lr", min_lr)
    check_positive("max_lr", max_lr)
    if not max_lr > min_lr:
        raise ValueError(f"max_lr must be > min_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an int >= 2, got {num_steps!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    check_in_range("smoothing", smoothing, 0.0, 1.0)
    if not divergence_factor > 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor!r}")
    rates = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))

    def factory(learning_rate):
        return make_optimizer(learning_rate)

    optimizer = inject_hyperparams(factory)(learning_rate=float(rates[0]))
    state: Any = optimizer.init(params)  # an InjectHyperparamsState
    if "learning_rate" not in state.hyperparams:
        raise ValueError("make_optimizer(rate) must build its optimizer from an array rate "
                         "(it may not branch on the rate's value in Python), so that one "
                         "compiled step serves every rate")
    rate_dtype = state.hyperparams["learning_rate"].dtype

    @jax.jit
    def step(params, state, rate, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        state = state._replace(hyperparams={**state.hyperparams, "learning_rate": rate})
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    current = jax.tree.map(jnp.asarray, params)
    raw, average, best, best_index, diverged = [], 0.0, np.inf, 0, False
    for i, batch in enumerate(_batch_stream(batches, num_steps)):
        current, state, loss = step(current, state, jnp.asarray(rates[i], rate_dtype), batch)
        loss = float(loss)
        raw.append(loss)
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (i + 1))
        if value < best:
            best, best_index = value, i
        if not np.isfinite(value) or value > divergence_factor * best:
            diverged = True
            break
    if not raw:
        raise ValueError("batches yielded no batch")
    raw_losses = np.asarray(raw)
    count = len(raw_losses)
    losses = smooth(np.where(np.isfinite(raw_losses), raw_losses, np.inf), smoothing,
                    divergence_factor * best, best_index)
    suggestions = {name: suggest(rates[:count], losses, name) for name in METHODS}
    return LRFindResult(rates[:count], losses, raw_losses, suggestions[method], diverged,
                        method, suggestions)

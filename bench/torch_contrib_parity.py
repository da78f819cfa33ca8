"""Cross-check lossjax's PyTorch-derived optimizers and schedules against PyTorch, float64.

    pip install torch==2.13.0   # not a lossjax dependency; CI does not install it
    python -m bench.torch_contrib_parity

Not a benchmark and not a test (CI has no torch; the tests compare with NumPy
transcriptions of the same algorithms). It runs, on a 5-dimensional convex quadratic:

- ``lossjax.asgd`` against ``torch.optim.ASGD`` (200 steps; the averaged parameters
  ``ax`` too), with a small ``t0`` so the averaging starts;
- ``lossjax.schedules.cyclic`` against ``torch.optim.lr_scheduler.CyclicLR`` in its three
  modes, and ``swalr`` against ``SWALR`` (cos and linear annealing from a constant rate),
  for 100 steps each: the rate PyTorch's scheduler sets before each ``optimizer.step()``.

It prints the largest relative difference of each; exit status 1 when one exceeds 1e-10
(trajectories) or 1e-6 (lossjax's schedules return float32).
"""

from __future__ import annotations

import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402

import lossjax  # noqa: E402

torch.set_default_dtype(torch.float64)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def _quadratic():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    return a @ a.T / 5 + np.eye(5), rng.normal(size=5), np.full(5, 0.5)


def asgd(steps: int = 200) -> tuple[float, float]:
    a, target, w0 = _quadratic()
    kwargs = {"lr": 0.05, "lambd": 1e-2, "alpha": 0.75, "t0": 50.0, "weight_decay": 1e-3}
    w = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.ASGD([w], **kwargs)
    at, tt = torch.tensor(a), torch.tensor(target)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (w - tt) @ at @ (w - tt)).backward()
        opt.step()
    ax = opt.state[w]["ax"].detach().numpy()
    ours = lossjax.asgd(0.05, 1e-2, 0.75, 50.0, 1e-3)
    grad = lambda v: jnp.asarray(a) @ (v - jnp.asarray(target))  # noqa: E731

    def body(carry, _):
        v, s = carry
        u, s = ours.update(grad(v), s, v)
        return (optax.apply_updates(v, u), s), None

    v, s = jax.jit(lambda v: jax.lax.scan(body, (v, ours.init(v)), None, length=steps)[0])(
        jnp.asarray(w0))
    return _rel(v, w.detach().numpy()), _rel(s.ax, ax)


def _torch_rates(make_scheduler, steps: int) -> list[float]:
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5, momentum=0.9)
    scheduler = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return rates


def schedules(steps: int = 100) -> dict[str, float]:
    out = {}
    for mode in ("triangular", "triangular2", "exp_range"):
        theirs = _torch_rates(lambda o, m=mode: torch.optim.lr_scheduler.CyclicLR(
            o, 0.01, 0.1, step_size_up=7, step_size_down=5, mode=m, gamma=0.97), steps)
        ours = jax.vmap(lossjax.schedules.cyclic(0.01, 0.1, 7, 5, mode=mode, gamma=0.97))(
            jnp.arange(steps))
        out[f"CyclicLR {mode}"] = _rel(ours, theirs)
    for strategy in ("cos", "linear"):
        theirs = _torch_rates(lambda o, s=strategy: torch.optim.swa_utils.SWALR(
            o, swa_lr=0.05, anneal_epochs=8, anneal_strategy=s), steps)
        ours = jax.vmap(lossjax.schedules.swalr(0.5, 0.05, 0, 8, strategy))(jnp.arange(steps))
        out[f"SWALR {strategy}"] = _rel(ours, theirs)
    return out


def main() -> int:
    ok = True
    w_err, ax_err = asgd()
    print(f"ASGD parameters            rel diff {w_err:.2e}")
    print(f"ASGD averaged parameters   rel diff {ax_err:.2e}")
    ok &= max(w_err, ax_err) <= 1e-10
    for name, err in schedules().items():
        print(f"{name:26s} rel diff {err:.2e}")
        ok &= err <= 1e-6
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

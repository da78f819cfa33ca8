"""Cross-check lossjax's SOAP and Shampoo against pytorch-optimizer's PyTorch ports, float64.

    pip install torch==2.13.0 pytorch-optimizer==4.1.0   # not lossjax dependencies
    python -m bench.torch_precond_parity

Not a benchmark and not a test (CI installs neither torch nor pytorch-optimizer; the tests
compare with float64 NumPy transcriptions written from the papers and the reference code).
Both libraries train the same small tanh MLP (8-8-8-8, square weights so that the first
gradient's Gram matrices have full rank and their eigenbases are unique up to sign), each
from its own parameters, with the gradient of each step computed by one NumPy function of
those parameters and that step's batch (so a difference in the optimizers is the only
thing that can make the trajectories part). 120 steps; the expensive step (SOAP's basis
refresh, Shampoo's inverse roots) every step and every 10 steps.

Printed per case: the largest relative difference of the parameters over all steps
(``max |p_lossjax − p_torch| / max |p_torch|`` per leaf, the worst leaf and step), the same
for each step's update, and how far the parameters moved. Exit status 1 when a case whose
algorithms match differs by more than 1e-8.

Matching configurations and the deliberate differences (bench/README.md lists them with
the figures):

- SOAP: ``pytorch_optimizer.SOAP`` against ``lossjax.soap``, both without weight decay
  (pytorch-optimizer decays after the step and skips the first step's decay, lossjax
  decays before it, as optax's ``adamw``: a difference of ``lr²·wd·u`` per step, shown by
  the ``weight_decay=0.01`` case). pytorch-optimizer casts the power-iteration matrix to
  float32 for its QR (a comment there says QR lacks bfloat16 support): the "as shipped"
  rows show that rounding; the "QR in float64" rows run the same class with that cast
  made a no-op (its module's ``torch.float32`` read as ``torch.float64``).
- Shampoo: ``pytorch_optimizer.ScalableShampoo`` (the port of google-research's
  ``distributed_shampoo``; its ``Shampoo`` class is the 2018 paper's ungrafted variant,
  which lossjax does not offer) with ``use_svd=True`` (an exact inverse root; its default
  coupled Schur–Newton iteration stops at a residual of 1e-3, shown by one row) and
  ``matrix_eps=0``, against ``lossjax.shampoo(..., matrix_epsilon=0)``: its SVD path adds
  no ridge to the statistic (the reference adds ``ε·λmax·I``), so the ridge is off on both
  sides. pytorch-optimizer counts steps from 1 and lossjax from 0, so lossjax's state
  count starts at 1 here: the roots are then recomputed on the same steps and
  ``start_preconditioning_step`` means the same. Weights only, shapes not merged:
  unmerged, pytorch-optimizer leaves a 1-D parameter to the grafted step (lossjax and the
  reference give it an ``n × n`` statistic), and its ``merge_small_dims`` turns a shape
  that fits in one axis into ``[1]`` (no preconditioner) where the reference keeps it.
  Grafting: SGD and AdaGrad exist on both sides; its RMSProp
  graft (no bias correction, gradient not normalised) matches neither of lossjax's
  ``"rmsprop_normalized"`` (the reference's) nor ``"adam"``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402

import lossjax  # noqa: E402

torch.set_default_dtype(torch.float64)

STEPS = 120
WIDTHS = (8, 8, 8, 8)
BATCH = 32
TOLERANCE = 1e-8

Params = dict[str, np.ndarray]


def initial_params(bias: bool, seed: int = 0) -> Params:
    rng = np.random.default_rng(seed)
    params: Params = {}
    for i, (a, b) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
        params[f"w{i}"] = rng.normal(size=(a, b)) / np.sqrt(a)
        if bias:
            params[f"b{i}"] = 0.1 * rng.normal(size=b)
    return params


_TEACHER = initial_params(bias=True, seed=100)


def _forward(params: Params, x: np.ndarray) -> list[np.ndarray]:
    """Activations of the tanh MLP (the last layer linear)."""
    acts = [x]
    layers = len(WIDTHS) - 1
    for i in range(layers):
        z = acts[-1] @ params[f"w{i}"] + params.get(f"b{i}", 0.0)
        acts.append(np.tanh(z) if i < layers - 1 else z)
    return acts


def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(1000 + step).normal(size=(BATCH, WIDTHS[0]))
    return x, _forward(_TEACHER, x)[-1] + 0.5 * np.sin(3.0 * x[:, :WIDTHS[-1]])


def gradient(params: Params, step: int) -> Params:
    """Gradient of ``mean ½‖f(x) − y‖²`` by hand-written backpropagation (float64)."""
    x, y = batch(step)
    acts = _forward(params, x)
    delta = (acts[-1] - y) / BATCH
    grads: Params = {}
    for i in reversed(range(len(WIDTHS) - 1)):
        grads[f"w{i}"] = acts[i].T @ delta
        if f"b{i}" in params:
            grads[f"b{i}"] = delta.sum(axis=0)
        if i:
            delta = (delta @ params[f"w{i}"].T) * (1.0 - acts[i] ** 2)
    return grads


def run_lossjax(opt: optax.GradientTransformation, params: Params,
                prepare: Callable[[Any], Any] = lambda s: s) -> list[Params]:
    p = {k: jnp.asarray(v) for k, v in params.items()}
    state = prepare(opt.init(p))
    step = jax.jit(opt.update)
    path = [params]
    for t in range(STEPS):
        g = {k: jnp.asarray(v) for k, v in gradient(path[-1], t).items()}
        u, state = step(g, state, p)
        p = optax.apply_updates(p, u)
        path.append({k: np.asarray(v) for k, v in p.items()})
    return path


def run_torch(make: Callable[[list[torch.Tensor]], Any], params: Params) -> list[Params]:
    names = list(params)
    tensors = [torch.nn.Parameter(torch.tensor(params[n])) for n in names]
    opt = make(tensors)
    path = [params]
    for t in range(STEPS):
        g = gradient(path[-1], t)
        for n, w in zip(names, tensors, strict=True):
            w.grad = torch.tensor(g[n])
        opt.step()
        path.append({n: w.detach().numpy().copy() for n, w in zip(names, tensors,
                                                                    strict=True)})
    return path


def compare(ours: list[Params], theirs: list[Params]) -> tuple[float, float, float]:
    """Largest relative difference of the parameters and of the updates over all steps,
    and the largest distance a parameter moved from its start."""
    param_diff = update_diff = moved = 0.0
    for t in range(1, len(theirs)):
        for n in theirs[t]:
            a, b = ours[t][n], theirs[t][n]
            param_diff = max(param_diff, np.max(np.abs(a - b)) / np.max(np.abs(b)))
            ua, ub = a - ours[t - 1][n], b - theirs[t - 1][n]
            scale = np.max(np.abs(ub))
            if scale > 0:
                update_diff = max(update_diff, np.max(np.abs(ua - ub)) / scale)
            moved = max(moved, np.max(np.abs(b - theirs[0][n])))
    return float(param_diff), float(update_diff), float(moved)


class _Float32AsFloat64:
    """The ``torch`` module with ``float32`` read as ``float64``: put in place of the
    ``torch`` global of pytorch-optimizer's SOAP module, its QR runs in float64."""

    float32 = torch.float64

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


def soap_cases() -> list[tuple[str, Callable[[], tuple[list[Params], list[Params]]], bool]]:
    import pytorch_optimizer
    from pytorch_optimizer.optimizer import soap as soap_module

    def case(frequency: int, float64_qr: bool, weight_decay: float = 0.0):
        def run():
            params = initial_params(bias=True)
            ours = run_lossjax(lossjax.soap(3e-3, weight_decay=weight_decay,
                                            precondition_frequency=frequency), params)
            original = soap_module.torch
            if float64_qr:
                soap_module.torch = _Float32AsFloat64()
            try:
                theirs = run_torch(lambda ps: pytorch_optimizer.SOAP(
                    ps, lr=3e-3, weight_decay=weight_decay,
                    precondition_frequency=frequency), params)
            finally:
                soap_module.torch = original
            return ours, theirs
        return run

    return [
        ("soap, refresh every step, QR in float64", case(1, True), True),
        ("soap, refresh every 10, QR in float64", case(10, True), True),
        ("soap, refresh every step, as shipped (float32 QR)", case(1, False), False),
        ("soap, refresh every 10, as shipped (float32 QR)", case(10, False), False),
        ("soap, refresh every 10, weight_decay=0.01 (decay before / after the step)",
         case(10, True, 0.01), False),
    ]


def _count_from_one(state: Any) -> Any:
    """lossjax's Shampoo state with its step count at 1 (pytorch-optimizer's first step)."""
    inner = state[0]
    return (inner._replace(count=jnp.ones_like(inner.count)), *state[1:])


def shampoo_cases() -> list[tuple[str, Callable[[], tuple[list[Params], list[Params]]], bool]]:
    import pytorch_optimizer
    from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting

    grafts = {"sgd": LayerWiseGrafting.SGD, "adagrad": LayerWiseGrafting.ADAGRAD}

    def case(graft: str, every: int, block: int, lr: float, use_svd: bool = True,
             moving_average: bool = False, weight_decay: float = 0.0):
        def run():
            params = initial_params(bias=False)
            ours = run_lossjax(lossjax.shampoo(
                lr, block_size=block, matrix_epsilon=0.0, graft_type=graft,
                preconditioning_compute_steps=every, start_preconditioning_step=5,
                moving_average_for_momentum=moving_average, weight_decay=weight_decay,
                best_effort_shape_interpretation=False), params, _count_from_one)
            theirs = run_torch(lambda ps: pytorch_optimizer.ScalableShampoo(
                ps, lr=lr, betas=(0.9, 0.999), block_size=block, matrix_eps=0.0,
                graft_type=grafts[graft], preconditioning_compute_steps=every,
                start_preconditioning_step=5, moving_average_for_momentum=moving_average,
                weight_decay=weight_decay, shape_interpretation=False, use_svd=use_svd,
                nesterov=True), params)
            return ours, theirs
        return run

    return [
        ("shampoo, roots every step, SGD grafting, one block", case("sgd", 1, 128, 3e-3), True),
        ("shampoo, roots every 10, SGD grafting, one block", case("sgd", 10, 128, 3e-3), True),
        ("shampoo, roots every step, AdaGrad grafting, 4 x 4 blocks, averaged momentum",
         case("adagrad", 1, 4, 1e-2, moving_average=True), True),
        ("shampoo, roots every 10, AdaGrad grafting, 4 x 4 blocks, weight_decay=1e-3",
         case("adagrad", 10, 4, 1e-2, weight_decay=1e-3), True),
        ("shampoo, roots every step, SGD grafting, its default Schur-Newton roots",
         case("sgd", 1, 128, 3e-3, use_svd=False), False),
    ]


def main() -> int:
    torch.manual_seed(0)  # the Schur-Newton row's power iteration starts from randn
    rows = []
    for name, run, matched in soap_cases() + shampoo_cases():
        ours, theirs = run()
        param_diff, update_diff, moved = compare(ours, theirs)
        rows.append((name, param_diff, update_diff, moved, matched))
    print(f"lossjax against pytorch-optimizer, float64, {STEPS} steps "
          f"(MLP {'-'.join(map(str, WIDTHS))}, batch {BATCH})\n")
    print("| case | max rel param diff | max rel update diff | params moved | algorithms |")
    print("|---|---|---|---|---|")
    failed = []
    for name, param_diff, update_diff, moved, matched in rows:
        print(f"| {name} | {param_diff:.1e} | {update_diff:.1e} | {moved:.2f} | "
              f"{'match' if matched else 'differ (see above)'} |")
        if matched and max(param_diff, update_diff) > TOLERANCE:
            failed.append(name)
    if failed:
        print(f"\nabove {TOLERANCE:g} where the algorithms match: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

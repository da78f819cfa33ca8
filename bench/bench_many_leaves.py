"""Many-leaf models: compile and step time of the update, lossjax vs optax.

    python -m bench.bench_many_leaves [--quick] [--tries N]
    python -m bench.bench_many_leaves --profile flat lossjax   # where one compile's time goes
    python -m bench.bench_many_leaves --model-gradient         # a flat layout's cost to the model

Trees (float32), each with the optimizer the issue names:

- ``flat``: 1000 leaves of 1000 floats, ``adamw(1e-3, weight_decay=1e-4)``: overhead bound;
- ``layers``: 48 Transformer-like layers of 12 leaves (d = 128, 9.5M floats), ``adamw``:
  bandwidth bound;
- ``adam199``: 199 leaves of [256, 384] (19.6M floats), ``adam(1e-3)``;
- ``stacked`` (``--profile`` only): the ``layers`` tree as a scanned model stores it, 12
  leaves of [48, ...].

Contenders, one donated jitted step ``params, state <- step(params, state, grads)`` each:

- ``lossjax``, ``optax``: the optimizer on the tree as it is (one update per leaf);
- ``optax.flatten``: optax's wrapper that ravels the gradients (and parameters) into one
  vector per step, runs the optimizer on it and splits the result again: flat state
  buffers, bought with concatenating and slicing every leaf every step;
- ``lossjax, one leaf``: lossjax's optimizer on one leaf holding all the tree's floats:
  the floor of a flat-parameter representation, leaving out what the model would pay to
  slice its parameters out of that leaf and to concatenate its gradients into one.

Step times are medians of donated calls timed in alternation in one process. Compile is
trace + lower + compile of the step in a fresh Python process (nothing warm), best of
``--tries``, contenders taking turns; it is given in CPU seconds of that process (all its
threads), which a loaded machine stretches much less than wall time, and in wall seconds.
``--profile`` prints one contender's trace / lower / compile CPU seconds and the size of
its program before and after XLA's passes (instructions, fusions). ``--model-gradient``
measures what a flat-parameter layout costs the model instead: the gradient of a toy loss
on the ``flat`` tree with its parameters held as the tree or sliced from one vector.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import lossjax
from bench._timing import interleaved_medians, print_table

Array = jax.Array
REPO = Path(__file__).resolve().parents[1]
CONTENDERS = ("lossjax", "optax", "optax.flatten", "lossjax, one leaf")
D_MODEL = 128
LAYER = {"q": (D_MODEL, D_MODEL), "k": (D_MODEL, D_MODEL), "v": (D_MODEL, D_MODEL),
         "o": (D_MODEL, D_MODEL), "ln1": (D_MODEL,), "ln1_bias": (D_MODEL,),
         "ln2": (D_MODEL,), "ln2_bias": (D_MODEL,), "up": (D_MODEL, 4 * D_MODEL),
         "up_bias": (4 * D_MODEL,), "down": (4 * D_MODEL, D_MODEL), "down_bias": (D_MODEL,)}


def tree_shapes(tree: str, quick: bool = False) -> dict[str, Any]:
    """The tree's leaves as ``jax.ShapeDtypeStruct`` (``quick``: a tenth of the leaves)."""
    f32 = jnp.float32
    if tree == "flat":
        return {f"p{i:04d}": jax.ShapeDtypeStruct((1000,), f32)
                for i in range(100 if quick else 1000)}
    if tree == "layers":
        return {f"layer{i:02d}": {k: jax.ShapeDtypeStruct(s, f32) for k, s in LAYER.items()}
                for i in range(5 if quick else 48)}
    if tree == "stacked":  # the layers tree as a scanned model holds it: one leaf per kind
        return {k: jax.ShapeDtypeStruct((5 if quick else 48, *s), f32) for k, s in LAYER.items()}
    if tree == "adam199":
        return {f"w{i:03d}": jax.ShapeDtypeStruct((256, 384), f32)
                for i in range(20 if quick else 199)}
    raise ValueError(f"tree must be 'flat', 'layers', 'stacked' or 'adam199', got {tree!r}")


def describe(tree: str, quick: bool) -> str:
    leaves = jax.tree.leaves(tree_shapes(tree, quick))
    size = sum(int(np.prod(x.shape)) for x in leaves)
    optimizer = "adam" if tree == "adam199" else "adamw"
    return f"{tree}: {len(leaves)} leaves, {size / 1e6:.3g}M f32, {optimizer}"


def optimizer(tree: str, contender: str) -> optax.GradientTransformation:
    library = optax if contender.startswith("optax") else lossjax
    opt = (library.adam(1e-3) if tree == "adam199"
           else library.adamw(1e-3, weight_decay=1e-4))
    return optax.flatten(opt) if contender == "optax.flatten" else opt


def contender_shapes(tree: str, contender: str, quick: bool) -> dict[str, Any]:
    shapes = tree_shapes(tree, quick)
    if contender != "lossjax, one leaf":
        return shapes
    size = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
    return {"all": jax.ShapeDtypeStruct((size,), jnp.float32)}


def make_step(opt: optax.GradientTransformation) -> Callable[..., Any]:
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def _random_like(shapes: Any, seed: int) -> Any:
    leaves, treedef = jax.tree.flatten(shapes)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return treedef.unflatten([jax.random.normal(k, x.shape, x.dtype)
                              for k, x in zip(keys, leaves, strict=True)])


def _donated_call(tree: str, contender: str, quick: bool) -> tuple[Callable[[], Any], tuple]:
    """A zero-argument call running the contender's donated step on its own buffers."""
    opt = optimizer(tree, contender)
    params = _random_like(contender_shapes(tree, contender, quick), 0)
    grads = jax.tree.map(lambda p: 0.01 * p, params)
    compiled = jax.jit(make_step(opt), donate_argnums=(0, 1))
    holder = {"params": params, "state": jax.tree.map(jnp.copy, opt.init(params))}

    def call():
        holder["params"], holder["state"] = compiled(holder["params"], holder["state"], grads)
        return holder["params"]

    return call, ()


def _lowered(tree: str, contender: str, quick: bool):
    opt = optimizer(tree, contender)
    shapes = contender_shapes(tree, contender, quick)
    state = jax.eval_shape(opt.init, shapes)
    return jax.jit(make_step(opt), donate_argnums=(0, 1)).trace(shapes, state, shapes)


def _child_compile(tree: str, contender: str, quick: bool) -> None:
    """Print ``cpu_seconds wall_seconds`` of one cold trace + lower + compile."""
    jax.devices()  # start the backend first: its start-up is not the step's compile
    cpu, wall = time.process_time(), time.perf_counter()
    _lowered(tree, contender, quick).lower().compile()
    print(time.process_time() - cpu, time.perf_counter() - wall)


def cold_compile(tree: str, contender: str, quick: bool) -> tuple[float, float]:
    command = [sys.executable, "-m", "bench.bench_many_leaves", "--cold-compile", tree,
               contender] + (["--quick"] if quick else [])
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    cpu, wall = out.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def _op_counts(hlo_text: str) -> collections.Counter:
    return collections.Counter(re.findall(r"\s([a-z][a-z0-9-]*)\(", hlo_text.split("ENTRY")[-1]))


def profile(tree: str, contender: str, quick: bool) -> None:
    """Where one cold compile's time goes: phases in CPU seconds, and the program's size."""
    jax.devices()
    start = time.process_time()
    traced = _lowered(tree, contender, quick)
    traced_at = time.process_time()
    lowered = traced.lower()
    lowered_at = time.process_time()
    compiled = lowered.compile()
    compiled_at = time.process_time()
    before = lowered.as_text(dialect="hlo")
    entry = _op_counts(compiled.as_text())
    print(f"{contender} on {describe(tree, quick)}")
    print(f"  CPU s: trace {traced_at - start:.2f}, lower {lowered_at - traced_at:.2f}, "
          f"compile {compiled_at - lowered_at:.2f}")
    print(f"  jaxpr equations: {len(traced.jaxpr.eqns)}; HLO instructions before XLA's "
          f"passes: {len(re.findall(r' = ', before))}")
    print(f"  after: {entry['fusion']} fusions in the entry computation, "
          f"{sum(entry.values())} instructions there")


def _toy_loss(params: Any) -> Array:
    return sum(jnp.sum(jnp.sin(x) * x) for x in jax.tree.leaves(params))


def _child_model_gradient(layout: str, quick: bool) -> None:
    """Print compile CPU seconds and step ms of a toy model's gradient on ``flat``, its
    parameters held as the tree (``layout = "tree"``) or as one vector they are sliced from
    (``"vector"``, ``jax.flatten_util.ravel_pytree``)."""
    params = _random_like(tree_shapes("flat", quick), 0)
    vector, unravel = ravel_pytree(params)
    grad, arg = ((jax.jit(jax.grad(_toy_loss)), params) if layout == "tree"
                 else (jax.jit(jax.grad(lambda v: _toy_loss(unravel(v)))), vector))
    jax.devices()
    cpu = time.process_time()
    compiled = grad.lower(arg).compile()
    cpu = time.process_time() - cpu
    (ms,) = interleaved_medians([(compiled, (arg,))], repeats=5 if quick else 20)
    print(cpu, 1e3 * ms)


def model_gradient(quick: bool) -> None:
    """What a flat-parameter layout costs the model: its gradient, tree against vector."""
    rows = []
    for layout in ("tree", "vector"):
        command = [sys.executable, "-m", "bench.bench_many_leaves", "--model-gradient", layout]
        out = subprocess.run(command + (["--quick"] if quick else []), cwd=REPO,
                             capture_output=True, text=True, check=True)
        cpu, ms = (float(x) for x in out.stdout.strip().splitlines()[-1].split())
        rows.append([layout, cpu, ms])
    print_table(f"Gradient of sum(sin(x)·x) over {describe('flat', quick).split(',')[0]}",
                ["parameters held as", "compile CPU s", "step ms"], rows)


def _case(tree: str, quick: bool, repeats: int, tries: int,
          contenders: tuple[str, ...]) -> dict[str, Any]:
    calls = [_donated_call(tree, who, quick) for who in contenders]
    step_ms = [1e3 * t for t in interleaved_medians(calls, repeats=repeats)]
    del calls
    trials = [[cold_compile(tree, who, quick) for who in contenders] for _ in range(tries)]
    cpu = [min(trial[i][0] for trial in trials) for i in range(len(contenders))]
    wall = [min(trial[i][1] for trial in trials) for i in range(len(contenders))]
    row: dict[str, Any] = {"name": describe(tree, quick), "lossjax_ms": step_ms[0],
                           "optax_ms": step_ms[1], "ratio": step_ms[0] / step_ms[1]}
    for i, who in enumerate(contenders):
        row[f"{who} step ms"] = step_ms[i]
        row[f"{who} compile cpu s"] = cpu[i]
        row[f"{who} compile wall s"] = wall[i]
    row["compile_ratio"] = cpu[0] / cpu[1]
    return row


def main(quick: bool = False, tries: int | None = None,
         contenders: tuple[str, ...] = CONTENDERS) -> list[dict[str, Any]]:
    """``contenders`` must start with lossjax and optax (the ratios are theirs)."""
    repeats = 5 if quick else 20
    tries = tries or (1 if quick else 2)
    rows = [_case(tree, quick, repeats, tries, contenders)
            for tree in ("flat", "layers", "adam199")]
    print_table(
        "Update step of many-leaf trees, float32, CPU: lossjax / optax (per leaf)",
        ["tree", "compile CPU s lossjax / optax", "compile ratio", "step ms lossjax / optax",
         "step ratio"],
        [[r["name"], f"{r['lossjax compile cpu s']:.3g} / {r['optax compile cpu s']:.3g}",
          r["compile_ratio"], f"{r['lossjax_ms']:.3g} / {r['optax_ms']:.3g}", r["ratio"]]
         for r in rows])
    print_table(
        "All contenders: step ms, compile CPU s (compile wall s)",
        ["tree", *contenders],
        [[r["name"], *(f"{r[f'{who} step ms']:.3g} ms, {r[f'{who} compile cpu s']:.3g} s "
                       f"({r[f'{who} compile wall s']:.3g} s)" for who in contenders)]
         for r in rows])
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the leaves, 5 repeats")
    parser.add_argument("--tries", type=int, help="cold compiles per contender (best kept)")
    parser.add_argument("--without-flatten", action="store_true",
                        help="leave out optax.flatten (its 1000-leaf compile takes minutes)")
    parser.add_argument("--profile", nargs=2, metavar=("TREE", "CONTENDER"),
                        help="phases and program size of one cold compile")
    parser.add_argument("--model-gradient", nargs="?", const="both",
                        choices=("both", "tree", "vector"),
                        help="a toy model's gradient with its parameters as the tree or as "
                             "one vector (what a flat-parameter layout costs the model)")
    parser.add_argument("--cold-compile", nargs=2, metavar=("TREE", "CONTENDER"),
                        help="(internal) print one cold compile's CPU and wall seconds")
    args = parser.parse_args()
    if args.cold_compile:
        _child_compile(*args.cold_compile, args.quick)
    elif args.model_gradient == "both":
        model_gradient(args.quick)
    elif args.model_gradient:
        _child_model_gradient(args.model_gradient, args.quick)
    elif args.profile:
        profile(*args.profile, args.quick)
    else:
        chosen = tuple(c for c in CONTENDERS
                       if not (args.without_flatten and c == "optax.flatten"))
        main(args.quick, args.tries, chosen)

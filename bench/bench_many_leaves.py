"""Many-leaf models: compile and step time of the update, lossjax vs optax.

    python -m bench.bench_many_leaves [--quick] [--tries N]
    python -m bench.bench_many_leaves --profile flat lossjax   # where one compile's time goes
    python -m bench.bench_many_leaves --model-gradient         # a flat layout's cost to the model
    python -m bench.bench_many_leaves --train-step             # gradient + update, tree vs flat

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
- ``lossjax, flat``: lossjax's optimizer on the buffers ``lossjax.flatten_params`` packs
  the tree into (one float32 buffer here): parameters and state held flat by the user;
- ``lossjax, one leaf``: lossjax's optimizer on one leaf holding all the tree's floats (the
  same program as ``lossjax, flat`` on these one-dtype trees, kept for the earlier runs).

``--train-step`` measures the whole step a user compiles, the model's gradient and the
update in one program, on ``flat`` (a toy loss) and ``layers`` (a Transformer-like stack of
matrix products): parameters as the tree with optax's or lossjax's per-leaf optimizer,
against flat buffers read with ``layout.unflatten`` (offsets as compile-time constants, or
passed in as runtime arguments, ``layout.offsets``).

Step times are medians of donated calls timed in alternation in one process. Compile is
trace + lower + compile of the step in a fresh Python process (nothing warm), best of
``--tries``, contenders taking turns; it is given in CPU seconds of that process (all its
threads), which a loaded machine stretches much less than wall time, and in wall seconds.
``--profile`` prints one contender's trace / lower / compile CPU seconds and the size of
its program before and after XLA's passes (instructions, fusions). ``--model-gradient``
measures what a flat-parameter layout costs the model instead: the gradient of the ``flat``
tree's toy loss and of the ``layers`` stack with the parameters held as the tree, as one
vector (``ravel_pytree``) or as flat buffers (constant or runtime offsets); compile CPU
seconds in a fresh process each, and step time (one program per process: compare step
times across processes with care on a loaded machine).
"""

from __future__ import annotations

import argparse
import collections
import functools
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
CONTENDERS = ("lossjax", "optax", "lossjax, flat", "optax.flatten")  # "lossjax, one leaf" too
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


def flat_layout(shapes: Any) -> lossjax.FlatLayout:
    """The ``lossjax.flatten_params`` layout of a tree of shapes (from zeros: cheap)."""
    return lossjax.flatten_params(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                                               shapes))[1]


@functools.cache
def contender_shapes(tree: str, contender: str, quick: bool) -> dict[str, Any]:
    """The leaves the contender's step takes (for ``lossjax, flat``: the buffers; the
    layout is built once, outside the compile timings: ``setup`` below measures it)."""
    shapes = tree_shapes(tree, quick)
    if contender == "lossjax, flat":
        return dict(flat_layout(shapes).shapes)
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
    contender_shapes(tree, contender, quick)  # the flat layout: set-up, not the step
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
    contender_shapes(tree, contender, quick)
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


def _layers_loss(params: Any) -> Array:
    """A Transformer-like stack on the ``layers`` tree (no attention across positions: the
    matrix products and elementwise terms of one, on 8 positions)."""
    x = jnp.cos(jnp.arange(8 * D_MODEL, dtype=jnp.float32).reshape(8, D_MODEL))
    for name in sorted(params):
        p = params[name]
        h = x * p["ln1"] + p["ln1_bias"]
        x = x + ((h @ p["q"]) * jnp.tanh(h @ p["k"]) + h @ p["v"]) @ p["o"]
        h = x * p["ln2"] + p["ln2_bias"]
        x = x + jax.nn.gelu(h @ p["up"] + p["up_bias"]) @ p["down"] + p["down_bias"]
    return jnp.mean(x * x)


MODEL_LOSSES = {"flat": _toy_loss, "layers": _layers_loss}
LAYOUTS = ("tree", "vector", "flat", "flat, offsets")
TRAIN_CONTENDERS = ("optax, tree", "lossjax, tree", "lossjax, flat", "lossjax, flat, offsets")


def _scaled_random(shapes: Any) -> Any:
    return jax.tree.map(lambda x: 0.02 * x, _random_like(shapes, 0))


def _gradient_program(tree: str, layout: str, quick: bool) -> tuple[Callable, tuple]:
    """The jitted gradient of the tree's model loss with its parameters held as ``layout``:
    the tree; one vector sliced with ``jax.flatten_util.ravel_pytree``; flat buffers read
    with ``layout.unflatten`` (offsets constant, or runtime arguments)."""
    loss = MODEL_LOSSES[tree]
    params = _scaled_random(tree_shapes(tree, quick))
    if layout == "tree":
        return jax.jit(jax.grad(loss)), (params,)
    if layout == "vector":
        vector, unravel = ravel_pytree(params)
        return jax.jit(jax.grad(lambda v: loss(unravel(v)))), (vector,)
    buffers, flat = lossjax.flatten_params(params)
    if layout == "flat":
        return jax.jit(jax.grad(lambda b: loss(flat.unflatten(b)))), (buffers,)
    return (jax.jit(jax.grad(lambda b, o: loss(flat.unflatten(b, o)))),
            (buffers, flat.offsets))


def _train_program(tree: str, contender: str, quick: bool) -> tuple[Callable, tuple]:
    """One donated train step ``params, state <- step(params, state)`` (gradient of the
    model loss, adamw update) with the parameters held as ``contender`` says."""
    loss = MODEL_LOSSES[tree]
    library = optax if contender.startswith("optax") else lossjax
    opt = library.adamw(1e-3, weight_decay=1e-4)
    params = _scaled_random(tree_shapes(tree, quick))
    if contender.endswith("tree"):
        def step(params, state):
            updates, state = opt.update(jax.grad(loss)(params), state, params)
            return optax.apply_updates(params, updates), state

        return jax.jit(step, donate_argnums=(0, 1)), (params, opt.init(params))
    buffers, flat = lossjax.flatten_params(params)

    def flat_step(buffers, state, offsets=None):
        grads = jax.grad(lambda b: loss(flat.unflatten(b, offsets)))(buffers)
        updates, state = opt.update(grads, state, buffers)
        return optax.apply_updates(buffers, updates), state

    args = (buffers, opt.init(buffers))
    if contender.endswith("offsets"):
        args = (*args, flat.offsets)
    return jax.jit(flat_step, donate_argnums=(0, 1)), args


def _child_program(kind: str, tree: str, who: str, quick: bool) -> None:
    """Print ``compile_cpu_s step_ms`` of one program (``kind``: "gradient" or "train"),
    compiled cold in this process, then timed (donated programs feed their outputs back)."""
    build = _gradient_program if kind == "gradient" else _train_program
    fn, args = build(tree, who, quick)
    jax.block_until_ready(args)
    jax.devices()
    cpu = time.process_time()
    compiled = fn.lower(*args).compile()
    cpu = time.process_time() - cpu
    holder = {"args": args}

    def call():
        if kind == "gradient":
            return compiled(*holder["args"])
        out = compiled(*holder["args"])
        holder["args"] = (*out, *holder["args"][2:])
        return out

    (seconds,) = interleaved_medians([(call, ())], repeats=5 if quick else 20)
    print(cpu, 1e3 * seconds)


def _programs(kind: str, trees: tuple[str, ...], contenders: tuple[str, ...], quick: bool,
              tries: int) -> dict[tuple[str, str], tuple[float, float]]:
    """Best-of-``tries`` compile CPU s and step ms per (tree, contender), each measured in a
    fresh process, contenders taking turns."""
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(tries):
        for tree in trees:
            for who in contenders:
                command = [sys.executable, "-m", "bench.bench_many_leaves", "--program", kind,
                           tree, who] + (["--quick"] if quick else [])
                out = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                                     check=True)
                cpu, ms = (float(x) for x in out.stdout.strip().splitlines()[-1].split())
                results.setdefault((tree, who), []).append((cpu, ms))
    return {key: (min(c for c, _ in v), min(m for _, m in v)) for key, v in results.items()}


def model_gradient(quick: bool, tries: int = 1) -> None:
    """What a flat-parameter layout costs the model: its gradient, tree against flat."""
    trees = ("flat", "layers")
    got = _programs("gradient", trees, LAYOUTS, quick, tries)
    print_table("Model gradient: compile CPU s (step ms), by how the parameters are held",
                ["tree", *LAYOUTS],
                [[describe(tree, quick).split(",")[0] + f" ({tree})",
                  *(f"{got[tree, who][0]:.3g} s ({got[tree, who][1]:.3g} ms)"
                    for who in LAYOUTS)] for tree in trees])


def train_step(quick: bool, tries: int = 1) -> None:
    """The whole train step (model gradient + adamw), per-leaf against flat buffers."""
    trees = ("flat", "layers")
    got = _programs("train", trees, TRAIN_CONTENDERS, quick, tries)
    print_table("Train step (gradient + adamw): compile CPU s (step ms); ratio to optax",
                ["tree", *TRAIN_CONTENDERS],
                [[tree, *(f"{got[tree, who][0]:.3g} s ({got[tree, who][1]:.3g} ms); "
                          f"{got[tree, who][0] / got[tree, 'optax, tree'][0]:.2f} / "
                          f"{got[tree, who][1] / got[tree, 'optax, tree'][1]:.2f}"
                          for who in TRAIN_CONTENDERS)] for tree in trees])


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
    for i, who in enumerate(contenders[2:], start=2):
        row[f"{who} compile ratio"] = cpu[i] / cpu[1]
        row[f"{who} step ratio"] = step_ms[i] / step_ms[1]
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
    if "lossjax, flat" in contenders:
        print_table(
            "Update step on flat buffers (lossjax.flatten_params) / optax per leaf",
            ["tree", "compile CPU s flat / optax", "compile ratio", "step ms flat / optax",
             "step ratio"],
            [[r["name"],
              f"{r['lossjax, flat compile cpu s']:.3g} / {r['optax compile cpu s']:.3g}",
              r["lossjax, flat compile ratio"],
              f"{r['lossjax, flat step ms']:.3g} / {r['optax_ms']:.3g}",
              r["lossjax, flat step ratio"]] for r in rows])
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
    parser.add_argument("--model-gradient", action="store_true",
                        help="the models' gradient with the parameters as the tree, one "
                             "vector or flat buffers (what a flat layout costs the model)")
    parser.add_argument("--train-step", action="store_true",
                        help="the whole train step (gradient + adamw), tree against flat")
    parser.add_argument("--program", nargs=3, metavar=("KIND", "TREE", "WHO"),
                        help="(internal) print one program's compile CPU s and step ms")
    parser.add_argument("--only", nargs="+", choices=CONTENDERS + ("lossjax, one leaf",),
                        help="contenders of the update table (lossjax and optax first)")
    parser.add_argument("--cold-compile", nargs=2, metavar=("TREE", "CONTENDER"),
                        help="(internal) print one cold compile's CPU and wall seconds")
    args = parser.parse_args()
    if args.cold_compile:
        _child_compile(*args.cold_compile, args.quick)
    elif args.program:
        _child_program(*args.program, args.quick)
    elif args.model_gradient:
        model_gradient(args.quick, args.tries or 1)
    elif args.train_step:
        train_step(args.quick, args.tries or 1)
    elif args.profile:
        profile(*args.profile, args.quick)
    else:
        chosen = tuple(c for c in (args.only or CONTENDERS)
                       if not (args.without_flatten and c == "optax.flatten"))
        main(args.quick, args.tries, chosen)

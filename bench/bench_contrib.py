"""The rest of optax.contrib, the PyTorch/Keras optimizers and the precision controls:
step time and state bytes vs optax, microbatching's memory.

    python -m bench.bench_contrib [--quick] [--inject-designs | --inject-registry]

1. Step time: one donated jitted ``params, state <- step(params, state, grads)`` on 40
   float32 matrices [256, 256] (2.6M parameters; quick: 8 of [64, 64]), lossjax and optax
   timed in alternation in one process (``interleaved_medians``); ratio = lossjax / optax.
   ``sophia`` gets ``obj_fn`` (½‖w‖², a Hessian-vector product every 10th step, inside
   ``lax.cond``), ``momo*`` get ``value``. ``asgd`` and ``ftrl`` have no optax counterpart:
   they are timed against optax's ``sgd`` and ``adagrad`` (the same memory traffic class).
   State bytes: every leaf of ``jax.eval_shape(opt.init, params)``.
2. ``inject_hyperparams(adamw)``, ``multi_steps(adamw, 4, should_skip_update_fn=
   skip_not_finite)``, and ``adamw(mu_dtype=nu_dtype=bfloat16)`` (optax has no
   ``nu_dtype``: against its ``mu_dtype=bfloat16``, and against that with ``nu`` kept in
   bfloat16 by a cast after each update, as users patch it), the same way.
3. ``microbatch`` vs ``optax.microbatching.microbatch`` (MEAN) of ``jax.value_and_grad`` of
   a 3-layer tanh MLP on 4096 examples: time and XLA's temporary bytes, k = 1, 4, 8.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

import lossjax
from bench._timing import interleaved_medians, print_table, temp_bytes


def _half_square(params):
    return sum(0.5 * jnp.sum(jnp.square(p)) for p in jax.tree.leaves(params))


def _optax_adamw_bf16_moments(learning_rate: float) -> optax.GradientTransformation:
    """optax's adamw with ``mu_dtype=bfloat16`` and its second moment kept in bfloat16 too,
    as users patch it (optax has no ``nu_dtype``): ``nu`` created in bfloat16 and cast back
    to bfloat16 after each update (optax's update would promote it to float32)."""
    inner = optax.adamw(learning_rate, mu_dtype=jnp.bfloat16)

    def to_bf16_nu(state):
        return jax.tree.map(
            lambda s: s._replace(nu=optax.tree.cast(s.nu, jnp.bfloat16))
            if isinstance(s, optax.ScaleByAdamState) else s, state,
            is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))

    def update(updates, state, params=None):
        updates, state = inner.update(updates, state, params)
        return updates, to_bf16_nu(state)

    return optax.GradientTransformation(lambda params: to_bf16_nu(inner.init(params)), update)


CASES: dict[str, tuple[Any, Any, tuple[str, ...]]] = {  # name: (lossjax, optax, extras)
    "acprop": (lambda: lossjax.acprop(1e-3), lambda: optax.contrib.acprop(1e-3), ()),
    "simplified_ademamix": (lambda: lossjax.simplified_ademamix(1e-3),
                            lambda: optax.contrib.simplified_ademamix(1e-3), ()),
    "cocob": (lossjax.cocob, optax.contrib.cocob, ()),
    "mechanize(adam)": (lambda: lossjax.mechanize(lossjax.adam(1e-3)),
                        lambda: optax.contrib.mechanize(optax.adam(1e-3)), ()),
    "madgrad": (lambda: lossjax.madgrad(1e-2), lambda: optax.contrib.madgrad(1e-2), ()),
    "dowg": (lossjax.dowg, optax.contrib.dowg, ()),
    "sophia": (lambda: lossjax.sophia(1e-3), lambda: optax.contrib.sophia(1e-3), ("obj_fn",)),
    "sam(sgd, normalize+sgd)": (
        lambda: lossjax.sam(lossjax.sgd(1e-2), optax.chain(lossjax.normalize(),
                                                           lossjax.sgd(5e-2))),
        lambda: optax.contrib.sam(optax.sgd(1e-2), optax.chain(optax.contrib.normalize(),
                                                               optax.sgd(5e-2))), ()),
    "schedule_free(adam)": (
        lambda: lossjax.schedule_free(lossjax.adam(1e-3, b1=0.0), 1e-3),
        lambda: optax.contrib.schedule_free(optax.adam(1e-3, b1=0.0), 1e-3), ()),
    "momo": (lossjax.momo, optax.contrib.momo, ("value",)),
    "momo_adam": (lossjax.momo_adam, optax.contrib.momo_adam, ("value",)),
    "galore(rank=32)": (lambda: lossjax.galore(1e-3, rank=32),
                        lambda: optax.contrib.galore(1e-3, rank=32), ()),
    "asgd (vs optax sgd)": (lambda: lossjax.asgd(1e-2), lambda: optax.sgd(1e-2), ()),
    "ftrl (vs optax adagrad)": (lambda: lossjax.ftrl(1e-1), lambda: optax.adagrad(1e-1), ()),
    "inject_hyperparams(adamw)": (
        lambda: lossjax.inject_hyperparams(lossjax.adamw)(learning_rate=1e-3),
        lambda: optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3), ()),
    "inject_hyperparams(nadam)": (
        lambda: lossjax.inject_hyperparams(lossjax.nadam)(learning_rate=1e-3),
        lambda: optax.inject_hyperparams(optax.nadam)(learning_rate=1e-3), ()),
    "multi_steps(adamw, 4, skip)": (
        lambda: lossjax.multi_steps(lossjax.adamw(1e-3), 4,
                                    should_skip_update_fn=lossjax.skip_not_finite),
        lambda: optax.MultiSteps(optax.adamw(1e-3), 4,
                                 should_skip_update_fn=optax.skip_not_finite
                                 ).gradient_transformation(), ()),
    "adamw bf16 mu+nu (optax: bf16 mu)": (
        lambda: lossjax.adamw(1e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
        lambda: optax.adamw(1e-3, mu_dtype=jnp.bfloat16), ()),
    "adamw bf16 mu+nu (optax: bf16 mu, nu cast)": (
        lambda: lossjax.adamw(1e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
        lambda: _optax_adamw_bf16_moments(1e-3), ()),
}


def make_params(matrices: int, size: int) -> dict[str, jax.Array]:
    keys = jax.random.split(jax.random.key(0), matrices)
    return {f"w{i:03d}": jax.random.normal(k, (size, size), jnp.float32) * 0.05
            for i, k in enumerate(keys)}


def make_step(opt: optax.GradientTransformation, extras: tuple[str, ...]):
    def step(params, state, grads):
        kwargs = {"obj_fn": _half_square, "value": _half_square(params)}
        updates, state = opt.update(grads, state, params, **{k: kwargs[k] for k in extras})
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def _donated(step, params, state, grads):
    holder = {"params": jax.tree.map(jnp.copy, params), "state": jax.tree.map(jnp.copy, state)}

    def call():
        holder["params"], holder["state"] = step(holder["params"], holder["state"], grads)
        return holder["params"]

    return call, ()


def state_bytes(opt: optax.GradientTransformation, params: Any) -> int:
    shapes = jax.eval_shape(opt.init, params)
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def step_times(quick: bool) -> list[dict[str, Any]]:
    matrices, size = (8, 64) if quick else (40, 256)
    params = make_params(matrices, size)
    grads = jax.tree.map(lambda p: 0.01 * jnp.cos(p), params)
    n = sum(p.size for p in jax.tree.leaves(params))
    rows = []
    for name, (ours, theirs, extras) in CASES.items():
        calls = []
        opts = (ours(), theirs())
        for opt in opts:
            calls.append(_donated(make_step(opt, extras), params, opt.init(params), grads))
        t_ours, t_theirs = interleaved_medians(calls, repeats=5 if quick else 20)
        rows.append({"name": name, "lossjax_ms": 1e3 * t_ours, "optax_ms": 1e3 * t_theirs,
                     "ratio": t_ours / t_theirs,
                     "lossjax_state_bytes_per_param": state_bytes(opts[0], params) / n,
                     "optax_state_bytes_per_param": state_bytes(opts[1], params) / n})
    return rows


def _mlp_problem(batch: int, width: int):
    params = {"w1": jnp.ones((16, width)) / 4, "b1": jnp.zeros(width),
              "w2": jnp.ones((width, width)) / width, "w3": jnp.ones((width, 1))}
    kx, ky = jax.random.split(jax.random.key(0))
    data = (jax.random.normal(kx, (batch, 16)), jax.random.normal(ky, (batch, 1)))

    def loss(p, d):
        h = jnp.tanh(d[0] @ p["w1"] + p["b1"])
        h = jnp.tanh(h @ p["w2"])
        return jnp.mean(jnp.square(h @ p["w3"] - d[1]))

    return params, data, jax.value_and_grad(loss)


def microbatch_rows(quick: bool) -> list[dict[str, Any]]:
    params, data, value_and_grad = _mlp_problem(1024 if quick else 4096, 128)
    batch = data[0].shape[0]
    full = temp_bytes(value_and_grad, params, data)
    rows = []
    for k in (4, 8):
        ours = lossjax.microbatch(value_and_grad, k)
        theirs = optax.microbatching.microbatch(
            value_and_grad, argnums=1, microbatch_size=batch // k,
            accumulator=optax.microbatching.AccumulationType.MEAN)
        t_ours, t_theirs, t_full = interleaved_medians(
            [(jax.jit(f), (params, data)) for f in (ours, theirs, value_and_grad)],
            repeats=5 if quick else 20)
        rows.append({"name": f"microbatch k={k}", "lossjax_ms": 1e3 * t_ours,
                     "optax_ms": 1e3 * t_theirs, "ratio": t_ours / t_theirs,
                     "full_batch_ms": 1e3 * t_full, "full_temp_bytes": full,
                     "lossjax_temp_bytes": temp_bytes(ours, params, data),
                     "optax_temp_bytes": temp_bytes(theirs, params, data)})
    return rows


def _force_cond(forced: bool) -> Any:
    """Make ``inject_hyperparams`` take its ``lax.cond`` fallback (``forced``) or not;
    returns the function to restore."""
    from lossjax.optimizers import _wrappers

    original = _wrappers._scalar_select_update
    if forced:
        _wrappers._scalar_select_update = lambda *args, **kwargs: None
    return original


def _restore_scalar_select(original: Any) -> None:
    from lossjax.optimizers import _wrappers

    _wrappers._scalar_select_update = original


def inject_design_rows(quick: bool) -> list[dict[str, Any]]:
    """``inject_hyperparams(adamw)`` as built (scalar selects) and forced into its
    ``lax.cond`` fallback, and plain AdamW, each against optax's inject(adamw), in one
    alternation."""
    matrices, size = (8, 64) if quick else (40, 256)
    params = make_params(matrices, size)
    grads = jax.tree.map(lambda p: 0.01 * jnp.cos(p), params)
    builds = {
        "inject(adamw), scalar selects": (
            lambda: lossjax.inject_hyperparams(lossjax.adamw)(learning_rate=1e-3), False),
        "inject(adamw), lax.cond": (
            lambda: lossjax.inject_hyperparams(lossjax.adamw)(learning_rate=1e-3), True),
        "lossjax adamw": (lambda: lossjax.adamw(1e-3), False),
        "optax adamw": (lambda: optax.adamw(1e-3), False),
        "optax inject(adamw)": (
            lambda: optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3), False),
    }
    calls = []
    for build, use_cond in builds.values():
        original = _force_cond(use_cond)
        try:
            opt = build()
            call = _donated(make_step(opt, ()), params, opt.init(params), grads)
            call[0]()  # traced and compiled now, under this choice
        finally:
            _restore_scalar_select(original)
        calls.append(call)
    times = interleaved_medians(calls, repeats=5 if quick else 40)
    return [{"name": name, "ms": 1e3 * t, "ratio": t / times[-1]}
            for name, t in zip(builds, times, strict=True)]


def _shared_optimizers() -> list[tuple[str, Any, Any, dict[str, Any], tuple[str, ...]]]:
    """Registry optimizers optax has by the same name (``optax`` or ``optax.contrib``) that
    need no extra ``update`` arguments: ``(name, lossjax factory, optax factory, args,
    optax's static_args)``,
    every argument at its default but a learning rate of 1e-3 (1.0 for adadelta, whose
    ``None`` means 1.0 in lossjax and no sign flip in optax)."""
    import inspect

    from tests.optimizers._registry import ENTRIES

    out, seen = [], set()
    for entry in ENTRIES:
        if entry.kind != "optimizer" or entry.id or entry.params is not None:
            continue
        name = entry.name
        theirs = getattr(optax, name, None) or getattr(optax.contrib, name, None)
        if (name in seen or not callable(theirs) or entry.update_kwargs is not None
                or name == "dpsgd"):  # dpsgd's update takes per-example gradients
            continue
        seen.add(name)
        args = {}
        if "learning_rate" in inspect.signature(entry.fn).parameters:
            args["learning_rate"] = 1.0 if name == "adadelta" else 1e-3
        # optax's wrapper holds every number and calls every callable as a schedule: its
        # users name integer counts and callables that are not schedules as static_args
        static = tuple(k for k, p in inspect.signature(theirs).parameters.items()
                       if (isinstance(p.default, int) and not isinstance(p.default, bool))
                       or callable(p.default))
        out.append((name, entry.fn, theirs, args, static))
    return out


def inject_registry_rows(quick: bool) -> list[dict[str, Any]]:
    """For each optimizer lossjax and optax share: lossjax's ``inject_hyperparams(X)``
    against optax's ``inject_hyperparams(X)`` and against lossjax's plain ``X``, timed in
    alternation (the three in one process), with the path lossjax's wrapper takes."""
    from lossjax.optimizers import _wrappers

    matrices, size = (8, 64) if quick else (40, 256)
    params = make_params(matrices, size)
    grads = jax.tree.map(lambda p: 0.01 * jnp.cos(p), params)
    rows = []
    for name, ours, theirs, args, static in _shared_optimizers():
        taken = []
        original = _wrappers._scalar_select_update

        def spy(*a, _original=original, _taken=taken, **k):
            out = _original(*a, **k)
            _taken.append("scalar selects" if out is not None else "lax.cond")
            return out

        _wrappers._scalar_select_update = spy
        try:
            opts = (lossjax.inject_hyperparams(ours)(**args),
                    optax.inject_hyperparams(theirs, static_args=static)(**args),
                    ours(**args))
            calls = [_donated(make_step(opt, ()), params, opt.init(params), grads)
                     for opt in opts]
            for call, _ in calls:
                call()  # traced and compiled now, with the spy in place
        except Exception as error:  # noqa: BLE001  (a row that cannot run says why)
            reason = f"{type(error).__name__}: {str(error)[:90]}"
            rows.append({"name": name, "path": f"not timed: {reason}"})
            continue
        finally:
            _wrappers._scalar_select_update = original
        t_ours, t_theirs, t_plain = interleaved_medians(calls, repeats=5 if quick else 20)
        rows.append({"name": name, "path": taken[0] if taken else "no numbers held",
                     "lossjax_ms": 1e3 * t_ours, "optax_ms": 1e3 * t_theirs,
                     "ratio": t_ours / t_theirs, "vs_plain": t_ours / t_plain})
    return rows


def main(quick: bool = False) -> list[dict[str, Any]]:
    rows = step_times(quick)
    print_table("contrib optimizers: step time and state", [
        "optimizer", "lossjax ms", "optax ms", "ratio", "state B/param lossjax",
        "state B/param optax"], [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"],
                                 r["lossjax_state_bytes_per_param"],
                                 r["optax_state_bytes_per_param"]] for r in rows])
    micro = microbatch_rows(quick)
    print_table("microbatch (value_and_grad of an MLP, mean over k slices)", [
        "case", "lossjax ms", "optax ms", "ratio", "full batch ms", "temp bytes full",
        "temp bytes lossjax", "temp bytes optax"],
        [[r["name"], r["lossjax_ms"], r["optax_ms"], r["ratio"], r["full_batch_ms"],
          r["full_temp_bytes"], r["lossjax_temp_bytes"], r["optax_temp_bytes"]]
         for r in micro])
    return rows + micro


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--inject-designs", action="store_true",
                        help="only inject_hyperparams(adamw)'s two designs (40 repeats)")
    parser.add_argument("--inject-registry", action="store_true",
                        help="only inject_hyperparams(X) for every optimizer optax shares")
    args = parser.parse_args()
    if args.inject_registry:
        rows = inject_registry_rows(args.quick)
        print_table("inject_hyperparams(X): lossjax's vs optax's, and vs plain lossjax X",
                    ["optimizer", "path", "lossjax ms", "optax ms", "ratio", "vs plain X"],
                    [[r["name"], r["path"], r.get("lossjax_ms", ""), r.get("optax_ms", ""),
                      r.get("ratio", ""), r.get("vs_plain", "")] for r in rows])
    elif args.inject_designs:
        rows = inject_design_rows(args.quick)
        print_table("inject_hyperparams(adamw) designs vs optax's inject(adamw)",
                    ["case", "ms", "ratio"], [[r["name"], r["ms"], r["ratio"]] for r in rows])
    else:
        main(args.quick)

"""Wrappers and stateless transforms: the same trajectories as optax's counterparts (with
NaN/inf gradients injected at chosen steps), float64 references for what optax lacks,
composition (jit, orbax, Flax nnx) and argument checks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax

STEPS = 48
NAN_STEPS = {5: np.nan, 12: np.inf, 20: np.nan, 21: -np.inf, 33: np.nan}


def make_params():
    k = jax.random.split(jax.random.key(0), 3)
    return {"w": jax.random.normal(k[0], (4, 3), jnp.float32),
            "b": jax.random.normal(k[1], (3,), jnp.float32),
            "conv": jax.random.normal(k[2], (2, 2, 2, 3), jnp.float32)}


@functools.cache
def _noise(steps):
    rng = np.random.default_rng(1)
    return {k: rng.normal(size=(steps, *p.shape)).astype(np.float32)
            for k, p in make_params().items()}


def gradient_noise(steps=STEPS):
    """Per step, a random array per parameter (NumPy: drawing it in JAX costs more)."""
    return _noise(steps)


def poison(bad_steps):
    """Per step, the value written into one element of ``w``'s gradient, and whether."""
    values = np.zeros(STEPS, np.float32)
    for step, value in bad_steps.items():
        values[step] = value
    return values, np.array([s in bad_steps for s in range(STEPS)])


def poisoned_gradient(params, noise, value, is_bad):
    """``g = p/2 + noise`` with ``w[1, 2]`` replaced by ``value`` where ``is_bad``."""
    grads = jax.tree.map(lambda x, n: 0.5 * x + n, params, noise)
    grads["w"] = grads["w"].at[1, 2].set(jnp.where(is_bad, value, grads["w"][1, 2]))
    return grads


def run(*opts, bad_steps=None):
    """For each optimizer (all in one jitted call): the parameters after each of STEPS
    steps from :func:`make_params`, and the final state."""
    inputs = (gradient_noise(), *poison(bad_steps or {}))

    def trajectory(opt, params):
        def step(carry, step_inputs):
            params, state = carry
            updates, state = opt.update(poisoned_gradient(params, *step_inputs), state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), params

        (_, state), path = jax.lax.scan(step, (params, opt.init(params)), inputs)
        return path, state

    results = jax.jit(lambda params: [trajectory(opt, params) for opt in opts])(make_params())
    return results[0] if len(opts) == 1 else results


def assert_same_path(ours, theirs, rtol=2e-5, atol=2e-6):
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def by_ndim(params):
    return jax.tree.map(lambda p: "matrix" if p.ndim > 1 else "vector", params)


def schedule(step):
    return 0.01 * 0.97 ** jnp.asarray(step, jnp.float32)


# Each entry: (lossjax optimizer, optax optimizer, steps where the gradient is poisoned).
PAIRS = {
    "zero_nans": (lambda: optax.chain(lossjax.zero_nans(), lossjax.sgd(0.05)),
                  lambda: optax.chain(optax.zero_nans(), optax.sgd(0.05)),
                  {5: np.nan, 30: np.nan}),
    "multi_steps_mean": (lambda: lossjax.multi_steps(lossjax.adam(1e-2), 4),
                         lambda: optax.MultiSteps(optax.adam(1e-2), 4), {}),
    "multi_steps_sum": (lambda: lossjax.multi_steps(lossjax.sgd(1e-2, 0.9), 3,
                                                    use_grad_mean=False),
                        lambda: optax.MultiSteps(optax.sgd(1e-2, 0.9), 3, use_grad_mean=False),
                        {}),
    "multi_steps_growing_k": (
        lambda: lossjax.multi_steps(lossjax.adam(1e-2), lambda n: 1 + n // 4),
        lambda: optax.MultiSteps(optax.adam(1e-2), lambda n: 1 + n // 4), {}),
    "skip_nan_micro_batches": (
        lambda: lossjax.apply_if_finite(lossjax.multi_steps(
            optax.chain(lossjax.clip_by_global_norm(1.0), lossjax.adamw(1e-2)), 4), 3),
        lambda: optax.apply_if_finite(optax.MultiSteps(
            optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2)), 4), 3),
        NAN_STEPS),
    # a function mask here, optax's tree mask there
    "masked": (lambda: lossjax.masked(lossjax.adam(1e-2),
                                      lambda p: {"w": True, "b": False, "conv": True}),
               lambda: optax.masked(optax.adam(1e-2), {"w": True, "b": False, "conv": True}),
               {}),
    "partition": (lambda: lossjax.partition({"matrix": lossjax.adam(1e-2),
                                             "vector": lossjax.sgd(0.1)}, by_ndim),
                  lambda: optax.partition({"matrix": optax.adam(1e-2),
                                           "vector": optax.sgd(0.1)}, by_ndim), {}),
    "freeze": (lambda: optax.chain(lossjax.adam(1e-2), lossjax.freeze({"w": False, "b": True,
                                                                       "conv": False})),
               lambda: optax.chain(optax.adam(1e-2), optax.freeze({"w": False, "b": True,
                                                                   "conv": False})), {}),
    "inject_schedule": (lambda: lossjax.inject_hyperparams(lossjax.adam)(learning_rate=schedule,
                                                                          b1=0.8),
                        lambda: optax.inject_hyperparams(optax.adam)(learning_rate=schedule,
                                                                     b1=0.8), {}),
    "inject_adamw": (lambda: lossjax.inject_hyperparams(lossjax.adamw)(1e-2, weight_decay=0.1),
                     lambda: optax.inject_hyperparams(optax.adamw)(1e-2, weight_decay=0.1), {}),
    "inject_sgd_momentum": (
        lambda: lossjax.inject_hyperparams(lossjax.sgd)(learning_rate=schedule, momentum=0.9),
        lambda: optax.inject_hyperparams(optax.sgd)(learning_rate=schedule, momentum=0.9), {}),
    "clip": (lambda: optax.chain(lossjax.clip(0.5), lossjax.sgd(0.1)),
             lambda: optax.chain(optax.clip(0.5), optax.sgd(0.1)), {}),
    "clip_by_block_rms": (lambda: optax.chain(lossjax.clip_by_block_rms(0.7), lossjax.sgd(0.1)),
                          lambda: optax.chain(optax.clip_by_block_rms(0.7), optax.sgd(0.1)), {}),
    "adaptive_grad_clip": (
        lambda: optax.chain(lossjax.adaptive_grad_clip(0.05), lossjax.sgd(0.1)),
        lambda: optax.chain(optax.adaptive_grad_clip(0.05), optax.sgd(0.1)), {}),
    "centralize": (lambda: optax.chain(lossjax.centralize(), lossjax.sgd(0.1)),
                   lambda: optax.chain(optax.centralize(), optax.sgd(0.1)), {}),
    "scale": (lambda: optax.chain(lossjax.scale(0.3), lossjax.sgd(0.1)),
              lambda: optax.chain(optax.scale(0.3), optax.sgd(0.1)), {}),
    "ema": (lambda: optax.chain(lossjax.ema(0.9), lossjax.sgd(0.1)),
            lambda: optax.chain(optax.ema(0.9), optax.sgd(0.1)), {}),
    "ema_no_debias": (lambda: optax.chain(lossjax.ema(0.8, debias=False), lossjax.sgd(0.1)),
                      lambda: optax.chain(optax.ema(0.8, debias=False), optax.sgd(0.1)), {}),
}

@pytest.mark.parametrize("name", PAIRS)
def test_trajectory_equals_optax(name):
    ours, theirs, bad_steps = PAIRS[name]
    (path, _), (expected, _) = run(ours(), theirs(), bad_steps=bad_steps)
    assert_same_path(path, expected)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(path))


def test_apply_if_finite_equals_optax_skips_the_poisoned_steps_and_counts_them():
    (path, state), (expected, theirs) = run(lossjax.apply_if_finite(lossjax.adam(1e-2), 2),
                                            optax.apply_if_finite(optax.adam(1e-2), 2),
                                            bad_steps=NAN_STEPS)
    assert_same_path(path, expected)
    still = [i for i in range(1, STEPS) if np.array_equal(path["w"][i], path["w"][i - 1])]
    assert still == sorted(NAN_STEPS)
    assert int(state.total_notfinite) == int(theirs.total_notfinite) == len(NAN_STEPS)
    assert int(state.notfinite_count) == int(theirs.notfinite_count) == 0
    assert bool(state.last_finite) and bool(theirs.last_finite)
    # Adam counted only the finite steps: the skipped ones left its state untouched.
    assert int(state.inner_state[0].count) == STEPS - len(NAN_STEPS)


def test_apply_if_finite_gives_up_after_too_many_in_a_row_like_optax():
    bad = {10: np.nan, 11: np.nan, 12: np.nan}
    (path, state), (expected, theirs) = run(lossjax.apply_if_finite(lossjax.sgd(0.1), 2),
                                            optax.apply_if_finite(optax.sgd(0.1), 2),
                                            bad_steps=bad)
    assert np.isfinite(path["w"][11]).all() and np.isnan(path["w"][12]).any()
    assert_same_path(path, expected)
    # the NaN went into the parameters: every later gradient is NaN too, and goes through
    assert int(state.total_notfinite) == int(theirs.total_notfinite) == STEPS - 10


def test_multi_steps_state_no_larger_than_optax_and_reports_updates():
    params = make_params()

    def nbytes(opt):
        shapes = jax.eval_shape(opt.init, params)
        return sum(np.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(shapes))

    # the same inner optimizer in both wrappers: the wrappers' own state is compared
    assert nbytes(lossjax.multi_steps(optax.adam(1e-2), 4)) <= nbytes(
        optax.MultiSteps(optax.adam(1e-2), 4).gradient_transformation())
    # beyond the inner state: one parameter-sized float32 buffer and two int32 counters
    ours = lossjax.multi_steps(lossjax.adam(1e-2), 4)
    param_bytes = sum(p.nbytes for p in jax.tree.leaves(params))
    assert nbytes(ours) - nbytes(lossjax.adam(1e-2)) == param_bytes + 8
    theirs = optax.MultiSteps(optax.adam(1e-2), 4)

    grads = jax.tree.map(jnp.ones_like, params)

    @jax.jit
    def flags(params):
        state, optax_state, out = ours.init(params), theirs.init(params), []
        for _ in range(9):
            _, state = ours.update(grads, state, params)
            _, optax_state = theirs.update(grads, optax_state, params)
            out.append((lossjax.multi_steps_has_updated(state), theirs.has_updated(optax_state)))
        return out, state

    out, state = flags(params)
    assert [bool(a) for a, _ in out] == [bool(b) for _, b in out] == [False, False, False,
                                                                     True] * 2 + [False]
    assert int(state.gradient_step) == 2 and int(state.mini_step) == 1


def test_multi_steps_mean_of_k_micro_batches_is_one_big_batch_step():
    params = make_params()
    micro = [jax.tree.map(lambda p, i=i: p * (i + 1.0), params) for i in range(4)]
    big = jax.tree.map(lambda *g: sum(g) / 4, *micro)

    @jax.jit
    def both(params):
        ours = lossjax.multi_steps(lossjax.adam(1e-2), 4)
        state = ours.init(params)
        for g in micro:
            updates, state = ours.update(g, state, params)
        adam = lossjax.adam(1e-2)
        return updates, adam.update(big, adam.init(params), params)[0]

    updates, expected = both(params)
    assert_same_path(updates, expected, rtol=1e-6, atol=1e-7)


def test_inject_hyperparams_learning_rate_changes_without_retrace():
    tx = lossjax.inject_hyperparams(lossjax.adamw)(learning_rate=1e-2, weight_decay=0.1)
    params = make_params()
    grads = jax.tree.map(jnp.ones_like, params)
    traces = []

    @jax.jit
    def step(state):
        traces.append(1)
        return tx.update(grads, state, params)

    state = tx.init(params)
    assert set(state.hyperparams) == {"learning_rate", "b1", "b2", "eps", "eps_root",
                                      "weight_decay"}
    _, state = step(state)
    probe = state
    u1, _ = step(probe)
    probe.hyperparams["learning_rate"] = jnp.asarray(1e-3, jnp.float32)
    u2, _ = step(probe)
    # Adam's direction does not depend on the rate: the update scales with it (u1 is the
    # optimizer as built, from float64 Python hyperparameters; u2 is rebuilt from their
    # float32 copies, so the directions differ by a few ulps)
    np.testing.assert_allclose(u2["w"], 0.1 * np.asarray(u1["w"]), rtol=1e-5)
    probe.hyperparams["learning_rate"] = jnp.asarray(0.0, jnp.float32)
    assert not np.any(np.asarray(step(probe)[0]["w"]))
    assert len(traces) == 1
    # as optax's: sgd's momentum is injected too (only momentum=None means no buffer)
    sgd = lossjax.inject_hyperparams(lossjax.sgd)(learning_rate=0.1, momentum=0.9)
    assert set(sgd.init(params).hyperparams) == {"learning_rate", "momentum"}


def test_lookahead_equals_optax():
    def trajectory(opt, params):
        def step(carry, noise):
            params, state = carry
            grads = jax.tree.map(lambda x, n: 0.5 * x + n, params.fast, noise)
            updates, state = opt.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), (params.fast, params.slow)

        state = opt.init(params)
        return jax.lax.scan(step, (params, state), gradient_noise())[1]

    def both(params):
        return [(trajectory(lossjax.lookahead(lossjax.adam(0.1), 5, 0.5, reset),
                            lossjax.LookaheadParams.init_synced(params)),
                 trajectory(optax.lookahead(optax.adam(0.1), 5, 0.5, reset),
                            optax.LookaheadParams.init_synced(params)))
                for reset in (False, True)]

    for ours, theirs in jax.jit(both)(make_params()):
        # Adam's bias correction rounds differently in float32 (−expm1(t·log b) here)
        assert_same_path(ours, theirs, rtol=1e-4, atol=1e-5)


def test_ema_params_is_the_debiased_average_float64_reference():
    decay = 0.9
    (path, state), (swa_path, swa_state) = run(
        optax.chain(lossjax.adam(1e-2), lossjax.ema_params(decay)),
        optax.chain(lossjax.sgd(0.05), lossjax.ema_params(1.0)))
    average = lossjax.averaged_params(state)
    for key in ("w", "b"):
        weights = (1 - decay) * decay ** np.arange(STEPS - 1, -1, -1, dtype=np.float64)
        expected = np.tensordot(weights, np.asarray(path[key], np.float64), 1) / weights.sum()
        np.testing.assert_allclose(average[key], expected, rtol=1e-5, atol=1e-6)
    # decay = 1: the equal-weight (SWA) average
    np.testing.assert_allclose(lossjax.averaged_params(swa_state)["w"],
                               np.mean(np.asarray(swa_path["w"], np.float64), 0), rtol=1e-5)


def composed_optimizers():
    return {
        "nan_safe_accumulation": lossjax.apply_if_finite(lossjax.multi_steps(optax.chain(
            lossjax.clip_by_global_norm(1.0), lossjax.adamw(1e-2)), 4), 3),
        "frozen_backbone": lossjax.partition(
            {"train": lossjax.adamw(1e-2), "frozen": lossjax.freeze(True)},
            {"w": "train", "b": "frozen", "conv": "frozen"}),
        "ema_last": optax.chain(lossjax.adam(1e-2), lossjax.ema_params(0.9)),
    }


@pytest.mark.parametrize("name", list(composed_optimizers()))
def test_composition_jits_and_survives_an_orbax_round_trip(name, tmp_path):
    import orbax.checkpoint as ocp

    opt = composed_optimizers()[name]
    whole, _ = run(opt, bad_steps=NAN_STEPS if name == "nan_safe_accumulation" else None)
    half = {k: v[STEPS // 2 - 1] for k, v in whole.items()}
    # the first half, then save, restore into a fresh structure and continue
    first, state = run_steps(opt, make_params(), 0, STEPS // 2, name)
    np.testing.assert_array_equal(first["w"], half["w"])
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "ckpt", (first, state))
    with ocp.StandardCheckpointer() as checkpointer:
        target = jax.eval_shape(lambda: (first, state))
        restored_params, restored = checkpointer.restore(tmp_path / "ckpt", target)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    final, final_state = run_steps(opt, restored_params, STEPS // 2, STEPS, name, restored)
    for key in final:
        np.testing.assert_array_equal(final[key], whole[key][-1])
    if name == "frozen_backbone":
        np.testing.assert_array_equal(final["b"], make_params()["b"])
        assert not np.array_equal(final["w"], make_params()["w"])


def run_steps(opt, params, start, stop, name, state=None):
    """Steps ``start … stop−1`` of :func:`run`, one jitted call each."""
    noise = gradient_noise()
    values, bad = poison(NAN_STEPS if name == "nan_safe_accumulation" else {})
    state = opt.init(params) if state is None else state

    @jax.jit
    def step(params, state, noise, value, is_bad):
        updates, state = opt.update(poisoned_gradient(params, noise, value, is_bad), state,
                                    params)
        return optax.apply_updates(params, updates), state

    for i in range(start, stop):
        params, state = step(params, state, {k: n[i] for k, n in noise.items()}, values[i],
                             bad[i])
    return params, state


def test_compositions_train_inside_flax_nnx_optimizer():
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.backbone = nnx.Linear(8, 16, rngs=rngs)
            self.head = nnx.Linear(16, 4, rngs=rngs)

        def __call__(self, x):
            return self.head(jnp.tanh(self.backbone(x)))

    x = jax.random.normal(jax.random.key(3), (64, 8), jnp.float32)
    y = (x[:, 0] > 0).astype(jnp.int32) + 2 * (x[:, 1] > 0).astype(jnp.int32)

    def backbone_frozen(state):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "frozen" if "backbone" in jax.tree_util.keystr(path) else "train",
            state)

    optimizers = {
        "nan_safe_accumulation": lambda: lossjax.apply_if_finite(lossjax.multi_steps(
            optax.chain(lossjax.clip_by_global_norm(1.0), lossjax.adamw(3e-2)), 2), 3),
        "frozen_backbone": lambda: lossjax.partition(
            {"train": lossjax.adamw(3e-2), "frozen": lossjax.freeze(True)}, backbone_frozen),
        "ema_last": lambda: optax.chain(lossjax.adam(3e-2), lossjax.ema_params(0.9)),
    }
    for name, make in optimizers.items():
        model = Model(nnx.Rngs(0))
        backbone = np.asarray(model.backbone.kernel[...])
        tx = make()
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

        @nnx.jit
        def train_step(model, optimizer):
            loss, grads = nnx.value_and_grad(
                lambda m: lossjax.softmax_cross_entropy_with_integer_labels(m(x), y))(model)
            optimizer.update(model, grads)
            return loss

        first = float(train_step(model, optimizer))
        for _ in range(19):
            last = float(train_step(model, optimizer))
        assert last < 0.7 * first, name
        if name == "frozen_backbone":
            np.testing.assert_array_equal(model.backbone.kernel[...], backbone)
        if name == "ema_last":
            average = lossjax.averaged_params(optimizer.opt_state)
            assert isinstance(average["head"]["kernel"], jax.Array)
            assert average["head"]["kernel"].shape == (16, 4)
        if name == "nan_safe_accumulation":
            # 20 calls, k = 2: the last one completed a window
            assert bool(lossjax.multi_steps_has_updated(optimizer.opt_state))


@pytest.mark.parametrize("build, name", [
    (lambda: lossjax.multi_steps(lossjax.sgd(0.1), 0), "every_k_schedule"),
    (lambda: lossjax.multi_steps(lossjax.sgd(0.1), 2.5), "every_k_schedule"),
    (lambda: lossjax.apply_if_finite(lossjax.sgd(0.1), -1), "max_consecutive_errors"),
    (lambda: lossjax.ema(1.5), "decay"),
    (lambda: lossjax.ema(-0.1), "decay"),
    (lambda: lossjax.ema_params(1.01), "decay"),
    (lambda: lossjax.lookahead(lossjax.sgd(0.1), 0, 0.5), "sync_period"),
    (lambda: lossjax.lookahead(lossjax.sgd(0.1), 5, 1.5), "slow_step_size"),
    (lambda: lossjax.clip(-1.0), "max_delta"),
    (lambda: lossjax.clip_by_block_rms(0.0), "threshold"),
    (lambda: lossjax.adaptive_grad_clip(0.0), "clipping"),
    (lambda: lossjax.inject_hyperparams(lossjax.sgd, static_args="lr"), "static_args"),
    (lambda: lossjax.partition({"a": lossjax.sgd(0.1)}, {"w": "a", "b": "bias", "conv": "a"}
                               ).init(make_params()), "'bias'"),
    (lambda: lossjax.masked(lossjax.sgd(0.1), {"w": 1, "b": 0, "conv": 1}).init(make_params()),
     "mask"),
])
def test_bad_arguments_raise_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_inject_hyperparams_evaluates_schedules_for_number_only_arguments():
    # scale's step_size and trace's decay take numbers: the schedule is evaluated at its
    # own count each step and the transformation rebuilt from the value (optax's rule).
    sched = lossjax.schedules.piecewise_constant(3.0, {1: 5.0, 3: 2.0})  # 3, 15, 15, 30, ...
    tx = lossjax.inject_hyperparams(lossjax.scale)(step_size=sched)
    params = [jnp.zeros([], jnp.float32)]
    state = tx.init(params)
    update = jax.jit(tx.update)
    got = []
    for _ in range(5):
        updates, state = update([jnp.ones([], jnp.float32)], state)
        got.append(float(updates[0]))
    assert got == [3.0, 15.0, 15.0, 30.0, 30.0]
    momentum = lossjax.inject_hyperparams(lossjax.trace)(
        decay=lossjax.schedules.piecewise_constant(0.5, {2: 0.0}))
    state = momentum.init(params)
    traces = []
    for _ in range(3):  # t ← decay·t + g with decay 0.5, 0.5, 0.0
        _, state = jax.jit(momentum.update)([jnp.ones([])], state)
        traces.append(float(state.inner_state.trace[0]))
    assert traces == [1.0, 1.5, 1.0]


class _RunningSum:
    """An optax stateful schedule: its value is the sum of the ``addend`` seen so far and
    the current one (``init`` evaluates it without extra arguments, as optax's does)."""

    def init(self):
        return jnp.zeros([], jnp.float32)

    def update(self, state, **extra_args):
        return state + extra_args["addend"]

    def __call__(self, state, **extra_args):
        return state + extra_args.get("addend", 0.0)


def test_inject_hyperparams_takes_optax_stateful_schedules():
    tx = lossjax.inject_hyperparams(lossjax.scale)(step_size=_RunningSum())
    params = (jnp.ones(3, jnp.float32),)
    state = jax.jit(tx.init)(params)
    step = jax.jit(tx.update)
    updates, state = step(params, state, params, addend=jnp.float32(0.25))
    np.testing.assert_allclose(updates[0], 0.25)  # value: state 0 + addend
    updates, state = step(params, state, params, addend=jnp.float32(0.5))
    np.testing.assert_allclose(updates[0], 0.75)  # state 0.25 + addend 0.5
    np.testing.assert_allclose(state.hyperparams["step_size"], 0.75)
    np.testing.assert_allclose(state.hyperparams_states["step_size"], 0.75)


def test_masked_state_has_optaxs_layout_for_prefix_masks_and_works_with_map_params():
    params = {"a": [jnp.ones(1), (jnp.ones(2), jnp.ones(3))],
              "b": {"c": jnp.ones(4), "d": jnp.ones(5)}}
    mask = {"a": [True, (True, False)], "b": False}  # "b": one bool for a sub-tree
    ours = lossjax.masked(lossjax.trace(0.9), mask)
    theirs = optax.masked(optax.trace(0.9), mask)
    state = ours.init(params)
    # One MaskedNode for the whole of "b", as optax's (a checkpoint restores into either).
    assert str(jax.tree.structure(state)) == str(jax.tree.structure(theirs.init(params)))
    assert isinstance(state.inner_state.trace["b"], optax.MaskedNode)
    updates, _ = ours.update(params, state)
    np.testing.assert_array_equal(updates["b"]["c"], params["b"]["c"])  # passed through
    # optax.tree.map_params hands init a stand-in for the parameters (no mask applies).
    doubled = optax.tree.map_params(ours, lambda x: 2 * x + 1, state)
    np.testing.assert_array_equal(doubled.inner_state.trace["a"][0], jnp.ones(1))


def test_masked_takes_a_callable_pytree_as_a_mask_tree():
    # An equinox-like module is callable, but as a mask it is a tree of bools.
    class Module:
        def __init__(self, w):
            self.w = w

        def __call__(self, x):
            return self.w * x

    jax.tree_util.register_pytree_node(Module, lambda m: ((m.w,), None),
                                       lambda _, c: Module(*c))
    module = Module(jnp.array([1.0, 2.0]))
    tx = lossjax.masked(lossjax.scale(10.0), Module(False))
    updates, _ = tx.update(module, tx.init(module))
    np.testing.assert_array_equal(updates.w, module.w)
    tx = lossjax.masked(lossjax.scale(10.0), Module(True))
    np.testing.assert_array_equal(tx.update(module, tx.init(module))[0].w, 10 * module.w)


def test_a_numpy_scalar_bool_is_a_mask():
    g = {"a": jnp.ones(2), "b": jnp.ones(3)}
    frozen = lossjax.freeze(np.array(True))
    np.testing.assert_array_equal(frozen.update(g, frozen.init(g))[0]["b"], jnp.zeros(3))
    free = lossjax.freeze(np.array(False))
    np.testing.assert_array_equal(free.update(g, free.init(g))[0]["b"], g["b"])
    with pytest.raises(ValueError, match="mask leaves must be Python bools"):
        lossjax.freeze(np.array([True, False])).init(g)

"""L-BFGS, the zoom line search and Polyak's step size: against optax 0.2.8 and from the
formulas (Wolfe conditions checked independently at every accepted step)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax


def least_squares(dtype, n=64, d=20):
    """A consistent system (the minimum is 0: Polyak's ``f_min``), dict params."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    x, y = jnp.asarray(x, dtype), jnp.asarray(x @ rng.normal(size=d) + 0.5, dtype)

    def f(p):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    return f, {"w": jnp.zeros(d, dtype), "b": jnp.zeros((), dtype)}


def logistic(dtype, n=64, d=10):
    """A non-quadratic loss ``f(params, x, labels)``, so the line search does more than
    accept η = 1; returns it, the initial params and the data as keyword arguments."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, d))
    data = {"x": jnp.asarray(x, dtype),
            "labels": jnp.asarray(np.sign(x @ rng.normal(size=d) + 0.3), dtype)}

    def f(p, x, labels):
        return jnp.mean(jax.nn.softplus(-labels * (x @ p["w"] + p["b"]))) + 0.01 * jnp.sum(
            p["w"] ** 2)

    return f, {"w": jnp.zeros(d, dtype), "b": jnp.zeros((), dtype)}, data


def rosenbrock(w):
    return jnp.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2)


def line_search_run(opt, f, steps, value_and_grad_from_state, data):
    """The documented three-line loop, ``steps`` times in a ``lax.scan``, ``data`` passed
    to ``f`` as keyword arguments: a function of the initial params that returns the
    scan's final carry and every iterate, stacked, with every step's line-search info."""
    value_and_grad = value_and_grad_from_state(f)

    def step(carry, _):
        params, state = carry
        value, grad = value_and_grad(params, state=state, **data)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f,
                                    **data)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state[-1].info)

    return lambda params: jax.lax.scan(step, (params, opt.init(params)), length=steps)


def with_start(params, iterates):
    """``iterates`` as NumPy arrays, ``params`` first."""
    return jax.tree.map(lambda p, rest: np.concatenate([np.asarray(p)[None], rest]),
                        params, iterates)


def both_line_search(make_ours, make_theirs, f, params, steps, data=None, apart=False):
    """Both trajectories, and lossjax's line-search infos: one jitted function (one
    compilation), or with ``apart`` one each, the structure the tolerance was set for."""
    ours = line_search_run(make_ours(), f, steps, lossjax.value_and_grad_from_state,
                           data or {})
    theirs = line_search_run(make_theirs(), f, steps, optax.value_and_grad_from_state,
                             data or {})
    if apart:
        (_, (ours, info)), (_, (theirs, _)) = jax.jit(ours)(params), jax.jit(theirs)(params)
    else:
        (_, (ours, info)), (_, (theirs, _)) = jax.jit(lambda p: (ours(p), theirs(p)))(params)
    return with_start(params, ours), with_start(params, theirs), info


def assert_same_trajectory(ours, theirs, rtol, atol):
    moved = max(float(np.max(np.abs(x[-1] - x[0]))) for x in jax.tree.leaves(theirs))
    assert moved > 0.1  # the trajectory really went somewhere
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=atol),
                 ours, theirs)


def first_index(flags):
    """The first iteration at which ``flags`` holds (the run must reach it)."""
    assert np.any(flags), "not reached"
    return int(np.argmax(flags))


def test_lbfgs_trajectory_equals_optax_float64_rosenbrock():
    # From (-1.2, 1), optax's defaults: same iterates, so the same iteration count.
    with jax.enable_x64(True):
        w0 = jnp.array([-1.2, 1.0], jnp.float64)
        # apart: one program for both fuses differently, and by step 25 Rosenbrock has
        # grown that rounding difference to 2.6e-9 (relative), past the rtol of 1e-9
        ours, theirs, _ = both_line_search(lossjax.lbfgs, optax.lbfgs, rosenbrock, w0, 40,
                                           apart=True)
    assert_same_trajectory(ours, theirs, rtol=1e-9, atol=1e-9)
    at_minimum = np.max(np.abs(ours - 1.0), axis=1) <= 1e-8
    assert first_index(at_minimum) <= round(1.2 * first_index(
        np.max(np.abs(theirs - 1.0), axis=1) <= 1e-8))


def test_lbfgs_solves_ill_conditioned_50d_quadratic_within_optax_count():
    # float64: in float32 rounding alone leaves a gradient of about 1e-4 here.
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.normal(size=(50, 50)))
        hessian = jnp.asarray(q @ np.diag(np.logspace(0, 3, 50)) @ q.T)  # condition 1e3
        target = jnp.asarray(rng.normal(size=50))

        def f(w):
            return 0.5 * (w - target) @ hessian @ (w - target)

        ours, theirs, _ = both_line_search(lossjax.lbfgs, optax.lbfgs, f, jnp.zeros(50), 320)
        grad = jax.jit(jax.vmap(jax.grad(f)))  # one compilation, not op by op
        norms = [np.linalg.norm(grad(w), axis=1) for w in (ours, theirs)]
    ours_count, theirs_count = (first_index(n <= 1e-6) for n in norms)
    assert ours_count <= round(1.2 * theirs_count), (ours_count, theirs_count)
    np.testing.assert_allclose(ours[ours_count], target, atol=1e-6)


def test_lbfgs_float32_trajectory_equals_optax_step_jits_once_reuses_value_and_grad():
    with jax.enable_x64(False):
        f, params, data = logistic(jnp.float32)

        def loss(p):
            return f(p, **data)

        runs = {}
        for module in (lossjax, optax):
            opt = module.lbfgs()
            value_and_grad = module.value_and_grad_from_state(loss)

            @jax.jit
            def step(p, state, opt=opt, value_and_grad=value_and_grad):
                value, grad = value_and_grad(p, state=state)
                updates, state = opt.update(grad, state, p, value=value, grad=grad,
                                            value_fn=loss)
                return optax.apply_updates(p, updates), state, value, grad

            # optax's initial state has weakly typed scalars: make them strong, or its
            # step compiles twice
            p, state = params, jax.tree.map(lambda x: jnp.asarray(x, x.dtype), opt.init(params))
            iterates, seen = [p], []
            for _ in range(25):
                p, state, value, grad = step(p, state)
                iterates.append(p)
                seen.append((value, grad))
            runs[module.__name__] = jax.tree.map(lambda *xs: np.stack(xs), *iterates)
            if module is lossjax:
                assert step._cache_size() == 1  # the whole step, compiled once
                values, grads = jax.tree.map(lambda *xs: np.stack(xs), *seen)
                stacked = runs["lossjax"]
                expected = jax.jit(jax.vmap(jax.value_and_grad(loss)))(
                    jax.tree.map(lambda x: x[:-1], stacked))
    assert_same_trajectory(runs["lossjax"], runs["optax"], rtol=1e-5, atol=1e-6)
    # from the second step on, value and grad come from the line search's last evaluation
    np.testing.assert_allclose(values, expected[0], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 grads, expected[1])


def test_every_argument_float64_trajectory_and_strong_wolfe_at_accepted_steps():
    c1, c2 = 1e-3, 0.5
    with jax.enable_x64(True):
        f, params, data = logistic(jnp.float64)
        ours, theirs, info = both_line_search(
            # a rate that float32 holds exactly: lossjax keeps a float rate in float32
            lambda: lossjax.lbfgs(0.75, 3, False, lossjax.scale_by_zoom_linesearch(
                10, 2.0, 0.0, 1.5, c1, c2, None, 1e-6, "keep")),
            lambda: optax.lbfgs(0.75, 3, False, optax.scale_by_zoom_linesearch(
                10, 2.0, 0.0, 1.5, c1, c2, None, 1e-6, "keep")),
            f, params, 25, data)  # the data reach f as keyword arguments of update
        values, grads = jax.jit(jax.vmap(jax.value_and_grad(lambda p: f(p, **data))))(ours)
        values = np.asarray(values)
    assert_same_trajectory(ours, theirs, rtol=1e-10, atol=1e-12)
    flat_grads = np.concatenate([grads["b"][:, None], grads["w"]], axis=1)
    flat = np.concatenate([ours["b"][:, None], ours["w"]], axis=1)
    # the steps the search accepted (both errors 0; else it fell back on its best point)
    accepted = (np.asarray(info.decrease_error) == 0) & (np.asarray(info.curvature_error) == 0)
    checked = 0
    for k in np.flatnonzero(accepted):
        if np.linalg.norm(flat_grads[k]) < 1e-7:  # converged: rounding rules from here on
            break
        step = flat[k + 1] - flat[k]
        slope0, slope1 = flat_grads[k] @ step, flat_grads[k + 1] @ step
        assert slope0 < 0  # a descent direction
        assert values[k + 1] <= values[k] + c1 * slope0  # sufficient decrease (Armijo)
        assert abs(slope1) <= c2 * abs(slope0)  # strong curvature condition
        checked += 1
    assert checked >= 8


def test_failed_search_falls_back_on_best_decreasing_step_and_reports(capsys):
    # φ(η) = f(w − 0.2·η·w): η = 1 decreases f but misses curvature (c2 = 0.1); the next
    # try, η = 20, overshoots; two evaluations allowed, so the search fails and takes η = 1.
    def f(w):
        return jnp.sum(w**2)

    tx = lossjax.scale_by_zoom_linesearch(2, increase_factor=20.0, curv_rtol=0.1,
                                          initial_guess_strategy="one", verbose=True)
    w = jnp.array([1.0, -2.0], jnp.float32)
    value, grad = jax.value_and_grad(f)(w)
    update = jax.jit(lambda u, w, v, g: tx.update(u, tx.init(w), w, value=v, grad=g, value_fn=f))
    updates, state = update(-0.1 * grad, w, value, grad)
    jax.effects_barrier()
    np.testing.assert_allclose(updates, -0.2 * w, rtol=1e-6)
    assert int(state.info.num_linesearch_steps) == 2
    assert float(state.info.decrease_error) > 0  # the last point tried, η = 20
    np.testing.assert_allclose(state.learning_rate, 1.0)
    np.testing.assert_allclose(state.value, f(0.8 * w), rtol=1e-6)
    np.testing.assert_allclose(state.grad, 1.6 * w, rtol=1e-6)
    assert "no step size met both Wolfe conditions" in capsys.readouterr().out


def test_keyword_arguments_of_update_reach_value_fn_python_values_as_python_values():
    def f(w, x, scale_up):
        return jnp.sum((w - x) ** 2) * (4.0 if scale_up else 1.0)  # a Python branch

    w, x = jnp.zeros(2, jnp.float32), jnp.array([1.0, -2.0], jnp.float32)
    tx = lossjax.scale_by_zoom_linesearch(10)
    for scale_up in (True, False):
        value, grad = jax.value_and_grad(f)(w, x, scale_up)
        updates, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=f,
                                   x=x, scale_up=scale_up)
        np.testing.assert_allclose(state.value, f(w + updates, x, scale_up), rtol=1e-6)
        assert float(state.value) < float(value)
    with pytest.raises(TypeError, match="batch"):
        tx.update(-w, tx.init(w), w, value=f(w, w, False), grad=w, value_fn=f, x=w,
                  scale_up=False, batch=1)
    with pytest.raises(ValueError, match="value"):
        lossjax.value_and_grad_from_state(f)(w, w, False, state=lossjax.adam(1e-3).init(w))


def test_scale_by_lbfgs_against_numpy_two_loop():
    rng = np.random.default_rng(3)
    ws, gs = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    tx = lossjax.scale_by_lbfgs(memory_size=3)
    with jax.enable_x64(True):
        update = jax.jit(tx.update)
        state = tx.init(jnp.zeros(6))
        for w, g in zip(ws, gs, strict=True):
            out, state = update(jnp.asarray(g), state, jnp.asarray(w))
    # The textbook recursion (N&W Algorithm 7.4) on the last 3 pairs.
    pairs = [(ws[i] - ws[i - 1], gs[i] - gs[i - 1]) for i in range(2, 5)]
    q = gs[-1].copy()
    alphas = []
    for s, y in reversed(pairs):
        alphas.append((s @ q) / (y @ s))
        q -= alphas[-1] * y
    s, y = pairs[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y), alpha in zip(pairs, reversed(alphas), strict=True):
        r += (alpha - (y @ r) / (y @ s)) * s
    np.testing.assert_allclose(out, r, rtol=1e-10)


def polyak_run(opt, f, steps):
    """A function of the initial params that returns ``steps`` iterates, stacked."""
    def step(carry, _):
        params, state = carry
        value, grad = jax.value_and_grad(f)(params)
        updates, state = opt.update(grad, state, params, value=value)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    return lambda params: jax.lax.scan(step, (params, opt.init(params)), length=steps)[1]


POLYAK_CONFIGS = {
    "defaults": {},
    "every_argument": dict(max_learning_rate=0.05, scaling=0.75, f_min=-0.01, eps=1e-3,
                           variant="sps+"),
    "schedule": dict(scaling=optax.linear_schedule(1.0, 0.5, 20)),
}


@pytest.mark.parametrize("config, x64", [("defaults", False), ("every_argument", False),
                                         ("every_argument", True), ("schedule", False)])
def test_polyak_sgd_trajectory_equals_optax(config, x64):
    kwargs = POLYAK_CONFIGS[config]
    with jax.enable_x64(x64):
        f, params = least_squares(jnp.float64 if x64 else jnp.float32)
        ours = polyak_run(lossjax.polyak_sgd(**kwargs), f, 30)
        theirs = polyak_run(optax.polyak_sgd(**kwargs), f, 30)
        ours, theirs = jax.jit(lambda p: (ours(p), theirs(p)))(params)  # one compilation
        ours, theirs = with_start(params, ours), with_start(params, theirs)
    rtol, atol = (1e-12, 1e-12) if x64 else (1e-5, 1e-6)
    assert_same_trajectory(ours, theirs, rtol, atol)


def test_scale_by_polyak_against_formula():
    g = {"a": jnp.array([1.0, -2.0], jnp.float32), "b": jnp.array(2.0, jnp.float32)}
    sq = 1.0 + 4.0 + 4.0
    for variant, value, f_min, eps, max_lr, step in [
            ("sps", 3.0, 0.5, 1.0, 1.0, (3.0 - 0.5) / (sq + 1.0)),
            ("sps", 30.0, 0.0, 0.0, 0.5, 0.5),  # capped at max_learning_rate
            ("sps", -1.0, 0.0, 0.0, 1.0, -1.0 / sq),  # below f_min: uphill with "sps"
            ("sps+", -1.0, 0.0, 0.0, 1.0, 0.0)]:  # ...and no step with "sps+"
        tx = lossjax.scale_by_polyak(f_min, max_lr, eps, variant)
        out, _ = tx.update(g, tx.init(g), value=jnp.float32(value))
        np.testing.assert_allclose(out["a"], step * np.array([1.0, -2.0]), rtol=1e-6)
        np.testing.assert_allclose(out["b"], step * 2.0, rtol=1e-6)
    zeros = jax.tree.map(jnp.zeros_like, g)  # zero gradient: step 0, not 0/0
    out, _ = lossjax.scale_by_polyak().update(zeros, optax.EmptyState(), value=1.0)
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(out))


def test_states_are_named_tuples_of_arrays_and_dtypes_are_stable():
    params = {"w": jax.ShapeDtypeStruct((3, 2), jnp.bfloat16),
              "b": jax.ShapeDtypeStruct((2,), jnp.float32)}

    def f(p):
        return jnp.sum(p["w"].astype(jnp.float32) ** 2) + jnp.sum((p["b"] - 2.0) ** 2)

    for opt in (lossjax.lbfgs(memory_size=4), lossjax.polyak_sgd()):
        state = jax.eval_shape(opt.init, params)
        assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(state))
        # one update, traced (eval_shape): same state types out as in, updates like params
        updates, new = jax.eval_shape(
            lambda s, p, opt=opt: opt.update(p, s, p, value=f(p), grad=p, value_fn=f),
            state, params)
        assert jax.tree.map(jax.typeof, new) == jax.tree.map(jax.typeof, state)
        assert jax.tree.map(jax.typeof, updates) == jax.tree.map(jax.typeof, params)
    lbfgs_state = jax.eval_shape(lossjax.lbfgs(memory_size=4).init, params)
    assert isinstance(lbfgs_state[0], lossjax.ScaleByLBFGSState)
    assert isinstance(lbfgs_state[-1], lossjax.ScaleByZoomLinesearchState)
    memory = lbfgs_state[0].diff_params_memory["w"]
    assert memory.shape == (4, 3, 2) and memory.dtype == jnp.float32  # half params: f32


@pytest.mark.parametrize("make, match", [
    (lambda: lossjax.lbfgs(-1.0), "learning_rate"),
    (lambda: lossjax.lbfgs(memory_size=0), "memory_size"),
    (lambda: lossjax.scale_by_lbfgs(memory_size=2.5), "memory_size"),
    (lambda: lossjax.scale_by_zoom_linesearch(0), "max_linesearch_steps"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, max_learning_rate=0.0), "max_learning_rate"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, tol=-1e-3), "tol"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, increase_factor=1.0), "increase_factor"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, slope_rtol=0.0), "slope_rtol"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, slope_rtol=1.5), "slope_rtol"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, curv_rtol=1.0), "curv_rtol"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, slope_rtol=0.5, curv_rtol=0.4), "curv_rtol"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, approx_dec_rtol=-1.0), "approx_dec_rtol"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, stepsize_precision=-1.0),
     "stepsize_precision"),
    (lambda: lossjax.scale_by_zoom_linesearch(10, initial_guess_strategy="two"),
     "initial_guess_strategy"),
    (lambda: lossjax.polyak_sgd(max_learning_rate=-1.0), "max_learning_rate"),
    (lambda: lossjax.polyak_sgd(scaling=-0.5), "scaling"),
    (lambda: lossjax.polyak_sgd(eps=-1e-8), "eps"),
    (lambda: lossjax.polyak_sgd(variant="sps-"), "variant"),
])
def test_bad_hyperparameters_raise_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_curvature_condition_can_be_dropped():
    tx = lossjax.scale_by_zoom_linesearch(10, curv_rtol=float("inf"))
    w = jnp.array([2.0], jnp.float32)

    def f(w):
        return jnp.sum(w**2)

    value, grad = jax.value_and_grad(f)(w)
    updates, state = jax.jit(lambda: tx.update(-grad, tx.init(w), w, value=value, grad=grad,
                                               value_fn=f))()
    assert float(state.info.curvature_error) == 0.0
    assert float(f(w + updates)) < float(value)


def test_lbfgs_on_complex_parameters_follows_optax_and_the_real_problem():
    # A complex problem is the real problem in (Re w, Im w): L-BFGS's inner products are
    # Re Σ conj(a)·b. The caller conjugates jax.grad's gradient, as optax asks.
    mat = jnp.array([[1, -2], [3, 4], [-4 + 2j, 5 - 3j], [-2 - 2j, 6]], jnp.complex64)

    def f(z):
        return jnp.sum(jnp.abs(mat @ z) ** 1.5)

    def f_real(x):
        return f(x[0] + 1j * x[1])

    def run(opt, fn, w, steps=8):
        state, out = opt.init(w), []
        for _ in range(steps):
            value, grad = jax.value_and_grad(fn)(w)
            grad = optax.tree.conj(grad)
            updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=fn)
            w = optax.apply_updates(w, updates)
            out.append(w)
        return np.asarray(out), state

    z0 = jnp.array([1 - 1j, 1j], jnp.complex64)
    got, state = run(lossjax.lbfgs(), f, z0)
    want, _ = run(optax.lbfgs(), f, z0)
    real, _ = run(lossjax.lbfgs(), f_real, jnp.stack([z0.real, z0.imag]))
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got, real[:, 0] + 1j * real[:, 1], atol=1e-5)
    assert f(got[-1]) < 1e-2 * f(z0)
    assert state[0].weights_memory.dtype == jnp.float32  # ρ is real


@pytest.mark.parametrize("params_dtype,constants_dtype",
                         [(jnp.float32, jnp.float64), (jnp.float64, jnp.float16),
                          (jnp.bfloat16, jnp.float32)])
def test_zoom_linesearch_constants_as_arrays_of_another_dtype(x64, params_dtype,
                                                              constants_dtype):
    # Array constants of another dtype used to change the search loop's carry dtype.
    constants = {"tol": 0.0, "increase_factor": 2.0, "slope_rtol": 1e-4, "curv_rtol": 0.9,
                 "approx_dec_rtol": 1e-6, "stepsize_precision": 1e-5,
                 "max_learning_rate": 4.0}
    tx = lossjax.scale_by_zoom_linesearch(
        5, **{k: jnp.asarray(v, constants_dtype) for k, v in constants.items()})

    def f(w):
        return jnp.sum((w - 3.0) ** 2).astype(constants_dtype)

    w = jnp.array([0.0, 1.0], params_dtype)
    state = tx.init(w)
    grad = jax.grad(f)(w)
    updates, new_state = jax.jit(lambda: tx.update(-grad, state, w, value=f(w), grad=grad,
                                                   value_fn=f))()
    assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)
    np.testing.assert_allclose(np.asarray(updates, np.float64), -np.asarray(
        grad, np.float64) * 0.5, rtol=1e-2)  # η = 1/2 is exact on this quadratic


def test_value_and_grad_from_state_errors():
    params = jnp.array([1.0, 2.0])
    fetch = lossjax.value_and_grad_from_state(lambda w: jnp.sum(w**2))
    with pytest.raises(ValueError, match="found 0") as none:
        fetch(params, state=lossjax.scale_by_adam().init(params))
    assert not isinstance(none.value, KeyError)
    two = optax.chain(lossjax.scale_by_zoom_linesearch(3), lossjax.scale_by_zoom_linesearch(3))
    for error in (ValueError, KeyError):  # lossjax's bad input, and optax's error there
        with pytest.raises(error, match="found 2"):
            fetch(params, state=two.init(params))


def test_zoom_linesearch_names_keyword_arguments_value_fn_does_not_take():
    tx = lossjax.scale_by_zoom_linesearch(3)
    w = jnp.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"Unexpected keyword arguments \['unused'\]"):
        tx.update(-w, tx.init(w), w, value=1.0, grad=w, value_fn=lambda w, batch: 0.0,
                  batch=1.0, unused=2)


@pytest.mark.parametrize("case,cause", [
    ("ascent", "not a descent direction"),
    ("max_step", "reached max_learning_rate"),
    ("evaluations", "max_linesearch_steps evaluations were used"),
    ("accepted", None),
])
def test_verbose_search_names_why_the_step_misses_the_wolfe_conditions(capsys, case, cause):
    # f(w) = |w|² from w = ∓60·e0 along e0: the strong Wolfe step (c2 = 0.5) is η ≥ 30.
    def f(w):
        return jnp.dot(w, w)

    u = jnp.array([1.0, 0.0])
    steps, max_rate, w = {"ascent": (18, None, 60 * u), "max_step": (10, 10.0, -60 * u),
                          "evaluations": (5, None, -60 * u),
                          "accepted": (30, None, -60 * u)}[case]
    tx = lossjax.scale_by_zoom_linesearch(steps, max_learning_rate=max_rate, curv_rtol=0.5,
                                          verbose=True)
    _, state = jax.jit(lambda: tx.update(u, tx.init(w), w, value=f(w), grad=2 * w,
                                         value_fn=f))()
    jax.effects_barrier()
    out = capsys.readouterr().out
    if cause is None:
        assert out == "" and float(state.learning_rate) >= 30.0
    else:
        assert "no step size met both Wolfe conditions" in out and cause in out, out

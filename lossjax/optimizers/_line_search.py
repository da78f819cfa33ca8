"""L-BFGS and the zoom line search: the step size found by evaluating the loss along a line.

A full-batch loop, as optax documents it (the line search's last value and gradient are the
next step's, so each step costs the line search's evaluations only)::

    opt = lossjax.lbfgs()
    value_and_grad = lossjax.value_and_grad_from_state(f)
    state = opt.init(params)
    for _ in range(steps):
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        params = optax.apply_updates(params, updates)

The whole step (the three lines) jits; without an outer jit, each update still compiles
only once per ``value_fn``. Keyword arguments of ``update`` beyond ``value``, ``grad`` and
``value_fn`` are passed on to ``value_fn`` (e.g. a batch of data); Python values among them
(a ``train=True`` flag) reach it as Python values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    compute_dtype,
    dtype_of,
    full_like,
    increment_count,
    per_leaf,
    real_scalar_dtype,
    scale_by_constant,
    scale_leaf,
    shape_of,
    without_float0,
)
from lossjax.optimizers._transforms import (
    global_norm,
    scale_by_learning_rate,
)

Array = jax.Array
_GUESS_STRATEGIES = ("one", "keep")


def _inner(a: Any, b: Any) -> Array:
    """``⟨a, b⟩ = Re Σ conj(a)·b``: the dot product of real leaves, and for complex leaves
    that of their real and imaginary parts (``ℂⁿ`` as ``ℝ²ⁿ``)."""
    return jnp.real(optax.tree.vdot(a, b))


class ZoomLinesearchInfo(NamedTuple):
    """What the last line search did.

    ``num_linesearch_steps``: evaluations of the loss it made (int32);
    ``decrease_error``, ``curvature_error``: by how much the last point tried violates the
    sufficient-decrease and the curvature conditions (0 when it satisfies them). A positive
    curvature error alone is mild (e.g. ``max_learning_rate`` too small); a positive
    decrease error means the step may not have decreased the loss.
    """

    num_linesearch_steps: Array
    decrease_error: Array
    curvature_error: Array


class ScaleByZoomLinesearchState(NamedTuple):
    """``learning_rate``: the step size accepted last; ``value``, ``grad``: the loss and its
    gradient there (``value`` starts at ``inf``: nothing computed yet), which
    :func:`value_and_grad_from_state` reuses; ``info``: a :class:`ZoomLinesearchInfo`."""

    learning_rate: Array
    value: Array
    grad: Any
    info: ZoomLinesearchInfo


class _Point(NamedTuple):
    """A step size ``η`` on the line, ``f(w + η·u)`` and the slope ``⟨∇f(w + η·u), u⟩``."""

    stepsize: Array
    value: Array
    slope: Array


class _Search(NamedTuple):
    """The line search's loop carry (everything but the fixed start point and direction)."""

    count: Array
    trial: _Point  # the last point evaluated
    grad: Any  # the gradient at ``trial``
    decrease_error: Array
    curvature_error: Array
    bracketed: Array  # an interval holding an acceptable step is known: zoom into it
    done: Array
    failed: Array
    low: _Point  # the bracket's end with the lower value (not the smaller step size)
    high: _Point
    reference: _Point  # the third point of the cubic interpolation
    safe: _Point  # the best point that satisfies sufficient decrease (step 0 if none)
    safe_grad: Any


class _Wolfe(NamedTuple):
    """The acceptance test's constants (see :func:`scale_by_zoom_linesearch`)."""

    tol: float
    slope_rtol: float
    curv_rtol: float
    approx_dec_rtol: float | None


def _violation(error: Array) -> Array:
    """How much a condition ``error <= 0`` is violated; NaN (the loss left its domain) is inf."""
    error = jnp.maximum(error, 0.0)
    return jnp.where(jnp.isnan(error), jnp.inf, error)


def _decrease_error(trial: _Point, start: _Point, wolfe: _Wolfe) -> Array:
    """Violation of sufficient decrease: Armijo ``f(η) <= f(0) + c1·η·f'(0)``, or, once the
    loss is within ``approx_dec_rtol·|f(0)|`` of ``f(0)``, Hager-Zhang's approximate form
    ``f'(η) <= (2c1 − 1)·f'(0)`` (Armijo cannot see decreases below √ε there)."""
    armijo = trial.value - start.value - wolfe.slope_rtol * trial.stepsize * start.slope
    if wolfe.approx_dec_rtol is None:
        return _violation(armijo)
    approximate = jnp.maximum(
        trial.slope - (2 * wolfe.slope_rtol - 1.0) * start.slope,
        trial.value - start.value - wolfe.approx_dec_rtol * jnp.abs(start.value))
    return _violation(jnp.minimum(approximate, armijo))


def _curvature_error(trial: _Point, start: _Point, wolfe: _Wolfe) -> Array:
    """Violation of the strong curvature condition ``|f'(η)| <= c2·|f'(0)|``."""
    return _violation(jnp.abs(trial.slope) - wolfe.curv_rtol * jnp.abs(start.slope))


def _cubic_minimizer(a: _Point, b: _Point, c: _Point) -> Array:
    """The local minimiser of the cubic through ``a`` (value and slope), ``b`` and ``c``.

    With ``p(a + t) = p3·t³ + p2·t² + f'(a)·t + f(a)``, the values at ``b`` and ``c`` give a
    2×2 linear system for ``p3``, ``p2``; ``p'`` vanishes at ``t = (−p2 + √(p2² − 3·p3·f'(a)))
    / (3·p3)``. NaN or inf when there is none (coincident points, negative radicand): the
    caller's range check then rejects it.
    """
    db, dc = b.stepsize - a.stepsize, c.stepsize - a.stepsize
    rb = b.value - a.value - a.slope * db
    rc = c.value - a.value - a.slope * dc
    det = (db * dc) ** 2 * (db - dc)
    p3 = (dc**2 * rb - db**2 * rc) / det
    p2 = (db**3 * rc - dc**3 * rb) / det
    return a.stepsize + (-p2 + jnp.sqrt(p2 * p2 - 3.0 * p3 * a.slope)) / (3.0 * p3)


def _quadratic_minimizer(a: _Point, b: _Point) -> Array:
    """The minimiser of the parabola through ``a`` (value and slope) and ``b`` (value)."""
    db = b.stepsize - a.stepsize
    curvature = (b.value - a.value - a.slope * db) / db**2
    return a.stepsize - a.slope / (2.0 * curvature)


def _zoom_stepsize(low: _Point, high: _Point, reference: _Point) -> Array:
    """Next step size inside the bracket: the cubic's minimiser if it lies in the bracket's
    inner 60%, else the parabola's if in the inner 80%, else the midpoint (N&W §3.5)."""
    width = jnp.abs(high.stepsize - low.stepsize)
    left = jnp.minimum(low.stepsize, high.stepsize)
    right = jnp.maximum(low.stepsize, high.stepsize)

    def inside(x, margin):
        return (x > left + margin * width) & (x < right - margin * width)

    cubic = _cubic_minimizer(low, high, reference)
    quadratic = _quadratic_minimizer(low, high)
    midpoint = (low.stepsize + high.stepsize) / 2.0
    return jnp.where(inside(cubic, 0.2), cubic,
                     jnp.where(inside(quadratic, 0.1), quadratic, midpoint))


def _select(condition: Array, if_true: Any, if_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), if_true, if_false)


def _bracket_while_growing(s: _Search, trial: _Point, ok: Array, decrease_error: Array,
                           max_reached: Array) -> tuple[Any, ...]:
    """Phase 1 (N&W Algorithm 3.5): the step grows until it overshoots, which brackets an
    acceptable step between the previous and the new point."""
    previous = s.trial
    overshot = (decrease_error > 0.0) | ((trial.value >= previous.value) & (s.count > 0))
    past_minimum = (trial.slope >= 0.0) & ~overshot
    low, high = _select(past_minimum, (trial, previous), (previous, trial))
    bracketed = overshot | past_minimum | ok
    # At the largest step allowed and still descending: take it, curvature unmet.
    done = ok | (max_reached & ~bracketed)
    return low, high, low, bracketed, done, jnp.asarray(False)


def _shrink_bracket(s: _Search, trial: _Point, ok: Array, decrease_error: Array,
                    safe: _Point, precision: float) -> tuple[Any, ...]:
    """Phase 2 (N&W Algorithm 3.6): the bracket shrinks around the trial point."""
    low, high = s.low, s.high
    replaces_high = (decrease_error > 0.0) | (trial.value >= low.value)
    low_becomes_high = (trial.slope * (high.stepsize - low.stepsize) >= 0.0) & ~replaces_high
    new_high = _select(replaces_high, trial, _select(low_becomes_high, low, high))
    new_low = _select(replaces_high, low, trial)
    reference = _select(replaces_high | low_becomes_high, high, low)
    # A bracket narrower than the precision ends the search once some step decreases f
    # enough; without one it continues (very steep losses need tiny steps).
    too_narrow = jnp.abs(high.stepsize - low.stepsize) <= precision
    return new_low, new_high, reference, s.bracketed, ok, too_narrow & (safe.stepsize > 0.0)


def _zoom_linesearch(
    value_and_grad_fn: Callable[[Any], tuple[Array, Any]],
    params: Any,
    direction: Any,
    start: _Point,
    grad: Any,
    guess: Array,
    *,
    wolfe: _Wolfe,
    max_steps: int,
    max_stepsize: float | None,
    increase_factor: float,
    precision: float,
) -> _Search:
    """Search ``η`` along ``w + η·u`` for the strong Wolfe conditions; the final carry."""
    dtype = start.value.dtype

    def cast(x: Any) -> Any:  # constants given as arrays of another dtype keep the carry's
        return None if x is None else jnp.asarray(x, dtype)

    wolfe = _Wolfe(*(cast(v) for v in wolfe))
    max_stepsize, increase_factor, precision = map(cast, (max_stepsize, increase_factor,
                                                          precision))

    def evaluate(stepsize):
        point = jax.tree.map(lambda w, u: w + stepsize.astype(w.dtype) * u, params, direction)
        value, g = value_and_grad_fn(point)
        # jax.grad of a real loss of complex w is conj(∂f/∂Re w + i ∂f/∂Im w): conjugated
        # back, its inner product with the direction is the derivative along it.
        slope = _inner(optax.tree.conj(g), direction)
        return _Point(stepsize, jnp.asarray(value, dtype), jnp.asarray(slope, dtype)), g

    def step(s: _Search) -> _Search:
        grown = jnp.where(s.count == 0, guess, increase_factor * s.trial.stepsize)
        if max_stepsize is None:
            max_reached = jnp.asarray(False)
        else:
            max_reached = grown >= max_stepsize
            grown = jnp.minimum(grown, max_stepsize)
        stepsize = jnp.where(s.bracketed, _zoom_stepsize(s.low, s.high, s.reference), grown)
        trial, g = evaluate(stepsize.astype(dtype))
        decrease_error = _decrease_error(trial, start, wolfe)
        curvature_error = _curvature_error(trial, start, wolfe)
        ok = jnp.maximum(decrease_error, curvature_error) <= wolfe.tol
        # Keep the best point with sufficient decrease, in case curvature is never met.
        better = (decrease_error <= wolfe.tol) & (~s.bracketed | (trial.value < s.safe.value))
        safe, safe_grad = _select(better, (trial, g), (s.safe, s.safe_grad))
        low, high, reference, bracketed, done, stop = _select(
            s.bracketed,
            _shrink_bracket(s, trial, ok, decrease_error, safe, precision),
            _bracket_while_growing(s, trial, ok, decrease_error, max_reached))
        failed = ((s.count + 1 >= max_steps) | stop) & ~done
        return _Search(increment_count(s.count), trial, g, decrease_error, curvature_error,
                       bracketed, done, failed, low, high, reference, safe, safe_grad)

    inf = jnp.asarray(jnp.inf, dtype)
    false = jnp.asarray(False)
    initial = _Search(jnp.zeros([], jnp.int32), start, grad, inf, inf, false, false, false,
                      start, start, start, start, grad)
    return jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, initial)


def _holds_arrays(value: Any) -> bool:
    return any(isinstance(x, (jax.Array, np.ndarray, np.generic))
               for x in jax.tree.leaves(value))


def _compiled_once(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` under ``jax.jit``, arguments that hold no array (``value_fn``, a ``train=True``
    flag) static: an un-jitted loop then compiles the step's line search once instead of
    retracing it at every call (the closures inside are new each time), and Python values
    reach ``value_fn`` as Python values, as without jit. Under an outer jit it inlines."""

    @functools.lru_cache(maxsize=32)
    def compiled(static_argnums, static_argnames):
        return jax.jit(fn, static_argnums=static_argnums, static_argnames=static_argnames)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        argnums = tuple(i for i, a in enumerate(args) if not _holds_arrays(a))
        argnames = tuple(sorted(k for k, v in kwargs.items() if not _holds_arrays(v)))
        try:
            hash(tuple(args[i] for i in argnums) + tuple(kwargs[k] for k in argnames))
        except TypeError:  # an unhashable Python value (a list): run it traced as it is
            return fn(*args, **kwargs)
        return compiled(argnums, argnames)(*args, **kwargs)

    return call


def _split_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``fn`` takes (all of them if it takes ``**kwargs``)."""
    parameters = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    unused = sorted(set(kwargs) - set(parameters))
    if unused:
        raise TypeError(f"Unexpected keyword arguments {unused} passed to update(): value_fn "
                        "does not take them; pass only what value_fn accepts")
    return kwargs


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Scale the direction ``u`` by a step size ``η`` satisfying the strong Wolfe conditions.

    With ``φ(η) = f(w + η·u)``, ``φ'(η) = ⟨∇f(w + η·u), u⟩``, ``c1 = slope_rtol``,
    ``c2 = curv_rtol`` and ``ε = tol``, an accepted ``η`` satisfies

    - sufficient decrease (Armijo): ``φ(η) <= φ(0) + c1·η·φ'(0) + ε``, and
    - small curvature: ``|φ'(η)| <= c2·|φ'(0)| + ε``.

    Near a minimum, where ``φ(η) <= φ(0) + approx_dec_rtol·|φ(0)|``, the first may be met
    instead by Hager & Zhang's approximate form ``φ'(η) <= (2·c1 − 1)·φ'(0) + ε``, which
    sees decreases that rounding hides from Armijo (``approx_dec_rtol=None``: Armijo only).

    The search (Nocedal & Wright, Algorithms 3.5 and 3.6) first tries the initial guess and
    multiplies it by ``increase_factor`` until an interval holding an acceptable step is
    bracketed; it then zooms into the interval through cubic, else quadratic, else bisection
    steps. If ``max_linesearch_steps`` evaluations pass, or the interval becomes narrower
    than ``stepsize_precision``, it takes the best step with sufficient decrease found (the
    last step tried if there is none: convergence is then not guaranteed, see
    ``state.info``). Every evaluation costs one ``jax.value_and_grad(value_fn)``.

    ``update(updates, state, params, *, value, grad, value_fn, **kwargs)``: ``updates`` is
    the direction ``u`` (a descent direction: ``⟨grad, u⟩ < 0``), ``value`` and ``grad`` are
    ``f`` and ``∇f`` at ``params``, ``value_fn(params, **kwargs)`` is ``f``; the other keyword
    arguments go to ``value_fn`` (``TypeError`` if it does not take them). Returns ``η·u``.
    The state keeps the value and gradient at the accepted point: see
    :func:`value_and_grad_from_state`.

    Args:
      max_linesearch_steps: ``>= 1``, the most evaluations of ``value_fn`` per step.
      max_learning_rate: ``> 0``, the largest step size, or ``None`` for no bound.
      tol: ``>= 0``, slack ``ε`` in both conditions.
      increase_factor: ``> 1``, growth of the step while bracketing.
      slope_rtol: ``c1`` in ``(0, 1)``.
      curv_rtol: ``c2`` in ``(c1, 1)``; ``jnp.inf`` drops the curvature condition (a
        backtracking search for sufficient decrease by interpolation).
      approx_dec_rtol: ``>= 0`` or ``None``, see above.
      stepsize_precision: ``>= 0``, see above.
      initial_guess_strategy: ``"one"`` starts every search at ``η = 1`` (right for Newton
        and quasi-Newton directions such as L-BFGS); ``"keep"`` at the last accepted step
        (right for gradient directions).
      verbose: print a short diagnosis (from inside ``jit``) when a search fails.

    Wrong values raise ``ValueError`` naming the argument. PyTorch has no separate line
    search: ``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` runs its own, with the
    same ``c1 = 1e-4``, ``c2 = 0.9`` and at most 25 evaluations.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> def f(w): return jnp.sum((w - 3.0) ** 2)
      >>> opt = optax.chain(lossjax.sgd(1.0),
      ...                   lossjax.scale_by_zoom_linesearch(max_linesearch_steps=15))
      >>> w = jnp.zeros(2)
      >>> state = opt.init(w)
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
      >>> optax.apply_updates(w, updates)  # η = 1/2 is exact on a quadratic
      Array([3., 3.], dtype=float32)

    References: Nocedal & Wright, "Numerical Optimization" (2006), Algorithms 3.5 and 3.6;
    Hager & Zhang, "Algorithm 851: CG_DESCENT, a Conjugate Gradient Method with Guaranteed
    Descent" (2006), for the approximate Wolfe condition.
    """
    if not isinstance(max_linesearch_steps, int) or max_linesearch_steps < 1:
        raise ValueError(f"max_linesearch_steps must be an int >= 1, got {max_linesearch_steps!r}")
    if max_learning_rate is not None:
        check_positive("max_learning_rate", max_learning_rate)
    check_non_negative("tol", tol)
    if not increase_factor > 1.0:
        raise ValueError(f"increase_factor must be > 1, got {increase_factor!r}")
    check_positive("slope_rtol", slope_rtol)
    check_in_range("slope_rtol", slope_rtol, 0.0, 1.0)
    if not (slope_rtol < curv_rtol < 1.0 or curv_rtol == float("inf")):
        raise ValueError(f"curv_rtol must be in (slope_rtol, 1) = ({slope_rtol}, 1) or inf, "
                         f"got {curv_rtol!r}")
    if approx_dec_rtol is not None:
        check_non_negative("approx_dec_rtol", approx_dec_rtol)
    check_non_negative("stepsize_precision", stepsize_precision)
    if initial_guess_strategy not in _GUESS_STRATEGIES:
        raise ValueError(f"initial_guess_strategy must be one of {_GUESS_STRATEGIES}, "
                         f"got {initial_guess_strategy!r}")
    wolfe = _Wolfe(tol, slope_rtol, curv_rtol, approx_dec_rtol)
    scale = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        dtype = real_scalar_dtype(params)
        def inf():  # a fresh buffer per leaf: a step that donates the state frees each once
            return jnp.full([], jnp.inf, dtype)

        return ScaleByZoomLinesearchState(
            jnp.asarray(1.0, dtype), inf(), jax.tree.map(jnp.zeros_like, params),
            ZoomLinesearchInfo(jnp.zeros([], jnp.int32), inf(), inf()))

    @_compiled_once
    def update(updates, state, params, *, value, grad, value_fn, **kwargs):
        fn_kwargs = _split_kwargs(value_fn, kwargs)
        updates, grad = without_float0(updates), without_float0(grad)
        dtype = real_scalar_dtype(params)
        slope = jnp.asarray(_inner(updates, grad), dtype)
        start = _Point(jnp.zeros([], dtype), jnp.asarray(value, dtype), slope)
        guess = state.learning_rate if initial_guess_strategy == "keep" else jnp.ones([], dtype)
        s = _zoom_linesearch(
            lambda p: jax.value_and_grad(value_fn)(p, **fn_kwargs), params, updates, start,
            grad, guess, wolfe=wolfe, max_steps=max_linesearch_steps,
            max_stepsize=max_learning_rate, increase_factor=increase_factor,
            precision=stepsize_precision)
        # A failed search falls back on the safe point; also when the last point left the
        # loss's domain (inf/NaN), even if the safe point is the start (no step).
        fallback = s.failed & ((s.safe.stepsize > 0.0) | jnp.isinf(s.decrease_error))
        final, final_grad = _select(fallback, (s.safe, s.safe_grad), (s.trial, s.grad))
        if verbose:
            _report_failure(s, start, final.stepsize, tol, max_learning_rate,
                            stepsize_precision)
        (scaled,) = scale((updates,), (final.stepsize,))
        info = ZoomLinesearchInfo(s.count, s.decrease_error, s.curvature_error)
        return scaled, ScaleByZoomLinesearchState(final.stepsize, final.value, final_grad, info)

    return optax.GradientTransformationExtraArgs(init, update)


_CAUSES = (
    "the direction is not a descent direction (the slope at 0 should be negative)",
    "the step reached max_learning_rate with the curvature condition still unmet",
    "the bracket narrowed below stepsize_precision",
    "max_linesearch_steps evaluations were used",
)


def _report_failure(s: _Search, start: _Point, stepsize: Array, tol: float,
                    max_stepsize: float | None, precision: float) -> None:
    """Print, from inside ``jit``, why the step taken does not meet both Wolfe conditions
    (nothing when it does)."""
    unmet = s.failed | (jnp.maximum(s.decrease_error, s.curvature_error) > tol)
    at_max = (jnp.asarray(False) if max_stepsize is None
              else s.done & (s.trial.stepsize >= max_stepsize))
    narrow = jnp.abs(s.high.stepsize - s.low.stepsize) <= precision
    cause = jnp.select([start.slope >= 0.0, at_max, s.bracketed & narrow], [0, 1, 2], 3)

    def report(text):
        def print_it():
            jax.debug.print(
                "lossjax.scale_by_zoom_linesearch: no step size met both Wolfe conditions: "
                + text + "; {n} evaluations (slope at 0 {slope}, decrease error {d}, "
                "curvature error {c}); step size taken: {eta}", slope=start.slope, n=s.count,
                d=s.decrease_error, c=s.curvature_error, eta=stepsize, ordered=True)
        return print_it

    jax.lax.cond(unmet, lambda: jax.lax.switch(cause, [report(t) for t in _CAUSES]),
                 lambda: None)


class AmbiguousStateError(ValueError, KeyError):
    """More than one state holds ``value`` and ``grad``: a ``ValueError`` (lossjax's bad
    input) that is also the ``KeyError`` optax raises there."""

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


def _find_value_and_grad(state: Any) -> tuple[Array, Any]:
    """The ``value`` and ``grad`` fields of the one state in ``state`` that has both."""

    def holds_both(node):
        return isinstance(node, tuple) and {"value", "grad"} <= set(getattr(node, "_fields", ()))

    found = [n for n in jax.tree.leaves(state, is_leaf=holds_both) if holds_both(n)]
    if len(found) != 1:
        error = ValueError if not found else AmbiguousStateError
        raise error(
            f"state must hold exactly one state with `value` and `grad` fields (such as a "
            f"line search's), found {len(found)}")
    return found[0].value, found[0].grad


def value_and_grad_from_state(
    value_fn: Callable[..., Array],
) -> Callable[..., tuple[Array, Any]]:
    """``jax.value_and_grad(value_fn)`` that reuses the value and gradient in the state.

    The returned ``value_and_grad(params, *args, state, **kwargs)`` returns the ``value`` and
    ``grad`` the line search stored at the point it accepted, which are the loss and its
    gradient at the new ``params`` when ``value_fn`` does not change between steps
    (full-batch). When the stored value is not finite (the first step: the state starts at
    ``inf``) it computes ``jax.value_and_grad(value_fn)(params, *args, **kwargs)``, under
    ``jax.lax.cond``, so it jits. ``ValueError`` if ``state`` holds no such state or
    several (for several, one that is also a ``KeyError``, the error optax raises there).
    With a stochastic loss (a new batch each step) use ``jax.value_and_grad`` instead.

    PyTorch's ``torch.optim.LBFGS`` instead takes a ``closure`` that recomputes the loss
    and calls ``backward()``; ``step(closure)`` then runs up to ``max_iter`` iterations.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> def f(w): return jnp.sum(w ** 2)
      >>> opt = lossjax.lbfgs()
      >>> w = jnp.array([1.0, 2.0])
      >>> state = opt.init(w)
      >>> value_and_grad = lossjax.value_and_grad_from_state(f)
      >>> value_and_grad(w, state=state)  # nothing stored yet: computed
      (Array(5., dtype=float32), Array([2., 4.], dtype=float32))
    """
    value_and_grad = jax.value_and_grad(value_fn)

    @_compiled_once
    def fetch(params: Any, *args: Any, state: Any, **kwargs: Any) -> tuple[Array, Any]:
        value, grad = _find_value_and_grad(state)

        def compute():
            new_value, new_grad = value_and_grad(params, *args, **kwargs)
            return (jnp.asarray(new_value, value.dtype),
                    jax.tree.map(lambda g, old: g.astype(old.dtype), new_grad, grad))

        return jax.lax.cond(jnp.isfinite(value), lambda: (value, grad), compute)

    return fetch


class ScaleByLBFGSState(NamedTuple):
    """``count``: steps taken (int32); ``params``, ``updates``: the last step's parameters
    and incoming updates (gradients); ``diff_params_memory``, ``diff_updates_memory``: the
    last ``m`` differences ``s = Δw`` and ``y = Δg``, each leaf stacked as ``[m, *shape]``
    in a ring buffer (slot ``k mod m`` for step ``k``), in at least float32;
    ``weights_memory``: ``[m]``, the matching ``ρ = 1/⟨y, s⟩``."""

    count: Array
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: Array


def _slot(memory: Any, index: Array) -> Any:
    return jax.tree.map(lambda m: jax.lax.dynamic_index_in_dim(m, index, keepdims=False),
                        memory)


def _add_scaled(x: Any, scale: Array, y: Any) -> Any:
    """``x + scale·y`` leaf by leaf, in ``x``'s dtypes."""
    return jax.tree.map(lambda a, b: (a + scale.astype(a.dtype) * b).astype(a.dtype), x, y)


def _two_loop_recursion(g: Any, s_memory: Any, y_memory: Any, rho: Array, gamma: Array,
                        oldest: Array) -> Any:
    """``H·g`` for the L-BFGS inverse-Hessian estimate ``H`` (N&W Algorithm 7.4).

    Newest to oldest pair: ``α_i = ρ_i·⟨s_i, q⟩``, ``q ← q − α_i·y_i``; then ``r = γ·q``;
    oldest to newest: ``β_i = ρ_i·⟨y_i, r⟩``, ``r ← r + (α_i − β_i)·s_i``. Empty slots
    have ``ρ = 0`` and change nothing.
    """
    size = rho.shape[0]
    slots = (oldest + jnp.arange(size)) % size  # oldest first

    def newest_to_oldest(q, slot):
        alpha = rho[slot] * _inner(_slot(s_memory, slot), q)
        return _add_scaled(q, -alpha, _slot(y_memory, slot)), alpha

    q, alphas = jax.lax.scan(newest_to_oldest, g, slots, reverse=True)
    r = jax.tree.map(lambda x: gamma.astype(x.dtype) * x, q)

    def oldest_to_newest(r, slot_and_alpha):
        slot, alpha = slot_and_alpha
        beta = rho[slot] * _inner(_slot(y_memory, slot), r)
        return _add_scaled(r, alpha - beta, _slot(s_memory, slot)), None

    r, _ = jax.lax.scan(oldest_to_newest, r, (slots, alphas))
    return r


def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True,
                   ) -> optax.GradientTransformation:
    """Precondition the updates ``g`` by L-BFGS: ``H_k·g``, ``H_k`` ≈ the inverse Hessian.

    At step ``k`` it stores ``s = w_k − w_{k−1}``, ``y = g_k − g_{k−1}`` and
    ``ρ = 1/⟨y, s⟩`` (0 when ``⟨y, s⟩ = 0``) in a memory of the last ``m = memory_size``
    pairs, and returns ``H_k·g_k`` by the two-loop recursion (newest to oldest pair:
    ``α = ρ·⟨s, q⟩``, ``q ← q − α·y``; then ``r = γ_k·q``; oldest to newest:
    ``r ← r + (α − ρ·⟨y, r⟩)·s``), where ``H_k`` is ``m`` BFGS updates
    ``H ← (I − ρ·s·yᵀ)·H·(I − ρ·y·sᵀ) + ρ·s·sᵀ`` of ``γ_k·I``, with
    ``γ_k = ⟨s, y⟩/⟨y, y⟩`` (``scale_init_precond=True``; 1 otherwise). At the first step
    ``γ_0 = min(1, 1/‖g_0‖)``: the first step is at most 1 long (optax's choice, which
    PyTorch makes with the L1 norm and its learning rate). The output is a direction to
    descend along (the optimizer negates it, then a line search scales it): see
    :func:`lbfgs`. ``update`` needs ``params``.

    The memory holds ``2·m`` copies of the parameters (in at least float32: differences of
    half-precision parameters would round away). ``memory_size`` must be an int ``>= 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_lbfgs()
      >>> w = jnp.array([0.0, 0.0])
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(w), w)[0]  # first step: g/‖g‖
      Array([0.6, 0.8], dtype=float32)

    References: Nocedal & Wright, "Numerical Optimization" (2006), Algorithms 7.4 and 7.5;
    Liu & Nocedal, "On the Limited Memory BFGS Method for Large Scale Optimization" (1989).
    """
    if isinstance(memory_size, bool) or not isinstance(memory_size, int) or memory_size < 1:
        raise ValueError(f"memory_size must be an int >= 1, got {memory_size!r}")

    def init(params):
        def stacked(p):
            return jnp.zeros((memory_size, *shape_of(p)), compute_dtype(dtype_of(p)))

        def zeros():  # two trees of their own buffers (a donated state frees each once)
            return jax.tree.map(lambda p: full_like(p, dtype=dtype_of(p)), params)

        return ScaleByLBFGSState(
            jnp.zeros([], jnp.int32), zeros(), zeros(), jax.tree.map(stacked, params),
            jax.tree.map(stacked, params), jnp.zeros([memory_size], real_scalar_dtype(params)))

    @_compiled_once
    def update(updates, state, params):
        if params is None:
            raise ValueError("scale_by_lbfgs needs params: call update(updates, state, params)")
        updates = without_float0(updates)
        k = state.count
        started = k > 0
        dtype = state.weights_memory.dtype

        def difference(new, old):
            d = new.astype(compute_dtype(new.dtype)) - old.astype(compute_dtype(old.dtype))
            return jnp.where(started, d, jnp.zeros_like(d))

        s = jax.tree.map(difference, params, state.params)
        y = jax.tree.map(difference, updates, state.updates)
        sy = jnp.asarray(_inner(y, s), dtype)
        rho = jnp.where(sy == 0.0, 0.0, 1.0 / sy)
        newest = (k - 1) % memory_size

        def remember(memory, new):
            return jax.lax.dynamic_update_index_in_dim(memory, new.astype(memory.dtype),
                                                       newest, 0)

        s_memory = jax.tree.map(remember, state.diff_params_memory, s)
        y_memory = jax.tree.map(remember, state.diff_updates_memory, y)
        rho_memory = state.weights_memory.at[newest].set(rho)
        if scale_init_precond:
            yy = optax.tree.norm(y, squared=True).astype(dtype)
            first = jnp.minimum(1.0, 1.0 / global_norm(jax.lax.stop_gradient(updates)))
            gamma = jnp.where(started, jnp.where(yy > 0.0, sy / yy, 1.0), first.astype(dtype))
        else:
            gamma = jnp.ones([], dtype)
        g = jax.tree.map(lambda u: u.astype(compute_dtype(u.dtype)), updates)
        direction = _two_loop_recursion(g, s_memory, y_memory, rho_memory, gamma,
                                        k % memory_size)
        direction = jax.tree.map(lambda d, u: d.astype(u.dtype), direction, updates)
        return direction, ScaleByLBFGSState(increment_count(k), params, updates, s_memory,
                                            y_memory, rho_memory)

    return optax.GradientTransformation(init, update)


# optax's default: up to 20 evaluations, each search starting at η = 1.
_LBFGS_LINESEARCH = scale_by_zoom_linesearch(max_linesearch_steps=20,
                                             initial_guess_strategy="one")


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: optax.GradientTransformation | None = _LBFGS_LINESEARCH,
) -> optax.GradientTransformationExtraArgs:
    """L-BFGS: ``w ← w − η_k·H_k·g_k``, ``η_k`` from a line search satisfying strong Wolfe.

    ``H_k·g_k`` is the two-loop recursion over the last ``memory_size`` differences of
    parameters and gradients (:func:`scale_by_lbfgs`); ``η_k`` comes from ``linesearch``,
    by default :func:`scale_by_zoom_linesearch` with up to 20 evaluations starting at
    ``η = 1`` (``None``: no line search, ``η = 1``). ``learning_rate`` (a float or schedule)
    multiplies the direction before the line search; ``None`` means 1. ``update`` takes
    ``value=``, ``grad=`` and ``value_fn=`` as keywords (see
    :func:`scale_by_zoom_linesearch`); :func:`value_and_grad_from_state` reuses the line
    search's last evaluation, so a full-batch step costs only the line search's
    evaluations, usually one. It is a full-batch method: memory is ``2·memory_size``
    copies of the parameters. Complex parameters are optimized as their real and imaginary
    parts (inner products ``Re Σ conj(a)·b``), as in optax: pass the conjugate of
    ``jax.grad``'s gradient (``optax.tree.conj(grad)``), which is the descent direction's
    negative for a real loss of complex parameters.

    PyTorch's ``torch.optim.LBFGS`` differs: ``step(closure)`` runs up to ``max_iter=20``
    iterations per call, with ``history_size=100``, stopping tolerances on the gradient and
    the change, and by default no line search (a fixed step ``lr``; pass
    ``line_search_fn="strong_wolfe"`` for its own search). Here one ``update`` is one
    iteration, and the loop, the stopping rule and jit are yours. Keras has no L-BFGS.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> def f(w): return (1.0 - w[0]) ** 2 + 10.0 * (w[1] - w[0] ** 2) ** 2
      >>> opt = lossjax.lbfgs()
      >>> value_and_grad = lossjax.value_and_grad_from_state(f)
      >>> @jax.jit
      ... def step(w, state):
      ...     value, grad = value_and_grad(w, state=state)
      ...     updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
      ...     return optax.apply_updates(w, updates), state
      >>> w = jnp.array([-1.0, 1.0])
      >>> state = opt.init(w)
      >>> for _ in range(30):
      ...     w, state = step(w, state)
      >>> w
      Array([1., 1.], dtype=float32)

    References: Nocedal & Wright, "Numerical Optimization" (2006), Algorithms 7.4 and 7.5;
    Liu & Nocedal, "On the Limited Memory BFGS Method for Large Scale Optimization" (1989).
    """
    direction = (scale_by_constant(-1.0) if learning_rate is None
                 else scale_by_learning_rate(learning_rate))
    parts = [scale_by_lbfgs(memory_size, scale_init_precond), direction]
    if linesearch is not None:
        parts.append(linesearch)
    return optax.chain(*parts)

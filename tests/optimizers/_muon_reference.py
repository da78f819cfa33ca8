"""Float64 NumPy transcriptions of Muon, its variants, Scion, MARS and cautious updates,
written from the papers' formulas (not from lossjax), and the runner that compares a lossjax
optimizer with one over a fixed sequence of gradients.

A reference is a function ``step(t, grads, params, state) -> (updates, state)`` on dicts of
float64 arrays, ``t`` counting from 1. Gradients are a fixed random sequence (not a loss), so
the comparison measures arithmetic, not the chaos of a training run.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

STANDARD = ((3.4445, -4.7750, 2.0315),) * 5


def newton_schulz(x, coeffs, eps=1e-8):
    """Odd polynomial iterations on ``x / ‖x‖_F``, the short side first (2-D; ``X Xᴴ``
    for a complex ``x``)."""
    wide = x.shape[0] <= x.shape[1]
    x = x if wide else x.T
    x = x / (np.linalg.norm(x) + eps)
    for a, b, c in coeffs:
        gram = x @ x.conj().T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


def as_matrix(x, reduction, output):
    """``x`` as ``[prod(reduction), prod(output)]`` (no batch axes) and the inverse."""
    order = tuple(reduction) + tuple(output)
    shape = x.shape
    fan_in = math.prod(shape[a] for a in reduction)
    matrix = np.transpose(x, order).reshape(fan_in, -1)

    def back(m):
        return np.transpose(m.reshape([shape[a] for a in order]), np.argsort(order))

    return matrix, back


def muon_reference(lr, dims, *, beta=0.95, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, adam_wd=0.0,
                   coeffs=STANDARD, second_moment=None, nb2=0.95, cautious=False):
    """Muon (Jordan et al.) with Nesterov momentum; ``dims[name] = (reduction, output)``
    or ``None`` (AdamW, Nesterov). ``second_moment``: ``"normuon"`` (Li et al.: per output
    unit) or ``"adamuon"`` (Si et al.: of sign(M̂), elementwise); both RMS 0.2."""

    def step(t, grads, params, state):
        updates, new = {}, {}
        for name, g in grads.items():
            w = params[name]
            if dims[name] is None:
                m, v = state.get(name, (np.zeros_like(g), np.zeros_like(g)))
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
                d = hat / (np.sqrt(v / (1 - b2**t)) + eps) + adam_wd * w
                updates[name], new[name] = -lr * d, (m, v)
                continue
            m, nu = state.get(name, (np.zeros_like(g), None))
            m = beta * m + (1 - beta) * g
            hat = beta * m / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta**t)
            matrix, back = as_matrix(hat, *dims[name])
            fan_in, fan_out = matrix.shape
            if second_moment == "adamuon":
                matrix = np.sign(matrix)
            o = newton_schulz(matrix, coeffs, eps)
            if second_moment is None:
                d = math.sqrt(max(1.0, fan_out / fan_in)) * o
            else:
                if second_moment == "normuon":
                    nu = np.zeros(fan_out) if nu is None else nu
                    nu = nb2 * nu + (1 - nb2) * np.mean(o * o, axis=0)
                else:
                    nu = np.zeros_like(o) if nu is None else nu
                    nu = nb2 * nu + (1 - nb2) * o * o
                scaled = o / (np.sqrt(nu) + eps)
                d = 0.2 * math.sqrt(fan_in * fan_out) * scaled / (np.linalg.norm(scaled) + eps)
            d = back(d)
            decay = wd * w
            if cautious:
                decay = np.where(d * w > 0, decay, 0.0)
            updates[name], new[name] = -lr * (d + decay), (m, nu)
        return updates, new

    return step


def scion_reference(lr, dims, *, alpha=0.1, rho_spectral=1.0, rho_sign=1.0, eps=1e-8,
                    constrained=False):
    """Scion (Pethick et al.): ``d ← (1 − α)d + αg``; spectral LMO for matrices
    (``ρ·√(fan_out/fan_in)·UVᵀ``), sign LMO for the rest."""

    def step(t, grads, params, state):
        updates, new = {}, {}
        for name, g in grads.items():
            d = (1 - alpha) * state.get(name, np.zeros_like(g)) + alpha * g
            if dims[name] is None:
                lmo = rho_sign * np.sign(d)
            else:
                # the momentum of scale_by_muon is debiased: only eps sees the factor
                matrix, back = as_matrix(d / (1 - (1 - alpha) ** t), *dims[name])
                fan_in, fan_out = matrix.shape
                lmo = back(rho_spectral * math.sqrt(fan_out / fan_in)
                           * newton_schulz(matrix, STANDARD, eps))
            if constrained:
                lmo = lmo + params[name]
            updates[name], new[name] = -lr * lmo, d
        return updates, new

    return step


def mars_reference(lr, *, b1=0.95, b2=0.99, eps=1e-8, gamma=0.025, wd=0.0, max_norm=1.0,
                   lion=False, cautious=False):
    """MARS-AdamW / MARS-Lion (Yuan et al., approximate MARS)."""

    def step(t, grads, params, state):
        updates, new = {}, {}
        for name, g in grads.items():
            last, m, v = state.get(name, (np.zeros_like(g),) * 3)
            c = g + gamma * b1 / (1 - b1) * (g - last)
            norm = np.linalg.norm(c)
            if max_norm is not None and norm > max_norm:
                c = c * max_norm / norm
            if lion:
                d = np.sign(b1 * m + (1 - b1) * c)
                m = b2 * m + (1 - b2) * c
            else:
                m = b1 * m + (1 - b1) * c
                v = b2 * v + (1 - b2) * c * c
                d = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            w = params[name]
            decay = wd * w if not cautious else np.where(d * w > 0, wd * w, 0.0)
            updates[name], new[name] = -lr * (d + decay), (g, m, v)
        return updates, new

    return step


def cautious_adam_reference(lr, *, b1=0.9, b2=0.999, eps=1e-8):
    """Cautious Adam (Liang et al.) with the mask rescaled by ``n/max(Σφ, 1)``."""

    def step(t, grads, params, state):
        updates, new = {}, {}
        for name, g in grads.items():
            m, v = state.get(name, (np.zeros_like(g),) * 2)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            u = -lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            keep = u * g < 0
            updates[name] = np.where(keep, u * keep.size / max(keep.sum(), 1), 0.0)
            new[name] = (m, v)
        return updates, new

    return step


def random_gradients(shapes, steps, seed=0, scale=1.0):
    """``{name: [steps, *shape]}`` float64 gradients with a drifting mean (so momenta and
    sign agreements vary)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        drift = rng.normal(size=shape)
        out[name] = scale * (0.5 * drift + rng.normal(size=(steps, *shape)))
    return out


def run_lossjax(opt, params, grads, **update_kwargs):
    """Every update of ``opt`` over the gradient sequence (one jitted scan, float64 when
    the inputs are)."""

    def body(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p, **update_kwargs)
        return (optax.apply_updates(p, u), s), u

    @jax.jit
    def run(p, gs):
        return jax.lax.scan(body, (p, opt.init(p)), gs)[1]

    params = jax.tree.map(jnp.asarray, params)
    return jax.tree.map(np.asarray, run(params, jax.tree.map(jnp.asarray, grads)))


def run_reference(step, params, grads):
    params = {k: np.array(v, np.float64) for k, v in params.items()}
    steps = len(next(iter(grads.values())))
    state, out = {}, {k: [] for k in params}
    for t in range(1, steps + 1):
        updates, state = step(t, {k: v[t - 1] for k, v in grads.items()}, params, state)
        for k, u in updates.items():
            out[k].append(u)
            params[k] = params[k] + u
    return {k: np.stack(v) for k, v in out.items()}


def assert_close_to_reference(ours, reference, rtol, atol):
    for name in reference:
        np.testing.assert_allclose(ours[name], reference[name], rtol=rtol, atol=atol,
                                   err_msg=name)

"""Float64 NumPy references for the task losses (detection, alignment, distillation,
contrastive, MoE), written from the papers' and torchvision's/TRL's formulas, plus the
checks every one of those losses shares."""

import jax
import jax.numpy as jnp
import numpy as np


def numeric_grad(f, x, h=1e-6):
    """Central differences of a float64 NumPy function ``f`` at ``x``."""
    x = np.array(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


# ----- detection (torchvision.ops formulas) ----------------------------------------------

def box_losses(p, t, kind, eps=1e-7, fmt="xyxy", alpha=None):
    """Per-pair loss; ``alpha`` (CIoU) may be fixed to differentiate with it held constant."""
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    if fmt == "cxcywh":
        p, t = (np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)
                for b in (p, t))
    x1, y1, x2, y2 = np.moveaxis(p, -1, 0)
    X1, Y1, X2, Y2 = np.moveaxis(t, -1, 0)
    iw, ih = np.minimum(x2, X2) - np.maximum(x1, X1), np.minimum(y2, Y2) - np.maximum(y1, Y1)
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = (x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1) - inter
    iou = inter / (union + eps)
    cx1, cy1 = np.minimum(x1, X1), np.minimum(y1, Y1)
    cx2, cy2 = np.maximum(x2, X2), np.maximum(y2, Y2)
    if kind == "iou":
        return 1 - iou
    if kind == "giou":
        area = (cx2 - cx1) * (cy2 - cy1)
        return 1 - (iou - (area - union) / (area + eps))
    diag = (cx2 - cx1) ** 2 + (cy2 - cy1) ** 2 + eps
    dist = ((x1 + x2) / 2 - (X1 + X2) / 2) ** 2 + ((y1 + y2) / 2 - (Y1 + Y2) / 2) ** 2
    diou = 1 - iou + dist / diag
    if kind == "diou":
        return diou
    v = 4 / np.pi**2 * (np.arctan((X2 - X1) / (Y2 - Y1)) - np.arctan((x2 - x1) / (y2 - y1))) ** 2
    if alpha is None:
        alpha = v / (1 - iou + v + eps)
    return diou + alpha * v


# ----- alignment (TRL) ---------------------------------------------------------------------

def dpo(pc, pr, rc, rr, beta=0.1, ls=0.0):
    z = beta * ((pc - pr) - (rc - rr))
    return -(1 - ls) * log_sigmoid(z) - ls * log_sigmoid(-z)


def ipo(pc, pr, rc, rr, beta=0.1):
    return ((pc - pr) - (rc - rr) - 1 / (2 * beta)) ** 2


def simpo(c, r, beta=2.0, gamma=0.5):
    return -log_sigmoid(beta * (c - r) - gamma)


def orpo(c, r, beta=0.1):
    log_odds = (c - r) - (np.log1p(-np.exp(c)) - np.log1p(-np.exp(r)))
    return -beta * log_sigmoid(log_odds)


# ----- distillation, MoE --------------------------------------------------------------------

def distillation(s, t, temperature=1.0):
    ls = s / temperature - logsumexp(s / temperature, -1)[..., None]
    lt = t / temperature - logsumexp(t / temperature, -1)[..., None]
    return temperature**2 * np.sum(np.exp(lt) * (lt - ls), -1)


def load_balancing(probs, idx, num_experts):
    probs = np.asarray(probs, np.float64)
    idx = np.asarray(idx)
    if idx.ndim == probs.ndim - 1:
        idx = idx[..., None]
    counts = np.zeros(probs.shape[:-2] + (num_experts,))
    for e in range(num_experts):
        counts[..., e] = np.sum(idx == e, axis=(-2, -1))
    f = counts / probs.shape[-2]
    return num_experts * np.sum(f * probs.mean(-2), -1)


def router_z(x):
    return logsumexp(np.asarray(x, np.float64), -1) ** 2


# ----- contrastive ---------------------------------------------------------------------------

def clip(a, b, s):
    x = s * a @ b.T
    d = np.diag(x)
    return 0.5 * (logsumexp(x, 1) - d) + 0.5 * (logsumexp(x, 0) - d)


def siglip(a, b, s, t):
    x = s * a @ b.T + t
    z = 2 * np.eye(len(a)) - 1
    return -np.sum(log_sigmoid(z * x), axis=1)


# ----- shared contract checks -----------------------------------------------------------------

def check_reductions(loss, args, ref_none, weights, rtol=1e-5, **kw):
    """"none" equals the reference per entry; "sum", "mean" and weights follow from it."""
    none = np.asarray(loss(*args, reduction="none", **kw))
    np.testing.assert_allclose(none, ref_none, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(loss(*args, reduction="sum", **kw), ref_none.sum(), rtol=rtol)
    np.testing.assert_allclose(loss(*args, **kw), ref_none.mean(), rtol=rtol)
    np.testing.assert_allclose(loss(*args, weights=weights, reduction="sum", **kw),
                               (ref_none * weights).sum(), rtol=rtol)


def check_nan_masked(loss, args, mask, **kw):
    """NaN in the masked entries reaches neither value nor gradient; value as if dropped."""
    poisoned = []
    for x in args:
        x = np.array(x)
        x[~mask] = np.nan
        poisoned.append(jnp.asarray(x))
    value, grads = jax.value_and_grad(lambda *xs: loss(*xs, where=jnp.asarray(mask), **kw),
                                      tuple(range(len(args))))(*poisoned)
    kept = loss(*(jnp.asarray(np.asarray(x)[mask]) for x in args), **kw)
    np.testing.assert_allclose(value, kept, rtol=1e-5)
    for g in grads:
        assert np.all(np.isfinite(g))
        assert np.all(np.asarray(g)[~mask] == 0)

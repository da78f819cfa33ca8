"""Independent float64 NumPy references, written from the formulas (not from lossjax)."""

import numpy as np


def f64(x):
    return np.asarray(x, dtype=np.float64)


def mse(p, t):
    return (f64(p) - f64(t)) ** 2


def mae(p, t):
    return np.abs(f64(p) - f64(t))


def huber(p, t, delta=1.0):
    e = np.abs(f64(p) - f64(t))
    return np.where(e <= delta, 0.5 * e**2, delta * (e - 0.5 * delta))


def smooth_l1(p, t, beta=1.0):
    e = np.abs(f64(p) - f64(t))
    if beta == 0:
        return e
    return np.where(e < beta, 0.5 * e**2 / beta, e - 0.5 * beta)


def log_cosh(p, t):
    e = f64(p) - f64(t)
    # log cosh e = |e| + log(1 + exp(-2|e|)) - log 2, exact for every e
    return np.abs(e) + np.log1p(np.exp(-2 * np.abs(e))) - np.log(2.0)


def log_softmax(x, axis=-1):
    x = f64(x)
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def ce_integer(x, y, *, label_smoothing=0.0, class_weights=None, z_loss=0.0):
    """Per-example loss, PyTorch's cross_entropy formula plus z * lse**2."""
    x = f64(x)
    k = x.shape[-1]
    w = np.ones(k) if class_weights is None else f64(class_weights)
    logp = log_softmax(x)
    nll = -np.take_along_axis(logp, np.asarray(y)[..., None], -1)[..., 0] * w[y]
    smooth = -np.sum(logp * w, axis=-1) / k
    m = np.max(x, -1)
    lse = m + np.log(np.sum(np.exp(x - m[..., None]), -1))
    return (1 - label_smoothing) * nll + label_smoothing * smooth + z_loss * lse**2


def ce_soft(x, t):
    logp = log_softmax(x)
    t = f64(t)
    return -np.sum(np.where(t == 0, 0.0, t * logp), axis=-1)


def sigmoid(x):
    return 1 / (1 + np.exp(-f64(x)))


def sigmoid_bce(x, y):
    p = sigmoid(x)
    y = f64(y)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def bce(p, y, eps=1e-7):
    p = np.clip(f64(p), eps, 1 - eps)
    y = f64(y)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def hinge(s, y):
    y = np.where(f64(y) == 0, -1.0, f64(y))
    return np.maximum(0.0, 1 - y * f64(s))


def multiclass_hinge(s, y):
    s = f64(s)
    out = []
    for row, label in zip(s.reshape(-1, s.shape[-1]), np.asarray(y).reshape(-1), strict=True):
        margins = [row[k] + (k != label) - row[label] for k in range(len(row))]
        out.append(max(margins))
    return np.array(out).reshape(s.shape[:-1])


def focal(x, y, alpha=None, gamma=2.0):
    p = sigmoid(x)
    y = f64(y)
    pt = p * y + (1 - p) * (1 - y)
    loss = -np.log(pt) * (1 - pt) ** gamma
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def kl(p, t):
    """KL(t || p) from probabilities, 0 log 0 = 0."""
    p, t = f64(p), f64(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t > 0, t * (np.log(t) - np.log(p)), 0.0)
    return np.sum(terms, axis=-1)


def softmax(x, axis=-1):
    return np.exp(log_softmax(x, axis))


def poly1(x, t, epsilon=2.0):
    """Leng et al. 2022: CE + epsilon * (1 - p_t)."""
    p_t = np.sum(f64(t) * softmax(x), axis=-1)
    return ce_soft(x, t) + epsilon * (1 - p_t)


def sparsemax_threshold(z, iters=200):
    """tau with sum(max(z - tau, 0)) = 1, by bisection (independent of the sort method)."""
    z = f64(z)
    lo, hi = z.max(axis=-1) - 1.0, z.max(axis=-1)
    for _ in range(iters):
        mid = (lo + hi) / 2
        total = np.maximum(z - mid[..., None], 0).sum(-1)
        lo, hi = np.where(total > 1, mid, lo), np.where(total > 1, hi, mid)
    return (lo + hi) / 2


def sparsemax(z):
    return np.maximum(f64(z) - sparsemax_threshold(z)[..., None], 0)


def sparsemax_loss(z, y):
    """Martins & Astudillo 2016: -z_y + 1/2 sum_{j in S} (z_j^2 - tau^2) + 1/2."""
    z = f64(z)
    tau = sparsemax_threshold(z)[..., None]
    support = z > tau
    z_y = np.take_along_axis(z, np.asarray(y)[..., None], -1)[..., 0]
    return -z_y + 0.5 * np.sum(np.where(support, z**2 - tau**2, 0), -1) + 0.5


def categorical_hinge(s, t):
    """Keras: max(0, max((1 - t) * s) - sum(t * s) + 1)."""
    s, t = f64(s), f64(t)
    return np.maximum(0.0, np.max((1 - t) * s, -1) - np.sum(t * s, -1) + 1)


def generalized_kl(p, t):
    """sum t log(t / p) - t + p, 0 log 0 = 0, for non-negative measures p, t."""
    p, t = f64(p), f64(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t > 0, t * np.log(t / p), 0.0)
    return np.sum(terms - t + p, axis=-1)


def jensen_shannon(p, t):
    m = (f64(p) + f64(t)) / 2
    return 0.5 * kl(m, p) + 0.5 * kl(m, t)


def ranking_softmax(s, y, mask=None, w=None):
    s, y = f64(s), f64(y)
    mask = np.ones(s.shape, bool) if mask is None else mask
    w = np.ones(s.shape) if w is None else f64(w)
    out = []
    for row_s, row_y, row_m, row_w in zip(s, y, mask, w, strict=True):
        if not row_m.any():
            out.append(0.0)
            continue
        logp = log_softmax(row_s[row_m])
        out.append(-np.sum(row_w[row_m] * row_y[row_m] * logp))
    return np.array(out)


def margin_ranking(a, b, y, margin=0.0):
    y = np.where(f64(y) == 0, -1.0, f64(y))
    return np.maximum(0.0, -y * (f64(a) - f64(b)) + margin)


def msle(p, t, eps=1e-7):
    return (np.log(1 + np.maximum(f64(p), eps)) - np.log(1 + np.maximum(f64(t), eps))) ** 2


def mape(p, t, eps=1e-7):
    return 100 * np.abs(f64(p) - f64(t)) / np.maximum(np.abs(f64(t)), eps)


def soft_margin(s, y):
    y = np.where(f64(y) == 0, -1.0, f64(y))
    return np.log1p(np.exp(-y * f64(s)))


def perceptron(s, y):
    y = np.where(f64(y) == 0, -1.0, f64(y))
    return np.maximum(0.0, -y * f64(s))


def multi_margin(s, y, p=1, margin=1.0, class_weights=None):
    """PyTorch MultiMarginLoss, written as loops over the wrong classes."""
    s = f64(s)
    k = s.shape[-1]
    w = np.ones(k) if class_weights is None else f64(class_weights)
    out = []
    for row, label in zip(s, y, strict=True):
        total = sum(max(0.0, margin - row[label] + row[i]) ** p for i in range(k) if i != label)
        out.append(w[label] * total / k)
    return np.array(out)


def multilabel_margin(s, y):
    s, y = f64(s), f64(y)
    k = s.shape[-1]
    out = []
    for row, lab in zip(s, y, strict=True):
        pos, neg = np.flatnonzero(lab == 1), np.flatnonzero(lab == 0)
        out.append(sum(max(0.0, 1 - (row[j] - row[i])) for j in pos for i in neg) / k)
    return np.array(out)


def multilabel_soft_margin(x, y, class_weights=None):
    x, y = f64(x), f64(y)
    w = np.ones(x.shape[-1]) if class_weights is None else f64(class_weights)
    per = -(y * np.log(sigmoid(x)) + (1 - y) * np.log(sigmoid(-x)))
    return np.mean(w * per, axis=-1)


def softmax_focal(x, t, alpha=None, gamma=2.0):
    p = softmax(x)
    t = f64(t)
    loss = -np.sum(np.where(t == 0, 0.0, t * (1 - p) ** gamma * np.log(p)), axis=-1)
    return loss if alpha is None else alpha * loss

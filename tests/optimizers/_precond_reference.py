"""Float64 NumPy references for the Kronecker-factored optimizers (SOAP, Shampoo, Kron),
written from the papers and the reference code, independent of lossjax, and the small MLP
their trajectories are compared on (gradients by hand-written backpropagation).

Each reference is a class with ``step(params, grads) -> updates`` over dicts of float64
arrays, keeping its state in plain attributes, one Python loop per leaf.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------- the MLP


def mlp_loss_and_grads(params, x, y):
    """Mean squared error of ``tanh(x W1 + b1) W2 + b2`` against ``y`` and its gradients.

    A regression loss, not softmax cross-entropy: the softmax's shift invariance makes
    every gradient of ``W2`` sum to 0 across its columns, a null direction in which the
    rotated gradient is pure rounding noise, and Adam's ``m/(√v + eps)`` blows that noise
    up by ``1/eps``; no two implementations agree there."""
    h = np.tanh(x @ params["w1"] + params["b1"])
    err = h @ params["w2"] + params["b2"] - y
    n = err.size
    loss = np.sum(err * err) / n
    dout = 2.0 * err / n
    dh = dout @ params["w2"].T * (1.0 - h * h)
    return loss, {"w1": x.T @ dh, "b1": dh.sum(0), "w2": h.T @ dout, "b2": dout.sum(0)}


def mlp_problem(steps, *, width=4, batch=16, seed=0):
    """Square weight matrices (``width × width``: a rank-deficient first Gram matrix would
    leave an arbitrary eigenbasis for its null space), and one batch per step."""
    rng = np.random.default_rng(seed)
    params = {"w1": rng.normal(size=(width, width)) / np.sqrt(width),
              "b1": np.zeros(width),
              "w2": rng.normal(size=(width, width)) / np.sqrt(width),
              "b2": np.zeros(width)}
    xs = rng.normal(size=(steps, batch, width))
    ys = np.sin(xs @ rng.normal(size=(width, width)))
    return params, xs, ys


def run_reference(opt, params, xs, ys, lr):
    """Final parameters and every step's update (``-lr·direction``), in float64."""
    params = {k: v.copy() for k, v in params.items()}
    updates = []
    for x, y in zip(xs, ys, strict=True):
        _, grads = mlp_loss_and_grads(params, x, y)
        u = opt.step(params, grads, lr)
        updates.append(u)
        params = {k: params[k] + u[k] for k in params}
    return params, updates


# ----------------------------------------------------------------------------- SOAP


def _mode_product(x, q, axis, transpose):
    """``x ×_axis Q`` (``Qᵀ`` when ``transpose``), by moving the axis to the front."""
    moved = np.moveaxis(x, axis, 0)
    shape = moved.shape
    flat = moved.reshape(shape[0], -1)
    out = (q.T if transpose else q) @ flat
    return np.moveaxis(out.reshape(shape), 0, axis)


class SoapReference:
    """SOAP as in ``nikhilvyas/SOAP``'s ``soap.py`` (PyTorch), transcribed: the first
    step only initialises; Adam runs on the projected gradient; ``L_k`` are lerped with
    ``G_(k) G_(k)ᵀ``; the first basis is ``eigh`` (descending); every
    ``frequency``-th Adam step the basis is re-sorted by ``diag(QᵀLQ)``, ``Q ← QR(LQ)``,
    ``v`` permuted and ``m`` moved to the new basis. Weight decay: lossjax's documented
    convention (``−lr·wd·w`` on the weights before the step, on every step)."""

    def __init__(self, b1=0.95, b2=0.95, shampoo_beta=None, eps=1e-8, weight_decay=0.0,
                 frequency=10, max_dim=10000, correct_bias=True):
        self.b1, self.b2, self.eps, self.wd = b1, b2, eps, weight_decay
        self.correct_bias = correct_bias
        self.sb = b2 if shampoo_beta is None else shampoo_beta
        self.freq, self.max_dim = frequency, max_dim
        self.state = {}

    def axes(self, shape):
        if len(shape) < 2:
            return []
        return [k for k, n in enumerate(shape) if n <= self.max_dim]

    def project(self, x, qs, back=False):
        for k, q in qs.items():
            x = _mode_product(x, q, k, transpose=not back)
        return x

    def update_preconditioner(self, g, st):
        axes = self.axes(g.shape)
        for k in axes:
            others = [a for a in range(g.ndim) if a != k]
            outer = np.tensordot(g, g, axes=(others, others))
            st["L"][k] = self.sb * st["L"][k] + (1 - self.sb) * outer
        if st["Q"] is None:
            qs = {}
            for k in axes:
                _, vectors = np.linalg.eigh(st["L"][k])
                qs[k] = vectors[:, ::-1]
            st["Q"] = qs
            return
        if st["step"] % self.freq == 0:
            m_orig = self.project(st["m"], st["Q"], back=True)
            qs = {}
            for k in axes:
                q, lk = st["Q"][k], st["L"][k]
                order = np.argsort(-np.diag(q.T @ lk @ q), kind="stable")
                st["v"] = np.take(st["v"], order, axis=k)
                qs[k], _ = np.linalg.qr(lk @ q[:, order])
            st["Q"] = qs
            st["m"] = self.project(m_orig, qs)

    def step(self, params, grads, lr):
        out = {}
        for name, g in grads.items():
            w = params[name]
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = {
                    "step": 0, "m": np.zeros_like(g), "v": np.zeros_like(g), "Q": None,
                    "L": {k: np.zeros((g.shape[k],) * 2) for k in self.axes(g.shape)}}
                self.update_preconditioner(g, st)
                out[name] = -lr * self.wd * w
                continue
            gp = self.project(g, st["Q"])
            st["step"] += 1
            st["m"] = self.b1 * st["m"] + (1 - self.b1) * gp
            st["v"] = self.b2 * st["v"] + (1 - self.b2) * gp * gp
            t = st["step"]
            size = np.sqrt(1 - self.b2**t) / (1 - self.b1**t) if self.correct_bias else 1.0
            direction = self.project(st["m"] / (np.sqrt(st["v"]) + self.eps), st["Q"],
                                     back=True)
            out[name] = -lr * (size * direction + self.wd * w)
            self.update_preconditioner(g, st)
        return out


# ----------------------------------------------------------------------------- Shampoo


def _merge_small_dims(shape, max_dim):
    """``merge_small_dims`` of distributed_shampoo: collapse runs of axes whose product
    stays within ``max_dim``; an all-ones shape is ``[1]``."""
    if shape and all(d == 1 for d in shape):
        return [1]
    out, product = [], 1
    for d in shape:
        if product * d <= max_dim:
            product *= d
        else:
            if product > 1:
                out.append(product)
            product = d
    if product > 1:
        out.append(product)
    return out


def _split_blocks(x, block_size):
    """Blocks of at most ``block_size`` along each axis, row-major (BlockPartitioner)."""
    parts = [x]
    for axis, n in enumerate(x.shape):
        if 0 < block_size < n:
            cuts = list(range(block_size, n, block_size))
            parts = [piece for part in parts for piece in np.split(part, cuts, axis=axis)]
    return parts


def _merge_blocks(parts, shape, block_size):
    for axis in reversed(range(len(shape))):
        n = shape[axis]
        if 0 < block_size < n:
            count = len(range(block_size, n, block_size)) + 1
            parts = [np.concatenate(parts[i:i + count], axis=axis)
                     for i in range(0, len(parts), count)]
    return parts[0]


class ShampooReference:
    """``distributed_shampoo`` (google-research/precondition) transcribed for the options
    lossjax offers: statistics from ``matrix_epsilon·I``, inverse ``p``-th roots by
    ``eigh`` with the ridge relative to the largest eigenvalue, grafting, separate momenta
    for the grafted and the Shampoo updates, Nesterov, coupled weight decay."""

    def __init__(self, block_size=128, beta1=0.9, beta2=0.999, diagonal_epsilon=1e-10,
                 matrix_epsilon=1e-6, weight_decay=0.0, start_preconditioning_step=5,
                 preconditioning_compute_steps=1, graft_type="sgd", nesterov=True,
                 best_effort_shape_interpretation=True):
        self.block, self.b1, self.b2 = block_size, beta1, beta2
        self.deps, self.meps, self.wd = diagonal_epsilon, matrix_epsilon, weight_decay
        self.start, self.every = start_preconditioning_step, preconditioning_compute_steps
        self.graft, self.nesterov = graft_type, nesterov
        self.merge = best_effort_shape_interpretation
        self.t = 0
        self.state = {}

    def shape(self, g):
        return _merge_small_dims(list(g.shape), 4096) if self.merge else list(g.shape)

    def root(self, stat, p):
        values, vectors = np.linalg.eigh(stat)
        ridge = self.meps * max(values[-1], 1e-6)
        values = values + ridge
        powers = np.where(values == 0, 0.0, np.maximum(values, ridge) ** (-1.0 / p))
        return (vectors * powers) @ vectors.T

    def graft_step(self, g, st):
        w2 = 1.0 if self.b2 == 1.0 else 1.0 - self.b2
        if self.graft == "sgd":
            return g
        if self.graft == "adagrad":
            st["v"] = st["v"] + g * g
            return g / (np.sqrt(st["v"]) + self.deps)
        if self.graft == "rmsprop_normalized":
            g = g / (np.linalg.norm(g) + 1e-25)
            st["v"] = self.b2 * st["v"] + w2 * g * g
            return g / (np.sqrt(st["v"]) + self.deps)
        st["v"] = self.b2 * st["v"] + w2 * g * g   # adam grafting, bias-corrected
        return g / (np.sqrt(st["v"] / (1 - self.b2 ** (self.t + 1))) + self.deps)

    def step(self, params, grads, lr):
        out = {}
        w2 = 1.0 if self.b2 == 1.0 else 1.0 - self.b2
        for name, g in grads.items():
            shape = self.shape(g)
            blocks = _split_blocks(g.reshape(shape), self.block)
            rank = len(shape)
            st = self.state.get(name)
            if st is None:
                sizes = [b.shape[k] for b in blocks for k in range(rank)]
                st = self.state[name] = {
                    "L": [self.meps * np.eye(n) for n in sizes],
                    "P": [np.eye(n) for n in sizes], "v": np.zeros_like(g),
                    "md": np.zeros_like(g), "ms": np.zeros_like(g)}
            for i, b in enumerate(blocks):
                for k in range(rank):
                    others = [a for a in range(rank) if a != k]
                    j = i * rank + k
                    st["L"][j] = self.b2 * st["L"][j] + w2 * np.tensordot(b, b, (others,
                                                                                  others))
            if self.t % self.every == 0:
                st["P"] = [self.root(s, 2 * rank) for s in st["L"]]
            grafted = self.graft_step(g, st)
            pre = []
            for i, b in enumerate(blocks):
                for k in range(rank):
                    b = np.moveaxis(np.tensordot(st["P"][i * rank + k], b, ([0], [k])), 0, k)
                pre.append(b)
            shampoo = _merge_blocks(pre, shape, self.block).reshape(g.shape)
            shampoo = shampoo * np.linalg.norm(grafted) / (np.linalg.norm(shampoo) + 1e-25)
            shampoo = shampoo + self.wd * params[name]
            grafted = grafted + self.wd * params[name]
            st["ms"] = self.b1 * st["ms"] + shampoo
            st["md"] = self.b1 * st["md"] + grafted
            run = self.t >= self.start
            momentum = st["ms"] if run else st["md"]
            if self.nesterov:
                momentum = (shampoo if run else grafted) + self.b1 * momentum
            out[name] = -lr * momentum
        self.t += 1
        return out

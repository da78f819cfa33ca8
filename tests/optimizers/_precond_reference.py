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

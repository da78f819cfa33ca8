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


# ----------------------------------------------------------------------------- PSGD Kron


def _norm_lower_bound(a):
    scale = np.max(np.abs(a))
    if scale == 0:
        return scale
    a = a / scale
    squares = a * a
    cols, rows = squares.sum(0), squares.sum(1)
    i, j = np.argmax(cols), np.argmax(rows)
    if cols[i] > rows[j]:
        x = a[:, i] @ a
        return scale * np.linalg.norm((x / np.linalg.norm(x)) @ a.T)
    x = a @ a[j, :]
    return scale * np.linalg.norm(a.T @ (x / np.linalg.norm(x)))


class KronReference:
    """PSGD Kron as in psgd_jax 0.2.9's ``kron.py`` (Li's Kron preconditioner): bias-corrected
    momentum; every ``1/p`` steps one fit of the factors on the damped momentum with a
    Gaussian probe, ``triu``-projected multiplicative steps normalised by a spectral-norm
    lower bound (diagonal factors: by the largest entry); the step ``⊗QᵀQ·m̂`` with its RMS
    capped at 1.1. The random draws (probes, the 1% rebalancing) use ``jax.random`` with
    psgd_jax's fixed-key protocol: the draws are inputs, the arithmetic is NumPy."""

    def __init__(self, b1=0.9, probability=1.0, max_size_triangular=8192,
                 min_ndim_triangular=2, precond_lr=0.1, init_scale=1.0,
                 momentum_into_precond_update=True, weight_decay=0.0, seed=5318008,
                 one_diag=False):
        self.one_diag = one_diag
        self.b1, self.p, self.lr_q = b1, probability, precond_lr
        self.max_tri, self.min_ndim = max_size_triangular, min_ndim_triangular
        self.scale = init_scale
        self.use_momentum, self.wd, self.seed = momentum_into_precond_update, weight_decay, seed
        self.count, self.counter = 0, 0
        self.mu, self.qs = None, None

    def init(self, grads):
        self.mu = {k: np.zeros_like(g) for k, g in grads.items()}
        self.qs = {}
        for k, g in grads.items():
            s = self.scale ** (1.0 / g.ndim)
            largest = int(np.argsort(g.shape)[::-1][0])   # "one_diag": this axis diagonal
            self.qs[k] = [s * np.ones(n) if (n == 1 or n > self.max_tri or g.ndim < self.min_ndim
                                             or (self.one_diag and i == largest))
                          else s * np.eye(n) for i, n in enumerate(g.shape)]

    def fit(self, draws, inputs):
        balance, probes = draws
        if balance < 0.01:
            for name, qs in self.qs.items():
                if len(qs) > 1:
                    norms = np.array([np.max(np.abs(q)) for q in qs], np.float32)
                    target = np.prod(norms) ** (1.0 / len(norms))
                    self.qs[name] = [q * float(target / n) for q, n in zip(qs, norms, strict=True)]
        tiny = np.finfo(np.float64).tiny
        for name, h in inputs.items():
            v = probes[name]
            h = h + np.sqrt(np.finfo(np.float32).eps) * np.mean(np.abs(h)) * v
            qs = self.qs[name]
            a, b = h, v
            for axis, q in enumerate(qs):
                a = np.moveaxis(a, axis, -1)
                b = np.moveaxis(b, axis, -1)
                if q.ndim == 1:
                    a, b = a * q, b / q
                else:
                    a, b = a @ q.T, b @ np.linalg.inv(q)   # A = Q·a, B = Q⁻ᵀ·b
                a, b = np.moveaxis(a, -1, axis), np.moveaxis(b, -1, axis)
            new = []
            for axis, q in enumerate(qs):
                others = tuple(i for i in range(h.ndim) if i != axis)
                if q.ndim == 1:
                    t1, t2 = (a * a).sum(others), (b * b).sum(others)
                    new.append(q - self.lr_q * (t1 - t2) * q / (np.max(np.abs(t1 + t2)) + tiny))
                else:
                    t1 = np.tensordot(a, a, (others, others))
                    t2 = np.tensordot(b, b, (others, others))
                    step = self.lr_q * np.triu(t1 - t2) / (_norm_lower_bound(t1 + t2) + tiny)
                    new.append(q - step @ q)
            self.qs[name] = new

    def draws(self, shapes):
        """Step ``count``'s random draws, psgd_jax's way: ``fold_in(PRNGKey(seed), count)``,
        split for the fit, split again for the rebalancing draw and for the probes (one
        key per leaf in JAX's leaf order: a dict's keys sorted). Jitted once per run."""
        import jax
        import jax.numpy as jnp

        if not hasattr(self, "_draws"):
            names = sorted(shapes)

            @jax.jit
            def draws(count):
                key = jax.random.fold_in(jax.random.PRNGKey(self.seed), count)
                _, key = jax.random.split(key)
                key, sub = jax.random.split(key)
                balance = jax.random.uniform(sub)
                _, sub = jax.random.split(key)
                keys = jax.random.split(sub, len(names))
                return balance, {n: jax.random.normal(k, shapes[n], jnp.float64)
                                 for k, n in zip(keys, names, strict=True)}

            self._draws = draws
        balance, probes = self._draws(self.count)
        return float(balance), {k: np.asarray(v) for k, v in probes.items()}

    def step(self, params, grads, lr):
        if self.mu is None:
            self.init(grads)
        self.mu = {k: self.b1 * self.mu[k] + (1 - self.b1) * g for k, g in grads.items()}
        m_hat = {k: m / (1 - self.b1 ** (self.count + 1)) for k, m in self.mu.items()}
        self.counter += 1
        if self.counter >= 1.0 / self.p:
            self.counter = 0
            self.fit(self.draws({k: g.shape for k, g in grads.items()}),
                     m_hat if self.use_momentum else grads)
        self.count += 1
        out = {}
        for k, m in m_hat.items():
            u = m
            for axis, q in enumerate(self.qs[k]):
                u = np.moveaxis(u, axis, -1)
                u = u * q * q if q.ndim == 1 else (u @ q.T) @ q
                u = np.moveaxis(u, -1, axis)
            u = u / max(1.0, np.sqrt(np.mean(u * u)) / 1.1)
            out[k] = -lr * (u + self.wd * params[k])
        return out

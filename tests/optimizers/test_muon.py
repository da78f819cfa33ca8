"""muon and its relatives: optax.contrib.muon's trajectories and state layout, float64 NumPy
references over 100 steps (Muon, NorMuon, AdaMuon, cautious decay, Polar Express with the
Gram iteration, Scion), labels read from Flax NNX paths, QK-clip, the published Polar
Express table, and the failures the optimizer issues found (integer leaves, b2 near 1,
complex leaves, a 100x100 Frobenius start)."""

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers import _muon_reference as ref
from tests.optimizers._contrib_reference import (
    assert_checkpoint_continues_bit_for_bit,
    assert_same_trajectory,
)


def _all_kw(m):
    dims = {"w": m.MuonDimensionNumbers(), "b": None}
    return dict(ns_coeffs="dion", ns_steps=5, beta=0.9, eps=1e-7, weight_decay=1e-2,
                weight_decay_mask={"w": True, "b": False}, mu_dtype=jnp.float32,
                nesterov=False, adaptive=True, preconditioning="aol", adam_b1=0.8,
                adam_b2=0.99, adam_eps_root=1e-9, adam_weight_decay=1e-3,
                adam_learning_rate=3e-3, muon_weight_dimension_numbers=dims,
                consistent_rms=0.2)


CASES = {
    "defaults": lambda m: m.muon(1e-2),
    "all": lambda m: m.muon(1e-2, **_all_kw(m)),
    "schatten-rows": lambda m: m.muon(1e-2, ((3.0, -3.2, 1.2),) * 4, 4,
                                      preconditioning="schatten"),
}


@pytest.mark.parametrize("name", CASES)
def test_trajectory_equals_optax_contrib(name):
    assert_same_trajectory(CASES[name](lossjax), CASES[name](optax.contrib))


def _layout(state):
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return [(jax.tree_util.keystr(path), jnp.shape(x), jnp.result_type(x))
            for path, x in leaves]


@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "ns_coeffs": "dion"},
                                    {"mu_dtype": jnp.bfloat16}])
def test_state_has_optax_contribs_layout(kwargs):
    params = {"w": jnp.zeros((6, 4)), "b": jnp.zeros(4)}
    ours = jax.eval_shape(lossjax.muon(1e-2, **kwargs).init, params)
    theirs = jax.eval_shape(optax.contrib.muon(1e-2, **kwargs).init, params)
    assert str(jax.tree.structure(ours)) == str(jax.tree.structure(theirs))
    assert _layout(ours) == _layout(theirs)


def test_signature_starts_with_optax_contribs():
    # optax's parameters first (names, kinds, defaults); lossjax's options keyword-only after
    ours = list(inspect.signature(lossjax.muon).parameters.values())
    theirs = list(inspect.signature(optax.contrib.muon).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours[:len(theirs)]] == [
        (p.name, p.kind, p.default) for p in theirs]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours[len(theirs):])


# ------------------------------------------------------------ float64 NumPy references

SHAPES = {"w": (6, 4), "wide": (3, 8), "qkv": (4, 2, 3), "b": (4,)}
DIMS = {"w": ((0,), (1,)), "wide": ((0,), (1,)), "qkv": ((0,), (1, 2)), "b": None}
STEPS = 100

VARIANTS = {
    "muon": (lambda: lossjax.muon(0.02, weight_decay=0.1, adam_weight_decay=0.01),
             lambda: ref.muon_reference(0.02, DIMS, wd=0.1, adam_wd=0.01)),
    "polar-express-gram": (
        lambda: lossjax.muon(0.02, "polar_express", newton_schulz_method="gram"),
        lambda: ref.muon_reference(0.02, DIMS, coeffs=lossjax.NS_COEFFS_PRESETS[
            "polar_express"][:5])),
    "normuon-cautious": (
        lambda: lossjax.normuon(0.02, weight_decay=0.5, cautious_weight_decay=True),
        lambda: ref.muon_reference(0.02, DIMS, second_moment="normuon", wd=0.5,
                                   cautious=True)),
    "adamuon": (lambda: lossjax.adamuon(0.02, b2=0.9),
                lambda: ref.muon_reference(0.02, DIMS, second_moment="adamuon", nb2=0.9)),
    "scion-constrained": (
        lambda: lossjax.scion(0.02, momentum=0.2, spectral_radius=3.0, sign_radius=0.5,
                              constrained=True),
        lambda: ref.scion_reference(0.02, DIMS, alpha=0.2, rho_spectral=3.0, rho_sign=0.5,
                                    constrained=True)),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_equals_float64_numpy_reference_over_100_steps(name, x64):
    build, reference = VARIANTS[name]
    rng = np.random.default_rng(1)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = ref.random_gradients(SHAPES, STEPS)
    ours = ref.run_lossjax(build(), params, grads)
    expected = ref.run_reference(reference(), params, grads)
    ref.assert_close_to_reference(ours, expected, rtol=1e-9, atol=1e-12)


def test_polar_express_preset_is_the_published_table():
    # Amsel et al. (2025), Algorithm 1: the table, then all rows but the last divided by
    # the safety factor 1.01 as (a/1.01, b/1.01^3, c/1.01^5)
    table = [(8.28721201814563, -23.595886519098837, 17.300387312530933),
             (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
             (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
             (3.3184196573706015, -2.488488024314874, 0.51004894012372),
             (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
             (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
             (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
             (1.875, -1.25, 0.375)]
    damped = [(a / 1.01, b / 1.01**3, c / 1.01**5) for a, b, c in table[:-1]] + table[-1:]
    np.testing.assert_array_equal(np.array(lossjax.NS_COEFFS_PRESETS["polar_express"]),
                                  np.array(damped))
    # every polynomial but the last maps [0.001, 1] close to 1 (the point of the table)
    x = np.geomspace(1e-3, 1.0, 200)
    for a, b, c in damped:
        x = a * x + b * x**3 + c * x**5
    assert np.all(np.abs(x - 1) < 0.05)


# ------------------------------------------------------------------------- the labels


def test_labels_fit_a_flax_nnx_transformer():
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.embed = nnx.Embed(11, 8, rngs=rngs)
            self.attn = nnx.MultiHeadAttention(2, 8, decode=False, rngs=rngs)
            self.norm = nnx.LayerNorm(8, rngs=rngs)
            self.mlp = nnx.Linear(8, 16, rngs=rngs)
            self.conv = nnx.Conv(16, 16, (3,), rngs=rngs)
            self.lm_head = nnx.Linear(16, 11, rngs=rngs)

    model = nnx.eval_shape(lambda: Model(nnx.Rngs(0)))   # shapes are all the labels need
    labels = lossjax.muon_labels(nnx.state(model, nnx.Param))
    flat = {jax.tree_util.keystr(path).replace(".value", ""): d for path, d in
            jax.tree_util.tree_flatten_with_path(labels, is_leaf=lambda x: x is None
                                                 or isinstance(x, tuple))[0]}
    dims = lossjax.MuonDimensionNumbers
    assert flat["['attn']['query']['kernel']"] == dims(0, (1, 2))   # [d, heads, head_dim]
    assert flat["['attn']['out']['kernel']"] == dims((0, 1), 2)     # [heads, head_dim, d]
    assert flat["['mlp']['kernel']"] == dims(0, 1)
    assert flat["['conv']['kernel']"] == dims((0, 1), 2)            # [width, c_in, c_out]
    for fallback in ("['attn']['query']['bias']", "['embed']['embedding']",
                     "['lm_head']['kernel']", "['norm']['scale']", "['mlp']['bias']"):
        assert flat[fallback] is None, fallback
    overridden = lossjax.muon_labels(nnx.state(model, nnx.Param), overrides={"conv": None})
    assert jax.tree.leaves(overridden["conv"], is_leaf=lambda x: x is None) == [None, None]

    # one step traces on the NNX state (shapes only: a cheap check)
    state = nnx.state(model, nnx.Param)
    tx = lossjax.muon(0.02)
    opt_state = jax.eval_shape(tx.init, state)
    updates, _ = jax.eval_shape(tx.update, state, opt_state, state)
    assert jax.tree.map(jnp.shape, updates) == jax.tree.map(jnp.shape, state)
    mu = opt_state.inner_states["muon"].inner_state[0].mu
    assert mu["attn"]["query"]["kernel"].get_value().shape == (8, 2, 4)   # a Muon moment


# ------------------------------------------------------------------------ known failures


def test_integer_leaves_b2_near_one_and_complex_leaves():
    params = {"w": jnp.ones((3, 4)) + jnp.eye(3, 4), "b": jnp.ones(4),
              "steps": jnp.array([1, 2], jnp.int32)}
    opt = lossjax.muon(0.1, adam_b2=1 - 1e-9)

    @jax.jit
    def two_steps(params):
        grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["b"]), allow_int=True)(
            params)
        u1, state = opt.update(grads, opt.init(params), params)
        u2, _ = opt.update(grads, state, optax.apply_updates(params, u1))
        return optax.apply_updates(params, u1), u2

    new, u2 = two_steps(params)
    assert new["steps"].dtype == jnp.int32
    np.testing.assert_array_equal(new["steps"], params["steps"])
    # adam(b2=1 - 1e-9, Nesterov)'s first step: -lr·(b1(1 - b1)/(1 - b1²) + 1)·sign(g),
    # and not 0 afterwards
    np.testing.assert_allclose(new["b"], params["b"] - 0.1 * (0.09 / 0.19 + 1), rtol=1e-6)
    assert np.all(np.abs(np.asarray(u2["b"])) > 0.05)
    with pytest.raises(ValueError, match="integer"):
        lossjax.muon(0.1, muon_weight_dimension_numbers=lossjax.MuonDimensionNumbers()
                     ).init({"w": jnp.ones((3, 4), jnp.int32)})


def test_complex_matrix_steps_along_its_polar_factor(x64):
    # a complex matrix is a Muon leaf (as optax's): X Xᴴ in the iteration, so the first
    # step is −lr·NewtonSchulz(G) for the complex NumPy transcription
    rng = np.random.default_rng(2)
    g = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    params = {"w": jnp.ones((3, 4), jnp.complex128)}
    opt = lossjax.muon(0.1, nesterov=False)
    updates, _ = jax.jit(opt.update)({"w": jnp.asarray(g)}, opt.init(params), params)
    expected = -0.1 * math.sqrt(4 / 3) * ref.newton_schulz(g, ref.STANDARD)
    np.testing.assert_allclose(updates["w"], expected, rtol=1e-10, atol=1e-13)


def test_inject_hyperparams_builds_muon_and_normuon_inside_the_step():
    # the optimizer is rebuilt inside the jitted update: its coefficient table and counts
    # must stay Python constants there
    params = {"w": jnp.ones((3, 4)) + jnp.eye(3, 4), "b": jnp.ones(4)}

    @jax.jit
    def first_updates(params):
        out = []
        for build in (lossjax.muon, lossjax.normuon):
            for opt in (lossjax.inject_hyperparams(build)(learning_rate=0.1), build(0.1)):
                out.append(opt.update(params, opt.init(params), params)[0])
        return out

    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6)  # noqa: E731
    injected, plain, injected_nor, plain_nor = first_updates(params)
    jax.tree.map(close, injected, plain)   # traced hyperparameters fuse differently
    jax.tree.map(close, injected_nor, plain_nor)


def test_frobenius_start_orthogonalises_a_100x100_gaussian_as_optax_wants():
    params = {"w": jax.random.normal(jax.random.key(42), (100, 100))}
    opt = lossjax.muon(1.0)
    updates = jax.jit(lambda p: opt.update(p, opt.init(p), p)[0])(params)
    singular = np.linalg.svd(np.asarray(updates["w"]), compute_uv=False)
    assert singular.min() > 0.1 and singular.max() < 2.0


def test_gram_iteration_equals_the_standard_one(x64):
    x = jax.random.normal(jax.random.key(3), (2, 5, 40), jnp.float64)
    coeffs = lossjax.NS_COEFFS_PRESETS["polar_express"][:5]
    standard, gram = jax.jit(lambda x: [lossjax.newton_schulz(x, coeffs, method=m)
                                        for m in ("standard", "gram")])(x)
    np.testing.assert_allclose(gram, standard, rtol=1e-9, atol=1e-11)


def test_qk_clip_shrinks_each_heads_logit_to_the_threshold(x64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    wq, wk = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))   # [d, heads, head_dim]

    def logits(wq, wk):   # [heads, tokens, tokens]
        return np.einsum("ihd,jhd->hij", np.einsum("td,dhk->thk", x, wq),
                         np.einsum("td,dhk->thk", x, wk))

    maxima = np.abs(logits(wq, wk)).max(axis=(1, 2))
    threshold = float(np.median(maxima))
    params = {"q": jnp.asarray(wq), "k": jnp.asarray(wk), "b": jnp.ones(3)}
    zero = jax.tree.map(jnp.zeros_like, params)
    tx = lossjax.qk_clip(threshold, alpha=0.3, key_mask={"q": False, "k": True, "b": False})
    per_head = jnp.asarray(maxima.reshape(1, 3, 1))
    updates, _ = tx.update(zero, tx.init(params), params, attention_logit_max={
        "q": per_head, "k": per_head, "b": None})
    new = optax.apply_updates(params, updates)
    clipped = np.abs(logits(np.asarray(new["q"]), np.asarray(new["k"]))).max(axis=(1, 2))
    np.testing.assert_allclose(clipped, np.minimum(maxima, threshold), rtol=1e-12)
    np.testing.assert_array_equal(new["b"], params["b"])
    with pytest.raises(ValueError, match="key_mask"):
        lossjax.qk_clip(10.0, alpha=0.3)


def test_checkpoint_continues_bit_for_bit(tmp_path):
    assert_checkpoint_continues_bit_for_bit(lossjax.normuon(1e-2), tmp_path)


@pytest.mark.parametrize("build, name", [
    (lambda: lossjax.muon(-1.0), "learning_rate"),
    (lambda: lossjax.muon(0.1, beta=1.0), "beta"),
    (lambda: lossjax.muon(0.1, ns_steps=0), "ns_steps"),
    (lambda: lossjax.muon(0.1, ns_coeffs=(1.0, 2.0)), "ns_coeffs"),
    (lambda: lossjax.muon(0.1, ns_coeffs="nope"), "ns_coeffs"),
    (lambda: lossjax.muon(0.1, ((3.0, -3.2, 1.2),) * 6, 5), "ns_coeffs"),
    (lambda: lossjax.muon(0.1, eps=-1.0), "eps"),
    (lambda: lossjax.muon(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: lossjax.muon(0.1, preconditioning="qr"), "preconditioning"),
    (lambda: lossjax.muon(0.1, newton_schulz_method="qr"), "newton_schulz_method"),
    (lambda: lossjax.muon(0.1, second_moment="adam"), "second_moment"),
    (lambda: lossjax.muon(0.1, adam_b1=1.0), "adam_b1"),
    (lambda: lossjax.muon(0.1, adam_b2=-0.1), "adam_b2"),
    (lambda: lossjax.muon(0.1, adam_learning_rate=-1.0), "adam_learning_rate"),
    (lambda: lossjax.muon(0.1, consistent_rms=-1.0), "consistent_rms"),
    (lambda: lossjax.normuon(0.1, b2=1.0), "b2"),
    (lambda: lossjax.scion(0.1, momentum=0.0), "momentum"),
    (lambda: lossjax.scion(0.1, spectral_radius=-1.0), "spectral_radius"),
    (lambda: lossjax.qk_clip(0.0), "threshold"),
])
def test_bad_hyperparameters_raise(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_bad_dimension_numbers_raise_at_init():
    opt = lossjax.muon(0.1, muon_weight_dimension_numbers=lossjax.MuonDimensionNumbers(0, 0))
    with pytest.raises(ValueError, match="muon_weight_dimension_numbers"):
        opt.init(jnp.zeros((3, 4), jnp.float32))

"""The loss contract, checked for every entry of the sample registry (``_registry.py``).

Every public loss: ``weights`` multiply; ``where`` drops examples from the mean and gives
exactly-zero gradients even with NaN/±inf in the dropped entries (every float input);
``"sum"``/``"none"`` agree with ``"mean"``; an unknown ``reduction`` raises; half inputs give
the float32 answer; ``jit``/``vmap`` agree with eager; mismatched shapes raise naming both
shapes; complex inputs raise; float options work traced under ``vmap``. The family tests
keep the reference values and edge cases.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import losses
from tests.losses._registry import EXEMPT, SAMPLES, Sample

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

BY_LABEL = {s.label: s for s in SAMPLES}


def _close(actual, expected, rtol=2e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=atol)


def _skip(sample: Sample, check: str) -> None:
    if check in sample.skip:
        pytest.skip(f"{sample.label}: {sample.skip[check]}")


def samples(*checks: str):
    """Parametrise over the registry, leaving out the entries that skip ``checks``."""
    chosen = [s for s in SAMPLES if not any(c in s.skip for c in checks)]
    return pytest.mark.parametrize("sample", chosen, ids=[s.label for s in chosen])


# ----- coverage ---------------------------------------------------------------------------

def test_every_public_loss_has_an_entry_or_an_exemption():
    public = set(losses.__all__)
    registered = {s.name for s in SAMPLES}
    missing = sorted(public - registered - set(EXEMPT))
    assert not missing, f"public losses without a registry entry: {missing}"
    assert not registered - public, f"entries for no public loss: {registered - public}"
    assert not set(EXEMPT) - public, f"exemptions for no public name: {set(EXEMPT) - public}"
    assert not registered & set(EXEMPT), f"both registered and exempt: {registered & set(EXEMPT)}"


def test_every_float_option_is_swept_traced_or_declared_static():
    unswept = []
    for name in sorted({s.name for s in SAMPLES}):
        entries = [s for s in SAMPLES if s.name == name]
        covered = {k for s in entries for k in (*s.hyper, *s.static)}
        for param in inspect.signature(getattr(losses, name)).parameters.values():
            if param.kind is param.KEYWORD_ONLY and "float" in str(param.annotation):
                if param.name not in covered:
                    unswept.append(f"{name}({param.name})")
    assert not unswept, f"float options neither in `hyper` nor in `static`: {unswept}"


def test_signatures_show_the_common_keywords():
    for name in sorted({s.name for s in SAMPLES} - {"ctc_loss", "perplexity"}):
        params = inspect.signature(getattr(losses, name)).parameters
        for keyword in ("weights", "where", "reduction"):
            assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY, (name, keyword)


# ----- reductions and weights -------------------------------------------------------------

@samples("reductions")
def test_reductions_agree_and_an_unknown_one_raises(sample):
    none = np.asarray(sample(reduction="none"))
    assert none.dtype == np.float32 and none.ndim >= 1
    _close(sample(reduction="sum"), none.sum())
    if "mean" not in sample.skip:
        _close(sample(), none.mean())
    with pytest.raises(ValueError, match="reduction"):
        sample(reduction="average")


@samples("reductions", "weights")
def test_weights_multiply_the_unreduced_loss(sample):
    none = np.asarray(sample(reduction="none"))
    w = np.linspace(0.5, 2.0, none.size, dtype=np.float32).reshape(none.shape)
    _close(sample(weights=w, reduction="none"), w * none)
    _close(sample(weights=w, reduction="sum"), (w * none).sum())


# ----- where: dropped entries reach neither the value nor the gradient ---------------------

def _example_mask(sample: Sample) -> np.ndarray:
    shape = np.shape(sample(reduction="none")) if "reductions" not in sample.skip else None
    if shape is None:  # a loss without "none": the examples are the labels' entries
        shape = np.shape(sample.args[1])
    mask = np.ones(shape, bool)
    mask[0] = False
    return mask


def _poisoned(sample: Sample) -> tuple:
    """Float args with NaN, +inf and −inf in the slices of the dropped example 0."""
    args = [np.array(a) for a in sample.args]
    for i in sample.float_indices():
        axis = sample.axis_of(i)
        if axis is None:
            continue
        moved = np.moveaxis(args[i], axis, 0)  # a view into args[i]
        shape = moved[0].shape
        values = np.full(int(np.prod(shape)), np.nan, np.float32)
        values[1::3], values[2::3] = np.inf, -np.inf
        moved[0] = values.reshape(shape)  # also for a 1-D argument, where moved[0] is a scalar
    return tuple(args)


def _dropped_slices(sample: Sample, grads) -> list[np.ndarray]:
    out = []
    for i, g in zip(sample.float_indices(), grads, strict=True):
        if sample.axis_of(i) is not None:
            out.append(np.moveaxis(np.asarray(g), sample.axis_of(i), 0)[0])
    return out


@samples("where")
def test_where_drops_examples_even_with_nan_and_inf_there(sample):
    mask = _example_mask(sample)
    poisoned = _poisoned(sample)
    # One compilation serves the clean and the poisoned call (same shapes).
    value_and_grad = jax.jit(jax.value_and_grad(lambda *a: sample(*a, where=mask),
                                                argnums=sample.float_indices()))
    clean_value, clean_grads = value_and_grad(*sample.args)
    value, grads = value_and_grad(*poisoned)
    assert np.isfinite(value), f"{sample.label}: NaN/inf in a dropped entry reached the value"
    _close(value, clean_value)
    for g, clean in zip(grads, clean_grads, strict=True):
        assert np.all(np.isfinite(g)), f"{sample.label}: non-finite gradient {g}"
        _close(g, clean)
    for dropped in _dropped_slices(sample, grads):
        assert np.all(dropped == 0.0), f"{sample.label}: dropped entries' gradient {dropped}"


@samples("where", "reductions")
def test_where_leaves_dropped_examples_out_of_the_mean(sample):
    mask = _example_mask(sample)
    masked_none = np.asarray(sample(where=mask, reduction="none"))
    assert np.all(masked_none[~mask] == 0.0)
    if "where_independent" not in sample.skip:
        _close(masked_none[mask], np.asarray(sample(reduction="none"))[mask])
    _close(sample(where=mask, reduction="sum"), masked_none.sum())
    if "mean" not in sample.skip:
        _close(sample(where=mask), masked_none.sum() / mask.sum())
        assert float(sample(where=np.zeros_like(mask))) == 0.0


# ----- optax's per-class where -------------------------------------------------------------

CLASS_WHERE = [s for s in SAMPLES if s.class_where]


def _dropped_class(sample: Sample) -> int:
    """A class no integer label names (slicing it out then renumbers the labels only)."""
    used = {int(v) for a in sample.args if np.issubdtype(np.asarray(a).dtype, np.integer)
            for v in np.ravel(a)}
    return min(set(range(np.shape(sample.args[0])[-1])) - used)


def test_class_where_entries_name_float_args_with_the_class_axis():
    assert {s.name for s in CLASS_WHERE} >= {
        "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
        "kl_divergence", "cosine_similarity", "ranking_softmax"}
    for s in CLASS_WHERE:
        classes = np.shape(s.args[0])[-1]
        assert all(np.shape(s.args[i])[-1] == classes for i in s.class_where), s.label


@pytest.mark.parametrize("sample", CLASS_WHERE, ids=[s.label for s in CLASS_WHERE])
def test_a_per_class_where_drops_classes_like_slicing_them_out(sample):
    j = _dropped_class(sample)
    mask = np.ones(np.shape(sample.args[0]), bool)
    mask[..., j] = False
    sliced = []
    for i, a in enumerate(sample.args):
        if i in sample.class_where:
            sliced.append(np.delete(a, j, axis=-1))
        elif np.issubdtype(np.asarray(a).dtype, np.integer):
            sliced.append(np.where(a > j, a - 1, a).astype(a.dtype))
        else:
            sliced.append(a)
    poisoned = [a.copy() for a in sample.args]
    for i in sample.class_where:
        poisoned[i][..., j] = np.nan
    value_and_grad = jax.jit(jax.value_and_grad(
        lambda *a: sample(*a, where=mask, reduction="sum"), argnums=sample.class_where))
    value, grads = value_and_grad(*poisoned)
    _close(value, sample(*sliced, reduction="sum"))
    _close(sample(*sample.args, where=mask, reduction="none"), sample(*sliced, reduction="none"))
    for g in grads:
        assert np.all(np.isfinite(g)), f"{sample.label}: non-finite gradient"
        assert np.all(np.asarray(g)[..., j] == 0.0), f"{sample.label}: dropped class gradient"


# ----- dtypes, transformations, errors ----------------------------------------------------

@samples("half")
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
def test_half_inputs_give_the_float32_answer(sample, dtype):
    half = [jnp.asarray(a, dtype) if i in sample.float_indices() else a
            for i, a in enumerate(sample.args)]
    upcast = [jnp.asarray(a, jnp.float32) if i in sample.float_indices() else a
              for i, a in enumerate(half)]
    out = sample(*half)
    assert out.dtype == jnp.float32
    _close(out, sample(*upcast), rtol=1e-4, atol=1e-5)


@samples()
def test_jit_and_vmap_agree_with_eager(sample):
    # One compilation: jit of vmap of value_and_grad, against eager values of both copies.
    shifted = (sample.args[0] + np.float32(0.1),) + tuple(sample.args[1:])
    stacked = [np.stack([a, b]) for a, b in zip(sample.args, shifted, strict=True)]
    value_and_grad = jax.value_and_grad(sample, argnums=sample.float_indices())
    values, grads = jax.jit(jax.vmap(value_and_grad))(*stacked)
    _close(values, [sample(), sample(*shifted)], rtol=1e-5)
    for g, i in zip(grads, sample.float_indices(), strict=True):
        assert g.shape == stacked[i].shape and np.all(np.isfinite(g))


@samples("shapes")
def test_mismatched_shapes_raise_naming_both(sample):
    i, j = sample.mismatch
    args = list(sample.args)
    args[j] = args[j][..., None]
    with pytest.raises(ValueError) as error:
        sample(*args)
    message = str(error.value)
    assert str(tuple(np.shape(args[i]))) in message and str(args[j].shape) in message, message


@samples("where")
def test_bad_weights_and_where_raise(sample):
    mask = _example_mask(sample)
    with pytest.raises(ValueError, match="where"):
        sample(where=mask.astype(np.float32))
    if "weights" not in sample.skip:
        with pytest.raises(ValueError, match="weights"):
            sample(weights=np.ones(mask.shape + (2,), np.float32))


@samples()
def test_complex_inputs_raise(sample):
    i = sample.float_indices()[0]
    args = list(sample.args)
    args[i] = args[i].astype(np.complex64)
    with pytest.raises(ValueError, match="complex|floating"):
        sample(*args)


TRACED = [(s, k) for s in SAMPLES for k in s.hyper]
STATIC = [(s, k) for s in SAMPLES for k in s.static]


@pytest.mark.parametrize(("sample", "option"), TRACED,
                         ids=[f"{s.label}-{k}" for s, k in TRACED])
def test_float_options_work_traced_under_vmap(sample, option):
    values = sample.hyper[option]
    swept = jax.jit(jax.vmap(lambda v: sample(**{option: v})))(jnp.asarray(values, jnp.float32))
    _close(swept, [sample(**{option: v}) for v in values], rtol=1e-5)


@pytest.mark.parametrize(("sample", "option"), STATIC,
                         ids=[f"{s.label}-{k}" for s, k in STATIC])
def test_static_options_raise_when_traced(sample, option):
    with pytest.raises(ValueError, match=option):
        jax.vmap(lambda v: sample(**{option: v}))(jnp.asarray([0.1, 0.2], jnp.float32))

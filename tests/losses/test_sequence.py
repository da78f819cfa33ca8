"""CTC loss, greedy CTC decoding and perplexity.

References are independent float64 NumPy code: CTC by enumerating every alignment (tiny T
and K), its gradient by central differences of that enumeration, perplexity from the
formula. optax.ctc_loss is the second opinion on larger random batches.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import lossjax

# --------------------------------------------------------------------------- references


def _log_softmax64(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _collapse(path, blank_id):
    out, previous = [], None
    for token in path:
        if token != previous and token != blank_id:
            out.append(token)
        previous = token
    return out


@functools.cache
def _alignments(num_classes, t_len, target, blank_id):
    """``[n, t_len]``: every alignment of length ``t_len`` that collapses to ``target``."""
    paths = [path for path in itertools.product(range(num_classes), repeat=t_len)
             if _collapse(path, blank_id) == list(target)]
    return np.array(paths, np.int64).reshape(len(paths), t_len)


def brute_force_nll(logits, labels, logit_lengths, label_lengths, blank_id=0):
    """−log Σ_{alignments π of length T_b collapsing to y_b} Π_t softmax(x_t)[π_t], float64.

    (The alignments of each (T_b, y_b) are enumerated once and cached; the products over
    them are one NumPy gather, so the finite differences below stay cheap.)
    """
    log_probs = _log_softmax64(logits)
    num_classes = log_probs.shape[-1]
    out = []
    for lp, y, t_len, l_len in zip(log_probs, labels, logit_lengths, label_lengths, strict=True):
        target = tuple(int(k) for k in np.asarray(y)[:l_len])
        paths = _alignments(num_classes, int(t_len), target, blank_id)
        total = np.exp(lp[np.arange(int(t_len)), paths].sum(-1)).sum()
        out.append(-np.log(total) if total > 0 else np.inf)
    return np.array(out)


def brute_force_grad(logits, labels, logit_lengths, label_lengths, blank_id=0, h=1e-5):
    """Central differences of Σ_b brute_force_nll over every logit, float64."""
    logits = np.asarray(logits, np.float64)
    grad = np.zeros_like(logits)
    for index in np.ndindex(*logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[index] += h
        minus[index] -= h
        grad[index] = (brute_force_nll(plus, labels, logit_lengths, label_lengths, blank_id).sum()
                       - brute_force_nll(minus, labels, logit_lengths, label_lengths,
                                         blank_id).sum()) / (2 * h)
    return grad


# The tests call ctc_loss through jit: one compilation per shape and keyword set, shared
# by the tests, where eager calls compile each operation of the forward and backward pass
# separately (seconds per shape). The eager-only value checks are tested eagerly below
# (test_bad_input_raises_value_error, test_padding_labels_beyond_length_are_not_checked).
_CTC_STATIC = ("reduction", "blank_id", "zero_infinity")


@functools.partial(jax.jit, static_argnames=_CTC_STATIC)
def _ctc_jit(logits, labels, logit_lengths, label_lengths, **kwargs):
    return lossjax.ctc_loss(logits, labels, logit_lengths=logit_lengths,
                            label_lengths=label_lengths, **kwargs)


@functools.partial(jax.jit, static_argnames=_CTC_STATIC)
def _ctc_grad_jit(logits, labels, logit_lengths, label_lengths, **kwargs):
    return jax.grad(lambda x: lossjax.ctc_loss(x, labels, logit_lengths=logit_lengths,
                                               label_lengths=label_lengths, **kwargs))(logits)


def _ctc_args(logits, labels, logit_lengths, label_lengths):
    return (logits, np.asarray(labels), np.asarray(logit_lengths), np.asarray(label_lengths))


def ctc(logits, labels, logit_lengths, label_lengths, **kwargs):
    return _ctc_jit(*_ctc_args(logits, labels, logit_lengths, label_lengths), **kwargs)


def ctc_grad(logits, labels, logit_lengths, label_lengths, **kwargs):
    """d ctc(...)/d logits (the reduction must give a scalar)."""
    return _ctc_grad_jit(*_ctc_args(logits, labels, logit_lengths, label_lengths), **kwargs)


def optax_paddings(lengths, size):
    return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


def random_batch(batch, time, classes, max_label, seed, blank_id=0):
    """Random logits; labels avoid blank_id; lengths vary but always admit an alignment."""
    rng = np.random.default_rng(seed)
    logits = (2 * rng.normal(size=(batch, time, classes))).astype(np.float32)
    non_blank = np.array([k for k in range(classes) if k != blank_id])
    labels = rng.choice(non_blank, size=(batch, max_label)).astype(np.int32)
    label_lengths = rng.integers(0, max_label + 1, size=batch).astype(np.int32)
    logit_lengths = rng.integers(2 * label_lengths + 1, time + 1).astype(np.int32)
    return logits, labels, logit_lengths, label_lengths


# A tiny batch covering: repeats (need a blank between), padding in time and labels,
# an empty label, a label that fills T exactly, and label values equal to the blank's
# neighbours. T = 5, K = 3: 243 alignments per sequence.
TINY_LABELS = np.array([[1, 1, 0], [2, 1, 2], [1, 2, 0], [0, 0, 0], [2, 2, 2]], np.int32)
TINY_LABEL_LENGTHS = np.array([2, 3, 2, 0, 1], np.int32)
TINY_LOGIT_LENGTHS = np.array([5, 5, 3, 4, 5], np.int32)


def tiny_logits(seed=0):
    return np.random.default_rng(seed).normal(size=(5, 5, 3))


# --------------------------------------------------------------------------- CTC values


@pytest.mark.usefixtures("x64")
def test_ctc_matches_brute_force_values_and_gradients_float64():
    x = tiny_logits()
    expected = brute_force_nll(x, TINY_LABELS, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS)
    got = ctc(x, TINY_LABELS, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS, reduction="none")
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12)

    grad = ctc_grad(x, TINY_LABELS, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS, reduction="sum")
    expected_grad = brute_force_grad(x, TINY_LABELS, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-8)


@pytest.mark.usefixtures("x64")
def test_ctc_brute_force_with_nonzero_blank_id():
    x = tiny_logits(seed=1)
    # blank is class 1 here, so the labels use classes 0 and 2
    labels = np.array([[0, 0, 2], [2, 0, 2], [0, 2, 2], [2, 2, 2], [0, 0, 0]], np.int32)
    kwargs = dict(reduction="none", blank_id=1)
    expected = brute_force_nll(x, labels, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS, blank_id=1)
    np.testing.assert_allclose(
        ctc(x, labels, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS, **kwargs), expected, rtol=1e-12)
    grad = ctc_grad(x, labels, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS, reduction="sum",
                    blank_id=1)
    np.testing.assert_allclose(
        grad, brute_force_grad(x, labels, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS, blank_id=1),
        atol=1e-8)


@pytest.mark.usefixtures("x64")
def test_ctc_gradient_matches_finite_differences_of_itself():
    x = tiny_logits(seed=2)
    check_grads(jax.jit(lambda x: ctc(x, TINY_LABELS, TINY_LOGIT_LENGTHS, TINY_LABEL_LENGTHS)),
                (x,), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_blank_id_relabelling_is_a_permutation_of_classes():
    logits, labels, logit_lengths, label_lengths = random_batch(4, 20, 6, 6, seed=3)
    # Move class 0 (the blank) to position 4: swap classes 0 and 4 in logits and labels.
    perm = np.array([4, 1, 2, 3, 0, 5])
    swapped_labels = perm[labels]
    base = ctc(logits, labels, logit_lengths, label_lengths, reduction="none")
    moved = ctc(logits[..., perm], swapped_labels, logit_lengths, label_lengths,
                reduction="none", blank_id=4)
    np.testing.assert_allclose(moved, base, rtol=1e-6)


@pytest.mark.usefixtures("x64")
def test_ctc_matches_optax_on_random_batches():
    # (with float64 enabled, optax computes in float64: the float32 lossjax result is
    # compared with a more accurate reference)
    time, max_label = 60, 20
    logits, labels, logit_lengths, label_lengths = random_batch(16, time, 12, max_label, 0)
    ours = ctc(logits, labels, logit_lengths, label_lengths, reduction="none")

    def optax_loss(x):
        return optax.ctc_loss(x, optax_paddings(logit_lengths, time), labels,
                              optax_paddings(label_lengths, max_label))

    # optax's value and gradient in one compiled program (eagerly: seconds of op-by-op)
    theirs, grad_theirs = jax.jit(lambda x: (optax_loss(x), jax.grad(
        lambda x: optax_loss(x).sum())(x)))(logits)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)

    grad_ours = ctc_grad(logits, labels, logit_lengths, label_lengths, reduction="sum")
    np.testing.assert_allclose(grad_ours, grad_theirs, atol=2e-5)


def test_reductions_follow_pytorch_convention():
    logits, labels, logit_lengths, label_lengths = random_batch(6, 30, 7, 8, seed=4)
    label_lengths[0] = 0  # mean divides by max(length, 1)
    per_seq = np.asarray(ctc(logits, labels, logit_lengths, label_lengths, reduction="none"))
    np.testing.assert_allclose(ctc(logits, labels, logit_lengths, label_lengths,
                                   reduction="sum"), per_seq.sum(), rtol=1e-6)
    expected_mean = np.mean(per_seq / np.maximum(label_lengths, 1))
    np.testing.assert_allclose(ctc(logits, labels, logit_lengths, label_lengths),
                               expected_mean, rtol=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        ctc(logits, labels, logit_lengths, label_lengths, reduction="avg")


# --------------------------------------------------------------------------- numerics


def _confident_batch(scale, batch=4, time=400, classes=16, max_label=100, seed=0):
    """Logits peaked (margin ``scale``) on one alignment: every label held 2 frames, then 2
    blanks. The loss is tiny and positive; optax's float32 loss goes below 0 (#1771)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, classes, size=(batch, max_label)).astype(np.int32)
    path = np.stack([np.repeat(np.stack([row, np.zeros_like(row)], 1), 2, axis=1).ravel()
                     for row in labels])
    logits = scale * np.eye(classes)[path] + 0.1 * rng.normal(size=(batch, time, classes))
    return logits, labels, np.full(batch, time, np.int32), np.full(batch, max_label, np.int32)


@pytest.mark.parametrize("scale", [12.0, 20.0, 40.0])
@pytest.mark.usefixtures("x64")
def test_confident_long_sequences_in_float32_stay_positive_and_accurate(scale):
    logits, labels, logit_lengths, label_lengths = _confident_batch(scale)
    exact = ctc(logits, labels, logit_lengths, label_lengths, reduction="none")  # float64
    got = ctc(logits.astype(np.float32), labels, logit_lengths, label_lengths,
              reduction="none")
    assert got.dtype == jnp.float32
    assert np.all(np.asarray(got) > 0)
    assert np.all(np.asarray(exact) > 0)
    # relative accuracy even when the loss is ~1e-14 (a near-certain labelling)
    np.testing.assert_allclose(got, exact, rtol=1e-4)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.0, 1e4), seed=st.integers(0, 2**16))
def test_ctc_is_non_negative_and_finite_for_any_logit_scale(scale, seed):
    logits, labels, logit_lengths, label_lengths = random_batch(3, 12, 4, 4, seed)
    loss = ctc(logits * np.float32(scale), labels, logit_lengths, label_lengths,
               reduction="none")
    assert np.all(np.asarray(loss) >= 0)
    assert np.all(np.isfinite(np.asarray(loss)))


def test_gradient_is_exactly_zero_beyond_each_logit_length():
    logits, labels, logit_lengths, label_lengths = random_batch(6, 25, 5, 6, seed=5)
    grad = np.asarray(ctc_grad(logits, labels, logit_lengths, label_lengths))
    for b, t_len in enumerate(logit_lengths):
        assert np.all(grad[b, t_len:] == 0.0)
        assert np.any(grad[b, :t_len] != 0.0)
        # each valid frame's gradient is softmax − posterior: it sums to 0 over classes
        np.testing.assert_allclose(grad[b, :t_len].sum(-1), 0.0, atol=1e-6)
    # padded frames' contents do not matter at all
    noisy = logits.copy()
    for b, t_len in enumerate(logit_lengths):
        noisy[b, t_len:] = 1e4
    np.testing.assert_array_equal(ctc(noisy, labels, logit_lengths, label_lengths),
                                  ctc(logits, labels, logit_lengths, label_lengths))


@pytest.mark.usefixtures("x64")
def test_repeated_labels_need_a_blank_between_them():
    x = np.random.default_rng(6).normal(size=(3, 3, 3))
    labels = np.array([[1, 1], [1, 1], [1, 2]], np.int32)
    # [1, 1] in 2 frames is impossible; in 3 frames only "1 blank 1" works; [1, 2] fits in 2
    loss = ctc(x, labels, [2, 3, 2], [2, 2, 2], reduction="none")
    lp = _log_softmax64(x)
    assert np.isposinf(loss[0])
    np.testing.assert_allclose(loss[1], -(lp[1, 0, 1] + lp[1, 1, 0] + lp[1, 2, 1]), rtol=1e-12)
    np.testing.assert_allclose(loss[2], -(lp[2, 0, 1] + lp[2, 1, 2]), rtol=1e-12)


def test_impossible_alignments_give_inf_or_zero_with_zero_gradients():
    logits, labels, logit_lengths, label_lengths = random_batch(4, 14, 5, 6, seed=7)
    labels[1] = [1, 2, 3, 4, 1, 2]
    label_lengths[1], logit_lengths[1] = 6, 5  # more labels than frames
    labels[2, :3] = [3, 3, 3]
    label_lengths[2], logit_lengths[2] = 3, 4  # repeats need 5 frames

    @jax.jit  # every value and gradient below in one compiled program
    def losses_and_grads(x):
        def loss(x, reduction, zero_infinity=False):
            return lossjax.ctc_loss(x, labels, logit_lengths=logit_lengths,
                                    label_lengths=label_lengths, reduction=reduction,
                                    zero_infinity=zero_infinity)
        grads = [jax.grad(loss)(x, "sum", zero_infinity) for zero_infinity in (False, True)]
        return loss(x, "none"), loss(x, "sum"), loss(x, "none", True), grads

    per_seq, total, zeroed, grads = losses_and_grads(logits)
    assert np.isposinf(per_seq[1]) and np.isposinf(per_seq[2])
    assert np.isposinf(total)
    np.testing.assert_array_equal(zeroed, np.where(np.isinf(per_seq), 0.0, per_seq))
    # the feasible sequences' gradients are unaffected by their infeasible neighbours
    alone = ctc_grad(logits[[0, 3]], labels[[0, 3]], logit_lengths[[0, 3]],
                     label_lengths[[0, 3]], reduction="sum")
    for grad in map(np.asarray, grads):  # zero_infinity False, True
        assert np.all(np.isfinite(grad))
        assert np.all(grad[[1, 2]] == 0.0)
        np.testing.assert_allclose(grad[[0, 3]], alone, atol=1e-6)


def test_zero_frames_and_empty_labels():
    x = np.zeros((2, 4, 3), np.float32)
    loss = ctc(x, np.array([[1], [1]], np.int32), [0, 0], [0, 1], reduction="none")
    np.testing.assert_array_equal(loss, [0.0, np.inf])  # p(empty | nothing) = 1


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, message", [
    (dict(label_lengths=[2, 4]), "label_lengths"),
    (dict(logit_lengths=[6, 7]), "logit_lengths"),
    (dict(logit_lengths=[-1, 6]), "logit_lengths"),
    (dict(label_lengths=[-1, 2]), "label_lengths"),
    (dict(labels=[[1, 0, 2], [2, 1, 1]]), "blank_id"),
    (dict(labels=[[1, 5, 2], [2, 1, 1]]), r"outside \[0, 4\)"),
    (dict(labels=[[1.0, 2.0, 2.0], [2.0, 1.0, 1.0]]), "integer"),
    (dict(logit_lengths=[6]), "logit_lengths"),
    (dict(blank_id=4), "blank_id"),
    (dict(labels=[1, 2, 3]), "labels"),
])
def test_bad_input_raises_value_error(change, message):
    args = dict(logits=np.zeros((2, 6, 4), np.float32), labels=[[1, 2, 2], [2, 1, 1]],
                logit_lengths=[6, 6], label_lengths=[3, 3], blank_id=0)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        lossjax.ctc_loss(np.asarray(args.pop("logits")), np.asarray(args.pop("labels")),
                         logit_lengths=np.asarray(args.pop("logit_lengths")),
                         label_lengths=np.asarray(args.pop("label_lengths")), **args)


def test_padding_labels_beyond_length_are_not_checked():
    x = np.zeros((1, 6, 4), np.float32)
    # -1 and the blank are fine as padding past label_lengths (eager: the host-side check)
    loss = lossjax.ctc_loss(x, np.array([[1, 2, -1, 0]], np.int32),
                            logit_lengths=np.array([6]), label_lengths=np.array([2]))
    assert np.isfinite(loss)


def test_invalid_values_under_jit_give_nan_for_that_sequence_only():
    logits, labels, logit_lengths, label_lengths = random_batch(4, 10, 5, 3, seed=10)
    labels[1, 0] = 0  # blank inside the label
    label_lengths[1] = 3
    label_lengths[2] = 7  # longer than L
    logit_lengths[3] = 11  # longer than T

    @jax.jit  # the values and the gradient in one compiled program
    def loss_and_grad(x):
        def per_sequence(x):
            return lossjax.ctc_loss(x, labels, logit_lengths=logit_lengths,
                                    label_lengths=label_lengths, reduction="none",
                                    zero_infinity=True)
        return per_sequence(x), jax.grad(lambda x: per_sequence(x).sum())(x)

    per_seq, grad = loss_and_grad(logits)
    assert np.isfinite(per_seq[0])
    assert np.all(np.isnan(np.asarray(per_seq[1:])))
    assert np.all(np.isfinite(np.asarray(grad[0])))
    assert np.all(np.isnan(np.asarray(grad[1:])))


# --------------------------------------------------------------------------- greedy decode


def greedy_reference(logits, logit_lengths, blank_id):
    best = np.argmax(logits, axis=-1)
    return [_collapse(list(best[b, :t]), blank_id) for b, t in enumerate(logit_lengths)]


@pytest.mark.parametrize("blank_id", [0, 2])
def test_greedy_decode_matches_reference(blank_id):
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(5, 12, 4)).astype(np.float32)
    logits[0, :, :] = 0.0
    logits[0, np.arange(12), [1, 1, 2, 2, 2, 1, 0, 0, 1, 3, 3, 3]] = 1.0  # repeats & blanks
    logit_lengths = np.array([12, 7, 0, 12, 3], np.int32)
    decoded, lengths = jax.jit(
        lambda x, t: lossjax.ctc_greedy_decode(x, t, blank_id=blank_id))(logits, logit_lengths)
    expected = greedy_reference(logits, logit_lengths, blank_id)
    assert decoded.shape == (5, 12)
    for b, tokens in enumerate(expected):
        assert lengths[b] == len(tokens)
        np.testing.assert_array_equal(decoded[b, : len(tokens)], tokens)
        assert np.all(np.asarray(decoded[b, len(tokens):]) == blank_id)  # the padding value
    if blank_id == 0:
        np.testing.assert_array_equal(decoded[0, :lengths[0]], [1, 2, 1, 1, 3])


def test_greedy_decode_bad_input():
    with pytest.raises(ValueError, match="logits"):
        lossjax.ctc_greedy_decode(np.zeros((3, 4)), np.array([4, 4, 4]))
    with pytest.raises(ValueError, match="logit_lengths"):
        lossjax.ctc_greedy_decode(np.zeros((3, 4, 2)), np.array([4.0, 4.0, 4.0]))
    with pytest.raises(ValueError, match="blank_id"):
        lossjax.ctc_greedy_decode(np.zeros((3, 4, 2)), np.array([4, 4, 4]), blank_id=2)


# --------------------------------------------------------------------------- perplexity


@pytest.mark.usefixtures("x64")
def test_perplexity_matches_numpy():
    perplexity = jax.jit(lossjax.perplexity, static_argnames="ignore_index")  # not op by op
    rng = np.random.default_rng(12)
    logits = (2 * rng.normal(size=(3, 7, 11))).astype(np.float32)
    labels = rng.integers(0, 11, size=(3, 7)).astype(np.int32)
    token_nll = -np.take_along_axis(_log_softmax64(logits), labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(perplexity(logits, labels), np.exp(token_nll.mean()),
                               rtol=1e-5)

    labels[:, 5:] = -100
    kept = labels != -100
    np.testing.assert_allclose(perplexity(logits, labels, ignore_index=-100),
                               np.exp(token_nll[kept].mean()), rtol=1e-5)
    where = rng.random((3, 7)) < 0.5
    np.testing.assert_allclose(
        perplexity(logits, labels, ignore_index=-100, where=where),
        np.exp(token_nll[kept & where].mean()), rtol=1e-5)
    # nothing kept: mean cross-entropy 0, perplexity 1
    assert perplexity(logits, labels, where=np.zeros((3, 7), bool)) == 1.0


def test_perplexity_of_uniform_logits_is_the_vocabulary_size():
    logits = np.zeros((4, 9, 13), np.float32)
    labels = np.random.default_rng(13).integers(0, 13, size=(4, 9))
    np.testing.assert_allclose(jax.jit(lossjax.perplexity)(logits, labels), 13.0, rtol=1e-6)

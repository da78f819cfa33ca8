"""Box IoU losses against float64 NumPy references of torchvision's formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import lossjax
from tests.losses import _task_reference as ref

LOSSES = {"iou": lossjax.iou_loss, "giou": lossjax.giou_loss, "diou": lossjax.diou_loss,
          "ciou": lossjax.ciou_loss}


def _boxes(seed, n):
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 4, (n, 2))
    size = rng.uniform(0.5, 3, (n, 2))
    return np.concatenate([corner, corner + size], -1)


def _to_cxcywh(b):
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], -1)


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("fmt", ["xyxy", "cxcywh"])
def test_values_and_reductions_match_torchvision_formulas(kind, fmt):
    p, t = _boxes(0, 12), _boxes(1, 12)
    p[0], t[1] = t[0], p[1] + 10  # identical and disjoint pairs
    if fmt == "cxcywh":
        p, t = _to_cxcywh(p), _to_cxcywh(t)
    expected = ref.box_losses(p, t, kind, fmt=fmt)
    weights = np.linspace(0.5, 2, 12)
    ref.check_reductions(LOSSES[kind], (jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32)),
                         expected, weights, rtol=2e-5, box_format=fmt)


@pytest.mark.parametrize("kind", LOSSES)
def test_gradients_match_reference_and_finite_differences(kind):
    p, t = _boxes(2, 5), _boxes(3, 5)
    with jax.enable_x64(True):
        grad = jax.grad(lambda p: LOSSES[kind](p, jnp.asarray(t), reduction="sum"))(
            jnp.asarray(p))
        alpha = None
        if kind == "ciou":  # torchvision holds α constant: differentiate with it fixed
            iou = 1 - ref.box_losses(p, t, "iou")
            v = ref.box_losses(p, t, "ciou", alpha=1.0) - ref.box_losses(p, t, "diou")
            alpha = v / (1 - iou + v + 1e-7)
        expected = ref.numeric_grad(lambda x: ref.box_losses(x, t, kind, alpha=alpha).sum(), p)
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)
        if kind != "ciou":
            check_grads(lambda p: LOSSES[kind](p, jnp.asarray(t)), (jnp.asarray(p),),
                        order=1, modes=["rev"], eps=1e-6)


@pytest.mark.parametrize("kind", LOSSES)
def test_degenerate_boxes_give_finite_value_and_gradient(kind):
    box = [0.0, 0.0, 1.0, 2.0]
    p = jnp.array([box, box, [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 2, 0], [0, 0, 0, 0]],
                  jnp.float32)
    t = jnp.array([box, [5, 5, 6, 6], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 2, 2],
                   [1, 1, 2, 2]], jnp.float32)
    value, grads = jax.value_and_grad(
        lambda p, t: LOSSES[kind](p, t, reduction="sum"), (0, 1))(p, t)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)
    none = LOSSES[kind](p, t, reduction="none")
    np.testing.assert_allclose(none[0], 0.0, atol=1e-6)  # identical boxes
    with np.errstate(all="ignore"):
        expected = ref.box_losses(np.asarray(p), np.asarray(t), kind)
    finite = np.isfinite(expected)  # the reference's atan(0/0) is NaN for point boxes
    np.testing.assert_allclose(np.asarray(none)[finite], expected[finite], rtol=1e-5, atol=1e-6)


def test_bad_input_names_the_argument():
    b = jnp.zeros((3, 4))
    with pytest.raises(ValueError, match="pred_boxes"):
        lossjax.iou_loss(jnp.zeros((3, 5)), jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match="target_boxes"):
        lossjax.giou_loss(b, jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="box_format"):
        lossjax.diou_loss(b, b, box_format="xywh")
    with pytest.raises(ValueError, match="eps"):
        lossjax.ciou_loss(b, b, eps=-1.0)
    with pytest.raises(ValueError, match="shape"):
        lossjax.ciou_loss(b, jnp.zeros((2, 4)))

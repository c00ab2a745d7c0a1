"""Losses: values against the formulas, gradients at the edges, numerics that never warn, float32, and bad input."""

from __future__ import annotations

import math
import re
import warnings

import numpy
import pytest

from scratchae.layers import Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss

F32, F64 = numpy.float32, numpy.float64


# ---------------------------------------------------------------------------------------------------- values


def test_mse_is_the_mean_over_every_element():
    pred = numpy.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = numpy.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    loss = MSELoss()
    value = loss.forward(pred, target)
    assert value.shape == ()
    assert float(value) == pytest.approx((0 + 4 + 9 + 1 + 1 + 1) / 6)
    numpy.testing.assert_allclose(loss.backward(), 2.0 * (pred - target) / 6)


def test_bce_matches_the_formula(rng):
    pred = rng.uniform(0.05, 0.95, (3, 4))
    target = rng.random((3, 4))
    loss = BCELoss()
    expected = -numpy.mean(target * numpy.log(pred) + (1 - target) * numpy.log(1 - pred))
    assert float(loss.forward(pred, target)) == pytest.approx(expected, rel=1e-12)
    numpy.testing.assert_allclose(loss.backward(), (pred - target) / (pred * (1 - pred) * 12), rtol=1e-12)


def test_bce_clips_as_keras_does_and_has_no_gradient_where_clipped():
    pred = numpy.array([[0.0, 1.0, 0.5]])
    target = numpy.array([[1.0, 0.0, 1.0]])
    loss = BCELoss()
    value = float(loss.forward(pred, target))
    expected = -(math.log(1e-7) + math.log(1e-7) + math.log(0.5)) / 3
    assert value == pytest.approx(expected, rel=1e-9)
    grad = loss.backward()
    assert grad[0, 0] == 0.0 and grad[0, 1] == 0.0
    assert grad[0, 2] == pytest.approx((0.5 - 1.0) / (0.25 * 3))


def test_bce_epsilon_is_checked():
    with pytest.raises(ValueError, match="epsilon must lie in"):
        BCELoss(epsilon=0.0)
    assert BCELoss(epsilon=1e-3).epsilon == 1e-3


def test_softmax_cross_entropy_matches_the_formula(rng):
    logits = rng.standard_normal((4, 3))
    labels = numpy.array([0, 2, 1, 2])
    loss = SoftmaxCrossEntropyLoss()
    probabilities = numpy.exp(logits) / numpy.exp(logits).sum(axis=1, keepdims=True)
    expected = -numpy.mean(numpy.log(probabilities[numpy.arange(4), labels]))
    assert float(loss.forward(logits, labels)) == pytest.approx(expected, rel=1e-12)
    one_hot = numpy.eye(3)[labels]
    numpy.testing.assert_allclose(loss.backward(), (probabilities - one_hot) / 4, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_is_shift_invariant(rng):
    logits = rng.standard_normal((3, 5))
    labels = numpy.array([4, 0, 2])
    loss = SoftmaxCrossEntropyLoss()
    assert float(loss.forward(logits + 1000.0, labels)) == pytest.approx(float(loss.forward(logits, labels)), rel=1e-9)


@pytest.mark.parametrize("label_dtype", [numpy.int64, numpy.int32, numpy.uint8])
def test_softmax_cross_entropy_takes_any_integer_labels(rng, label_dtype):
    logits = rng.standard_normal((3, 4))
    reference = float(SoftmaxCrossEntropyLoss().forward(logits, numpy.array([1, 3, 0])))
    assert float(SoftmaxCrossEntropyLoss().forward(logits, numpy.array([1, 3, 0], dtype=label_dtype))) == reference


# ---------------------------------------------------------------------------------------------------- protocol


@pytest.mark.parametrize("make", [MSELoss, BCELoss])
def test_backward_is_repeatable_and_does_not_touch_inputs(rng, make):
    pred = rng.uniform(0.1, 0.9, (3, 4))
    target = rng.random((3, 4))
    pred_before, target_before = pred.copy(), target.copy()
    loss = make()
    loss(pred, target)
    first = loss.backward().copy()
    numpy.testing.assert_array_equal(loss.backward(), first)
    numpy.testing.assert_array_equal(pred, pred_before)
    numpy.testing.assert_array_equal(target, target_before)


# ---------------------------------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("magnitude", [100.0, 1e4])
def test_sigmoid_then_bce_at_extreme_logits_is_finite_and_silent(dtype, magnitude):
    logits = numpy.array([[-magnitude, magnitude, -magnitude, magnitude, 0.0]], dtype=dtype)
    target = numpy.array([[0.0, 1.0, 1.0, 0.0, 1.0]], dtype=dtype)
    sigmoid, loss = Sigmoid(), BCELoss()
    with warnings.catch_warnings(), numpy.errstate(all="raise"):
        warnings.simplefilter("error")
        value = loss.forward(sigmoid.forward(logits), target)
        dlogits = sigmoid.backward(loss.backward())
    assert value.dtype == dtype and dlogits.dtype == dtype
    assert math.isfinite(float(value))
    assert numpy.all(numpy.isfinite(dlogits))
    # two confident mistakes cost about -log(1e-7) each (the clip to [1e-7, 1 - 1e-7] in the data's dtype, as
    # Keras), the middle entry log 2, the rest almost nothing
    low, high = float(dtype(1e-7)), float(dtype(1.0 - 1e-7))
    assert float(value) == pytest.approx((-math.log(low) - math.log(1.0 - high) + math.log(2)) / 5, rel=1e-4)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("pred_value", [0.0, 1.0, -100.0, 100.0])
def test_bce_at_or_beyond_the_edges_is_finite_and_silent(dtype, pred_value):
    pred = numpy.full((2, 2), pred_value, dtype=dtype)
    target = numpy.array([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    loss = BCELoss()
    with warnings.catch_warnings(), numpy.errstate(all="raise"):
        warnings.simplefilter("error")
        value = loss.forward(pred, target)
        grad = loss.backward()
    assert math.isfinite(float(value)) and numpy.all(numpy.isfinite(grad))
    numpy.testing.assert_array_equal(grad, 0.0)  # the clip is active everywhere


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("magnitude", [100.0, 1e4])
def test_softmax_cross_entropy_at_extreme_logits_is_finite(dtype, magnitude):
    logits = numpy.array([[magnitude, -magnitude, 0.0], [-magnitude, magnitude, magnitude]], dtype=dtype)
    labels = numpy.array([1, 2])
    loss = SoftmaxCrossEntropyLoss()
    with warnings.catch_warnings(), numpy.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")  # underflow of exp to 0 is exact enough and allowed
        value = loss.forward(logits, labels)
        grad = loss.backward()
    assert value.dtype == dtype and grad.dtype == dtype
    assert math.isfinite(float(value)) and numpy.all(numpy.isfinite(grad))
    # row 0 misses by 2 * magnitude, row 1 ties two classes: log 2
    assert float(value) == pytest.approx((2 * magnitude + math.log(2)) / 2, rel=1e-6)
    numpy.testing.assert_allclose(grad, numpy.array([[1.0, -1.0, 0.0], [0.0, 0.5, -0.5]]) / 2, atol=1e-6)


@pytest.mark.parametrize("make, target_kind", [(MSELoss, "float"), (BCELoss, "float"),
                                               (SoftmaxCrossEntropyLoss, "labels")])
def test_float32_stays_float32(rng, make, target_kind):
    pred = rng.uniform(0.1, 0.9, (4, 3)).astype(F32)
    target = rng.integers(0, 3, 4) if target_kind == "labels" else rng.random((4, 3), dtype=F32)
    loss = make()
    value = loss.forward(pred, target)
    assert value.dtype == F32 and value.shape == ()
    assert loss.backward().dtype == F32


# ---------------------------------------------------------------------------------------------------- bad input
# Calling the loss, ``loss(pred, target)``, checks its arguments (the door); ``forward`` holds only the math.


@pytest.mark.parametrize("make", [MSELoss, BCELoss])
def test_pred_target_shape_mismatch(make):
    with pytest.raises(ValueError, match=rf"{make.__name__}: pred has shape \(4, 3\) but target has shape \(4, 2\)"):
        make()(numpy.full((4, 3), 0.5), numpy.full((4, 2), 0.5))


@pytest.mark.parametrize("make", [MSELoss, BCELoss])
def test_pred_target_transposed(make):
    with pytest.raises(ValueError, match=r"pred has shape \(2, 3\) but target has shape \(3, 2\)"):
        make()(numpy.full((2, 3), 0.5), numpy.full((3, 2), 0.5))


@pytest.mark.parametrize("make", [MSELoss, BCELoss])
def test_pred_target_dtype_mismatch(make):
    with pytest.raises(TypeError, match="pred is float32 but target is float64"):
        make()(numpy.full((2, 3), 0.5, dtype=F32), numpy.full((2, 3), 0.5))


def test_softmax_cross_entropy_logits_shape_mismatch():
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\), a 1-d array with one label per sample, "
                                         r"got \(3,\)"):
        SoftmaxCrossEntropyLoss()(numpy.zeros((4, 3)), numpy.array([0, 1, 2]))


@pytest.mark.parametrize("labels, low, high", [([0, 3, 1], 0, 3), ([-1, 0, 2], -1, 2), ([7, 8, 9], 7, 9)])
def test_softmax_cross_entropy_labels_out_of_range(labels, low, high):
    message = rf"labels must lie in \[0, 2\] for 3 classes, got values from {low} to {high}"
    with pytest.raises(ValueError, match=message):
        SoftmaxCrossEntropyLoss()(numpy.zeros((3, 3)), numpy.array(labels))


@pytest.mark.parametrize("labels", [numpy.array([0.0, 1.0, 2.0]), numpy.array([True, False, True])])
def test_softmax_cross_entropy_labels_not_integers(labels):
    with pytest.raises(TypeError, match=f"labels must be integers .*got dtype {labels.dtype}"):
        SoftmaxCrossEntropyLoss()(numpy.zeros((3, 3)), labels)


@pytest.mark.parametrize("shape", [(3, 1), (1, 3), (3, 3)])
def test_softmax_cross_entropy_labels_wrong_shape(shape):
    labels = numpy.zeros(shape, dtype=numpy.int64)
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\).*got " + re.escape(str(shape))):
        SoftmaxCrossEntropyLoss()(numpy.zeros((3, 3)), labels)


def test_softmax_cross_entropy_logits_wrong_rank():
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\), got \(3,\)"):
        SoftmaxCrossEntropyLoss()(numpy.zeros(3), numpy.array([0, 1, 2]))


def test_forward_holds_only_the_math_and_the_call_checks():
    """``train_step`` calls ``forward`` on data ``fit`` checked once; a learner's own call of the loss is checked."""
    pred, target = numpy.full((4, 3), 0.5), numpy.full((4, 1), 0.5)
    assert MSELoss().forward(pred, target).shape == ()  # broadcasts: no check on the hot line
    with pytest.raises(ValueError, match="they must match"):
        MSELoss()(pred, target)

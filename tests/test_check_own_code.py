"""Checking a learner's own layer, loss or model: one call, a float32 object, and every mistake named.

Each broken layer below makes one mistake a learner makes; the report must fail and its message must name the layer,
the parameter (by its path) and the mistake. Correct layers, float32 ones and those made of sublayers, must pass.
"""

from __future__ import annotations

import numpy
import pytest

from scratchae.gradcheck import check_layer, check_loss, check_model
from scratchae.layers import Dense, Layer, Parameter, ReLU, Sequential, Sigmoid
from scratchae.losses import MSELoss
from scratchae.models import Autoencoder


class Tanh(Layer):
    def forward(self, x):
        self.y = numpy.tanh(x)
        return self.y

    def backward(self, dy, input_grad=True):
        return dy * (1.0 - self.y * self.y)


class WrongTanh(Tanh):
    def backward(self, dy, input_grad=True):
        return dy * (1.0 - self.y)


class ReturnsNothing(Tanh):
    def backward(self, dy, input_grad=True):
        self.dx = dy * (1.0 - self.y * self.y)


class ScalesDyInPlace(Tanh):
    def backward(self, dy, input_grad=True):
        dy *= 1.0 - self.y * self.y
        return dy


class Affine(Layer):
    """A learner's Dense layer: y = x W + b."""

    def __init__(self, n_in, n_out, seed=0):
        rng = numpy.random.default_rng(seed)
        self.W = Parameter(rng.standard_normal((n_in, n_out)).astype(numpy.float32), "W")
        self.b = Parameter((0.1 * rng.standard_normal(n_out)).astype(numpy.float32), "b")

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dy, input_grad=True):
        self.W.grad = self.x.T @ dy
        self.b.grad = dy.sum(axis=0)
        return dy @ self.W.data.T

    def parameters(self):
        return [self.W, self.b]


class ForgetsTheBias(Affine):
    def backward(self, dy, input_grad=True):
        self.W.grad = self.x.T @ dy
        return dy @ self.W.data.T


class TransposedWeightGradient(Affine):
    def backward(self, dy, input_grad=True):
        self.W.grad = dy.T @ self.x
        self.b.grad = dy.sum(axis=0)
        return dy @ self.W.data.T


class Accumulates(Affine):
    def backward(self, dy, input_grad=True):
        if self.W.grad is None:
            self.W.grad = numpy.zeros_like(self.W.data)
        self.W.grad += self.x.T @ dy
        self.b.grad = dy.sum(axis=0)
        return dy @ self.W.data.T


class Upcasts(Affine):
    def backward(self, dy, input_grad=True):
        super().backward(dy)
        return (dy @ self.W.data.T).astype(float)


class TwoAffines(Layer):
    """A correct layer made of two sublayers, each with a W and a b."""

    def __init__(self):
        self.first, self.second = Affine(5, 4, seed=1), Affine(4, 3, seed=2)

    def forward(self, x):
        return self.second.forward(numpy.tanh(self.first.forward(x)))

    def backward(self, dy, input_grad=True):
        dh = self.second.backward(dy)
        return self.first.backward(dh * (1.0 - numpy.tanh(self.first.forward(self.first.x)) ** 2))

    def parameters(self):
        return self.first.parameters() + self.second.parameters()


class TwoAffinesForgettingOneBias(TwoAffines):
    def __init__(self):
        self.first, self.second = Affine(5, 4, seed=1), ForgetsTheBias(4, 3, seed=2)


def test_a_right_float32_layer_passes_and_is_left_as_it_was():
    layer = Affine(5, 3)
    before = layer.W.data.copy()
    report = check_layer(layer, input_shape=(4, 5))
    assert report.passed is True, str(report)
    assert [check.name for check in report.checks] == ["x", "W", "b"]
    assert layer.W.data.dtype == numpy.float32 and numpy.array_equal(layer.W.data, before) and layer.W.grad is None
    text = str(report)
    assert "Affine" in text and "passed" in text and "right" in text and "WRONG" not in text


def test_a_wrong_gradient_is_named_with_its_worst_index_and_both_values():
    report = check_layer(WrongTanh(), input_shape=(4, 10))
    assert report.passed is False
    wrong = report.checks[0]
    assert wrong.name == "x" and not wrong.passed(report.tolerance)
    text = str(report)
    assert "WRONG" in text and str(wrong.index) in text and f"{wrong.analytic:.6e}" in text
    assert f"{wrong.numeric:.6e}" in text and "FAILED: 1 wrong gradient, 0 mistakes" in text


def test_backward_returning_none_is_named():
    report = check_layer(ReturnsNothing(), input_shape=(3, 4))
    assert not report.passed
    assert report.mistakes == ["ReturnsNothing.backward returned dL/dx None; it must return an array, shape (3, 4) "
                               "(did a `return` go missing?)"]


def test_a_gradient_never_set_is_named_with_its_parameter():
    report = check_layer(ForgetsTheBias(5, 3), input_shape=(4, 5))
    assert not report.passed
    assert any("ForgetsTheBias: parameter b: grad was never set by backward" in m for m in report.mistakes)
    assert [check.name for check in report.checks] == ["x", "W"]  # the others are still checked


def test_a_gradient_of_the_wrong_shape_is_named():
    report = check_layer(TransposedWeightGradient(5, 3), input_shape=(4, 5))
    assert not report.passed
    assert any("TransposedWeightGradient: parameter W: grad has shape (3, 5), but the parameter has shape (5, 3)"
               in mistake for mistake in report.mistakes)


def test_dy_changed_in_place_is_named_and_not_blamed_on_the_gradients():
    report = check_layer(ScalesDyInPlace(), input_shape=(4, 6))
    assert not report.passed
    assert any(mistake.startswith("ScalesDyInPlace.backward changed dy in place") for mistake in report.mistakes)
    assert all(check.passed(report.tolerance) for check in report.checks)  # the gradient itself is right


def test_a_gradient_accumulated_over_calls_is_named():
    report = check_layer(Accumulates(5, 3), input_shape=(4, 5))
    assert not report.passed
    assert any("a second call on the same input gave a different parameter W's gradient: twice the first" in m
               for m in report.mistakes)


def test_a_gradient_of_the_wrong_dtype_is_named():
    class SinglePrecisionGradient(Affine):
        def backward(self, dy, input_grad=True):
            dx = super().backward(dy)
            self.W.grad = self.W.grad.astype(numpy.float32)
            return dx

    report = check_layer(SinglePrecisionGradient(5, 3), input_shape=(4, 5))
    assert "SinglePrecisionGradient: parameter W: grad is float32, but the parameter is float64" in report.mistakes


def test_a_silent_upcast_is_named():
    report = check_layer(Upcasts(5, 3), input_shape=(4, 5))
    assert any("Upcasts: float32 input gave float64 dL/dx: a silent upcast" in m for m in report.mistakes)


def test_an_exception_is_a_named_mistake_with_its_line_not_a_traceback():
    class Crashes(Tanh):
        def backward(self, dy, input_grad=True):
            return dy @ self.y  # (4, 6) @ (4, 6): no such product

    report = check_layer(Crashes(), input_shape=(4, 6))
    assert not report.passed
    (mistake,) = report.mistakes
    assert mistake.startswith("Crashes.backward raised ValueError: dL/dx must be (4, 6); `dy @ self.y` is (4, 6) @ "
                              "(4, 6), and the 6 columns of dy do not meet the 4 rows of self.y")
    assert "test_check_own_code.py, line" in mistake


def test_sublayers_with_the_same_names_never_collide():
    report = check_layer(TwoAffines(), input_shape=(4, 5))
    assert report.passed, str(report)
    assert [check.name for check in report.checks] == ["x", "first.W", "first.b", "second.W", "second.b"]
    broken = check_layer(TwoAffinesForgettingOneBias(), input_shape=(4, 5))
    assert any("parameter second.b: grad was never set" in mistake for mistake in broken.mistakes)


def test_check_model_names_the_layer_and_the_path_of_a_parameter_never_set():
    encoder = Sequential([Dense(6, 4, rng=0), ReLU(), ForgetsTheBias(4, 3)])
    model = Autoencoder(encoder, Sequential([Dense(3, 6, rng=1), Sigmoid()]))
    report = check_model(model, MSELoss(), input_shape=(5, 6))
    assert not report.passed
    assert report.mistakes == ["ForgetsTheBias: parameter encoder.2.b: grad was never set by backward (set "
                               "self.b.grad = dL/db)"]
    right = Autoencoder(Sequential([Dense(6, 4, rng=0), ReLU(), Affine(4, 3)]),
                        Sequential([Dense(3, 6, rng=1), Sigmoid()]))
    assert check_model(right, MSELoss(), input_shape=(5, 6)).passed


def test_check_loss_names_a_missing_constant_factor():
    class MSEWithoutMean(MSELoss):
        def backward(self):
            return 2.0 * self.cache

    assert check_loss(MSELoss(), input_shape=(3, 4)).passed
    report = check_loss(MSEWithoutMean(), input_shape=(3, 4))
    assert not report.passed
    assert "analytic = 12 x numerical everywhere" in str(report)


def test_check_model_names_the_layer_inside_that_changed_its_dy():
    model = Autoencoder(Sequential([Dense(6, 4, rng=0), Sigmoid()]),
                        Sequential([Dense(4, 6, rng=1), ScalesDyInPlace()]))
    report = check_model(model, MSELoss(), input_shape=(5, 6))
    assert not report.passed
    assert len(report.mistakes) == 1
    assert report.mistakes[0].startswith("ScalesDyInPlace (decoder.1).backward changed dy in place")

"""Gradient checks: every hand-written backward agrees with centred differences in float64.

Per layer and per loss the relative error must stay below 1e-7; through a whole autoencoder or classifier below 1e-6.
The upstream gradient is random, inputs stay away from ReLU's kink and BCE's clip, and the batch sizes include 1.
The second half tests ``scratchae.gradcheck`` itself.
"""

from __future__ import annotations

import numpy
import pytest

from scratchae import gradcheck, gradcheck_suite, numerical
from scratchae.cli import main
from scratchae.numerical import (LAYER_TOLERANCE, MODEL_TOLERANCE, GradientCheck, compare, directional_derivatives, layer_checks, loss_check, model_checks, numerical_gradient, rel_error)
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from scratchae.models import Autoencoder
from scratchae.builders import mlp_classifier

F64 = numpy.float64
SHAPES = [(1, 5), (3, 4), (8, 2)]  # (batch, features): a batch of one, a square-ish one, a long thin one


def off_kink(rng, shape, margin=0.1):
    """Random float64 numbers at least ``margin`` away from 0 (where ReLU has no derivative)."""
    magnitude = rng.uniform(margin, 2.0, size=shape)
    return numpy.where(rng.random(shape) < 0.5, -magnitude, magnitude)


def test_tolerances_are_the_documented_ones():
    assert LAYER_TOLERANCE == 1e-7
    assert MODEL_TOLERANCE == 1e-6


# ---------------------------------------------------------------------------------------------------- layers


@pytest.mark.parametrize("batch, in_features, out_features", [(1, 5, 3), (4, 3, 6), (7, 6, 2)])
@pytest.mark.parametrize("init", ["glorot_uniform", "he"])
def test_dense_gradients(rng, check_gradients, batch, in_features, out_features, init):
    layer = Dense(in_features, out_features, init=init, rng=rng, dtype=F64)
    layer.b.data[...] = rng.standard_normal(out_features)  # a non-zero bias, so that b takes part in the check
    x = rng.standard_normal((batch, in_features))
    checks = layer_checks(layer, x, rng)
    assert [check.name for check in checks] == ["x", "W", "b"]
    check_gradients(checks, LAYER_TOLERANCE)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("layer_class", [ReLU, Sigmoid, Identity])
def test_activation_gradients(rng, check_gradients, layer_class, shape):
    x = off_kink(rng, shape)
    checks = layer_checks(layer_class(), x, rng)
    assert [check.name for check in checks] == ["x"]
    check_gradients(checks, LAYER_TOLERANCE)


@pytest.mark.parametrize("batch", [1, 5])
def test_sequential_gradients(rng, check_gradients, batch):
    model = Sequential([Dense(6, 5, rng=rng, dtype=F64), ReLU(), Dense(5, 4, rng=rng, dtype=F64), Identity(),
                        Dense(4, 3, rng=rng, dtype=F64), Sigmoid()])
    x = rng.standard_normal((batch, 6))
    checks = layer_checks(model, x, rng)
    assert [check.name for check in checks] == ["x", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    check_gradients(checks, LAYER_TOLERANCE)


def test_directional_check_of_a_large_parameter(rng, check_gradients):
    layer = Dense(784, 128, rng=rng, dtype=F64)
    x = rng.standard_normal((2, 784))
    upstream = rng.standard_normal((2, 128))
    layer.forward(x)
    layer.backward(upstream)
    assert layer.W.size > numerical.DIRECTIONAL_ABOVE
    check = compare("W", lambda _: layer.forward(x), layer.W.data, layer.W.grad.copy(), upstream, rng=rng)
    assert check.method == "directional x6"
    assert check.index.startswith("direction ")
    check_gradients(check, LAYER_TOLERANCE)


def test_directional_check_catches_a_wrong_gradient(rng):
    layer = Dense(784, 128, rng=rng, dtype=F64)
    x = rng.standard_normal((2, 784))
    upstream = rng.standard_normal((2, 128))
    layer.forward(x)
    layer.backward(upstream)
    wrong = layer.W.grad * 1.01
    check = compare("W", lambda _: layer.forward(x), layer.W.data, wrong, upstream, rng=rng)
    assert check.method.startswith("directional")
    assert not check.passed(1e-3)


# ---------------------------------------------------------------------------------------------------- losses


@pytest.mark.parametrize("shape", SHAPES)
def test_mse_gradient(rng, check_gradients, shape):
    pred = rng.standard_normal(shape)
    target = pred + off_kink(rng, shape)  # no entry where pred == target and the gradient vanishes
    check_gradients(loss_check(MSELoss(), pred, target), LAYER_TOLERANCE)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("binary_target", [False, True])
def test_bce_gradient(rng, check_gradients, shape, binary_target):
    pred = rng.uniform(0.05, 0.95, size=shape)  # inside the clip range [1e-7, 1 - 1e-7], far from its edges
    if binary_target:
        target = (rng.random(shape) < 0.5).astype(F64)
    else:  # soft targets at least 0.1 from pred (where the gradient vanishes), inside [0, 1]
        offset = rng.uniform(0.1, 0.4, size=shape)
        target = numpy.where(pred + offset <= 1.0, pred + offset, pred - offset)
    check_gradients(loss_check(BCELoss(), pred, target), LAYER_TOLERANCE)


@pytest.mark.parametrize("batch, n_classes", [(1, 3), (5, 4), (9, 10)])
def test_softmax_cross_entropy_gradient(rng, check_gradients, batch, n_classes):
    logits = rng.standard_normal((batch, n_classes))
    labels = rng.integers(0, n_classes, size=batch)
    check_gradients(loss_check(SoftmaxCrossEntropyLoss(), logits, labels), LAYER_TOLERANCE)


# ---------------------------------------------------------------------------------------------------- models
#
# A whole model is checked element by element at 1e-6. The loss is a mean over every output, so some gradient entries
# are small (1e-6 and below) while the loss is of order 1, and one rounding step of the loss, divided by 2h, is
# already 5e-12: for such entries the relative error reaches 1e-6 from float64 rounding alone, with a correct
# backward. The models below are therefore built from one fixed seed whose gradients have no entry that small, and
# their biases are set off zero: with zero biases, a unit fed only by dead ReLUs sits exactly on the next ReLU's kink.

MODEL_SEED = 27


def deep_autoencoder_12(rng, dtype=F64) -> Autoencoder:
    """12-8-6-4-6-8-12 with ReLUs and a sigmoid output: the deep autoencoder's shape, at a size a check can loop."""
    def stack(sizes, last):
        layers = []
        for index, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [Dense(d_in, d_out, rng=rng, dtype=dtype), last() if index == len(sizes) - 2 else ReLU()]
        return Sequential(layers)

    return Autoencoder(stack([12, 8, 6, 4], ReLU), stack([4, 6, 8, 12], Sigmoid))


def biases_off_zero(model, rng):
    for name, parameter in model.named_parameters():
        if name.endswith(".b"):
            parameter.data[...] = rng.uniform(0.1, 0.5, size=parameter.shape)
    return model


@pytest.mark.parametrize("loss", [MSELoss(), BCELoss()], ids=["mse", "bce"])
@pytest.mark.parametrize("batch", [1, 6])
def test_deep_autoencoder_gradients_built_in_float64(check_gradients, loss, batch):
    rng = numpy.random.default_rng(MODEL_SEED)
    model = biases_off_zero(deep_autoencoder_12(rng), rng)
    x = rng.random((batch, 12))
    checks = model_checks(model, loss, x, x, rng)
    assert len(checks) == len(model.parameters()) == 12
    assert checks[0].name == "encoder.0.W" and checks[-1].name == "decoder.4.b"
    assert all(check.method == "elementwise" for check in checks)
    check_gradients(checks, MODEL_TOLERANCE)


@pytest.mark.parametrize("loss", [MSELoss(), BCELoss()], ids=["mse", "bce"])
def test_deep_autoencoder_gradients_cast_with_to(check_gradients, loss):
    rng = numpy.random.default_rng(MODEL_SEED)
    model = deep_autoencoder_12(rng, dtype=numpy.float32).to(dtype=F64)
    assert all(parameter.data.dtype == F64 for parameter in model.parameters())
    biases_off_zero(model, rng)
    x = rng.random((4, 12))
    check_gradients(model_checks(model, loss, x, x, rng), MODEL_TOLERANCE)


@pytest.mark.parametrize("batch", [1, 5])
def test_classifier_gradients(check_gradients, batch):
    rng = numpy.random.default_rng(MODEL_SEED)
    model = biases_off_zero(mlp_classifier(latent_dim=4, n_classes=3, input_dim=6, seed=rng, dtype=F64), rng)
    x = rng.random((batch, 6))
    labels = rng.integers(0, 3, size=batch)
    checks = model_checks(model, SoftmaxCrossEntropyLoss(), x, labels, rng)
    methods = {check.name: check.method for check in checks}
    assert methods["encoder.2.W"].startswith("directional")  # 128 x 64 weights: checked along random directions
    assert methods["head.0.W"] == "elementwise"
    check_gradients(checks, MODEL_TOLERANCE)


# ---------------------------------------------------------------------------------------------------- the checker


class _WrongBiasDense(Dense):
    """A Dense layer whose bias gradient is twice what it should be: the checks must catch it."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        self.b.grad = 2.0 * self.b.grad
        return dx


def test_a_wrong_gradient_fails_and_the_message_names_parameter_index_and_values(rng, check_gradients):
    layer = _WrongBiasDense(3, 2, rng=rng, dtype=F64)
    checks = {check.name: check for check in layer_checks(layer, rng.standard_normal((4, 3)), rng)}
    check_gradients([checks["x"], checks["W"]], LAYER_TOLERANCE)
    bad = checks["b"]
    assert not bad.passed(1e-2)
    assert bad.index in [(0,), (1,)]
    assert bad.analytic == pytest.approx(2.0 * bad.numeric, rel=1e-6)
    message = str(bad)
    assert message.startswith("b: relative error")
    assert str(bad.index) in message
    assert f"{bad.analytic:.10e}" in message and f"{bad.numeric:.10e}" in message
    with pytest.raises(AssertionError, match=r"b: relative error .* at \(\d,\) \(elementwise\): analytic .* numeric"):
        check_gradients(bad, LAYER_TOLERANCE)


def test_numerical_gradient_of_sum_of_squares_is_2x(rng):
    x = rng.standard_normal((3, 4))
    original = x.copy()
    grad = numerical_gradient(lambda v: numpy.sum(v * v), x)
    numpy.testing.assert_allclose(grad, 2.0 * x, rtol=1e-8, atol=1e-10)
    numpy.testing.assert_array_equal(x, original)  # restored after every nudge


def test_numerical_gradient_with_upstream_weights_the_outputs(rng):
    x = rng.standard_normal(5)
    upstream = rng.standard_normal(5)
    grad = numerical_gradient(lambda v: v**3, x, upstream)  # d/dx sum(x^3 * u) = 3 x^2 u
    numpy.testing.assert_allclose(grad, 3.0 * x**2 * upstream, rtol=1e-7, atol=1e-10)


def test_directional_derivatives_of_a_quadratic(rng):
    x = rng.standard_normal((2, 3))
    original = x.copy()
    directions = rng.standard_normal((4, 2, 3))
    derivatives = directional_derivatives(lambda v: numpy.sum(v * v), x, directions)
    expected = [numpy.sum(2.0 * x * direction) for direction in directions]
    numpy.testing.assert_allclose(derivatives, expected, rtol=1e-8)
    numpy.testing.assert_array_equal(x, original)


@pytest.mark.parametrize("a, b, expected", [
    (1.0, 1.0, 0.0),
    (1.0, 3.0, 0.5),            # |1 - 3| / (1 + 3)
    (-2.0, 2.0, 1.0),           # opposite signs: the worst
    (0.0, 0.0, 0.0),            # both zero: no division by zero
    (1e-9, 0.0, 0.1),           # tiny values: the denominator is floored at 1e-8
    ([1.0, 2.0], [1.0, 2.2], 0.2 / 4.2),  # the largest over the elements
])
def test_rel_error_values(a, b, expected):
    assert rel_error(a, b) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_rel_error_is_symmetric(rng):
    a, b = rng.standard_normal(10), rng.standard_normal(10)
    assert rel_error(a, b) == rel_error(b, a)


@pytest.mark.parametrize("call", [
    lambda x: numerical_gradient(lambda v: numpy.sum(v), x),
    lambda x: directional_derivatives(lambda v: numpy.sum(v), x, numpy.ones((1, 3), dtype=numpy.float32)),
    lambda x: layer_checks(Dense(3, 2, rng=0), x, numpy.random.default_rng(0)),
    lambda x: loss_check(MSELoss(), x, x.copy()),
], ids=["numerical_gradient", "directional_derivatives", "layer_checks", "loss_check"])
def test_float32_is_refused(call):
    x = numpy.ones((1, 3), dtype=numpy.float32)
    with pytest.raises(TypeError, match="float64"):
        call(x)


def test_non_numpy_input_is_refused():
    with pytest.raises(TypeError, match="float64 NumPy array"):
        numerical_gradient(lambda v: v, [1.0, 2.0])


def test_compare_refuses_a_gradient_of_the_wrong_shape(rng):
    x = rng.standard_normal(3)
    with pytest.raises(ValueError, match=r"analytic gradient has shape \(4,\), expected \(3,\)"):
        compare("x", lambda v: v, x, numpy.zeros(4))


def test_gradient_check_passed_is_strict():
    check = GradientCheck("W", 1e-7, (0, 0), 1.0, 1.0, "elementwise")
    assert not check.passed(1e-7)
    assert check.passed(1.1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_whole_suite_passes_whatever_its_seed(seed):
    """Right gradients must pass for any seed: cases are drawn clear of ReLU's kinks and measurable."""
    cases = gradcheck_suite.check_everything(seed)
    failed = [f"{case.what}: {check}" for case in cases for check in case.checks if not check.passed(case.tolerance)]
    assert not failed
    checked = [len(case.checks) for case in cases]
    assert len(cases) >= 14 and min(checked) >= 1  # every layer, loss and model, each with something checked
    assert sum(case.passed for case in cases) == len(cases)


def test_a_case_or_a_suite_that_checks_nothing_has_not_passed(monkeypatch, capsys):
    assert not gradcheck.CheckedCase("nothing", numerical.LAYER_TOLERANCE, []).passed
    monkeypatch.setattr(gradcheck_suite, "check_everything", lambda seed: [])
    assert main(["gradcheck"]) == 1


def test_the_suite_checks_every_layer_loss_and_model():
    names = " | ".join(case.what for case in gradcheck_suite.check_everything(0))
    for expected in ("Dense", "ReLU", "Sigmoid", "Identity", "Sequential", "MSELoss", "BCELoss",
                     "SoftmaxCrossEntropyLoss", "VAELoss(reconstruction='bce'", "VAELoss(reconstruction='mse'",
                     "the sample z", "autoencoder", "VAE 12-8-(3, 3)-8-12 + VAELoss('bce')",
                     "VAE 12-8-(3, 3)-8-12 + VAELoss('mse')"):
        assert expected in names

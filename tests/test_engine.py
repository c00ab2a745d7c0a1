"""The two floors: every engine form is a drop-in of its lesson class, equal to it in float64, and a notebook gets the
lesson unless it asks for the engine.

Each engine form is compared with its lesson form on the same weights and input: the forward, dL/dx and every
parameter gradient agree to 1e-12 (relative to the largest value), over the cases the layers are hardest on
(padding, strides 2 and 3, overlapping and "same" pooling, ties, output_padding, odd sizes).
"""

from __future__ import annotations

import copy

import numpy
import pytest

from scratchae import builders, checkpoint, gradcheck_suite
from scratchae.conv import Conv2D, ConvTranspose2D, MaxPool2D, UpSampling2D
from scratchae.engine import conv as engine_conv
from scratchae.engine.adam import FastAdam
from scratchae.engine.elementwise import FastReLU, FastSigmoid
from scratchae.engine.forms import ENGINE_FORMS, fast, is_fast, lesson
from scratchae.layers import Dense, ReLU, Sigmoid
from scratchae.optim import Adam

F32, F64 = numpy.float32, numpy.float64

#: (lesson layer, input shape, input kind): "normal" values, or "ties" (small integers: many equal maxima).
CASES = {
    "conv 3x3 same stride 1": (lambda: Conv2D(2, 3, 3), (3, 2, 5, 6), "normal"),
    "conv 3x3 same stride 2, odd size": (lambda: Conv2D(2, 3, 3, stride=2), (3, 2, 7, 5), "normal"),
    "conv 2x3 padding 1 stride 2, more in than out": (lambda: Conv2D(4, 2, (2, 3), stride=2, padding=1), (2, 4, 7, 8),
                                                       "normal"),
    "conv 3x2 stride 3 valid": (lambda: Conv2D(3, 2, (3, 2), stride=3, padding="valid"), (2, 3, 10, 8), "normal"),
    "conv 4x4 same, even kernel": (lambda: Conv2D(1, 2, 4), (2, 1, 5, 5), "normal"),
    "conv 1x1 stride 2": (lambda: Conv2D(2, 3, 1, stride=2), (2, 2, 5, 6), "normal"),
    "transposed stride 2, output_padding 1": (lambda: ConvTranspose2D(3, 2, 3, stride=2, padding=1, output_padding=1),
                                              (2, 3, 4, 3), "normal"),
    "transposed stride 3, 2x3, output_padding 2": (lambda: ConvTranspose2D(2, 2, (2, 3), stride=3, output_padding=2),
                                                   (1, 2, 3, 2), "normal"),
    "transposed stride 1": (lambda: ConvTranspose2D(2, 3, 2), (2, 2, 3, 3), "normal"),
    "pool 2 valid, ties": (lambda: MaxPool2D(2), (2, 2, 6, 4), "ties"),
    "pool 2 same 7 -> 4, ties": (lambda: MaxPool2D(2, padding="same"), (2, 2, 7, 7), "ties"),
    "pool 3 stride 2 overlapping, ties": (lambda: MaxPool2D(3, stride=2), (2, 2, 7, 7), "ties"),
    "pool 3 stride 1 same overlapping": (lambda: MaxPool2D(3, stride=1, padding="same"), (1, 2, 5, 6), "normal"),
    "pool 3 stride 3, odd size": (lambda: MaxPool2D(3, stride=3, padding="same"), (2, 1, 7, 8), "ties"),
    "upsampling 2": (lambda: UpSampling2D(2), (2, 2, 3, 4), "normal"),
    "upsampling 3": (lambda: UpSampling2D(3), (1, 2, 2, 3), "normal"),
    "dense": (lambda: Dense(7, 5, rng=0), (4, 7), "normal"),
    "relu": (lambda: ReLU(), (4, 7), "normal"),
    "sigmoid": (lambda: Sigmoid(), (4, 7), "normal"),
}


def in_float64(layer, rng):
    """The layer's weights in float64, and random biases (zero biases would hide a bias gradient's mistakes)."""
    for parameter in layer.parameters():
        parameter.data = rng.standard_normal(parameter.shape) if parameter.name == "b" else \
            parameter.data.astype(F64)
    return layer


def assert_close(engine_value, lesson_value):
    scale = max(float(numpy.max(numpy.abs(lesson_value))), 1e-300)
    assert engine_value.shape == lesson_value.shape
    assert float(numpy.max(numpy.abs(engine_value - lesson_value))) <= 1e-12 * scale


@pytest.mark.parametrize("case", CASES)
def test_each_engine_form_equals_its_lesson_form_in_float64(rng, case):
    make, shape, kind = CASES[case]
    lesson_layer = in_float64(make(), rng)
    engine_layer = fast(copy.deepcopy(lesson_layer))
    assert type(engine_layer) is ENGINE_FORMS[type(lesson_layer)]
    x = rng.integers(0, 3, shape).astype(F64) if kind == "ties" else rng.standard_normal(shape)
    y_lesson, y_engine = lesson_layer.forward(x), engine_layer.forward(x.copy())
    assert_close(y_engine, y_lesson)
    dy = rng.standard_normal(y_lesson.shape)
    assert_close(engine_layer.backward(dy.copy()), lesson_layer.backward(dy))
    for engine_parameter, lesson_parameter in zip(engine_layer.parameters(), lesson_layer.parameters(), strict=True):
        assert_close(engine_parameter.grad, lesson_parameter.grad)


def test_the_engine_forms_save_as_their_lesson_classes():
    for lesson_class, engine_class in ENGINE_FORMS.items():
        assert issubclass(engine_class, lesson_class)
        assert engine_class.saved_as == lesson_class.__name__


@pytest.mark.parametrize("name", sorted(builders.BUILDERS))
def test_a_notebook_builds_the_lesson_and_fast_builds_the_engine_with_the_same_weights(name):
    plain, engine = builders.BUILDERS[name](), builders.BUILDERS[name](fast=True)
    assert not is_fast(plain)
    assert is_fast(engine)
    assert plain.config() == engine.config()
    for (name_a, a), (name_b, b) in zip(plain.named_parameters(), engine.named_parameters(), strict=True):
        assert name_a == name_b
        numpy.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("saved_fast, loaded_fast", [(True, False), (False, True)])
def test_a_checkpoint_of_one_floor_loads_into_the_other(tmp_path, rng, saved_fast, loaded_fast):
    model = builders.conv_autoencoder(fast=saved_fast)
    path = tmp_path / "model.npz"
    checkpoint.save(path, model)
    loaded = checkpoint.load(path, fast=loaded_fast).model
    assert is_fast(loaded) == loaded_fast
    x = rng.uniform(0.0, 1.0, (3, 784)).astype(F32)
    numpy.testing.assert_allclose(loaded.reconstruct(x), model.reconstruct(x), rtol=1e-5, atol=1e-6)


def test_fast_and_lesson_swap_back_and_forth_on_the_same_parameters():
    model = builders.conv_variational_autoencoder()
    parameters = model.parameters()
    fast(model)
    assert is_fast(model) and all(a is b for a, b in zip(model.parameters(), parameters, strict=True))
    lesson(model)
    assert not is_fast(model) and all(a is b for a, b in zip(model.parameters(), parameters, strict=True))


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_fast_adam_follows_the_lesson_adam(rng, weight_decay):
    """The folded update is the docstring's formula: the same trajectory, to float64 rounding, over 20 steps."""
    weights = rng.standard_normal((5, 4))
    lesson_param, engine_param = _parameter(weights), _parameter(weights)
    lesson_adam = Adam([lesson_param], lr=1e-2, weight_decay=weight_decay)
    engine_adam = FastAdam([engine_param], lr=1e-2, weight_decay=weight_decay)
    for _ in range(20):
        gradient = rng.standard_normal((5, 4))
        lesson_param.grad, engine_param.grad = gradient, gradient.copy()
        lesson_adam.step()
        engine_adam.step()
    numpy.testing.assert_allclose(engine_param.data, lesson_param.data, rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(engine_adam.v[0], lesson_adam.v[0], rtol=1e-12, atol=0.0)


def _parameter(values):
    from scratchae.layers import Parameter

    return Parameter(values.copy(), "W")


def test_the_elementwise_engine_forms_run_the_lesson_formulas():
    """FastReLU and FastSigmoid call the lesson's own functions (fused into one kernel on a GPU): no formula is
    written twice."""
    from scratchae import layers
    from scratchae.engine import elementwise

    assert elementwise.fused_sigmoid.__wrapped__ is layers.sigmoid
    assert elementwise.fused_sigmoid_backward.__wrapped__ is layers.sigmoid_backward
    assert elementwise.fused_relu_backward.__wrapped__ is layers.relu_backward
    assert issubclass(FastReLU, ReLU) and issubclass(FastSigmoid, Sigmoid)


def test_the_gradient_suite_checks_both_floors_of_every_conv_layer():
    """Leaving either floor's convolution layers out of ``scratchae gradcheck`` fails here."""
    names = [case.what for case in gradcheck_suite.check_everything(0)]
    for layer in ("Conv2D", "ConvTranspose2D", "MaxPool2D", "UpSampling2D"):
        for floor in ("lesson", "engine"):
            assert any(name.startswith(f"{floor}: {layer}") for name in names), f"{floor} {layer} is not checked"
    for floor in ("lesson", "engine"):
        assert any(name.startswith(f"{floor}: conv VAE") for name in names)


def test_the_engine_conv_module_keeps_its_fast_forms_apart_from_the_lesson():
    """The lesson's conv module holds no long rows, phases or blocks: those are the engine's."""
    from scratchae import conv

    for helper in ("taps", "add_taps", "as_phases", "sample_blocks", "tap_offsets"):
        assert not hasattr(conv, helper)
        assert hasattr(engine_conv, helper)

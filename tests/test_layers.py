"""Layers: the protocol (backward overwrites, never mutates dy, input_grad=False), Dense initialisation,
Sequential's names and summary, dtype casts, numerics at extreme inputs, and bad input."""

from __future__ import annotations

import math
import re
import warnings

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchae import builders, summary
from scratchae.numerical import LAYER_TOLERANCE, layer_checks
from scratchae.gradcheck_suite import off_kinks
from scratchae.layers import Dense, Identity, Layer, Parameter, ReLU, Sequential, Sigmoid

F32, F64 = numpy.float32, numpy.float64


def small_network(rng, dtype=F64) -> Sequential:
    return Sequential([Dense(5, 4, rng=rng, dtype=dtype), ReLU(), Dense(4, 3, rng=rng, dtype=dtype), Identity(),
                       Dense(3, 2, rng=rng, dtype=dtype), Sigmoid()])


LAYERS = {
    "dense": lambda rng: Dense(5, 3, rng=rng, dtype=F64),
    "relu": lambda rng: ReLU(),
    "sigmoid": lambda rng: Sigmoid(),
    "identity": lambda rng: Identity(),
    "sequential": lambda rng: small_network(rng),
}


def forward_input(rng, batch=4):
    return rng.standard_normal((batch, 5))  # every layer in LAYERS takes 5 features


# ---------------------------------------------------------------------------------------------------- protocol


@pytest.mark.parametrize("name", LAYERS)
def test_backward_overwrites_gradients(rng, name, check_gradients):
    layer = LAYERS[name](rng)
    y = layer.forward(forward_input(rng))
    dy = rng.standard_normal(y.shape)
    dx_first = layer.backward(dy)
    first = [parameter.grad.copy() for parameter in layer.parameters()]
    dx_second = layer.backward(dy)
    numpy.testing.assert_array_equal(dx_second, dx_first)
    assert len(first) == len(layer.parameters())
    for grad, parameter in zip(first, layer.parameters(), strict=True):
        numpy.testing.assert_array_equal(parameter.grad, grad)  # the same, not doubled
    # ... and the right values in the first place (the float64 centred differences of gradcheck)
    checks = layer_checks(layer, off_kinks(forward_input(rng)), rng)
    assert len(checks) == 1 + len(layer.parameters())  # the input and every parameter
    check_gradients(checks, LAYER_TOLERANCE)


def test_backward_after_a_new_forward_replaces_gradients(rng):
    layer = Dense(3, 2, rng=rng, dtype=F64)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dy1, dy2 = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    layer.forward(x1)
    layer.backward(dy1)
    layer.forward(x2)
    layer.backward(dy2)
    numpy.testing.assert_allclose(layer.W.grad, x2.T @ dy2, rtol=1e-12)
    numpy.testing.assert_allclose(layer.b.grad, dy2.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("name", LAYERS)
def test_backward_never_mutates_dy(rng, name):
    layer = LAYERS[name](rng)
    x = forward_input(rng)
    x[0, 0] = 0.0  # ReLU's kink included: the zeroed entries must be new, not written into dy
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    numpy.testing.assert_array_equal(dy, dy_before)
    if name != "identity":  # the identity may hand dy itself on; every other layer returns a new array
        dx[...] = 123.0
        numpy.testing.assert_array_equal(dy, dy_before)


@pytest.mark.parametrize("name", LAYERS)
def test_input_grad_false_returns_none_and_sets_parameter_gradients(rng, name):
    layer = LAYERS[name](rng)
    x = forward_input(rng)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    layer.backward(dy)
    expected = [parameter.grad.copy() for parameter in layer.parameters()]
    for parameter in layer.parameters():
        parameter.grad = None
    assert layer.backward(dy, input_grad=False) is None
    assert len(expected) == len(layer.parameters())
    for grad, parameter in zip(expected, layer.parameters(), strict=True):
        assert parameter.grad is not None
        numpy.testing.assert_array_equal(parameter.grad, grad)
    if name == "dense":  # the values themselves: dL/dW = x^T dy, dL/db = sum of dy over the batch
        numpy.testing.assert_allclose(layer.W.grad, x.T @ dy, rtol=1e-12)
        numpy.testing.assert_allclose(layer.b.grad, dy.sum(axis=0), rtol=1e-12)


def test_dense_backward_is_the_textbook_formula(rng):
    layer = Dense(3, 2, rng=rng, dtype=F64)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    y = layer.forward(x)
    numpy.testing.assert_allclose(y, x @ layer.W.data + layer.b.data, rtol=1e-12)
    dx = layer.backward(dy)
    numpy.testing.assert_allclose(layer.W.grad, x.T @ dy, rtol=1e-12)
    numpy.testing.assert_allclose(layer.b.grad, dy.sum(axis=0), rtol=1e-12)
    numpy.testing.assert_allclose(dx, dy @ layer.W.data.T, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 6), in_features=st.integers(1, 6), out_features=st.integers(1, 6))
def test_dense_shapes(batch, in_features, out_features):
    rng = numpy.random.default_rng(0)
    layer = Dense(in_features, out_features, rng=rng)
    x = rng.standard_normal((batch, in_features)).astype(F32)
    y = layer.forward(x)
    assert y.shape == (batch, out_features)
    dy = rng.standard_normal(y.shape).astype(F32)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    assert layer.W.grad.shape == (in_features, out_features)
    assert layer.b.grad.shape == (out_features,)
    numpy.testing.assert_allclose(dx, dy @ layer.W.data.T, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(layer.W.grad, x.T @ dy, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(layer.b.grad, dy.sum(axis=0), rtol=1e-5, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 5), features=st.integers(1, 5), name=st.sampled_from(["relu", "sigmoid", "identity"]))
def test_activations_keep_the_shape(batch, features, name):
    layer = {"relu": ReLU, "sigmoid": Sigmoid, "identity": Identity}[name]()
    x = numpy.random.default_rng(1).standard_normal((batch, features)).astype(F32)
    y = layer.forward(x)
    assert y.shape == x.shape
    assert layer.backward(numpy.ones_like(y)).shape == x.shape


# ---------------------------------------------------------------------------------------------------- activations


def test_relu_at_exactly_zero_has_derivative_zero():
    relu = ReLU()
    x = numpy.array([[-1.0, 0.0, 2.0], [0.0, -0.0, 3.0]])
    numpy.testing.assert_array_equal(relu.forward(x), [[0.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    dx = relu.backward(numpy.full((2, 3), 5.0))
    numpy.testing.assert_array_equal(dx, [[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]])


def test_sigmoid_values_and_derivative():
    sigmoid = Sigmoid()
    x = numpy.array([[-2.0, 0.0, 0.5, 3.0]])
    expected = 1.0 / (1.0 + numpy.exp(-x))
    numpy.testing.assert_allclose(sigmoid.forward(x), expected, rtol=1e-14)
    numpy.testing.assert_allclose(sigmoid.backward(numpy.ones_like(x)), expected * (1 - expected), rtol=1e-12)


def test_identity_passes_through(rng):
    x = rng.standard_normal((3, 4))
    layer = Identity()
    numpy.testing.assert_array_equal(layer.forward(x), x)
    dy = rng.standard_normal((3, 4))
    numpy.testing.assert_array_equal(layer.backward(dy), dy)
    assert layer.parameters() == []


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("magnitude", [30.0, 88.8, 100.0, 709.9, 1e4])  # 88.7 and 709.8: where exp overflows
def test_sigmoid_at_extreme_inputs_is_finite_and_silent(dtype, magnitude):
    x = numpy.tile(numpy.array([-magnitude, magnitude, 0.0], dtype=dtype), (2, 4))  # (2, 12): vectorised loops too
    sigmoid = Sigmoid()
    with warnings.catch_warnings(), numpy.errstate(all="raise"):
        warnings.simplefilter("error")
        y = sigmoid.forward(x)
        dx = sigmoid.backward(numpy.ones_like(x))
    assert y.dtype == dtype and dx.dtype == dtype
    assert numpy.all(numpy.isfinite(y)) and numpy.all(numpy.isfinite(dx))
    with numpy.errstate(all="ignore"):
        exact = 1.0 / (1.0 + numpy.exp(-x.astype(F64)))
    numpy.testing.assert_allclose(y, exact, rtol=1e-5, atol=1e-30)
    # y (1 - y) is 0 once y rounds to 1: an absolute error below the dtype's epsilon
    numpy.testing.assert_allclose(dx, exact * (1.0 - exact), rtol=1e-5, atol=numpy.finfo(dtype).eps)


# ---------------------------------------------------------------------------------------------------- Dense init


@pytest.mark.parametrize("in_features, out_features", [(784, 128), (64, 300)])
def test_glorot_uniform_bounds(in_features, out_features):
    layer = Dense(in_features, out_features, rng=0)
    limit = math.sqrt(6.0 / (in_features + out_features))
    W = layer.W.data.astype(F64)
    assert numpy.abs(W).max() <= limit
    assert numpy.abs(W).max() > 0.99 * limit  # the whole interval is used, not a narrower one
    assert abs(W.mean()) < 0.03 * limit
    assert W.var() == pytest.approx(limit**2 / 3, rel=0.03)  # the variance of U(-a, a)
    assert layer.init == "glorot_uniform"


def test_he_init_std():
    layer = Dense(784, 128, init="he", rng=1)
    W = layer.W.data.astype(F64)
    assert W.std() == pytest.approx(math.sqrt(2.0 / 784), rel=0.02)
    assert abs(W.mean()) < 0.02 * math.sqrt(2.0 / 784)
    assert numpy.abs(W).max() > math.sqrt(6.0 / (784 + 128))  # a normal, not bounded like Glorot's uniform


@pytest.mark.parametrize("init", ["glorot_uniform", "he"])
def test_bias_starts_at_zero(init):
    layer = Dense(10, 7, init=init, rng=0)
    numpy.testing.assert_array_equal(layer.b.data, numpy.zeros(7))
    assert layer.W.shape == (10, 7) and layer.b.shape == (7,)


def test_same_seed_same_weights():
    numpy.testing.assert_array_equal(Dense(20, 10, rng=3).W.data, Dense(20, 10, rng=3).W.data)
    numpy.testing.assert_array_equal(Dense(20, 10, rng=numpy.random.default_rng(3)).W.data, Dense(20, 10, rng=3).W.data)
    assert not numpy.array_equal(Dense(20, 10, rng=3).W.data, Dense(20, 10, rng=4).W.data)


def test_shared_generator_gives_different_layers():
    rng = numpy.random.default_rng(0)
    first, second = Dense(6, 6, rng=rng), Dense(6, 6, rng=rng)
    assert not numpy.array_equal(first.W.data, second.W.data)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_dense_dtype(dtype):
    layer = Dense(4, 3, rng=0, dtype=dtype)
    assert layer.W.data.dtype == dtype and layer.b.data.dtype == dtype


def test_default_dtype_is_float32():
    layer = Dense(4, 3, rng=0)
    assert layer.W.data.dtype == F32 and layer.b.data.dtype == F32


# ---------------------------------------------------------------------------------------------------- Sequential


def test_named_parameters_and_order(rng):
    network = small_network(rng)
    names = [name for name, _ in network.named_parameters()]
    assert names == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    parameters = network.parameters()
    assert [parameter for _, parameter in network.named_parameters()] == parameters
    dense = [layer for layer in network.layers if isinstance(layer, Dense)]
    expected = [p for layer in dense for p in (layer.W, layer.b)]
    assert all(a is b for a, b in zip(parameters, expected)) and len(parameters) == len(expected)


def test_sequential_chains_forward_and_backward(rng, check_gradients):
    network = small_network(rng)
    x = rng.standard_normal((3, 5))
    y = x
    for layer in network.layers:
        y = layer.forward(y)
    numpy.testing.assert_array_equal(network.forward(x), y)
    dy = rng.standard_normal(y.shape)
    expected = dy
    for layer in reversed(network.layers):
        expected = layer.backward(expected)
    by_hand = [parameter.grad.copy() for parameter in network.parameters()]
    numpy.testing.assert_allclose(network.backward(dy), expected, rtol=1e-12)
    assert len(by_hand) == len(network.parameters()) > 0
    for grad, parameter in zip(by_hand, network.parameters(), strict=True):
        numpy.testing.assert_allclose(parameter.grad, grad, rtol=1e-12)
    checks = layer_checks(network, off_kinks(x), rng)  # and the values are the derivatives: centred differences
    assert len(checks) == 1 + len(network.parameters())
    check_gradients(checks, LAYER_TOLERANCE)


def test_parameter_repr_and_size():
    parameter = Parameter(numpy.zeros((3, 4), dtype=F32), "W")
    assert parameter.size == 12 and parameter.shape == (3, 4) and parameter.grad is None
    assert repr(parameter) == "Parameter('W', shape=(3, 4), dtype=float32)"


def test_simple_autoencoder_summary():
    model = builders.simple_autoencoder()
    assert sum(parameter.size for parameter in model.parameters()) == 209_968
    text = model.summary()
    assert "Total params: 209,968" in text
    lines = text.splitlines()
    expected_rows = [("encoder.0 Dense", "(None, 128)", "100,480"), ("encoder.1 ReLU", "(None, 128)", "0"),
                     ("encoder.2 Dense", "(None, 32)", "4,128"), ("encoder.3 ReLU", "(None, 32)", "0"),
                     ("decoder.0 Dense", "(None, 128)", "4,224"), ("decoder.2 Dense", "(None, 784)", "101,136"),
                     ("decoder.3 Sigmoid", "(None, 784)", "0")]
    for name, shape, count in expected_rows:
        row = next(line for line in lines if line.startswith(name))
        assert shape in row and row.split()[-1] == count, row


def test_sequential_summary_output_shapes():
    network = Sequential([Dense(10, 4, rng=0), ReLU(), Dense(4, 2, rng=0)])
    text = summary.summary(network, input_shape=10)
    assert "(None, 4)" in text and "(None, 2)" in text
    assert "Total params: 54" in text  # 10*4 + 4 + 4*2 + 2
    assert "Output Shape" in text and "Param #" in text


# ---------------------------------------------------------------------------------------------------- casts


def test_layer_to_dtype_casts_and_clears_gradients(rng):
    layer = Dense(3, 2, rng=0)
    layer.forward(rng.standard_normal((2, 3)).astype(F32))
    layer.backward(numpy.ones((2, 2), dtype=F32))
    values = layer.W.data.copy()
    assert layer.to(dtype=F64) is layer
    assert layer.W.data.dtype == F64 and layer.b.data.dtype == F64
    numpy.testing.assert_array_equal(layer.W.data, values.astype(F64))
    assert layer.W.grad is None and layer.b.grad is None
    y = layer.forward(rng.standard_normal((2, 3)))
    assert y.dtype == F64


def test_sequential_and_model_to_dtype(rng):
    network = small_network(rng, dtype=F32).to(dtype=F64)
    assert all(parameter.data.dtype == F64 for parameter in network.parameters())
    model = builders.simple_autoencoder(4, input_dim=6, hidden_dim=5)
    assert model.to(dtype=F64) is model
    assert all(parameter.data.dtype == F64 for parameter in model.parameters())


def test_layer_to_cpu_keeps_numpy(rng):
    layer = Dense(3, 2, rng=0).to("cpu")
    assert isinstance(layer.W.data, numpy.ndarray) and layer.W.data.dtype == F32


def test_layer_to_moves_every_parameter_and_clears_its_gradient(strict, rng):
    layer = Dense(3, 2, rng=0)
    layer.forward(rng.random((4, 3), dtype=F32))
    layer.backward(rng.standard_normal((4, 2)).astype(F32))  # gradients of the old weights, to be cleared
    values = [parameter.data.copy() for parameter in layer.parameters()]
    for parameter in layer.parameters():  # the strict backend's arrays, on its CPU device, gradients kept
        parameter.data = strict.xp.asarray(parameter.data, device=strict.cpu)
    assert layer.to(strict.device) is layer  # to another device: the strict backend's, which is not the CPU
    for parameter, value in zip(layer.parameters(), values, strict=True):
        assert parameter.data.device == strict.device and parameter.grad is None
        numpy.testing.assert_array_equal(strict.to_numpy(parameter.data), value)
    layer.to(strict.cpu).to("cpu")  # and back: NumPy arrays again, the same values and dtype
    for parameter, value in zip(layer.parameters(), values, strict=True):
        assert isinstance(parameter.data, numpy.ndarray) and parameter.data.dtype == F32
        numpy.testing.assert_array_equal(parameter.data, value)


# ---------------------------------------------------------------------------------------------------- float32


def test_float32_stays_float32_through_a_network(rng):
    network = small_network(rng, dtype=F32)
    x = rng.random((4, 5), dtype=F32)
    y = network.forward(x)
    assert y.dtype == F32
    dx = network.backward(numpy.ones_like(y))
    assert dx.dtype == F32
    for name, parameter in network.named_parameters():
        assert parameter.grad.dtype == F32, name
        assert parameter.data.dtype == F32, name


# ---------------------------------------------------------------------------------------------------- bad input


# A layer's forward holds only the math; a model checks what comes in at its door (encode, decode, reconstruct,
# calling it), once, and fit and evaluate check their data before training.


@pytest.mark.parametrize("shape", [(5,), (2, 3, 5), ()])
def test_a_batch_of_the_wrong_rank_is_named_at_the_model_door(shape):
    model = builders.simple_autoencoder(latent_dim=2, input_dim=5, hidden_dim=3)
    with pytest.raises(ValueError, match=rf"must be a batch of shape \(N, 5\), got {re.escape(str(shape))}"):
        model.encode(numpy.zeros(shape, dtype=F32))


def test_the_wrong_feature_size_is_named_at_the_model_door():
    model = builders.simple_autoencoder(latent_dim=2, input_dim=5, hidden_dim=3)
    with pytest.raises(ValueError, match=r"must be a batch of shape \(N, 5\), got \(4, 6\)"):
        model.reconstruct(numpy.zeros((4, 6), dtype=F32))
    with pytest.raises(ValueError, match=r"the code must be a batch of shape \(N, 2\), got \(4, 3\)"):
        model.decode(numpy.zeros((4, 3), dtype=F32))


@pytest.mark.parametrize("dtype", [F64, numpy.int64])
def test_another_dtype_is_refused_at_the_model_door(dtype):
    model = builders.simple_autoencoder(latent_dim=2, input_dim=5, hidden_dim=3)
    with pytest.raises(ValueError, match=f"is {numpy.dtype(dtype).name} but the weights are float32"):
        model(numpy.zeros((2, 5), dtype=dtype))


def test_an_empty_batch_is_refused_at_every_model_door():
    for name, build in builders.BUILDERS.items():
        model = build()
        with pytest.raises(ValueError, match="empty batch"):
            model.encode(numpy.zeros((0, model.input_features), dtype=F32))


@pytest.mark.parametrize("in_features, out_features, message", [
    (0, 3, "in_features must be a whole number >= 1, got 0"),
    (3, -1, "out_features must be a whole number >= 1, got -1"),
    (2.0, 3, "in_features must be a whole number >= 1, got 2.0"),
    (True, 3, "in_features must be a whole number >= 1, got True"),
])
def test_dense_non_positive_sizes(in_features, out_features, message):
    with pytest.raises(ValueError, match=message):
        Dense(in_features, out_features)


def test_dense_accepts_numpy_integers():
    layer = Dense(numpy.int64(3), numpy.int32(2), rng=0)
    assert layer.W.shape == (3, 2)


def test_unknown_init():
    with pytest.raises(ValueError, match="unknown init 'xavier'; choose one of glorot_uniform, he"):
        Dense(3, 2, init="xavier")


def test_empty_sequential():
    with pytest.raises(ValueError, match="Sequential needs at least one layer"):
        Sequential([])


def test_sequential_of_non_layers():
    with pytest.raises(TypeError, match="Sequential takes Layer objects, got function"):
        Sequential([Dense(2, 2), lambda x: x])


def test_a_layer_that_forgets_backward_raises_naming_its_class(rng):
    class Doubling(Layer):
        def forward(self, x):
            return 2 * x

    layer, x = Doubling(), rng.standard_normal((2, 3))
    numpy.testing.assert_array_equal(layer(x), 2 * x)
    with pytest.raises(NotImplementedError, match="the class Doubling derives from Layer but does not define "
                                                  "backward"):
        layer.backward(x)
    with pytest.raises(NotImplementedError, match="the class Layer derives from Layer but does not define forward"):
        Layer().forward(x)


def test_identity_passes_values_and_gradients_through(rng):
    layer, x = Identity(), rng.standard_normal((2, 3))
    numpy.testing.assert_array_equal(layer(x), x)
    numpy.testing.assert_array_equal(layer.backward(x), x)
    assert layer.backward(x, input_grad=False) is None

"""The engine on a strict Array API backend: the same numbers as NumPy, with no NumPy in the math path.

array-api-strict implements only the Array API standard, and its arrays on ``Device('device1')`` refuse to be
converted to NumPy. Every layer, loss and optimizer, and a full training step, run there and agree with NumPy: the
same lines would run on CuPy.
"""

from __future__ import annotations

import numpy
import pytest

from scratchae import builders
from scratchae.backend import get_namespace
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from scratchae.optim import SGD, Adam

F32, F64 = numpy.float32, numpy.float64


def assert_same(strict, on_device, expected, dtype):
    """``on_device`` lives on the strict device, in the strict namespace, and equals ``expected`` (NumPy)."""
    assert get_namespace(on_device) is strict.xp
    assert on_device.device == strict.device
    assert on_device.dtype == getattr(strict.xp, numpy.dtype(dtype).name)
    rtol = 1e-5 if dtype == F32 else 1e-12
    numpy.testing.assert_allclose(strict.to_numpy(on_device), expected, rtol=rtol, atol=rtol * 1e-2)


def test_strict_arrays_refuse_numpy(strict):
    a = strict.asarray(numpy.zeros(3))
    with pytest.raises(RuntimeError, match="Can't convert array on the .*device1"):
        numpy.asarray(a)
    assert not hasattr(strict.xp, "float128")  # a namespace with nothing beyond the standard


LAYERS = {
    "dense": lambda dtype: Dense(5, 3, rng=0, dtype=dtype),
    "relu": lambda dtype: ReLU(),
    "sigmoid": lambda dtype: Sigmoid(),
    "identity": lambda dtype: Identity(),
    "sequential": lambda dtype: Sequential([Dense(5, 4, rng=1, dtype=dtype), ReLU(), Dense(4, 3, rng=2, dtype=dtype),
                                            Identity(), Dense(3, 2, rng=3, dtype=dtype), Sigmoid()]),
}


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", LAYERS)
def test_layers_match_numpy(strict, rng, name, dtype):
    reference, layer = LAYERS[name](dtype), strict.move(LAYERS[name](dtype))
    x = rng.standard_normal((4, 5)).astype(dtype)
    x[0, :2] = 0.0  # ReLU's kink: exactly 0 in both
    y_ref = reference.forward(x)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref = reference.backward(dy)

    y = layer.forward(strict.asarray(x))
    assert_same(strict, y, y_ref, dtype)
    dx = layer.backward(strict.asarray(dy))
    assert_same(strict, dx, dx_ref, dtype)
    for (_, p_ref), (_, p) in zip(_named(reference), _named(layer), strict=True):
        assert_same(strict, p.grad, p_ref.grad, dtype)
    assert layer.backward(strict.asarray(dy), input_grad=False) is None


def _named(layer):
    return layer.named_parameters() if hasattr(layer, "named_parameters") else [(p.name, p) for p in layer.parameters()]


def test_the_model_door_checks_work_on_strict_arrays(strict):
    model = builders.simple_autoencoder(latent_dim=2, input_dim=5, hidden_dim=3)
    for part in model.parts().values():
        strict.move(part)
    with pytest.raises(ValueError, match=r"must be a batch of shape \(N, 5\), got \(2, 4\)"):
        model.encode(strict.asarray(numpy.zeros((2, 4), dtype=F32)))
    with pytest.raises(ValueError, match="float64 but the weights are .*float32"):
        model.reconstruct(strict.asarray(numpy.zeros((2, 5))))


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("make", [MSELoss, BCELoss])
def test_elementwise_losses_match_numpy(strict, rng, make, dtype):
    pred = rng.uniform(0.0, 1.0, (4, 3)).astype(dtype)
    pred[0, 0], pred[1, 1] = 0.0, 1.0  # BCE's clip active on two entries
    target = rng.random((4, 3)).astype(dtype)
    reference, loss = make(), make()
    value_ref = reference.forward(pred, target)
    value = loss.forward(strict.asarray(pred), strict.asarray(target))
    assert value.shape == ()
    assert_same(strict, value, value_ref, dtype)
    assert_same(strict, loss.backward(), reference.backward(), dtype)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_softmax_cross_entropy_matches_numpy(strict, rng, dtype):
    logits = (3.0 * rng.standard_normal((5, 4))).astype(dtype)
    logits[0] = [1e4, -1e4, 0.0, 0.0]
    labels = numpy.array([0, 3, 1, 1, 2])
    reference, loss = SoftmaxCrossEntropyLoss(), SoftmaxCrossEntropyLoss()
    value_ref = reference.forward(logits, labels)
    value = loss.forward(strict.asarray(logits), strict.asarray(labels))
    grad = loss.backward()
    assert_same(strict, value, value_ref, dtype)
    assert_same(strict, grad, reference.backward(), dtype)


def test_loss_checks_work_on_strict_arrays(strict):
    loss = SoftmaxCrossEntropyLoss()
    logits = strict.asarray(numpy.zeros((3, 3), dtype=F32))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] for 3 classes, got values from 0 to 3"):
        loss(logits, strict.asarray(numpy.array([0, 3, 1])))
    with pytest.raises(TypeError, match="labels must be integers"):
        loss(logits, strict.asarray(numpy.array([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match=r"pred has shape \(3, 3\) but target has shape \(3, 2\)"):
        MSELoss()(logits, strict.asarray(numpy.zeros((3, 2), dtype=F32)))


OPTIMIZERS = {
    "adam": lambda ps: Adam(ps, lr=0.01),
    "adam-weight-decay": lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
    "sgd": lambda ps: SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
}


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_match_numpy(strict, rng, name, dtype):
    reference = Dense(4, 3, rng=0, dtype=dtype)
    layer = strict.move(Dense(4, 3, rng=0, dtype=dtype))
    optimizer_ref, optimizer = OPTIMIZERS[name](reference.parameters()), OPTIMIZERS[name](layer.parameters())
    for _ in range(3):
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in reference.parameters()]
        for grad, p_ref, p in zip(grads, reference.parameters(), layer.parameters()):
            p_ref.grad, p.grad = grad, strict.asarray(grad)
        optimizer_ref.step()
        optimizer.step()
    for p_ref, p in zip(reference.parameters(), layer.parameters()):
        assert_same(strict, p.data, p_ref.data, dtype)
    for state_name, arrays in optimizer.state_arrays().items():
        for array, array_ref in zip(arrays, optimizer_ref.state_arrays()[state_name], strict=True):
            assert_same(strict, array, array_ref, dtype)  # state on the parameter's device, in its dtype


@pytest.mark.parametrize("loss_class", [BCELoss, MSELoss])
def test_full_training_step_matches_numpy(strict, rng, loss_class):
    reference = builders.simple_autoencoder(latent_dim=4, input_dim=12, hidden_dim=8, seed=5)
    model = strict.move(builders.simple_autoencoder(latent_dim=4, input_dim=12, hidden_dim=8, seed=5))
    optimizer_ref, optimizer = Adam(reference.parameters(), lr=0.01), Adam(model.parameters(), lr=0.01)
    loss_ref, loss = loss_class(), loss_class()
    x = rng.random((6, 12), dtype=F32)
    x_device = strict.asarray(x)
    for _ in range(3):
        value_ref = loss_ref.forward(reference.forward(x), x)
        reference.backward(loss_ref.backward())
        optimizer_ref.step()

        pred = model.forward(x_device)
        value = loss.forward(pred, x_device)
        model.backward(loss.backward())
        optimizer.step()
        assert_same(strict, value, value_ref, F32)
    for (_, p_ref), (_, p) in zip(reference.named_parameters(), model.named_parameters(), strict=True):
        assert_same(strict, p.grad, p_ref.grad, F32)
        assert_same(strict, p.data, p_ref.data, F32)
    assert_same(strict, model.encode(x_device), reference.encode(x), F32)


def test_classifier_training_step_matches_numpy(strict, rng):
    reference = builders.mlp_classifier(latent_dim=3, n_classes=4, input_dim=10, seed=2)
    model = strict.move(builders.mlp_classifier(latent_dim=3, n_classes=4, input_dim=10, seed=2))
    optimizer_ref, optimizer = SGD(reference.parameters(), lr=0.1, momentum=0.9), SGD(model.parameters(), lr=0.1,
                                                                                      momentum=0.9)
    x, labels = rng.random((5, 10), dtype=F32), numpy.array([0, 3, 2, 1, 3])
    loss_ref, loss = SoftmaxCrossEntropyLoss(), SoftmaxCrossEntropyLoss()
    for _ in range(2):
        value_ref = loss_ref.forward(reference.forward(x), labels)
        reference.backward(loss_ref.backward())
        optimizer_ref.step()
        value = loss.forward(model.forward(strict.asarray(x)), strict.asarray(labels))
        model.backward(loss.backward())
        optimizer.step()
        assert_same(strict, value, value_ref, F32)
    predicted = model.predict(strict.asarray(x))
    numpy.testing.assert_array_equal(strict.to_numpy(predicted), reference.predict(x))


def test_a_diverging_run_goes_back_to_its_last_finite_state_on_the_strict_backend(strict):
    """The snapshot that fit keeps must share no memory with the weights Adam updates in place."""
    from scratchae.training import TrainingDiverged, fit

    rng = numpy.random.default_rng(0)
    model = strict.move(builders.simple_autoencoder(4, input_dim=12, hidden_dim=8, seed=1))
    before = [strict.to_numpy(p.data).copy() for p in model.parameters()]
    x = strict.asarray(rng.random((64, 12), dtype=numpy.float32))
    with pytest.raises(TrainingDiverged, match="before training"):
        fit(model, MSELoss(), Adam(model.parameters(), lr=1e39), x, epochs=1, batch_size=64, progress=False)
    for p, expected in zip(model.parameters(), before, strict=True):
        numpy.testing.assert_array_equal(strict.to_numpy(p.data), expected)


def _conv_layers(dtype):
    from scratchae.conv import ConvTranspose2D, Conv2D, Flatten, MaxPool2D, Reshape, UpSampling2D

    return {
        "conv-same-stride-2": (Conv2D(2, 3, 3, stride=2, rng=0, dtype=dtype), (2, 2, 7, 6)),
        "conv-valid-fewer-out": (Conv2D(4, 2, 3, padding="valid", rng=1, dtype=dtype), (2, 4, 6, 5)),
        "transposed": (ConvTranspose2D(3, 2, 3, stride=2, padding=1, output_padding=1, rng=2, dtype=dtype),
                       (2, 3, 4, 3)),
        "pool-same-overlapping": (MaxPool2D(3, stride=2, padding="same"), (2, 2, 7, 7)),
        "upsampling": (UpSampling2D(2), (2, 2, 3, 4)),
        "flatten": (Flatten(), (2, 2, 3, 3)),
        "reshape": (Reshape((2, 3, 3)), (2, 18)),
    }


@pytest.mark.parametrize("floor", ["lesson", "engine, whole batch", "engine, one sample a block"])
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name", list(_conv_layers(F64)))
def test_conv_layers_match_numpy(strict, rng, monkeypatch, name, dtype, floor):
    from scratchae.engine import conv as engine_conv
    from scratchae.engine.forms import fast

    (reference, shape), (layer, _) = _conv_layers(dtype)[name], _conv_layers(dtype)[name]
    strict.move(fast(layer) if floor.startswith("engine") else layer)
    x = rng.integers(0, 4, shape).astype(dtype)  # small integers: max pooling meets ties
    y_ref = reference.forward(x)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref = reference.backward(dy)
    if floor.endswith("one sample a block"):  # the engine's layers that go by blocks join them on the strict device
        monkeypatch.setattr(engine_conv, "sample_blocks", lambda n, *sizes: [slice(i, i + 1) for i in range(n)])

    y = layer.forward(strict.asarray(x))
    assert_same(strict, y, y_ref, dtype)
    dx = layer.backward(strict.asarray(dy))
    assert_same(strict, dx, dx_ref, dtype)
    for p_ref, p in zip(reference.parameters(), layer.parameters(), strict=True):
        assert_same(strict, p.grad, p_ref.grad, dtype)
    assert layer.backward(strict.asarray(dy), input_grad=False) is None

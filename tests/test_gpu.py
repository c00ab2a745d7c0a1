"""The engine on the GPU (CuPy): the same numbers as NumPy, to float32 precision.

These tests run where CuPy is installed and sees a GPU, and are skipped elsewhere (``-m gpu`` selects them alone).
"""

from __future__ import annotations

import numpy
import pytest

from scratchae import builders
from scratchae.backend import DeviceError, device_of, get_namespace, gpu_available, resolve_device, to_device, to_numpy
from scratchae.layers import Dense, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.optim import SGD, Adam
from scratchae.training import fit


def _why_no_gpu() -> str:
    try:
        resolve_device("gpu")
    except DeviceError as error:
        return f"needs CuPy and a GPU: {error}"
    return "needs CuPy and a GPU"


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason=_why_no_gpu())]

F32 = numpy.float32
RTOL, ATOL = 1e-5, 1e-6  # float32: summation order differs between the GPU's and the CPU's matrix products


def assert_on_gpu_and_close(on_gpu, expected, rtol=RTOL, atol=ATOL):
    assert device_of(on_gpu) == "gpu"
    assert on_gpu.dtype == expected.dtype
    numpy.testing.assert_allclose(to_numpy(on_gpu), expected, rtol=rtol, atol=atol)


def network():
    return Sequential([Dense(12, 8, rng=0), ReLU(), Dense(8, 12, rng=1), Sigmoid()])


def test_resolve_device_gpu():
    assert resolve_device("gpu") == "gpu"
    assert resolve_device("auto") == "gpu"


def test_to_device_round_trip():
    x = numpy.arange(6, dtype=F32).reshape(2, 3)
    on_gpu = to_device(x, "gpu")
    assert device_of(on_gpu) == "gpu" and on_gpu.dtype == F32
    assert get_namespace(on_gpu).__name__ == "cupy"
    numpy.testing.assert_array_equal(to_numpy(on_gpu), x)
    numpy.testing.assert_array_equal(to_device(on_gpu, "cpu"), x)


def test_layers_match_numpy(rng):
    reference, layer = network(), network().to("gpu")
    assert all(device_of(p.data) == "gpu" and p.data.dtype == F32 for p in layer.parameters())
    x = rng.standard_normal((5, 12)).astype(F32)
    dy = rng.standard_normal((5, 12)).astype(F32)
    y_ref, y = reference.forward(x), layer.forward(to_device(x, "gpu"))
    assert_on_gpu_and_close(y, y_ref)
    dx_ref, dx = reference.backward(dy), layer.backward(to_device(dy, "gpu"))
    assert_on_gpu_and_close(dx, dx_ref)
    for p_ref, p in zip(reference.parameters(), layer.parameters(), strict=True):
        assert_on_gpu_and_close(p.grad, p_ref.grad)


@pytest.mark.parametrize("layer_class", [Sigmoid, ReLU])
def test_fused_activations_match_numpy_at_saturation_and_zero(layer_class):
    """The GPU's fused kernels clip as the NumPy lines do: no overflow, no NaN, ReLU's derivative 0 at exactly 0."""
    x = numpy.array([[-1e4, -100.0, -88.8, -3.0, 0.0, 2.5, 88.8, 100.0, 1e4]], dtype=F32)
    dy = numpy.linspace(-1.0, 1.0, x.size, dtype=F32).reshape(x.shape)
    reference, layer = layer_class(), layer_class()
    y_ref, y = reference.forward(x), layer.forward(to_device(x, "gpu"))
    assert bool(numpy.all(numpy.isfinite(to_numpy(y))))
    assert_on_gpu_and_close(y, y_ref, atol=1e-30)
    assert_on_gpu_and_close(layer.backward(to_device(dy, "gpu")), reference.backward(dy), atol=1e-30)


@pytest.mark.parametrize("make", [MSELoss, BCELoss])
def test_elementwise_losses_match_numpy(rng, make):
    pred = rng.uniform(0.0, 1.0, (6, 5)).astype(F32)
    pred[0, 0] = 0.0
    target = rng.random((6, 5), dtype=F32)
    reference, loss = make(), make()
    value_ref = reference.forward(pred, target)
    value = loss.forward(to_device(pred, "gpu"), to_device(target, "gpu"))
    assert_on_gpu_and_close(value, value_ref)
    assert_on_gpu_and_close(loss.backward(), reference.backward())


def test_softmax_cross_entropy_matches_numpy(rng):
    logits = (3.0 * rng.standard_normal((6, 4))).astype(F32)
    labels = rng.integers(0, 4, size=6)
    reference, loss = SoftmaxCrossEntropyLoss(), SoftmaxCrossEntropyLoss()
    value_ref = reference.forward(logits, labels)
    value = loss.forward(to_device(logits, "gpu"), to_device(labels, "gpu"))
    assert_on_gpu_and_close(value, value_ref)
    assert_on_gpu_and_close(loss.backward(), reference.backward())


@pytest.mark.parametrize("make", [lambda ps: Adam(ps, lr=0.01, weight_decay=0.01),
                                  lambda ps: SGD(ps, lr=0.1, momentum=0.9)], ids=["adam", "sgd"])
def test_optimizers_match_numpy(rng, make):
    reference, layer = Dense(6, 4, rng=0), Dense(6, 4, rng=0).to("gpu")
    optimizer_ref, optimizer = make(reference.parameters()), make(layer.parameters())
    for _ in range(3):
        for p_ref, p in zip(reference.parameters(), layer.parameters()):
            grad = rng.standard_normal(p_ref.shape).astype(F32)
            p_ref.grad, p.grad = grad, to_device(grad, "gpu")
        optimizer_ref.step()
        optimizer.step()
    for p_ref, p in zip(reference.parameters(), layer.parameters()):
        assert_on_gpu_and_close(p.data, p_ref.data)
    for name, arrays in optimizer.state_arrays().items():
        for array, array_ref in zip(arrays, optimizer_ref.state_arrays()[name], strict=True):
            assert_on_gpu_and_close(array, array_ref)  # state allocated on the GPU, in float32


def test_fit_one_epoch_matches_numpy(rng):
    x = rng.random((64, 16), dtype=F32)
    reference = builders.simple_autoencoder(latent_dim=4, input_dim=16, hidden_dim=8, seed=3)
    model = builders.simple_autoencoder(latent_dim=4, input_dim=16, hidden_dim=8, seed=3).to("gpu")
    histories = [fit(m, BCELoss(), Adam(m.parameters(), lr=1e-3), x, epochs=1, batch_size=16, seed=0, progress=False)
                 for m in (reference, model)]
    assert len(histories[1]) == 1
    numpy.testing.assert_allclose(histories[1]["loss"], histories[0]["loss"], rtol=1e-5)
    for p_ref, p in zip(reference.parameters(), model.parameters(), strict=True):
        assert_on_gpu_and_close(p.data, p_ref.data, rtol=1e-4, atol=1e-5)
    assert_on_gpu_and_close(model.reconstruct(to_device(x, "gpu")), reference.reconstruct(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reconstruction", ["bce", "mse"])
def test_the_vae_matches_numpy(rng, reconstruction):
    """The same eps on both devices (eps is drawn where the batch lives, so the streams differ): the same outputs,
    loss and gradients, and one training step lands on the same weights."""
    reference = builders.variational_autoencoder(3, hidden_dim=16, input_dim=12, seed=2)
    vae = builders.variational_autoencoder(3, hidden_dim=16, input_dim=12, seed=2).to("gpu")
    x = rng.random((6, 12), dtype=F32)
    eps = rng.standard_normal((6, 3)).astype(F32)
    outputs_ref = reference.train().forward(x, eps=eps)
    outputs = vae.train().forward(to_device(x, "gpu"), eps=to_device(eps, "gpu"))
    for on_gpu, expected in zip(outputs, outputs_ref, strict=True):
        assert_on_gpu_and_close(on_gpu, expected)
    loss_ref, loss = VAELoss(reconstruction), VAELoss(reconstruction)
    assert_on_gpu_and_close(loss.forward(outputs, to_device(x, "gpu")), loss_ref.forward(outputs_ref, x), rtol=1e-5)
    reference.backward(loss_ref.backward())
    vae.backward(loss.backward())
    for p_ref, p in zip(reference.parameters(), vae.parameters(), strict=True):
        assert_on_gpu_and_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5)
    samples = vae.sample(4, seed=0)
    assert device_of(samples) == "gpu" and samples.shape == (4, 12) and samples.dtype == F32


def _conv_layers():
    from scratchae.conv import ConvTranspose2D, Conv2D, Flatten, MaxPool2D, Reshape, UpSampling2D

    return {
        "conv-same": (Conv2D(1, 16, 3, rng=0), (8, 1, 28, 28)),
        "conv-more-in-than-out": (Conv2D(16, 8, 3, rng=1), (8, 16, 14, 14)),
        "conv-valid": (Conv2D(16, 1, 3, padding="valid", rng=2), (8, 16, 16, 16)),
        "conv-stride-2": (Conv2D(32, 64, 3, stride=2, rng=3), (8, 32, 14, 14)),
        "transposed": (ConvTranspose2D(64, 32, 3, stride=2, padding=1, output_padding=1, rng=4), (8, 64, 7, 7)),
        "pool-same": (MaxPool2D(2, padding="same"), (8, 8, 7, 7)),
        "pool-overlapping": (MaxPool2D(3, stride=2), (8, 4, 9, 9)),
        "upsampling": (UpSampling2D(2), (8, 8, 4, 4)),
        "flatten": (Flatten(), (8, 8, 4, 4)),
        "reshape": (Reshape((1, 28, 28)), (8, 784)),
    }


@pytest.mark.parametrize("name", list(_conv_layers()))
def test_conv_layers_match_numpy(rng, name):
    (reference, shape), (layer, _) = _conv_layers()[name], _conv_layers()[name]
    layer.to("gpu")
    x = rng.integers(0, 4, shape).astype(F32)  # small integers: max pooling meets ties, which go the same way
    y_ref = reference.forward(x)
    dy = rng.standard_normal(y_ref.shape).astype(F32)
    dx_ref = reference.backward(dy)
    y = layer.forward(to_device(x, "gpu"))
    assert_on_gpu_and_close(y, y_ref, rtol=1e-5, atol=1e-4)
    dx = layer.backward(to_device(dy, "gpu"))
    assert_on_gpu_and_close(dx, dx_ref, rtol=1e-5, atol=1e-4)
    for p_ref, p in zip(reference.parameters(), layer.parameters(), strict=True):
        assert_on_gpu_and_close(p.grad, p_ref.grad, rtol=1e-5, atol=1e-3)


def _conv_model_and_input(name, rng):
    """A full-size conv model (its float32 weights), the batch it takes and the target its loss compares with."""
    x = rng.random((8, 784), dtype=F32)
    if name == "conv-denoising":  # the noise drawn once on the CPU: the GPU's generator gives other numbers
        return builders.conv_denoising_autoencoder(seed=4), builders.conv_denoising_autoencoder(seed=4).corrupt(
            x, numpy.random.default_rng(1)), x
    return builders.BUILDERS[name](seed=4), x, x


@pytest.mark.parametrize("name", ["conv", "conv-denoising", "conv-vae"])
def test_the_conv_models_match_numpy(rng, name):
    """The same outputs, loss and gradients on both devices (scaled to each gradient's largest entry: float32 sums
    in another order), and one Adam step lands on the same weights."""
    reference, inputs, target = _conv_model_and_input(name, rng)
    model = _conv_model_and_input(name, numpy.random.default_rng(0))[0].to("gpu")
    loss_ref, loss = (VAELoss("bce"), VAELoss("bce")) if name == "conv-vae" else (BCELoss(), BCELoss())
    extra = {}
    if name == "conv-vae":
        reference.train(), model.train()
        extra = {"eps": rng.standard_normal((8, 2)).astype(F32)}
    outputs_ref = reference.forward(inputs, **extra)
    outputs = model.forward(to_device(inputs, "gpu"), **{key: to_device(value, "gpu") for key, value in extra.items()})
    for on_gpu, expected in zip(outputs if isinstance(outputs, tuple) else (outputs,),
                                outputs_ref if isinstance(outputs_ref, tuple) else (outputs_ref,), strict=True):
        assert_on_gpu_and_close(on_gpu, expected, rtol=1e-4, atol=1e-5)
    assert_on_gpu_and_close(loss.forward(outputs, to_device(target, "gpu")), loss_ref.forward(outputs_ref, target),
                            rtol=1e-5)
    reference.backward(loss_ref.backward())
    model.backward(loss.backward())
    for p_ref, p in zip(reference.parameters(), model.parameters(), strict=True):
        scale = float(numpy.max(numpy.abs(p_ref.grad)))
        assert_on_gpu_and_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-4 * scale)
    for optimizer in (Adam(reference.parameters()), Adam(model.parameters())):
        optimizer.step()
    for p_ref, p in zip(reference.parameters(), model.parameters(), strict=True):
        assert_on_gpu_and_close(p.data, p_ref.data, rtol=1e-4, atol=1e-5)

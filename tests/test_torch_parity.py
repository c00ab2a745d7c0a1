"""Optional parity with PyTorch, in float64: the same network from the same weights gives the same loss, the same
gradients and the same Adam trajectory. Skipped where PyTorch is not installed (it is never a dependency)."""

from __future__ import annotations

import numpy
import pytest

from scratchae import builders
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.optim import Adam

torch = pytest.importorskip("torch", reason="PyTorch is not installed; parity tests are optional")

from scratchae.torch_twin import (  # noqa: E402  (needs torch)
    torch_gradients, torch_sparse_loss, torch_sparse_twin, torch_twin, torch_vae_loss, torch_vae_twin, torch_weights)

STEPS = 5


@pytest.mark.parametrize("loss_name", ["mse", "bce"])
def test_autoencoder_matches_pytorch_over_several_adam_steps(loss_name):
    rng = numpy.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, (16, 20))
    model = builders.deep_autoencoder(4, input_dim=20, seed=3, dtype=numpy.float64)
    net = torch_twin(model)
    ours, theirs = {"mse": (MSELoss(), torch.nn.MSELoss()), "bce": (BCELoss(), torch.nn.BCELoss())}[loss_name]
    optimizer = Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    torch_optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
    x_torch = torch.from_numpy(x)
    for _ in range(STEPS):
        loss = ours.forward(model.forward(x), x)
        model.backward(ours.backward())
        torch_optimizer.zero_grad()
        torch_loss = theirs(net(x_torch), x_torch)
        torch_loss.backward()
        numpy.testing.assert_allclose(float(loss), torch_loss.item(), rtol=1e-10)
        for grad, torch_grad in zip([p.grad for p in model.parameters()], torch_gradients(net)):
            numpy.testing.assert_allclose(grad, torch_grad, rtol=1e-8, atol=1e-12)
        optimizer.step()
        torch_optimizer.step()
    for parameter, expected in zip(model.parameters(), torch_weights(net), strict=True):
        numpy.testing.assert_allclose(parameter.data, expected, rtol=1e-8, atol=1e-12)


def test_classifier_loss_and_gradients_match_pytorch():
    rng = numpy.random.default_rng(4)
    x = rng.uniform(0.0, 1.0, (12, 20))
    labels = rng.integers(0, 10, size=12)
    model = builders.mlp_classifier(6, input_dim=20, seed=4, dtype=numpy.float64)
    net = torch_twin(model)
    loss = SoftmaxCrossEntropyLoss()
    value = loss.forward(model.forward(x), labels)
    model.backward(loss.backward())
    torch_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(labels))
    torch_loss.backward()
    numpy.testing.assert_allclose(float(value), torch_loss.item(), rtol=1e-10)
    for grad, torch_grad in zip([p.grad for p in model.parameters()], torch_gradients(net)):
        numpy.testing.assert_allclose(grad, torch_grad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("reconstruction", ["bce", "mse"])
def test_vae_matches_pytorch_over_several_adam_steps(reconstruction):
    """The same eps in both: the same negative ELBO, the same gradients through the sample and the KL term, and the
    same Adam trajectory."""
    rng = numpy.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, (16, 20))
    vae = builders.variational_autoencoder(4, hidden_dim=12, input_dim=20, seed=5, dtype=numpy.float64).train()
    net = torch_vae_twin(vae)
    optimizer = Adam(vae.parameters(), lr=1e-2)
    torch_optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss, x_torch = VAELoss(reconstruction, beta=0.7), torch.from_numpy(x)
    for _ in range(STEPS):
        eps = rng.standard_normal((16, 4))
        value = loss.forward(vae.forward(x, eps=eps), x)
        vae.backward(loss.backward())
        torch_optimizer.zero_grad()
        torch_value = torch_vae_loss(net(x_torch, torch.from_numpy(eps)), x_torch, reconstruction, beta=0.7)
        torch_value.backward()
        numpy.testing.assert_allclose(float(value), torch_value.item(), rtol=1e-10)
        for grad, torch_grad in zip([p.grad for p in vae.parameters()], torch_gradients(net), strict=True):
            numpy.testing.assert_allclose(grad, torch_grad, rtol=1e-8, atol=1e-12)
        optimizer.step()
        torch_optimizer.step()
    for parameter, expected in zip(vae.parameters(), torch_weights(net), strict=True):
        numpy.testing.assert_allclose(parameter.data, expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("reconstruction", ["mse", "bce"])
def test_sparse_autoencoder_matches_pytorch_over_several_adam_steps(reconstruction):
    """The L1 activity penalty's gradient, l1 * sign(h) / N, is PyTorch's autograd of l1 * |h|.sum() / N: the same
    loss, the same gradients (with a linear code of both signs, and some of the ReLU code's units at exactly 0), the
    same Adam trajectory. l1 is large, so that the penalty weighs on every step."""
    from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
    from scratchae.sparse import SparseAutoencoder, SparseLoss

    rng = numpy.random.default_rng(6)
    x = rng.uniform(0.0, 1.0, (16, 20))
    for code in (ReLU, Identity):
        f64 = numpy.float64
        model = SparseAutoencoder(Sequential([Dense(20, 6, rng=rng, dtype=f64), code()]),
                                  Sequential([Dense(6, 20, rng=rng, dtype=f64), Sigmoid()]), l1=0.05)
        net = torch_sparse_twin(model)
        loss, x_torch = SparseLoss(model.l1, reconstruction), torch.from_numpy(x)
        optimizer, torch_optimizer = Adam(model.parameters(), lr=1e-2), torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(STEPS):
            value = loss.forward(model.forward(x), x)
            model.backward(loss.backward())
            torch_optimizer.zero_grad()
            torch_value = torch_sparse_loss(net(x_torch), x_torch, model.l1, reconstruction)
            torch_value.backward()
            numpy.testing.assert_allclose(float(value), torch_value.item(), rtol=1e-10)
            for grad, torch_grad in zip([p.grad for p in model.parameters()], torch_gradients(net), strict=True):
                numpy.testing.assert_allclose(grad, torch_grad, rtol=1e-8, atol=1e-12)
            optimizer.step()
            torch_optimizer.step()
        for parameter, expected in zip(model.parameters(), torch_weights(net), strict=True):
            numpy.testing.assert_allclose(parameter.data, expected, rtol=1e-8, atol=1e-12)


# ------------------------------------------------------------------- convolutional layers, forward and backward

from scratchae.conv import ConvTranspose2D, Conv2D, MaxPool2D, UpSampling2D  # noqa: E402

F = torch.nn.functional


def _torch_pad(x, layer, fill=0.0):
    """Keras's "same" padding as PyTorch sees it: explicit (left, right, top, bottom) before a "valid" operation."""
    (top, bottom), (left, right) = layer.paddings(x.shape[2], x.shape[3])
    return F.pad(x, (left, right, top, bottom), value=fill)


def _assert_parity(layer, x, torch_function, torch_parameters=()):
    """Same output, same dL/dx and same parameter gradients as torch_function, for a random upstream gradient."""
    rng = numpy.random.default_rng(11)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    y = layer.forward(x)
    y_torch = torch_function(x_torch)
    numpy.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    y_torch.backward(torch.from_numpy(dy))
    numpy.testing.assert_allclose(dx, x_torch.grad.numpy(), rtol=1e-10, atol=1e-12)
    for parameter, torch_parameter in zip(layer.parameters(), torch_parameters, strict=True):
        numpy.testing.assert_allclose(parameter.grad, torch_parameter.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, size", [
    (1, 16, 3, 1, "same", (28, 28)), (16, 8, 3, 1, "same", (14, 14)), (16, 1, 3, 1, "valid", (16, 16)),
    (1, 32, 3, 2, "same", (28, 28)), (32, 64, 3, 2, "same", (14, 13)), (3, 2, (2, 3), 2, 1, (7, 8))])
def test_conv2d_matches_pytorch(c_in, c_out, kernel, stride, padding, size):
    rng = numpy.random.default_rng(12)
    layer = Conv2D(c_in, c_out, kernel, stride=stride, padding=padding, rng=rng, dtype=numpy.float64)
    layer.b.data = rng.standard_normal(c_out)
    w, b = (torch.from_numpy(p.data.copy()).requires_grad_(True) for p in layer.parameters())
    _assert_parity(layer, rng.standard_normal((3, c_in, *size)),
                   lambda x: F.conv2d(_torch_pad(x, layer), w, b, stride=stride), (w, b))


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, output_padding, size", [
    (64, 64, 3, 2, 1, 1, (7, 7)), (64, 32, 3, 2, 1, 1, (14, 14)), (32, 1, 3, 1, 1, 0, (28, 28)),
    (2, 3, (2, 3), 3, 0, 2, (3, 4))])
def test_conv_transpose2d_matches_pytorch(c_in, c_out, kernel, stride, padding, output_padding, size):
    rng = numpy.random.default_rng(13)
    layer = ConvTranspose2D(c_in, c_out, kernel, stride=stride, padding=padding, output_padding=output_padding,
                            rng=rng, dtype=numpy.float64)
    layer.b.data = rng.standard_normal(c_out)
    w, b = (torch.from_numpy(p.data.copy()).requires_grad_(True) for p in layer.parameters())
    _assert_parity(layer, rng.standard_normal((2, c_in, *size)),
                   lambda x: F.conv_transpose2d(x, w, b, stride=stride, padding=padding,
                                                output_padding=output_padding), (w, b))


@pytest.mark.parametrize("pool_size, stride, padding, size, ties", [
    (2, None, "valid", (28, 28), False), (2, None, "same", (7, 7), False), (3, 2, "valid", (9, 8), False),
    (3, 1, "same", (6, 5), False), (2, None, "valid", (8, 8), True), (3, 2, "same", (7, 8), True),
    (2, 1, "valid", (5, 5), True)])
def test_max_pool_matches_pytorch_ties_included(pool_size, stride, padding, size, ties):
    """With ties, both give the whole gradient to the first maximum of each window in reading order."""
    rng = numpy.random.default_rng(14)
    x = rng.integers(0, 3, (2, 3, *size)).astype(numpy.float64) if ties else rng.standard_normal((2, 3, *size))
    layer = MaxPool2D(pool_size, stride=stride, padding=padding)
    _assert_parity(layer, x, lambda x: F.max_pool2d(_torch_pad(x, layer, -numpy.inf), pool_size,
                                                    stride=layer.stride))


@pytest.mark.parametrize("factor", [2, 3])
def test_upsampling_matches_pytorch(factor):
    x = numpy.random.default_rng(15).standard_normal((2, 3, 7, 5))
    _assert_parity(UpSampling2D(factor), x, lambda x: F.interpolate(x, scale_factor=factor, mode="nearest"))


# ---------------------------------------------------------------------------------------------------------------
# The convolutional models against their twins: one training step each (outputs, loss, gradients, the Adam step)


def _conv_step_matches(model, net, forward, torch_forward, loss, torch_loss, x, target):
    """One step of ``model`` and of its twin ``net`` from the same weights: the same outputs, loss, gradients and
    weights after one Adam step."""
    optimizer, torch_optimizer = Adam(model.parameters(), lr=1e-2), torch.optim.Adam(net.parameters(), lr=1e-2)
    out = forward(x)
    value = loss.forward(out, target)
    model.backward(loss.backward())
    optimizer.step()
    torch_out = torch_forward(torch.from_numpy(x))
    torch_value = torch_loss(torch_out, torch.from_numpy(target))
    torch_value.backward()
    torch_optimizer.step()
    for ours, theirs in zip(out if isinstance(out, tuple) else (out,),
                            torch_out if isinstance(torch_out, tuple) else (torch_out,), strict=True):
        numpy.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-13)
    numpy.testing.assert_allclose(float(value), torch_value.item(), rtol=1e-10)
    for parameter, torch_grad in zip(model.parameters(), torch_gradients(net), strict=True):
        numpy.testing.assert_allclose(parameter.grad, torch_grad, rtol=1e-8, atol=1e-12)
    for parameter, expected in zip(model.parameters(), torch_weights(net), strict=True):
        numpy.testing.assert_allclose(parameter.data, expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("memory_format", [None, "channels_last"])
def test_conv_autoencoder_step_matches_pytorch(memory_format):
    rng = numpy.random.default_rng(21)
    x = rng.uniform(0.0, 1.0, (6, 784))
    model = builders.conv_autoencoder(seed=21, dtype=numpy.float64)
    net = torch_twin(model, memory_format=None if memory_format is None else torch.channels_last)
    _conv_step_matches(model, net, model.forward, net, BCELoss(), torch.nn.BCELoss(), x, x)


def test_conv_denoiser_step_matches_pytorch():
    """On the same noisy images (the noise is drawn once, by scratchae), against the clean ones."""
    rng = numpy.random.default_rng(22)
    clean = rng.uniform(0.0, 1.0, (4, 784))
    model = builders.conv_denoising_autoencoder(seed=22, dtype=numpy.float64)
    noisy = model.corrupt(clean, numpy.random.default_rng(5))
    net = torch_twin(model)
    _conv_step_matches(model, net, model.forward, net, BCELoss(), torch.nn.BCELoss(), noisy, clean)


def test_conv_vae_step_matches_pytorch():
    rng = numpy.random.default_rng(23)
    x, eps = rng.uniform(0.0, 1.0, (6, 784)), rng.standard_normal((6, 2))
    vae = builders.conv_variational_autoencoder(seed=23, dtype=numpy.float64).train()
    net = torch_vae_twin(vae)
    _conv_step_matches(vae, net, lambda x: vae.forward(x, eps=eps), lambda x: net(x, torch.from_numpy(eps)),
                       VAELoss("bce"), lambda out, x: torch_vae_loss(out, x), x, x)

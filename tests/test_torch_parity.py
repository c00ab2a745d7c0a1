"""Optional parity with PyTorch, in float64: the same network from the same weights gives the same loss, the same
gradients and the same Adam trajectory. Skipped where PyTorch is not installed (it is never a dependency)."""

from __future__ import annotations

import numpy
import pytest

from scratchae import models
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.optim import Adam

torch = pytest.importorskip("torch", reason="PyTorch is not installed; parity tests are optional")

from scratchae.torch_twin import (  # noqa: E402  (needs torch)
    torch_gradients, torch_twin, torch_vae_loss, torch_vae_twin, torch_weights)

STEPS = 5


@pytest.mark.parametrize("loss_name", ["mse", "bce"])
def test_autoencoder_matches_pytorch_over_several_adam_steps(loss_name):
    rng = numpy.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, (16, 20))
    model = models.deep_autoencoder(4, input_dim=20, seed=3, dtype=numpy.float64)
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
    model = models.mlp_classifier(6, input_dim=20, seed=4, dtype=numpy.float64)
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
    vae = models.variational_autoencoder(4, hidden_dim=12, input_dim=20, seed=5, dtype=numpy.float64).train()
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

"""The same networks in PyTorch, with the same weights: the reference of the parity tests and of the benchmarks.

scratchae never needs PyTorch; this module imports it only when one of its functions is called, and only the tests
and ``benchmarks/`` call them (``pip install torch`` first).

scratchae's Dense computes ``x @ W + b`` with W of shape (in, out); ``torch.nn.Linear`` computes ``x @ W.T + b``
with W of shape (out, in), so the twin holds the transpose of every weight matrix.
"""

from __future__ import annotations

import numpy

from scratchae.backend import to_numpy
from scratchae.layers import Dense, Identity, ReLU, Sigmoid


def torch_twin(model):
    """A ``torch.nn.Sequential`` with the layers and weights of a scratchae model, part after part.

    For an :class:`~scratchae.models.Autoencoder` (encoder then decoder) or a
    :class:`~scratchae.models.Classifier` (encoder then head); the weights keep their dtype (float32 or float64) and
    the twin is on the CPU. For a variational autoencoder, see :func:`torch_vae_twin`.
    """
    import torch

    return torch.nn.Sequential(*[module for part in model.parts().values() for module in _modules(torch, part)])


def _modules(torch, part) -> list:
    activations = {ReLU: torch.nn.ReLU, Sigmoid: torch.nn.Sigmoid, Identity: torch.nn.Identity}
    return [_linear(torch, layer) if isinstance(layer, Dense) else activations[type(layer)]() for layer in part.layers]


def torch_vae_twin(vae):
    """A ``torch.nn.Module`` with the parts and weights of a scratchae
    :class:`~scratchae.models.VariationalAutoencoder`, written as PyTorch users write a VAE (pytorch/examples).

    ``forward(x, eps=None)`` returns ``(x_hat, mu, logvar)``, with ``logvar`` clamped as scratchae clamps it and
    ``eps`` from ``torch.randn_like`` unless given.
    """
    import torch

    class TorchVAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.mu_head, self.logvar_head, self.decoder = (
                torch.nn.Sequential(*_modules(torch, part)) for part in vae.parts().values())

        def forward(self, x, eps=None):
            h = self.encoder(x)
            mu, logvar = self.mu_head(h), self.logvar_head(h).clamp(-vae.LOGVAR_LIMIT, vae.LOGVAR_LIMIT)
            eps = torch.randn_like(mu) if eps is None else eps
            return self.decoder(mu + torch.exp(0.5 * logvar) * eps), mu, logvar

    return TorchVAE()


def torch_vae_loss(out, x, reconstruction: str = "bce", beta: float = 1.0):
    """The negative ELBO per sample in PyTorch, as :class:`~scratchae.losses.VAELoss` computes it."""
    import torch

    x_hat, mu, logvar = out
    n = x.shape[0]
    if reconstruction == "bce":
        rebuilt = torch.nn.functional.binary_cross_entropy(x_hat, x, reduction="sum") / n
    else:
        rebuilt = torch.nn.functional.mse_loss(x_hat, x, reduction="sum") / n
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / n
    return rebuilt + beta * kl


def _linear(torch, layer: Dense):
    weights, bias = to_numpy(layer.W.data), to_numpy(layer.b.data)
    linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.from_numpy(bias).dtype)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weights.T.copy()))  # (out, in)
        linear.bias.copy_(torch.from_numpy(bias.copy()))
    return linear


def torch_gradients(net) -> list[numpy.ndarray]:
    """The gradients of a twin after ``backward``, in scratchae's layout and order: W (in, out) then b, layer by
    layer, as ``model.parameters()`` lists them."""
    import torch

    gradients = []
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            gradients += [module.weight.grad.numpy().T, module.bias.grad.numpy()]
    return gradients


def torch_weights(net) -> list[numpy.ndarray]:
    """The weights of a twin in scratchae's layout and order (see :func:`torch_gradients`)."""
    import torch

    weights = []
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            weights += [module.weight.detach().numpy().T, module.bias.detach().numpy()]
    return weights

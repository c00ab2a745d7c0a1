"""The same networks in PyTorch, with the same weights: the reference of the parity tests and of the benchmarks.

scratchae never needs PyTorch; this module imports it only when one of its functions is called, and only the tests
and ``benchmarks/`` call them (``pip install torch`` first).

scratchae's Dense computes ``x @ W + b`` with W of shape (in, out); ``torch.nn.Linear`` computes ``x @ W.T + b``
with W of shape (out, in), so the twin holds the transpose of every weight matrix. The convolutions' weights have
PyTorch's layout already and are copied as they are. Keras's "same" padding puts the extra row of an odd total at
the end, which ``torch.nn.Conv2d`` cannot say: the twin pads with ``torch.nn.ZeroPad2d`` first where the padding is
not the same on both sides, and pools 7 rows to 4 with ``ceil_mode=True`` (the last window holds the last row
alone, as Keras's).
"""

from __future__ import annotations

import numpy

from scratchae.backend import to_numpy
from scratchae.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape, UpSampling2D
from scratchae.shapes import output_shape
from scratchae.layers import Dense, Identity, ReLU, Sigmoid


def torch_twin(model, *, memory_format=None):
    """A ``torch.nn.Sequential`` with the layers and weights of a scratchae model, part after part.

    For an :class:`~scratchae.models.Autoencoder` (encoder then decoder) or a
    :class:`~scratchae.models.Classifier` (encoder then head); the weights keep their dtype (float32 or float64) and
    the twin is on the CPU. For a variational autoencoder, see :func:`torch_vae_twin`.

    ``memory_format=torch.channels_last`` makes the images of a convolutional model channels-last (NHWC in memory)
    from the first Reshape on, and its convolution weights too: PyTorch's faster layout on a CPU.
    """
    import torch

    inputs = _part_inputs(model)
    net = torch.nn.Sequential(*[module for name, part in model.parts().items()
                                for module in _modules(torch, part, inputs[name], memory_format)])
    return net if memory_format is None else net.to(memory_format=memory_format)


def _part_inputs(model) -> dict[str, tuple]:
    """The shape of one sample at the input of each part of ``model``."""
    inputs, shape = {}, (model.input_features,)
    for name, part in model.parts().items():
        inputs[name] = inputs[model.PART_INPUTS[name]] if name in model.PART_INPUTS else shape
        shape = output_shape(part, inputs[name])
    return inputs


def _modules(torch, part, shape: tuple, memory_format=None) -> list:
    """The PyTorch modules of one part, which takes samples of ``shape``."""
    activations = {ReLU: torch.nn.ReLU, Sigmoid: torch.nn.Sigmoid, Identity: torch.nn.Identity,
                   Flatten: torch.nn.Flatten}
    modules = []
    for layer in part.layers:
        if isinstance(layer, Dense):
            modules.append(_linear(torch, layer))
        elif isinstance(layer, (Conv2D, ConvTranspose2D)):
            modules += _convolution(torch, layer, shape)
        elif isinstance(layer, MaxPool2D):
            modules += _max_pool(torch, layer, shape)
        elif isinstance(layer, UpSampling2D):
            modules.append(torch.nn.Upsample(scale_factor=layer.factor, mode="nearest"))
        elif isinstance(layer, Reshape):
            modules.append(torch.nn.Unflatten(1, layer.shape))
            if memory_format is not None and len(layer.shape) == 3:
                modules.append(_InMemoryFormat(torch, memory_format))
        else:
            modules.append(next(module for kind, module in activations.items() if isinstance(layer, kind))())
        shape = output_shape(layer, shape)
    return modules


def _InMemoryFormat(torch, memory_format):
    """A module that lays its input out in ``memory_format`` (the images after a Reshape, for channels-last)."""

    class InMemoryFormat(torch.nn.Module):
        def forward(self, x):
            return x.contiguous(memory_format=memory_format)

    return InMemoryFormat()


def _convolution(torch, layer, shape: tuple) -> list:
    weights, bias = to_numpy(layer.W.data), to_numpy(layer.b.data)
    dtype = torch.from_numpy(bias).dtype
    modules = []
    if isinstance(layer, ConvTranspose2D):
        conv = torch.nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                                        padding=layer.padding, output_padding=layer.output_padding, dtype=dtype)
    else:
        (top, bottom), (left, right) = layer.paddings(shape[1], shape[2])
        if (top, left) != (bottom, right):  # Keras's "same" with an odd total: the extra row at the end
            modules.append(torch.nn.ZeroPad2d((left, right, top, bottom)))
            top = left = 0
        conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                               padding=(top, left), dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weights.copy()))  # the same layout
        conv.bias.copy_(torch.from_numpy(bias.copy()))
    return modules + [conv]


def _max_pool(torch, layer: MaxPool2D, shape: tuple) -> list:
    """PyTorch's max pooling of the same windows: ``ceil_mode`` where the only padding is at the end and less than a
    stride (7 -> 4), -inf padding otherwise."""
    (top, bottom), (left, right) = layer.paddings(shape[1], shape[2])
    size, stride = layer.pool_size, layer.stride
    if top == bottom == left == right == 0:
        return [torch.nn.MaxPool2d(size, stride)]
    wanted = output_shape(layer, shape)[1:]
    ceil = tuple(-(-(side - size) // stride) + 1 for side in shape[1:])
    if top == left == 0 and ceil == tuple(wanted) and all((out - 1) * stride < side
                                                          for out, side in zip(wanted, shape[1:])):
        return [torch.nn.MaxPool2d(size, stride, ceil_mode=True)]
    return [torch.nn.ConstantPad2d((left, right, top, bottom), float("-inf")), torch.nn.MaxPool2d(size, stride)]


def torch_vae_twin(vae, *, memory_format=None):
    """A ``torch.nn.Module`` with the parts and weights of a scratchae
    :class:`~scratchae.models.VariationalAutoencoder`, written as PyTorch users write a VAE (pytorch/examples).

    ``forward(x, eps=None)`` returns ``(x_hat, mu, logvar)``, with ``logvar`` clamped as scratchae clamps it and
    ``eps`` from ``torch.randn_like`` unless given. ``memory_format`` as for :func:`torch_twin`.
    """
    import torch

    inputs = _part_inputs(vae)

    class TorchVAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.mu_head, self.logvar_head, self.decoder = (
                torch.nn.Sequential(*_modules(torch, part, inputs[name], memory_format))
                for name, part in vae.parts().items())

        def forward(self, x, eps=None):
            h = self.encoder(x)
            mu, logvar = self.mu_head(h), self.logvar_head(h).clamp(-vae.LOGVAR_LIMIT, vae.LOGVAR_LIMIT)
            eps = torch.randn_like(mu) if eps is None else eps
            return self.decoder(mu + torch.exp(0.5 * logvar) * eps), mu, logvar

    net = TorchVAE()
    return net if memory_format is None else net.to(memory_format=memory_format)


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
    """The gradients of a twin after ``backward``, in scratchae's layout and order: W (a Dense layer's as (in, out),
    a convolution's as it is) then b, layer by layer, as ``model.parameters()`` lists them."""
    import torch

    gradients = []
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            gradients += [module.weight.grad.numpy().T, module.bias.grad.numpy()]
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            gradients += [module.weight.grad.contiguous().numpy(), module.bias.grad.numpy()]
    return gradients


def torch_weights(net) -> list[numpy.ndarray]:
    """The weights of a twin in scratchae's layout and order (see :func:`torch_gradients`)."""
    import torch

    weights = []
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            weights += [module.weight.detach().numpy().T, module.bias.detach().numpy()]
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            weights += [module.weight.detach().contiguous().numpy(), module.bias.detach().numpy()]
    return weights


def torch_sparse_twin(model):
    """A ``torch.nn.Module`` with the encoder and decoder of a scratchae
    :class:`~scratchae.sparse.SparseAutoencoder`, whose ``forward(x)`` returns ``(x_hat, h)`` as scratchae's does."""
    import torch

    inputs = _part_inputs(model)

    class TorchSparseAutoencoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = (torch.nn.Sequential(*_modules(torch, part, inputs[name]))
                                          for name, part in model.parts().items())

        def forward(self, x):
            h = self.encoder(x)
            return self.decoder(h), h

    return TorchSparseAutoencoder()


def torch_sparse_loss(out, x, l1: float, reconstruction: str = "mse"):
    """The reconstruction loss plus Keras's L1 activity penalty, ``l1 * sum(|h|) / N``, in PyTorch (whose ``abs``
    passes ``sign(h)`` back, 0 at 0), as :class:`~scratchae.sparse.SparseLoss` computes it."""
    import torch

    x_hat, h = out
    pixel = torch.nn.functional.binary_cross_entropy if reconstruction == "bce" else torch.nn.functional.mse_loss
    return pixel(x_hat, x) + l1 * h.abs().sum() / x.shape[0]

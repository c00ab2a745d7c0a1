"""The networks of the two notebooks and of the papers they point to, built layer by layer.

Each builder returns a model of :mod:`scratchae.models` with its weights drawn from ``seed``, made of the lesson's
layers; ``fast=True`` builds the engine's forms of the same layers instead (:mod:`scratchae.engine`), with the same
weights. The names the command line uses are in :data:`BUILDERS`.
"""

from __future__ import annotations

import math

import numpy

from scratchae.backend import DEFAULT_DTYPE
from scratchae.validate import require_int
from scratchae.engine.forms import fast as engine_forms
from scratchae.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape, UpSampling2D
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.models import Autoencoder, Classifier, DenoisingAutoencoder, VariationalAutoencoder
from scratchae.sparse import SparseAutoencoder

MNIST_FEATURES = 28 * 28


def _on_floor(model, fast: bool):
    """``model`` with the engine's forms of its layers when ``fast`` (the command, the demos and the benchmarks
    train these), else as built: the lesson's forms, which a notebook steps through."""
    return engine_forms(model) if fast else model



def _stack(sizes, activations, rng, dtype) -> Sequential:
    """Dense layers between consecutive ``sizes``, each followed by its activation (None: no activation)."""
    layers = []
    for in_features, out_features, activation in zip(sizes[:-1], sizes[1:], activations):
        layers.append(Dense(in_features, out_features, rng=rng, dtype=dtype))
        if activation is not None:
            layers.append(activation())
    return Sequential(layers)


def _relus(count: int, last=ReLU) -> list:
    return [ReLU] * (count - 1) + [last]


def simple_autoencoder(latent_dim: int = 32, *, input_dim: int = MNIST_FEATURES, hidden_dim: int = 128, seed=0,
                       dtype=DEFAULT_DTYPE, fast: bool = False) -> Autoencoder:
    """The first notebook's autoencoder, 784-128-32-128-784: ReLU everywhere, a sigmoid on the output."""
    rng = numpy.random.default_rng(seed)
    encoder = _stack([input_dim, hidden_dim, latent_dim], _relus(2), rng, dtype)
    decoder = _stack([latent_dim, hidden_dim, input_dim], _relus(2, last=Sigmoid), rng, dtype)
    return _on_floor(Autoencoder(encoder, decoder), fast)


def _deep_parts(latent_dim, input_dim, latent_activation, rng, dtype) -> tuple[Sequential, Sequential]:
    encoder = _stack([input_dim, 128, 64, latent_dim], _relus(3, last=latent_activation), rng, dtype)
    decoder = _stack([latent_dim, 64, 128, input_dim], _relus(3, last=Sigmoid), rng, dtype)
    return encoder, decoder


def deep_autoencoder(latent_dim: int = 32, *, input_dim: int = MNIST_FEATURES, seed=0,
                     dtype=DEFAULT_DTYPE, fast: bool = False) -> Autoencoder:
    """The first notebook's deep network, 784-128-64-32-64-128-784 (ReLU, sigmoid output)."""
    parts = _deep_parts(latent_dim, input_dim, ReLU, numpy.random.default_rng(seed), dtype)
    return _on_floor(Autoencoder(*parts), fast)


def denoising_autoencoder(latent_dim: int = 32, *, noise_factor: float = 0.5, input_dim: int = MNIST_FEATURES,
                          seed=0, dtype=DEFAULT_DTYPE, fast: bool = False) -> DenoisingAutoencoder:
    """The first notebook's denoising autoencoder: the deep network trained on inputs with Gaussian noise."""
    parts = _deep_parts(latent_dim, input_dim, ReLU, numpy.random.default_rng(seed), dtype)
    return _on_floor(DenoisingAutoencoder(*parts, noise_factor=noise_factor, seed=seed), fast)


def linear_latent_autoencoder(latent_dim: int = 16, *, input_dim: int = MNIST_FEATURES, seed=0,
                              dtype=DEFAULT_DTYPE, fast: bool = False) -> Autoencoder:
    """The second notebook's autoencoder, 784-128-64-16-64-128-784, with a linear (no activation) latent layer."""
    parts = _deep_parts(latent_dim, input_dim, Identity, numpy.random.default_rng(seed), dtype)
    return _on_floor(Autoencoder(*parts), fast)


def sparse_autoencoder(latent_dim: int = 32, l1: float = 1e-4, *, input_dim: int = MNIST_FEATURES, seed=0,
                       dtype=DEFAULT_DTYPE, fast: bool = False) -> SparseAutoencoder:
    """The sparse autoencoder of Chollet's "Building Autoencoders in Keras": one Dense layer of 32 with ReLU as the
    code (784-32) and one Dense layer with a sigmoid back (32-784), the code's activity penalised by ``l1 * sum|h|``
    per image (his ``activity_regularizer=regularizers.l1(10e-5)``). Train it with ``SparseLoss(model.l1)``."""
    rng = numpy.random.default_rng(seed)
    encoder = _stack([input_dim, latent_dim], [ReLU], rng, dtype)
    decoder = _stack([latent_dim, input_dim], [Sigmoid], rng, dtype)
    return _on_floor(SparseAutoencoder(encoder, decoder, l1=l1), fast)


def mlp_classifier(latent_dim: int = 16, *, n_classes: int = 10, input_dim: int = MNIST_FEATURES, seed=0,
                   dtype=DEFAULT_DTYPE, fast: bool = False) -> Classifier:
    """An encoder shaped like the linear-latent autoencoder's (784-128-64-16), then a linear head to the logits."""
    rng = numpy.random.default_rng(seed)
    encoder = _stack([input_dim, 128, 64, latent_dim], _relus(3, last=Identity), rng, dtype)
    head = _stack([latent_dim, n_classes], [None], rng, dtype)
    return _on_floor(Classifier(encoder, head), fast)


def variational_autoencoder(latent_dim: int = 20, *, hidden_dim: int = 400, input_dim: int = MNIST_FEATURES,
                            seed=0, dtype=DEFAULT_DTYPE, fast: bool = False) -> VariationalAutoencoder:
    """The VAE of pytorch/examples: encoder 784-400 (ReLU), heads 400-20 for mu and for logvar, decoder 20-400-784
    (ReLU, sigmoid output)."""
    latent_dim = require_int("latent_dim", latent_dim, minimum=1)
    hidden_dim = require_int("hidden_dim", hidden_dim, minimum=1)
    rng = numpy.random.default_rng(seed)
    encoder = _stack([input_dim, hidden_dim], [ReLU], rng, dtype)
    mu_head = _stack([hidden_dim, latent_dim], [None], rng, dtype)
    logvar_head = _stack([hidden_dim, latent_dim], [None], rng, dtype)
    decoder = _stack([latent_dim, hidden_dim, input_dim], [ReLU, Sigmoid], rng, dtype)
    return _on_floor(VariationalAutoencoder(encoder, mu_head, logvar_head, decoder, seed=seed), fast)


# ---------------------------------------------------------------------------------------------------------------
# Convolutional models: the same Autoencoder, DenoisingAutoencoder and VariationalAutoencoder, with image layers
# inside. Each part begins with a Reshape from flat rows to (C, H, W) images, or ends with a Flatten back, so that
# the models take and give (N, D) batches like the others and training, checkpoints and plots need nothing new.


def _image_shape(image_shape) -> tuple[int, int, int]:
    if isinstance(image_shape, (str, bytes)) or not hasattr(image_shape, "__len__") or len(image_shape) != 3:
        raise ValueError(f"image_shape must be (channels, height, width), such as (1, 28, 28), got {image_shape!r}")
    return tuple(require_int(f"image_shape[{i}]", size, minimum=1) for i, size in enumerate(image_shape))


def _halved(size: int, times: int) -> int:
    """The size after ``times`` 2 x 2 "same" poolings or stride-2 "same" convolutions: ceil(size / 2) each time."""
    for _ in range(times):
        size = -(-size // 2)
    return size


def conv_autoencoder(*, image_shape=(1, 28, 28), channels=(16, 8, 8), seed=0,
                     dtype=DEFAULT_DTYPE, fast: bool = False) -> Autoencoder:
    """The convolutional autoencoder of Chollet's "Building Autoencoders in Keras" (2016).

    Encoder: three 3 x 3 "same" convolutions of 16, 8 and 8 channels, each followed by ReLU and 2 x 2 max pooling
    ("same", so 7 rows pool to 4): 28 -> 14 -> 7 -> 4, a code of shape (8, 4, 4), 128 numbers. Decoder: 3 x 3
    convolutions of 8 and 8 channels ("same"), each with ReLU and 2 x 2 upsampling (4 -> 8 -> 16), one of 16
    channels *without* padding (16 -> 14: this is how the blog gets back from 4 to 7 rows), upsampling to 28, and a
    1-channel 3 x 3 convolution with a sigmoid. 4,385 weights.

    ReLU comes after the pooling here, not before as in the blog: the maximum of ReLUs is the ReLU of the maximum
    (both are non-decreasing), so the outputs and gradients are the same, and the ReLU then touches a quarter of the
    numbers.

    Parameters
    ----------
    image_shape : (C, H, W)
        The images, given to the model flat, as (N, C * H * W) rows. The decoder's third convolution is "valid" when
        that gives back H rows (28: 4 -> 8 -> 16 -> 14 -> 28), "same" when that does (8: 1 -> 2 -> 4 -> 4 -> 8).
    channels : (int, int, int)
        The encoder's channels; the decoder's are the same in reverse order.
    """
    image_shape = _image_shape(image_shape)
    channels = [require_int(f"channels[{i}]", size, minimum=1) for i, size in enumerate(channels)]
    if len(channels) != 3:
        raise ValueError(f"channels must be three numbers, such as (16, 8, 8), got {channels!r}")
    c_in, height, width = image_shape
    third = _third_decoder_padding(height, width)
    rng = numpy.random.default_rng(seed)

    def conv(n_in, n_out, padding="same"):
        return Conv2D(n_in, n_out, 3, padding=padding, rng=rng, dtype=dtype)

    c1, c2, c3 = channels
    encoder = Sequential([Reshape(image_shape),
                          conv(c_in, c1), MaxPool2D(2, padding="same"), ReLU(),  # (C1, H/2, W/2)
                          conv(c1, c2), MaxPool2D(2, padding="same"), ReLU(),  # (C2, H/4, W/4)
                          conv(c2, c3), MaxPool2D(2, padding="same"), ReLU()])  # (C3, H/8, W/8): the code
    decoder = Sequential([conv(c3, c3), ReLU(), UpSampling2D(2),  # (C3, H/4, W/4), before the valid trim
                          conv(c3, c2), ReLU(), UpSampling2D(2),
                          conv(c2, c1, third), ReLU(), UpSampling2D(2),  # (C1, H, W)
                          conv(c1, c_in), Sigmoid(), Flatten()])  # (C * H * W,)
    return _on_floor(Autoencoder(encoder, decoder), fast)


def _third_decoder_padding(height: int, width: int) -> str:
    """"valid" or "same" for the conv autoencoder's third decoder convolution, whichever gives back the image."""
    for padding, trimmed in (("valid", 2), ("same", 0)):
        if all(8 * _halved(size, 3) - 2 * trimmed == size for size in (height, width)):
            return padding
    raise ValueError(f"the convolutional autoencoder cannot give back {height} x {width} images: after three 2 x 2 "
                     f"poolings and three upsamplings it gives {8 * _halved(height, 3) - 4} or "
                     f"{8 * _halved(height, 3)} rows (28 x 28 and 8 x 8 images work)")


def conv_denoising_autoencoder(*, image_shape=(1, 28, 28), channels: int = 32, noise_factor: float = 0.5, seed=0,
                               dtype=DEFAULT_DTYPE, fast: bool = False) -> DenoisingAutoencoder:
    """The denoising network of Chollet's "Building Autoencoders in Keras": two 3 x 3 "same" convolutions of 32
    channels, each with ReLU and 2 x 2 max pooling (28 -> 14 -> 7, a code of shape (32, 7, 7)), then two of 32
    channels, each with ReLU and 2 x 2 upsampling (7 -> 14 -> 28), and a 1-channel convolution with a sigmoid;
    28,353 weights. It trains on inputs with Gaussian noise, ``x + noise_factor * N(0, 1)`` clipped to [0, 1].
    Images need a height and width divisible by 4.
    """
    image_shape = _image_shape(image_shape)
    channels = require_int("channels", channels, minimum=1)
    c_in, height, width = image_shape
    if height % 4 or width % 4:
        raise ValueError(f"the convolutional denoiser pools twice and upsamples twice, so it needs images whose "
                         f"height and width are divisible by 4, got {height} x {width}")
    rng = numpy.random.default_rng(seed)

    def conv(n_in, n_out):
        return Conv2D(n_in, n_out, 3, padding="same", rng=rng, dtype=dtype)

    encoder = Sequential([Reshape(image_shape),
                          conv(c_in, channels), MaxPool2D(2), ReLU(),  # (32, H/2, W/2); ReLU after pooling, as above
                          conv(channels, channels), MaxPool2D(2), ReLU()])  # (32, H/4, W/4): the code
    decoder = Sequential([conv(channels, channels), ReLU(), UpSampling2D(2),
                          conv(channels, channels), ReLU(), UpSampling2D(2),  # (32, H, W)
                          conv(channels, c_in), Sigmoid(), Flatten()])
    return _on_floor(DenoisingAutoencoder(encoder, decoder, noise_factor=noise_factor, seed=seed), fast)


def conv_variational_autoencoder(latent_dim: int = 2, *, image_shape=(1, 28, 28), channels=(32, 64),
                                 hidden_dim: int = 16, seed=0, dtype=DEFAULT_DTYPE,
                                 fast: bool = False) -> VariationalAutoencoder:
    """The convolutional VAE of the keras-io example "Variational AutoEncoder" (fchollet, 2020).

    Encoder: 3 x 3 convolutions of 32 and 64 channels with stride 2 and "same" padding (28 -> 14 -> 7), ReLU after
    each, flattened to 3,136 numbers, a Dense layer of 16 with ReLU, and two Dense heads for ``mu`` and ``logvar``
    (``latent_dim`` each). Decoder: a Dense layer to 64 x 7 x 7 with ReLU, two 3 x 3 transposed convolutions of 64
    and 32 channels with stride 2 (7 -> 14 -> 28), ReLU after each, and a 1-channel 3 x 3 transposed convolution
    with stride 1 and a sigmoid; 134,165 weights for ``latent_dim=2``, as keras-io's summary.

    The stride-2 transposed convolutions use PyTorch's ``padding=1, output_padding=1`` (each output is twice its
    input; Keras's "same" gives the same sizes with the kernel one pixel further up and left, which weights learn
    either way), chosen per layer so that the decoder gives back H and W exactly, odd sizes included.
    """
    latent_dim = require_int("latent_dim", latent_dim, minimum=1)
    hidden_dim = require_int("hidden_dim", hidden_dim, minimum=1)
    image_shape = _image_shape(image_shape)
    c1, c2 = [require_int(f"channels[{i}]", size, minimum=1) for i, size in enumerate(channels)]
    c_in, height, width = image_shape
    rng = numpy.random.default_rng(seed)
    half = (_halved(height, 1), _halved(width, 1))
    code = (c2, _halved(height, 2), _halved(width, 2))  # (64, 7, 7)
    encoder = Sequential([Reshape(image_shape),
                          Conv2D(c_in, c1, 3, stride=2, padding="same", rng=rng, dtype=dtype), ReLU(),  # (32, 14, 14)
                          Conv2D(c1, c2, 3, stride=2, padding="same", rng=rng, dtype=dtype), ReLU(),  # (64, 7, 7)
                          Flatten(), Dense(math.prod(code), hidden_dim, rng=rng, dtype=dtype), ReLU()])  # (16,)
    mu_head = Sequential([Dense(hidden_dim, latent_dim, rng=rng, dtype=dtype)])
    logvar_head = Sequential([Dense(hidden_dim, latent_dim, rng=rng, dtype=dtype)])

    decoder = Sequential([Dense(latent_dim, math.prod(code), rng=rng, dtype=dtype), ReLU(), Reshape(code),
                          _transposed_up(c2, c2, code[1:], half, rng, dtype), ReLU(),  # (64, 14, 14)
                          _transposed_up(c2, c1, half, (height, width), rng, dtype), ReLU(),  # (32, 28, 28)
                          ConvTranspose2D(c1, c_in, 3, padding=1, rng=rng, dtype=dtype), Sigmoid(), Flatten()])
    return _on_floor(VariationalAutoencoder(encoder, mu_head, logvar_head, decoder, seed=seed), fast)


def _transposed_up(n_in: int, n_out: int, size: tuple[int, int], target: tuple[int, int], rng,
                   dtype) -> ConvTranspose2D:
    """A 3 x 3 stride-2 transposed convolution from ``size`` to ``target`` (each 2 size or 2 size - 1): it gives
    2 size - 1 rows with ``padding=1``, and ``output_padding`` adds the last one where needed."""
    extra = {target[0] - (2 * size[0] - 1), target[1] - (2 * size[1] - 1)}
    if len(extra) != 1:
        raise ValueError(f"the convolutional VAE needs images whose height and width are both even or both odd "
                         f"after halving, got {target[0]} x {target[1]}")
    return ConvTranspose2D(n_in, n_out, 3, stride=2, padding=1, output_padding=extra.pop(), rng=rng, dtype=dtype)



#: The builders by the names the command line uses.
BUILDERS = {
    "simple": simple_autoencoder,
    "deep": deep_autoencoder,
    "linear-latent": linear_latent_autoencoder,
    "denoising": denoising_autoencoder,
    "sparse": sparse_autoencoder,
    "classifier": mlp_classifier,
    "vae": variational_autoencoder,
    "conv": conv_autoencoder,
    "conv-denoising": conv_denoising_autoencoder,
    "conv-vae": conv_variational_autoencoder,
}

#: The builders that take images (``image_shape``, (C, H, W)) rather than a feature size (``input_dim``).
IMAGE_BUILDERS = ("conv", "conv-denoising", "conv-vae")

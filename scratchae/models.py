"""The models of the two notebooks, autoencoders, a denoising autoencoder and a classifier, and the variational
autoencoder that the second notebook points to.

An autoencoder is two networks back to back: an *encoder* :math:`z = f(x)` that squeezes an image into a short
code, and a *decoder* :math:`\\hat x = g(z)` that rebuilds the image from the code. Both are plain
:class:`~scratchae.layers.Sequential` networks, so each can be used on its own: ``model.encode(x)`` gives latent
codes for a t-SNE plot, ``model.decode(z)`` turns any code (an interpolation, a random draw) into an image.

Backpropagation through the whole model is the chain rule twice: the decoder turns ``dL/dx_hat`` into ``dL/dz``,
the encoder turns ``dL/dz`` into the gradients of its weights.

The convolutional models (:func:`conv_autoencoder`, :func:`conv_denoising_autoencoder`,
:func:`conv_variational_autoencoder`) are the same classes with the image layers of :mod:`scratchae.conv` inside
their parts: a ``Reshape`` turns the flat (N, D) rows into (N, C, H, W) images first and a ``Flatten`` turns them
back last, so they take and give the same batches as the dense models.
"""

from __future__ import annotations

import abc
import math

import numpy

from scratchae.backend import (DEFAULT_DTYPE, add_gaussian_noise, device_of, get_namespace, random_generator,
                               standard_normal_like)
from scratchae.checks import require_float, require_int
from scratchae.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape, UpSampling2D, output_shape
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid

MNIST_FEATURES = 28 * 28


class Model(abc.ABC):
    """What every model shares: parameters of its parts, a training flag, device moves and a summary."""

    training = False

    #: The names of the sub-networks, in the order the constructor takes them and their parameters are listed.
    PARTS: tuple[str, ...] = ()

    #: The part whose output a part takes, for the parts that do not take the output of the part before them.
    PART_INPUTS: dict[str, str] = {}

    def parts(self) -> dict[str, Sequential]:
        """The named sub-networks, in the order their parameters are listed."""
        return {name: getattr(self, name) for name in self.PARTS}

    @abc.abstractmethod
    def forward(self, x):
        """x: (N, D) -> the model's output; caches what backward needs."""

    @abc.abstractmethod
    def backward(self, dy):
        """dy = dL/d(output); sets every parameter's gradient."""

    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        return [parameter for _, parameter in self.named_parameters()]

    def named_parameters(self):
        """``[("encoder.0.W", W), ...]``: the part's name, the layer index, the parameter's name.

        Each parameter keeps its full name as ``parameter.path``, so that an optimizer built on
        ``model.parameters()`` can name it in a message.
        """
        named = [(f"{part_name}.{name}", parameter)
                 for part_name, part in self.parts().items() for name, parameter in part.named_parameters()]
        for name, parameter in named:
            parameter.path = name
        return named

    def train(self, mode: bool = True):
        """Switch training behaviour (the denoising model's noise) on or off; returns self."""
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, device: str | None = None, *, dtype=None):
        """Move every parameter to ``device`` and/or cast it to ``dtype``, in place; returns self.

        An optimizer built on the model keeps working: its state (Adam's moments) is cast and moved to its
        parameters' dtype and device at its next step or save (:meth:`scratchae.optim.Optimizer.follow_parameters`),
        so a checkpoint saved after ``model.to(dtype=numpy.float64)`` loads.
        """
        for part in self.parts().values():
            part.to(device, dtype=dtype)
        return self

    @property
    def dtype(self):
        """The dtype of the weights (float32 to train, float64 for gradient checks); inputs must have it too."""
        return self.parameters()[0].data.dtype

    @property
    def device(self):
        """Where the weights live: ``"cpu"``, ``"gpu"`` (see :func:`scratchae.backend.device_of`)."""
        return device_of(self.parameters()[0].data)

    @property
    def input_features(self) -> int:
        """D, the feature size the model takes: that of its first Dense layer, or of its first Reshape (a
        convolutional model takes flat images and reshapes them)."""
        return input_features(next(iter(self.parts().values())))

    @property
    def output_features(self) -> int:
        """The feature size the model gives (D for an autoencoder, the number of classes for a classifier)."""
        return math.prod(self.part_shapes()[self.PARTS[-1]])

    def part_shapes(self) -> dict[str, tuple]:
        """The shape of one sample at the output of each part, from a flat input of :attr:`input_features`:
        ``{"encoder": (8, 4, 4), "decoder": (784,)}`` for the convolutional autoencoder."""
        shapes, shape = {}, (self.input_features,)
        for name, part in self.parts().items():
            shape = output_shape(part, shapes[self.PART_INPUTS[name]] if name in self.PART_INPUTS else shape)
            shapes[name] = shape
        return shapes

    def summary(self) -> str:
        """A Keras-style table of every layer of every part, with output shapes and parameter counts."""
        rows, shapes, shape = [], {}, (self.input_features,)
        for part_name, part in self.parts().items():
            shape = shapes[self.PART_INPUTS[part_name]] if part_name in self.PART_INPUTS else shape
            rows += summary_rows(part, shape, prefix=f"{part_name}.")
            shape = shapes[part_name] = output_shape(part, shape)
        return format_summary(rows)

    def config(self) -> dict:
        """The architecture as plain JSON-able data (saved in checkpoints)."""
        return {"type": type(self).__name__,
                **{name: [layer_config(layer) for layer in part.layers] for name, part in self.parts().items()},
                **self.options(), "counters": self.counters()}

    def options(self) -> dict:
        """Constructor arguments other than the parts."""
        return {}

    def counters(self) -> dict[str, int]:
        """How many batches the model has drawn random numbers for (none for most models): saved with the weights,
        so that a resumed run draws what an uninterrupted one would."""
        return {}

    def set_counters(self, counters: dict[str, int]) -> None:
        """Restore what :meth:`counters` returned (a ValueError for a name the model does not count)."""
        known = self.counters()
        for name, value in counters.items():
            if name not in known:
                raise ValueError(f"{type(self).__name__} keeps no counter {name!r}; it counts "
                                 f"{sorted(known) or 'none'}")
            setattr(self, name, require_int(name, value, minimum=0))


def layer_config(layer) -> dict:
    return {"type": type(layer).__name__, **layer.config()}


class Autoencoder(Model):
    """An encoder and a decoder trained to give back their input.

    Parameters
    ----------
    encoder : Sequential
        (N, D) -> (N, latent_dim).
    decoder : Sequential
        (N, latent_dim) -> (N, D).
    """

    PARTS = ("encoder", "decoder")

    def __init__(self, encoder: Sequential, decoder: Sequential):
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x):
        """x: (N, D) -> z: (N, latent_dim)."""
        return self.encoder.forward(x)

    def decode(self, z):
        """z: (N, latent_dim) -> x_hat: (N, D)."""
        return self.decoder.forward(z)

    def reconstruct(self, x):
        """x: (N, D) -> x_hat: (N, D), never with training noise."""
        return self.decode(self.encode(x))

    def forward(self, x):
        """x: (N, D) -> x_hat: (N, D); caches what backward needs."""
        return self.reconstruct(x)

    def backward(self, dx_hat):
        """dx_hat: (N, D) = dL/dx_hat; sets every parameter's gradient. The input is data: no dL/dx is computed."""
        dz = self.decoder.backward(dx_hat)  # (N, latent_dim)
        self.encoder.backward(dz, input_grad=False)


class DenoisingAutoencoder(Autoencoder):
    """An autoencoder that learns to remove noise: in training it sees a corrupted input, and the loss compares its
    output with the clean input.

    In training mode ``forward`` adds fresh Gaussian noise, ``x + noise_factor * N(0, 1)``, clipped to ``clip``; in
    evaluation mode it adds none. The noise of the k-th training batch comes from the seed ``(seed, k)``, so a run is
    repeatable and a run resumed from a checkpoint draws the same noise as one that never stopped.
    """

    def __init__(self, encoder: Sequential, decoder: Sequential, noise_factor: float = 0.5,
                 clip: tuple[float, float] | None = (0.0, 1.0), *, seed: int = 0):
        super().__init__(encoder, decoder)
        self.noise_factor = require_float("noise_factor", noise_factor, minimum=0.0)
        self.clip = None if clip is None else (require_float("clip[0]", clip[0]), require_float("clip[1]", clip[1]))
        self.seed = require_int("seed", seed, minimum=0)
        self.noisy_batches = 0

    def corrupt(self, x, rng):
        """x: (N, D) -> x + noise_factor * N(0, 1), clipped: (N, D), same dtype and device."""
        return add_gaussian_noise(x, self.noise_factor, rng, clip=self.clip)

    def forward(self, x):
        if not self.training:
            return self.reconstruct(x)
        rng = random_generator((self.seed, self.noisy_batches), like=x)
        self.noisy_batches += 1
        return self.reconstruct(self.corrupt(x, rng))

    def options(self):
        return {"noise_factor": self.noise_factor, "clip": self.clip, "seed": self.seed}

    def counters(self):
        return {"noisy_batches": self.noisy_batches}


class Classifier(Model):
    """An encoder followed by a linear head that scores each class: trained with softmax cross-entropy, its encoder
    learns a latent space where classes separate (compare it with an autoencoder's, which is trained without labels).

    Parameters
    ----------
    encoder : Sequential
        (N, D) -> (N, latent_dim).
    head : Sequential
        (N, latent_dim) -> (N, n_classes) logits.
    """

    PARTS = ("encoder", "head")

    def __init__(self, encoder: Sequential, head: Sequential):
        self.encoder = encoder
        self.head = head

    def encode(self, x):
        """x: (N, D) -> z: (N, latent_dim)."""
        return self.encoder.forward(x)

    def forward(self, x):
        """x: (N, D) -> logits: (N, n_classes)."""
        return self.head.forward(self.encode(x))

    def backward(self, dlogits):
        """dlogits: (N, n_classes) = dL/dlogits; sets every parameter's gradient."""
        dz = self.head.backward(dlogits)  # (N, latent_dim)
        self.encoder.backward(dz, input_grad=False)

    def predict(self, x):
        """x: (N, D) -> predicted class: (N,) integers."""
        xp = get_namespace(x)
        return xp.argmax(self.forward(x), axis=1)


class VariationalAutoencoder(Model):
    r"""A variational autoencoder (Kingma & Welling, 2014): the encoder gives each image a Gaussian in the latent
    space instead of a point, and the decoder learns from samples of it.

    For an image :math:`x` the encoder trunk gives features :math:`h`, and two Dense heads give the mean
    :math:`\mu` and the log-variance :math:`\log \sigma^2` of a Gaussian over codes. The code is a sample of it,

    .. math:: z = \mu + \sigma \odot \varepsilon, \qquad \sigma = e^{\log\sigma^2 / 2}, \qquad
              \varepsilon \sim \mathcal N(0, I),

    written so that the randomness sits in :math:`\varepsilon` alone and the gradient flows through :math:`\mu`
    and :math:`\sigma` (the *reparameterisation trick*). The loss (:class:`~scratchae.losses.VAELoss`) adds to the
    reconstruction error the KL divergence of each Gaussian from :math:`\mathcal N(0, I)`; that pulls every code
    towards the same standard normal, so that codes drawn from it decode to plausible images (:meth:`sample`).

    ``forward(x)`` returns ``(x_hat, mu, logvar)``. ``eps`` for the k-th training batch is drawn from the seed
    ``(seed, k)``, so a run repeats exactly and a resumed one draws what an uninterrupted one would; in evaluation
    mode the draws come from a stream of their own that restarts each time the model is put in evaluation mode, so
    that every validation pass uses the same ``eps``.

    ``logvar`` is clamped to :math:`\pm` :data:`LOGVAR_LIMIT` (no gradient passes where the clamp is active), so
    that :math:`e^{\log\sigma^2}` can neither overflow nor vanish in float32, whatever the weights.

    Parameters
    ----------
    encoder : Sequential
        (N, D) -> (N, H), the trunk shared by both heads.
    mu_head, logvar_head : Sequential
        (N, H) -> (N, latent_dim) each.
    decoder : Sequential
        (N, latent_dim) -> (N, D).
    seed : int
        Seed of the draws of ``eps``.
    """

    PARTS = ("encoder", "mu_head", "logvar_head", "decoder")
    PART_INPUTS = {"logvar_head": "encoder"}  # both heads read the trunk's features; the decoder reads z

    #: |logvar| is kept below this: e^30 and e^-30 are comfortably inside float32's range (about 1e38 to 1e-38).
    LOGVAR_LIMIT = 30.0

    def __init__(self, encoder: Sequential, mu_head: Sequential, logvar_head: Sequential, decoder: Sequential, *,
                 seed: int = 0):
        self.encoder, self.mu_head, self.logvar_head, self.decoder = encoder, mu_head, logvar_head, decoder
        self.seed = require_int("seed", seed, minimum=0)
        self.sampled_batches = 0  # training batches whose eps has been drawn
        self.evaluation_batches = 0  # batches drawn since the model was last put in evaluation mode
        self.cache = None

    def train(self, mode: bool = True):
        self.evaluation_batches = 0  # each evaluation pass starts its stream of eps again
        return super().train(mode)

    def encode(self, x):
        """x: (N, D) -> mu: (N, latent_dim), the centre of each image's Gaussian (its code, without sampling)."""
        return self.mu_head.forward(self.encoder.forward(x))

    def decode(self, z):
        """z: (N, latent_dim) -> x_hat: (N, D)."""
        return self.decoder.forward(z)

    def reconstruct(self, x):
        """x: (N, D) -> the decoded mean code: (N, D), with no sampling."""
        return self.decode(self.encode(x))

    def sample(self, n: int, *, seed: int = 0):
        """n new images decoded from codes z ~ N(0, I): (n, D), on the model's device."""
        n = require_int("n", n, minimum=1)
        weights = self.parameters()[0].data  # for the dtype and the device of the codes
        z = standard_normal_like(weights, random_generator(seed, like=weights), shape=(n, self.latent_dim))  # (n, Z)
        return self.decode(z)

    @property
    def latent_dim(self) -> int:
        return self.decoder.layers[0].in_features

    def forward(self, x, eps=None):
        """x: (N, D) -> (x_hat (N, D), mu (N, latent_dim), logvar (N, latent_dim)); caches what backward needs.

        ``eps`` (N, latent_dim), when given, is used instead of a fresh draw (gradient checks hold it fixed).
        """
        xp = get_namespace(x)
        h = self.encoder.forward(x)  # (N, H)
        mu = self.mu_head.forward(h)  # (N, Z)
        raw_logvar = self.logvar_head.forward(h)  # (N, Z)
        logvar = xp.clip(raw_logvar, -self.LOGVAR_LIMIT, self.LOGVAR_LIMIT)  # (N, Z)
        eps = self._draw_eps(mu) if eps is None else eps  # (N, Z), N(0, I)
        z = gaussian_sample(mu, logvar, eps)  # (N, Z)
        self.cache = (logvar, eps, raw_logvar == logvar)
        return self.decoder.forward(z), mu, logvar

    def backward(self, grads):
        """grads = (dL/dx_hat (N, D), dL/dmu (N, Z), dL/dlogvar (N, Z)), the last two from the KL term of the loss;
        sets every parameter's gradient. The chain rule through the sample z = mu + exp(logvar / 2) * eps adds the
        reconstruction's share to each head's gradient."""
        dx_hat, dmu_kl, dlogvar_kl = grads
        if self.cache is None:
            raise RuntimeError("VariationalAutoencoder.backward was called before forward: there is nothing to "
                               "differentiate")
        xp = get_namespace(dx_hat)
        logvar, eps, unclamped = self.cache
        dz = self.decoder.backward(dx_hat)  # (N, Z)
        dmu_z, dlogvar_z = gaussian_sample_backward(dz, logvar, eps)  # (N, Z) each: the reconstruction's share
        dmu = dmu_z + dmu_kl  # (N, Z)   dL/dmu = dL/dz + dKL/dmu
        dlogvar = dlogvar_z + dlogvar_kl  # (N, Z)   dL/dlogvar = dL/dz * eps * exp(logvar / 2) / 2 + dKL/dlogvar
        dlogvar = xp.where(unclamped, dlogvar, 0.0)  # (N, Z)   the clamp passes no gradient where it is active
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)  # (N, H)   h feeds both heads
        self.encoder.backward(dh, input_grad=False)

    def _draw_eps(self, like):
        """N(0, I) of the shape, dtype and device of ``like``, from this batch's seed."""
        if self.training:
            rng = random_generator((self.seed, self.sampled_batches), like=like)
            self.sampled_batches += 1
        else:
            rng = random_generator((self.seed, self.evaluation_batches, 1), like=like)
            self.evaluation_batches += 1
        return standard_normal_like(like, rng)

    def options(self):
        return {"seed": self.seed}

    def counters(self):
        return {"sampled_batches": self.sampled_batches}


def gaussian_sample(mu, logvar, eps):
    """The reparameterised sample z = mu + sigma * eps, sigma = exp(logvar / 2). mu, logvar, eps: (N, Z) -> (N, Z)."""
    xp = get_namespace(mu)
    return mu + xp.exp(0.5 * logvar) * eps


def gaussian_sample_backward(dz, logvar, eps):
    """dL/dz (N, Z) -> (dL/dmu, dL/dlogvar), (N, Z) each, through z = mu + exp(logvar / 2) * eps."""
    xp = get_namespace(dz)
    dmu = dz  # (N, Z)   dz/dmu = 1
    dlogvar = dz * eps * xp.exp(0.5 * logvar) * 0.5  # (N, Z)   dz/dlogvar = eps * exp(logvar / 2) / 2
    return dmu, dlogvar


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
                       dtype=DEFAULT_DTYPE) -> Autoencoder:
    """The first notebook's autoencoder, 784-128-32-128-784: ReLU everywhere, a sigmoid on the output."""
    rng = numpy.random.default_rng(seed)
    encoder = _stack([input_dim, hidden_dim, latent_dim], _relus(2), rng, dtype)
    decoder = _stack([latent_dim, hidden_dim, input_dim], _relus(2, last=Sigmoid), rng, dtype)
    return Autoencoder(encoder, decoder)


def _deep_parts(latent_dim, input_dim, latent_activation, rng, dtype) -> tuple[Sequential, Sequential]:
    encoder = _stack([input_dim, 128, 64, latent_dim], _relus(3, last=latent_activation), rng, dtype)
    decoder = _stack([latent_dim, 64, 128, input_dim], _relus(3, last=Sigmoid), rng, dtype)
    return encoder, decoder


def deep_autoencoder(latent_dim: int = 32, *, input_dim: int = MNIST_FEATURES, seed=0,
                     dtype=DEFAULT_DTYPE) -> Autoencoder:
    """The first notebook's deep network, 784-128-64-32-64-128-784 (ReLU, sigmoid output)."""
    return Autoencoder(*_deep_parts(latent_dim, input_dim, ReLU, numpy.random.default_rng(seed), dtype))


def denoising_autoencoder(latent_dim: int = 32, *, noise_factor: float = 0.5, input_dim: int = MNIST_FEATURES,
                          seed=0, dtype=DEFAULT_DTYPE) -> DenoisingAutoencoder:
    """The first notebook's denoising autoencoder: the deep network trained on inputs with Gaussian noise."""
    parts = _deep_parts(latent_dim, input_dim, ReLU, numpy.random.default_rng(seed), dtype)
    return DenoisingAutoencoder(*parts, noise_factor=noise_factor, seed=seed)


def linear_latent_autoencoder(latent_dim: int = 16, *, input_dim: int = MNIST_FEATURES, seed=0,
                              dtype=DEFAULT_DTYPE) -> Autoencoder:
    """The second notebook's autoencoder, 784-128-64-16-64-128-784, with a linear (no activation) latent layer."""
    return Autoencoder(*_deep_parts(latent_dim, input_dim, Identity, numpy.random.default_rng(seed), dtype))


def mlp_classifier(latent_dim: int = 16, *, n_classes: int = 10, input_dim: int = MNIST_FEATURES, seed=0,
                   dtype=DEFAULT_DTYPE) -> Classifier:
    """An encoder shaped like the linear-latent autoencoder's (784-128-64-16), then a linear head to the logits."""
    rng = numpy.random.default_rng(seed)
    encoder = _stack([input_dim, 128, 64, latent_dim], _relus(3, last=Identity), rng, dtype)
    head = _stack([latent_dim, n_classes], [None], rng, dtype)
    return Classifier(encoder, head)


def variational_autoencoder(latent_dim: int = 20, *, hidden_dim: int = 400, input_dim: int = MNIST_FEATURES,
                            seed=0, dtype=DEFAULT_DTYPE) -> VariationalAutoencoder:
    """The VAE of pytorch/examples: encoder 784-400 (ReLU), heads 400-20 for mu and for logvar, decoder 20-400-784
    (ReLU, sigmoid output)."""
    latent_dim = require_int("latent_dim", latent_dim, minimum=1)
    hidden_dim = require_int("hidden_dim", hidden_dim, minimum=1)
    rng = numpy.random.default_rng(seed)
    encoder = _stack([input_dim, hidden_dim], [ReLU], rng, dtype)
    mu_head = _stack([hidden_dim, latent_dim], [None], rng, dtype)
    logvar_head = _stack([hidden_dim, latent_dim], [None], rng, dtype)
    decoder = _stack([latent_dim, hidden_dim, input_dim], [ReLU, Sigmoid], rng, dtype)
    return VariationalAutoencoder(encoder, mu_head, logvar_head, decoder, seed=seed)


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
                     dtype=DEFAULT_DTYPE) -> Autoencoder:
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
    return Autoencoder(encoder, decoder)


def _third_decoder_padding(height: int, width: int) -> str:
    """"valid" or "same" for the conv autoencoder's third decoder convolution, whichever gives back the image."""
    for padding, trimmed in (("valid", 2), ("same", 0)):
        if all(8 * _halved(size, 3) - 2 * trimmed == size for size in (height, width)):
            return padding
    raise ValueError(f"the convolutional autoencoder cannot give back {height} x {width} images: after three 2 x 2 "
                     f"poolings and three upsamplings it gives {8 * _halved(height, 3) - 4} or "
                     f"{8 * _halved(height, 3)} rows (28 x 28 and 8 x 8 images work)")


def conv_denoising_autoencoder(*, image_shape=(1, 28, 28), channels: int = 32, noise_factor: float = 0.5, seed=0,
                               dtype=DEFAULT_DTYPE) -> DenoisingAutoencoder:
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
    return DenoisingAutoencoder(encoder, decoder, noise_factor=noise_factor, seed=seed)


def conv_variational_autoencoder(latent_dim: int = 2, *, image_shape=(1, 28, 28), channels=(32, 64),
                                 hidden_dim: int = 16, seed=0, dtype=DEFAULT_DTYPE) -> VariationalAutoencoder:
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
    return VariationalAutoencoder(encoder, mu_head, logvar_head, decoder, seed=seed)


def _transposed_up(n_in: int, n_out: int, size: tuple[int, int], target: tuple[int, int], rng,
                   dtype) -> ConvTranspose2D:
    """A 3 x 3 stride-2 transposed convolution from ``size`` to ``target`` (each 2 size or 2 size - 1): it gives
    2 size - 1 rows with ``padding=1``, and ``output_padding`` adds the last one where needed."""
    extra = {target[0] - (2 * size[0] - 1), target[1] - (2 * size[1] - 1)}
    if len(extra) != 1:
        raise ValueError(f"the convolutional VAE needs images whose height and width are both even or both odd "
                         f"after halving, got {target[0]} x {target[1]}")
    return ConvTranspose2D(n_in, n_out, 3, stride=2, padding=1, output_padding=extra.pop(), rng=rng, dtype=dtype)


def input_features(network: Sequential) -> int:
    """The feature size a network takes: that of its first Dense layer or first Reshape, whichever comes first."""
    for layer in network.layers:
        if isinstance(layer, Dense):
            return layer.in_features
        if isinstance(layer, Reshape):
            return math.prod(layer.shape)
    raise ValueError(f"the network has no Dense layer and no Reshape, so its input size is unknown: {network!r}")


def summary(network: Sequential, input_shape) -> str:
    """A Keras-style table of one network's layers: output shapes, parameter counts and the total.

    ``input_shape`` is the shape of one sample, such as ``(784,)`` or ``(1, 28, 28)``; a number is a feature size.
    """
    return format_summary(summary_rows(network, input_shape))


def summary_rows(network: Sequential, input_shape, prefix: str = "") -> list[tuple[str, str, int]]:
    """One ``(layer, output shape, parameter count)`` row per layer of ``network``: ``(None, 784)`` for flat
    features, ``(None, C, H, W)`` for images (None stands for the batch size)."""
    rows, shape = [], (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    for index, layer in enumerate(network.layers):
        shape = output_shape(layer, shape)
        count = sum(parameter.size for parameter in layer.parameters())
        rows.append((f"{prefix}{index} {type(layer).__name__}", f"(None, {', '.join(map(str, shape))})", count))
    return rows


def format_summary(rows: list[tuple[str, str, int]]) -> str:
    """Lay out ``(layer, output shape, parameter count)`` rows as a text table with a total."""
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(header[0]), *(len(row[0]) for row in rows)) + 2,
              max(len(header[1]), *(len(row[1]) for row in rows)) + 2, 12]
    rule = "-" * sum(widths)
    lines = [rule, f"{header[0]:<{widths[0]}}{header[1]:<{widths[1]}}{header[2]:>{widths[2]}}", "=" * sum(widths)]
    lines += [f"{name:<{widths[0]}}{shape:<{widths[1]}}{count:>{widths[2]},}" for name, shape, count in rows]
    lines += [rule, f"Total params: {sum(row[2] for row in rows):,}", rule]
    return "\n".join(lines)


#: The builders by the names the command line uses.
BUILDERS = {
    "simple": simple_autoencoder,
    "deep": deep_autoencoder,
    "linear-latent": linear_latent_autoencoder,
    "denoising": denoising_autoencoder,
    "classifier": mlp_classifier,
    "vae": variational_autoencoder,
    "conv": conv_autoencoder,
    "conv-denoising": conv_denoising_autoencoder,
    "conv-vae": conv_variational_autoencoder,
}

#: The builders that take images (``image_shape``, (C, H, W)) rather than a feature size (``input_dim``).
IMAGE_BUILDERS = ("conv", "conv-denoising", "conv-vae")

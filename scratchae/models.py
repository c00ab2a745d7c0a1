"""The models of the two notebooks: autoencoders, a denoising autoencoder and a classifier.

An autoencoder is two networks back to back: an *encoder* :math:`z = f(x)` that squeezes an image into a short
code, and a *decoder* :math:`\\hat x = g(z)` that rebuilds the image from the code. Both are plain
:class:`~scratchae.layers.Sequential` networks, so each can be used on its own: ``model.encode(x)`` gives latent
codes for a t-SNE plot, ``model.decode(z)`` turns any code (an interpolation, a random draw) into an image.

Backpropagation through the whole model is the chain rule twice: the decoder turns ``dL/dx_hat`` into ``dL/dz``,
the encoder turns ``dL/dz`` into the gradients of its weights.
"""

from __future__ import annotations

import abc

import numpy

from scratchae.backend import DEFAULT_DTYPE, device_of, get_namespace, random_generator
from scratchae.checks import require_int
from scratchae.data import add_gaussian_noise
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid

MNIST_FEATURES = 28 * 28


class Model(abc.ABC):
    """What every model shares: parameters of its parts, a training flag, device moves and a summary."""

    training = False

    #: The names of the sub-networks, in the order the constructor takes them and their parameters are listed.
    PARTS: tuple[str, ...] = ()

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
        return [parameter for part in self.parts().values() for parameter in part.parameters()]

    def named_parameters(self):
        """``[("encoder.0.W", W), ...]``: the part's name, the layer index, the parameter's name."""
        return [(f"{part_name}.{name}", parameter)
                for part_name, part in self.parts().items() for name, parameter in part.named_parameters()]

    def train(self, mode: bool = True):
        """Switch training behaviour (the denoising model's noise) on or off; returns self."""
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, device: str | None = None, *, dtype=None):
        """Move every parameter to ``device`` and/or cast it to ``dtype``, in place; returns self."""
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
        """D, the feature size the model takes: that of its first Dense layer."""
        first_part = next(iter(self.parts().values()))
        return next(layer.in_features for layer in first_part.layers if isinstance(layer, Dense))

    @property
    def output_features(self) -> int:
        """The feature size the model gives (D for an autoencoder, the number of classes for a classifier)."""
        features = self.input_features
        for part in self.parts().values():
            features = part.output_features(features)
        return features

    def summary(self) -> str:
        """A Keras-style table of every layer of every part, with output shapes and parameter counts."""
        rows, features = [], self.input_features
        for part_name, part in self.parts().items():
            rows += summary_rows(part, features, prefix=f"{part_name}.")
            features = part.output_features(features)
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
                raise ValueError(f"{type(self).__name__} keeps no counter {name!r}; it counts {sorted(known) or 'none'}")
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
        if not noise_factor >= 0:
            raise ValueError(f"noise_factor must be >= 0, got {noise_factor}")
        self.noise_factor = float(noise_factor)
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))
        self.seed = int(seed)
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


def summary(network: Sequential, input_features: int) -> str:
    """A Keras-style table of one network's layers: output shapes, parameter counts and the total."""
    return format_summary(summary_rows(network, input_features))


def summary_rows(network: Sequential, input_features: int, prefix: str = "") -> list[tuple[str, str, int]]:
    """One ``(layer, output shape, parameter count)`` row per layer of ``network``."""
    rows, features = [], input_features
    for index, layer in enumerate(network.layers):
        features = layer.output_features(features)
        count = sum(parameter.size for parameter in layer.parameters())
        rows.append((f"{prefix}{index} {type(layer).__name__}", f"(None, {features})", count))
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
}

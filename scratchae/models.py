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

from scratchae.backend import add_gaussian_noise, device_of, get_namespace, random_generator, standard_normal_like
from scratchae.validate import require_float, require_int
from scratchae.layers import Sequential
from scratchae.shapes import input_features, output_shape
from scratchae.summary import format_summary, summary_rows

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
        """``forward``, after :meth:`check_batch` has looked at ``x``: the door for a learner's own calls."""
        return self.forward(self.check_batch(x))

    def check_batch(self, x, features: int | None = None, what: str = "input"):
        """``x`` itself if it is a non-empty (N, features) batch of the weights' dtype (``features``: the model's
        input size unless given), else a ValueError that names the problem. The public methods (``encode``,
        ``decode``, ``reconstruct``, ``__call__``) check their input here, once; ``forward`` and ``backward``, which
        ``train_step`` calls on data that ``fit`` has checked, hold only the math."""
        features = self.input_features if features is None else features
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) != 2 or shape[1] != features:
            raise ValueError(f"{type(self).__name__}: the {what} must be a batch of shape (N, {features}), got "
                             f"{shape if hasattr(x, 'shape') else type(x).__name__}")
        if shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: the {what} is an empty batch (0 samples)")
        if x.dtype != self.dtype:
            raise ValueError(f"{type(self).__name__}: the {what} is {x.dtype} but the weights are {self.dtype}; "
                             f"convert it with x.astype(...) (mixing dtypes would silently upcast)")
        return x

    @property
    def code_features(self) -> int:
        """The size of a code, what ``decode`` takes: the output size of the part before the decoder."""
        return math.prod(self.part_shapes()[self.PARTS[self.PARTS.index("decoder") - 1]])

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
        parameters' dtype and device by :meth:`scratchae.optim.Optimizer.follow_parameters`, which ``fit`` and
        ``checkpoint.save`` call at their door, so a checkpoint saved after ``model.to(dtype=numpy.float64)`` loads.
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
    """A layer's type and constructor arguments. An engine form is saved as the lesson class it stands in for
    (``saved_as``), so that one checkpoint loads into either floor."""
    return {"type": getattr(layer, "saved_as", type(layer).__name__), **layer.config()}


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
        return self.encoder.forward(self.check_batch(x))

    def decode(self, z):
        """z: (N, latent_dim) -> x_hat: (N, D)."""
        return self.decoder.forward(self.check_batch(z, self.code_features, "code"))

    def reconstruct(self, x):
        """x: (N, D) -> x_hat: (N, D), never with training noise."""
        return self.decoder.forward(self.encoder.forward(self.check_batch(x)))

    def forward(self, x):
        """x: (N, D) -> x_hat: (N, D); caches what backward needs."""
        return self.decoder.forward(self.encoder.forward(x))  # (N, D): the code, then the image again

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
        """x: (N, D) -> x_hat: (N, D), from x with fresh noise in training mode."""
        if self.training:
            x = self.corrupt(x, random_generator((self.seed, self.noisy_batches), like=x))  # (N, D)
            self.noisy_batches += 1
        return super().forward(x)

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
        return self.encoder.forward(self.check_batch(x))

    def forward(self, x):
        """x: (N, D) -> logits: (N, n_classes)."""
        return self.head.forward(self.encoder.forward(x))

    def backward(self, dlogits):
        """dlogits: (N, n_classes) = dL/dlogits; sets every parameter's gradient."""
        dz = self.head.backward(dlogits)  # (N, latent_dim)
        self.encoder.backward(dz, input_grad=False)

    def predict(self, x):
        """x: (N, D) -> predicted class: (N,) integers."""
        xp = get_namespace(x)
        return xp.argmax(self.forward(self.check_batch(x)), axis=1)


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
        return self.mu_head.forward(self.encoder.forward(self.check_batch(x)))

    def decode(self, z):
        """z: (N, latent_dim) -> x_hat: (N, D)."""
        return self.decoder.forward(self.check_batch(z, self.latent_dim, "code"))

    def reconstruct(self, x):
        """x: (N, D) -> the decoded mean code: (N, D), with no sampling."""
        return self.decoder.forward(self.encode(x))

    def sample(self, n: int, *, seed: int = 0):
        """n new images decoded from codes z ~ N(0, I): (n, D), on the model's device."""
        n = require_int("n", n, minimum=1)
        weights = self.parameters()[0].data  # for the dtype and the device of the codes
        z = standard_normal_like(weights, random_generator(seed, like=weights), shape=(n, self.latent_dim))  # (n, Z)
        return self.decoder.forward(z)

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

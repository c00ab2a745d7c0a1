r"""The sparse autoencoder: an L1 penalty on the code's activity (Chollet, "Building Autoencoders in Keras", 2016).

A plain autoencoder may use every unit of its code for every image. Adding to the loss a penalty on the size of the
code,

.. math:: \Omega(h) = \lambda \, \frac{1}{N} \sum_{n=1}^{N} \sum_{j=1}^{Z} |h_{nj}|,

(Keras's ``activity_regularizer=regularizers.l1(lambda)``: ``lambda`` times the sum of ``|h|`` over the code's
units, averaged over the batch) pushes most units to exactly 0 for most images: each image is described by a few
active units. Its gradient is one line of the chain rule,

.. math:: \frac{\partial \Omega}{\partial h_{nj}} = \frac{\lambda}{N} \operatorname{sign}(h_{nj}),

added to the gradient that reaches the code from the decoder. At :math:`h = 0`, where :math:`|h|` has a corner and
no derivative, ``sign(0) = 0``: the subgradient that Keras (TensorFlow's ``abs`` gradient) and PyTorch use, so a unit
that the ReLU has switched off gets no push from the penalty (it gets none from the ReLU either).

:class:`SparseAutoencoder` is an :class:`~scratchae.models.Autoencoder` whose ``forward`` returns the code beside the
reconstruction, ``(x_hat, h)``, as the VAE returns its ``(x_hat, mu, logvar)``; :class:`SparseLoss` adds the penalty
to the reconstruction loss and returns its gradient with respect to both. ``train_step`` stays four lines.
"""

from __future__ import annotations

from scratchae.backend import get_namespace
from scratchae.layers import Sequential
from scratchae.losses import BCELoss, Loss, MSELoss
from scratchae.models import Autoencoder
from scratchae.validate import require_float


def l1_penalty(h, l1: float):
    """h: (N, Z) code -> the 0-d penalty ``l1 * sum(|h|) / N``."""
    xp = get_namespace(h)
    return l1 * xp.sum(xp.abs(h)) / h.shape[0]  # ()


def l1_penalty_backward(h, l1: float):
    """h: (N, Z) -> d(penalty)/dh: (N, Z) = ``l1 * sign(h) / N``; sign(0) = 0, the subgradient at the corner."""
    xp = get_namespace(h)
    return (l1 / h.shape[0]) * xp.sign(h)  # (N, Z)


class SparseAutoencoder(Autoencoder):
    """An autoencoder whose code is kept sparse by an L1 penalty on its activity.

    ``forward(x)`` returns ``(x_hat (N, D), h (N, Z))``: the reconstruction and the code, so that the loss can
    penalise the code. ``reconstruct``, ``encode`` and ``decode`` are the autoencoder's.

    Parameters
    ----------
    encoder : Sequential
        (N, D) -> (N, Z), the code (Chollet's: one Dense layer of 32 with ReLU).
    decoder : Sequential
        (N, Z) -> (N, D).
    l1 : float
        The weight of the penalty, kept with the model (and its checkpoint) so that training it again uses the same:
        train it with ``SparseLoss(model.l1)``.
    """

    def __init__(self, encoder: Sequential, decoder: Sequential, l1: float = 1e-4):
        super().__init__(encoder, decoder)
        self.l1 = require_float("l1", l1, minimum=0.0)

    def forward(self, x):
        """x: (N, D) -> (x_hat (N, D), h (N, Z)); caches what backward needs."""
        h = self.encoder.forward(x)  # (N, Z)
        return self.decoder.forward(h), h

    def backward(self, grads):
        """grads = (dL/dx_hat (N, D), dL/dh (N, Z)), the second from the penalty; sets every parameter's gradient."""
        dx_hat, dh_penalty = grads
        dh = self.decoder.backward(dx_hat) + dh_penalty  # (N, Z)   h feeds the decoder and the penalty
        self.encoder.backward(dh, input_grad=False)

    def options(self):
        return {"l1": self.l1}


class SparseLoss(Loss):
    r"""A reconstruction loss plus the L1 penalty on the code: :math:`L = \ell(\hat x, x) + \Omega(h)`.

    ``forward((x_hat, h), x)`` returns the sum; ``backward()`` returns ``(dL/dx_hat, dL/dh)``. ``metrics()``
    reports the two terms apart (``reconstruction``, ``l1_penalty``) and ``code_mean``, the mean of ``|h|`` over the
    batch and the code's units (for a ReLU code, its mean value: Chollet's 7.30 for a plain code, 3.33 for a sparse
    one).

    Parameters
    ----------
    l1 : float
        The penalty's weight (Chollet's ``10e-5``, i.e. 1e-4).
    reconstruction : {"mse", "bce"}
    """

    RECONSTRUCTIONS = {"mse": MSELoss, "bce": BCELoss}

    def __init__(self, l1: float = 1e-4, reconstruction: str = "mse"):
        super().__init__()
        if reconstruction not in self.RECONSTRUCTIONS:
            raise ValueError(f"unknown reconstruction {reconstruction!r}; choose one of "
                             f"{', '.join(self.RECONSTRUCTIONS)}")
        self.l1 = require_float("l1", l1, minimum=0.0)
        self.reconstruction = reconstruction
        self.pixel_loss = self.RECONSTRUCTIONS[reconstruction]()
        self.targets = self.pixel_loss.targets

    def forward(self, out, target):
        """out = (x_hat (N, D), h (N, Z)), target: (N, D) -> 0-d array."""
        x_hat, h = out
        rebuilt = self.pixel_loss.forward(x_hat, target)  # ()
        penalty = l1_penalty(h, self.l1)  # ()   l1 * sum|h| / N
        self.cache = (h, rebuilt, penalty)
        return rebuilt + penalty

    def check(self, out, target) -> None:
        """Raise an error that names the problem unless ``out`` is (x_hat, h) and x_hat matches target."""
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError("SparseLoss takes the sparse autoencoder's output (x_hat, h)")
        self.pixel_loss.check(out[0], target)

    def backward(self):
        """-> (dL/dx_hat (N, D), dL/dh (N, Z))."""
        h, _, _ = self.cache
        return self.pixel_loss.backward(), l1_penalty_backward(h, self.l1)  # (N, D), (N, Z) = l1 * sign(h) / N

    def metrics(self):
        """``reconstruction`` and ``l1_penalty`` (the two terms), ``code_mean`` (the mean |h|) of the last batch."""
        h, rebuilt, penalty = self.cache
        xp = get_namespace(h)
        return {"reconstruction": float(rebuilt), "l1_penalty": float(penalty),
                "code_mean": float(xp.mean(xp.abs(h)))}

    def __repr__(self):
        return f"SparseLoss(l1={self.l1:g}, reconstruction={self.reconstruction!r})"

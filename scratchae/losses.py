"""Loss functions with hand-written gradients.

``loss.forward(pred, target)`` returns the mean loss as a 0-d array (call ``float()`` on it only to log it: on a GPU
that waits for the device). ``loss.backward()`` returns ``dL/dpred``, the array that starts backpropagation.
``loss.metrics()`` gives other numbers about the same batch that a training run records beside the loss (the
classifier's accuracy).

``loss(pred, target)`` checks its arguments first (shapes and dtypes that match, labels in range), then calls
``forward``: that is the door, for a learner's own calls. ``train_step`` calls ``forward`` itself, on data that
``fit`` has checked once, so the lesson's lines below hold only the math.
"""

from __future__ import annotations

import math

from scratchae.backend import arange_like, get_namespace
from scratchae.validate import require_float, require_int


class Loss:
    """Base class: keeps the cache between ``forward`` and ``backward``.

    ``targets`` says what the loss compares its input with, so that training can check the data once, where it
    enters: ``"values"`` (real numbers), ``"probabilities"`` (numbers in [0, 1]) or ``"labels"`` (class indices).
    """

    targets = "values"

    def __init__(self):
        self.cache = None

    def metrics(self) -> dict[str, float]:
        """Other measures of the batch of the last ``forward`` (none for most losses), as Python floats."""
        return {}

    def start_epoch(self, epoch: int) -> None:
        """Called by ``fit`` before each epoch (counted from 0): a loss that changes over a run (the VAE's KL
        warm-up) follows the epoch here; most losses do nothing."""

    def __call__(self, pred, target):
        """``forward``, after :meth:`check` has looked at the arguments."""
        self.check(pred, target)
        return self.forward(pred, target)

    def check(self, pred, target) -> None:
        """Raise an error that names the problem unless ``pred`` and ``target`` have one shape and one dtype."""
        _check_same_shape(self, pred, target)

    def __repr__(self):
        return f"{type(self).__name__}()"


def _check_same_shape(loss: Loss, pred, target) -> None:
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"{type(loss).__name__}: pred has shape {tuple(pred.shape)} but target has shape "
                         f"{tuple(target.shape)}; they must match")
    if pred.dtype != target.dtype:
        raise TypeError(f"{type(loss).__name__}: pred is {pred.dtype} but target is {target.dtype}; "
                        f"they must match (mixing dtypes would silently upcast)")


class MSELoss(Loss):
    r"""Mean squared error over every element: :math:`L = \frac{1}{M} \sum_i (p_i - t_i)^2`, M = N * D.

    :math:`\partial L / \partial p_i = 2 (p_i - t_i) / M`.
    """

    def forward(self, pred, target):
        """pred, target: (N, D) -> 0-d array."""
        xp = get_namespace(pred)
        diff = pred - target  # (N, D)
        self.cache = diff
        return xp.mean(diff * diff)  # ()

    def backward(self):
        """-> dL/dpred: (N, D)."""
        diff = self.cache
        return (2.0 / math.prod(diff.shape)) * diff  # (N, D)


class BCELoss(Loss):
    r"""Binary cross-entropy on probabilities, as Keras computes it.

    :math:`L = -\frac{1}{M} \sum_i t_i \log p_i + (1 - t_i) \log(1 - p_i)`, with ``p`` first clipped to
    :math:`[\epsilon, 1 - \epsilon]` (Keras's ``epsilon = 1e-7``), so ``log(0)`` never happens and the loss is never
    NaN or infinite. Where the clip is active the gradient is zero, as for any clip.

    :math:`\partial L / \partial p_i = \frac{p_i - t_i}{p_i (1 - p_i)} / M` inside the clip range.
    """

    targets = "probabilities"

    def __init__(self, epsilon: float = 1e-7):
        super().__init__()
        if not 0.0 < epsilon < 0.5:
            raise ValueError(f"epsilon must lie in (0, 0.5), got {epsilon}")
        self.epsilon = float(epsilon)

    def forward(self, pred, target):
        """pred, target: (N, D), pred in [0, 1] -> 0-d array."""
        xp = get_namespace(pred)
        p = xp.clip(pred, self.epsilon, 1.0 - self.epsilon)  # (N, D)
        inside = (pred >= self.epsilon) & (pred <= 1.0 - self.epsilon)  # (N, D), where the clip passes gradients
        self.cache = (p, target, inside)
        return -xp.mean(target * xp.log(p) + (1.0 - target) * xp.log(1.0 - p))  # ()

    def backward(self):
        """-> dL/dpred: (N, D)."""
        p, target, inside = self.cache
        xp = get_namespace(p)
        dp = (p - target) / (p * (1.0 - p) * math.prod(p.shape))  # (N, D)
        return xp.where(inside, dp, 0.0)  # (N, D)


class SoftmaxCrossEntropyLoss(Loss):
    r"""Softmax followed by cross-entropy, on raw scores (logits) and integer class labels.

    :math:`L = \frac{1}{N} \sum_n \left(\log \sum_c e^{z_{nc}} - z_{n y_n}\right)`, with the log-sum-exp computed
    after subtracting each row's maximum so that ``exp`` never overflows.
    :math:`\partial L / \partial z = (\mathrm{softmax}(z) - \mathrm{onehot}(y)) / N`.
    """

    targets = "labels"

    def forward(self, logits, labels):
        """logits: (N, C) floats, labels: (N,) integers in [0, C) -> 0-d array."""
        xp = get_namespace(logits)
        shifted = logits - xp.max(logits, axis=1, keepdims=True)  # (N, C), max of each row is 0
        log_sum_exp = xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))  # (N, 1)
        log_probs = shifted - log_sum_exp  # (N, C)
        one_hot = xp.astype(labels[:, None] == arange_like(logits.shape[1], logits), logits.dtype)  # (N, C)
        self.cache = (log_probs, one_hot, logits, labels)
        return -xp.sum(log_probs * one_hot) / logits.shape[0]  # ()

    def check(self, logits, labels) -> None:
        """Raise an error that names the problem unless ``logits`` are (N, C) and ``labels`` N integers in [0, C)."""
        if len(logits.shape) != 2:
            raise ValueError(f"SoftmaxCrossEntropyLoss: logits must have shape (N, C), got {tuple(logits.shape)}")
        check_labels(labels, logits.shape[0], logits.shape[1], "SoftmaxCrossEntropyLoss")

    def backward(self):
        """-> dL/dlogits: (N, C)."""
        log_probs, one_hot, _, _ = self.cache
        xp = get_namespace(log_probs)
        return (xp.exp(log_probs) - one_hot) / log_probs.shape[0]  # (N, C)

    def metrics(self):
        """``accuracy``: the fraction of the batch whose highest score is its label."""
        _, _, logits, labels = self.cache
        xp = get_namespace(logits)
        correct = xp.sum(xp.astype(xp.argmax(logits, axis=1) == labels, xp.int64))  # ()
        return {"accuracy": float(correct) / labels.shape[0]}


class VAELoss(Loss):
    r"""The negative evidence lower bound (ELBO) of a variational autoencoder, per sample.

    For an image :math:`x` with reconstruction :math:`\hat x` and latent Gaussian :math:`(\mu, \sigma^2)`:

    .. math::
        L = \underbrace{\sum_{i=1}^{D} \ell(\hat x_i, x_i)}_{\text{reconstruction}}
            + \beta \, \underbrace{\left(-\tfrac12 \sum_{j=1}^{Z} (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)
            \right)}_{\mathrm{KL}(\mathcal N(\mu, \sigma^2) \,\|\, \mathcal N(0, I))},

    averaged over the batch: a number of nats per image, comparable with published figures. :math:`\ell` is binary
    cross-entropy (:class:`BCELoss`, clipped the same way) or the squared error, summed over the pixels (a sum, not
    a mean: the reconstruction of every pixel counts against the same KL term). The KL term has a closed form for two
    Gaussians, and so have its gradients:

    .. math:: \frac{\partial \mathrm{KL}}{\partial \mu} = \mu, \qquad
              \frac{\partial \mathrm{KL}}{\partial \log\sigma^2} = \tfrac12 (\sigma^2 - 1).

    Parameters
    ----------
    reconstruction : {"bce", "mse"}
    beta : float
        The weight of the KL term (1 for the ELBO itself; a beta-VAE weighs it more).
    warmup_epochs : int
        When > 0, the KL term's weight rises from 0 to ``beta`` over this many epochs (``beta * epoch /
        warmup_epochs``), so that a small latent space first learns to reconstruct before it is pulled to N(0, I).
    """

    RECONSTRUCTIONS = ("bce", "mse")

    def __init__(self, reconstruction: str = "bce", beta: float = 1.0, *, warmup_epochs: int = 0):
        super().__init__()
        if reconstruction not in self.RECONSTRUCTIONS:
            raise ValueError(f"unknown reconstruction {reconstruction!r}; choose one of "
                             f"{', '.join(self.RECONSTRUCTIONS)}")
        self.reconstruction = reconstruction
        self.beta = require_float("beta", beta, minimum=0.0)
        self.warmup_epochs = require_int("warmup_epochs", warmup_epochs, minimum=0)
        self.kl_weight = self.beta if not self.warmup_epochs else 0.0
        self.pixel_loss = BCELoss() if reconstruction == "bce" else MSELoss()
        self.targets = self.pixel_loss.targets

    def start_epoch(self, epoch: int) -> None:
        """Set the KL term's weight for epoch ``epoch`` (counted from 0) of the warm-up."""
        self.kl_weight = self.beta * min(1.0, epoch / self.warmup_epochs) if self.warmup_epochs else self.beta

    def forward(self, out, target):
        """out = (x_hat (N, D), mu (N, Z), logvar (N, Z)), target: (N, D) -> 0-d array."""
        x_hat, mu, logvar = out
        xp = get_namespace(x_hat)
        n, pixels = x_hat.shape
        reconstruction = self.pixel_loss.forward(x_hat, target) * pixels  # (), per image: the mean over N * D, times D
        kl = -0.5 * xp.sum(1.0 + logvar - mu * mu - xp.exp(logvar)) / n  # (), per image
        self.cache = (mu, logvar, pixels, n, reconstruction, kl)
        return reconstruction + self.kl_weight * kl  # ()

    def check(self, out, target) -> None:
        """Raise an error that names the problem unless ``out`` is (x_hat, mu, logvar) and x_hat matches target."""
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise ValueError("VAELoss takes the VAE's output (x_hat, mu, logvar)")
        _check_same_shape(self, out[0], target)

    def backward(self):
        """-> (dL/dx_hat (N, D), dL/dmu (N, Z), dL/dlogvar (N, Z))."""
        mu, logvar, pixels, n, _, _ = self.cache
        xp = get_namespace(mu)
        dx_hat = self.pixel_loss.backward() * pixels  # (N, D)
        dmu = (self.kl_weight / n) * mu  # (N, Z)
        dlogvar = (0.5 * self.kl_weight / n) * (xp.exp(logvar) - 1.0)  # (N, Z)
        return dx_hat, dmu, dlogvar

    def metrics(self):
        """``reconstruction`` and ``kl``, the two terms of the last batch, per image (the KL term unweighted)."""
        _, _, _, _, reconstruction, kl = self.cache
        return {"reconstruction": float(reconstruction), "kl": float(kl)}

    def __repr__(self):
        warmup = f", warmup_epochs={self.warmup_epochs}" if self.warmup_epochs else ""
        return f"VAELoss(reconstruction={self.reconstruction!r}, beta={self.beta}{warmup})"


def check_labels(labels, n_samples: int, n_classes: int, what: str) -> None:
    """Raise an error naming ``what`` unless ``labels`` are ``n_samples`` integers in [0, n_classes).

    TypeError for labels that are not integers, ValueError for a wrong shape or a label out of range.
    """
    xp = get_namespace(labels)
    if not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(f"{what}: labels must be integers (class indices), got dtype {labels.dtype}")
    if tuple(labels.shape) != (n_samples,):
        raise ValueError(f"{what}: labels must have shape ({n_samples},), a 1-d array with one label per sample, got "
                         f"{tuple(labels.shape)}")
    if bool(xp.any((labels < 0) | (labels >= n_classes))):  # one reduction; the range only for the message
        low, high = int(xp.min(labels)), int(xp.max(labels))
        raise ValueError(f"{what}: labels must lie in [0, {n_classes - 1}] for {n_classes} classes, got values from "
                         f"{low} to {high}")

"""scratchae: autoencoders from scratch on NumPy and CuPy, with every gradient written by hand.

The lesson, in the order a learner reads it:

- :mod:`scratchae.layers`    Dense, ReLU, Sigmoid, Identity, Sequential: forward and backward by hand
- :mod:`scratchae.losses`    MSE, binary cross-entropy, softmax cross-entropy, the VAE's negative ELBO
- :mod:`scratchae.optim`     SGD and Adam
- :mod:`scratchae.models`    autoencoders, a classifier and a variational autoencoder built from those layers
- :mod:`scratchae.training`  ``train_step`` (forward, loss, backward, step) and ``fit``, the loop around it
- :mod:`scratchae.gradcheck` numerical gradients that prove the hand-written ones

and around it: :mod:`scratchae.data`, :mod:`scratchae.plots`, :mod:`scratchae.checkpoint`, the command in
:mod:`scratchae.cli`, and :mod:`scratchae.backend`, the only module that knows NumPy from CuPy.
"""

from scratchae.backend import get_namespace, resolve_device, to_device, to_numpy
from scratchae.i18n import use_language
from scratchae.layers import Dense, Identity, Layer, Parameter, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.optim import SGD, Adam

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "BCELoss",
    "Dense",
    "Identity",
    "Layer",
    "MSELoss",
    "Parameter",
    "ReLU",
    "SGD",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropyLoss",
    "VAELoss",
    "get_namespace",
    "resolve_device",
    "to_device",
    "to_numpy",
    "use_language",
]

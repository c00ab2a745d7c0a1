"""scratchae: autoencoders from scratch on NumPy and CuPy, with every gradient written by hand.

The pieces, in the order a learner reads them:

- :mod:`scratchae.backend`   arrays and devices (NumPy on the CPU, CuPy on the GPU)
- :mod:`scratchae.layers`    Dense, ReLU, Sigmoid, Identity, Sequential: forward and backward by hand
- :mod:`scratchae.losses`    MSE, binary cross-entropy, softmax cross-entropy
- :mod:`scratchae.optim`     SGD and Adam
- :mod:`scratchae.gradcheck` numerical gradients that prove the hand-written ones
"""

from scratchae.backend import get_namespace, resolve_device, to_device, to_numpy
from scratchae.layers import Dense, Identity, Layer, Parameter, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
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
    "get_namespace",
    "resolve_device",
    "to_device",
    "to_numpy",
]

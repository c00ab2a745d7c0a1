"""Exercise l1_penalty: the gradient of the sparse autoencoder's L1 activity penalty.

The penalty on a batch of codes h, shape (N, Z), is Keras's activity regulariser l1: lambda times the sum of |h|
over the code's units, averaged over the batch of N samples. The loss adds it to the reconstruction error, so its
gradient is added to the gradient that reaches the code h from the decoder (not to any weight: it penalises the
code's *activity*). Write ``backward``: return d(penalty)/dh.

|h| has a corner at 0: use the subgradient that Keras and PyTorch use there, 0.

Check it with ``scratchae exercises check . l1_penalty``.
"""

import numpy


class L1Penalty:
    def __init__(self, l1):
        self.l1 = l1

    def forward(self, h):
        """h: (N, Z) codes -> a 0-d array: l1 * sum(|h|) / N."""
        self.h = h
        return self.l1 * numpy.sum(numpy.abs(h)) / h.shape[0]

    def backward(self):
        """-> d(penalty)/dh: (N, Z), from the cached h.

        Differentiate one term |h_nj| of the sum (what is its slope left of 0? right of 0? at 0?); keep l1 and the
        1/N of the mean. numpy.sign may help.
        """
        raise NotImplementedError("exercise l1_penalty: write L1Penalty.backward")

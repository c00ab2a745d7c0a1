"""Exercise softmax_cross_entropy: the gradient of softmax followed by cross-entropy.

For logits z: (N, C) and integer labels y: (N,), L = (1 / N) sum_n [log sum_c exp(z_nc) - z_n,y_n]: the mean of
-log softmax(z_n)[y_n]. Write ``backward``: return dL/dz.

Check it with ``scratchae exercises check . softmax_cross_entropy``.
"""

import numpy

from scratchae.losses import Loss


class SoftmaxCrossEntropyLoss(Loss):
    targets = "labels"

    def forward(self, logits, labels):
        """logits: (N, C) floats, labels: (N,) integers in [0, C) -> a 0-d array."""
        shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), so that exp never overflows
        log_probs = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
        self.cache = (log_probs, labels)
        return -log_probs[numpy.arange(len(labels)), labels].mean()

    def backward(self):
        """-> dL/dlogits: (N, C), from the cached log-probabilities and labels.

        Differentiate log sum_c exp(z_nc) with respect to z_nk (what do you recognise?), then -z_n,y_n (which
        entries does it touch?), and remember the mean over the batch. The derivative of the log-sum-exp is the same
        with or without the shift by the row's maximum.
        """
        raise NotImplementedError("exercise softmax_cross_entropy: write SoftmaxCrossEntropyLoss.backward")

"""Exercise bce: the gradient of the binary cross-entropy.

L = -(1 / M) sum_i [t_i log p_i + (1 - t_i) log(1 - p_i)] over all M = N * D elements, p a probability (the output of
a sigmoid) first clipped to [eps, 1 - eps] so that log(0) never happens. Write ``backward``: return dL/dp.

Check it with ``scratchae exercises check . bce``.
"""

import numpy

from scratchae.losses import Loss


class BCELoss(Loss):
    targets = "probabilities"
    epsilon = 1e-7

    def forward(self, pred, target):
        """pred, target: (N, D), numbers in [0, 1] -> a 0-d array."""
        p = numpy.clip(pred, self.epsilon, 1.0 - self.epsilon)  # (N, D)
        self.cache = (p, target)
        return -numpy.mean(target * numpy.log(p) + (1.0 - target) * numpy.log(1.0 - p))

    def backward(self):
        """-> dL/dpred: (N, D), from the cached clipped p and the target.

        Differentiate one term, -[t log p + (1 - t) log(1 - p)] / M, with respect to p (mind the sign of each
        derivative of a log, and the chain rule through 1 - p), then put the two fractions over one denominator.
        (Inside the clip range, which is where the checks look, the clip's derivative is 1.)
        """
        raise NotImplementedError("exercise bce: write BCELoss.backward")

"""Exercise mse: the gradient of the mean squared error.

L = (1 / M) sum_i (p_i - t_i)^2 over all M = N * D elements of the prediction p and the target t. Write
``backward``: return dL/dp.

Check it with ``scratchae exercises check . mse``.
"""

from scratchae.losses import Loss


class MSELoss(Loss):
    def forward(self, pred, target):
        """pred, target: (N, D) -> a 0-d array, the mean over all N * D elements."""
        diff = pred - target  # (N, D)
        self.cache = diff
        return (diff * diff).mean()

    def backward(self):
        """-> dL/dpred: (N, D).

        Differentiate L with respect to one element p_i: only one term of the sum depends on it. Do not forget the
        factor in front of the sum.
        """
        raise NotImplementedError("exercise mse: write MSELoss.backward")

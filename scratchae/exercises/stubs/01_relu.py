"""Exercise relu: the backward pass of ReLU.

ReLU keeps the positive numbers and zeroes the others: y = max(x, 0), element by element. Write ``backward``: given
dy = dL/dy, the gradient of the loss with respect to the output, return dL/dx.

Check it with ``scratchae exercises check . relu``.
"""

import numpy

from scratchae.layers import Layer


class ReLU(Layer):
    def forward(self, x):
        """x: (N, D) -> y: (N, D)."""
        self.x = x  # (N, D), kept for backward
        return numpy.maximum(x, 0.0)  # (N, D)

    def backward(self, dy, input_grad=True):
        """dy: (N, D) = dL/dy -> dx: (N, D) = dL/dx.

        Derive dL/dx_nd = dL/dy_nd * dy_nd/dx_nd: what is the derivative of max(x, 0) for x > 0, and for x < 0?
        (At exactly 0, take 0, as PyTorch does.) Keep the dtype of dy (a float32 dy gives a float32 dx), and never
        change dy itself: build a new array.
        """
        raise NotImplementedError("exercise relu: write ReLU.backward")

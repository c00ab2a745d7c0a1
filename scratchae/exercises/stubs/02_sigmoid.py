"""Exercise sigmoid: the backward pass of the logistic sigmoid.

y = 1 / (1 + exp(-x)), element by element. Write ``backward``: given dy = dL/dy, return dL/dx.

Check it with ``scratchae exercises check . sigmoid``.
"""

import numpy

from scratchae.layers import Layer


class Sigmoid(Layer):
    def forward(self, x):
        """x: (N, D) -> y: (N, D), every number in (0, 1)."""
        self.y = 1.0 / (1.0 + numpy.exp(-x))  # (N, D), kept for backward
        return self.y

    def backward(self, dy, input_grad=True):
        """dy: (N, D) = dL/dy -> dx: (N, D) = dL/dx.

        Derive dy_nd/dx_nd, the derivative of the sigmoid, and write it with the output y alone (it needs no exp):
        differentiate 1 / (1 + e^-x) and look for y in the result. Then dL/dx = dL/dy * dy/dx, element by element.
        """
        raise NotImplementedError("exercise sigmoid: write Sigmoid.backward")

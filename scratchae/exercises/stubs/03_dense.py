"""Exercise dense: the backward pass of a fully connected layer.

y = x W + b, with x: (N, D_in), W: (D_in, D_out), b: (D_out,) and y: (N, D_out). Write ``backward``: given
dy = dL/dy, set the gradients of both parameters and return dL/dx.

Check it with ``scratchae exercises check . dense``.
"""

import numpy

from scratchae.layers import Layer, Parameter


class Dense(Layer):
    def __init__(self, in_features, out_features, seed=0):
        rng = numpy.random.default_rng(seed)
        limit = numpy.sqrt(6.0 / (in_features + out_features))  # Glorot-uniform
        self.W = Parameter(rng.uniform(-limit, limit, (in_features, out_features)).astype(numpy.float32), "W")
        self.b = Parameter(numpy.zeros(out_features, dtype=numpy.float32), "b")

    def forward(self, x):
        """x: (N, D_in) -> y: (N, D_out)."""
        self.x = x  # (N, D_in), kept for backward
        return x @ self.W.data + self.b.data  # (N, D_out)

    def backward(self, dy, input_grad=True):
        """dy: (N, D_out) = dL/dy -> dx: (N, D_in) = dL/dx.

        Set three quantities:

        - ``self.W.grad``, dL/dW, shape (D_in, D_out): y_nj = sum_i x_ni W_ij + b_j, so W_ij touches every sample's
          y_nj. Sum the chain rule over the batch, and let the shapes guide the matrix product.
        - ``self.b.grad``, dL/db, shape (D_out,): b_j is added to y_nj of every sample n.
        - the return value, dL/dx, shape (N, D_in).

        Overwrite the gradients (``=``, not ``+=``): a second call must give the same values.
        """
        raise NotImplementedError("exercise dense: write Dense.backward")

    def parameters(self):
        return [self.W, self.b]

"""Exercise maxpool2d: the backward pass of max pooling.

Each window of ``pool_size x pool_size`` numbers, taken every ``stride`` rows and columns, gives its largest number:
y[n, c, i, j] = max over p, q of x[n, c, s i + p, s j + q]. With stride < pool_size the windows overlap. Write
``backward``: return dL/dx.

Check it with ``scratchae exercises check . maxpool2d`` (3 x 3 windows at stride 2: they overlap).
"""

import numpy

from scratchae.layers import Layer


class MaxPool2D(Layer):
    def __init__(self, pool_size=2, stride=None):
        self.pool_size = pool_size
        self.stride = pool_size if stride is None else stride

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, H_out, W_out), H_out = (H - pool_size) // stride + 1."""
        k, s = self.pool_size, self.stride
        n, c, height, width = x.shape
        out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
        y = numpy.full((n, c, out_h, out_w), -numpy.inf, dtype=x.dtype)  # (N, C, H_out, W_out)
        for p in range(k):
            for q in range(k):
                y = numpy.maximum(y, x[:, :, p:p + s * out_h:s, q:q + s * out_w:s])  # the window's (p, q) numbers
        self.x, self.y = x, y  # kept for backward
        return y

    def backward(self, dy, input_grad=True):
        """dy: (N, C, H_out, W_out) = dL/dy -> dx: (N, C, H, W) = dL/dx.

        Inside one window, how does the maximum change when the largest number moves a little, and when another one
        does? Find, for each window, where its maximum was (the same strided slices as forward; if two numbers tie,
        give the gradient to one of them only). And when windows overlap, a number can be the maximum of several
        windows: what happens to its gradient then?
        """
        raise NotImplementedError("exercise maxpool2d: write MaxPool2D.backward")

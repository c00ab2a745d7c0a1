"""Exercise conv2d: the backward pass of a 2-d convolution.

y[n, o, i, j] = b[o] + sum over c, p, q of W[o, c, p, q] * x_pad[n, c, s i + p, s j + q], where x_pad is the input
with ``padding`` zeros on every side and s is the stride (a cross-correlation, as PyTorch and Keras compute it).
The forward pass below loops over the K x K positions of the kernel: at each, one window of x_pad (a strided slice)
meets one slice of W. Write ``backward``: set the gradients of W and b, and return dL/dx.

Check it with ``scratchae exercises check . conv2d`` (stride 2 and padding 1, where mistakes show).
"""

import numpy

from scratchae.layers import Layer, Parameter


class Conv2D(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, seed=0):
        rng = numpy.random.default_rng(seed)
        area = kernel_size * kernel_size
        limit = numpy.sqrt(6.0 / (in_channels * area + out_channels * area))  # Glorot-uniform
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.W = Parameter(rng.uniform(-limit, limit, shape).astype(numpy.float32), "W")  # (C_out, C_in, K, K)
        self.b = Parameter(numpy.zeros(out_channels, dtype=numpy.float32), "b")  # (C_out,)
        self.stride, self.padding = stride, padding

    def forward(self, x):
        """x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out), H_out = (H + 2 padding - K) // stride + 1."""
        pad, s = self.padding, self.stride
        k = self.W.data.shape[2]
        self.x_pad = numpy.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C_in, H + 2 pad, W + 2 pad)
        n, _, height, width = self.x_pad.shape
        out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
        y = numpy.zeros((n, self.W.data.shape[0], out_h, out_w), dtype=x.dtype)  # (N, C_out, H_out, W_out)
        for p in range(k):
            for q in range(k):
                window = self.x_pad[:, :, p:p + s * out_h:s, q:q + s * out_w:s]  # (N, C_in, H_out, W_out)
                y += numpy.einsum("nchw,oc->nohw", window, self.W.data[:, :, p, q])  # (N, C_out, H_out, W_out)
        return y + self.b.data[:, None, None]

    def backward(self, dy, input_grad=True):
        """dy: (N, C_out, H_out, W_out) = dL/dy -> dx: (N, C_in, H, W) = dL/dx.

        Set ``self.W.grad`` (C_out, C_in, K, K) and ``self.b.grad`` (C_out,), and return dL/dx:

        - W[o, c, p, q] multiplies, at every output position, the window of x_pad that the forward pass took for
          (p, q): which sum over the batch and the positions gives its gradient?
        - b[o] is added to every position of output channel o.
        - each number of x_pad is read by every window that covers it (with stride < K, by several): its gradient
          adds up all their contributions. Build dL/dx_pad, then cut the padding off.
        """
        raise NotImplementedError("exercise conv2d: write Conv2D.backward")

    def parameters(self):
        return [self.W, self.b]

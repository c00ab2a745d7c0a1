"""Exercise upsampling2d: the backward pass of nearest-neighbour upsampling.

Every pixel becomes a ``factor x factor`` block of copies of itself: y[n, c, f i + a, f j + b] = x[n, c, i, j] for
0 <= a, b < f. Write ``backward``: return dL/dx.

Check it with ``scratchae exercises check . upsampling2d``.
"""

from scratchae.layers import Layer


class UpSampling2D(Layer):
    def __init__(self, factor=2):
        self.factor = factor

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, f H, f W)."""
        f = self.factor
        return x.repeat(f, axis=2).repeat(f, axis=3)  # (N, C, f H, f W)

    def backward(self, dy, input_grad=True):
        """dy: (N, C, f H, f W) = dL/dy -> dx: (N, C, H, W) = dL/dx.

        One input number feeds f x f outputs. What does each of them contribute to its gradient? (A reshape to
        (N, C, H, f, W, f) puts each block on two axes of its own.)
        """
        raise NotImplementedError("exercise upsampling2d: write UpSampling2D.backward")

"""The engine's dense layers: the lesson's own elementwise formulas run as one GPU kernel each, and Dense's bias
added in place.

On a GPU each array operation is one kernel launch, and for layers this small the launches, not the arithmetic, take
the time. :func:`scratchae.backend.fused` compiles the *same* Python functions that the lesson's layers call
(:func:`scratchae.layers.sigmoid`, :func:`~scratchae.layers.sigmoid_backward`,
:func:`~scratchae.layers.relu_backward`) into one kernel with ``cupy.fuse``; on NumPy it runs them line by line, as
the lesson does. No formula is written twice.
"""

from __future__ import annotations

from scratchae.backend import fused, get_namespace
from scratchae.layers import Dense, ReLU, Sigmoid, exp_limit, relu_backward, sigmoid, sigmoid_backward

fused_sigmoid = fused(sigmoid)
fused_sigmoid_backward = fused(sigmoid_backward)
fused_relu_backward = fused(relu_backward)


class FastDense(Dense):
    """:class:`scratchae.layers.Dense` that adds its bias into the product's own array (one array fewer a step)."""

    saved_as = "Dense"

    def forward(self, x):
        """x: (N, D_in) -> y: (N, D_out)."""
        self.x = x  # (N, D_in)
        y = x @ self.W.data  # (N, D_out), a fresh array ...
        y += self.b.data  # ... that the bias is added into, in place
        return y


class FastReLU(ReLU):
    """:class:`scratchae.layers.ReLU` whose backward is one fused kernel on a GPU."""

    saved_as = "ReLU"

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D) -> dx: (N, D)."""
        return fused_relu_backward(dy, self.x) if input_grad else None


class FastSigmoid(Sigmoid):
    """:class:`scratchae.layers.Sigmoid` whose forward and backward are one fused kernel each on a GPU."""

    saved_as = "Sigmoid"

    def forward(self, x):
        """x: (N, D) -> y: (N, D) in (0, 1)."""
        limit = exp_limit(get_namespace(x), x.dtype)
        self.y = fused_sigmoid(x, -limit, limit)  # (N, D)
        return self.y

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D) -> dx: (N, D) = dy * y * (1 - y)."""
        return fused_sigmoid_backward(dy, self.y) if input_grad else None

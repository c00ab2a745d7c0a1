"""Exercise sequential: the chain rule through a stack of layers.

A Sequential network applies its layers one after another: x -> layer 0 -> layer 1 -> ... -> y. Its forward pass is
written; write ``backward``, which takes dy = dL/dy and returns dL/dx, asking every layer in turn to do its part.

Check it with ``scratchae exercises check . sequential`` (the layers inside are the library's own).
"""

from scratchae.layers import Layer


class Sequential(Layer):
    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x):
        """x: (N, D_in) -> y: (N, D_out), through every layer in order."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy, input_grad=True):
        """dy: (N, D_out) = dL/dy -> dL/dx: (N, D_in).

        Each layer's ``backward(g)`` takes the gradient with respect to its output, sets the gradients of its own
        parameters and returns the gradient with respect to its input. In which order must the layers be asked, and
        what does each pass to the next? (``input_grad=False`` may be passed on to the first layer: nobody needs the
        gradient of the data. Returning dL/dx anyway is also right.)
        """
        raise NotImplementedError("exercise sequential: write Sequential.backward")

    def parameters(self):
        return [parameter for layer in self.layers for parameter in layer.parameters()]

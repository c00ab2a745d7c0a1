"""Layers with hand-written backpropagation.

Every layer follows one small protocol:

``forward(x)``
    computes the output and keeps in a cache what ``backward`` will need.
``backward(dy, input_grad=True)``
    takes ``dy = dL/dy``, the gradient of the loss with respect to the layer's output, sets the gradient of every
    parameter (``Parameter.grad``, overwritten, never accumulated, so no ``zero_grad`` is needed and a second call
    is harmless) and returns ``dL/dx``. It never modifies ``dy``. With ``input_grad=False`` it skips ``dL/dx`` and
    returns None: the first layer of a network sees only data, and nobody needs the gradient of the data.
``parameters()``
    the list of :class:`Parameter` objects the optimizer updates.

Shapes use ``N`` for the batch size, ``D_in`` and ``D_out`` for feature sizes.

These are the lesson's forms: the simplest correct code, with no check, flag or speed trick on the lines that run
at every step (a model checks its inputs once, at its door). The elementwise formulas (the sigmoid, the derivatives
of the activations) are small functions of their own, so that the engine (:mod:`scratchae.engine.elementwise`) runs
the very same lines as one GPU kernel.
"""

from __future__ import annotations

import math

import numpy

from scratchae.backend import DEFAULT_DTYPE, get_namespace, to_device
from scratchae.validate import require_int

INITS = ("glorot_uniform", "he")


class Parameter:
    """A trainable array and the gradient of the loss with respect to it.

    Attributes
    ----------
    data : array
        The values (for example a weight matrix of shape (D_in, D_out)).
    grad : array or None
        ``dL/data``, same shape as ``data``; set by the owning layer's ``backward``.
    name : str
        A short name such as ``"W"`` or ``"b"``; :meth:`Sequential.named_parameters` prefixes the layer index.
    path : str
        The full name within its model (``"encoder.0.W"``) once the model has listed it, else ``name``: what
        messages about the parameter (an optimizer's) call it.
    """

    def __init__(self, data, name: str):
        self.data = data
        self.grad = None
        self.name = name
        self.path = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self) -> int:
        return math.prod(self.data.shape)

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Layer:
    """Base class of every layer: subclasses define ``forward`` and ``backward``; layers with weights also
    ``parameters``. A layer that forgets one of the two passes fails loudly instead of computing something wrong.
    """

    def forward(self, x):
        """Compute the output for a batch ``x``; cache what ``backward`` needs."""
        raise NotImplementedError(f"the class {type(self).__name__} derives from Layer but does not define forward")

    def backward(self, dy, input_grad: bool = True):
        """Given ``dy = dL/dy``, set the parameter gradients and return ``dL/dx`` (None if not ``input_grad``)."""
        raise NotImplementedError(f"the class {type(self).__name__} derives from Layer but does not define backward")

    def parameters(self) -> list[Parameter]:
        return []

    def output_features(self, input_features: int) -> int:
        """The feature size of the output for a given input feature size (used by ``summary``)."""
        return input_features

    def to(self, device: str | None = None, *, dtype=None):
        """Move every parameter to ``device`` and/or cast it to ``dtype``, in place; returns self."""
        for parameter in self.parameters():
            if device is not None:
                parameter.data = to_device(parameter.data, device)
            if dtype is not None:
                parameter.data = parameter.data.astype(dtype)
            parameter.grad = None
        return self

    def __call__(self, x):
        return self.forward(x)

    def config(self) -> dict:
        """The constructor arguments that rebuild this layer (saved in checkpoints)."""
        return {}

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({arguments})"


class Dense(Layer):
    r"""Fully connected layer: :math:`y = x W + b`.

    Parameters
    ----------
    in_features, out_features : int
        ``D_in`` and ``D_out``.
    init : {"glorot_uniform", "he"}
        ``"glorot_uniform"`` (Keras's default): :math:`W \sim U(-a, a)`, :math:`a = \sqrt{6 / (D_{in} + D_{out})}`.
        ``"he"``: :math:`W \sim N(0, 2 / D_{in})`, suited to ReLU networks. The bias starts at zero either way.
    rng : numpy.random.Generator or int, optional
        Where the initial weights come from; an int is a seed. None draws fresh, unrepeatable weights.
    dtype : dtype
        float32 for training (the default); float64 for gradient checks.
    """

    def __init__(self, in_features: int, out_features: int, *, init: str = "glorot_uniform", rng=None,
                 dtype=DEFAULT_DTYPE):
        self.in_features = require_int("in_features", in_features, minimum=1)
        self.out_features = require_int("out_features", out_features, minimum=1)
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        self.init = init
        rng = numpy.random.default_rng(rng)
        self.W = Parameter(_initial_weights(init, in_features, out_features, rng).astype(dtype), "W")  # (D_in, D_out)
        self.b = Parameter(numpy.zeros(out_features, dtype=dtype), "b")  # (D_out,)
        self.x = None

    def forward(self, x):
        """x: (N, D_in) -> y: (N, D_out)."""
        self.x = x  # (N, D_in), kept for dW
        return x @ self.W.data + self.b.data  # (N, D_out), the bias broadcast over the batch

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D_out) -> dx: (N, D_in); sets W.grad (D_in, D_out) and b.grad (D_out,)."""
        xp = get_namespace(dy)
        self.W.grad = self.x.T @ dy  # (D_in, D_out)  = sum over the batch of x_n^T dy_n
        self.b.grad = xp.sum(dy, axis=0)  # (D_out,)      each bias feeds every sample
        if not input_grad:
            return None
        return dy @ self.W.data.T  # (N, D_in)

    def parameters(self):
        return [self.W, self.b]

    def output_features(self, input_features):
        return self.out_features

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "init": self.init}


def _initial_weights(init: str, fan_in: int, fan_out: int, rng) -> numpy.ndarray:
    if init == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


class ReLU(Layer):
    r"""Rectified linear unit: :math:`y = \max(x, 0)`.

    Its derivative is 1 for :math:`x > 0` and 0 for :math:`x < 0`; at exactly :math:`x = 0` we take 0, as PyTorch
    and TensorFlow do.
    """

    def __init__(self):
        self.x = None

    def forward(self, x):
        """x: (N, D) -> y: (N, D)."""
        xp = get_namespace(x)
        self.x = x  # (N, D)
        return xp.maximum(x, 0.0)  # (N, D)

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D) -> dx: (N, D): the gradient passes where the input was positive."""
        if not input_grad:
            return None
        return relu_backward(get_namespace(dy), dy, self.x)  # (N, D)


def relu_backward(xp, dy, x):
    """dL/dx = dL/dy * ReLU'(x), ReLU'(x) = 1 where x > 0, else 0. dy, x: (N, D) -> (N, D)."""
    return dy * xp.astype(x > 0, dy.dtype)


class Sigmoid(Layer):
    r"""Logistic sigmoid: :math:`y = 1 / (1 + e^{-x})`, squashing any number into (0, 1).

    ``exp(-x)`` overflows for large negative x (below -88.7 in float32), so x is first clipped to :math:`\pm 87`
    (:math:`\pm 708` in float64), where ``exp(-x)`` and ``y`` are still normal floating-point numbers. Beyond that
    range the sigmoid is 0 or 1 to within :math:`10^{-37}`, so the clip changes nothing but the overflow.
    (:math:`\tanh(x/2)/2 + 1/2` is the same function and never overflows, and NumPy's float32 ``tanh`` is faster
    than its ``exp``, but near 0 it rounds: sigmoid(-30) = 9.4e-14 comes out as 0 in float32, as 0.5 - 0.5.)
    The derivative is :math:`y (1 - y)`.
    """

    def __init__(self):
        self.y = None

    def forward(self, x):
        """x: (N, D) -> y: (N, D) in (0, 1)."""
        xp = get_namespace(x)
        limit = exp_limit(xp, x.dtype)
        self.y = sigmoid(xp, x, -limit, limit)  # (N, D), kept: the derivative uses y
        return self.y

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D) -> dx: (N, D) = dy * y * (1 - y)."""
        if not input_grad:
            return None
        return sigmoid_backward(get_namespace(dy), dy, self.y)  # (N, D)


def exp_limit(xp, dtype) -> float:
    """The largest x whose e^x, and e^-x, are normal numbers of ``dtype``: 87 for float32, 708 for float64."""
    return float(math.floor(-math.log(xp.finfo(dtype).smallest_normal)))


def sigmoid(xp, x, low, high):
    """1 / (1 + e^-x), with x clipped to [low, high] so that exp never overflows. x: (N, D) -> (N, D).

    The bounds are passed in, not computed here: in the engine's fused GPU kernel a number computed inside is
    float64, and would make the float32 result float64.
    """
    return 1.0 / (1.0 + xp.exp(-xp.clip(x, low, high)))


def sigmoid_backward(xp, dy, y):
    """dL/dx = dL/dy * sigmoid'(x) = dy * y * (1 - y), from the sigmoid's output y. dy, y: (N, D) -> (N, D)."""
    return dy * y * (1.0 - y)


class Identity(Layer):
    """The identity, :math:`y = x`: a linear latent layer (a Dense layer with no activation after it)."""

    def forward(self, x):
        """x: (N, D) -> y: (N, D)."""
        return x

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D) -> dx = dy: the derivative of the identity is 1."""
        return dy if input_grad else None


class Sequential(Layer):
    """Layers applied one after another; backward runs them in reverse.

    Parameters
    ----------
    layers : list of Layer
    """

    def __init__(self, layers):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential takes Layer objects, got {type(layer).__name__}")
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy, input_grad: bool = True):
        """Chain rule through the layers, last to first. Without ``input_grad`` the chain stops at the first layer
        with parameters, which skips dL/dx: the layers before it (a Reshape at the front of a convolutional network)
        have no gradient to set, and nothing needs theirs."""
        first = 0 if input_grad else next((i for i, layer in enumerate(self.layers) if layer.parameters()), 0)
        for layer in reversed(self.layers[first + 1:]):
            dy = layer.backward(dy)
        return self.layers[first].backward(dy, input_grad=input_grad)

    def parameters(self):
        return [parameter for layer in self.layers for parameter in layer.parameters()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``[("0.W", W of layer 0), ("0.b", b of layer 0), ("2.W", ...), ...]``, in the order of ``parameters()``."""
        return [(f"{index}.{parameter.name}", parameter)
                for index, layer in enumerate(self.layers) for parameter in layer.parameters()]

    def output_features(self, input_features):
        for layer in self.layers:
            input_features = layer.output_features(input_features)
        return input_features

    def __repr__(self):
        inner = "".join(f"\n  ({index}) {layer!r}" for index, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

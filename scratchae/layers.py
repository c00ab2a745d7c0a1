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
"""

from __future__ import annotations

import math

import numpy

from scratchae.backend import DEFAULT_DTYPE, fused_kernel, get_namespace, to_device

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
    """

    def __init__(self, data, name: str):
        self.data = data
        self.grad = None
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self) -> int:
        return math.prod(self.data.shape)

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Layer:
    """Base class: a layer without parameters that passes its input through unchanged.

    Subclasses override ``forward`` and ``backward``; layers with weights also override ``parameters``.
    """

    def forward(self, x):
        """Compute the output for a batch ``x``; cache what ``backward`` needs."""
        return x

    def backward(self, dy, input_grad: bool = True):
        """Given ``dy = dL/dy``, set the parameter gradients and return ``dL/dx`` (None if not ``input_grad``)."""
        return dy if input_grad else None

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


def _require_cache(layer: Layer, cached) -> None:
    if cached is None:
        raise RuntimeError(f"{type(layer).__name__}.backward was called before forward: there is nothing to differentiate")


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
        _require_positive_int("in_features", in_features)
        _require_positive_int("out_features", out_features)
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        self.in_features = in_features
        self.out_features = out_features
        self.init = init
        rng = numpy.random.default_rng(rng)
        self.W = Parameter(_initial_weights(init, in_features, out_features, rng).astype(dtype), "W")  # (D_in, D_out)
        self.b = Parameter(numpy.zeros(out_features, dtype=dtype), "b")  # (D_out,)
        self.x = None

    def forward(self, x):
        """x: (N, D_in) -> y: (N, D_out)."""
        _check_input(self, x, self.in_features, self.W.data)
        self.x = x  # (N, D_in), kept for dW
        y = x @ self.W.data  # (N, D_out)
        y += self.b.data  # (N, D_out), the bias broadcast over the batch; in place, as y is a fresh array
        return y

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D_out) -> dx: (N, D_in); sets W.grad (D_in, D_out) and b.grad (D_out,)."""
        _require_cache(self, self.x)
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
        _require_cache(self, self.x)
        if not input_grad:
            return None
        fused = fused_kernel("relu_backward", dy)
        if fused is not None:  # on a GPU: the line below in one kernel launch instead of three
            return fused(dy, self.x)
        xp = get_namespace(dy)
        return dy * xp.astype(self.x > 0, dy.dtype)  # (N, D), dy times the derivative: 1 where x > 0, else 0


class Sigmoid(Layer):
    r"""Logistic sigmoid: :math:`y = 1 / (1 + e^{-x})`, squashing any number into (0, 1).

    ``exp(-x)`` overflows for large negative x (below -88.7 in float32), so x is first clipped to :math:`\pm 87`
    (:math:`\pm 708` in float64), where ``exp(-x)`` and ``y`` are still normal floating-point numbers. Beyond that
    range the sigmoid is 0 or 1 to within :math:`10^{-37}`, so the clip changes nothing but the overflow.
    (:math:`\tanh(x/2)/2 + 1/2` is the same function and never overflows either, but ``tanh`` costs more than
    ``exp``.) The derivative is :math:`y (1 - y)`.
    """

    def __init__(self):
        self.y = None

    def forward(self, x):
        """x: (N, D) -> y: (N, D) in (0, 1)."""
        xp = get_namespace(x)
        limit = math.floor(-math.log(xp.finfo(x.dtype).smallest_normal))  # 87 for float32, 708 for float64
        fused = fused_kernel("sigmoid", x)
        if fused is not None:  # on a GPU: the line below in one kernel launch instead of five
            self.y = fused(x, limit)
            return self.y
        self.y = 1.0 / (1.0 + xp.exp(-xp.clip(x, -limit, limit)))  # (N, D), kept: the derivative uses y
        return self.y

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D) -> dx: (N, D) = dy * y * (1 - y)."""
        _require_cache(self, self.y)
        if not input_grad:
            return None
        fused = fused_kernel("sigmoid_backward", dy)
        if fused is not None:  # on a GPU: the line below in one kernel launch instead of three
            return fused(dy, self.y)
        return dy * self.y * (1.0 - self.y)  # (N, D)


class Identity(Layer):
    """The identity, :math:`y = x`: a linear latent layer (a Dense layer with no activation after it)."""

    def forward(self, x):
        """x: (N, D) -> y: (N, D)."""
        return x


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
        """Chain rule through the layers, last to first; the first layer skips dL/dx unless ``input_grad``."""
        for layer in reversed(self.layers[1:]):
            dy = layer.backward(dy)
        return self.layers[0].backward(dy, input_grad=input_grad)

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

    def input_features(self) -> int | None:
        """The feature size the first Dense layer expects, or None if there is no Dense layer."""
        for layer in self.layers:
            if isinstance(layer, Dense):
                return layer.in_features
        return None

    def summary_rows(self, input_features: int | None = None) -> list[tuple[str, str, int]]:
        """One ``(layer, output shape, parameter count)`` row per layer."""
        features = input_features if input_features is not None else self.input_features()
        rows = []
        for index, layer in enumerate(self.layers):
            features = layer.output_features(features)
            count = sum(parameter.size for parameter in layer.parameters())
            rows.append((f"{index} {type(layer).__name__}", f"(None, {features})", count))
        return rows

    def summary(self, input_features: int | None = None) -> str:
        """A Keras-style table: layer, output shape, parameter count, and the total."""
        return format_summary(self.summary_rows(input_features))

    def __repr__(self):
        inner = "".join(f"\n  ({index}) {layer!r}" for index, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def format_summary(rows: list[tuple[str, str, int]]) -> str:
    """Lay out ``(layer, output shape, parameter count)`` rows as a text table with a total."""
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(header[0]), *(len(row[0]) for row in rows)) + 2,
              max(len(header[1]), *(len(row[1]) for row in rows)) + 2, 12]
    rule = "-" * sum(widths)
    lines = [rule, f"{header[0]:<{widths[0]}}{header[1]:<{widths[1]}}{header[2]:>{widths[2]}}", "=" * sum(widths)]
    lines += [f"{name:<{widths[0]}}{shape:<{widths[1]}}{count:>{widths[2]},}" for name, shape, count in rows]
    lines += [rule, f"Total params: {sum(row[2] for row in rows):,}", rule]
    return "\n".join(lines)


def _require_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_input(layer: Dense, x, in_features: int, weights) -> None:
    """Shape and dtype checks at the door of a Dense layer: cheap, and they name the problem."""
    if len(x.shape) != 2 or x.shape[1] != in_features:
        raise ValueError(f"{layer!r} expects input of shape (N, {in_features}), got {tuple(x.shape)}")
    if x.dtype != weights.dtype:
        raise TypeError(f"{layer!r} has {weights.dtype} weights but got {x.dtype} input; "
                        f"convert the input with x.astype(...) (mixing dtypes would silently upcast)")


#: The layer classes a saved architecture may name.
LAYER_TYPES = {cls.__name__: cls for cls in (Dense, ReLU, Sigmoid, Identity)}


def layer_from_config(config: dict, dtype=DEFAULT_DTYPE) -> Layer:
    """Rebuild a layer from ``{"type": "Dense", "in_features": ..., ...}`` (weights are loaded separately)."""
    options = dict(config)
    kind = options.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; known types: {', '.join(LAYER_TYPES)}")
    if kind == "Dense":
        return Dense(**options, rng=0, dtype=dtype)
    return LAYER_TYPES[kind](**options)

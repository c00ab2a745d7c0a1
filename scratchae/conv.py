r"""Convolutional layers with hand-written backpropagation: the lesson's second half, read after ``layers.py``.

Every layer here takes and returns image batches of shape ``(N, C, H, W)`` (batch, channels, height, width), as
PyTorch's do, and follows the protocol of :mod:`scratchae.layers` (``forward`` caches, ``backward`` overwrites the
parameter gradients, never modifies ``dy``, and returns None when ``input_grad=False``).

Which way the convolution is computed
-------------------------------------
Deep-learning libraries call *convolution* what mathematicians call *cross-correlation*: the kernel slides over the
input without being flipped,

.. math:: y_{n,o,i,j} = b_o + \sum_{c,p,q} W_{o,c,p,q}\; x_{n,c,\,s i + p,\; s j + q}

(``x`` zero-padded, ``s`` the stride, ``p, q`` the kernel's rows and columns). That is PyTorch's and Keras's
``Conv2D``, so the same weights give the same outputs.

It is computed in two steps. :func:`im2col` lines up, for each output pixel, the ``KH x KW`` input pixels its window
reads: one strided slice of the input per kernel position (p, q). Then ONE matrix product with the weights, seen as
a (C_out, C_in KH KW) matrix, gives every output pixel at once. :func:`col2im` is the transpose of :func:`im2col`: it
adds each lined-up value back where it was read. The backward passes follow:

* ``dW`` is the product of ``dy`` with the same lined-up inputs, summed over the batch;
* ``dx``: every output gradient goes back through the weight that used it, :math:`dx_{c,u,v} = \sum_{o,p,q}
  W_{o,c,p,q}\, dy_{o,(u-p)/s,(v-q)/s}`, which is the transposed product followed by :func:`col2im`. Written as a
  sliding window over ``dy`` (zero-padded and, for stride 2, with zeros between its rows), the window meets ``dy``
  at ``u - p``: the kernel's rows and columns are read in reverse order. So ``dx`` is the convolution of ``dy`` with
  the *flipped* kernel (and the channel axes swapped); :func:`col2im` computes that sum without writing the zeros;
* a transposed convolution is defined as exactly that backward pass (its forward is the transposed product followed
  by :func:`col2im`), so its own backward is the forward of a convolution: :func:`im2col` and a product.

Max pooling lines up its windows the same way, keeps where each window's maximum is (``argmax``), and sends each
window's gradient there. The forms in :mod:`scratchae.engine.conv` compute the same sums faster (fewer copies, one
long row per image, blocks of samples); ``tests/test_engine.py`` checks that they agree with these.

"same" padding follows Keras and TensorFlow: the output has ``ceil(H / stride)`` rows, and when the total padding
this needs is odd, the extra row (and column) goes at the *end*: a stride-2 "same" convolution of 28 rows with a 3 x 3
kernel pads one row below and none above (PyTorch's symmetric ``padding=1`` would pad one on both sides).
"""

from __future__ import annotations

import math

import numpy

from scratchae.backend import DEFAULT_DTYPE, arange_like, full_like_shape, get_namespace
from scratchae.layers import Layer, Parameter
from scratchae.validate import require_int

PADDINGS = ("same", "valid")


# ---------------------------------------------------------------------------------------------------------------
# Sizes and padding


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras's "same" padding of one axis: (before, after) so that the output has ``ceil(size / stride)`` elements;
    an odd total puts the extra element after. 28 rows, kernel 3, stride 2: (0, 1); kernel 3, stride 1: (1, 1)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def axis_padding(size: int, kernel: int, stride: int, padding) -> tuple[int, int]:
    """(before, after) for ``padding`` "same", "valid" or a number of zeros on both sides."""
    if padding == "same":
        return same_padding(size, kernel, stride)
    if padding == "valid":
        return 0, 0
    return padding, padding


def output_size(size: int, kernel: int, stride: int, before: int, after: int) -> int:
    """How many windows of ``kernel`` elements, ``stride`` apart, fit in ``size + before + after`` elements."""
    return (size + before + after - kernel) // stride + 1


def _pair(name: str, value) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1, as (rows, columns)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return require_int(f"{name}[0]", value[0], minimum=1), require_int(f"{name}[1]", value[1], minimum=1)
    size = require_int(name, value, minimum=1)
    return size, size


def _pair_config(pair: tuple[int, int]):
    return pair[0] if pair[0] == pair[1] else list(pair)


def _require_padding(padding, allowed=PADDINGS):
    if isinstance(padding, str):
        if padding not in allowed:
            raise ValueError(f"padding must be one of {', '.join(map(repr, allowed))} or a whole number >= 0, "
                             f"got {padding!r}")
        return padding
    return require_int("padding", padding, minimum=0)


def pad(x, top: int, bottom: int, left: int, right: int, fill_value: float = 0.0):
    """x: (N, C, H, W) -> (N, C, top + H + bottom, left + W + right), the border filled with ``fill_value``."""
    n, c, h, w = x.shape
    padded = full_like_shape((n, c, top + h + bottom, left + w + right), fill_value, x)
    padded[:, :, top:top + h, left:left + w] = x
    return padded


def strided(start: int, count: int, stride: int) -> slice:
    """The slice of ``count`` indices ``start, start + stride, ...``."""
    return slice(start, start + stride * (count - 1) + 1, stride)


def glorot_uniform(shape: tuple, fan_in: int, fan_out: int, rng: numpy.random.Generator) -> numpy.ndarray:
    r"""Keras's default initialisation, :math:`U(-a, a)`, :math:`a = \sqrt{6 / (\text{fan}_{in} + \text{fan}_{out})}`,
    where for a convolution each fan is the number of channels on its side times the kernel's area."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


# ---------------------------------------------------------------------------------------------------------------
# Shapes of image layers


class ShapedLayer(Layer):
    """A layer whose output size depends on the image shape, not on one feature count: ``output_shape`` maps the
    shape of one sample, such as ``(1, 28, 28)``, to the shape of its output (the batch axis left out)."""

    def output_shape(self, input_shape: tuple) -> tuple:
        raise NotImplementedError(f"the class {type(self).__name__} derives from ShapedLayer but does not define "
                                  f"output_shape")

    def output_features(self, input_features: int) -> int:
        raise TypeError(f"{type(self).__name__} works on images: its output size depends on their shape, not only "
                        f"on the number of features; use output_shape((C, H, W))")


def _image_shape(layer: Layer, input_shape, channels: int | None) -> tuple[int, int, int]:
    shape = tuple(int(size) for size in input_shape)
    if len(shape) != 3 or (channels is not None and shape[0] != channels):
        wanted = "C" if channels is None else channels
        raise ValueError(f"{layer!r} expects images of shape ({wanted}, H, W) per sample, got {shape}")
    return shape


# ---------------------------------------------------------------------------------------------------------------
# Lining up the windows ("im2col") and adding them back ("col2im")


def im2col(x_padded, kernel_size: tuple[int, int], stride: int):
    """For each output pixel, the input pixels its window reads, one strided slice per kernel position.

    x_padded: (N, C, H_p, W_p) -> cols: (N, C KH KW, H_out W_out), with
    ``cols[n, (c, p, q), (i, j)] = x_padded[n, c, s i + p, s j + q]``.
    """
    n, c, h_p, w_p = x_padded.shape
    kh, kw = kernel_size
    out_h, out_w = (h_p - kh) // stride + 1, (w_p - kw) // stride + 1
    cols = full_like_shape((n, c, kh, kw, out_h, out_w), None, x_padded)  # every number written below
    for p in range(kh):
        for q in range(kw):  # kernel position (p, q) reads row s i + p, column s j + q of every window
            cols[:, :, p, q, :, :] = x_padded[:, :, strided(p, out_h, stride), strided(q, out_w, stride)]
    return get_namespace(cols).reshape(cols, (n, c * kh * kw, out_h * out_w))


def col2im(cols, padded_shape: tuple, kernel_size: tuple[int, int], stride: int):
    """The transpose of :func:`im2col`: each lined-up value is added back where it was read.

    cols: (N, C KH KW, H_out W_out) -> (N, C, H_p, W_p). Windows overlap when the stride is smaller than the kernel,
    so a pixel read by several windows gets the sum of their values.
    """
    n, c, h_p, w_p = padded_shape
    kh, kw = kernel_size
    out_h, out_w = (h_p - kh) // stride + 1, (w_p - kw) // stride + 1
    cols = get_namespace(cols).reshape(cols, (n, c, kh, kw, out_h, out_w))
    images = full_like_shape(padded_shape, 0.0, cols)  # (N, C, H_p, W_p)
    for p in range(kh):
        for q in range(kw):
            images[:, :, strided(p, out_h, stride), strided(q, out_w, stride)] += cols[:, :, p, q, :, :]
    return images


# ---------------------------------------------------------------------------------------------------------------
# Convolution


class Conv2D(ShapedLayer):
    r"""2-d convolution (cross-correlation, as in PyTorch and Keras):
    :math:`y_{n,o,i,j} = b_o + \sum_{c,p,q} W_{o,c,p,q}\, x_{n,c,\,s i+p,\,s j+q}` over the zero-padded input.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    kernel_size : int or (int, int)
        ``KH, KW``.
    stride : int
        ``s``, the step between windows, in both directions.
    padding : "same", "valid" or int
        "valid": no padding; an int: that many zeros on every side (PyTorch's ``padding``); "same": Keras's rule, an
        output of ``ceil(H / s)`` rows, the extra row of an odd total padding at the end (bottom and right).
    rng : numpy.random.Generator or int, optional
        Where the initial weights come from (glorot-uniform, fans = channels x kernel area; bias 0).
    dtype : dtype
        float32 for training, float64 for gradient checks.

    Attributes
    ----------
    W : Parameter, (C_out, C_in, KH, KW), PyTorch's layout.
    b : Parameter, (C_out,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride: int = 1, padding="same",
                 rng=None, dtype=DEFAULT_DTYPE):
        self.in_channels = require_int("in_channels", in_channels, minimum=1)
        self.out_channels = require_int("out_channels", out_channels, minimum=1)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = require_int("stride", stride, minimum=1)
        self.padding = _require_padding(padding)
        kh, kw = self.kernel_size
        rng = numpy.random.default_rng(rng)
        weights = glorot_uniform((out_channels, in_channels, kh, kw), in_channels * kh * kw, out_channels * kh * kw,
                                 rng)
        self.W = Parameter(weights.astype(dtype), "W")  # (C_out, C_in, KH, KW)
        self.b = Parameter(numpy.zeros(out_channels, dtype=dtype), "b")  # (C_out,)
        self.cache = None

    def paddings(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) for an input of ``height x width``."""
        kh, kw = self.kernel_size
        return (axis_padding(height, kh, self.stride, self.padding),
                axis_padding(width, kw, self.stride, self.padding))

    def output_shape(self, input_shape):
        channels, height, width = _image_shape(self, input_shape, self.in_channels)
        (top, bottom), (left, right) = self.paddings(height, width)
        out_h = output_size(height, self.kernel_size[0], self.stride, top, bottom)
        out_w = output_size(width, self.kernel_size[1], self.stride, left, right)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"{self!r} needs images of at least {self.kernel_size[0]} x {self.kernel_size[1]} "
                             f"after padding, got {height} x {width}")
        return self.out_channels, out_h, out_w

    def forward(self, x):
        """x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out): the lined-up windows times the weights."""
        xp = get_namespace(x)
        n, _, height, width = x.shape
        (top, bottom), (left, right) = self.paddings(height, width)
        x_padded = pad(x, top, bottom, left, right)  # (N, C_in, H_p, W_p)
        cols = im2col(x_padded, self.kernel_size, self.stride)  # (N, C_in KH KW, H_out W_out)
        weights = xp.reshape(self.W.data, (self.out_channels, -1))  # (C_out, C_in KH KW)
        y = weights @ cols + xp.reshape(self.b.data, (-1, 1))  # (N, C_out, H_out W_out): one product
        self.cache = (cols, x_padded.shape, (top, left), (height, width))
        out_h = (x_padded.shape[2] - self.kernel_size[0]) // self.stride + 1
        return xp.reshape(y, (n, self.out_channels, out_h, -1))  # (N, C_out, H_out, W_out)

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W); sets W.grad (C_out, C_in, KH, KW), b.grad (C_out,)."""
        cols, padded_shape, (top, left), (height, width) = self.cache
        xp = get_namespace(dy)
        dy_rows = xp.reshape(dy, (dy.shape[0], self.out_channels, -1))  # (N, C_out, H_out W_out)
        self.b.grad = xp.sum(dy, axis=(0, 2, 3))  # (C_out,): each bias feeds every pixel of its channel
        dw = xp.sum(dy_rows @ xp.matrix_transpose(cols), axis=0)  # (C_out, C_in KH KW), summed over the batch
        self.W.grad = xp.reshape(dw, self.W.shape)  # (C_out, C_in, KH, KW)
        if not input_grad:
            return None
        weights = xp.reshape(self.W.data, (self.out_channels, -1))  # (C_out, C_in KH KW)
        dcols = xp.matrix_transpose(weights) @ dy_rows  # (N, C_in KH KW, H_out W_out): each window's share
        # col2im adds each window's share back where the window read: dy convolved with the FLIPPED kernel
        dx_padded = col2im(dcols, padded_shape, self.kernel_size, self.stride)  # (N, C_in, H_p, W_p)
        return dx_padded[:, :, top:top + height, left:left + width]  # (N, C_in, H, W): the padding dropped

    def parameters(self):
        return [self.W, self.b]

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _pair_config(self.kernel_size), "stride": self.stride, "padding": self.padding}


class ConvTranspose2D(ShapedLayer):
    r"""2-d transposed convolution, as PyTorch's ``ConvTranspose2d``: the backward pass of a :class:`Conv2D` with
    respect to its input, used as a layer. Each input pixel adds its weighted kernel into the output at
    ``s`` times its position:

    .. math:: y_{n,o,\,s i+p-P,\,s j+q-P} \mathrel{+}= \sum_c x_{n,c,i,j}\, W_{c,o,p,q}, \quad + b_o,

    then ``padding`` (``P``) rows and columns are cut from each side. The output has
    ``(H - 1) s - 2P + KH + output_padding`` rows: ``output_padding`` adds rows at the end only, to pick among the
    input sizes that a stride-``s`` convolution maps to the same size (7 -> 14 for stride 2 needs
    ``padding=1, output_padding=1`` with a 3 x 3 kernel, as Keras's "same" transposed convolution).

    Attributes
    ----------
    W : Parameter, (C_in, C_out, KH, KW), PyTorch's layout.
    b : Parameter, (C_out,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride: int = 1, padding: int = 0,
                 output_padding: int = 0, rng=None, dtype=DEFAULT_DTYPE):
        self.in_channels = require_int("in_channels", in_channels, minimum=1)
        self.out_channels = require_int("out_channels", out_channels, minimum=1)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = require_int("stride", stride, minimum=1)
        self.padding = require_int("padding", padding, minimum=0)
        self.output_padding = require_int("output_padding", output_padding, minimum=0)
        if self.output_padding >= self.stride:
            raise ValueError(f"output_padding must be smaller than the stride ({self.stride}), got {output_padding}")
        kh, kw = self.kernel_size
        rng = numpy.random.default_rng(rng)
        weights = glorot_uniform((in_channels, out_channels, kh, kw), in_channels * kh * kw, out_channels * kh * kw,
                                 rng)
        self.W = Parameter(weights.astype(dtype), "W")  # (C_in, C_out, KH, KW)
        self.b = Parameter(numpy.zeros(out_channels, dtype=dtype), "b")  # (C_out,)
        self.cache = None

    def full_size(self, height: int, width: int) -> tuple[int, int]:
        """The rows and columns the kernels cover before ``padding`` is cut: ``(H - 1) s + KH + output_padding``."""
        kh, kw = self.kernel_size
        return ((height - 1) * self.stride + kh + self.output_padding,
                (width - 1) * self.stride + kw + self.output_padding)

    def output_shape(self, input_shape):
        _, height, width = _image_shape(self, input_shape, self.in_channels)
        full_h, full_w = self.full_size(height, width)
        out_h, out_w = full_h - 2 * self.padding, full_w - 2 * self.padding
        if out_h < 1 or out_w < 1:
            raise ValueError(f"{self!r} would cut more than the whole output from {height} x {width} images")
        return self.out_channels, out_h, out_w

    def forward(self, x):
        """x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out): every pixel's weighted kernel, added in place."""
        xp = get_namespace(x)
        n, _, height, width = x.shape
        full_shape = (n, self.out_channels, *self.full_size(height, width))  # (N, C_out, H_full, W_full)
        x_rows = xp.reshape(x, (n, self.in_channels, height * width))  # (N, C_in, H W)
        weights = xp.reshape(self.W.data, (self.in_channels, -1))  # (C_in, C_out KH KW)
        cols = xp.matrix_transpose(weights) @ x_rows  # (N, C_out KH KW, H W): each pixel's kernel, weighted
        y_full = col2im(cols, full_shape, self.kernel_size, self.stride)  # (N, C_out, H_full, W_full)
        self.cache = (x_rows, full_shape, (height, width))
        p = self.padding
        y = y_full[:, :, p:full_shape[2] - p, p:full_shape[3] - p]  # (N, C_out, H_out, W_out): the padding cut
        return y + xp.reshape(self.b.data, (-1, 1, 1))  # (N, C_out, H_out, W_out)

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W); sets W.grad (C_in, C_out, KH, KW), b.grad (C_out,).

        The forward added each pixel's kernel into the output; the backward reads the output gradient back through
        the same windows: :func:`im2col` of ``dy`` (put back where the padding was cut) and a product, a plain
        convolution.
        """
        x_rows, full_shape, (height, width) = self.cache
        xp = get_namespace(dy)
        p, full_h, full_w = self.padding, full_shape[2], full_shape[3]
        dy_full = pad(dy, p, full_h - p - dy.shape[2], p, full_w - p - dy.shape[3])  # (N, C_out, H_full, W_full)
        dcols = im2col(dy_full, self.kernel_size, self.stride)  # (N, C_out KH KW, H W)
        self.b.grad = xp.sum(dy, axis=(0, 2, 3))  # (C_out,)
        dw = xp.sum(x_rows @ xp.matrix_transpose(dcols), axis=0)  # (C_in, C_out KH KW), summed over the batch
        self.W.grad = xp.reshape(dw, self.W.shape)  # (C_in, C_out, KH, KW)
        if not input_grad:
            return None
        weights = xp.reshape(self.W.data, (self.in_channels, -1))  # (C_in, C_out KH KW)
        dx = weights @ dcols  # (N, C_in, H W)
        return xp.reshape(dx, (dy.shape[0], self.in_channels, height, width))  # (N, C_in, H, W)

    def parameters(self):
        return [self.W, self.b]

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _pair_config(self.kernel_size), "stride": self.stride, "padding": self.padding,
                "output_padding": self.output_padding}


# ---------------------------------------------------------------------------------------------------------------
# Pooling and upsampling


class MaxPool2D(ShapedLayer):
    r"""Max pooling: each output pixel is the largest input in its ``pool_size x pool_size`` window,
    :math:`y_{n,c,i,j} = \max_{p,q} x_{n,c,\,s i+p,\,s j+q}`.

    Parameters
    ----------
    pool_size : int
        ``K``, the window's side.
    stride : int, optional
        ``s``, the step between windows; None means ``pool_size`` (windows side by side). A stride smaller than the
        window makes windows overlap, and one input can then be the maximum of several windows.
    padding : "valid" or "same"
        "valid": only whole windows. "same": ``ceil(H / s)`` output rows, as Keras: the missing rows and columns are
        added as :math:`-\infty` (never a maximum), the extra one of an odd total at the end, so 7 rows pooled by 2
        give 4, the last window holding row 6 alone.

    The derivative of a maximum is 1 for the input that is the maximum and 0 for the others. When several inputs of
    a window tie for the maximum, the whole gradient goes to ONE of them, the first in reading order (row by row,
    left to right), as PyTorch does: ``argmax`` returns the first.
    """

    def __init__(self, pool_size: int = 2, *, stride: int | None = None, padding: str = "valid"):
        self.pool_size = require_int("pool_size", pool_size, minimum=1)
        self.stride = self.pool_size if stride is None else require_int("stride", stride, minimum=1)
        self.padding = _require_padding(padding)
        if not isinstance(self.padding, str):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.cache = None

    def paddings(self, height: int, width: int):
        return (axis_padding(height, self.pool_size, self.stride, self.padding),
                axis_padding(width, self.pool_size, self.stride, self.padding))

    def output_shape(self, input_shape):
        channels, height, width = _image_shape(self, input_shape, None)
        (top, bottom), (left, right) = self.paddings(height, width)
        out_h = output_size(height, self.pool_size, self.stride, top, bottom)
        out_w = output_size(width, self.pool_size, self.stride, left, right)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"{self!r} needs images of at least {self.pool_size} x {self.pool_size}, "
                             f"got {height} x {width}")
        return channels, out_h, out_w

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, H_out, W_out), the maximum of each window; keeps where it is."""
        xp = get_namespace(x)
        n, c, height, width = x.shape
        (top, bottom), (left, right) = self.paddings(height, width)
        x_padded = pad(x, top, bottom, left, right, fill_value=-math.inf)  # (N, C, H_p, W_p)
        one_channel = xp.reshape(x_padded, (n * c, 1, *x_padded.shape[2:]))  # (N C, 1, H_p, W_p)
        windows = im2col(one_channel, (self.pool_size, self.pool_size), self.stride)  # (N C, K K, H_out W_out)
        where = xp.argmax(windows, axis=1)  # (N C, H_out W_out): the first maximum of each window
        y = xp.max(windows, axis=1)  # (N C, H_out W_out)
        self.cache = (where, one_channel.shape, (top, left), tuple(x.shape))
        out_h = (x_padded.shape[2] - self.pool_size) // self.stride + 1
        return xp.reshape(y, (n, c, out_h, -1))  # (N, C, H_out, W_out)

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C, H_out, W_out) -> dx: (N, C, H, W): each window's gradient goes to its (first) maximum."""
        if not input_grad:
            return None
        where, padded_shape, (top, left), (n, c, height, width) = self.cache
        xp = get_namespace(dy)
        positions = arange_like(self.pool_size**2, dy)  # (K K,): the positions in a window
        is_max = xp.reshape(positions, (1, -1, 1)) == xp.reshape(where, (n * c, 1, -1))  # (N C, K K, H_out W_out)
        dwindows = xp.astype(is_max, dy.dtype) * xp.reshape(dy, (n * c, 1, -1))  # dy at the maximum, 0 elsewhere
        dx_padded = col2im(dwindows, padded_shape, (self.pool_size, self.pool_size), self.stride)  # (N C, 1, H_p, W_p)
        dx_padded = xp.reshape(dx_padded, (n, c, *padded_shape[2:]))  # (N, C, H_p, W_p)
        return dx_padded[:, :, top:top + height, left:left + width]  # (N, C, H, W)

    def config(self):
        return {"pool_size": self.pool_size, "stride": self.stride, "padding": self.padding}


class UpSampling2D(ShapedLayer):
    r"""Nearest-neighbour upsampling: every pixel becomes a ``factor x factor`` block of copies,
    :math:`y_{n,c,\,f i+a,\,f j+b} = x_{n,c,i,j}` for :math:`0 \le a, b < f`.

    Each input feeds ``f * f`` outputs, so its gradient is the SUM of the gradients of its whole block (taking one
    of them, as some from-scratch code does, is wrong by a factor of about ``f * f``).
    """

    def __init__(self, factor: int = 2):
        self.factor = require_int("factor", factor, minimum=1)
        self.input_shape = None

    def output_shape(self, input_shape):
        channels, height, width = _image_shape(self, input_shape, None)
        return channels, height * self.factor, width * self.factor

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, f H, f W): each pixel copied to the f x f block at (f i, f j)."""
        xp = get_namespace(x)
        n, c, height, width = x.shape
        f = self.factor
        blocks = xp.broadcast_to(x[:, :, :, None, :, None], (n, c, height, f, width, f))  # (N, C, H, f, W, f)
        self.input_shape = tuple(x.shape)
        return xp.reshape(blocks, (n, c, height * f, width * f))  # (N, C, f H, f W)

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C, f H, f W) -> dx: (N, C, H, W), the sum of each f x f block."""
        if not input_grad:
            return None
        xp = get_namespace(dy)
        n, c, height, width = self.input_shape
        f = self.factor
        blocks = xp.reshape(dy, (n, c, height, f, width, f))  # (N, C, H, f, W, f)
        return xp.sum(blocks, axis=(3, 5))  # (N, C, H, W): every copy's gradient added back to its pixel

    def config(self):
        return {"factor": self.factor}


# ---------------------------------------------------------------------------------------------------------------
# Between images and flat vectors


class Flatten(ShapedLayer):
    """(N, C, H, W), or any (N, ...), -> (N, C * H * W): the images as rows of features for a Dense layer."""

    def __init__(self):
        self.input_shape = None

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def output_features(self, input_features):
        return input_features

    def forward(self, x):
        """x: (N, ...) -> y: (N, D), D the product of the other sizes."""
        self.input_shape = tuple(x.shape)
        return get_namespace(x).reshape(x, (x.shape[0], -1))

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, D) -> dx: (N, ...), the same numbers in the input's shape."""
        return get_namespace(dy).reshape(dy, self.input_shape) if input_grad else None


class Reshape(ShapedLayer):
    """(N, ...) -> (N, *shape): flat rows of features as images, e.g. ``Reshape((1, 28, 28))`` for (N, 784)
    MNIST batches."""

    def __init__(self, shape):
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) == 0:
            raise ValueError(f"shape must be a sequence of whole numbers >= 1, such as (1, 28, 28), got {shape!r}")
        self.shape = tuple(require_int(f"shape[{i}]", size, minimum=1) for i, size in enumerate(shape))
        self.input_shape = None

    def output_shape(self, input_shape):
        if math.prod(input_shape) != math.prod(self.shape):
            raise ValueError(f"{self!r} cannot reshape samples of shape {tuple(input_shape)} "
                             f"({math.prod(input_shape)} numbers) to {self.shape} ({math.prod(self.shape)} numbers)")
        return self.shape

    def output_features(self, input_features):
        self.output_shape((input_features,))
        return input_features

    def forward(self, x):
        """x: (N, ...) -> y: (N, *shape)."""
        self.input_shape = tuple(x.shape)
        return get_namespace(x).reshape(x, (x.shape[0], *self.shape))

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, *shape) -> dx: (N, ...), the input's shape."""
        return get_namespace(dy).reshape(dy, self.input_shape) if input_grad else None

    def config(self):
        return {"shape": list(self.shape)}

r"""The engine's convolution layers: the lesson's layers of :mod:`scratchae.conv`, computed faster.

Each class here is a drop-in for the lesson class it derives from: the same constructor, weights, configuration
and checkpoint entries, the same protocol, and the same sums, grouped and copied differently (``tests/test_engine.py``
compares every one with its lesson form in float64). ``fast=True`` on a builder, :func:`scratchae.engine.forms.fast`
or ``checkpoint.load(..., fast=True)`` put them in a model.

The sums are the lesson's (its module docstring derives them): a copy step that lines up, for each output pixel, the
input pixels its window reads (:func:`taps`, this module's "im2col"), one product, and the copy step's transpose
(:func:`add_taps`, "col2im"), which the backward passes use, the flip of the kernel included.

These choices make it fast without changing a number of the sum above (the tests compare every layer with plain loops
over pixels, with PyTorch, and with numerical gradients):

* **Copies on the side with fewer channels.** The copy step multiplies the data by ``KH * KW``. When a layer has
  more input than output channels, :class:`Conv2D` multiplies first, at every input pixel, and then adds the shifted
  products (:func:`sum_taps`): the same terms of the same sum, grouped the other way, and the copies are of
  ``C_out`` channels instead of ``C_in``.
* **Images stored as one long row.** Pixel (u, v) of a padded image with rows of ``W_p`` numbers sits at
  ``u W_p + v``, so kernel position (p, q) is one shift, ``p W_p + q``, and its copy is ONE slice of that row rather
  than a short slice per image row (a copy's cost is mostly per slice, not per number). The output is computed on a
  grid as wide as the input's rows, and the columns beyond ``W_out``, which wrap around into the next row, are
  dropped (forward) or given zero gradient (backward). A stride ``s`` becomes a shift too: the padded image is split
  into its ``s x s`` phases (:func:`as_phases`; the pixels whose row and column leave the remainders a and b when
  divided by s), and kernel position (p, q) reads phase (p mod s, q mod s), shifted by (p // s, q // s).
* **One matrix product per sample.** The weight gradient is the sum over the batch of one (C_out x pixels) @
  (pixels x C_in KH KW) product per sample, not one product over all the batch's pixels: BLAS runs such long, thin
  products several times slower than many small ones.
* **A block of samples at a time** where the intermediate arrays are large (:func:`sample_blocks`): the products
  of every kernel position, or the copies, of a batch of 128 take megabytes (30 for the VAE's 64 -> 32 layer), that
  the next step would read back from main memory; those of a few samples are still in the processor's cache. Each
  sample's numbers are the same; only the weight gradient, a sum over the samples, is added up block by block.

"same" padding follows Keras and TensorFlow: the output has ``ceil(H / stride)`` rows, and when the total padding
this needs is odd, the extra row (and column) goes at the *end*: a stride-2 "same" convolution of 28 rows with a 3 x 3
kernel pads one row below and none above (PyTorch's symmetric ``padding=1`` would pad one on both sides).
"""

from __future__ import annotations

import math

from scratchae.backend import full_like_shape, get_namespace
from scratchae.conv import Conv2D, ConvTranspose2D, MaxPool2D, UpSampling2D, strided
from scratchae.conv import pad as padded_copy


def pad(x, top: int, bottom: int, left: int, right: int, fill_value: float = 0.0):
    """:func:`scratchae.conv.pad`, but ``x`` itself (no copy) when there is nothing to add."""
    if top == bottom == left == right == 0:
        return x
    return padded_copy(x, top, bottom, left, right, fill_value)


# ---------------------------------------------------------------------------------------------------------------
# The copy steps of every convolution, on images stored as one long row


def as_rows(images, row_length: int, rows: int):
    """Store each image as one long row: (N, C, H, W) -> (N, C, rows * row_length), pixel (u, v) at
    ``u * row_length + v``; the columns right of W and the rows below H are zeros."""
    n, c, height, width = images.shape
    padded = pad(images, 0, rows - height, 0, row_length - width)  # (N, C, rows, row_length)
    return get_namespace(images).reshape(padded, (n, c, rows * row_length))


def from_rows(flat, row_length: int, height: int, width: int):
    """The inverse of :func:`as_rows`: (N, C, S) -> the (N, C, height, width) image at its top left (a view)."""
    n, c = flat.shape[0], flat.shape[1]
    rows = get_namespace(flat).reshape(flat, (n, c, flat.shape[2] // row_length, row_length))
    return rows[:, :, :height, :width]


def as_phases(images, stride: int):
    """Split each image into its ``s x s`` phases, each stored as one long row, one after the other.

    images: (N, C, s R, s W) -> (N, C, s * s * R * W). Phase (a, b) holds the pixels (s u + a, s v + b), at
    ``(a s + b) R W + u W + v``. With stride 1 this is the image itself, as one long row (no copy).
    """
    xp = get_namespace(images)
    n, c, height, width = images.shape
    if stride == 1:
        return xp.reshape(images, (n, c, height * width))
    split = xp.reshape(images, (n, c, height // stride, stride, width // stride, stride))  # (N, C, R, s, W, s)
    phases = xp.permute_dims(split, (0, 1, 3, 5, 2, 4))  # (N, C, s, s, R, W)
    return xp.reshape(phases, (n, c, height * width))


def from_phases(flat, stride: int, rows: int, row_length: int):
    """The inverse of :func:`as_phases`: (N, C, s * s * rows * row_length) -> (N, C, s rows, s row_length).

    Phase (a, b) goes to rows a, a + s, ... and columns b, b + s, ...: s * s strided copies, each moving whole
    rows of the phase (the transposed reshape that mirrors :func:`as_phases` would copy runs of s numbers, several
    times slower).
    """
    xp = get_namespace(flat)
    n, c = flat.shape[0], flat.shape[1]
    if stride == 1:
        return xp.reshape(flat, (n, c, rows, row_length))
    phases = xp.reshape(flat, (n, c, stride, stride, rows, row_length))  # (N, C, s, s, R, W)
    images = full_like_shape((n, c, stride * rows, stride * row_length), None, flat)  # each number written below
    for a in range(stride):
        for b in range(stride):
            images[:, :, a::stride, b::stride] = phases[:, :, a, b, :, :]  # (N, C, R, W)
    return images


def tap_offsets(kh: int, kw: int, stride: int, rows: int, row_length: int) -> list[int]:
    """Where kernel position (p, q) starts reading, in images stored by :func:`as_phases` (phases of ``rows`` rows
    of ``row_length``): output pixel (i, j) reads pixel (s i + p, s j + q), which is pixel
    (i + p // s, j + q // s) of phase (p % s, q % s). So, for output pixel ``k = i * row_length + j``, position
    (p, q) reads ``k + offset``: one shift per kernel position, the same for every output pixel."""
    s = stride
    return [((p % s) * s + q % s) * rows * row_length + (p // s) * row_length + q // s
            for p in range(kh) for q in range(kw)]


def taps(flat, offsets: list[int], length: int):
    """Line up, for each output pixel, the pixels its kernel positions read ("im2col").

    flat: (N, C, S), images stored by :func:`as_phases` -> cols: (N, C * T, length), T = len(offsets),
    ``cols[n, (c, t), k] = flat[n, c, k + offsets[t]]``.

    The output pixel (i, j) is ``k = i * row_length + j`` on a grid as wide as the input's (phases') rows, so each
    kernel position copies ONE run of ``length`` consecutive numbers, not a short piece of every image row. The
    grid's columns ``j >= W_out`` wrap around into the next row: they are computed, never used, and get zero
    gradient.
    """
    n, c = flat.shape[0], flat.shape[1]
    cols = full_like_shape((n, c, len(offsets), length), None, flat)  # (N, C, T, length)
    for t, offset in enumerate(offsets):
        cols[:, :, t, :] = flat[:, :, offset:offset + length]  # (N, C, length)
    return get_namespace(flat).reshape(cols, (n, c * len(offsets), length))


def add_taps(cols, channels: int, offsets: list[int], size: int):
    """The transpose of :func:`taps` ("col2im"): add each lined-up value back where it was read.

    cols: (N, C * T, length) -> flat: (N, C, size), ``flat[n, c, k + offsets[t]] += cols[n, (c, t), k]``.

    The first kernel position is written, not added to zeros: only the numbers it does not reach are zeroed first
    (the same sum, as 0 + a = a exactly, with one pass over the result fewer).
    """
    xp = get_namespace(cols)
    n, length = cols.shape[0], cols.shape[2]
    cols = xp.reshape(cols, (n, channels, len(offsets), length))  # (N, C, T, length)
    flat = full_like_shape((n, channels, size), None, cols)  # (N, C, size), every number written below
    first = offsets[0]
    flat[:, :, :first] = 0.0
    flat[:, :, first:first + length] = cols[:, :, 0, :]  # (N, C, length)
    flat[:, :, first + length:] = 0.0
    for t in range(1, len(offsets)):
        flat[:, :, offsets[t]:offsets[t] + length] += cols[:, :, t, :]  # (N, C, length)
    return flat


def sum_taps(z, channels: int, offsets: list[int], length: int):
    """Add up, for each output pixel, the products its kernel positions made where they read: the second step of a
    convolution computed "product first".

    z: (N, C * T, S), ``z[n, (o, t), m]`` the product of kernel position t with the input at m ->
    y: (N, C, length), ``y[n, o, k] = sum over t of z[n, (o, t), k + offsets[t]]``.
    """
    xp = get_namespace(z)
    n = z.shape[0]
    z = xp.reshape(z, (n, channels, len(offsets), z.shape[2]))  # (N, C, T, S)
    y = z[:, :, 0, offsets[0]:offsets[0] + length] + 0.0  # (N, C, length), a fresh array ...
    for t in range(1, len(offsets)):
        y += z[:, :, t, offsets[t]:offsets[t] + length]  # ... that the other kernel positions add into
    return y


def spread_taps(dy, offsets: list[int], size: int):
    """The transpose of :func:`sum_taps`: each output pixel's gradient goes to the products it summed.

    dy: (N, C, length) -> dz: (N, C * T, size), ``dz[n, (o, t), k + offsets[t]] = dy[n, o, k]``, zero where no
    output pixel read.
    """
    n, c, length = dy.shape
    dz = full_like_shape((n, c, len(offsets), size), None, dy)  # (N, C, T, size), each number written once below
    for t, offset in enumerate(offsets):
        dz[:, :, t, :offset] = 0.0
        dz[:, :, t, offset:offset + length] = dy  # (N, C, length)
        dz[:, :, t, offset + length:] = 0.0
    return get_namespace(dy).reshape(dz, (n, c * len(offsets), size))


def sample_blocks(n: int, numbers_per_sample: int, joined_per_sample: int, budget: int = 2**19):
    """The batch's samples in consecutive blocks, as slices: as many samples a block as keep ``numbers_per_sample``
    numbers (a sample's largest intermediate array) within ``budget`` (2**19, 2 MB of float32), at least one.

    A layer whose intermediate arrays are large (the 64 -> 32 transposed convolution of the VAE makes 240 KB of
    products a sample, 30 MB for a batch of 128) computes a block at a time: each array is then read back by the
    next step while it is still in the processor's cache instead of from main memory (that layer takes 0.55 to
    0.65 of its time for the whole batch at once). Every output number is computed from the same numbers as for
    the whole batch; only a sum over the batch (a weight gradient) is added up block by block. Joining the blocks'
    results (``joined_per_sample`` numbers a sample) copies them once, which pays only when the intermediate array
    is the larger: otherwise the whole batch is one block.
    """
    if numbers_per_sample <= joined_per_sample:
        return [slice(0, n)]
    block = max(1, budget // numbers_per_sample)
    return [slice(start, min(start + block, n)) for start in range(0, n, block)]


def join_blocks(blocks: list):
    """The results of :func:`sample_blocks`' blocks, one after the other along the batch axis (no copy for one)."""
    if len(blocks) == 1:
        return blocks[0]
    first = blocks[0]
    joined = full_like_shape((sum(block.shape[0] for block in blocks), *first.shape[1:]), None, first)
    start = 0
    for block in blocks:
        joined[start:start + block.shape[0], ...] = block
        start += block.shape[0]
    return joined


def maximum_of(slices: list):
    """The elementwise maximum of equally shaped arrays, by pairwise maxima, as a fresh array."""
    xp = get_namespace(slices[0])
    if len(slices) == 1:
        return slices[0] + 0.0  # a copy: the slices may be views of the input
    largest = xp.maximum(slices[0], slices[1])
    for more in slices[2:]:
        largest = xp.maximum(largest, more)
    return largest


def sum_of(slices: list):
    """The elementwise sum of equally shaped arrays, by pairwise adds, as a fresh array."""
    if len(slices) == 1:
        return slices[0] + 0.0  # a copy: the slices may be views of the input
    total = slices[0] + slices[1]
    for more in slices[2:]:
        total += more  # in place: total is ours
    return total


# ---------------------------------------------------------------------------------------------------------------
# The layers


class FastConv2D(Conv2D):
    """:class:`scratchae.conv.Conv2D`, with the copies on the side with fewer channels, images as one long row,
    phases for strides, one product per sample and blocks of samples (see the module's docstring)."""

    saved_as = "Conv2D"

    @property
    def expands_input(self) -> bool:
        """Which of two equal ways the convolution is computed (see the class docstring): copy the input's
        ``KH * KW`` shifts and multiply ("im2col", when C_in <= C_out), or multiply first and add the shifted
        products (when C_in > C_out). Either way the copies are made on the side with fewer channels."""
        return self.in_channels <= self.out_channels

    def forward(self, x):
        """x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out)."""
        xp = get_namespace(x)
        n, _, height, width = x.shape
        _, out_h, out_w = self.output_shape(x.shape[1:])
        (top, bottom), (left, right) = self.paddings(height, width)
        kh, kw = self.kernel_size
        s = self.stride
        row = -(-(left + width + right) // s)  # the row length of each phase (W_p itself for stride 1)
        rows = max(out_h + (kh - 1) // s + 1, -(-(top + height + bottom) // s))  # enough rows for every run
        x_padded = pad(x, top, s * rows - top - height, left, s * row - left - width)  # (N, C_in, s rows, s row)
        x_flat = as_phases(x_padded, s)  # (N, C_in, S), each image (each phase) one long row
        offsets, length = tap_offsets(kh, kw, s, rows, row), out_h * row  # the output grid: H_out rows of `row`
        if self.expands_input:
            cols = taps(x_flat, offsets, length)  # (N, C_in KH KW, L)
            y = xp.matmul(self._weight_rows(), cols)  # (N, C_out, L), one product per sample
            self.cache = (cols, row, rows, (top, left), (height, width))
        else:
            y_blocks = []
            for part in sample_blocks(n, self.out_channels * kh * kw * x_flat.shape[2], self.out_channels * length):
                z = xp.matmul(self._weight_columns(), x_flat[part, ...])  # (B, C_out KH KW, S): every tap, pixel
                y_blocks.append(sum_taps(z, self.out_channels, offsets, length))  # (B, C_out, L)
            y = join_blocks(y_blocks)  # (N, C_out, L)
            self.cache = (x_flat, row, rows, (top, left), (height, width))
        y += xp.reshape(self.b.data, (self.out_channels, 1))  # (N, C_out, L), in place (y is ours), in one pass
        return from_rows(y, row, out_h, out_w)  # (N, C_out, H_out, W_out): the grid's extra columns dropped (a view)

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W); sets W.grad (C_out, C_in, KH, KW), b.grad (C_out,).

        Each step of the forward is undone by its transpose, in reverse order. For dx that makes a convolution of
        ``dy`` with the flipped kernel (see the module's docstring), computed without writing its zeros. The steps
        with large intermediate arrays go a block of samples at a time (:func:`sample_blocks`); the weight gradient
        is then summed over the blocks as over the samples.
        """
        saved, row, rows, (top, left), (height, width) = self.cache
        xp = get_namespace(dy)
        n, _, out_h, _ = dy.shape
        kh, kw = self.kernel_size
        offsets, size = tap_offsets(kh, kw, self.stride, rows, row), self.stride**2 * rows * row
        self.b.grad = xp.sum(dy, axis=(0, 2, 3))  # (C_out,), each bias feeds every output pixel of its channel
        dy_rows = as_rows(dy, row, out_h)  # (N, C_out, L), zero at the grid's extra columns
        if self.expands_input:
            cols = saved  # (N, C_in KH KW, L)
            per_sample = xp.matmul(dy_rows, xp.matrix_transpose(cols))  # (N, C_out, C_in KH KW)
            self.W.grad = xp.reshape(xp.sum(per_sample, axis=0), self.W.shape)  # (C_out, C_in, KH, KW)
            if not input_grad:
                return None
            dx_blocks = []
            for part in sample_blocks(n, cols.shape[1] * cols.shape[2], self.in_channels * size):
                dcols = xp.matmul(self._weight_rows().T, dy_rows[part, ...])  # (B, C_in KH KW, L)
                dx_blocks.append(add_taps(dcols, self.in_channels, offsets, size))  # (B, C_in, S)
        else:
            x_flat = saved  # (N, C_in, S)
            dw_columns, dx_blocks = None, []  # (C_out KH KW, C_in), summed over the blocks
            joined = self.in_channels * size if input_grad else 0  # dx
            for part in sample_blocks(n, self.out_channels * kh * kw * size, joined):
                dz = spread_taps(dy_rows[part, ...], offsets, size)  # (B, C_out KH KW, S)
                per_sample = xp.matmul(dz, xp.matrix_transpose(x_flat[part, ...]))  # (B, C_out KH KW, C_in)
                block_sum = xp.sum(per_sample, axis=0)  # (C_out KH KW, C_in)
                dw_columns = block_sum if dw_columns is None else dw_columns + block_sum
                if input_grad:
                    dx_blocks.append(xp.matmul(self._weight_columns().T, dz))  # (B, C_in, S)
            dw = xp.reshape(dw_columns, (self.out_channels, kh, kw, self.in_channels))  # (C_out, KH, KW, C_in)
            self.W.grad = xp.permute_dims(dw, (0, 3, 1, 2))  # (C_out, C_in, KH, KW)
            if not input_grad:
                return None
        dx_flat = join_blocks(dx_blocks)  # (N, C_in, S)
        dx_padded = from_phases(dx_flat, self.stride, rows, row)  # (N, C_in, s rows, s row)
        return dx_padded[:, :, top:top + height, left:left + width]  # (N, C_in, H, W)

    def _weight_rows(self):
        """W as one row per output channel: (C_out, C_in KH KW), the layout of :func:`taps`' columns."""
        return get_namespace(self.W.data).reshape(self.W.data, (self.out_channels, -1))

    def _weight_columns(self):
        """W as one row per (output channel, kernel position): (C_out KH KW, C_in), for the product first."""
        xp = get_namespace(self.W.data)
        by_tap = xp.permute_dims(self.W.data, (0, 2, 3, 1))  # (C_out, KH, KW, C_in)
        return xp.reshape(by_tap, (-1, self.in_channels))  # (C_out KH KW, C_in)


class FastConvTranspose2D(ConvTranspose2D):
    """:class:`scratchae.conv.ConvTranspose2D` on images stored as one long row, a block of samples at a time."""

    saved_as = "ConvTranspose2D"

    def forward(self, x):
        """x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out), a block of samples at a time (see
        :func:`sample_blocks`)."""
        xp = get_namespace(x)
        n, _, height, width = x.shape
        _, out_h, out_w = self.output_shape(x.shape[1:])
        kh, kw = self.kernel_size
        full_h, full_w = self.full_size(height, width)
        s = self.stride
        row = -(-full_w // s)  # the row length of each phase of the uncut output
        rows = max(height + (kh - 1) // s + 1, -(-full_h // s))  # enough rows for every run
        offsets = tap_offsets(kh, kw, s, rows, row)
        x_rows = as_rows(x, row, height)  # (N, C_in, H row): pixel (i, j) at i * row + j, zeros right of W
        weights = xp.reshape(self.W.data, (self.in_channels, self.out_channels * kh * kw))  # (C_in, C_out KH KW)
        bias = xp.reshape(self.b.data, (self.out_channels, 1, 1))  # (C_out, 1, 1)
        y_blocks = []
        joined = self.out_channels * s * s * rows * row  # y_full
        for part in sample_blocks(n, self.out_channels * kh * kw * height * row, joined):
            contributions = xp.matmul(weights.T, x_rows[part, ...])  # (B, C_out KH KW, H row): each pixel's kernel
            y_flat = add_taps(contributions, self.out_channels, offsets,
                              s * s * rows * row)  # (B, C_out, S), pixel (i, j) added at (s i + p, s j + q)
            y_blocks.append(from_phases(y_flat, s, rows, row))  # (B, C_out, s rows, s row)
        y_full = join_blocks(y_blocks)  # (N, C_out, s rows, s row)
        y_full += bias  # in place (y_full is ours), in one pass
        self.cache = (x_rows, row, rows, (height, width))
        p = self.padding
        return y_full[:, :, p:p + out_h, p:p + out_w]  # (N, C_out, H_out, W_out): the padding cut (a view)

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W); sets W.grad (C_in, C_out, KH, KW), b.grad (C_out,).

        The forward added each pixel's kernel into the output; the backward reads the output gradient back through
        the same windows: :func:`taps` of ``dy`` (put back where the padding was cut) and a product, a plain
        convolution. A block of samples at a time, as the forward; the weight gradient is summed over the blocks
        as over the samples.
        """
        x_rows, row, rows, (height, width) = self.cache  # (N, C_in, H row)
        xp = get_namespace(dy)
        n, _, out_h, out_w = dy.shape
        kh, kw = self.kernel_size
        p = self.padding
        s = self.stride
        offsets = tap_offsets(kh, kw, s, rows, row)
        weights = xp.reshape(self.W.data, (self.in_channels, self.out_channels * kh * kw))  # (C_in, C_out KH KW)
        dx_blocks = []
        dw = None  # (C_in, C_out KH KW), summed over the blocks
        joined = self.in_channels * height * row if input_grad else 0  # dx
        for part in sample_blocks(n, self.out_channels * kh * kw * height * row, joined):
            dy_full = pad(dy[part, ...], p, s * rows - p - out_h, p, s * row - p - out_w)  # (B, C_out, s rows, s row)
            dy_flat = as_phases(dy_full, s)  # (B, C_out, S)
            dcols = taps(dy_flat, offsets, height * row)  # (B, C_out KH KW, H row)
            per_sample = xp.matmul(x_rows[part, ...], xp.matrix_transpose(dcols))  # (B, C_in, C_out KH KW)
            dw = xp.sum(per_sample, axis=0) if dw is None else dw + xp.sum(per_sample, axis=0)  # (C_in, C_out KH KW)
            if input_grad:
                dx_blocks.append(xp.matmul(weights, dcols))  # (B, C_in, H row)
        self.W.grad = xp.reshape(dw, self.W.shape)  # (C_in, C_out, KH, KW)
        self.b.grad = xp.sum(dy, axis=(0, 2, 3))  # (C_out,)
        if not input_grad:
            return None
        return from_rows(join_blocks(dx_blocks), row, height, width)  # (N, C_in, H, W)


class FastMaxPool2D(MaxPool2D):
    """:class:`scratchae.conv.MaxPool2D` by pairwise maxima of strided slices, rows first, and first-maximum masks."""

    saved_as = "MaxPool2D"

    def windows(self, x_padded, out_h: int, out_w: int):
        """The ``K * K`` strided slices of the padded input, in reading order: slice ``(p, q)`` holds, for every
        output pixel, the input at row ``p`` and column ``q`` of its window. Each is (N, C, H_out, W_out)."""
        for p in range(self.pool_size):
            for q in range(self.pool_size):
                yield (p, q), x_padded[:, :, strided(p, out_h, self.stride), strided(q, out_w, self.stride)]

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, H_out, W_out), by pairwise maxima of strided slices, rows first.

        A window is ``K`` rows by ``K`` columns, so its maximum is the maximum over its columns of the maxima over
        its rows: first the ``K`` slices of whole rows (row ``p`` of every window, full width), then the ``K``
        column slices of that. The same numbers as the maximum of the ``K * K`` window slices (a maximum is exact
        in any order), with 2 K comparisons instead of K * K, the first K of them on whole contiguous rows.
        """
        _, out_h, out_w = self.output_shape(x.shape[1:])
        (top, bottom), (left, right) = self.paddings(x.shape[2], x.shape[3])
        x_padded = pad(x, top, bottom, left, right, fill_value=-math.inf)  # (N, C, H_p, W_p)
        k, s = self.pool_size, self.stride
        row_max = maximum_of([x_padded[:, :, strided(p, out_h, s), :] for p in range(k)])  # (N, C, H_out, W_p)
        y = maximum_of([row_max[:, :, :, strided(q, out_w, s)] for q in range(k)])  # (N, C, H_out, W_out)
        self.cache = (x_padded, y, (top, left), tuple(x.shape))
        return y

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C, H_out, W_out) -> dx: (N, C, H, W): each window's gradient goes to its (first) maximum."""
        if not input_grad:
            return None
        x_padded, y, (top, left), (_, _, height, width) = self.cache
        xp = get_namespace(dy)
        out_h, out_w = y.shape[2], y.shape[3]
        # Windows side by side (stride = pool size) that tile the whole padded input touch every input once: each
        # slice can be written instead of added, into an array that needs no zeros first.
        side_by_side = self.stride == self.pool_size
        tiled = side_by_side and out_h * self.stride == x_padded.shape[2] and out_w * self.stride == x_padded.shape[3]
        dx_padded = full_like_shape(tuple(x_padded.shape), None if tiled else 0.0, dy)  # (N, C, H_p, W_p)
        # Each window's gradient goes to one input: the first slice, in reading order, that holds the maximum.
        taken = None  # (N, C, H_out, W_out), bool: the windows whose maximum an earlier slice holds
        last = self.pool_size**2 - 1
        for index, ((p, q), window) in enumerate(self.windows(x_padded, out_h, out_w)):
            if taken is None:
                first_max = taken = window == y  # (N, C, H_out, W_out), bool
            elif index < last:
                first_max = (window == y) & ~taken  # later ties get nothing
                taken = taken | first_max
            else:
                first_max = ~taken  # a maximum that no earlier slice holds is in the last one: no comparison
            rows, cols = strided(p, out_h, self.stride), strided(q, out_w, self.stride)
            routed = dy * xp.astype(first_max, dy.dtype)  # (N, C, H_out, W_out), dy where this slice has the maximum
            if side_by_side:
                dx_padded[:, :, rows, cols] = routed
            else:
                dx_padded[:, :, rows, cols] += routed  # overlapping windows: an input may be the maximum of several
        return dx_padded[:, :, top:top + height, left:left + width]  # (N, C, H, W)


class FastUpSampling2D(UpSampling2D):
    """:class:`scratchae.conv.UpSampling2D` by strided copies, and block sums rows first."""

    saved_as = "UpSampling2D"

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, f H, f W), by one strided copy per position in the block."""
        n, c, height, width = x.shape
        f = self.factor
        y = full_like_shape((n, c, f * height, f * width), None, x)  # (N, C, f H, f W), every element written below
        for a in range(f):
            for b in range(f):
                y[:, :, a::f, b::f] = x  # (N, C, H, W)
        self.input_shape = tuple(x.shape)
        return y

    def backward(self, dy, input_grad: bool = True):
        """dy: (N, C, f H, f W) -> dx: (N, C, H, W), the sum of each block, rows first.

        A block is ``f`` rows by ``f`` columns, so its sum is the sum over its columns of the sums over its rows:
        first the ``f`` slices of whole rows (row ``a`` of every block, full width), then the ``f`` column slices of
        that. The same terms as adding the ``f * f`` strided slices one by one, grouped differently, and 2 f adds
        instead of f * f, the first f of them on whole contiguous rows.
        """
        if not input_grad:
            return None
        f = self.factor
        row_sums = sum_of([dy[:, :, a::f, :] for a in range(f)])  # (N, C, H, f W): each block's rows added
        return sum_of([row_sums[:, :, :, b::f] for b in range(f)])  # (N, C, H, W): and then its columns

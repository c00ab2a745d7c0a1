"""Convolutional layers, on both floors (the lesson's forms and the engine's): gradient checks that cannot be fooled
(padding, stride 2, overlapping pooling windows, odd sizes, ties, output_padding), every form against
straightforward loops written here, Keras's "same" padding, the protocol, bad input, and mutations of each backward
that the gradient check must catch."""

from __future__ import annotations

import math

import numpy
import pytest

from scratchae import conv
from scratchae.engine import conv as engine_conv
from scratchae.engine.forms import fast
from scratchae.conv import ConvTranspose2D, Conv2D, Flatten, MaxPool2D, Reshape, UpSampling2D
from scratchae.shapes import output_shape
from scratchae.numerical import LAYER_TOLERANCE, layer_checks
from scratchae.gradcheck_suite import off_kinks
from scratchae.layers import Dense, ReLU, Sequential

F32, F64 = numpy.float32, numpy.float64

FLOORS = ("lesson", "engine")


@pytest.fixture(params=FLOORS)
def floor(request):
    """Each test that takes it runs on the lesson's forms and on the engine's."""
    return request.param


def on(floor: str, layer):
    """``layer`` in the form of ``floor``: as built (the lesson), or swapped for its engine form."""
    return fast(layer) if floor == "engine" else layer


# ------------------------------------------------------------------------------- straightforward references (loops)


def reference_conv2d(x, w, b, stride, pads):
    """y[n, o, i, j] = b[o] + sum over c, p, q of w[o, c, p, q] x_pad[n, c, s i + p, s j + q], one pixel at a time."""
    (top, bottom), (left, right) = pads
    x_pad = numpy.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    kh, kw = w.shape[2:]
    out_h, out_w = (x_pad.shape[2] - kh) // stride + 1, (x_pad.shape[3] - kw) // stride + 1
    y = numpy.zeros((x.shape[0], w.shape[0], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = x_pad[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = numpy.einsum("ncpq,ocpq->no", window, w) + b
    return y


def reference_conv2d_backward(x, w, dy, stride, pads):
    """dx, dW, db of :func:`reference_conv2d` by the chain rule, pixel by pixel: each output pixel sends
    w * dy back to the window it read."""
    (top, bottom), (left, right) = pads
    x_pad = numpy.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dx_pad, dw = numpy.zeros_like(x_pad), numpy.zeros_like(w)
    kh, kw = w.shape[2:]
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            dw += numpy.einsum("no,ncpq->ocpq", dy[:, :, i, j], x_pad[:, :, rows, cols])
            dx_pad[:, :, rows, cols] += numpy.einsum("no,ocpq->ncpq", dy[:, :, i, j], w)
    dx = dx_pad[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def reference_conv_transpose2d(x, w, b, stride, padding, output_padding):
    """Each input pixel adds x[n, c, i, j] * w[c] into the output at (s i, s j); then ``padding`` is cut."""
    n, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    full = numpy.zeros((n, w.shape[1], (h - 1) * stride + kh + output_padding, (wd - 1) * stride + kw + output_padding))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += numpy.einsum(
                "nc,copq->nopq", x[:, :, i, j], w)
    cut = full[:, :, padding:full.shape[2] - padding, padding:full.shape[3] - padding]
    return cut + b[:, None, None]


def reference_max_pool(x, size, stride, pads):
    """The maximum of each window, and its gradient routed by numpy.argmax (the first maximum in reading order)."""
    (top, bottom), (left, right) = pads
    x_pad = numpy.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-numpy.inf)
    out_h, out_w = (x_pad.shape[2] - size) // stride + 1, (x_pad.shape[3] - size) // stride + 1
    y = numpy.zeros(x.shape[:2] + (out_h, out_w))
    first_max = numpy.zeros(x.shape[:2] + (out_h, out_w), dtype=int)
    for i in range(out_h):
        for j in range(out_w):
            window = x_pad[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            window = window.reshape(x.shape[:2] + (-1,))
            y[:, :, i, j] = window.max(axis=2)
            first_max[:, :, i, j] = window.argmax(axis=2)

    def backward(dy):
        dx_pad = numpy.zeros_like(x_pad)
        for n, c, i, j in numpy.ndindex(dy.shape):
            p, q = divmod(first_max[n, c, i, j], size)
            dx_pad[n, c, i * stride + p, j * stride + q] += dy[n, c, i, j]
        return dx_pad[:, :, top:top + x.shape[2], left:left + x.shape[3]]

    return y, backward


# ------------------------------------------------------------------------------------------------ gradient checks

CONV_CASES = {
    "3x3 same, stride 1": (dict(kernel_size=3), 2, 3, (2, 2, 5, 6)),
    "3x3 same, stride 2, odd size": (dict(kernel_size=3, stride=2), 2, 3, (2, 2, 7, 6)),
    "3x3 same, stride 2, even size (pads after only)": (dict(kernel_size=3, stride=2), 2, 3, (2, 2, 6, 8)),
    "2x3 padding 1, stride 2": (dict(kernel_size=(2, 3), stride=2, padding=1), 3, 2, (2, 3, 7, 8)),
    "3x3 valid, more channels in than out": (dict(kernel_size=3, padding="valid"), 4, 2, (2, 4, 6, 5)),
    "4x4 same, even kernel": (dict(kernel_size=4), 1, 2, (2, 1, 5, 5)),
    "5x5 stride 2, padding 2": (dict(kernel_size=5, stride=2, padding=2), 1, 2, (2, 1, 9, 8)),
    "3x2 stride 3 valid, more channels in than out": (dict(kernel_size=(3, 2), stride=3, padding="valid"), 3, 2,
                                                       (2, 3, 10, 8)),
    "1x1 stride 2 (the kernel smaller than the stride)": (dict(kernel_size=1, stride=2), 2, 3, (2, 2, 5, 6)),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients(rng, check_gradients, case, floor):
    options, c_in, c_out, shape = CONV_CASES[case]
    layer = on(floor, Conv2D(c_in, c_out, rng=rng, dtype=F64, **options))
    layer.b.data = rng.standard_normal(c_out)
    check_gradients(layer_checks(layer, rng.standard_normal(shape), rng), LAYER_TOLERANCE)


TRANSPOSED_CASES = {
    "stride 2, padding 1, output_padding 1": (dict(kernel_size=3, stride=2, padding=1, output_padding=1), 3, 2,
                                              (2, 3, 4, 3)),
    "stride 1, no padding": (dict(kernel_size=2), 2, 3, (2, 2, 3, 3)),
    "stride 3, 2x3 kernel, output_padding 2": (dict(kernel_size=(2, 3), stride=3, output_padding=2), 2, 2,
                                               (1, 2, 3, 2)),
    "1x1 kernel, stride 2, output_padding 1": (dict(kernel_size=1, stride=2, output_padding=1), 2, 3, (2, 2, 3, 4)),
}


@pytest.mark.parametrize("case", TRANSPOSED_CASES)
def test_conv_transpose2d_gradients(rng, check_gradients, case, floor):
    options, c_in, c_out, shape = TRANSPOSED_CASES[case]
    layer = on(floor, ConvTranspose2D(c_in, c_out, rng=rng, dtype=F64, **options))
    layer.b.data = rng.standard_normal(c_out)
    check_gradients(layer_checks(layer, rng.standard_normal(shape), rng), LAYER_TOLERANCE)


def distinct_values(rng, shape):
    """Inputs whose values are all at least 1e-3 apart, so that no window's maximum changes within a step h."""
    values = rng.permutation(math.prod(shape)) * 1e-2 + rng.uniform(0.0, 1e-3, math.prod(shape))
    return values.reshape(shape)


POOL_CASES = {
    "2x2 valid": (dict(pool_size=2), (2, 2, 6, 4)),
    "2x2 same, 7 -> 4": (dict(pool_size=2, padding="same"), (2, 2, 7, 7)),
    "3x3 stride 2, overlapping": (dict(pool_size=3, stride=2), (2, 2, 7, 7)),
    "3x3 stride 1, overlapping, same": (dict(pool_size=3, stride=1, padding="same"), (1, 2, 5, 6)),
    "2x2 stride 1, overlapping": (dict(pool_size=2, stride=1), (2, 1, 5, 5)),
}


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_gradients(rng, check_gradients, case, floor):
    options, shape = POOL_CASES[case]
    check_gradients(layer_checks(on(floor, MaxPool2D(**options)), distinct_values(rng, shape), rng), LAYER_TOLERANCE)


@pytest.mark.parametrize("factor, shape", [(2, (2, 2, 3, 4)), (3, (1, 2, 2, 3))])
def test_upsampling_gradients(rng, check_gradients, factor, shape, floor):
    check_gradients(layer_checks(on(floor, UpSampling2D(factor)), rng.standard_normal(shape), rng), LAYER_TOLERANCE)


@pytest.mark.parametrize("layer, shape", [(Flatten(), (2, 2, 3, 3)), (Reshape((2, 3, 3)), (2, 18))])
def test_flatten_and_reshape_gradients(rng, check_gradients, layer, shape):
    check_gradients(layer_checks(layer, rng.standard_normal(shape), rng), LAYER_TOLERANCE)


def test_a_small_conv_network_gradients(rng, check_gradients, floor):
    """The layers chained as in an autoencoder, through ReLU: each passes the others' gradients on correctly."""
    network = on(floor, Sequential([Reshape((1, 7, 7)), Conv2D(1, 3, 3, rng=rng, dtype=F64), ReLU(),
                          MaxPool2D(2, padding="same"), Conv2D(3, 2, 3, stride=2, rng=rng, dtype=F64), ReLU(),
                          UpSampling2D(2), ConvTranspose2D(2, 1, 3, stride=2, padding=1, output_padding=1, rng=rng,
                                                           dtype=F64), Flatten(), Dense(64, 3, rng=rng, dtype=F64)]))
    for parameter in network.parameters():
        if parameter.name == "b":
            parameter.data = off_kinks(0.1 * rng.standard_normal(parameter.shape))
    x = distinct_values(rng, (2, 49))
    check_gradients(layer_checks(network, x, rng), 1e-6)


# ------------------------------------------------------------------------ every form against the loops above


def assert_conv_matches_the_loops(rng, layer_class, case) -> None:
    """A layer of ``layer_class`` built for ``CONV_CASES[case]`` gives the loops' output and gradients."""
    options, c_in, c_out, shape = CONV_CASES[case]
    layer = layer_class(c_in, c_out, rng=rng, dtype=F64, **options)
    layer.b.data = rng.standard_normal(c_out)
    x = rng.standard_normal(shape)
    pads = layer.paddings(shape[2], shape[3])
    y = layer.forward(x)
    numpy.testing.assert_allclose(y, reference_conv2d(x, layer.W.data, layer.b.data, layer.stride, pads), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = reference_conv2d_backward(x, layer.W.data, dy, layer.stride, pads)
    numpy.testing.assert_allclose(layer.backward(dy), dx, atol=1e-12)
    numpy.testing.assert_allclose(layer.W.grad, dw, atol=1e-12)
    numpy.testing.assert_allclose(layer.b.grad, db, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_the_loops(rng, case, floor):
    assert_conv_matches_the_loops(rng, Conv2D if floor == "lesson" else engine_conv.FastConv2D, case)


class ExpandingInput(engine_conv.FastConv2D):
    expands_input = True


class ProductFirst(engine_conv.FastConv2D):
    expands_input = False


def one_sample_a_block(monkeypatch) -> list:
    """Make every layer work one sample at a time; the returned list records each call's batch size."""
    calls = []
    monkeypatch.setattr(engine_conv, "sample_blocks", lambda n, *sizes: calls.append(n) or [slice(i, i + 1) for i in range(n)])
    return calls


@pytest.mark.parametrize("blocks", ["whole batch", "one sample a block"])
@pytest.mark.parametrize("strategy", [ExpandingInput, ProductFirst])
@pytest.mark.parametrize("case", CONV_CASES)
def test_both_ways_of_computing_a_convolution_match_the_loops(rng, monkeypatch, case, strategy, blocks):
    """Copying the input's shifts then multiplying, and multiplying first then adding the shifted products, give
    the same forward and backward whatever the channel counts (the layer picks one by them), for the whole batch at
    once or a block of samples at a time (the weight gradient then summed over the blocks)."""
    calls = one_sample_a_block(monkeypatch) if blocks == "one sample a block" else None
    assert_conv_matches_the_loops(rng, strategy, case)
    if calls is not None:
        batch = CONV_CASES[case][3][0]
        assert calls and all(n == batch for n in calls)  # the blocks were used


def test_the_long_row_copies_match_their_definitions(rng):
    """taps, add_taps, sum_taps and spread_taps against their one-line definitions, element by element."""
    n, c, size, length = 2, 3, 40, 9
    offsets = [0, 1, 2, 7, 8, 9, 30]
    flat = rng.standard_normal((n, c, size))
    cols = engine_conv.taps(flat, offsets, length).reshape(n, c, len(offsets), length)
    added = numpy.zeros((n, c, size))
    for t, k in numpy.ndindex(len(offsets), length):
        assert numpy.array_equal(cols[:, :, t, k], flat[:, :, k + offsets[t]])
        added[:, :, k + offsets[t]] += cols[:, :, t, k]
    numpy.testing.assert_allclose(engine_conv.add_taps(cols.reshape(n, -1, length), c, offsets, size), added)
    z = rng.standard_normal((n, c * len(offsets), size))
    summed = sum(z.reshape(n, c, len(offsets), size)[:, :, t, numpy.arange(length) + offsets[t]]
                 for t in range(len(offsets)))
    numpy.testing.assert_allclose(engine_conv.sum_taps(z, c, offsets, length), summed)
    dy = rng.standard_normal((n, c, length))
    spread = numpy.zeros((n, c, len(offsets), size))
    for t in range(len(offsets)):
        spread[:, :, t, numpy.arange(length) + offsets[t]] = dy
    numpy.testing.assert_array_equal(engine_conv.spread_taps(dy, offsets, size), spread.reshape(n, -1, size))


def test_add_taps_writing_its_first_kernel_position_equals_adding_every_position_to_zeros(rng):
    """add_taps writes the first kernel position instead of adding it to zeros: the plain sum, whatever the first
    offset (the numbers before and after it must still be zeros)."""
    n, c, size, length = 2, 3, 30, 6
    for offsets in ([0, 1, 5, 11], [4, 2, 20], [24, 0]):
        cols = rng.standard_normal((n, c, len(offsets), length))
        added = numpy.zeros((n, c, size))
        for t, offset in enumerate(offsets):
            added[:, :, offset:offset + length] += cols[:, :, t, :]
        numpy.testing.assert_array_equal(engine_conv.add_taps(cols.reshape(n, -1, length), c, offsets, size), added)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_phases_turn_a_stride_into_one_shift_per_kernel_position(rng, stride):
    rows, row = 4, 5
    image = rng.standard_normal((2, 3, stride * rows, stride * row))
    flat = engine_conv.as_phases(image, stride)
    numpy.testing.assert_array_equal(engine_conv.from_phases(flat, stride, rows, row), image)
    offsets = engine_conv.tap_offsets(3, 2, stride, rows, row)
    for (p, q), offset in zip(numpy.ndindex(3, 2), offsets, strict=True):
        for i, j in numpy.ndindex(rows, row):
            if stride * i + p < stride * rows and stride * j + q < stride * row:
                numpy.testing.assert_array_equal(flat[:, :, i * row + j + offset],
                                                 image[:, :, stride * i + p, stride * j + q])


@pytest.mark.parametrize("case", TRANSPOSED_CASES)
def test_conv_transpose2d_matches_the_loops_and_is_the_backward_of_a_convolution(rng, case, floor):
    options, c_in, c_out, shape = TRANSPOSED_CASES[case]
    layer = on(floor, ConvTranspose2D(c_in, c_out, rng=rng, dtype=F64, **options))
    layer.b.data = rng.standard_normal(c_out)
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    expected = reference_conv_transpose2d(x, layer.W.data, layer.b.data, layer.stride, layer.padding,
                                           layer.output_padding)
    numpy.testing.assert_allclose(y, expected, atol=1e-12)
    # its backward with respect to x is the forward of a convolution with the same weights ((C_in, C_out) read as
    # the (C_out, C_in) of that convolution) over dy put back in the uncut output
    dy = rng.standard_normal(y.shape)
    p = layer.padding
    dy_uncut = numpy.zeros(y.shape[:2] + layer.full_size(shape[2], shape[3]))
    dy_uncut[:, :, p:p + y.shape[2], p:p + y.shape[3]] = dy
    as_a_convolution = reference_conv2d(dy_uncut, layer.W.data, numpy.zeros(c_in), layer.stride, ((0, 0), (0, 0)))
    numpy.testing.assert_allclose(layer.backward(dy), as_a_convolution, atol=1e-12)


def test_sample_blocks_cover_the_batch_in_order_within_the_budget():
    assert engine_conv.sample_blocks(10, 3, 1, budget=7) == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8), slice(8, 10)]
    assert engine_conv.sample_blocks(5, 100, 1, budget=7) == [slice(i, i + 1) for i in range(5)]  # at least one sample
    assert engine_conv.sample_blocks(128, 60480, 13440) == [slice(i, i + 8) for i in range(0, 128, 8)]  # the VAE's 64 -> 32
    assert engine_conv.sample_blocks(128, 7560, 26880) == [slice(0, 128)]  # a result larger than the intermediate array


@pytest.mark.parametrize("case", TRANSPOSED_CASES)
def test_conv_transpose2d_in_blocks_of_samples_equals_the_whole_batch_and_the_loops(rng, monkeypatch, case):
    """The layer computes a block of samples at a time: blocks of one sample give the loops' output and input
    gradient, and the weight and bias gradients of the whole batch at once."""
    options, c_in, c_out, shape = TRANSPOSED_CASES[case]
    shape = (5,) + shape[1:]
    layer = engine_conv.FastConvTranspose2D(c_in, c_out, rng=rng, dtype=F64, **options)
    layer.b.data = rng.standard_normal(c_out)
    x = rng.standard_normal(shape)
    y_whole = layer.forward(x)
    dy = rng.standard_normal(y_whole.shape)
    dx_whole, dw_whole, db_whole = layer.backward(dy), layer.W.grad, layer.b.grad
    blocks = one_sample_a_block(monkeypatch)
    y = layer.forward(x)
    dx = layer.backward(dy)
    assert blocks == [5, 5]  # the forward and the backward went through the blocks
    expected = reference_conv_transpose2d(x, layer.W.data, layer.b.data, layer.stride, layer.padding,
                                          layer.output_padding)
    numpy.testing.assert_allclose(y, expected, atol=1e-12)
    numpy.testing.assert_allclose(y_whole, expected, atol=1e-12)
    numpy.testing.assert_allclose(dx, dx_whole, atol=1e-12)
    numpy.testing.assert_allclose(layer.W.grad, dw_whole, atol=1e-12)
    numpy.testing.assert_allclose(layer.b.grad, db_whole, atol=1e-12)


POOL_REFERENCE_CASES = {**POOL_CASES, "3x3 stride 2, same, 8 -> 4": (dict(pool_size=3, stride=2, padding="same"),
                                                                     (2, 2, 8, 8))}


@pytest.mark.parametrize("case", POOL_REFERENCE_CASES)
def test_max_pool_matches_the_loops_ties_included(rng, case, floor):
    options, shape = POOL_REFERENCE_CASES[case]
    layer = on(floor, MaxPool2D(**options))
    x = rng.integers(0, 3, shape).astype(F64)  # many ties
    y = layer.forward(x)
    expected, backward = reference_max_pool(x, layer.pool_size, layer.stride, layer.paddings(shape[2], shape[3]))
    numpy.testing.assert_array_equal(y, expected)
    dy = rng.standard_normal(y.shape)
    numpy.testing.assert_allclose(layer.backward(dy), backward(dy), atol=1e-12)


def test_max_pool_tie_gives_the_gradient_to_the_first_maximum_in_reading_order(floor):
    x = numpy.array([[[[1.0, 5.0], [5.0, 5.0]]]])  # one window, three tied maxima
    layer = on(floor, MaxPool2D(2))
    numpy.testing.assert_array_equal(layer.forward(x), [[[[5.0]]]])
    dx = layer.backward(numpy.array([[[[3.0]]]]))
    numpy.testing.assert_array_equal(dx, [[[[0.0, 3.0], [0.0, 0.0]]]])


def test_upsampling_copies_and_its_backward_sums_each_block(rng, floor):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = on(floor, UpSampling2D(3))
    numpy.testing.assert_array_equal(layer.forward(x), x.repeat(3, axis=2).repeat(3, axis=3))
    dy = rng.standard_normal((2, 3, 12, 15))
    numpy.testing.assert_allclose(layer.backward(dy), dy.reshape(2, 3, 4, 3, 5, 3).sum(axis=(3, 5)), atol=1e-12)


# ------------------------------------------------------------------------------------ Keras's "same" padding


def test_same_padding_puts_the_odd_row_at_the_end():
    assert conv.same_padding(28, 3, 2) == (0, 1)  # a stride-2 "same" convolution of 28 pads one row below
    assert conv.same_padding(28, 3, 1) == (1, 1)
    assert conv.same_padding(7, 2, 2) == (0, 1)  # 7 -> 4 pooling: the last window holds row 6 alone
    assert conv.same_padding(5, 4, 1) == (1, 2)
    assert conv.same_padding(8, 1, 2) == (0, 0)


def test_stride_2_same_conv_of_28_pads_below_and_right_only(rng, floor):
    layer = on(floor, Conv2D(1, 2, 3, stride=2, rng=rng, dtype=F64))
    x = rng.standard_normal((1, 1, 28, 28))
    y = layer.forward(x)
    assert y.shape == (1, 2, 14, 14)
    numpy.testing.assert_allclose(y, reference_conv2d(x, layer.W.data, layer.b.data, 2, ((0, 1), (0, 1))), atol=1e-12)


def test_same_pooling_of_7_takes_the_last_row_alone(rng, floor):
    x = rng.standard_normal((1, 1, 7, 7))
    y = on(floor, MaxPool2D(2, padding="same")).forward(x)
    assert y.shape == (1, 1, 4, 4)
    numpy.testing.assert_array_equal(y[0, 0, 3, :3], x[0, 0, 6, 0:6].reshape(3, 2).max(axis=1))
    assert y[0, 0, 3, 3] == x[0, 0, 6, 6]


# ------------------------------------------------------------------------------------------------- mutations


def _fails(layer, x, rng) -> bool:
    return not all(check.passed(LAYER_TOLERANCE) for check in layer_checks(layer, x, rng))


class FlippedOrNot(Conv2D):
    """Conv2D whose dx is computed as the textbook says: a "full" convolution of dy (padded by K - 1 - padding) with
    the kernel flipped and its channel axes swapped; ``flip=False`` forgets the flip. Stride 1, square kernels."""

    flip = True

    def forward(self, x):
        self.input_size = x.shape[2:]
        return super().forward(x)

    def backward(self, dy, input_grad=True):
        super().backward(dy, input_grad=False)  # W.grad and b.grad
        kernel = self.W.data[:, :, ::-1, ::-1] if self.flip else self.W.data
        (top, bottom), (left, right) = self.paddings(*self.input_size)
        k = self.kernel_size[0]
        pads = ((k - 1 - top, k - 1 - bottom), (k - 1 - left, k - 1 - right))
        return reference_conv2d(dy, kernel.transpose(1, 0, 2, 3), numpy.zeros(self.in_channels), 1, pads)


class NotFlipped(FlippedOrNot):
    flip = False


def test_the_backward_is_a_convolution_with_the_flipped_kernel_and_forgetting_the_flip_is_caught(rng):
    for padding, x in (("same", rng.standard_normal((2, 2, 5, 6))), ("valid", rng.standard_normal((2, 2, 6, 5)))):
        assert not _fails(FlippedOrNot(2, 3, 3, padding=padding, rng=0, dtype=F64), x, rng)
        assert _fails(NotFlipped(2, 3, 3, padding=padding, rng=0, dtype=F64), x, rng)


ADD_TAPS, SPREAD_TAPS = engine_conv.add_taps, engine_conv.spread_taps


def add_taps_not_mirrored(cols, channels, offsets, size):
    return ADD_TAPS(cols, channels, offsets[::-1], size)


def spread_taps_not_mirrored(dy, offsets, size):
    return SPREAD_TAPS(dy, offsets[::-1], size)


@pytest.mark.parametrize("c_in, c_out, helper, mutant", [(2, 3, "add_taps", add_taps_not_mirrored),
                                                          (3, 2, "spread_taps", spread_taps_not_mirrored)])
def test_the_library_backward_with_its_kernel_not_flipped_is_caught(rng, monkeypatch, c_in, c_out, helper, mutant):
    """Break the library's own backward: the copy step that sends dy back towards the input (add_taps when the
    input was expanded, spread_taps when the product came first) with its kernel positions in reverse order, which
    reads dy through the kernel without flipping it. The forward is untouched (it uses taps and sum_taps)."""
    layer, x = engine_conv.FastConv2D(c_in, c_out, 3, rng=0, dtype=F64), rng.standard_normal((2, c_in, 5, 5))
    assert not _fails(layer, x, rng)
    monkeypatch.setattr(engine_conv, helper, mutant)
    assert _fails(layer, x, rng)


class UpSamplingEverySecond(UpSampling2D):
    """The mistake of taking one gradient of each block (every second one) instead of summing the block."""

    def backward(self, dy, input_grad=True):
        return dy[:, :, ::self.factor, ::self.factor]


class LessonUpSamplingEverySecond(UpSampling2D):
    """The lesson's form of the same mistake: each block's first gradient taken where its sum belongs."""

    def backward(self, dy, input_grad=True):
        n, c, height, width = self.input_shape
        return dy.reshape(n, c, height, self.factor, width, self.factor)[:, :, :, 0, :, 0]


def test_an_upsampling_backward_that_does_not_sum_is_caught(rng):
    assert _fails(UpSamplingEverySecond(2), rng.standard_normal((2, 2, 3, 3)), rng)
    assert _fails(LessonUpSamplingEverySecond(2), rng.standard_normal((2, 2, 3, 3)), rng)
    assert _fails(fast(UpSamplingEverySecond(2)), rng.standard_normal((2, 2, 3, 3)), rng)


def col2im_not_flipped(cols, padded_shape, kernel_size, stride):
    """The lesson's col2im with the kernel positions read in reverse order: dy through the kernel unflipped."""
    n, c = padded_shape[:2]
    kh, kw = kernel_size
    by_position = cols.reshape(n, c, kh, kw, -1)[:, :, ::-1, ::-1, :]
    return COL2IM(by_position.reshape(cols.shape), padded_shape, kernel_size, stride)


COL2IM = conv.col2im


def test_the_lesson_backward_with_its_kernel_not_flipped_is_caught(rng, monkeypatch):
    """Break the lesson's Conv2D: col2im adds each window's share back with the kernel's rows and columns in the
    forward's order instead of reversed, which is dx computed with the kernel unflipped."""
    layer, x = Conv2D(2, 3, 3, rng=0, dtype=F64), rng.standard_normal((2, 2, 5, 5))
    assert not _fails(layer, x, rng)
    monkeypatch.setattr(conv, "col2im", col2im_not_flipped)
    assert _fails(layer, x, rng)


class PoolMaskOfSideBySideWindows(engine_conv.FastMaxPool2D):
    """The mistake of routing each gradient through windows laid side by side (stride = pool size), whatever the
    stride: right when the windows do not overlap, wrong when they do."""

    def backward(self, dy, input_grad=True):
        x_padded, y, (top, left), (_, _, height, width) = self.cache
        dx = numpy.zeros_like(x_padded)
        k = self.pool_size
        for p, q in numpy.ndindex(k, k):
            rows, cols = conv.strided(p, y.shape[2], k), conv.strided(q, y.shape[3], k)
            window = x_padded[:, :, rows, cols]
            dx[:, :, rows, cols] += dy[:, :, :window.shape[2], :window.shape[3]] * (window == y[:, :, :window.shape[2],
                                                                                               :window.shape[3]])
        return dx[:, :, top:top + height, left:left + width]


def col2im_overwriting(cols, padded_shape, kernel_size, stride):
    """col2im that writes each window's values where it read instead of adding them: where windows overlap, the
    last window's gradient replaces the others'."""
    n, c = padded_shape[:2]
    kh, kw = kernel_size
    out_h, out_w = (padded_shape[2] - kh) // stride + 1, (padded_shape[3] - kw) // stride + 1
    cols = cols.reshape(n, c, kh, kw, out_h, out_w)
    images = numpy.zeros(padded_shape)
    for p, q in numpy.ndindex(kh, kw):
        rows, columns = conv.strided(p, out_h, stride), conv.strided(q, out_w, stride)
        images[:, :, rows, columns] = numpy.where(cols[:, :, p, q] != 0, cols[:, :, p, q], images[:, :, rows, columns])
    return images


def test_the_lesson_pooling_backward_that_overwrites_overlapping_windows_is_caught(rng, monkeypatch):
    """The lesson's pooling sends each window's gradient to its argmax through col2im; a col2im that writes instead
    of adding is right for windows side by side and caught as soon as windows overlap."""
    monkeypatch.setattr(conv, "col2im", col2im_overwriting)
    assert not _fails(MaxPool2D(2), distinct_values(rng, (2, 2, 6, 6)), rng)
    assert _fails(MaxPool2D(3, stride=1), distinct_values(rng, (2, 2, 6, 6)), rng)


def test_a_pooling_mask_of_the_wrong_window_is_caught_only_with_overlapping_windows(rng):
    side_by_side = distinct_values(rng, (2, 2, 6, 6))
    assert not _fails(PoolMaskOfSideBySideWindows(2), side_by_side, rng)  # why overlapping windows must be checked
    assert _fails(PoolMaskOfSideBySideWindows(3, stride=2), distinct_values(rng, (2, 2, 7, 7)), rng)
    assert _fails(PoolMaskOfSideBySideWindows(2, stride=1), distinct_values(rng, (2, 1, 5, 5)), rng)


class PoolEveryTiedMaximum(engine_conv.FastMaxPool2D):
    """The mistake of giving the gradient to every input that equals its window's maximum."""

    def backward(self, dy, input_grad=True):
        x_padded, y, (top, left), (_, _, height, width) = self.cache
        dx = numpy.zeros_like(x_padded)
        for (p, q), window in self.windows(x_padded, y.shape[2], y.shape[3]):
            rows, cols = conv.strided(p, y.shape[2], self.stride), conv.strided(q, y.shape[3], self.stride)
            dx[:, :, rows, cols] += dy * (window == y)
        return dx[:, :, top:top + height, left:left + width]


def test_a_pooling_backward_that_rewards_every_tie_is_caught_by_the_tie_rule(rng):
    """A gradient check cannot judge ties (the maximum has no derivative there); the stated rule, checked against
    numpy.argmax's first maximum in the reference, can."""
    x = rng.integers(0, 2, (2, 2, 6, 6)).astype(F64)
    _, backward = reference_max_pool(x, 2, 2, ((0, 0), (0, 0)))
    dy = rng.standard_normal((2, 2, 3, 3))
    mutant, layer = PoolEveryTiedMaximum(2), MaxPool2D(2)
    mutant.forward(x)
    layer.forward(x)
    numpy.testing.assert_allclose(layer.backward(dy), backward(dy), atol=1e-12)
    assert not numpy.allclose(mutant.backward(dy), backward(dy))


# --------------------------------------------------------------------------------------------------- protocol


def conv_layers(dtype=F64):
    return {
        "conv": (Conv2D(2, 3, 3, stride=2, rng=0, dtype=dtype), (2, 2, 7, 6)),
        "conv-fewer-out": (Conv2D(4, 2, 3, rng=0, dtype=dtype), (2, 4, 5, 5)),
        "transposed": (ConvTranspose2D(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0, dtype=dtype),
                       (2, 3, 4, 3)),
        "pool": (MaxPool2D(3, stride=2, padding="same"), (2, 2, 7, 7)),
        "upsampling": (UpSampling2D(2), (2, 2, 3, 4)),
        "flatten": (Flatten(), (2, 2, 3, 3)),
        "reshape": (Reshape((2, 3, 3)), (2, 18)),
    }


@pytest.mark.parametrize("name", conv_layers())
def test_protocol(rng, name, floor):
    """backward overwrites (a second call gives the same), never changes dy, input_grad=False returns None and still
    sets the parameter gradients; output_shape says the forward's shape."""
    layer, shape = conv_layers()[name]
    layer = on(floor, layer)
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    assert y.shape == (shape[0], *output_shape(layer, shape[1:]))
    dy = rng.standard_normal(y.shape)
    kept = dy.copy()
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    grads = [parameter.grad.copy() for parameter in layer.parameters()]
    numpy.testing.assert_array_equal(layer.backward(dy), dx)
    numpy.testing.assert_array_equal(dy, kept)
    for parameter in layer.parameters():
        parameter.grad = None
    assert layer.backward(dy, input_grad=False) is None
    for grad, parameter in zip(grads, layer.parameters(), strict=True):
        numpy.testing.assert_array_equal(parameter.grad, grad)


@pytest.mark.parametrize("name", conv_layers())
def test_float32_stays_float32(rng, name, floor):
    layer, shape = conv_layers(F32)[name]
    layer = on(floor, layer)
    y = layer.forward(rng.standard_normal(shape).astype(F32))
    assert y.dtype == F32
    assert layer.backward(numpy.ones(y.shape, dtype=F32)).dtype == F32
    assert all(parameter.grad.dtype == F32 for parameter in layer.parameters())


@pytest.mark.parametrize("name", conv_layers())
def test_config_rebuilds_the_layer(name):
    layer, _ = conv_layers()[name]
    rebuilt = type(layer)(**layer.config())
    assert rebuilt.config() == layer.config()
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in layer.parameters()]


def test_weight_shapes_and_glorot_uniform_bounds():
    layer = Conv2D(16, 8, 3, rng=0)
    assert layer.W.shape == (8, 16, 3, 3) and layer.b.shape == (8,) and layer.W.data.dtype == F32
    limit = math.sqrt(6.0 / (16 * 9 + 8 * 9))
    assert numpy.abs(layer.W.data).max() <= limit
    assert numpy.abs(layer.W.data).max() > 0.9 * limit  # the whole range is used: the fans are not larger
    numpy.testing.assert_array_equal(layer.b.data, 0.0)
    transposed = ConvTranspose2D(64, 32, 3, rng=0)
    assert transposed.W.shape == (64, 32, 3, 3)
    assert numpy.abs(transposed.W.data).max() <= math.sqrt(6.0 / (64 * 9 + 32 * 9))
    numpy.testing.assert_array_equal(Conv2D(2, 3, 3, rng=5).W.data, Conv2D(2, 3, 3, rng=5).W.data)


def test_output_shape_through_a_network():
    encoder = Sequential([Reshape((1, 28, 28)), Conv2D(1, 16, 3), ReLU(), MaxPool2D(2, padding="same"),
                          Conv2D(16, 8, 3), ReLU(), MaxPool2D(2, padding="same"), Conv2D(8, 8, 3), ReLU(),
                          MaxPool2D(2, padding="same"), Flatten(), Dense(128, 2)])
    assert output_shape(encoder.layers[0], (784,)) == (1, 28, 28)
    assert output_shape(Sequential(encoder.layers[:-2]), (784,)) == (8, 4, 4)
    assert output_shape(encoder, (784,)) == (2,)
    assert output_shape(Conv2D(16, 1, 3, padding="valid"), (16, 16, 16)) == (1, 14, 14)
    assert output_shape(ConvTranspose2D(64, 32, 3, stride=2, padding=1, output_padding=1), (64, 7, 7)) == (32, 14, 14)
    assert Flatten().output_features(128) == 128 and Reshape((1, 28, 28)).output_features(784) == 784
    with pytest.raises(TypeError, match="use output_shape"):
        Conv2D(1, 2, 3).output_features(784)
    with pytest.raises(ValueError, match="put a Flatten"):
        output_shape(Dense(128, 2), (8, 4, 4))


# -------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("make, message", [
    (lambda: Conv2D(0, 2, 3), "in_channels must be a whole number >= 1"),
    (lambda: Conv2D(1, 2, 0), "kernel_size must be a whole number >= 1"),
    (lambda: Conv2D(1, 2, 3, stride=0), "stride must be a whole number >= 1"),
    (lambda: Conv2D(1, 2, 3, padding="full"), "padding must be one of 'same', 'valid'"),
    (lambda: Conv2D(1, 2, 3, padding=-1), "padding must be a whole number >= 0"),
    (lambda: ConvTranspose2D(1, 2, 3, stride=2, output_padding=2), "output_padding must be smaller than the stride"),
    (lambda: MaxPool2D(2, padding=1), "padding must be 'valid' or 'same'"),
    (lambda: UpSampling2D(0), "factor must be a whole number >= 1"),
    (lambda: Reshape("1,28,28"), "shape must be a sequence"),
    (lambda: Reshape((1, 0)), r"shape\[1\] must be a whole number >= 1"),
])
def test_bad_arguments_name_the_problem(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_are_named_at_the_model_door():
    """The layers hold only the math; a model's public methods check what comes in, once."""
    from scratchae.builders import conv_autoencoder

    model = conv_autoencoder()
    with pytest.raises(ValueError, match=r"must be a batch of shape \(N, 784\), got \(2, 1, 28, 28\)"):
        model.reconstruct(numpy.zeros((2, 1, 28, 28), dtype=F32))
    with pytest.raises(ValueError, match=r"must be a batch of shape \(N, 784\), got \(2, 783\)"):
        model.encode(numpy.zeros((2, 783), dtype=F32))
    with pytest.raises(ValueError, match="float64 but the weights are float32"):
        model.reconstruct(numpy.zeros((2, 784)))
    with pytest.raises(ValueError, match="empty batch"):
        model.encode(numpy.zeros((0, 784), dtype=F32))
    with pytest.raises(ValueError, match=r"code must be a batch of shape \(N, 128\)"):
        model.decode(numpy.zeros((2, 127), dtype=F32))
    with pytest.raises(ValueError, match="needs images of at least 3 x 3"):
        Conv2D(1, 2, 3, padding="valid").output_shape((1, 2, 5))
    with pytest.raises(ValueError, match=r"cannot reshape samples of shape \(783,\)"):
        Reshape((1, 28, 28)).output_shape((783,))

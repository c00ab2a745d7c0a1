"""Each convolutional layer's forward + backward against ``torch.nn.functional``, in one process, as ratios.

The shapes are those of the Keras blog's convolutional autoencoder at batch 128 (and, marked ``vae``, of the
keras-io convolutional VAE), float32. For every layer the two implementations run on the same input, the same weights
and the same upstream gradient, interleaved round by round (which one goes first alternates), so a machine that gets
busier or quieter affects both alike; the script prints the median time of each and their ratio (scratchae's time
over PyTorch's: below 1 is faster), and the same for the fastest round (on a loaded machine the fastest round is the
one the other processes interrupted least). The first layer of a network needs no gradient for its input, in either
library.

PyTorch's "same" for stride 1 is its symmetric ``padding``; the stride-2 "same" convolutions pad one row and column
after, as Keras does, with ``F.pad`` first; "same" pooling of 7 -> 4 is ``ceil_mode=True``.

Usage::

    python benchmarks/conv_layers.py [--threads 1|2] [--rounds 15] [--only conv]

Threads are set at run time, with threadpoolctl for NumPy's BLAS and ``torch.set_num_threads`` for PyTorch. The BLAS
kernel in use (threadpoolctl's ``architecture``) is printed; ``OPENBLAS_CORETYPE`` set in the environment forces an
older kernel and is reported: unset it for headline figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info, threadpool_limits

from scratchae.conv import Conv2D, ConvTranspose2D, MaxPool2D, UpSampling2D

BATCH = 128


def cases():
    """(name, scratchae layer, input shape, PyTorch function of (x, weight, bias), needs dx)."""

    def conv(c_in, c_out, size, *, padding="same", stride=1, first=False, tag=""):
        layer = Conv2D(c_in, c_out, 3, stride=stride, padding=padding, rng=0)
        (top, bottom), (left, right) = layer.paddings(size, size)

        def torch_conv(x, w, b):
            if top == bottom and left == right:
                return F.conv2d(x, w, b, stride=stride, padding=top)
            return F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride=stride)

        name = f"{tag}conv {c_in:>2}->{c_out:<2} {size}x{size} {padding}" + (f" s{stride}" if stride > 1 else "")
        return name, layer, (BATCH, c_in, size, size), torch_conv, not first

    def pool(channels, size):
        return (f"maxpool {channels:>2} {size}x{size}", MaxPool2D(2, padding="same"), (BATCH, channels, size, size),
                lambda x, w, b: F.max_pool2d(x, 2, ceil_mode=True), True)

    def up(channels, size):
        return (f"upsample {channels:>2} {size}x{size}", UpSampling2D(2), (BATCH, channels, size, size),
                lambda x, w, b: F.interpolate(x, scale_factor=2, mode="nearest"), True)

    def transposed(c_in, c_out, size, stride):
        layer = ConvTranspose2D(c_in, c_out, 3, stride=stride, padding=1, output_padding=stride - 1, rng=0)
        return (f"vae convT {c_in:>2}->{c_out:<2} {size}x{size} s{stride}", layer, (BATCH, c_in, size, size),
                lambda x, w, b: F.conv_transpose2d(x, w, b, stride=stride, padding=1, output_padding=stride - 1), True)

    return [conv(1, 16, 28, first=True), pool(16, 28), conv(16, 8, 14), pool(8, 14), conv(8, 8, 7), pool(8, 7),
            conv(8, 8, 4), up(8, 4), conv(8, 8, 8), up(8, 8), conv(8, 16, 16, padding="valid"), up(16, 14),
            conv(16, 1, 28),
            conv(1, 32, 28, stride=2, first=True, tag="vae "), conv(32, 64, 14, stride=2, tag="vae "),
            transposed(64, 64, 7, 2), transposed(64, 32, 14, 2), transposed(32, 1, 28, 1)]


def time_ours(layer, x, dy, needs_dx):
    start = time.perf_counter()
    layer.forward(x)
    layer.backward(dy, input_grad=needs_dx)
    return time.perf_counter() - start


def time_torch(function, x, w, b, dy):
    for tensor in (x, w, b):
        if tensor is not None:
            tensor.grad = None
    start = time.perf_counter()
    y = function(x, w, b)
    y.backward(dy)
    return time.perf_counter() - start


def measure(case, rounds, rng):
    name, layer, shape, function, needs_dx = case
    x = rng.uniform(0.0, 1.0, shape).astype(numpy.float32)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(numpy.float32)
    x_torch = torch.from_numpy(x).requires_grad_(needs_dx)
    w, b = ((torch.from_numpy(p.data.copy()).requires_grad_(True) for p in layer.parameters())
            if layer.parameters() else (None, None))
    dy_torch = torch.from_numpy(dy)
    y_torch = function(x_torch, w, b)
    numpy.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=1e-4, atol=1e-4)  # the same computation
    ours, theirs = [], []
    for index in range(rounds + 2):  # two warm-up rounds
        if index % 2:
            pair = (time_ours(layer, x, dy, needs_dx), time_torch(function, x_torch, w, b, dy_torch))
        else:
            pair = tuple(reversed((time_torch(function, x_torch, w, b, dy_torch), time_ours(layer, x, dy, needs_dx))))
        if index >= 2:
            ours.append(pair[0])
            theirs.append(pair[1])
    return name, statistics.median(ours), statistics.median(theirs), min(ours), min(theirs)


def blas_description() -> str:
    blas = [entry for entry in threadpool_info() if entry.get("user_api") == "blas" and "numpy" in entry["filepath"]]
    blas = blas or [entry for entry in threadpool_info() if entry.get("user_api") == "blas"]
    return ", ".join(f"{e.get('internal_api')} {e.get('version')} {e.get('architecture')} "
                     f"({e.get('num_threads')} threads)" for e in blas)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default="", help="only the layers whose name contains this text")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = numpy.random.default_rng(0)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
              f"threads: {args.threads} (NumPy BLAS and PyTorch); batch {BATCH}, float32")
        print(f"NumPy BLAS: {blas_description()}; PyTorch {torch.__version__}")
        for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if os.environ.get(variable):
                print(f"warning: {variable}={os.environ[variable]} forces an OpenBLAS kernel")
        print(f"{'':<34}{'median of the rounds':^33}{'fastest round':^33}")
        print(f"{'layer (forward + backward)':<34}" + f"{'scratchae ms':>13}{'PyTorch ms':>12}{'ratio':>8}" * 2)
        totals = numpy.zeros(4)
        for case in cases():
            if args.only not in case[0]:
                continue
            name, *times = measure(case, args.rounds, rng)
            if not name.startswith("vae"):
                totals += times
            print(f"{name:<34}{_row(*times)}")
        if totals[1]:
            print(f"{'Keras blog layers, summed':<34}{_row(*totals)}")


def _row(ours, theirs, fastest_ours, fastest_theirs) -> str:
    return (f"{1e3 * ours:>13.3f}{1e3 * theirs:>12.3f}{ours / theirs:>8.2f}"
            f"{1e3 * fastest_ours:>13.3f}{1e3 * fastest_theirs:>12.3f}{fastest_ours / fastest_theirs:>8.2f}")


if __name__ == "__main__":
    main()

"""Denormal numbers in Adam's state: the simple autoencoder's epochs with the training threads flushing them to zero
(what ``fit`` does, :mod:`scratchae.engine.denormals`) against plain IEEE arithmetic, side by side in one process.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/denormals.py [--epochs 10] [--samples 60000]

Two copies of the simple autoencoder (784-128-32-128-784, MSE, Adam, batch 256, one thread) train on the same
Fashion-MNIST images from the same weights, one epoch each in turn (which goes first alternates); for each epoch the
script prints both times, their ratio and how many of each copy's Adam moments are denormal (nonzero and below
float32's smallest normal number, 1.2e-38).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time


def denormal_count(arrays) -> int:
    import numpy

    smallest = float(numpy.finfo(numpy.float32).smallest_normal)
    return sum(int(numpy.count_nonzero((a != 0) & (numpy.abs(a) < smallest))) for a in arrays if a is not None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=60_000, help="training images per epoch")
    args = parser.parse_args(argv)

    from scratchae import builders, data, training_run
    from scratchae.losses import MSELoss
    from scratchae.optim import Adam
    from scratchae.training import History, fit

    found = data.load("fashion-mnist", download=False, seed=0,
                      **({} if args.samples >= 60_000 else {"train_size": args.samples}))
    flushing = training_run.flushing_denormals
    runs = {}
    for flush in (True, False):
        model = builders.simple_autoencoder(seed=0)
        runs[flush] = (model, Adam(model.parameters()), History())
    print("epoch | flushed s (denormal numbers) | IEEE s (denormal numbers) | IEEE / flushed | load average")
    for epoch in range(args.epochs):
        seconds = {}
        for flush in ((True, False) if epoch % 2 == 0 else (False, True)):
            model, optimizer, history = runs[flush]
            training_run.flushing_denormals = flushing if flush else contextlib.nullcontext
            started = time.perf_counter()
            fit(model, MSELoss(), optimizer, found.x_train, epochs=1, batch_size=256, progress=False,
                history=history, threads=1)
            seconds[flush] = time.perf_counter() - started
        training_run.flushing_denormals = flushing
        counts = {flush: denormal_count(runs[flush][1].m + runs[flush][1].v) for flush in (True, False)}
        print(f"{epoch + 1} | {seconds[True]:.3f} ({counts[True]:,}) | {seconds[False]:.3f} ({counts[False]:,}) | "
              f"{seconds[False] / seconds[True]:.2f} | {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

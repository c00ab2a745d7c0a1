"""Where the time of one training epoch goes, operation by operation.

Trains the benchmark's models (the same setups as ``train_speed.py``) with every operation of the lesson timed as it
runs: the Dense layers' forward and backward passes (matrix products and bias), each activation's forward and
backward pass, the loss, Adam, the batch gathering, the denoising noise, and what is left (Python between them).
The matrix products are also costed from the sgemm rate, so the table says how much of each Dense pass is the
product itself. Prints a table per model; ``--json`` keeps it.

    python benchmarks/profile_epoch.py --model simple --threads 1 --native-blas
    python benchmarks/profile_epoch.py --model denoising --epochs 3
    python benchmarks/profile_epoch.py --model conv --threads 1 --samples 6400

For the convolutional models each layer's forward and backward pass is timed as a whole, and the copy steps inside
the convolutions (``taps``, the im2col expansion, and ``add_taps``, its transpose) are also shown on their own, as
parts of those passes ("inside" rows, not added again to the total).

Timing each call costs about a microsecond, far below the operations timed; the epoch's total is measured apart
and the timed parts are compared with it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_speed  # noqa: E402  (the setups, threads, data and the BLAS kernel report are the benchmark's)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time every operation of a training epoch.")
    parser.add_argument("--model", choices=sorted(train_speed.SETUPS), default="simple")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs, after one warm-up epoch")
    parser.add_argument("--samples", type=int, default=None, help="train on the first N samples only")
    parser.add_argument("--threads", type=int, default=train_speed.available_cores())
    parser.add_argument("--data", choices=("auto", "fashion-mnist", "synthetic"), default="auto")
    parser.add_argument("--native-blas", action="store_true",
                        help="run again with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (the machine's own kernel)")
    parser.add_argument("--json", metavar="PATH")
    return parser.parse_args(argv)


class Clock:
    """Accumulates the seconds spent in each named operation during one epoch."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.inside = collections.defaultdict(float)  # operations that run inside others, shown apart

    def wrap(self, owner, name: str, label: str, *, inside: bool = False) -> None:
        """Time every call of ``owner.name`` (a method or a module function) under ``label``; ``inside``: it runs
        within an operation timed already, so it is a part of that one, not an addition."""
        original = getattr(owner, name)
        seconds = self.inside if inside else self.seconds

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started

        setattr(owner, name, timed)


def instrument(clock: Clock) -> None:
    """Wrap the lesson's operations. Layers call the module functions of their formulas, so wrapping those times
    the elementwise work alone; Dense is timed as a whole (product and bias)."""
    from scratchae import conv, layers, losses, models, optim, training

    clock.wrap(layers.Dense, "forward", "Dense forward (x @ W + b)")
    clock.wrap(layers.Dense, "backward", "Dense backward (x.T @ dy, dy @ W.T, sum of dy)")
    clock.wrap(layers.ReLU, "forward", "ReLU forward")
    clock.wrap(layers, "relu_backward", "ReLU backward")
    clock.wrap(layers, "sigmoid", "sigmoid forward")
    clock.wrap(layers, "sigmoid_backward", "sigmoid backward")
    for layer, what in ((conv.Conv2D, "Conv2D"), (conv.ConvTranspose2D, "ConvTranspose2D"),
                        (conv.MaxPool2D, "MaxPool2D"), (conv.UpSampling2D, "UpSampling2D"),
                        (conv.Reshape, "Reshape and Flatten"), (conv.Flatten, "Reshape and Flatten")):
        clock.wrap(layer, "forward", f"{what} forward")
        clock.wrap(layer, "backward", f"{what} backward")
    clock.wrap(conv, "taps", "inside the convolutions: taps (im2col copies)", inside=True)
    clock.wrap(conv, "add_taps", "inside the convolutions: add_taps (col2im adds)", inside=True)
    clock.wrap(losses.BCELoss, "forward", "loss forward")
    clock.wrap(losses.BCELoss, "backward", "loss backward")
    clock.wrap(losses.MSELoss, "forward", "loss forward")
    clock.wrap(losses.MSELoss, "backward", "loss backward")
    clock.wrap(losses.VAELoss, "forward", "loss forward")
    clock.wrap(losses.VAELoss, "backward", "loss backward")
    clock.wrap(optim.Optimizer, "step", "Adam step")
    clock.wrap(training, "_take", "batch gathering")
    clock.wrap(models, "add_gaussian_noise", "noise (the denoising model's input)")  # the name models.py calls
    clock.wrap(models.VariationalAutoencoder, "_draw_eps", "noise (the VAE's eps)")
    clock.wrap(models, "gaussian_sample", "the VAE's sample z = mu + sigma * eps")
    clock.wrap(models, "gaussian_sample_backward", "the VAE's sample, backward")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.native_blas:
        train_speed.use_native_blas()
    train_speed.set_thread_environment(args.threads)
    train_speed.use_blas_threads(args.threads)
    import numpy  # noqa: F401  (after the thread variables are set)

    setup = train_speed.SETUPS[args.model]
    x, data_name = train_speed.load_data(args.data, args.samples or setup.samples, 0)
    model = train_speed.build_model(setup, 0)
    flops = train_speed.epoch_flops(model, len(x))
    sgemm, _ = train_speed.sgemm_rate("cpu")
    kernel, _ = train_speed.blas_report(args.threads)
    run = train_speed.ScratchaeRun(model, setup, x, "cpu", 0)
    run.epoch(0)  # warm-up, before the clocks go in
    clock = Clock()
    instrument(clock)
    totals, parts, inside = [], collections.defaultdict(list), collections.defaultdict(list)
    for epoch in range(1, 1 + args.epochs):
        clock.seconds.clear()
        clock.inside.clear()
        started = time.perf_counter()
        run.epoch(epoch)
        totals.append(time.perf_counter() - started)
        for label, seconds in clock.seconds.items():
            parts[label].append(seconds)
        for label, seconds in clock.inside.items():
            inside[label].append(seconds)
    total = statistics.median(totals)
    rows = {label: statistics.median(values) for label, values in parts.items()}
    rows["Python and the rest"] = total - sum(rows.values())
    inside_rows = {label: statistics.median(values) for label, values in inside.items()}
    print(f"{args.model} on {data_name} ({len(x):,} samples, batch {setup.batch_size}), {args.threads} thread(s), "
          f"BLAS {kernel}; median of {args.epochs} epochs: {total:.3f} s")
    print(f"matrix products at the sgemm limit ({sgemm:.0f} GFLOP/s): {flops / sgemm / 1e9:.3f} s "
          f"({flops / sgemm / 1e9 / total:.0%} of the epoch)")
    print(f"{'operation':<50}{'s/epoch':>9}{'share':>8}")
    for label, seconds in sorted(rows.items(), key=lambda item: -item[1]):
        print(f"{label:<50}{seconds:>9.3f}{seconds / total:>8.1%}")
    for label, seconds in sorted(inside_rows.items(), key=lambda item: -item[1]):
        print(f"{'  (' + label + ')':<50}{seconds:>9.3f}{seconds / total:>8.1%}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"model": args.model, "threads": args.threads, "kernel": kernel, "epoch_seconds": total,
                       "matrix_product_seconds_at_sgemm_limit": flops / sgemm / 1e9, "parts": rows,
                       "inside": inside_rows}, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

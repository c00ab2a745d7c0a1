"""Training beside a busy program: how much one busy neighbour process slows scratchae, at each thread count.

A learner's laptop always runs something else. OpenBLAS splits every matrix product among its threads, which spin
while they wait for each other, so when another program holds a core, each product waits for the thread pushed off
it. This script measures, on an idle machine and beside one busy-loop process that it starts and stops itself:

- ``fit``: the simple autoencoder (784-128-32-128-784, batch 256, Adam) for ``--epochs`` epochs on ``mnist-5k``,
  validated each epoch, as ``scratchae train`` trains it; timed inside one process, after a warm-up, with
  ``fit(threads=N)``: N training threads, each batch split among them, each with OpenBLAS at one thread;
- ``demo``: ``scratchae demo --quick --only simple_autoencoder --threads N``, timed from outside (start-up, imports,
  training, t-SNE and figures: what a learner waits for);

with 1 thread, 2 threads and OpenBLAS's own default (as many threads as cores). The idle and busy measurements
alternate, ``--repeats`` times, and the table gives medians. The targets: beside one busy neighbour a run takes at
most 1.3 times its idle time, and idle at most 1.1 times the best thread count's time.

Usage (from the repository's root, with scratchae installed; about three minutes on two cores)::

    python benchmarks/neighbour.py
    python benchmarks/neighbour.py --epochs 10 --repeats 3 --json neighbour.json

Every measurement runs in a child process without ``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE`` and the thread-count
variables, so that OpenBLAS runs its own kernel for this processor with its own default thread count; the first lines
name the machine (``benchmarks/sgemm.py``). Other programs running meanwhile count as neighbours too: say so with the
figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sgemm

#: Variables that would change the kernel or the thread count OpenBLAS picks by itself.
ENVIRONMENT_OVERRIDES = (*sgemm.BLAS_OVERRIDES, "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

TARGET_BUSY_OVER_IDLE = 1.3
TARGET_IDLE_OVER_BEST = 1.1

BUSY_LOOP = "while True:\n    pass\n"


def clean_environment() -> dict:
    return {name: value for name, value in os.environ.items() if name not in ENVIRONMENT_OVERRIDES}


@contextlib.contextmanager
def neighbour(busy: bool):
    """One busy-loop process for the length of the block (none when ``busy`` is false)."""
    if not busy:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        time.sleep(0.5)  # let it take its core
        yield
    finally:
        process.kill()
        process.wait()


def child(arguments: list[str]) -> dict:
    """Run this script with ``arguments`` in a clean environment; its last line of output, as JSON."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), *arguments], env=clean_environment(),
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_demo(threads: int, out: Path, name: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scratchae", "demo", "--quick", "--only", name, "--device", "cpu",
                    "--threads", str(threads), "--out", str(out)], env=clean_environment(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------------------
# In the child process


def fit_seconds(thread_counts: list[int], epochs: int) -> dict:
    """Seconds of ``fit`` for the simple model on mnist-5k at each thread count (after one warm-up epoch each)."""
    from scratchae import builders, data
    from scratchae.losses import MSELoss
    from scratchae.engine.adam import FastAdam
    from scratchae.training import fit

    mnist = data.load("mnist-5k")

    def train(threads: int, n_epochs: int) -> float:
        model = builders.simple_autoencoder(32, seed=0, fast=True)
        optimizer = FastAdam(model.parameters(), lr=1e-3)
        started = time.perf_counter()
        fit(model, MSELoss(), optimizer, mnist.x_train, epochs=n_epochs, batch_size=256, validation=mnist.x_test,
            progress=False, threads=threads)
        return time.perf_counter() - started

    for threads in thread_counts:
        train(threads, 1)
    return {str(threads): train(threads, epochs) for threads in thread_counts}


# ---------------------------------------------------------------------------------------------------------------
# The table


def table(seconds: dict, labels: dict) -> tuple[str, list[str]]:
    """The Markdown table of medians, and the targets that were missed."""
    lines = ["| workload | threads | idle s | one busy neighbour s | busy / idle | idle / best idle |",
             "| --- | --- | --- | --- | --- | --- |"]
    missed = []
    for workload, by_threads in seconds.items():
        medians = {threads: {condition: statistics.median(times) for condition, times in runs.items()}
                   for threads, runs in by_threads.items()}
        best_idle = min(median["idle"] for median in medians.values())
        for threads, median in medians.items():
            busy_ratio, idle_ratio = median["busy"] / median["idle"], median["idle"] / best_idle
            lines.append(f"| {workload} | {labels[threads]} | {median['idle']:.2f} | {median['busy']:.2f} | "
                         f"{busy_ratio:.2f} | {idle_ratio:.2f} |")
            if threads == "1" and busy_ratio > TARGET_BUSY_OVER_IDLE:
                missed.append(f"{workload}, 1 thread: busy / idle {busy_ratio:.2f} > {TARGET_BUSY_OVER_IDLE}")
            if threads == "1" and idle_ratio > TARGET_IDLE_OVER_BEST:
                missed.append(f"{workload}, 1 thread: idle / best {idle_ratio:.2f} > {TARGET_IDLE_OVER_BEST}")
    return "\n".join(lines), missed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="scratchae beside a busy program, at 1, 2 and the default threads.")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the simple model per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="idle and busy measurements of each (medians)")
    parser.add_argument("--demo", default="simple_autoencoder", help="the demo run with --quick")
    parser.add_argument("--no-demo", action="store_true", help="time fit only")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement to this JSON file")
    parser.add_argument("--child", choices=("machine", "fit"), help=argparse.SUPPRESS)
    parser.add_argument("--threads-list", default="1", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "machine":
        print(json.dumps(sgemm.machine()))
        return 0
    if args.child == "fit":
        print(json.dumps(fit_seconds([int(n) for n in args.threads_list.split(",")], args.epochs)))
        return 0

    started = time.perf_counter()
    machine = child(["--child", "machine"])
    print(sgemm.describe(machine))
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}", flush=True)
    default = machine["default_threads"] or sgemm.cores()
    counts = sorted({1, 2, default})
    labels = {str(n): f"{n} (OpenBLAS's default)" if n == default else str(n) for n in counts}
    workloads = ["fit"] + ([] if args.no_demo else ["demo"])
    seconds = {workload: {str(n): {"idle": [], "busy": []} for n in counts} for workload in workloads}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for busy in ((False, True) if repeat % 2 == 0 else (True, False)):  # alternate: drift hits both alike
                condition = "busy" if busy else "idle"
                with neighbour(busy):
                    fit = child(["--child", "fit", "--threads-list", ",".join(map(str, counts)),
                                 "--epochs", str(args.epochs)])
                    for n in counts:
                        seconds["fit"][str(n)][condition].append(fit[str(n)])
                        if "demo" in seconds:
                            seconds["demo"][str(n)][condition].append(time_demo(n, Path(scratch), args.demo))
                print(f"  repeat {repeat + 1}, {condition}: "
                      + ", ".join(f"{workload} {n} thr {seconds[workload][str(n)][condition][-1]:.2f} s"
                                  for workload in workloads for n in counts), flush=True)
    names = {"fit": f"fit, simple model, {args.epochs} epochs of mnist-5k",
             "demo": f"scratchae demo --quick --only {args.demo}"}
    text, missed = table({names[workload]: values for workload, values in seconds.items()}, labels)
    print(f"\nmedians of {args.repeats}; load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}; "
          f"{time.perf_counter() - started:.0f} s in all\n")
    print(text)
    print("\n" + ("targets met with 1 thread" if not missed else "targets missed: " + "; ".join(missed)))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "seconds": seconds, "labels": labels,
                                               "epochs": args.epochs, "repeats": args.repeats}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The machine's float32 matrix-product speed per core: the figure that says how fast "a CPU" is for scratchae.

Every speed claim names its machine by this number: the simple model's epoch is about half matrix products on one
core, so a machine with half the sgemm rate per core trains at about two thirds of the speed, and the ratio to
PyTorch (which runs its own MKL kernels) moves with it.

Usage::

    python benchmarks/sgemm.py                  # one thread, then every core, on OpenBLAS's own kernel

It prints the processor, the BLAS kernel threadpoolctl reports, and the best GFLOP/s of a 2048 x 2048 float32
product with 1 thread and with all of them. ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` force an older kernel on
some machines: this script runs itself again without them (``--forced-kernel`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

#: Variables that make OpenBLAS use another kernel than the one it would pick for this processor.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def without_blas_overrides() -> dict:
    """This process's environment without the variables that force OpenBLAS's kernel."""
    return {name: value for name, value in os.environ.items() if name not in BLAS_OVERRIDES}


def processor() -> str:
    """The processor's model name, with "AVX-512" when it has it (from /proc/cpuinfo on Linux), else what the
    platform module says."""
    name, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            first_core = cpuinfo.read().split("\n\n")[0]
        fields = dict(map(str.strip, line.split(":", 1)) for line in first_core.splitlines() if ":" in line)
        name, flags = fields.get("model name", name), fields.get("flags", "")
    except OSError:
        pass
    return name + (" (AVX-512)" if "avx512f" in flags.split() else "")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def blas() -> dict:
    """NumPy's BLAS as threadpoolctl sees it: library, version, kernel (``architecture``) and its own thread count."""
    import numpy  # noqa: F401  (loads the BLAS)
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool["user_api"] == "blas":
            return {"library": pool["internal_api"], "version": pool.get("version"),
                    "kernel": pool.get("architecture") or "?", "default_threads": pool["num_threads"]}
    return {"library": "?", "version": None, "kernel": "?", "default_threads": None}


def sgemm_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of ``size`` x ``size`` float32 products with ``threads`` BLAS threads."""
    import numpy
    from threadpoolctl import threadpool_limits

    rng = numpy.random.default_rng(0)
    a, b = rng.random((size, size), dtype=numpy.float32), rng.random((size, size), dtype=numpy.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        out = a @ b  # warm-up: starts the threads and touches the output's pages
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            numpy.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def machine() -> dict:
    """Everything that names the machine for a speed figure."""
    found = {"processor": processor(), "cores": cores(), **blas(),
             "forced_by": {name: os.environ[name] for name in BLAS_OVERRIDES if name in os.environ}}
    found["sgemm_gflops_1_thread"] = round(sgemm_gflops(1), 1)
    found["sgemm_gflops_all_cores"] = round(sgemm_gflops(found["cores"]), 1)
    return found


def describe(found: dict) -> str:
    forced = ", ".join(f"{name}={value}" for name, value in found["forced_by"].items()) or "none"
    return (f"{found['processor']}, {found['cores']} cores; {found['library']} {found['version']} kernel "
            f"{found['kernel']} (forced by: {forced}); float32 sgemm {found['sgemm_gflops_1_thread']:.0f} GFLOP/s on "
            f"one core, {found['sgemm_gflops_all_cores']:.0f} on {found['cores']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Float32 matrix-product speed per core, and the BLAS kernel.")
    parser.add_argument("--forced-kernel", action="store_true",
                        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE if they are set")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not args.forced_kernel and any(name in os.environ for name in BLAS_OVERRIDES):
        # OpenBLAS reads them once, when it is loaded: run again, in place of this process, without them
        os.execve(sys.executable, [sys.executable, *sys.argv], without_blas_overrides())
    found = machine()
    print(json.dumps(found) if args.json else describe(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())

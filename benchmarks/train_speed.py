"""Training speed and memory of scratchae, side by side with PyTorch, in one process.

Both implementations train the same network from the same initial weights, on the same data, visiting the samples
in the same order, with the same batch size, Adam settings and thread count. Their epochs are interleaved (and which
one goes first alternates), so a machine that gets busier or quieter during the run affects both alike. For each one
the script prints the median time per epoch, its spread, the ratio to PyTorch, how close the epoch comes to the
machine's float32 matrix-product speed (the "sgemm limit"), and the peak memory of one epoch measured in a fresh
process. If the two end with mean losses more than 15 % apart it says so loudly and exits with status 1: a fast
result that learns something else proves nothing.

Usage::

    python benchmarks/train_speed.py                           # simple model, 5 measured epochs, all cores
    python benchmarks/train_speed.py --model denoising --threads 1
    python benchmarks/train_speed.py --model linear-latent --epochs 10 --json results.json
    python benchmarks/train_speed.py --data synthetic --device gpu
    python benchmarks/train_speed.py --model conv --threads 1 --samples 6400 --epochs 3

Run it from the repository's root with scratchae installed (``pip install -e .``); PyTorch is optional.

Only the standard library is imported at the top of this file: OpenBLAS, MKL and OpenMP read their thread count
from the environment when they are loaded, so NumPy, PyTorch and scratchae are imported inside functions, after
:func:`main` has set ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

LEARNING_RATE = 1e-3
NOISE_FACTOR = 0.5  # the denoising model's Gaussian noise, clipped to [0, 1]
LOSS_TOLERANCE = 0.15  # the largest relative difference of the final losses that still counts as "the same"
FEATURES = 28 * 28
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Setup:
    """What one ``--model`` trains: the scratchae builder, batch size, number of samples and Adam's weight decay."""

    builder: str
    batch_size: int
    samples: int
    weight_decay: float = 0.0
    noisy: bool = False
    vae: bool = False
    loss: str = "mse"  # the autoencoders' loss: "mse" or "bce" (a VAE's is always BCE + KL)
    latent_dim: int | None = None  # None: the builder's default
    images: bool = False  # a convolutional model: PyTorch is also timed in its channels-last layout


SETUPS = {
    "simple": Setup("simple", batch_size=256, samples=60_000),  # 784-128-32-128-784
    "denoising": Setup("denoising", batch_size=128, samples=60_000, noisy=True),  # 784-128-64-32-64-128-784
    "vae": Setup("vae", batch_size=128, samples=60_000, vae=True, latent_dim=20),  # 784-400-(20, 20)-400-784
    # the Keras blog's convolutional autoencoder, trained with BCE as there
    "conv": Setup("conv", batch_size=128, samples=60_000, loss="bce", images=True),
    # the keras-io convolutional VAE, latent 2, BCE + KL
    "conv-vae": Setup("conv-vae", batch_size=128, samples=60_000, vae=True, images=True),
    "linear-latent": Setup("linear-latent", batch_size=64, samples=10_000, weight_decay=1e-8),  # ...-16 linear-...
}


# ---------------------------------------------------------------------------------------------------------------
# Command line and threads


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time scratchae against PyTorch on the same training run.")
    parser.add_argument("--model", choices=sorted(SETUPS), default="simple")
    parser.add_argument("--epochs", type=_positive_int, default=5, help="measured epochs, after one warm-up epoch")
    parser.add_argument("--samples", type=_positive_int, default=None,
                        help="train on the first N samples only (default: the model's own, 60,000 for most); for "
                             "short runs of the slow convolutional models")
    parser.add_argument("--threads", type=_positive_int, default=available_cores(),
                        help="BLAS / OpenMP / PyTorch threads (default: every core this process may use)")
    parser.add_argument("--data", choices=("auto", "fashion-mnist", "synthetic"), default="auto",
                        help="auto: Fashion-MNIST when it is on this machine, else synthetic data of the same shape")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the peak memory of each implementation in a fresh process (default: yes)")
    parser.add_argument("--native-blas", action="store_true",
                        help="run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, on the machine's own BLAS kernel")
    # Internal: measure one implementation's peak memory in a process of its own (see measure_memory).
    parser.add_argument("--memory-child", choices=("scratchae", "torch", "torch-channels-last"),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: Variables that make OpenBLAS use another kernel than the one it would pick for this processor.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def use_native_blas() -> None:
    """Run this script again, in place of this process, without the variables that force OpenBLAS's kernel.

    OpenBLAS reads them once, when it is loaded, so they cannot be dropped from inside a process that has loaded it.
    """
    if any(name in os.environ for name in BLAS_OVERRIDES):
        environment = {name: value for name, value in os.environ.items() if name not in BLAS_OVERRIDES}
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)


def blas_report(threads: int) -> tuple[str, list[str]]:
    """The BLAS kernel NumPy uses (threadpoolctl's ``architecture``), and warnings about what forces it."""
    from threadpoolctl import threadpool_info

    kernels = [f"{pool['internal_api']} {pool.get('architecture') or '?'}" for pool in threadpool_info()
               if pool["user_api"] == "blas"]
    warnings = [f"{name}={os.environ[name]} is set: OpenBLAS runs a kernel chosen by it, not this processor's own "
                f"(run with --native-blas for the machine's own)" for name in BLAS_OVERRIDES if name in os.environ]
    return ", ".join(kernels) or "?", warnings


def use_blas_threads(threads: int) -> None:
    """Make scratchae's ``fit`` train with ``threads`` BLAS threads: by default it takes one, whatever the
    environment says (:mod:`scratchae.threads`)."""
    from scratchae import threads as blas

    blas.use(threads)


def set_thread_environment(threads: int) -> None:
    """Set the thread count of every BLAS / OpenMP library explicitly; must run before NumPy or PyTorch is imported."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def thread_report(threads: int, use_torch: bool) -> tuple[str, list[str]]:
    """What threadpoolctl sees loaded (BLAS and OpenMP libraries, with their thread counts), and any library that
    does not run the asked-for number of threads."""
    from threadpoolctl import threadpool_info

    parts, problems = [], []
    for pool in threadpool_info():
        if pool["user_api"] == "blas":  # e.g. "openblas 0.3.31 (pthreads)": NumPy's BLAS
            library = f"{pool['internal_api']} {pool.get('version')} ({pool.get('threading_layer')})"
        else:  # an OpenMP runtime, e.g. PyTorch's libgomp
            library = pool["prefix"]
        parts.append(f"{library} {pool['num_threads']} thr")
        if pool["num_threads"] != threads:
            problems.append(f"{pool['filepath']} runs {pool['num_threads']} threads, not {threads}")
    if use_torch:
        import torch

        # PyTorch's own BLAS (MKL in the x86 wheels) is linked statically, so threadpoolctl cannot see it
        parts.append(f"torch BLAS {_torch_blas(torch)}, {torch.get_num_threads()} thr")
        if torch.get_num_threads() != threads:
            problems.append(f"torch.get_num_threads() is {torch.get_num_threads()}, not {threads}")
    return "; ".join(parts), problems


def _torch_blas(torch) -> str:
    for setting in torch.__config__.show().replace(",", " ").split():
        if setting.startswith("BLAS_INFO="):
            return setting.split("=", 1)[1]
    return "?"


def machine_description(device: str) -> str:
    """Processor (or GPU) name and core count."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {available_cores()} cores"
    if device == "gpu":
        import cupy

        text += f", GPU {cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)['name'].decode()}"
    return text


# ---------------------------------------------------------------------------------------------------------------
# Data, models and FLOPs


def load_data(data: str, samples: int, seed: int):
    """(samples, 784) float32 images in [0, 1] and the data set's name.

    ``auto`` reads Fashion-MNIST if it is on this machine (never downloads) and otherwise makes synthetic data of the
    same shape, so the benchmark runs anywhere; ``synthetic`` always does.
    """
    import numpy

    from scratchae import data as datasets

    if data != "synthetic":
        try:
            # the full training set, or a seeded stratified subset of it for the 10,000-sample model
            train_size = None if samples == 60_000 else samples
            return datasets.load("fashion-mnist", download=False, train_size=train_size, seed=seed).x_train, \
                "fashion-mnist"
        except (datasets.DataNotFoundError, ImportError) as error:  # not on this machine, or its reader's needs
            if data == "fashion-mnist":
                raise
            reason = str(error).splitlines()[0]
            print(f"note: Fashion-MNIST cannot be read here ({reason}); using synthetic data of the same shape",
                  flush=True)
    x = numpy.random.default_rng(seed).random((samples, FEATURES), dtype=numpy.float32)  # uniform in [0, 1)
    return x, "synthetic"


def build_model(setup: Setup, seed: int):
    """The scratchae model of ``setup``, on the CPU, with seeded initial weights."""
    from scratchae.builders import BUILDERS

    options = {"noise_factor": NOISE_FACTOR} if setup.noisy else {}
    if setup.latent_dim is not None:
        options["latent_dim"] = setup.latent_dim
    return BUILDERS[setup.builder](seed=seed, **options)


def dense_shapes(model) -> list[tuple[int, int]]:
    """(in, out) of every Dense layer, input to output."""
    from scratchae.layers import Dense

    return [(layer.in_features, layer.out_features)
            for part in model.parts().values() for layer in part.layers if isinstance(layer, Dense)]


def weighted_layers(model) -> list[tuple[object, int]]:
    """Every layer with weights, input to output, with its multiply-adds per sample: ``in * out`` for a Dense
    layer, ``C_in * KH * KW`` per output value for a convolution, ``C_out * KH * KW`` per input value for a transposed
    one (each input pixel adds its weighted kernel into the output)."""
    from scratchae.conv import Conv2D, ConvTranspose2D
    from scratchae.shapes import output_shape
    from scratchae.layers import Dense

    found, inputs = [], {}
    shape = (model.input_features,)
    for name, part in model.parts().items():
        shape = inputs[model.PART_INPUTS[name]] if name in model.PART_INPUTS else shape
        inputs[name] = shape
        for layer in part.layers:
            after = output_shape(layer, shape)
            if isinstance(layer, Dense):
                found.append((layer, layer.in_features * layer.out_features))
            elif isinstance(layer, Conv2D):
                found.append((layer, layer.in_channels * math.prod(layer.kernel_size) * math.prod(after)))
            elif isinstance(layer, ConvTranspose2D):
                found.append((layer, layer.out_channels * math.prod(layer.kernel_size) * math.prod(shape)))
            shape = after
        inputs[name] = shape
    return found


def epoch_flops(model, samples: int) -> float:
    """Matrix-product FLOPs of one epoch: forward, weight gradients, and input gradients of every layer but the
    first (the data needs no gradient); a convolution counts as the products it is (its padding zeros included).
    Element-wise work (activations, pooling, loss, Adam) is left out: it is small."""
    products = [macs for _, macs in weighted_layers(model)]
    forward = weight_grads = 2 * samples * sum(products)
    input_grads = 2 * samples * (sum(products) - products[0])
    return float(forward + weight_grads + input_grads)


def architecture(model) -> str:
    """The network in a few characters: its Dense sizes (784-128-32-128-784), or for an image model its layers
    (c16 = a convolution to 16 channels, t64 a transposed one, p a pooling, u an upsampling, d16 a Dense layer)."""
    from scratchae.conv import Conv2D, ConvTranspose2D, MaxPool2D, UpSampling2D
    from scratchae.layers import Dense

    layers = [layer for part in model.parts().values() for layer in part.layers]
    if not any(isinstance(layer, (Conv2D, ConvTranspose2D)) for layer in layers):
        shapes = dense_shapes(model)
        return "-".join(str(size) for size in [shapes[0][0]] + [n_out for _, n_out in shapes])
    codes = {Conv2D: lambda layer: f"c{layer.out_channels}", ConvTranspose2D: lambda layer: f"t{layer.out_channels}",
             MaxPool2D: lambda layer: "p", UpSampling2D: lambda layer: "u",
             Dense: lambda layer: f"d{layer.out_features}"}
    return "-".join(codes[type(layer)](layer) for layer in layers if type(layer) in codes)


def parameter_bytes(model) -> int:
    return sum(parameter.size * parameter.data.dtype.itemsize for parameter in model.parameters())


def sgemm_rate(device: str, repeats: int = 5) -> tuple[float, int]:
    """Best GFLOP/s of a float32 square matrix product at the current thread count, and the matrix size.

    It is the speed limit of a dense layer: an epoch cannot do its matrix products faster than this.
    """
    import numpy

    from scratchae.backend import get_namespace, to_device

    size = 8192 if device == "gpu" else 2048  # a GPU needs bigger products to reach its peak
    rng = numpy.random.default_rng(0)
    a, b = (to_device(rng.random((size, size), dtype=numpy.float32), device) for _ in range(2))
    xp = get_namespace(a)
    out = a @ b  # warm-up: starts the threads (or the GPU kernels) and touches the output's pages
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        xp.matmul(a, b, out=out)
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9, size


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so that a clock read after it counts that work."""
    if device == "gpu":
        import cupy

        cupy.cuda.Device().synchronize()


# ---------------------------------------------------------------------------------------------------------------
# The two implementations, each able to train one epoch at a time


class ScratchaeRun:
    """scratchae as a user trains it: ``fit`` with Adam and MSE, one epoch per call.

    The running History is passed back in, so the epoch number (which seeds the shuffle) advances as in one long run.
    """

    name = "scratchae"
    child = "scratchae"  # the name --memory-child knows it by

    def __init__(self, model, setup: Setup, x, device: str, seed: int):
        from scratchae.backend import to_device
        from scratchae.losses import BCELoss, MSELoss, VAELoss
        from scratchae.optim import Adam
        from scratchae.training import History

        self.model = model.to(device)  # on the CPU the arrays stay where they are
        self.x = to_device(x, device)  # moved once; fit keeps data that is already on the model's device
        self.loss = VAELoss("bce") if setup.vae else {"mse": MSELoss, "bce": BCELoss}[setup.loss]()
        self.optimizer = Adam(self.model.parameters(), lr=LEARNING_RATE, weight_decay=setup.weight_decay)
        self.history = History()
        self.setup, self.device, self.seed = setup, device, seed

    def epoch(self, epoch: int) -> float:
        """Train one epoch (which must be the next one); returns its mean training loss."""
        from scratchae.training import fit

        assert len(self.history) == epoch, "epochs must be run in order, as fit numbers them"
        fit(self.model, self.loss, self.optimizer, self.x, epochs=1, batch_size=self.setup.batch_size,
            seed=self.seed, progress=False, history=self.history)
        return self.history["loss"][-1]

    def synchronize(self) -> None:
        synchronize(self.device)


class TorchRun:
    """The same training in PyTorch, written as a PyTorch user writes it.

    Same architecture and initial weights (copied from the scratchae model), float32, ``torch.optim.Adam`` with its
    default implementation, the same per-epoch permutation (the data tensor is indexed with it once per epoch and
    batches are sliced from the shuffled copy), and ``loss.item()`` every batch, as scratchae's loop reads every
    batch's loss.
    """

    name = "PyTorch"
    child = "torch"
    channels_last = False

    def __init__(self, model, setup: Setup, x, device: str, seed: int):
        import torch

        from scratchae.torch_twin import torch_twin, torch_vae_loss, torch_vae_twin

        torch.manual_seed(seed)  # the denoising noise and the VAE's eps; the weights come from the scratchae model
        self.torch = torch
        self.device = torch.device("cuda" if device == "gpu" else "cpu")
        layout = {"memory_format": torch.channels_last} if self.channels_last else {}
        self.net = (torch_vae_twin(model, **layout) if setup.vae else torch_twin(model, **layout)).to(self.device)
        self.x = torch.from_numpy(x).to(self.device)  # shares the NumPy array's memory on the CPU
        self.loss = torch_vae_loss if setup.vae else {"mse": torch.nn.MSELoss, "bce": torch.nn.BCELoss}[setup.loss]()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LEARNING_RATE, weight_decay=setup.weight_decay)
        self.setup, self.seed = setup, seed

    def epoch(self, epoch: int) -> float:
        """Train one epoch; returns its mean training loss."""
        import numpy

        torch, batch_size = self.torch, self.setup.batch_size
        order = numpy.random.default_rng((self.seed, epoch)).permutation(len(self.x))  # as scratchae's fit
        shuffled = self.x[torch.from_numpy(order).to(self.device)]
        self.net.train()
        total = 0.0
        for start in range(0, len(shuffled), batch_size):
            clean = shuffled[start:start + batch_size]
            inputs = (clean + NOISE_FACTOR * torch.randn_like(clean)).clamp_(0.0, 1.0) if self.setup.noisy else clean
            loss = self.loss(self.net(inputs), clean)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(clean)  # weighted by the batch's size, as scratchae's History averages
        return total / len(shuffled)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


class TorchChannelsLastRun(TorchRun):
    """The same PyTorch training with the images and convolution weights channels-last (NHWC in memory), the layout
    PyTorch's CPU convolutions are fastest in; the default layout stays the reference of the ratios."""

    name = "PyTorch channels_last"
    child = "torch-channels-last"
    channels_last = True


def timed_epoch(run, epoch: int) -> tuple[float, float]:
    """(seconds, mean loss) of one epoch of ``run``."""
    gc.collect()  # the other implementation's garbage is collected here, not inside this one's timing
    run.synchronize()
    started = time.perf_counter()
    loss = run.epoch(epoch)
    run.synchronize()
    return time.perf_counter() - started, loss


def interleave(runs: list, epochs: int) -> dict[str, dict]:
    """One warm-up epoch and ``epochs`` measured ones of every run, alternating which run goes first.

    Returns, per run name, the measured seconds and the loss of every epoch (warm-up included).
    """
    results = {run.name: {"seconds": [], "losses": []} for run in runs}
    for epoch in range(1 + epochs):
        label = "warm-up" if epoch == 0 else f"epoch {epoch}/{epochs}"
        report = []
        for run in (runs if epoch % 2 == 0 else runs[::-1]):
            seconds, loss = timed_epoch(run, epoch)
            results[run.name]["losses"].append(loss)
            if epoch > 0:
                results[run.name]["seconds"].append(seconds)
            report.append(f"{run.name} {seconds:.3f} s (loss {loss:.5f})")
        print(f"  {label:>12}: " + ", ".join(report), flush=True)
    return results


# ---------------------------------------------------------------------------------------------------------------
# Peak memory, measured in a fresh process per implementation


def proc_status(field: str) -> int | None:
    """A ``VmRSS`` / ``VmHWM`` line of /proc/self/status in bytes, or None where there is no /proc."""
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Restart VmHWM from the current RSS (Linux >= 4.0), so that the peak is that of training rather than of the
    transient buffers of decompressing the data files. False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def memory_child(args: argparse.Namespace) -> None:
    """In the child process: baseline RSS, load the data, build, train one epoch, peak RSS; prints one JSON line."""
    setup = SETUPS[args.model]
    run_class = {run.child: run for run in (ScratchaeRun, TorchRun, TorchChannelsLastRun)}[args.memory_child]
    start_libraries(run_class, setup, args.device, args.seed)
    baseline = proc_status("VmRSS")  # before the data and the model
    device_baseline = device_memory_baseline(args.memory_child, args.device)
    x, _ = load_data(args.data, args.samples or setup.samples, args.seed)
    peak_reset = reset_peak_rss()
    model = build_model(setup, args.seed)
    run = run_class(model, setup, x, args.device, args.seed)
    run.epoch(0)
    run.synchronize()
    device_peak = device_memory_peak(args.memory_child, args.device)
    print(json.dumps({"baseline": baseline, "peak": proc_status("VmHWM"), "peak_includes_loading": not peak_reset,
                      "device_baseline": device_baseline, "device_peak": device_peak,
                      "data_bytes": int(x.nbytes), "parameter_bytes": parameter_bytes(model)}))


def start_libraries(run_class, setup: Setup, device: str, seed: int) -> None:
    """Train a throwaway model on two batches of random data before the baseline is read.

    What the libraries set up once, whatever the data (imports, code paged in from the shared libraries, thread
    pools, BLAS buffers, PyTorch's first-use initialisation: about 70 MB for PyTorch on a CPU), then belongs to the
    baseline, and the peak above it is what grows with the data and the model.
    """
    import numpy

    import scratchae.data  # noqa: F401  (load_data's import, done here so that it is in the baseline too)

    tiny = numpy.random.default_rng(seed).random((2 * setup.batch_size, FEATURES), dtype=numpy.float32)
    run_class(build_model(setup, seed), setup, tiny, device, seed).epoch(0)
    gc.collect()


def device_memory_baseline(implementation: str, device: str) -> int | None:
    """Empty the implementation's GPU memory pool of cached free blocks and return the bytes it still holds (None on
    the CPU). Both libraries keep freed GPU memory for reuse; emptied, the pool grows from here only as needed."""
    if device != "gpu":
        return None
    if implementation == "scratchae":
        import cupy

        pool = cupy.get_default_memory_pool()
        pool.free_all_blocks()
        return pool.total_bytes()
    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_reserved()


def device_memory_peak(implementation: str, device: str) -> int | None:
    """The most bytes the implementation's GPU memory pool has held (None on the CPU).

    CuPy's pool gives nothing back unless asked, so what it holds now is its peak; PyTorch counts its peak itself.
    """
    if device != "gpu":
        return None
    if implementation == "scratchae":
        import cupy

        return cupy.get_default_memory_pool().total_bytes()
    import torch

    return torch.cuda.max_memory_reserved()


def measure_memory(args: argparse.Namespace, implementation: str, data: str) -> dict:
    """Run this script again with ``--memory-child`` and return the peak memory above the baseline, in bytes and as
    a multiple of (data + parameters), for the host (from /proc) and, on a GPU, for the device."""
    command = [sys.executable, os.path.abspath(__file__), "--memory-child", implementation, "--model", args.model,
               "--threads", str(args.threads), "--data", data, "--device", args.device, "--seed", str(args.seed)]
    if args.samples:
        command += ["--samples", str(args.samples)]
    child = subprocess.run(command, capture_output=True, text=True)
    if child.returncode != 0:
        return {"error": child.stderr.strip().splitlines()[-1] if child.stderr.strip() else f"exit {child.returncode}"}
    found = json.loads(child.stdout.strip().splitlines()[-1])
    useful = found["data_bytes"] + found["parameter_bytes"]
    result = {"data_bytes": found["data_bytes"], "parameter_bytes": found["parameter_bytes"],
              "peak_includes_loading": found["peak_includes_loading"], "host_bytes": None, "host_ratio": None}
    if found["baseline"] is not None and found["peak"] is not None:
        result["host_bytes"] = found["peak"] - found["baseline"]
        result["host_ratio"] = result["host_bytes"] / useful
    if found["device_peak"] is not None:
        result["device_bytes"] = found["device_peak"] - found["device_baseline"]
        result["device_ratio"] = result["device_bytes"] / useful
    return result


# ---------------------------------------------------------------------------------------------------------------
# Results


def summarize(results: dict[str, dict], flops: float, sgemm_gflops: float) -> None:
    """Add median, min, max, final loss and the fraction of the sgemm limit to each run's results."""
    for result in results.values():
        seconds = result["seconds"]
        result.update(median=statistics.median(seconds), min=min(seconds), max=max(seconds),
                      final_loss=result["losses"][-1])
        result["sgemm_fraction"] = flops / (sgemm_gflops * 1e9) / result["median"]
    if "PyTorch" in results:
        for result in results.values():
            result["ratio_vs_torch"] = result["median"] / results["PyTorch"]["median"]
    if TorchChannelsLastRun.name in results:  # convolutional models: PyTorch's faster layout as a second reference
        for result in results.values():
            result["ratio_vs_channels_last"] = result["median"] / results[TorchChannelsLastRun.name]["median"]


def memory_cell(memory: dict | None, device: str) -> str:
    if not memory:
        return "n/a"
    if "error" in memory:
        return f"n/a ({memory['error'][:40]})"
    which = "device" if device == "gpu" else "host"
    if memory.get(f"{which}_bytes") is None:
        return "n/a"
    return f"{memory[f'{which}_bytes'] / 2**20:.0f} MiB ({memory[f'{which}_ratio']:.2f}x)"


def format_table(results: dict[str, dict], device: str) -> str:
    memory = "peak GPU memory" if device == "gpu" else "peak memory"
    channels_last = any("ratio_vs_channels_last" in r for r in results.values())
    header = ("implementation", "median s/epoch", "min-max", "ratio vs PyTorch",
              *(("ratio vs channels_last",) if channels_last else ()), "sgemm fraction",
              f"{memory} (x data+model)", "final loss")
    rows = [header]
    for name, r in results.items():
        ratio = f"{r['ratio_vs_torch']:.2f}" if "ratio_vs_torch" in r else "n/a"
        second = (f"{r['ratio_vs_channels_last']:.2f}",) if channels_last else ()
        rows.append((name, f"{r['median']:.3f}", f"{r['min']:.3f}-{r['max']:.3f}", ratio, *second,
                     f"{r['sgemm_fraction']:.1%}", memory_cell(r.get("memory"), device), f"{r['final_loss']:.5f}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def loss_mismatch(results: dict[str, dict]) -> str | None:
    """A loud message when scratchae's and PyTorch's last-epoch mean losses differ by more than LOSS_TOLERANCE."""
    if "PyTorch" not in results:
        return None
    ours = results["scratchae"]["final_loss"]
    theirs = max((r["final_loss"] for name, r in results.items() if name != "scratchae"),
                 key=lambda loss: abs(ours - loss) / abs(loss))  # the PyTorch run furthest from scratchae
    difference = abs(ours - theirs) / abs(theirs)
    if difference <= LOSS_TOLERANCE:
        return None
    rule = "!" * 100
    return (f"{rule}\nLOSS MISMATCH: after the last measured epoch scratchae's mean training loss is {ours:.5f} and "
            f"PyTorch's is {theirs:.5f},\n{difference:.0%} apart (more than {LOSS_TOLERANCE:.0%}). The two runs did "
            f"not learn the same thing, so the timings above do not compare the same work.\n{rule}")


# ---------------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.native_blas:
        use_native_blas()  # runs this script again without the overrides; returns only when there are none
    set_thread_environment(args.threads)  # before the first import of NumPy or PyTorch
    use_blas_threads(args.threads)
    if args.memory_child:
        if args.memory_child.startswith("torch"):
            import_torch(args.threads)
        memory_child(args)
        return 0
    if args.device == "gpu":
        from scratchae.backend import DeviceError, resolve_device

        try:
            resolve_device("gpu")
        except DeviceError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    torch, notes = choose_torch(args)

    setup = SETUPS[args.model]
    try:
        x, data_name = load_data(args.data, args.samples or setup.samples, args.seed)
    except (ValueError, ImportError) as error:  # --data fashion-mnist where it cannot be read
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = build_model(setup, args.seed)
    info = describe_run(args, setup, model, x, data_name, torch, notes)
    print_header(info)

    # PyTorch's copy is built first: it takes the scratchae model's initial weights before anything trains.
    torch_runs = [TorchRun] + ([TorchChannelsLastRun] if setup.images else [])
    runs = [run(model, setup, x, args.device, args.seed) for run in torch_runs] if torch else []
    runs.insert(0, ScratchaeRun(model, setup, x, args.device, args.seed))
    results = interleave(runs, args.epochs)
    summarize(results, info["flops_per_epoch"], info["sgemm_gflops"])
    if args.memory:
        print("  measuring peak memory, one fresh process per implementation ...", flush=True)
        for run in runs:
            results[run.name]["memory"] = measure_memory(args, run.child, data_name)

    print()
    print(format_table(results, args.device))
    mismatch = loss_mismatch(results)
    if mismatch:
        print(mismatch)
    if args.json:
        with open(args.json, "w") as file:
            json.dump({**info, "loss_check": "failed" if mismatch else "passed", "results": results}, file, indent=2)
        print(f"results written to {args.json}")
    return 1 if mismatch else 0


def import_torch(threads: int):
    """Import PyTorch and give it the same thread count as the BLAS."""
    import torch

    torch.set_num_threads(threads)
    return torch


def choose_torch(args: argparse.Namespace):
    """PyTorch (or None, when it cannot take part) and the notes that say why and how it runs."""
    if not torch_available():
        return None, ["PyTorch is not installed: timing scratchae alone"]
    torch = import_torch(args.threads)
    if args.device == "gpu" and not torch.cuda.is_available():
        return None, ["this PyTorch cannot use CUDA: timing scratchae alone"]
    # PyTorch's documented rule when foreach is not given: the foreach implementation on CUDA, a loop on the CPU
    adam = "foreach" if args.device == "gpu" else "for-loop"
    return torch, [f"PyTorch {torch.__version__}, torch.optim.Adam's default implementation here: {adam}"]


def describe_run(args, setup: Setup, model, x, data_name: str, torch, notes: list[str]) -> dict:
    """Everything about the run that is not a timing: machine, threads in use, data, model, FLOPs, sgemm limit."""
    sgemm_gflops, sgemm_size = sgemm_rate(args.device)
    # threadpoolctl sees only the libraries already loaded: asked after NumPy's BLAS and PyTorch have run
    threads_in_use, thread_problems = thread_report(args.threads, torch is not None)
    kernel, kernel_warnings = blas_report(args.threads)
    return {"machine": machine_description(args.device), "device": args.device, "threads": args.threads,
            "threads_in_use": threads_in_use, "blas_kernel": kernel, "data": data_name, "samples": len(x),
            "model": args.model,
            "architecture": architecture(model), "loss": "BCE + KL" if setup.vae else setup.loss.upper(),
            "batch_size": setup.batch_size, "weight_decay": setup.weight_decay, "epochs": args.epochs,
            "seed": args.seed, "flops_per_epoch": epoch_flops(model, len(x)), "sgemm_gflops": sgemm_gflops,
            "sgemm_size": sgemm_size,
            "notes": notes + [f"WARNING: {problem}" for problem in thread_problems + kernel_warnings]}


def print_header(info: dict) -> None:
    decay = f" weight decay {info['weight_decay']:g}" if info["weight_decay"] else ""
    print(f"machine: {info['machine']} | threads: {info['threads']} ({info['threads_in_use']}) | "
          f"BLAS kernel: {info['blas_kernel']} | data: {info['data']} {info['samples']}x{FEATURES} float32 | "
          f"device: {info['device']}")
    loss = "VAE loss (BCE + KL)" if info["loss"] == "BCE + KL" else info["loss"]
    print(f"model: {info['model']} {info['architecture']}, batch {info['batch_size']}, "
          f"Adam lr {LEARNING_RATE:g}{decay}, {loss} | {info['flops_per_epoch'] / 1e9:.1f} GFLOP/epoch | "
          f"sgemm limit {info['sgemm_gflops']:.1f} GFLOP/s (float32 {info['sgemm_size']}x{info['sgemm_size']}, "
          f"best of 5)")
    for note in info["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    sys.exit(main())

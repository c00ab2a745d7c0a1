"""The one command to run when a machine with an NVIDIA GPU is lent: every GPU test, then the GPU benchmark of every
model against PyTorch on CUDA, in under five minutes, with the results in one Markdown file.

    python benchmarks/gpu_check.py                  on the GPU machine: writes gpu-check.md
    python benchmarks/gpu_check.py --out FILE       the same, the table in FILE
    python benchmarks/gpu_check.py --dry-run        a rehearsal on the CPU: the same steps, tiny sizes, --device cpu

What it does, in order:

1. Looks for an NVIDIA GPU (``nvidia-smi``). Without one it stops at once, with one line that says so and exit
   status 2; ``--dry-run`` goes on with the CPU instead.
2. On the GPU machine only, installs what is missing: CuPy from scratchae's ``cuda12`` or ``cuda13`` extra (the one
   that matches the driver's CUDA version), and PyTorch 2.13 if no PyTorch is there (one already there is used as
   it is, and its version is written in the table). scratchae itself is imported from this checkout.
3. Runs every test marked ``gpu`` (``pytest -m gpu`` over the test files that use the mark).
4. Runs ``benchmarks/train_speed.py --device gpu`` for every model of its ``--model`` choices (``SETUPS``: a model
   added there is checked here with no change), on synthetic data of the model's own size, 3 measured epochs,
   without the peak-memory processes (``--memory`` adds them). Each model gets an equal share of what is left of the
   five minutes; one that runs out of time is named in the table as timed out.
5. Writes the table (machine, tests, one row per model) to ``--out`` and prints it; exit status 0 when every test
   passed and every model ran with matching losses, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from train_speed import SETUPS  # noqa: E402  the benchmark's --model choices: the one list of models

#: The whole check, tests and benchmarks, must end within five minutes; this leaves a margin for writing the table.
BUDGET_S = 285
#: The share of the budget the GPU tests may take at most.
TESTS_BUDGET_S = 120
#: Measured epochs per model (after one warm-up epoch).
EPOCHS = 3
#: The rehearsal's sizes: a few hundred samples, one epoch, one thread, on the CPU.
DRY_RUN_SAMPLES = 512
#: The PyTorch that is installed when none is there (the version the CPU benchmarks use).
TORCH_REQUIREMENT = "torch==2.13.0"


@dataclass
class ModelResult:
    """One model's benchmark: its status and, when it ran, the median seconds per epoch of each implementation."""

    model: str
    status: str
    seconds: float
    scratchae: float | None = None
    torch: float | None = None
    ratio: float | None = None
    sgemm_fraction: float | None = None
    loss_check: str = ""
    notes: list[str] = field(default_factory=list)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Every GPU test and the GPU benchmark of every model, in one "
                                                 "command, under five minutes; the table goes to --out.")
    parser.add_argument("--out", default="gpu-check.md", help="where to write the table (default: gpu-check.md)")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"rehearse on the CPU: the same steps with --device cpu, {DRY_RUN_SAMPLES} samples, "
                             "1 epoch, nothing installed")
    parser.add_argument("--models", nargs="+", choices=list(SETUPS), default=list(SETUPS), metavar="MODEL",
                        help=f"benchmark only these models (default: all of {', '.join(SETUPS)})")
    parser.add_argument("--memory", action="store_true", help="also measure each implementation's peak memory "
                                                              "(one fresh process each: slower)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# The GPU and what it needs


def find_gpu() -> tuple[str | None, str]:
    """(the GPU's name and driver, the CUDA major version the driver supports) or (None, why there is none)."""
    if shutil.which("nvidia-smi") is None:
        return None, "nvidia-smi is not installed: there is no NVIDIA driver here"
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30)
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"nvidia-smi did not answer ({error})"
    gpus = [line.strip() for line in query.stdout.splitlines() if line.strip()]
    if query.returncode != 0 or not gpus:
        return None, f"nvidia-smi finds no GPU ({(query.stderr or query.stdout).strip()[:200]})"
    name, _, driver = gpus[0].partition(",")
    cuda = re.search(r"CUDA Version:\s*(\d+)", header)
    return f"{name.strip()}, driver {driver.strip()}", cuda.group(1) if cuda else "13"


def cupy_extra(cuda_major: str) -> list[str]:
    """The requirements of scratchae's CuPy extra for this CUDA major version, read from pyproject.toml."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return extras.get(f"cuda{cuda_major}", extras["cuda13"])


def install_missing(cuda_major: str) -> list[str]:
    """pip-install CuPy (scratchae's extra) and PyTorch where they are missing; returns what was installed.

    Raises RuntimeError with pip's last line when an install fails (no network, no wheel for this machine).
    """
    wanted = []
    if importlib.util.find_spec("cupy") is None:
        wanted += cupy_extra(cuda_major)
    if importlib.util.find_spec("torch") is None:
        wanted.append(TORCH_REQUIREMENT)
    if wanted:
        print(f"gpu_check: installing {' '.join(wanted)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *wanted], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise RuntimeError(f"could not install {' '.join(wanted)}: {last}")
    return wanted


def child_environment() -> dict[str, str]:
    """The environment of every step: scratchae imported from this checkout, output unbuffered."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def library_versions() -> str:
    """The versions of NumPy, CuPy and PyTorch that the steps import."""
    code = ("import importlib\nfor name in ('numpy', 'cupy', 'torch'):\n    try:\n"
            "        print(f'{name} {importlib.import_module(name).__version__}')\n"
            "    except Exception:\n        print(f'{name} absent')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_environment(),
                          timeout=120)
    return ", ".join(done.stdout.split("\n")[:3]).strip(", ")


# ---------------------------------------------------------------------------------------------------------------
# The steps


def gpu_test_files() -> list[str]:
    """The test files that mark tests ``gpu``: a new one joins the check by using the mark."""
    return sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").glob("test_*.py")
                  if "mark.gpu" in path.read_text(encoding="utf-8"))


def run_gpu_tests(timeout: float, *, dry_run: bool) -> tuple[bool, str]:
    """``pytest -m gpu`` over the files that use the mark: (whether it passed, pytest's summary line).

    On the GPU every test must pass and none be skipped (a skip means CuPy cannot use the GPU); in a rehearsal on
    the CPU they are all skipped, and only a failure or an error counts.
    """
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *gpu_test_files()]
    print(f"gpu_check: {' '.join(command[1:])}", flush=True)
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=child_environment(),
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    print(done.stdout[-4000:], done.stderr[-2000:], sep="", flush=True)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else f"exit status {done.returncode}"
    if dry_run:  # exit status 5: no test ran, as on a machine without a GPU
        return done.returncode in (0, 5) and not re.search(r"failed|error", summary), summary
    return done.returncode == 0 and "passed" in summary and "skipped" not in summary, summary


def run_benchmark(model: str, device: str, *, dry_run: bool, memory: bool, timeout: float) -> ModelResult:
    """``train_speed.py --model MODEL --device DEVICE`` on synthetic data; its results from the JSON it writes."""
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results.json"
        command = [sys.executable, str(HERE / "train_speed.py"), "--model", model, "--device", device,
                   "--data", "synthetic", "--json", str(results), "--memory" if memory else "--no-memory"]
        command += ["--samples", str(DRY_RUN_SAMPLES), "--epochs", "1", "--threads", "1"] if dry_run \
            else ["--epochs", str(EPOCHS)]
        print(f"gpu_check: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=child_environment(),
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return ModelResult(model, f"timed out after {timeout:.0f} s", time.perf_counter() - started)
        seconds = time.perf_counter() - started
        print(done.stdout[-3000:], done.stderr[-2000:], sep="", flush=True)
        if not results.is_file():
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            return ModelResult(model, f"failed (exit status {done.returncode}: {last[:120]})", seconds)
        found = json.loads(results.read_text())
    runs = found["results"]
    ours, theirs = runs["scratchae"], runs.get("PyTorch")
    result = ModelResult(model, "ok" if done.returncode == 0 else f"exit status {done.returncode}", seconds,
                         scratchae=ours["median"], sgemm_fraction=ours["sgemm_fraction"],
                         loss_check=found["loss_check"] if theirs else "no PyTorch",
                         notes=[note for note in found["notes"] if "WARNING" in note or "alone" in note])
    if theirs:
        result.torch, result.ratio = theirs["median"], ours["ratio_vs_torch"]
    return result


# ---------------------------------------------------------------------------------------------------------------
# The table


def _cell(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def format_report(*, machine: str, versions: str, dry_run: bool, tests: tuple[bool, str],
                  results: list[ModelResult], seconds: float, command: str) -> str:
    """The Markdown the check writes: where and how it ran, the tests' summary, one row per model."""
    device = "CPU (dry run: tiny sizes, the figures mean nothing)" if dry_run else "GPU"
    lines = [f"# GPU check ({'dry run' if dry_run else 'GPU'})", "",
             f"- command: `{command}`",
             f"- when: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {seconds:.0f} s in all",
             f"- machine: {machine}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores",
             f"- libraries: {versions}",
             f"- device: {device}",
             f"- GPU tests (`pytest -m gpu`): {'passed' if tests[0] else 'FAILED'}: {tests[1]}", "",
             "| model | scratchae s/epoch | PyTorch s/epoch | ratio (scratchae / PyTorch) | sgemm fraction | "
             "same loss | status | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r.model} | {_cell(r.scratchae, '.4f')} | {_cell(r.torch, '.4f')} | {_cell(r.ratio, '.2f')} "
                     f"| {_cell(r.sgemm_fraction, '.1%')} | {r.loss_check or 'n/a'} | {r.status} | {r.seconds:.0f} |")
    notes = [f"- {r.model}: {note}" for r in results for note in r.notes]
    if notes:
        lines += ["", "Notes from the benchmark:", *notes]
    size = f"1 epoch of {DRY_RUN_SAMPLES} synthetic samples" if dry_run \
        else f"the median of {EPOCHS} epochs of synthetic data of each model's own size"
    lines += ["", f"Each model: {size}, after one warm-up epoch, scratchae and PyTorch alternating in one process; "
                  "ratios below 1 mean scratchae is faster."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    gpu, detail = find_gpu()
    if gpu is None and not args.dry_run:
        print(f"gpu_check: error: no NVIDIA GPU here ({detail}); run this on a machine with one, or rehearse the "
              "steps on the CPU with --dry-run", file=sys.stderr)
        return 2
    if not args.dry_run:
        try:
            install_missing(detail)
        except RuntimeError as error:
            print(f"gpu_check: error: {error}", file=sys.stderr)
            return 2
    machine = gpu if gpu is not None else f"no GPU ({detail})"
    versions = library_versions()
    device = "cpu" if args.dry_run else "gpu"

    tests = run_gpu_tests(TESTS_BUDGET_S, dry_run=args.dry_run)
    results = []
    for index, model in enumerate(args.models):
        left = BUDGET_S - (time.perf_counter() - started)
        share = left / (len(args.models) - index)
        if share < 5:
            results.append(ModelResult(model, "not run: the five minutes are spent", 0.0))
            continue
        results.append(run_benchmark(model, device, dry_run=args.dry_run, memory=args.memory, timeout=share))

    command = " ".join(["python benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])])
    report = format_report(machine=machine, versions=versions, dry_run=args.dry_run, tests=tests, results=results,
                           seconds=time.perf_counter() - started, command=command)
    Path(args.out).write_text(report, encoding="utf-8")
    print(report)
    print(f"gpu_check: table written to {args.out}")
    compared = ("passed", "no PyTorch") if args.dry_run else ("passed",)  # on the GPU, PyTorch on CUDA must run too
    ran = all(r.status == "ok" and r.loss_check in compared for r in results)
    return 0 if tests[0] and ran else 1


if __name__ == "__main__":
    sys.exit(main())

"""``benchmarks/gpu_check.py``, the one command for a lent GPU: it stops with one line where there is no GPU, and its
rehearsal on the CPU (``--dry-run``) runs every step, the GPU tests and the benchmark, and writes the table."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "gpu_check.py"


def load(name: str, monkeypatch):
    """A script of benchmarks/ as a module (they are scripts, not a package)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # where dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_model_of_the_benchmark_is_checked_and_every_gpu_test_file_is_run(monkeypatch):
    gpu_check, train_speed = load("gpu_check", monkeypatch), load("train_speed", monkeypatch)
    assert gpu_check.parse_args([]).models == list(train_speed.SETUPS)  # a model added to the benchmark joins
    files = gpu_check.gpu_test_files()
    assert "tests/test_gpu.py" in files and "tests/test_data.py" in files  # the files that mark tests gpu
    assert "tests/test_plots.py" not in files


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver")
def test_without_a_gpu_it_stops_at_once_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "table.md")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no NVIDIA GPU here" in done.stderr and "--dry-run" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "table.md").exists()


def test_the_dry_run_runs_the_gpu_tests_and_the_benchmark_on_the_cpu_and_writes_the_table(tmp_path):
    table = tmp_path / "table.md"
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(table), "--models", "simple", "vae"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = table.read_text()
    assert "# GPU check (dry run)" in text
    assert "- GPU tests (`pytest -m gpu`): passed:" in text and "skipped" in text  # collected, skipped without a GPU
    rows = [line for line in text.splitlines() if line.startswith(("| simple |", "| vae |"))]
    assert len(rows) == 2
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[6] == "ok" and float(cells[1]) > 0  # it ran, and timed scratchae's epoch

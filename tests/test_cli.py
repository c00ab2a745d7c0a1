"""The ``scratchae`` command: train, evaluate and gradcheck end to end, and one-line errors with status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from scratchae import checkpoint
from scratchae.backend import gpu_available
from scratchae.cli import main
from scratchae.builders import simple_autoencoder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_FILES = ["history.csv", "history.json", "loss.png", "model.npz", "run.json"]


def scratchae(*arguments, cwd) -> subprocess.CompletedProcess:
    """Run ``python -m scratchae ARGUMENTS`` as a user would."""
    return subprocess.run([sys.executable, "-m", "scratchae", *arguments], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def run(argv) -> int:
    """``main(argv)`` in this process: its return value, or the status of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_SIGNATURE


def assert_one_line_error(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "error" in lines[0]
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------------------------------------------------
# End to end, as separate processes
# --------------------------------------------------------------------------------------------------------------------

def test_train_then_evaluate_from_the_command_line(tmp_path):
    trained = scratchae("train", "--model", "simple", "--data", "digits", "--epochs", "1", "--batch-size", "128",
                        "--device", "cpu", "--out", "out", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "Traceback" not in trained.stderr
    assert "Total params: 24,928" in trained.stdout  # the summary table: 64-128-32-128-64
    assert "Layer (type)" in trained.stdout
    epoch_lines = [line for line in trained.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 1 and "loss" in epoch_lines[0] and "val_loss" in epoch_lines[0]

    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == sorted(RUN_FILES + ["reconstructions.png"])
    assert is_png(out / "loss.png") and is_png(out / "reconstructions.png")
    history = json.loads((out / "history.json").read_text())
    assert len(history["metrics"]["loss"]) == 1 and len(history["metrics"]["val_loss"]) == 1
    assert (out / "history.csv").read_text().splitlines()[0] == "epoch,loss,val_loss,seconds"
    saved = checkpoint.load(out / "model.npz")
    assert saved.history["loss"] == history["metrics"]["loss"]

    evaluated = scratchae("evaluate", "out/model.npz", "--data", "digits", "--device", "cpu", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "test set (360 samples)" in evaluated.stdout
    reported = float(evaluated.stdout.split("loss ")[1].split()[0])
    assert reported == pytest.approx(history["metrics"]["val_loss"][0], abs=1e-4)  # the test set is the validation set
    assert is_png(out / "reconstructions-digits.png")


def test_a_wrong_argument_from_the_command_line_is_one_line_and_status_2(tmp_path):
    result = scratchae("train", "--model", "transformer", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert "transformer" in result.stderr
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------------------------------
# In this process: the other models, evaluate, gradcheck
# --------------------------------------------------------------------------------------------------------------------

def test_train_and_evaluate_a_classifier(tmp_path, capsys):
    out = tmp_path / "clf"
    assert run(["train", "--model", "classifier", "--data", "digits", "--epochs", "1", "--device", "cpu",
                "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Total params" in printed
    epoch_line = next(line for line in printed.splitlines() if line.startswith("epoch"))
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert f" {name} " in epoch_line
    assert sorted(os.listdir(out)) == RUN_FILES
    assert is_png(out / "loss.png")
    history = json.loads((out / "history.json").read_text())["metrics"]
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]

    assert run(["evaluate", str(out / "model.npz"), "--data", "digits", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "loss" in printed and "accuracy" in printed
    accuracy = float(printed.split("accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(history["val_accuracy"][0], abs=1e-4)


def test_train_a_denoising_autoencoder(tmp_path, capsys):
    out = tmp_path / "dae"
    assert run(["train", "--model", "denoising", "--data", "digits", "--epochs", "1", "--noise-factor", "0.3",
                "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Total params" in printed and "epoch   1" in printed
    assert sorted(os.listdir(out)) == sorted(RUN_FILES + ["reconstructions.png"])
    assert is_png(out / "loss.png") and is_png(out / "reconstructions.png")
    model = checkpoint.load(out / "model.npz").model
    assert type(model).__name__ == "DenoisingAutoencoder" and model.noise_factor == 0.3


def test_gradcheck_passes_and_prints_a_table(capsys):
    assert run(["gradcheck"]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.rstrip().endswith("pass")]
    assert len(rows) >= 10
    assert "FAIL" not in printed
    assert "max rel error" in printed


def test_gradcheck_exits_1_and_names_a_wrong_gradient(capsys, monkeypatch):
    from scratchae.layers import Sigmoid

    def forgets_one_minus_y(self, dy, input_grad=True):
        return dy * self.y  # the derivative is y (1 - y), not y

    monkeypatch.setattr(Sigmoid, "backward", forgets_one_minus_y)
    assert run(["gradcheck"]) == 1
    printed = capsys.readouterr().out
    failed = [line for line in printed.splitlines() if "FAIL" in line]
    assert failed and all("Sigmoid" in line or "autoencoder" in line or "VAE" in line for line in failed)
    assert "gradient check(s) failed" in printed


# --------------------------------------------------------------------------------------------------------------------
# Wrong arguments: status 2, one line on stderr, no traceback, nothing trained
# --------------------------------------------------------------------------------------------------------------------

WRONG_ARGUMENTS = [
    (["train", "--model", "transformer"], "transformer"),
    (["train", "--data", "cifar-10"], "cifar-10"),
    (["train", "--data", "digits", "--epochs", "-1"], "--epochs"),
    (["train", "--data", "digits", "--epochs", "two"], "--epochs"),
    (["train", "--data", "digits", "--batch-size", "0"], "--batch-size"),
    (["train", "--data", "digits", "--lr", "fast"], "--lr"),
    (["train", "--data", "digits", "--lr", "nan"], "--lr"),
    (["train", "--data", "digits", "--lr", "-0.1"], "--lr"),
    (["train", "--data", "digits", "--train-size", "0"], "--train-size"),
    (["train", "--data", "digits", "--device", "tpu"], "tpu"),
    (["evaluate", "--data", "digits"], "checkpoint"),
    (["fly"], "fly"),
    ([], "required"),
]


@pytest.mark.parametrize("argv, phrase", WRONG_ARGUMENTS,
                         ids=[" ".join(argv) or "nothing" for argv, _ in WRONG_ARGUMENTS])
def test_a_wrong_argument_exits_2_with_one_line(argv, phrase, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert phrase in captured.err
    assert captured.out == ""
    assert os.listdir(tmp_path) == []


def test_a_missing_checkpoint_exits_2(capsys, tmp_path):
    missing = tmp_path / "nothing-here.npz"
    assert run(["evaluate", str(missing), "--data", "digits", "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert str(missing) in captured.err


def _truncated(path: Path) -> None:
    content = path.read_bytes()
    path.write_bytes(content[:len(content) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage\x00" * 64)


def _foreign(path: Path) -> None:
    with open(path, "wb") as file:
        numpy.savez(file, a=numpy.arange(5))


@pytest.mark.parametrize("damage", [_truncated, _garbage, _foreign])
def test_evaluating_a_damaged_checkpoint_exits_2(damage, capsys, tmp_path):
    path = Path(checkpoint.save(tmp_path / "model.npz", simple_autoencoder(input_dim=64)))
    damage(path)
    assert run(["evaluate", str(path), "--data", "digits", "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert "model.npz" in captured.err
    assert captured.out == ""


def test_evaluating_on_data_of_another_size_exits_2(capsys, tmp_path):
    path = checkpoint.save(tmp_path / "model.npz", simple_autoencoder(input_dim=784))
    assert run(["evaluate", str(path), "--data", "digits", "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert "784" in captured.err and "64" in captured.err


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU: --device gpu is not an error here")
@pytest.mark.parametrize("command", [["train", "--data", "digits", "--epochs", "1"], ["evaluate", "model.npz"]])
def test_device_gpu_without_a_gpu_exits_2(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint.save(tmp_path / "model.npz", simple_autoencoder(input_dim=64))
    assert run([*command, "--device", "gpu"]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert "gpu" in captured.err
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_a_ctrl_c_while_the_command_loads_is_one_line_and_status_130(monkeypatch, capsys):
    import types

    from scratchae.__main__ import run as command

    class Loading(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt  # as if Ctrl-C came while the command's modules were being imported

    monkeypatch.setitem(sys.modules, "scratchae.cli", Loading("scratchae.cli"))
    assert command() == 130
    assert capsys.readouterr().err == "scratchae: interrupted\n"

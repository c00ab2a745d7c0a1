"""The demos' progress line: the chapter, the model, epoch k of n and the time left, rewritten while an epoch runs;
the last epoch's line always printed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy

from scratchae import builders
from scratchae.losses import MSELoss
from scratchae.optim import Adam
from scratchae.progress import ProgressLine, current_reporter, format_duration, reporting_to
from scratchae.training import History, fit


def train(line, epochs=3, history=None, **options):
    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=0)
    x = numpy.random.default_rng(0).random((64, 64), dtype=numpy.float32)
    with reporting_to(line):
        return fit(model, MSELoss(), Adam(model.parameters()), x, epochs=epochs, batch_size=16, progress=False,
                   history=history, **options)


def test_the_line_names_the_chapter_the_model_the_epoch_of_n_and_the_time_left_while_an_epoch_runs():
    out = io.StringIO()
    train(ProgressLine("simple_autoencoder", stream=out, live=True, interval=0.0))
    updates = out.getvalue().split("\r")
    assert "simple_autoencoder · Autoencoder 2,276 weights: epoch 1 of 3 (25 % of it), " in updates[0]
    assert all(" left" in update for update in updates[:-1])
    assert "epoch 3 of 3 (100 % of it), 0 s left" in updates[-2]  # the last batch: nothing left
    assert updates[-1].startswith("simple_autoencoder · Autoencoder 2,276 weights: 3 of 3 epochs in ")
    assert updates[-1].endswith("\n") and updates[-1].count("\n") == 1


def test_without_a_terminal_only_the_line_of_each_fit_is_written():
    out = io.StringIO()
    train(ProgressLine("chapter", stream=out, live=False, interval=0.0), epochs=2)
    assert "\r" not in out.getvalue()
    assert out.getvalue().startswith("chapter · Autoencoder 2,276 weights: 2 of 2 epochs in ")


def test_a_resumed_fit_counts_its_epochs_on_from_the_history():
    out = io.StringIO()
    line = ProgressLine("chapter", stream=out, live=True, interval=0.0)
    history = train(line, epochs=2)
    train(line, epochs=1, history=history)
    assert "epoch 3 of 3" in out.getvalue() and "1 of 1 epochs" in out.getvalue()
    assert line.total == 3


def test_the_time_left_is_the_elapsed_time_scaled_by_what_is_left():
    line = ProgressLine("chapter", stream=io.StringIO(), live=False)
    line.first, line.total, line.n_batches, line.started = 0, 4, 10, 100.0
    line.epoch, line.batches_done = 1, 5  # 1.5 of 4 epochs done after 30 s: 50 s left
    assert line.line(130.0).endswith("epoch 2 of 4 (50 % of it), 50 s left")
    assert format_duration(150) == "2.5 min" and format_duration(7200) == "2.0 h"


def test_the_reporter_is_installed_for_the_block_only():
    line = ProgressLine("chapter", stream=io.StringIO())
    with reporting_to(line):
        assert current_reporter() is line
    assert current_reporter() is None
    assert isinstance(train(ProgressLine("c", stream=io.StringIO(), live=False), epochs=1), History)


def test_a_demo_prints_its_last_epoch_whatever_its_number(capsys, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))
    from demos._common import Demo

    demo = Demo.start("chapter", ["--quick", "--out", str(tmp_path), "--data", "digits"])
    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=0)
    x = numpy.random.default_rng(0).random((32, 64), dtype=numpy.float32)
    fit(model, MSELoss(), Adam(model.parameters()), x, epochs=14, batch_size=16, progress=False,
        on_epoch_end=demo.print_epoch)
    printed = capsys.readouterr().out
    epochs = [int(line.split()[1]) for line in printed.splitlines() if line.strip().startswith("epoch ")]
    assert epochs == [1, 2, 3, 10, 14]
    assert "chapter · Autoencoder 2,276 weights: 14 of 14 epochs in " in printed

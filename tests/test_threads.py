"""Thread counts: training threads one per core by default (capped), BLAS at one thread while training and by
default elsewhere, ``threads`` / ``--threads`` to choose, set at run time (threadpoolctl) and given back afterwards;
a run records its count, and a resume under another count says so."""

from __future__ import annotations

import json

import numpy
import pytest
from threadpoolctl import threadpool_info

from scratchae import builders, threads
from scratchae.cli import main
from scratchae.losses import MSELoss
from scratchae.optim import Adam
from scratchae.training import fit


def numpy_blas_threads() -> int:
    """What NumPy's BLAS (the first one loaded) runs, read from the library itself."""
    return next(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


def run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.fixture
def no_process_choice(monkeypatch):
    """A process in which no command or demo has chosen a count (and whose choice a test leaves behind unchanged)."""
    monkeypatch.setattr(threads, "_chosen", None)


def test_resolve_takes_the_given_count_then_the_process_choice_then_one(no_process_choice, monkeypatch):
    assert threads.DEFAULT_THREADS == 1
    assert threads.resolve() == 1
    assert threads.resolve(3) == 3
    monkeypatch.setattr(threads, "_chosen", 2)
    assert threads.resolve() == 2 and threads.resolve(1) == 1


@pytest.mark.parametrize("wrong", [0, -1, 1.5, "2", True])
def test_a_wrong_thread_count_is_a_clear_error(wrong):
    with pytest.raises(ValueError, match="threads must be a whole number >= 1"):
        threads.resolve(wrong)


def test_training_threads_take_the_given_count_then_the_process_choice_then_every_core(no_process_choice,
                                                                                        monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    assert threads.training_threads() == 2 and threads.training_threads(3) == 3
    monkeypatch.setattr(threads, "available_cores", lambda: 64)
    assert threads.training_threads() == threads.MOST_USEFUL_THREADS  # more stop helping
    monkeypatch.setattr(threads, "_chosen", 1)
    assert threads.training_threads() == 1 and threads.training_threads(2) == 2


def test_available_cores_are_this_process_affinity():
    import os

    assert threads.available_cores() == len(os.sched_getaffinity(0))


def test_chosen_sets_the_choice_for_a_block_only(no_process_choice):
    with threads.chosen(3) as count:
        assert count == 3 and threads.resolve() == 3 and threads.training_threads() == 3
    assert threads._chosen is None
    with threads.chosen(None) as count:
        assert count == threads.default_training_threads() and threads.resolve() == 1


def test_blas_threads_sets_numpys_blas_and_gives_the_count_back(no_process_choice):
    before = numpy_blas_threads()
    with threads.blas_threads() as count:
        assert count == 1 and numpy_blas_threads() == 1 and threads.current() == 1
    assert numpy_blas_threads() == before


def test_fit_runs_blas_at_one_thread_whatever_the_training_threads(no_process_choice):
    x = numpy.random.default_rng(0).random((64, 20), dtype=numpy.float32)
    seen = []
    before = numpy_blas_threads()
    for given in (None, 2):
        model = builders.simple_autoencoder(4, hidden_dim=8, input_dim=20, seed=0)
        fit(model, MSELoss(), Adam(model.parameters()), x, epochs=1, batch_size=32, progress=False, threads=given,
            on_epoch_end=lambda epoch, logs: seen.append((numpy_blas_threads(), threads.current())))
    assert seen == [(1, 1), (1, 1)]
    assert numpy_blas_threads() == before  # the caller's setting is back


def test_fit_refuses_a_wrong_thread_count_before_training():
    model = builders.simple_autoencoder(4, hidden_dim=8, input_dim=20, seed=0)
    start = [parameter.data.copy() for parameter in model.parameters()]
    x = numpy.zeros((8, 20), dtype=numpy.float32)
    with pytest.raises(ValueError, match="threads"):
        fit(model, MSELoss(), Adam(model.parameters()), x, epochs=1, batch_size=4, progress=False, threads=0)
    assert all(numpy.array_equal(a, p.data) for a, p in zip(start, model.parameters()))


def test_the_command_refuses_threads_0_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(["train", "--data", "digits", "--threads", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--threads" in err and ">= 1" in err


def test_a_run_records_its_thread_count_and_a_resume_under_another_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["train", "--data", "digits", "--train-size", "200", "--test-size", "50", "--batch-size", "50",
              "--device", "cpu", "--out", "run"]
    assert run([*common, "--epochs", "1", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["threads"] == 1
    capsys.readouterr()

    assert run([*common, "--epochs", "2", "--resume", "--threads", "1"]) == 0  # the same count: nothing to say
    assert "thread" not in capsys.readouterr().out

    assert run([*common, "--epochs", "3", "--resume", "--threads", "2"]) == 0
    said = capsys.readouterr().out
    assert "trained with 1 thread and resumes with 2" in said and "--threads 1" in said
    assert json.loads((tmp_path / "run" / "run.json").read_text())["threads"] == 2


def test_a_resume_of_a_run_recorded_with_blas_threads_compares_that_count(capsys, tmp_path, monkeypatch):
    """A run saved before the count meant training threads recorded it as ``blas_threads``: one BLAS thread was one
    unsplit batch, the bits of ``--threads 1``."""
    monkeypatch.chdir(tmp_path)
    common = ["train", "--data", "digits", "--train-size", "200", "--test-size", "50", "--batch-size", "50",
              "--device", "cpu", "--out", "run"]
    assert run([*common, "--epochs", "1", "--threads", "1"]) == 0
    from scratchae import checkpoint

    saved = checkpoint.load(tmp_path / "run" / "model.npz")
    extra = saved.meta["extra"]
    extra["blas_threads"] = extra.pop("threads")
    checkpoint.save(tmp_path / "run" / "model.npz", saved.model, saved.optimizer, saved.history, extra=extra)
    capsys.readouterr()
    assert run([*common, "--epochs", "2", "--resume", "--threads", "2"]) == 0
    assert "trained with 1 thread and resumes with 2" in capsys.readouterr().out

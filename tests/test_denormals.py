"""Denormal numbers flushed to zero on the training threads while fit trains, and the caller's floating-point
environment given back (scratchae.engine.denormals)."""

from __future__ import annotations

import contextlib

import numpy
import pytest

from scratchae import builders
from scratchae.engine import denormals
from scratchae.losses import MSELoss
from scratchae.optim import Adam
from scratchae.training import fit

needs_flags = pytest.mark.skipif(not denormals.supported(), reason="no MXCSR to set here (not x86-64 with glibc)")

CONTROL = 0xFFC0  # MXCSR's control bits; bits 0-5 are sticky status flags that any arithmetic may raise

SMALLEST_NORMAL = float(numpy.finfo(numpy.float32).smallest_normal)


def denormal_count(arrays) -> int:
    return sum(int(numpy.count_nonzero((a != 0) & (numpy.abs(a) < SMALLEST_NORMAL))) for a in arrays)


def denormals_seen_during_fit(threads: int) -> int:
    """The most denormal numbers in Adam's moments at any epoch's end, for a first layer whose weights get a
    gradient on random inputs and then none (inputs of zeros: W.grad = x.T @ dy = 0), so that their second moments
    decay by beta2 = 0.5 a step from about 1e-5 through float32's denormal range (below 1.2e-38) to zero."""
    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=0)
    optimizer = Adam(model.parameters(), betas=(0.9, 0.5))
    x = numpy.random.default_rng(0).random((64, 64), dtype=numpy.float32)
    fit(model, MSELoss(), optimizer, x, epochs=1, batch_size=16, progress=False, threads=threads)
    seen = []
    fit(model, MSELoss(), optimizer, numpy.zeros_like(x), epochs=50, batch_size=16, progress=False, threads=threads,
        on_epoch_end=lambda epoch, logs: seen.append(denormal_count(optimizer.v + optimizer.m)))
    return max(seen)


@needs_flags
@pytest.mark.parametrize("threads", [1, 2])
def test_an_adam_state_that_would_go_denormal_does_not_during_fit(threads):
    assert denormals_seen_during_fit(threads) == 0


@needs_flags
def test_without_the_flags_the_same_state_does_go_denormal(monkeypatch):
    """The test above can fail: with the flushing switched off, the same training holds denormal numbers."""
    from scratchae import training_run
    from scratchae.engine import parallel

    monkeypatch.setattr(training_run, "flushing_denormals", contextlib.nullcontext)
    monkeypatch.setattr(parallel, "flushing_denormals", contextlib.nullcontext)
    assert denormals_seen_during_fit(1) > 100


@needs_flags
@pytest.mark.parametrize("threads", [1, 2])
def test_the_callers_floating_point_state_is_the_same_after_fit(threads):
    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=0)
    x = numpy.random.default_rng(0).random((32, 64), dtype=numpy.float32)
    during = []
    before = denormals.read_mxcsr()
    fit(model, MSELoss(), Adam(model.parameters()), x, epochs=1, batch_size=8, progress=False, threads=threads,
        on_epoch_end=lambda epoch, logs: during.append(denormals.read_mxcsr()))
    after = denormals.read_mxcsr()
    assert before & denormals.FLUSH_BITS == 0  # a process's default: IEEE denormals
    assert during[0] & denormals.FLUSH_BITS == denormals.FLUSH_BITS  # set while training
    assert after & CONTROL == before & CONTROL
    assert numpy.float32(1e-38) * numpy.float32(0.5) != 0  # the caller's arithmetic keeps its denormals


@needs_flags
def test_a_caller_that_flushes_already_still_does_after_fit():
    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=0)
    x = numpy.random.default_rng(0).random((32, 64), dtype=numpy.float32)
    with denormals.flushing_denormals():
        before = denormals.read_mxcsr()
        fit(model, MSELoss(), Adam(model.parameters()), x, epochs=1, batch_size=8, progress=False)
        assert denormals.read_mxcsr() & CONTROL == before & CONTROL
    assert denormals.read_mxcsr() & denormals.FLUSH_BITS == 0


def test_where_the_flags_cannot_be_set_the_block_does_nothing(monkeypatch):
    monkeypatch.setattr(denormals, "_FENV", None)
    assert not denormals.supported() and denormals.read_mxcsr() is None
    with denormals.flushing_denormals():
        assert numpy.float32(1e-38) * numpy.float32(0.5) != 0

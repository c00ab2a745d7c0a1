"""What a real training run adds around the lesson's loop (:func:`scratchae.training.fit`).

:class:`TrainingRun` is entered once per ``fit``: it checks the options and the optimizer, and while the loop runs it

- turns Ctrl-C (and, in the command, SIGTERM and SIGHUP) into a stop after the current batch
  (:mod:`scratchae.stopping`), recording where the epoch stopped so that a resume carries on exactly;
- keeps a copy of what each epoch changes and puts it back when the loss or the weights stop being numbers
  (:mod:`scratchae.rollback`);
- splits each batch over the training threads (:mod:`scratchae.engine.parallel`, :mod:`scratchae.threads`), with
  NumPy's BLAS at one thread and denormal numbers flushed to zero on those threads
  (:mod:`scratchae.engine.denormals`); the caller's settings come back afterwards;
- adds up each epoch's losses, times the epoch and shows a progress bar (:mod:`scratchae.progress`).
"""

from __future__ import annotations

import contextlib
import math
import time

from scratchae.backend import ignore_overflow
from scratchae.conv import Conv2D, ConvTranspose2D
from scratchae.engine.denormals import flushing_denormals
from scratchae.entry_checks import check_fit_options, check_optimizer
from scratchae.history import History, add_batch
from scratchae.progress import current_reporter, epoch_bar
from scratchae.rollback import Snapshot, weights_are_finite
from scratchae.stopping import StopRequest, TrainingDiverged
from scratchae.threads import blas_threads, default_training_threads, explicit_choice, training_threads
from scratchae.validate import require_int


class _Stopped(Exception):
    """Raised between two batches when a stop was asked for; the run ends as interrupted."""


class TrainingRun:
    """The bookkeeping of one ``fit``: use as ``with run:``, then :meth:`epochs`, :meth:`batch_starts`,
    :meth:`after_batch`, :meth:`epoch_means` and :meth:`end_epoch` in the loop.

    Inside the block :attr:`model`, :attr:`loss` and :attr:`optimizer` are what the step trains with: the model, the
    loss and the optimizer themselves on one thread, or their split over the training threads
    (:class:`scratchae.engine.parallel.DataParallel`).
    """

    def __init__(self, model, loss, optimizer, history, *, epochs, batch_size, shuffle, progress, on_epoch_end,
                 stop, threads):
        require_int("epochs", epochs, minimum=0)
        require_int("batch_size", batch_size, minimum=1)
        check_fit_options(shuffle=shuffle, progress=progress, history=history, on_epoch_end=on_epoch_end, stop=stop)
        self.threads = threads_for(model, threads)
        check_optimizer(model, optimizer)
        optimizer.follow_parameters()  # its state in the parameters' dtype and device, after a Model.to: once, here
        self.target_model, self.target_loss, self.target_optimizer = model, loss, optimizer
        self.history = history if history is not None else History()
        self.count, self.batch_size, self.progress = epochs, batch_size, progress
        self.on_epoch_end, self.stop = on_epoch_end, stop
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.snapshot = self.bar = None
        self.epoch = self.batch = 0
        self.stepping = False
        self.started = self.validation_started = 0.0
        self.reporter, self.reporting = current_reporter(), False  # a demo's progress line, say
        self._context = contextlib.ExitStack()

    def __enter__(self):
        self.history.interrupted = False
        context = self._context
        if self.stop is None:
            self.stop = context.enter_context(StopRequest().on_ctrl_c())
        context.enter_context(ignore_overflow())
        context.enter_context(blas_threads(1))  # each training thread runs BLAS at one thread
        context.enter_context(flushing_denormals())  # this thread's; the workers set their own
        if self.threads > 1:
            from scratchae.engine.parallel import DataParallel

            parallel = DataParallel(self.target_model, self.target_loss, self.target_optimizer, self.threads)
            context.callback(parallel.close)
            self.model, self.loss, self.optimizer = parallel.model, parallel.loss, parallel.optimizer
        return self

    def __exit__(self, kind, error, traceback):
        try:
            if self.bar is not None:
                self.bar.close()
            if self.reporting:
                self.reporter.finish()
            if kind is _Stopped:
                self.history.interrupted = True
                return True
            if isinstance(error, TrainingDiverged) and self.snapshot is not None:
                where = f" in epoch {self.epoch + 1}, batch {self.batch + 1}" if self.stepping else ""
                raise self.snapshot.restore(f"{error}{where}") from None
            return False
        finally:
            self._context.close()

    def epochs(self, count: int):
        """The numbers (from 0) of the next ``count`` epochs after the history's, each started with a copy of the
        state to go back to."""
        for epoch in range(len(self.history), len(self.history) + count):
            if self.stop.requested:  # asked during a validation or a callback: stop before the next epoch starts
                raise _Stopped
            self.epoch, self.snapshot = epoch, Snapshot(self.target_model, self.target_optimizer, self.history)
            yield epoch

    def batch_starts(self, n: int, batch_size: int):
        """The first row of each batch of an epoch of ``n`` samples that the history does not count as done."""
        unfinished = self.history.unfinished or {"batches": 0, "sums": {}, "samples": 0, "seconds": 0.0}
        self.history.unfinished = unfinished
        n_batches = math.ceil(n / batch_size)
        self.bar = epoch_bar(n_batches, self.epoch, self.progress, done=unfinished["batches"])
        if self.reporter is not None and not self.reporting:
            self.reporter.start(self.target_model, self.epoch, self.epoch + self.count, n_batches)
            self.reporting = True
        for batch in range(unfinished["batches"], n_batches):
            self.batch, self.stepping, self.started = batch, True, time.perf_counter()
            yield batch * batch_size
        self.bar.close()
        self.bar = None

    def after_batch(self, value: float, n: int) -> None:
        """Add the batch's loss and the loss's measures (weighted by its ``n`` samples) to the epoch's sums, so that
        a stop between two batches leaves a record from which the epoch carries on exactly."""
        self.stepping = False
        unfinished = self.history.unfinished
        add_batch(unfinished, {"loss": value, **self.loss.metrics()}, n)
        unfinished["seconds"] += time.perf_counter() - self.started
        self.bar.update(1)
        if self.reporting:
            self.reporter.batch(self.epoch, self.batch)
        if self.batch % 16 == 0:
            self.bar.set_postfix_str(f"loss {unfinished['sums']['loss'] / unfinished['samples']:.4f}", refresh=False)
        if self.stop.requested:
            raise _Stopped

    def epoch_means(self) -> dict[str, float]:
        """The epoch's mean of each measure over its samples, once the weights are checked to be numbers."""
        if not weights_are_finite(self.target_model):
            raise TrainingDiverged(f"the weights became NaN or infinite in epoch {self.epoch + 1} (the loss stayed "
                                   f"finite)")
        self.validation_started = time.perf_counter()
        unfinished = self.history.unfinished
        return {name: total / unfinished["samples"] for name, total in unfinished["sums"].items()}

    def end_epoch(self, logs: dict[str, float]) -> None:
        """Record the epoch (unless a stop came during its validation, which a resume then does again)."""
        if self.stop.requested:
            raise _Stopped
        seconds = self.history.unfinished["seconds"] + time.perf_counter() - self.validation_started
        self.history.unfinished = None
        self.history.record(logs, seconds)
        if self.reporting:
            self.reporter.epoch_end(self.epoch + 1)
        if self.on_epoch_end is not None:
            self.on_epoch_end(self.epoch + 1, logs)


def threads_for(model, threads: int | None = None) -> int:
    """The training threads ``fit`` trains ``model`` with: ``threads`` if given, else the count ``--threads`` chose
    for the process, else every core (up to :data:`scratchae.threads.MOST_USEFUL_THREADS`) for a model with
    convolutions and one for a dense model; one for a model that cannot be split (:func:`_can_split`).

    Why the default differs: on a quiet 2-core Intel Xeon (``benchmarks/README.md``, "Every core"), two threads
    trained the conv autoencoder 1.6 times as fast as one, but the dense models at 0.72 (simple) and 0.76 (VAE) of
    one thread's speed: a dense layer's part of a batch of 128 is a few microseconds of work per NumPy call, and the
    two threads spend more on taking turns at Python's lock than they gain. The rule depends on the model alone, so
    the same model and options give the same bits on every run.
    """
    count = training_threads(threads)  # checks a given count
    if not _can_split(model):
        return 1
    if threads is not None or explicit_choice() is not None:
        return count
    return default_training_threads() if _has_convolutions(model) else 1


def _has_convolutions(model) -> bool:
    layers = [layer for part in model.parts().values() for layer in getattr(part, "layers", [])]
    return any(isinstance(layer, (Conv2D, ConvTranspose2D)) for layer in layers)


def _can_split(model) -> bool:
    """Whether a batch of ``model`` can be split among threads: a model on the CPU that draws its random numbers
    for a whole batch (every model of :mod:`scratchae.models`), none of whose layers has had its ``forward`` or
    ``backward`` replaced on the object itself (a spy or a print a learner added): a replica would call the
    replacement, which runs the model's own layer instead of the replica's."""
    if not hasattr(model, "draw_batch") or getattr(model, "device", "cpu") != "cpu":
        return False
    return not any(_replaced_on_the_object(part) for part in [model, *getattr(model, "parts", dict)().values()])


def _replaced_on_the_object(layer) -> bool:
    """Whether ``layer`` (or a layer inside it) holds its own ``forward`` or ``backward`` attribute."""
    own = vars(layer) if hasattr(layer, "__dict__") else {}
    if "forward" in own or "backward" in own:
        return True
    return any(_replaced_on_the_object(inner) for inner in own.get("layers", []) or [])

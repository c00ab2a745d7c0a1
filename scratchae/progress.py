"""What a person sees while training runs: a progress bar per epoch (tqdm) for ``fit`` and the command, and the
demos' progress line, which says where a long run is and how long it has left.

A program that wants to follow every ``fit`` it runs (a demo runs several, in code a learner reads) installs a
*reporter* with :func:`reporting_to`; ``fit`` tells it when it starts, after every batch and after every epoch.
:class:`ProgressLine` is the demos' reporter: one line, rewritten in place at most once a second,

    convolutional · Autoencoder 28,913 weights: epoch 3 of 20 (41 % of it), 12.4 min left

and, after each ``fit``, the time it took.
"""

from __future__ import annotations

import contextlib
import sys
import time


def epoch_bar(n_batches: int, epoch: int, progress, done: int = 0):
    """A bar over the batches of epoch ``epoch`` (counted from 0), starting at ``done``. ``progress``: True shows it
    on a terminal only, "always" everywhere, False nowhere."""
    from tqdm.auto import tqdm  # imported here: importing the lesson (train_step) never loads a progress bar

    disable = {True: None, "always": False, False: True}[progress]  # None: tqdm shows it only on a terminal
    return tqdm(total=n_batches, initial=done, desc=f"epoch {epoch + 1}", leave=False, disable=disable, unit="batch")


_reporters: list = []  # the reporters installed now, innermost last


@contextlib.contextmanager
def reporting_to(reporter):
    """Inside the block every ``fit`` reports to ``reporter`` (an object with the methods of :class:`ProgressLine`:
    ``start``, ``batch``, ``epoch_end``, ``finish``)."""
    _reporters.append(reporter)
    try:
        yield reporter
    finally:
        _reporters.remove(reporter)


def current_reporter():
    """The innermost reporter installed by :func:`reporting_to`, or None."""
    return _reporters[-1] if _reporters else None


def model_name(model) -> str:
    """The model's class and its number of weights: ``"Autoencoder 218,960 weights"``."""
    weights = sum(parameter.size for parameter in model.parameters())
    return f"{type(model).__name__} {weights:,} weights"


def format_duration(seconds: float) -> str:
    """12 s, 4.5 min, 1.2 h."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressLine:
    """One line per ``fit``, rewritten in place: the chapter, the model, epoch k of n, how much of the epoch is done
    and the time left, estimated from the batches done so far in this ``fit`` (and its validations, once an epoch
    has ended).

    Parameters
    ----------
    chapter : str
        What runs (a demo's name).
    stream : file, optional
        Where the line goes (standard output by default).
    live : bool, optional
        Rewrite the line while an epoch runs (``"\\r"``); by default where ``stream`` is a terminal. Without it only
        the line of each finished ``fit`` is written.
    interval : float
        Seconds between two rewrites.
    """

    def __init__(self, chapter: str, stream=None, live: bool | None = None, interval: float = 1.0):
        self.chapter, self.stream, self.interval = chapter, stream, interval
        self.live = live
        self.width = 0
        self.model = ""
        self.first = self.total = self.n_batches = 0
        self.epoch, self.batches_done = 0, 0
        self.started = self.shown = 0.0

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def start(self, model, first_epoch: int, total_epochs: int, n_batches: int) -> None:
        """A ``fit`` starts: epochs ``first_epoch`` (counted from 0) .. ``total_epochs`` - 1, of ``n_batches``."""
        if self.live is None:
            self.live = bool(getattr(self._out(), "isatty", lambda: False)())
        self.model, self.first, self.total, self.n_batches = model_name(model), first_epoch, total_epochs, n_batches
        self.epoch, self.batches_done = first_epoch, 0
        self.started = self.shown = time.perf_counter()

    def batch(self, epoch: int, batch: int) -> None:
        """Batch ``batch`` (from 0) of epoch ``epoch`` (from 0) is done."""
        self.epoch, self.batches_done = epoch, batch + 1
        now = time.perf_counter()
        if self.live and now - self.shown >= self.interval:
            self.shown = now
            self._write(self.line(now), end="\r")

    def epoch_end(self, epoch: int) -> None:
        """Epoch ``epoch`` (counted from 1) is recorded."""
        self.epoch, self.batches_done = epoch, 0

    def finish(self) -> None:
        """The ``fit`` ended: the line of the whole fit, kept."""
        seconds = time.perf_counter() - self.started
        done = self.epoch - self.first
        self._write(f"{self.chapter} · {self.model}: {done} of {self.total - self.first} epochs in "
                    f"{format_duration(seconds)}", end="\n")

    def clear(self) -> None:
        """Blank the line written in place, so that other output can follow (a demo's epoch line)."""
        if self.width:
            self._write("", end="\r")
            self.width = 0

    def fraction_done(self) -> float:
        """How much of this ``fit``'s epochs is done, from 0 to 1."""
        epochs = max(1, self.total - self.first)
        within = self.batches_done / self.n_batches if self.n_batches else 0.0
        return min(1.0, (self.epoch - self.first + within) / epochs)

    def line(self, now: float) -> str:
        fraction, elapsed = self.fraction_done(), now - self.started
        left = f"{format_duration(elapsed / fraction - elapsed)} left" if fraction > 0 else "time left: measuring"
        within = round(100 * self.batches_done / self.n_batches) if self.n_batches else 0
        return (f"{self.chapter} · {self.model}: epoch {self.epoch + 1} of {self.total} ({within} % of it), "
                f"{left}")

    def _write(self, text: str, end: str) -> None:
        out = self._out()
        padded = text.ljust(self.width)  # covers the rest of a longer line written before in place
        self.width = len(text) if end == "\r" else 0
        out.write(padded + end)
        out.flush()

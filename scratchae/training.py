"""Training: one step, then the loop that repeats it.

One step of training is four lines, :func:`train_step`::

    out = model.forward(x)                                   # 1. run the network
    value = float(loss.forward(out, x if y is None else y))  # 2. measure how wrong it is
    model.backward(loss.backward())                          # 3. backpropagate: every parameter gets its gradient
    optimizer.step()                                         # 4. move every parameter a little downhill

:func:`fit` repeats it over the batches of every epoch, in a new shuffled order each epoch, evaluates the model on
validation data after each, and keeps a :class:`History` of the losses. What a real run adds around that loop
(Ctrl-C, going back when the weights stop being numbers, a progress bar, every core of the processor) lives in
:mod:`scratchae.training_run` and the modules it names; the data are checked once at the door
(:mod:`scratchae.entry_checks`).
"""

from __future__ import annotations

import math

import numpy

from scratchae.backend import asarray_like, get_namespace, ignore_overflow
from scratchae.entry_checks import prepare_data, prepare_validation
from scratchae.history import History, add_batch
from scratchae.stopping import STOP_SIGNALS, StopRequest, TrainingDiverged  # noqa: F401  (imported from here too)
from scratchae.validate import require_int


def train_step(model, loss, optimizer, x, y=None) -> float:
    """One step of gradient descent on one batch; returns the batch's loss.

    Parameters
    ----------
    model : Autoencoder, Classifier, VariationalAutoencoder, ...
        Anything with ``forward``, ``backward`` and parameters that ``optimizer`` updates.
    loss : Loss
    optimizer : Optimizer
        Built on ``model.parameters()``.
    x : array (N, D)
        The batch.
    y : array, optional
        Its targets; None means the input itself (an autoencoder learns to give back ``x``).

    Raises
    ------
    TrainingDiverged
        If the loss is NaN or infinite. Nothing has been updated then: the weights are those from before the batch.
    """
    out = model.forward(x)  # 1. run the network
    value = float(loss.forward(out, x if y is None else y))  # 2. measure how wrong it is
    if not math.isfinite(value):
        raise TrainingDiverged(f"the loss became {value}")
    model.backward(loss.backward())  # 3. backpropagate: every parameter gets its gradient
    optimizer.step()  # 4. move every parameter a little downhill
    return value


def fit(model, loss, optimizer, x, y=None, *, epochs: int, batch_size: int, shuffle: bool = True,
        validation=None, seed: int = 0, progress: bool | str = True, history: History | None = None,
        on_epoch_end=None, stop: StopRequest | None = None, threads: int | None = None) -> History:
    """Train ``model`` on ``x`` (and targets ``y``) with mini-batch gradient descent: :func:`train_step` per batch.

    Parameters
    ----------
    model : Autoencoder, Classifier, VariationalAutoencoder, or anything with forward / backward / parameters
    loss : Loss
    optimizer : Adam or SGD, built on ``model.parameters()``
    x : array (N, D), float, the model's dtype
        Training inputs (NumPy; moved once to the model's device).
    y : array, optional
        Targets: (N, D) floats, or (N,) integer labels for a classifier. None means ``y = x`` (an autoencoder).
    epochs : int
        Epochs to train in this call (0 trains nothing); an unfinished epoch of ``history`` counts as one.
    batch_size : int
        Samples per gradient step; the last, smaller batch of an epoch is used too.
    shuffle : bool
        Visit the samples in a new random order each epoch (seeded by ``seed`` and the epoch number).
    validation : x_val or (x_val, y_val), optional
        Evaluated after every epoch: ``val_loss`` and the loss's other measures as ``val_...``.
    seed : int
        Seed of the shuffling.
    progress : bool or "always"
        A progress bar per epoch with the running loss; True shows it when the output is a terminal.
    history : History, optional
        A previous run's history to continue (after loading a checkpoint): its epochs count on, and an epoch that
        Ctrl-C interrupted is finished from the batch where it stopped.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(epoch, logs)`` after every epoch (epoch counts from 1).
    stop : StopRequest, optional
        Training stops after the batch during which ``stop.requested`` becomes true. By default ``fit`` makes its
        own, which Ctrl-C sets while it runs; a program that has one already (which catches Ctrl-C for longer than
        ``fit`` runs) passes it in.
    threads : int, optional
        Training threads: each batch is split among them by sample, one gradient and one step per batch
        (:mod:`scratchae.engine.parallel`). By default the count a command or a demo chose with ``--threads``, else
        one per core this process may use (up to :data:`scratchae.threads.MOST_USEFUL_THREADS`) for a model with
        convolutions and one for a dense model (:func:`scratchae.training_run.threads_for` says why); one on a GPU.
        The count changes the last bits of the results; ``threads=1`` is :func:`train_step` itself.

    Returns
    -------
    History
        ``interrupted`` is True if Ctrl-C stopped the run; it can then be saved and resumed exactly.

    Raises
    ------
    ValueError
        Before training, if the data do not fit the model or the loss (shape, dtype, range, NaN or infinity, targets
        on another scale than a sigmoid output gives), an option is not of a kind ``fit`` takes, or the optimizer
        holds parameters that are not the model's (built on an earlier model: build it again).
    TypeError
        Before training, if a classifier's labels are not integers.
    TrainingDiverged
        If the loss or the weights become NaN or infinite. The model, its optimizer and ``history`` are then back
        where they were at the start of that epoch: the last state with finite weights.
    """
    from scratchae.training_run import TrainingRun  # what a real run adds; importing the lesson never loads it

    run = TrainingRun(model, loss, optimizer, history, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                      progress=progress, on_epoch_end=on_epoch_end, stop=stop, threads=threads)
    x, y = prepare_data(model, loss, x, y, "training data")  # checked once, here at the door
    validation = prepare_validation(model, loss, validation)
    model.train()
    with run:  # run.model, run.loss, run.optimizer: the model, the loss and the optimizer, or the same on every core
        for epoch in run.epochs(epochs):  # counting on from the history's epochs
            run.loss.start_epoch(epoch)
            order = batch_order(x.shape[0], shuffle, seed, epoch, like=x)
            for start in run.batch_starts(x.shape[0], batch_size):  # 0, batch_size, 2 * batch_size, ...
                x_batch, y_batch = batch_rows(x, order, start, batch_size), batch_rows(y, order, start, batch_size)
                value = train_step(run.model, run.loss, run.optimizer, x_batch, y_batch)
                run.after_batch(value, x_batch.shape[0])  # the epoch's running sums; a stop asked for ends here
            logs = run.epoch_means()  # each measure's mean over the epoch's samples
            if validation is not None:
                scores = _evaluate(model, loss, *validation, batch_size=max(batch_size, 1024))
                logs.update({f"val_{name}": value for name, value in scores.items()})
                model.train()
            run.end_epoch(logs)  # into the history; on_epoch_end
    model.eval()
    return run.history


def batch_order(n: int, shuffle: bool, seed: int, epoch: int, like):
    """The sample indices of one epoch, on the device of the data ``like``: a fresh permutation seeded by
    (seed, epoch), or None to keep the given order."""
    if not shuffle:
        return None
    return asarray_like(numpy.random.default_rng((seed, epoch)).permutation(n), like)


def batch_rows(data, order, start: int, size: int):
    """The ``size`` rows of ``data`` from position ``start`` of the epoch's ``order``: a view when not shuffling
    (``order`` None), a gathered copy otherwise. None for no data."""
    if data is None:
        return None
    if order is None:
        return data[start:start + size]
    return get_namespace(data).take(data, order[start:start + size], axis=0)


def evaluate(model, loss, x, y=None, *, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss over all samples of ``x`` (and the loss's other measures), with the model in evaluation mode.

    Batches keep the memory small; the means are weighted by batch size, so they do not depend on ``batch_size``.

    Raises
    ------
    ValueError
        If the data do not fit the model or the loss (as :func:`fit` checks them).
    """
    require_int("batch_size", batch_size, minimum=1)
    x, y = prepare_data(model, loss, x, y, "evaluation data")
    with ignore_overflow():
        return _evaluate(model, loss, x, y, batch_size)


def _evaluate(model, loss, x, y=None, batch_size: int = 1024) -> dict[str, float]:
    """:func:`evaluate` on data already checked and on the model's device."""
    model.eval()
    totals = {"batches": 0, "sums": {}, "samples": 0}
    for start in range(0, x.shape[0], batch_size):
        x_batch = x[start:start + batch_size]
        target = x_batch if y is None else y[start:start + batch_size]
        value = float(loss.forward(model.forward(x_batch), target))
        add_batch(totals, {"loss": value, **loss.metrics()}, x_batch.shape[0])
    return {name: total / totals["samples"] for name, total in totals["sums"].items()}

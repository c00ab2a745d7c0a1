"""Training: one step, then the loop that repeats it.

One step of training is four lines, :func:`train_step`::

    out = model.forward(x)                                   # 1. run the network
    value = float(loss.forward(out, x if y is None else y))  # 2. measure how wrong it is
    model.backward(loss.backward())                          # 3. backpropagate: every parameter gets its gradient
    optimizer.step()                                         # 4. move every parameter a little downhill

:func:`fit` calls it once per mini-batch and adds what a real run needs: shuffled batches, a validation pass after
each epoch, a :class:`History` of the losses, a progress bar, a clean stop on Ctrl-C (the history then records where
in the epoch the run stopped, so that it resumes exactly) and on a loss or weights that are no longer numbers (the
model then goes back to the last state whose weights were all finite).
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time

import numpy

from scratchae.backend import (asarray_like, copy_of, get_namespace, has_non_finite, ignore_overflow, is_floating,
                               to_device)
from scratchae.validate import require_int
from scratchae.layers import Sigmoid
from scratchae.losses import check_labels
from scratchae.threads import blas_threads


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became NaN or infinite; the message says which state the model was left in."""


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


class History:
    """Per-epoch records of a run, as Keras keeps them: ``history["loss"]``, ``history["val_loss"]``, ...

    Attributes
    ----------
    metrics : dict[str, list[float]]
        ``loss`` (the mean training loss over the epoch's samples) and whatever else the loss measures
        (``accuracy`` for a classifier, ``reconstruction`` and ``kl`` for a VAE), each also as ``val_...`` when there
        is validation data.
    seconds : list[float]
        Wall-clock time of each epoch (kept apart from ``metrics``, which a seeded run repeats exactly).
    interrupted : bool
        True when Ctrl-C stopped the run early.
    unfinished : dict or None
        Where an interrupted epoch stopped: ``{"batches": done, "sums": {...}, "samples": n, "seconds": s}``;
        :func:`fit` given this history carries on from there. None between epochs.
    """

    def __init__(self, metrics: dict[str, list[float]] | None = None, seconds: list[float] | None = None):
        self.metrics = {name: list(values) for name, values in (metrics or {}).items()}
        self.seconds = list(seconds or [])
        self.interrupted = False
        self.unfinished = None

    def __getitem__(self, name: str) -> list[float]:
        return self.metrics[name]

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    def __len__(self) -> int:
        """The number of whole epochs recorded."""
        return len(self.metrics.get("loss", []))

    def record(self, logs: dict[str, float], seconds: float) -> None:
        for name, value in logs.items():
            self.metrics.setdefault(name, []).append(value)
        self.seconds.append(seconds)

    def final(self) -> dict[str, float]:
        """The last epoch's value of every metric."""
        return {name: values[-1] for name, values in self.metrics.items() if values}

    def plot(self, title: str = "Loss during training", **options):
        """The loss curves as a matplotlib Figure (see :func:`scratchae.plots.loss_curves`)."""
        from scratchae import plots  # matplotlib is imported only when a figure is asked for

        return plots.loss_curves({name: values for name, values in self.metrics.items() if "loss" in name},
                                 title=title, **options)

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "seconds": self.seconds, "interrupted": self.interrupted,
                "unfinished": self.unfinished}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        history = cls(data.get("metrics"), data.get("seconds"))
        history.interrupted = bool(data.get("interrupted", False))
        history.unfinished = data.get("unfinished")
        return history

    def to_csv(self) -> str:
        """One row per epoch: epoch, every metric, seconds."""
        names = sorted(self.metrics)
        lines = [",".join(["epoch", *names, "seconds"])]
        for epoch in range(len(self)):
            values = [_csv_value(self.metrics[name], epoch) for name in names]
            lines.append(",".join([str(epoch + 1), *values, _csv_value(self.seconds, epoch)]))
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return f"History(epochs={len(self)}, final={self.final()})"


def _csv_value(values: list[float], index: int) -> str:
    return repr(values[index]) if index < len(values) else ""


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
        Threads of NumPy's BLAS while training. By default one (:data:`scratchae.threads.DEFAULT_THREADS`: beside
        other busy programs a second thread makes training several times slower, and alone it gains little), or
        the count a command or a demo chose with ``--threads``. The count changes the last bits of the results.

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
    require_int("epochs", epochs, minimum=0)
    require_int("batch_size", batch_size, minimum=1)
    _check_options(shuffle=shuffle, progress=progress, history=history, on_epoch_end=on_epoch_end, stop=stop)
    _check_optimizer(model, optimizer)
    x, y = prepare_data(model, loss, x, y, "training data")
    validation = _prepare_validation(model, loss, validation)
    history = history if history is not None else History()
    history.interrupted = False
    model.train()
    with (contextlib.nullcontext(stop) if stop is not None else StopRequest().on_ctrl_c()) as stop, ignore_overflow(), \
            blas_threads(threads):
        for epoch in range(len(history), len(history) + epochs):
            if stop.requested:  # Ctrl-C during validation or a callback: stop before the next epoch starts
                history.interrupted = True
                break
            last_good = _Snapshot(model, optimizer, history)
            loss.start_epoch(epoch)
            try:
                order = _batch_order(x.shape[0], shuffle, seed, epoch, like=x)
                means = _train_epoch(model, loss, optimizer, x, y, batch_size, order, epoch, history, progress, stop)
            except TrainingDiverged as error:
                raise last_good.restore(str(error)) from None
            if stop.requested:
                history.interrupted = True
                break
            seconds = history.unfinished["seconds"]
            if validation is not None:
                started = time.perf_counter()
                scores = _evaluate(model, loss, *validation, batch_size=max(batch_size, 1024))
                means.update({f"val_{name}": value for name, value in scores.items()})
                model.train()
                seconds += time.perf_counter() - started
            if stop.requested:  # the validation was cut short: finish it when the run resumes
                history.interrupted = True
                break
            history.unfinished = None
            history.record(means, seconds)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, means)
    model.eval()
    return history


def _train_epoch(model, loss, optimizer, x, y, batch_size, order, epoch, history, progress, stop) -> dict:
    """Train on the batches of one epoch that ``history.unfinished`` does not count as done; returns the epoch's
    means (of the loss and the loss's other measures) once every batch is done.

    Each batch's values are added to ``history.unfinished`` as soon as its step is taken, so Ctrl-C between two
    batches leaves a record from which the epoch carries on exactly.
    """
    n_batches = math.ceil(x.shape[0] / batch_size)
    unfinished = history.unfinished or {"batches": 0, "sums": {}, "samples": 0, "seconds": 0.0}
    history.unfinished = unfinished
    xp = get_namespace(x)
    bar = _progress_bar(n_batches, epoch, progress, done=unfinished["batches"])
    for batch in range(unfinished["batches"], n_batches):
        started = time.perf_counter()
        rows = slice(batch * batch_size, (batch + 1) * batch_size)
        index = rows if order is None else order[rows]
        x_batch = _take(xp, x, index)
        y_batch = None if y is None else _take(xp, y, index)
        try:
            value = train_step(model, loss, optimizer, x_batch, y_batch)
        except TrainingDiverged as error:
            raise TrainingDiverged(f"{error} in epoch {epoch + 1}, batch {batch + 1}") from None
        _add_batch(unfinished, {"loss": value, **loss.metrics()}, x_batch.shape[0])
        unfinished["seconds"] += time.perf_counter() - started
        bar.update(1)
        if batch % 16 == 0:
            bar.set_postfix_str(f"loss {unfinished['sums']['loss'] / unfinished['samples']:.4f}", refresh=False)
        if stop.requested:
            break
    bar.close()
    if not _weights_are_finite(model):
        raise TrainingDiverged(f"the weights became NaN or infinite in epoch {epoch + 1} (the loss stayed finite)")
    return {name: total / unfinished["samples"] for name, total in unfinished["sums"].items()}


def _add_batch(unfinished: dict, values: dict[str, float], n: int) -> None:
    """Add one batch's means to the epoch's running sums, each weighted by the batch's size (as Keras averages)."""
    unfinished["batches"] += 1
    unfinished["samples"] += n
    for name, value in values.items():
        unfinished["sums"][name] = unfinished["sums"].get(name, 0.0) + value * n


def _weights_are_finite(model) -> bool:
    """One reduction per parameter: cheap enough to run after every epoch."""
    return not any(has_non_finite(parameter.data) for parameter in model.parameters())


class _Snapshot:
    """A copy of what one epoch changes (weights, optimizer state, the model's random-draw counters, the history's
    unfinished epoch), to go back to if that epoch diverges."""

    def __init__(self, model, optimizer, history: History):
        self.model, self.optimizer, self.history = model, optimizer, history
        self.weights = [copy_of(parameter.data) for parameter in model.parameters()]
        self.steps = optimizer.steps
        self.state = {name: [None if array is None else copy_of(array) for array in arrays]
                      for name, arrays in optimizer.state_arrays().items()}
        self.counters = model.counters()
        self.unfinished = copy.deepcopy(history.unfinished)
        self.epochs = len(history)

    def restore(self, what_happened: str) -> TrainingDiverged:
        """Put everything back; returns the error that says so."""
        for parameter, weights in zip(self.model.parameters(), self.weights, strict=True):
            parameter.data, parameter.grad = weights, None
        self.optimizer.load_state_arrays(self.steps, self.state)
        self.model.set_counters(self.counters)
        self.history.unfinished = self.unfinished
        if self.unfinished:
            where = f"batch {self.unfinished['batches']} of epoch {self.epochs + 1}, where this run resumed"
        else:
            where = f"the end of epoch {self.epochs}" if self.epochs else "its weights before training"
        return TrainingDiverged(f"{what_happened}; the model is back at {where}, the last state whose weights were "
                                f"all finite (try a smaller learning rate)")


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
        _add_batch(totals, {"loss": value, **loss.metrics()}, x_batch.shape[0])
    return {name: total / totals["samples"] for name, total in totals["sums"].items()}


# ---------------------------------------------------------------------------------------------------------------
# Checking the options, the optimizer and the data where they enter training


def _check_options(*, shuffle, progress, history, on_epoch_end, stop) -> None:
    """Each of fit's options is of a kind it takes: a wrong one is a ValueError that names it, not a failure deep
    inside the loop (``progress="yes"`` would otherwise be a bare KeyError)."""
    if not isinstance(shuffle, bool):
        raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
    if not (isinstance(progress, bool) or (isinstance(progress, str) and progress == "always")):
        raise ValueError(f"progress must be True (a bar on a terminal), False or 'always', got {progress!r}")
    if history is not None and not isinstance(history, History):
        raise ValueError(f"history must be a History (from an earlier fit or a checkpoint), got "
                         f"{type(history).__name__}")
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise ValueError(f"on_epoch_end must be a function on_epoch_end(epoch, logs), got "
                         f"{type(on_epoch_end).__name__}")
    if stop is not None and not isinstance(stop, StopRequest):
        raise ValueError(f"stop must be a StopRequest, got {type(stop).__name__}")


def _check_optimizer(model, optimizer) -> None:
    """The optimizer updates this model's parameters, the very objects (compared by identity, which is cheap).

    An optimizer built on a model that was then built again (a notebook cell run twice) steps the old model's
    weights: the new one would never learn, and nothing would say so.

    Raises
    ------
    ValueError
        If the optimizer holds a parameter that is not one of ``model.parameters()``.
    """
    params = getattr(optimizer, "params", None)
    if not isinstance(params, list):
        raise ValueError(f"optimizer must be an Optimizer such as Adam(model.parameters()), got "
                         f"{type(optimizer).__name__}")
    own = {id(parameter) for parameter in model.parameters()}
    foreign = sum(id(parameter) not in own for parameter in params)
    if foreign:
        raise ValueError(f"{foreign} of the optimizer's {len(params)} parameters are not this model's (was the model "
                         f"built again, e.g. by running its cell twice?); build the optimizer again on this model: "
                         f"optimizer = {type(optimizer).__name__}(model.parameters())")



def prepare_data(model, loss, x, y, what: str):
    """Check data once, where it enters training, and move it to the model's device.

    Raises ValueError naming the problem: not an array, wrong shape for the model, not floating point, a dtype other
    than the model's, no samples, NaN or infinity, inputs and targets of different lengths, or targets the loss
    cannot take (labels for a classifier, numbers in [0, 1] for binary cross-entropy).
    """
    _require_array(x, f"{what}: the inputs")
    features = model.input_features
    if len(x.shape) != 2 or x.shape[1] != features:
        raise ValueError(f"{what}: the model expects inputs of shape (N, {features}), got {tuple(x.shape)}")
    if not is_floating(x):
        raise ValueError(f"{what}: inputs must be floating point (for images: x.astype('float32') / 255), "
                         f"got {x.dtype}")
    if x.dtype != model.dtype:
        raise ValueError(f"{what}: inputs are {x.dtype} but the model's weights are {model.dtype}; "
                         f"convert with x.astype(...)")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: there are no samples")
    if has_non_finite(x):
        raise ValueError(f"{what}: inputs contain NaN or infinite values")
    if y is None and loss.targets == "labels":
        raise ValueError(f"{what}: {type(loss).__name__} compares the model's outputs with class labels; pass them "
                         f"as y")
    if y is not None:
        _require_array(y, f"{what}: the targets")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{what}: {x.shape[0]} inputs but {y.shape[0]} targets")
    _check_targets(model, loss, x if y is None else y, what)
    return to_device(x, model.device), None if y is None else to_device(y, model.device)


def _require_array(array, what: str) -> None:
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        raise ValueError(f"{what} must be an array (for example numpy.asarray(...)), got {type(array).__name__}")


def _check_targets(model, loss, target, what: str) -> None:
    """The targets fit what the loss compares the outputs with (``loss.targets``)."""
    if loss.targets == "labels":
        check_labels(target, target.shape[0], model.output_features, what)
        return
    expected = (target.shape[0], model.output_features)
    if tuple(target.shape) != expected or target.dtype != model.dtype:
        raise ValueError(f"{what}: targets must be {model.dtype} of shape {expected} like the model's outputs, got "
                         f"{target.dtype} of shape {tuple(target.shape)}")
    if has_non_finite(target):
        raise ValueError(f"{what}: targets contain NaN or infinite values")
    if loss.targets == "probabilities":
        low, high = _target_range(target)
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{what}: {type(loss).__name__} compares the outputs with probabilities in [0, 1], but "
                             f"the targets range from {low:g} to {high:g} (scale images to [0, 1], e.g. x / 255)")
    elif _ends_in_sigmoid(model):
        low, high = _target_range(target)
        if low < -SIGMOID_SLACK or high > 1.0 + SIGMOID_SLACK:
            raise ValueError(f"{what}: the model's output is a sigmoid, between 0 and 1, but the targets range from "
                             f"{low:g} to {high:g}, a scale it can never reach (scale images to [0, 1], e.g. x / 255)")


#: How far beyond (0, 1) the targets of a model with a sigmoid output may lie before they are refused as data on
#: another scale (0..255 pixels): a little beyond is only a loss the model cannot bring to zero.
SIGMOID_SLACK = 0.5


def _target_range(target) -> tuple[float, float]:
    xp = get_namespace(target)
    return float(xp.min(target)), float(xp.max(target))


def _ends_in_sigmoid(model) -> bool:
    """Whether the model's output is its last part's last layer, a Sigmoid (a model of the library's kind)."""
    parts = model.parts() if hasattr(model, "parts") else {}
    last = list(parts.values())[-1] if parts else None
    layers = getattr(last, "layers", None)
    return bool(layers) and isinstance(layers[-1], Sigmoid)


def _prepare_validation(model, loss, validation):
    if validation is None:
        return None
    if isinstance(validation, (tuple, list)):
        if len(validation) != 2:
            raise ValueError(f"validation must be x_val or a pair (x_val, y_val), got a {type(validation).__name__} "
                             f"of {len(validation)} items")
        x_val, y_val = validation
    else:
        x_val, y_val = validation, None
    return prepare_data(model, loss, x_val, y_val, "validation data")


# ---------------------------------------------------------------------------------------------------------------
# Batches, progress and Ctrl-C


def _batch_order(n: int, shuffle: bool, seed: int, epoch: int, like):
    """The sample indices of one epoch, on the device of the data ``like``: a fresh permutation seeded by
    (seed, epoch), or None to keep the given order."""
    if not shuffle:
        return None
    return asarray_like(numpy.random.default_rng((seed, epoch)).permutation(n), like)


def _take(xp, data, index):
    """The rows of a batch: a view when not shuffling (``index`` is a slice), a gathered copy otherwise."""
    return data[index] if isinstance(index, slice) else xp.take(data, index, axis=0)


def _progress_bar(n_batches: int, epoch: int, progress, done: int = 0):
    from tqdm.auto import tqdm  # imported here: importing the lesson (train_step) never loads a progress bar

    disable = {True: None, "always": False, False: True}[progress]  # None: tqdm shows it only on a terminal
    return tqdm(total=n_batches, initial=done, desc=f"epoch {epoch + 1}", leave=False, disable=disable, unit="batch")


#: The signals that ask ``scratchae train`` to stop after the current batch and save: Ctrl-C (SIGINT), ``kill`` or a
#: batch scheduler's time limit (SIGTERM), a closed terminal (SIGHUP, where the system has it).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopRequest:
    """A request to stop training after the current batch: ``requested`` becomes true, ``fit`` stops.

    ``signal`` is the signal that asked first (``signal.SIGINT`` for Ctrl-C), or None.
    """

    def __init__(self):
        self.requested = False
        self.signal = None

    def on_ctrl_c(self):
        """While the block runs, Ctrl-C sets ``requested`` instead of raising KeyboardInterrupt."""
        return self.on_signals((signal.SIGINT,))

    @contextlib.contextmanager
    def on_signals(self, signals=STOP_SIGNALS):
        """While the block runs, each of ``signals`` sets ``requested`` instead of ending the program (only the main
        thread receives signals; elsewhere nothing changes). The handlers before the block are put back after it."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def request_stop(signum, frame):
            self.requested = True
            self.signal = self.signal or signal.Signals(signum)

        previous = {signum: signal.signal(signum, request_stop) for signum in signals}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

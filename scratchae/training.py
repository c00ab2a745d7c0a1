"""The training loop.

Training a network is four lines repeated over mini-batches::

    pred = model.forward(x_batch)              # 1. run the network
    batch_loss = loss.forward(pred, y_batch)   # 2. measure how wrong it is
    model.backward(loss.backward())            # 3. backpropagate: every parameter gets its gradient
    optimizer.step()                           # 4. move every parameter a little downhill

:func:`fit` wraps those lines with what a real run needs: shuffled mini-batches, a validation pass after each epoch,
a record of the losses, a progress bar, and a clean stop on Ctrl-C or on a loss that is no longer a number.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

import numpy
from tqdm.auto import tqdm

from scratchae.backend import get_namespace, has_non_finite, ignore_overflow, is_floating, to_same_device
from scratchae.losses import SoftmaxCrossEntropyLoss


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the model keeps the weights it had before that batch."""


class History:
    """Per-epoch records of a run, as Keras keeps them: ``history["loss"]``, ``history["val_loss"]``, ...

    Attributes
    ----------
    metrics : dict[str, list[float]]
        ``loss`` (mean training loss over the epoch's batches) and, when measured, ``val_loss``, ``accuracy`` and
        ``val_accuracy``.
    seconds : list[float]
        Wall-clock time of each epoch (kept apart from ``metrics``, which a seeded run repeats exactly).
    interrupted : bool
        True when Ctrl-C stopped the run early.
    """

    def __init__(self, metrics: dict[str, list[float]] | None = None, seconds: list[float] | None = None):
        self.metrics = {name: list(values) for name, values in (metrics or {}).items()}
        self.seconds = list(seconds or [])
        self.interrupted = False

    def __getitem__(self, name: str) -> list[float]:
        return self.metrics[name]

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    def __len__(self) -> int:
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
        return {"metrics": self.metrics, "seconds": self.seconds, "interrupted": self.interrupted}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        history = cls(data.get("metrics"), data.get("seconds"))
        history.interrupted = bool(data.get("interrupted", False))
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
        on_epoch_end=None) -> History:
    """Train ``model`` on ``x`` (and targets ``y``) with mini-batch gradient descent.

    Parameters
    ----------
    model : Autoencoder, Classifier, or anything with forward / backward / parameters
    loss : MSELoss, BCELoss or SoftmaxCrossEntropyLoss
    optimizer : Adam or SGD, built on ``model.parameters()``
    x : array (N, D), float, same dtype as the model
        Training inputs (NumPy; moved once to the model's device).
    y : array, optional
        Targets: (N, D) floats, or (N,) integer labels for a classifier. None means ``y = x`` (an autoencoder).
    epochs : int
        Number of passes over the data in this call (0 trains nothing).
    batch_size : int
        Samples per gradient step; the last, smaller batch of an epoch is used too.
    shuffle : bool
        Visit the samples in a new random order each epoch (seeded by ``seed`` and the epoch number).
    validation : (x_val, y_val) or x_val, optional
        Evaluated after every epoch: ``val_loss`` (and ``val_accuracy`` for a classifier).
    seed : int
        Seed of the shuffling.
    progress : bool or "always"
        A progress bar per epoch with the running loss; True shows it when the output is a terminal.
    history : History, optional
        A previous run's history to continue (after loading a checkpoint): its epochs count on.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(epoch, logs)`` after every epoch (epoch counts from 1).

    Returns
    -------
    History

    Raises
    ------
    ValueError
        Before training, if the data do not fit the model (shape, dtype, NaN or infinity).
    TrainingDiverged
        If a batch's loss is NaN or infinite; the weights are those from before that batch.
    """
    _require_count("epochs", epochs, minimum=0)
    _require_count("batch_size", batch_size, minimum=1)
    reference = model.parameters()[0].data
    x, y = prepare_data(model, loss, x, y, "training data", reference)
    validation = _prepare_validation(model, loss, validation, reference)
    history = history if history is not None else History()
    model.train()
    with _stop_on_interrupt() as stop, ignore_overflow():
        for epoch in range(len(history), len(history) + epochs):
            if stop.requested:  # Ctrl-C during validation or a callback: stop before the next epoch starts
                history.interrupted = True
                break
            started = time.perf_counter()
            logs = train_one_epoch(model, loss, optimizer, x, y, batch_size, _batch_order(len(x), shuffle, seed, epoch, x),
                                   epoch, progress, stop)
            if stop.requested:
                history.interrupted = True
                break
            if validation is not None:
                logs.update({f"val_{name}": value for name, value in
                             evaluate(model, loss, *validation, batch_size=max(batch_size, 1024)).items()})
                model.train()
            history.record(logs, time.perf_counter() - started)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, logs)
    model.eval()
    return history


def train_one_epoch(model, loss, optimizer, x, y, batch_size, order, epoch, progress, stop) -> dict[str, float]:
    """One pass over the data in mini-batches; returns the epoch's mean loss (and accuracy for a classifier)."""
    n_batches = math.ceil(len(x) / batch_size)
    xp = get_namespace(x)
    classifier = isinstance(loss, SoftmaxCrossEntropyLoss)
    total_loss, correct = 0.0, 0
    bar = _progress_bar(n_batches, epoch, progress)
    for batch in range(n_batches):
        rows = slice(batch * batch_size, (batch + 1) * batch_size)
        index = rows if order is None else order[rows]
        x_batch = _take(xp, x, index)
        y_batch = x_batch if y is None else _take(xp, y, index)

        pred = model.forward(x_batch)
        batch_loss = float(loss.forward(pred, y_batch))
        if not math.isfinite(batch_loss):
            raise TrainingDiverged(f"the loss became {batch_loss} in epoch {epoch + 1}, batch {batch + 1}; the model "
                                   f"keeps the weights from before this batch (try a smaller learning rate)")
        model.backward(loss.backward())
        optimizer.step()

        total_loss += batch_loss
        if classifier:
            correct += int(xp.sum(xp.argmax(pred, axis=1) == y_batch))
        bar.update(1)
        if batch % 16 == 0:
            bar.set_postfix_str(f"loss {total_loss / (batch + 1):.4f}", refresh=False)
        if stop.requested:
            break
    bar.close()
    logs = {"loss": total_loss / (batch + 1)}
    if classifier:
        logs["accuracy"] = correct / min(len(x), (batch + 1) * batch_size)
    return logs


def evaluate(model, loss, x, y=None, *, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss over all samples of ``x`` (and accuracy for a classifier), with the model in evaluation mode.

    Batches keep the memory small; the mean is weighted by batch size, so it does not depend on ``batch_size``.
    """
    _require_count("batch_size", batch_size, minimum=1)
    model.eval()
    xp = get_namespace(x)
    classifier = isinstance(loss, SoftmaxCrossEntropyLoss)
    total_loss, correct = 0.0, 0
    with ignore_overflow():
        for start in range(0, len(x), batch_size):
            x_batch = x[start:start + batch_size]
            y_batch = x_batch if y is None else y[start:start + batch_size]
            pred = model.forward(x_batch)
            total_loss += float(loss.forward(pred, y_batch)) * len(x_batch)
            if classifier:
                correct += int(xp.sum(xp.argmax(pred, axis=1) == y_batch))
    results = {"loss": total_loss / len(x)}
    if classifier:
        results["accuracy"] = correct / len(x)
    return results


def prepare_data(model, loss, x, y, what: str, reference):
    """Check data once, where it enters training, and move it to the model's device.

    Raises ValueError naming the problem: wrong shape for the model, not floating point, a dtype other than the
    model's, NaN or infinity, labels that are not integers in range, or inputs and targets of different lengths.
    """
    features = model.input_features
    if len(x.shape) != 2 or x.shape[1] != features:
        raise ValueError(f"{what}: the model expects inputs of shape (N, {features}), got {tuple(x.shape)}")
    if not is_floating(x):
        raise ValueError(f"{what}: inputs must be floating point (for images: x.astype('float32') / 255), "
                         f"got {x.dtype}")
    if x.dtype != reference.dtype:
        raise ValueError(f"{what}: inputs are {x.dtype} but the model's weights are {reference.dtype}; "
                         f"convert with x.astype(...)")
    if len(x) == 0:
        raise ValueError(f"{what}: there are no samples")
    if has_non_finite(x):
        raise ValueError(f"{what}: inputs contain NaN or infinite values")
    if y is not None:
        _check_targets(model, loss, x, y, what)
    return to_same_device(x, reference), None if y is None else to_same_device(y, reference)


def _check_targets(model, loss, x, y, what: str) -> None:
    if len(y) != len(x):
        raise ValueError(f"{what}: {len(x)} inputs but {len(y)} targets")
    if isinstance(loss, SoftmaxCrossEntropyLoss):
        _check_labels(model, y, what)
        return
    if tuple(y.shape) != tuple(x.shape) or y.dtype != x.dtype:
        raise ValueError(f"{what}: targets must match the inputs' shape {tuple(x.shape)} and dtype {x.dtype}, got "
                         f"{tuple(y.shape)} {y.dtype}")
    if has_non_finite(y):
        raise ValueError(f"{what}: targets contain NaN or infinite values")


def _check_labels(model, y, what: str) -> None:
    xp = get_namespace(y)
    if len(y.shape) != 1 or not xp.isdtype(y.dtype, "integral"):
        raise ValueError(f"{what}: class labels must be a 1-d integer array, got shape {tuple(y.shape)} "
                         f"and dtype {y.dtype}")
    n_classes = model.output_features
    low, high = int(xp.min(y)), int(xp.max(y))
    if low < 0 or high >= n_classes:
        raise ValueError(f"{what}: class labels must lie in [0, {n_classes - 1}] for a model with {n_classes} "
                         f"outputs, got labels from {low} to {high}")


def _prepare_validation(model, loss, validation, reference):
    if validation is None:
        return None
    x_val, y_val = validation if isinstance(validation, (tuple, list)) else (validation, None)
    return prepare_data(model, loss, x_val, y_val, "validation data", reference)


def _batch_order(n: int, shuffle: bool, seed: int, epoch: int, like):
    """The sample indices of one epoch: a fresh permutation seeded by (seed, epoch), on the data's device."""
    if not shuffle:
        return None
    order = numpy.random.default_rng((seed, epoch)).permutation(n)
    return to_same_device(order, like)


def _take(xp, data, index):
    """The rows of a batch: a view when not shuffling (``index`` is a slice), a gathered copy otherwise."""
    return data[index] if isinstance(index, slice) else xp.take(data, index, axis=0)


def _progress_bar(n_batches: int, epoch: int, progress):
    disable = {True: None, "always": False, False: True}[progress]  # None: tqdm shows it only on a terminal
    return tqdm(total=n_batches, desc=f"epoch {epoch + 1}", leave=False, disable=disable, unit="batch")


def _require_count(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class _StopFlag:
    requested = False


@contextlib.contextmanager
def _stop_on_interrupt():
    """Turn Ctrl-C into a request to stop after the current batch (only the main thread receives signals)."""
    stop = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request_stop(signum, frame):
        stop.requested = True

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)

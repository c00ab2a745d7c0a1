"""Every core on one batch: the batch split by sample among threads, one gradient, one optimizer step.

The loss of a batch is a mean over its samples (the squared error and the cross-entropies over samples, and pixels;
the VAE's ELBO per image). Split the batch's N samples into T parts of n_1, ..., n_T samples, each part's loss the
mean over its own samples: the batch's loss is the parts' losses weighted by their shares of the batch,

    L = sum_k (n_k / N) L_k,        and so is its gradient:        dL/dθ = sum_k (n_k / N) dL_k/dθ,

because a mean over all samples is the share-weighted mean of the means over the parts. So each part's forward and
backward can run on a thread of its own, and the weighted sum of the parts' gradients is the gradient of the whole
batch; one optimizer step follows, as for an unsplit batch. Only the order of the additions changes (each part
adds up its own samples, then the parts are added in part order), so the result differs from the unsplit batch's
in float32's last bits, and the same thread count gives the same bits on every run and every resume.

Each part runs on a *replica* of the model: a copy of every layer (its own caches of the forward pass, its own
gradients) whose :class:`~scratchae.layers.Parameter` objects are new but whose ``.data`` is the very array of the
model's parameter, so that the optimizer's update of the model is every replica's too. The random numbers a
training forward draws (the denoising model's noise, the VAE's ``eps``) are drawn once for the whole batch by the
model itself (:meth:`scratchae.models.Model.draw_batch`, from the same seeds as an unsplit batch) and handed to each
part as its rows: the threads change the order of the sums, never the random numbers.

Why threads help: NumPy releases Python's global lock inside matrix products and in elementwise work on arrays of
more than a few hundred numbers, so T threads compute T parts at once, each with NumPy's BLAS at one thread (see
:mod:`scratchae.threads`: OpenBLAS's own threads spin, ours wait asleep on a queue between steps). Each part is
taken by whichever thread is free first, the calling one or one of the persistent worker threads made once per
``fit`` (:class:`WorkerPool`). The gradient sum is split among the threads by parameter (each parameter's sum
in part order, whichever thread does it), and so is the optimizer's update, where each parameter's update depends
on that parameter alone (Adam's and SGD's).

:class:`DataParallel` offers the model, the loss and the optimizer as :func:`scratchae.training.train_step` uses
them (``forward``, ``backward``; ``forward``, ``backward``, ``metrics``, ``start_epoch``; ``step``), so the step that
runs on every core is the lesson's four lines unchanged. An error in any part (a layer that raises, Ctrl-C) stops
the step before the optimizer has changed anything, and is raised on the calling thread.
"""

from __future__ import annotations

import copy
import itertools
import math
import queue
import threading

import numpy

from scratchae.engine.denormals import flushing_denormals
from scratchae.optim import Optimizer


class WorkerPool:
    """``count - 1`` persistent threads and the calling one: ``run(task, parts)`` runs ``task(k)`` for every part
    ``k`` and returns when all are done.

    Each thread, the calling one included, takes the next part not yet taken until none is left: a thread that the
    system has pushed off its core (beside a busy program) leaves its parts to the others instead of holding up the
    step. Which thread computes a part changes nothing in its result: part ``k`` always runs on replica ``k``, one
    BLAS thread, the same rows. Idle workers wait asleep on a queue.
    """

    def __init__(self, count: int):
        self.count = count
        self.errors = numpy.geterr()  # NumPy's floating-point error handling is each thread's own: the caller's
        self.inboxes = [queue.SimpleQueue() for _ in range(count - 1)]
        self.threads = [threading.Thread(target=self._work, args=(inbox,), daemon=True,
                                         name=f"scratchae-training-{index + 1}")
                        for index, inbox in enumerate(self.inboxes)]
        for thread in self.threads:
            thread.start()

    def _work(self, inbox) -> None:
        with numpy.errstate(**self.errors), flushing_denormals():  # as the calling thread has them
            while (take_parts := inbox.get()) is not None:
                take_parts()

    def run(self, task, parts: int | None = None) -> None:
        """Run ``task(k)`` for k in 0 .. parts - 1 (as many as threads by default); raise the error of the first
        part that failed, once every part has stopped."""
        parts = self.count if parts is None else parts
        taken, finished, errors = itertools.count(), threading.Semaphore(0), {}

        def take_parts():
            while (k := next(taken)) < parts:  # next() on a count is atomic: each part is taken once
                try:
                    task(k)
                except BaseException as error:  # raised on the calling thread once all parts have stopped
                    errors[k] = error
                finished.release()

        for inbox in self.inboxes[:parts - 1]:
            inbox.put(take_parts)
        take_parts()
        try:
            for _ in range(parts):
                finished.acquire()
        except BaseException:  # interrupted while waiting (Ctrl-C without a handler): no later step may run
            self.close()
            raise
        if errors:
            raise errors[min(errors)]

    def close(self) -> None:
        """Let every worker finish what it does and end (idempotent)."""
        for inbox in self.inboxes:
            inbox.put(None)
        for thread in self.threads:
            thread.join()
        self.inboxes, self.threads = [], []


def replica(model):
    """A copy of ``model`` whose parameters are new Parameter objects on the same ``.data`` arrays: every layer
    copied (its caches and gradients its own), every weight shared."""
    shared = {id(parameter.data): parameter.data for parameter in model.parameters()}
    return copy.deepcopy(model, shared)


def part_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) of each of ``min(parts, n)`` contiguous parts of n samples, sizes differing by at most one."""
    parts = min(parts, n)
    size, extra = divmod(n, parts)
    bounds, start = [], 0
    for index in range(parts):
        stop = start + size + (index < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


class DataParallel:
    """``model``, ``loss`` and ``optimizer`` trained on ``threads`` threads: :attr:`model`, :attr:`loss` and
    :attr:`optimizer` are what :func:`~scratchae.training.train_step` takes in their place. :meth:`close` ends the
    threads."""

    def __init__(self, model, loss, optimizer, threads: int):
        self.target_model, self.target_loss, self.target_optimizer = model, loss, optimizer
        self.parameters = model.parameters()
        self.replicas = [replica(model) for _ in range(threads)]
        self.replica_parameters = [part.parameters() for part in self.replicas]
        self.losses = [copy.deepcopy(loss) for _ in range(threads)]
        self.pool = WorkerPool(threads)
        self.reduced_by = _balance([parameter.size for parameter in self.parameters], threads)
        self.model, self.loss, self.optimizer = SplitModel(self), SplitLoss(self), SplitOptimizer(self)
        self.bounds, self.draws, self.x = [], {}, None

    def start(self, x) -> None:
        """Split the batch ``x`` (N, D): draw its random numbers once, point every replica at the current weights."""
        for parameters in self.replica_parameters:
            for own, shared in zip(parameters, self.parameters, strict=True):
                own.data = shared.data
        for part in self.replicas:
            if part.training != self.target_model.training:
                part.train(self.target_model.training)
        self.x, self.bounds = x, part_bounds(x.shape[0], len(self.replicas))
        self.draws = self.target_model.draw_batch(x) if hasattr(self.target_model, "draw_batch") else {}

    def forward_and_loss(self, target) -> float:
        """Every part's forward, loss and backward (the part's gradients stay on its replica until
        :meth:`backward` sums them); the batch's loss, the share-weighted sum of the parts' (part order). A part
        whose loss is not a number skips its backward: the step stops before any update."""
        n = self.x.shape[0]
        values = [0.0] * len(self.bounds)

        def part(k):
            start, stop = self.bounds[k]
            rows = slice(start, stop)
            out = self.replicas[k].forward(self.x[rows], **{name: drawn[rows] for name, drawn in self.draws.items()})
            values[k] = float(self.losses[k].forward(out, target[rows]))
            if math.isfinite(values[k]):  # the backward at once: one hand-over a step fewer
                self.replicas[k].backward(self.losses[k].backward())

        self.pool.run(part, len(self.bounds))
        return sum((stop - start) / n * value for (start, stop), value in zip(self.bounds, values))

    def backward(self) -> None:
        """Each parameter's gradient: the parts' gradients weighted by their shares, added in part order (each
        thread sums its own parameters)."""
        n = self.x.shape[0]
        weights = [(stop - start) / n for start, stop in self.bounds]

        def reduce(k):
            for index in self.reduced_by[k]:
                grads = [parameters[index].grad for parameters in self.replica_parameters[:len(weights)]]
                if any(grad is None for grad in grads):
                    self.parameters[index].grad = None
                    continue
                total = grads[0] * weights[0]
                for grad, weight in zip(grads[1:], weights[1:]):
                    total += grad * weight
                self.parameters[index].grad = total

        self.pool.run(reduce)

    def step(self) -> None:
        """The optimizer's step, each thread updating the parameters whose gradients it summed (each parameter's
        update depends on that parameter alone), where the optimizer is one of :mod:`scratchae.optim`'s that updates
        one parameter at a time; any other takes its own step on the calling thread."""
        optimizer = self.target_optimizer
        if not _updates_each_parameter_alone(optimizer):
            optimizer.step()
            return
        optimizer.count_step()  # as Optimizer.step does
        position = {id(parameter): index for index, parameter in enumerate(optimizer.params)}

        def update(k):
            for index in self.reduced_by[k]:
                parameter = self.parameters[index]
                if id(parameter) in position:
                    optimizer.update(position[id(parameter)], parameter)

        self.pool.run(update)

    def metrics(self) -> dict[str, float]:
        """The loss's other measures for the last batch: the parts' share-weighted sums."""
        n = self.x.shape[0]
        combined = {}
        for (start, stop), loss in zip(self.bounds, self.losses):
            for name, value in loss.metrics().items():
                combined[name] = combined.get(name, 0.0) + (stop - start) / n * value
        return combined

    def close(self) -> None:
        self.pool.close()


def _updates_each_parameter_alone(optimizer) -> bool:
    """Whether ``optimizer`` takes the step of :class:`scratchae.optim.Optimizer`: ``update(index, parameter)`` for
    each parameter in turn, each from its own gradient and state."""
    from scratchae.optim import Optimizer

    return isinstance(optimizer, Optimizer) and type(optimizer).step is Optimizer.step


def _balance(sizes: list[int], threads: int) -> list[list[int]]:
    """The parameter indices each thread sums: largest first, each to the thread with the fewest numbers so far."""
    loads, shares = [0] * threads, [[] for _ in range(threads)]
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        lightest = min(range(threads), key=lambda k: (loads[k], k))
        shares[lightest].append(index)
        loads[lightest] += sizes[index]
    return shares


class SplitModel:
    """The model as :func:`~scratchae.training.train_step` sees it: ``forward`` splits the batch, ``backward`` sets
    the model's gradients from every part's."""

    def __init__(self, parallel: DataParallel):
        self.parallel = parallel

    def forward(self, x):
        self.parallel.start(x)
        return self.parallel  # the parts' outputs stay with their threads until the loss compares them

    def backward(self, _):
        self.parallel.backward()


class SplitOptimizer:
    """The optimizer as :func:`~scratchae.training.train_step` sees it: ``step`` updates the parameters on every
    thread."""

    def __init__(self, parallel: DataParallel):
        self.parallel = parallel

    def step(self) -> None:
        self.parallel.step()


class SplitLoss:
    """The loss as :func:`~scratchae.training.train_step` sees it: ``forward`` runs every part's forward and loss,
    ``backward`` hands over to the model's."""

    def __init__(self, parallel: DataParallel):
        self.parallel = parallel
        self.targets = parallel.target_loss.targets

    def forward(self, _, target) -> float:
        return self.parallel.forward_and_loss(target)

    def backward(self):
        return None  # each part's loss gives its own gradient, on its own thread

    def metrics(self) -> dict[str, float]:
        return self.parallel.metrics()

    def start_epoch(self, epoch: int) -> None:
        self.parallel.target_loss.start_epoch(epoch)
        for loss in self.parallel.losses:
            loss.start_epoch(epoch)

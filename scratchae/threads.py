"""How many threads scratchae trains with, and how many NumPy's BLAS runs.

Training splits each batch among *training threads* (:mod:`scratchae.engine.parallel`): by default one per core this
process may use, up to :data:`MOST_USEFUL_THREADS`, for a model with convolutions, and one for a dense model, where
the split was measured to lose (:func:`scratchae.training_run.threads_for`). Each of them runs NumPy's BLAS (OpenBLAS) at one thread: the
matrix products of these networks are small (a batch of 256 by 784 by 128 takes a fraction of a millisecond), too
small for OpenBLAS to split well, and OpenBLAS's own threads spin while they wait for each other, so that beside one
busy program (a browser, a video call) every product waits for a thread the other program has pushed off its core
and training becomes several times slower (``benchmarks/neighbour.py``, ``benchmarks/README.md``). The training
threads do not spin: between steps they wait on a queue, asleep, and beside a busy program each gets the share of a
core the system gives it.

Outside training (evaluation, t-SNE's loops) NumPy's BLAS runs one thread unless ``--threads`` says otherwise.

The choice is made at run time (threadpoolctl for BLAS), never by environment variables: a program that imports
scratchae keeps its own BLAS settings elsewhere.

The training thread count decides the order in which the gradients of the parts of a batch are added up, and so the
last bits of a float32 run; ``scratchae train`` records the count with the run's state, and a resume under another
count says so.
"""

from __future__ import annotations

import contextlib
import os

from scratchae.validate import require_int

#: BLAS threads outside training when nobody says otherwise: one (see the module's docstring).
DEFAULT_THREADS = 1

#: Training threads beyond which more stop helping for these models. It is a model, not yet a measurement: no machine
#: with more than two cores was at hand. A batch of 128 in 8 parts leaves 16 samples a part, where a part's products
#: (16 x 784 x 128) take a few microseconds and the Python of its layers, which runs one thread at a time, weighs as
#: much; and the serial share of a step (the hand-over between threads, the batch's random draws) caps the gain:
#: ``benchmarks/README.md``, "Scaling beyond two cores", has the model and what was measured on two cores.
MOST_USEFUL_THREADS = 8

#: The most threads a count may ask for: far more than any batch has parts worth a thread, and few enough that a
#: mistyped count cannot exhaust the threads the system lends a process.
MOST_THREADS = 256

_chosen: int | None = None  # the process's explicit choice, made by use(): a command's or a demo's --threads
_active: list[int] = []  # the counts of the blas_threads blocks running now, innermost last


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` may narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_training_threads() -> int:
    """One training thread per core this process may use, at most :data:`MOST_USEFUL_THREADS`."""
    return min(available_cores(), MOST_USEFUL_THREADS)


def training_threads(threads: int | None = None) -> int:
    """The training threads to run with: ``threads`` if given, else the count :func:`use` chose for this process,
    else :func:`default_training_threads`."""
    if threads is not None:
        return require_int("threads", threads, minimum=1, maximum=MOST_THREADS)
    return _chosen if _chosen is not None else default_training_threads()


def explicit_choice() -> int | None:
    """The count a command's or a demo's ``--threads`` chose for this process (:func:`use`, :func:`chosen`), or None
    when none was given."""
    return _chosen


def resolve(threads: int | None = None) -> int:
    """The BLAS (and OpenMP) thread count for work other than training: ``threads`` if given, else the count
    :func:`use` chose for this process, else :data:`DEFAULT_THREADS`."""
    if threads is None:
        return _chosen if _chosen is not None else DEFAULT_THREADS
    return require_int("threads", threads, minimum=1, maximum=MOST_THREADS)


@contextlib.contextmanager
def blas_threads(threads: int | None = None):
    """Run NumPy's BLAS with :func:`resolve`\\ (``threads``) threads inside the ``with`` block; the previous counts
    come back after it. Yields the count."""
    count = resolve(threads)
    with _blas().limit(limits=count, user_api="blas"):
        _active.append(count)
        try:
            yield count
        finally:
            _active.pop()


def use(threads: int | None = None) -> int:
    """Choose the thread count for the rest of this process (a demo, a notebook): ``threads`` trains with that many
    training threads and runs BLAS outside training with as many; None keeps the defaults (every core for training,
    one BLAS thread). Returns the training thread count."""
    global _chosen
    _chosen = None if threads is None else require_int("threads", threads, minimum=1, maximum=MOST_THREADS)
    _blas().limit(limits=resolve(), user_api="blas")  # not used as a context: the limit stays
    return training_threads()


@contextlib.contextmanager
def chosen(threads: int | None = None):
    """Inside the block, ``threads`` is the process's choice as :func:`use` makes it (None: no change); the choice
    before it comes back after it (a command run in-process leaves nothing behind). Yields the training threads."""
    global _chosen
    before = _chosen
    if threads is not None:
        _chosen = require_int("threads", threads, minimum=1, maximum=MOST_THREADS)
    try:
        yield training_threads()
    finally:
        _chosen = before


def current() -> int | None:
    """The number of threads NumPy's BLAS runs now: the count of the innermost :func:`blas_threads` block, else the
    one :func:`use` chose, else what threadpoolctl reads from the first BLAS loaded (NumPy's, loaded with NumPy;
    scikit-learn may load SciPy's own later, which NumPy's products never use). None if it finds no BLAS."""
    if _active:
        return _active[-1]
    if _chosen is not None:
        return _chosen
    libraries = _blas().select(user_api="blas").lib_controllers
    return libraries[0].num_threads if libraries else None


def _blas():
    """threadpoolctl's controller of the libraries loaded now (made afresh, in about a millisecond, so that a
    library loaded since is seen too)."""
    from threadpoolctl import ThreadpoolController  # imported here: the lesson never needs it

    return ThreadpoolController()

"""How many threads NumPy's BLAS (OpenBLAS) runs while scratchae trains: one, unless told otherwise.

The matrix products of these networks are small (a batch of 256 by 784 by 128 takes a fraction of a millisecond),
and OpenBLAS splits each one among its threads, which spin while they wait for each other. On an idle machine a
second thread makes the products a little faster; beside one busy program (a browser, a video call) that shares
the cores, every product waits for the thread the other program has pushed off its core, and training becomes
several times slower. One thread loses little when the machine is idle and nothing when it is not:
``benchmarks/neighbour.py`` measures both (``benchmarks/README.md``, "Beside other programs").

The choice is made at run time with threadpoolctl, for the time ``fit`` trains (or for the whole of a command or a
demo), and never by environment variables: a program that imports scratchae keeps its own BLAS settings elsewhere.

The thread count also decides the last bits of a float32 product (OpenBLAS sums in another order with two threads),
so a run resumed with another count is no longer bit-identical to one that never stopped; ``scratchae train``
records the count with the run's state and says so.
"""

from __future__ import annotations

import contextlib

from scratchae.validate import require_int

#: BLAS threads when nobody says otherwise: one, for models of this size (see the module's docstring).
DEFAULT_THREADS = 1

_chosen: int | None = None  # the process's choice, made by use(): a command's or a demo's --threads
_active: list[int] = []  # the counts of the blas_threads blocks running now, innermost last


def resolve(threads: int | None = None) -> int:
    """The BLAS thread count to run with: ``threads`` if given, else the one :func:`use` chose for this process,
    else :data:`DEFAULT_THREADS`."""
    if threads is None:
        return _chosen if _chosen is not None else DEFAULT_THREADS
    return require_int("threads", threads, minimum=1)


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
    """Choose the BLAS thread count for the rest of this process (a demo, a notebook): ``threads``, or
    :data:`DEFAULT_THREADS`; ``fit`` then trains with it unless given its own. Returns the count."""
    global _chosen
    count = resolve(threads) if threads is not None else DEFAULT_THREADS
    _blas().limit(limits=count, user_api="blas")  # not used as a context: the limit stays
    _chosen = count
    return count


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

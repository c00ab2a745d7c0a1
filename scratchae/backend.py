"""Arrays and devices: the only module that knows NumPy from CuPy.

Every piece of math in scratchae asks the arrays it is given for their namespace,

    xp = get_namespace(x)

and then writes ``xp.exp``, ``xp.sum(x, axis=0)``, ``x @ W`` ... with the functions of the Python Array API
standard. The same lines then run on NumPy (CPU), on CuPy (GPU) and on any other Array API library.

Devices are named by strings: ``"cpu"`` (NumPy) and ``"gpu"`` (CuPy). ``to_device`` and ``to_numpy`` are the only
places where arrays cross between them. CuPy is imported lazily, only when a GPU is asked for, so importing
scratchae never needs a GPU.

On a GPU, a few lines of elementwise math (a sigmoid, Adam's update) run faster as one kernel than as one launch per
operation. :func:`fused` compiles the lesson's own Python lines into such a kernel with ``cupy.fuse``, so no formula
is ever written twice and the lesson modules never branch on the device.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy

#: Training runs in float32 everywhere: data, parameters, gradients and optimizer state.
DEFAULT_DTYPE = numpy.float32

DEVICES = ("auto", "cpu", "gpu")

_warned_auto_fallback = False


class DeviceError(RuntimeError):
    """The device that was asked for cannot be used (no CuPy, no driver, no GPU)."""


def get_namespace(*arrays):
    """Return the array module that the given arrays belong to.

    Parameters
    ----------
    *arrays : arrays or Python scalars
        NumPy arrays, CuPy arrays, or arrays of any library that implements ``__array_namespace__``.
        ``None`` and Python scalars are ignored.

    Returns
    -------
    module
        ``numpy``, ``cupy``, or the Array API namespace of the arrays. NumPy when no array is given.

    Raises
    ------
    TypeError
        If the arrays come from different libraries, or an argument is not an array at all.
    """
    if len(arrays) == 1 and type(arrays[0]) is numpy.ndarray:  # the common case, one look
        return numpy
    namespaces = []
    for array in arrays:
        if array is None or isinstance(array, (bool, int, float, complex)):
            continue
        namespace = _namespace_of(array)
        if all(namespace is not seen for seen in namespaces):
            namespaces.append(namespace)
    if not namespaces:
        return numpy
    if len(namespaces) > 1:
        names = ", ".join(ns.__name__ for ns in namespaces)
        raise TypeError(f"arrays from different array libraries cannot be mixed: {names}")
    return namespaces[0]


def _namespace_of(array):
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        return numpy
    if _is_cupy_array(array):
        return sys.modules["cupy"]  # a CuPy array exists, so CuPy is already imported
    if hasattr(array, "__array_namespace__"):
        return array.__array_namespace__()
    raise TypeError(f"expected an array, got {type(array).__name__}")


def _is_cupy_array(array) -> bool:
    """True for CuPy arrays, found without importing CuPy (a CuPy array can only exist once CuPy is imported)."""
    return type(array).__module__.split(".")[0] == "cupy"


def resolve_device(device: str = "auto") -> str:
    """Turn a device request into ``"cpu"`` or ``"gpu"``.

    ``"gpu"`` raises :class:`DeviceError` that says why when CuPy cannot run (not installed, no CUDA driver, no GPU).
    ``"auto"`` picks the GPU when it works and otherwise falls back to the CPU, saying so once.
    """
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    problem = _gpu_problem()
    if problem is None:
        return "gpu"
    if device == "gpu":
        raise DeviceError(f"--device gpu was asked for, but {problem}")
    _say_auto_fallback(problem)
    return "cpu"


def _say_auto_fallback(problem: str) -> None:
    global _warned_auto_fallback
    if not _warned_auto_fallback:
        _warned_auto_fallback = True
        print(f"scratchae: running on the CPU, because {problem}", file=sys.stderr)


def _gpu_problem() -> str | None:
    """Why the GPU cannot be used, in words, or None when it can."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'scratchae[cuda12]' or 'scratchae[cuda13]')"
    except Exception as error:  # a broken CuPy install raises all sorts of errors on import
        return f"CuPy failed to import: {error}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # cupy raises CUDARuntimeError when the driver is missing
        return f"CuPy cannot reach a CUDA driver: {error}"
    if count == 0:
        return "CuPy found no GPU on this machine"
    return None


def gpu_available() -> bool:
    """True when CuPy is installed and sees at least one GPU."""
    return _gpu_problem() is None


def device_of(array):
    """``"cpu"`` for NumPy arrays, ``"gpu"`` for CuPy arrays, and the array's own ``device`` for other Array API
    libraries (such as array-api-strict's ``Device('device1')``)."""
    xp = get_namespace(array)
    if xp is numpy:
        return "cpu"
    if _is_cupy_array(array):
        return "gpu"
    return array.device


def to_device(array, device):
    """Copy ``array`` to ``device``, keeping its dtype; an array already there is returned as it is, without a copy.

    ``device`` is ``"cpu"``, ``"gpu"`` or ``"auto"``, or (for other Array API libraries) what :func:`device_of`
    returns for an array of that library, given an array of the same library.
    """
    if not isinstance(device, str):
        xp = get_namespace(array)
        if xp is numpy or _is_cupy_array(array):
            raise TypeError(f"cannot move a {xp.__name__} array to the device {device!r} of another array library; "
                            f"convert it with that library's asarray first")
        return xp.asarray(array, device=device)
    device = resolve_device(device)
    if device == "cpu":
        return to_numpy(array)
    import cupy

    return cupy.asarray(array)


def to_numpy(array) -> numpy.ndarray:
    """Return ``array`` as a NumPy array (copying it from the GPU if it lives there)."""
    if isinstance(array, numpy.ndarray):
        return array
    if _is_cupy_array(array):
        return array.get()
    return numpy.asarray(array)


def copy_of(array):
    """A copy of ``array`` that shares no memory with it, on the same device (NumPy, CuPy or another Array API
    library, whose arrays may be views of one another)."""
    if isinstance(array, numpy.ndarray) or _is_cupy_array(array):
        return array.copy()
    return get_namespace(array).asarray(array, copy=True)


def is_floating(array) -> bool:
    """True when ``array`` has a real floating-point dtype."""
    return get_namespace(array).isdtype(array.dtype, "real floating")


def has_non_finite(array) -> bool:
    """True when ``array`` holds a NaN or an infinity.

    A NaN or an infinity makes the sum NaN or infinite, so one fast reduction answers for the usual case, a finite
    sum; only a non-finite sum (which finite values can also give, by overflowing) needs the element-wise check.
    """
    xp = get_namespace(array)
    if bool(xp.isfinite(xp.sum(array))):
        return False
    return not bool(xp.all(xp.isfinite(array)))


def random_generator(seed, like=None):
    """A seeded random generator (``seed`` an int or a tuple of ints) that draws arrays on the same device as ``like``.

    NumPy's :class:`numpy.random.Generator` for CPU arrays, CuPy's for GPU arrays, so that noise for a batch is
    drawn where the batch lives instead of being copied there.
    """
    if like is not None and _is_cupy_array(like):
        # CuPy takes one integer seed: mix a tuple such as (seed, batch) into one, as NumPy would
        entropy = int(numpy.random.SeedSequence(seed).generate_state(1, numpy.uint64)[0])
        return sys.modules["cupy"].random.default_rng(entropy)
    return numpy.random.default_rng(seed)


def standard_normal_like(like, rng, shape=None):
    """N(0, 1) numbers of the shape (or ``shape``), dtype and device of ``like``, drawn by ``rng`` (see
    :func:`random_generator`).

    A NumPy generator draws them with :func:`box_muller` from uniform numbers in ``like``'s dtype (float32 stays
    float32); for another Array API library (which has no random numbers of its own in the standard) they are drawn
    so on the CPU and moved to ``like``'s device. CuPy's generator draws its own on the GPU.

    Raises
    ------
    TypeError
        If ``rng`` cannot draw for ``like``'s library (a NumPy generator for a CuPy array, or the other way round).
    """
    xp = get_namespace(like)
    mismatch = (f"rng ({type(rng).__module__}.{type(rng).__name__}) cannot draw random numbers for a {xp.__name__} "
                "array; make the generator with random_generator(seed, like=x)")
    shape = tuple(like.shape) if shape is None else tuple(shape)
    if isinstance(rng, numpy.random.Generator) and (xp is numpy or not _is_cupy_array(like)):
        dtype = numpy.float64 if like.dtype == xp.float64 else numpy.float32
        values = box_muller(rng, shape, dtype)
        return values if xp is numpy else xp.asarray(values, device=like.device)
    if not _is_cupy_array(like):
        raise TypeError(mismatch)
    try:
        values = rng.standard_normal(shape, dtype=like.dtype)
    except TypeError as error:  # e.g. a NumPy generator asked for another library's dtype
        raise TypeError(f"{mismatch} ({error})") from error
    if get_namespace(values) is not xp:
        raise TypeError(mismatch)
    return values


def box_muller(rng: numpy.random.Generator, shape: tuple, dtype=numpy.float32) -> numpy.ndarray:
    r"""Standard normal numbers from uniform ones, by the Box-Muller transform:

    .. math:: z_1 = r \cos\theta, \quad z_2 = r \sin\theta, \qquad
              r = \sqrt{-2 \ln(1 - u_1)}, \quad \theta = 2\pi u_2, \qquad u_1, u_2 \sim U[0, 1),

    two independent N(0, 1) numbers per pair of uniform ones. NumPy draws float32 uniform numbers several times
    faster than float32 normal ones (its ziggurat sampler branches per number), and the transform is a few
    vectorised passes, so this is the fast way to draw a denoising model's noise. ``1 - u_1`` is in (0, 1], so the
    logarithm never sees 0; in float32 the largest value is :math:`\sqrt{-2 \ln 2^{-24}} \approx 5.8`, beyond which
    the normal distribution has less than one number in 10^8.
    """
    n = math.prod(shape)
    half = (n + 1) // 2
    u = rng.random((2, half), dtype=dtype)  # (2, n/2) in [0, 1)
    radius = numpy.sqrt(-2.0 * numpy.log1p(-u[0]))  # (n/2,)   log(1 - u) without losing the small u
    angle = (2.0 * math.pi) * u[1]  # (n/2,)
    values = numpy.empty(2 * half, dtype=dtype)
    numpy.multiply(radius, numpy.cos(angle), out=values[:half])
    numpy.multiply(radius, numpy.sin(angle), out=values[half:])
    return values[:n].reshape(shape)


def add_gaussian_noise(x, factor=0.5, rng=None, clip=(0.0, 1.0)):
    """Corrupt images with Gaussian noise: ``clip(x + factor * N(0, 1), *clip)``.

    The noise is drawn by ``rng`` directly in the dtype of ``x`` (float32 stays float32, no float64 temporary) and
    on the device of ``x``: a NumPy generator for NumPy arrays, a CuPy generator for CuPy arrays.

    Parameters
    ----------
    x : array, shape (N, D), floating
        Clean images, usually in [0, 1].
    factor : float
        Standard deviation of the noise.
    rng : Generator or int
        A seeded generator (see :func:`scratchae.backend.random_generator`), or a seed to make one.
    clip : (float, float) or None
        Range to clip the noisy images to; ``None`` leaves them unclipped.

    Returns
    -------
    array, shape (N, D)
        New noisy images, same dtype and array library as ``x``.
    """
    if not is_floating(x):
        raise TypeError(f"add_gaussian_noise expects floating images in [0, 1], got dtype {x.dtype}")
    noise = _standard_normal_like(x, rng)  # (N, D), N(0, 1)
    noisy = x + float(factor) * noise  # a Python float keeps float32 arrays float32
    if clip is not None:
        noisy = get_namespace(x).clip(noisy, float(clip[0]), float(clip[1]))
    return noisy


def _standard_normal_like(x, rng):
    """N(0, 1) noise of the shape, dtype and array library of ``x``, drawn by ``rng`` (a generator or a seed)."""
    if rng is None:
        raise TypeError("add_gaussian_noise needs rng: a seeded generator, e.g. random_generator(0, like=x), or a seed")
    if isinstance(rng, (int, numpy.integer)):
        rng = random_generator(int(rng), like=x)
    return standard_normal_like(x, rng)



def asarray_like(values: numpy.ndarray, like):
    """NumPy ``values`` as an array of ``like``'s library, on ``like``'s device (a batch order, made on the CPU)."""
    if isinstance(like, numpy.ndarray):
        return values
    xp = get_namespace(like)
    return xp.asarray(values) if _is_cupy_array(like) else xp.asarray(values, device=like.device)


def arange_like(n: int, like):
    """``[0, 1, ..., n-1]`` as an integer array on the same device as ``like``."""
    xp = get_namespace(like)
    if xp is numpy or _is_cupy_array(like):
        return xp.arange(n)  # NumPy has one device; CuPy allocates on the current GPU, where ``like`` lives
    return xp.arange(n, device=like.device)


def full_like_shape(shape: tuple, fill_value, like):
    """A new array of ``shape`` filled with ``fill_value`` (None: left uninitialised), with ``like``'s dtype, library
    and device: the zero-padded or empty buffers of the convolution layers."""
    xp = get_namespace(like)
    if xp is numpy or _is_cupy_array(like):  # one device for NumPy; CuPy allocates on the current GPU, where like is
        if fill_value is None:
            return xp.empty(shape, dtype=like.dtype)
        return xp.full(shape, fill_value, dtype=like.dtype)
    if fill_value is None:
        return xp.empty(shape, dtype=like.dtype, device=like.device)
    return xp.full(shape, fill_value, dtype=like.dtype, device=like.device)


def ignore_overflow():
    """A context in which NumPy does not warn about overflow or invalid values.

    Training checks every batch's loss itself and stops with a clear error on the first NaN or infinity, so
    NumPy's own warnings on the way there would only repeat it less clearly.
    """
    return numpy.errstate(over="ignore", invalid="ignore", divide="ignore")


def fused(function):
    """Turn a function of a few lines of elementwise math into one GPU kernel, and leave it as it is elsewhere.

    ``function(xp, *arguments)`` takes the array namespace first and writes its math with ``xp.exp``, ``*``, ``+=``
    ... like every other line of scratchae. The function this returns is called without ``xp``: it finds the
    namespace from the arguments. On NumPy (or any Array API library) it simply calls ``function(xp, ...)``, line by
    line. On CuPy arrays it compiles the *same* lines, once, with :func:`cupy.fuse` into a single kernel: on a GPU
    each array operation is one kernel launch, and for layers this small the launches, not the arithmetic, take the
    time. The formula is written once, in the lesson, and runs on both devices; the GPU tests check that both agree.

    Arguments are arrays of one shape and Python numbers; in-place updates of array arguments (``m *= beta``) update
    them in place on both devices.
    """
    compiled = None

    @functools.wraps(function)
    def run(*arguments):
        nonlocal compiled
        if type(arguments[0]) is numpy.ndarray:  # the common case, without looking at every argument
            return function(numpy, *arguments)
        xp = get_namespace(*arguments)
        if getattr(xp, "__name__", None) != "cupy":
            return function(xp, *arguments)
        if compiled is None:
            fusable = _FusionNamespace(xp)

            def on_cupy(*values):
                return function(fusable, *values)

            compiled = xp.fuse(kernel_name=f"scratchae_{function.__name__}")(on_cupy)
        return compiled(*arguments)

    return run


class _FusionNamespace:
    """CuPy's namespace as a function fused by :func:`cupy.fuse` sees it: ``astype(x, dtype)``, a function in the
    Array API, becomes the ``x.astype(dtype)`` that the values ``cupy.fuse`` traces know; the rest is CuPy's."""

    def __init__(self, cupy):
        self._cupy = cupy

    def __getattr__(self, name):
        return getattr(self._cupy, name)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype)

"""Flush denormal numbers to zero while training, on the training threads only.

Adam's second moment ``v`` of a weight whose gradient is zero (a unit that a ReLU has switched off) shrinks by
``beta2 = 0.999`` a step and spends thousands of steps below float32's smallest normal number, 1.2e-38. Numbers in
that range are *denormal*: x86 processors compute with them through a slow microcode path, and from the third epoch
on the simple autoencoder's Adam step holds tens of thousands of them (each epoch +35 % on an Intel Xeon). The
intermediates ``g * g`` and ``m`` go denormal too, so clamping ``v`` does not help.

The processor can treat them as zero instead: two bits of the SSE control register MXCSR, *flush to zero* (bit 15,
results that would be denormal become 0) and *denormals are zero* (bit 6, denormal inputs are read as 0), what
``torch.set_flush_denormal(True)`` sets. This cannot change a result that matters: every number they touch is below
1.2e-38, and the smallest number Adam's update divides by is ``sqrt(v) + eps`` with ``eps = 1e-8``, so a ``v`` of
1e-39 or of 0 gives the same step to float32's last bit; a weight, an activation or a gradient of 1e-38 is zero for
every purpose of these networks (float32 rounds 1 + 1e-38 to 1).

MXCSR belongs to each thread: :func:`flushing_denormals` sets the bits for the thread that enters it and puts the
thread's own value back when it leaves, so a notebook's other NumPy work keeps IEEE arithmetic. It reads and writes
the register through the C library's ``fegetenv`` and ``fesetenv`` (ctypes, no compiled extension). Where that is
not glibc on x86-64 (whose ``fenv_t`` is 32 bytes, MXCSR its last 4, at offset 28), it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import struct
import sys

#: MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
FLUSH_BITS = (1 << 15) | (1 << 6)

_FENV_SIZE = 32  # sizeof(fenv_t) in glibc on x86-64: the x87 environment (28 bytes), then MXCSR
_MXCSR_OFFSET = 28


def _load_fenv():
    """The C library's fegetenv and fesetenv where fenv_t has the layout above, else None."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return None
    if platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        libm = ctypes.CDLL(name)
        return libm.fegetenv, libm.fesetenv
    except (OSError, AttributeError):
        return None


_FENV = _load_fenv()


def supported() -> bool:
    """Whether this process can set the flags (x86-64 with glibc)."""
    return _FENV is not None


def read_mxcsr() -> int | None:
    """This thread's MXCSR, or None where :func:`supported` is False."""
    if _FENV is None:
        return None
    environment = ctypes.create_string_buffer(_FENV_SIZE)
    if _FENV[0](environment) != 0:
        return None
    return struct.unpack_from("<I", environment.raw, _MXCSR_OFFSET)[0]


def _write_mxcsr(environment: bytes, mxcsr: int) -> None:
    """Give this thread the floating-point environment ``environment`` (from fegetenv) with MXCSR ``mxcsr``."""
    changed = bytearray(environment)
    struct.pack_into("<I", changed, _MXCSR_OFFSET, mxcsr)
    _FENV[1](ctypes.create_string_buffer(bytes(changed), _FENV_SIZE))


@contextlib.contextmanager
def flushing_denormals():
    """Inside the block this thread flushes denormal numbers to zero (see the module's docstring); its own
    floating-point environment comes back after it. Does nothing where :func:`supported` is False."""
    if _FENV is None:
        yield
        return
    saved = ctypes.create_string_buffer(_FENV_SIZE)
    if _FENV[0](saved) != 0:
        yield
        return
    before = saved.raw
    mxcsr = struct.unpack_from("<I", before, _MXCSR_OFFSET)[0]
    _write_mxcsr(before, mxcsr | FLUSH_BITS)
    try:
        yield
    finally:
        _FENV[1](ctypes.create_string_buffer(before, _FENV_SIZE))

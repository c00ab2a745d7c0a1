"""Checks of the numbers a user passes in: each returns the value as a plain Python number, or raises a ValueError
that names the argument, says what it must be and shows what it got.

Every constructor and function of scratchae that takes a size, a count or a rate checks it here, at the door, so a
wrong value fails at once with a clear message instead of deep inside the math (or, worse, not at all: a float
``batch_size`` of 2.5 would silently slice batches of 2). The command line's argument types use the same checks.
"""

from __future__ import annotations

import math
import numbers


def require_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is a whole number (a Python or NumPy integer, not a bool) ``>= minimum`` and
    ``<= maximum`` (each bound only when given)."""
    wanted = ("a whole number" + ("" if minimum is None else f" >= {minimum}")
              + ("" if maximum is None else f"{' and' if minimum is not None else ''} <= {maximum}"))
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def require_float(name: str, value, *, minimum: float | None = None, above: float | None = None,
                  below: float | None = None) -> float:
    """``value`` as a finite ``float`` with ``value >= minimum``, ``value > above`` and ``value < below`` (each bound
    only when given).

    A Python float keeps float32 arrays float32 where a NumPy float64 scalar would promote them, so hyperparameters
    are stored as the float this returns.
    """
    fits = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            and (minimum is None or value >= minimum) and (above is None or value > above)
            and (below is None or value < below))
    if not fits:
        raise ValueError(f"{name} must be a finite number{_range(minimum, above, below)}, got {value!r}")
    return float(value)


def _range(minimum, above, below) -> str:
    """The allowed range in words: " in [0, 1)", " > 0", " >= 0" or nothing."""
    low = f"[{minimum:g}" if minimum is not None else (f"({above:g}" if above is not None else None)
    if low is not None and below is not None:
        return f" in {low}, {below:g})"
    if below is not None:
        return f" < {below:g}"
    if minimum is not None:
        return f" >= {minimum:g}"
    return f" > {above:g}" if above is not None else ""


def fits(check, value, **bounds) -> bool:
    """Whether ``check("value", value, **bounds)`` (one of the checks above) accepts ``value``."""
    try:
        check("value", value, **bounds)
    except ValueError:
        return False
    return True

"""The command line's argument types and the options every run shares.

Each type turns a string into a checked number with :mod:`scratchae.validate`, the checks the library itself uses, or
says why not. :func:`add_run_options` declares ``--data``, ``--device``, ``--seed``, ``--epochs``, ``--out`` and
``--threads`` once, for ``scratchae train``, ``scratchae demo`` and every demo script.
"""

from __future__ import annotations

import argparse

from scratchae.backend import DEVICES
from scratchae.validate import require_float, require_int
from scratchae.data import DATASETS
from scratchae.threads import MOST_THREADS


def count(minimum: int, maximum: int | None = None):
    """An argparse type for whole numbers >= ``minimum`` (``count(1)`` for sizes, ``count(0)`` for epochs), and
    <= ``maximum`` when given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        return _checked(require_int, "the value", value, minimum=minimum, maximum=maximum)

    return parse


def language(text: str) -> str:
    """An argparse type for ``--lang``: a language with a message catalog (``pt``, ``pt_BR``) or English (``en``)."""
    from scratchae.i18n import resolve

    try:
        return resolve(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_language_option(parser) -> None:
    """``--lang``: the language of the figures, captions and pages (the commands' own messages stay English)."""
    parser.add_argument("--lang", type=language, default=None, metavar="LANG",
                        help="the language of figures, captions and pages: en, pt (default: the locale's, as gettext "
                             "reads LANGUAGE, LC_ALL, LC_MESSAGES and LANG)")


def shape(text: str) -> tuple[int, ...]:
    """An argparse type for an array shape written as sizes and commas: ``4,10`` -> (4, 10)."""
    parts = [part.strip() for part in text.strip("() ").split(",") if part.strip()]
    if not parts or not all(part.lstrip("-").isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected sizes separated by commas, such as 4,10, got {text!r}")
    if any(int(part) < 1 for part in parts):
        raise argparse.ArgumentTypeError(f"every size must be at least 1, got {text!r}")
    return tuple(int(part) for part in parts)


def path_name(text: str) -> str:
    """An argparse type for a file or folder name: not empty (an empty ``--out ""`` is a slip, not "the default")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file or folder name, got an empty one")
    return text


def positive_float(text: str) -> float:
    """An argparse type for finite numbers > 0 (learning rates)."""
    return _checked(require_float, "the value", _number(text), above=0.0)


def bounded_float(**bounds):
    """An argparse type for finite numbers within ``bounds`` (those of :func:`scratchae.validate.require_float`)."""

    def parse(text: str) -> float:
        return _checked(require_float, "the value", _number(text), **bounds)

    return parse


def non_negative_float(text: str) -> float:
    """An argparse type for finite numbers >= 0 (weight decay, noise factor, beta)."""
    return _checked(require_float, "the value", _number(text), minimum=0.0)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _checked(check, name, value, **bounds):
    try:
        return check(name, value, **bounds)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"{name} ")) from None


def add_run_options(parser: argparse.ArgumentParser, *, epochs: int | None, epochs_help: str,
                    min_epochs: int = 1, out: str | None, out_help: str) -> None:
    """Add ``--data``, ``--device``, ``--seed``, ``--epochs``, ``--out`` and ``--threads`` to ``parser``, with the
    given defaults."""
    parser.add_argument("--data", choices=DATASETS, default="mnist-5k",
                        help="data set (default: mnist-5k, 5,000 real digits that need no download)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="cpu, gpu, or auto (the default: the GPU if CuPy can use one)")
    parser.add_argument("--seed", type=count(0), default=0, help="seeds the data split, the weights, the batches and "
                                                                "the noise (default: 0)")
    parser.add_argument("--epochs", type=count(min_epochs), default=epochs, help=epochs_help)
    parser.add_argument("--out", type=path_name, default=out, help=out_help)
    add_threads_option(parser)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads``: the threads that train (default: see :func:`scratchae.training_run.threads_for`)."""
    parser.add_argument("--threads", type=count(1, maximum=MOST_THREADS), default=None,
                        help="threads that train, each on a part of every batch (default: every core for the "
                             "convolutional models, one for the dense ones); "
                             "the count changes the last bits of the results")

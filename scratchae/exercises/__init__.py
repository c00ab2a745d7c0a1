"""The learner's turn: write the backward passes yourself, and be told exactly what is wrong.

``scratchae exercises start DIR`` copies one file per exercise into DIR, in the reading order of the lesson (ReLU,
Sigmoid, Dense, Sequential's chain rule, the three losses, Adam, ``train_step``, the VAE's sample and its KL term,
then the convolution layers: Conv2D, MaxPool2D and UpSampling2D, and the sparse autoencoder's L1 penalty). Each file gives the forward pass (or the setting) and leaves the backward pass (or the update) to write: a stub that
raises ``NotImplementedError`` naming its exercise, under a docstring that gives every shape and says what to derive.
``start`` never overwrites a file that is there; run it again after an upgrade and it adds only the new exercises.

``scratchae exercises check DIR [NAME ...]`` judges them: a gradient check with a random upstream gradient, agreement
with the library's own implementation on random inputs, the layer protocol (gradients overwritten, ``dy`` untouched)
and, for Adam and ``train_step``, a few steps against the library's trajectory. Each exercise is checked alone: its
checks use the library for everything else, so none waits for another. ``start`` also writes ``test_exercises.py``
and a ``conftest.py`` with one pytest marker per exercise, so that a teacher's CI runs the same checks
(``pytest -m dense``). ``scratchae exercises check`` runs each check in a child process with a time limit
(:mod:`.sandbox`), so that a file that exits, loops or crashes is a verdict, never a pass.

To add an exercise: a stub file in ``stubs/`` (named ``NN_name.py``) and a check in :mod:`.checks`, registered in
:data:`EXERCISES` in reading order.
"""

from __future__ import annotations

import importlib.resources
import shlex
from dataclasses import dataclass
from pathlib import Path

from scratchae.exercises import judge, sandbox
from scratchae.exercises.judge import Result
from scratchae.atomic_files import write_text_atomically
from scratchae.learner_files import OwnCodeError


@dataclass(frozen=True)
class Exercise:
    """One exercise: its name (used on the command line and as a pytest marker), its file and what it asks."""

    name: str
    file: str
    title: str
    check: object  # judge.check_<name>(module) -> Result

    def run(self, folder) -> Result:
        """Check the reader's file for this exercise in ``folder``."""
        return judge.run(self.name, Path(folder) / self.file, self.check)


EXERCISES = [Exercise(name, f"{number:02d}_{name}.py", title, getattr(judge, f"check_{name}"))
             for number, (name, title) in enumerate([
                 ("relu", "ReLU's backward"),
                 ("sigmoid", "Sigmoid's backward"),
                 ("dense", "Dense's backward: dW, db and dx"),
                 ("sequential", "Sequential's backward: the chain rule"),
                 ("mse", "the mean squared error's gradient"),
                 ("bce", "the binary cross-entropy's gradient"),
                 ("softmax_cross_entropy", "softmax cross-entropy's gradient"),
                 ("adam", "Adam's update"),
                 ("train_step", "train_step: forward, loss, backward, step"),
                 ("vae_sample", "the VAE's sample: z = mu + exp(logvar / 2) eps, backward"),
                 ("kl", "the VAE's KL term, backward"),
                 ("conv2d", "Conv2D's backward: stride 2, padding 1"),
                 ("maxpool2d", "MaxPool2D's backward: overlapping windows"),
                 ("upsampling2d", "UpSampling2D's backward"),
                 ("l1_penalty", "the sparse autoencoder's L1 activity penalty, backward"),
             ], start=1)]

#: The files ``start`` writes beside the exercises so that pytest runs their checks.
TEST_FILES = ("conftest.py", "test_exercises.py")


def names() -> list[str]:
    return [exercise.name for exercise in EXERCISES]


def find(requested: list[str] | None) -> list[Exercise]:
    """The exercises named (all of them for None or []), in reading order; an unknown name is an OwnCodeError."""
    if not requested:
        return list(EXERCISES)
    unknown = [name for name in requested if name not in names()]
    if unknown:
        raise OwnCodeError(f"no exercise named {', '.join(unknown)}; the exercises are {', '.join(names())}")
    return [exercise for exercise in EXERCISES if exercise.name in requested]


def start(folder) -> tuple[list[Path], list[Path]]:
    """Write every exercise file and the pytest files into ``folder`` (made if missing), never overwriting one.

    Returns (the files written, the files already there and kept).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OwnCodeError(f"{folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OwnCodeError(f"cannot write into {folder}: {error.strerror or error}; nothing was written") from None
    written, kept = [], []
    stubs = importlib.resources.files(__package__) / "stubs"
    for file in [exercise.file for exercise in EXERCISES] + list(TEST_FILES):
        target = folder / file
        if target.exists():
            kept.append(target)
            continue
        write_text_atomically(target, (stubs / file).read_text(encoding="utf-8"))
        written.append(target)
    return written, kept


def check(folder, requested: list[str] | None = None) -> list[Result]:
    """Check the exercises named (all by default) in ``folder``, in this process; one :class:`Result` each, in
    reading order. A learner's file runs here unguarded (pytest guards its own tests); the command uses
    :func:`check_each`."""
    folder = _exercises_folder(folder)
    return [exercise.run(folder) for exercise in find(requested)]


def check_each(folder, requested: list[str] | None = None, *, timeout: float = sandbox.DEFAULT_TIMEOUT):
    """Check the exercises named (all by default) in ``folder``, each in a child process that may take ``timeout``
    seconds (:mod:`.sandbox`); yields (exercise, :class:`Result`) as each check ends, in reading order.

    Unlike :func:`check`, a learner's file that exits, raises ``BaseException``, loops forever or crashes the
    interpreter cannot stop the checking: each of those is a "wrong" verdict.
    """
    asked = find(requested)
    folder = _exercises_folder(folder)
    for exercise in asked:
        yield exercise, sandbox.check_in_child(folder, exercise, timeout=timeout)


def _exercises_folder(folder) -> Path:
    """``folder`` as a Path, if it is a folder that holds at least one exercise file; else an OwnCodeError (a wrong
    DIR is one line, not every exercise "not started")."""
    folder = Path(folder)
    if not folder.is_dir() or not any((folder / exercise.file).exists() for exercise in EXERCISES):
        raise OwnCodeError(f"{folder} is not a folder of exercises (make one with: scratchae exercises start "
                           f"{shlex.quote(str(folder))})")
    return folder


def check_one(folder, name: str) -> Result:
    """The result of one exercise (what the pytest entry that ``start`` writes calls)."""
    (exercise,) = find([name])
    return exercise.run(folder)

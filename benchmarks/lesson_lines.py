"""What a learner steps through: every distinct line of scratchae that one ``train_step`` runs, sorted by kind.

A debugger that steps into ``train_step`` shows these lines, in this order; the fewer that are not the lesson's
math, the more the step reads like the lesson. The lines are recorded with ``sys.settrace`` on the second of two
steps (the first one warms up: Adam's moments are created on it), and each is put in one of these kinds:

- ``lesson``: a line of the math in a lesson module (layers, conv, losses, optim, models, training);
- ``namespace``: the look-up of the array library (``xp = get_namespace(...)``) and its lines in backend.py;
- ``check``: a test that raises on bad values, and its ``raise``;
- ``flag``: a branch on an option (``if not input_grad:``, ``if self.training:``) and what it returns;
- ``machinery``: any other line outside the lesson modules (devices, random numbers, helpers).

    python benchmarks/lesson_lines.py               # both models, the lines by kind
    python benchmarks/lesson_lines.py --list        # and every line with its kind

Counts depend only on the code, never on the machine, so ``tests/test_lesson_lines.py`` holds them to the targets.
"""

from __future__ import annotations

import argparse
import collections
import linecache
import re
import sys
from pathlib import Path

import numpy

import scratchae
from scratchae import builders
from scratchae.losses import BCELoss, MSELoss
from scratchae.optim import Adam
from scratchae.training import train_step

PACKAGE = Path(scratchae.__file__).resolve().parent
LESSON_MODULES = {"layers.py", "conv.py", "losses.py", "optim.py", "models.py", "training.py"}
KINDS = ("lesson", "namespace", "check", "flag", "machinery")

#: How the line after an ``if`` begins when the ``if`` is a check: it raises, or calls a check that does.
CHECKS = ("raise ", "self.require_")

#: The two steps the targets are set for: a model, its loss and its batch size, on the lesson's floor.
STEPS = {
    "simple": (lambda: builders.simple_autoencoder(), MSELoss, 256),
    "conv": (lambda: builders.conv_autoencoder(), BCELoss, 128),
}

#: At most this many distinct lines, and at least this share of them the lesson's math.
TARGETS = {"simple": (75, 0.75), "conv": (160, 0.70)}


def traced_step(model, loss, optimizer, x) -> list[tuple[str, int]]:
    """The distinct (file, line) pairs of scratchae that one ``train_step`` runs, in the order first run."""
    seen: dict[tuple[str, int], None] = {}

    def tracer(frame, event, arg):
        path = frame.f_code.co_filename
        if not path.startswith(str(PACKAGE)):
            return None  # neither this frame's lines nor those it calls into outside scratchae
        if event == "line":
            seen.setdefault((path, frame.f_lineno), None)
        return tracer

    train_step(model, loss, optimizer, x)  # the warm-up step
    sys.settrace(tracer)
    try:
        train_step(model, loss, optimizer, x)
    finally:
        sys.settrace(None)
    return list(seen)


def kind_of(path: str, line_number: int) -> str:
    """The kind of one line (see the module's docstring)."""
    text = linecache.getline(path, line_number).strip()
    if Path(path).name not in LESSON_MODULES or Path(path).parent != PACKAGE:
        return "namespace" if Path(path).name == "backend.py" and _in_function(path, line_number, "get_namespace") \
            else "machinery"
    if re.match(r"xp = get_namespace\(", text):
        return "namespace"
    if text.startswith("raise ") or (text.startswith("if ") and _next_line(path, line_number).startswith(CHECKS)):
        return "check"
    if re.match(r"if (not )?(input_grad|self\.training)\b", text) or (
            text == "return None" and "input_grad" in linecache.getline(path, line_number - 1)):
        return "flag"
    return "lesson"


def _next_line(path: str, line_number: int) -> str:
    return linecache.getline(path, line_number + 1).strip()


def _in_function(path: str, line_number: int, name: str) -> bool:
    """Whether the line lies in the body of the module-level function ``name``."""
    for number in range(line_number, 0, -1):
        text = linecache.getline(path, number)
        if text.startswith("def "):
            return text.startswith(f"def {name}(")
    return False


def lines_of(name: str) -> list[tuple[str, int, str, str]]:
    """(module, line number, kind, text) of every distinct line that one step of ``STEPS[name]`` runs."""
    build, loss_class, batch = STEPS[name]
    model = build()
    x = numpy.random.default_rng(0).uniform(0.0, 1.0, (batch, model.input_features)).astype(numpy.float32)
    traced = traced_step(model.train(), loss_class(), Adam(model.parameters()), x)
    return [(str(Path(path).relative_to(PACKAGE.parent)), number, kind_of(path, number),
             linecache.getline(path, number).strip()) for path, number in traced]


def summary(name: str) -> dict:
    """The count of lines of each kind, their total and the lesson's share."""
    counts = collections.Counter(kind for _, _, kind, _ in lines_of(name))
    total = sum(counts.values())
    return {"total": total, "lesson_share": counts["lesson"] / total, **{kind: counts[kind] for kind in KINDS}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="print every line with its kind")
    arguments = parser.parse_args(argv)
    for name in STEPS:
        result = summary(name)
        most, share = TARGETS[name]
        print(f"{name}: {result['total']} lines (target <= {most}), {result['lesson_share']:.0%} the lesson's math "
              f"(target >= {share:.0%}); " + ", ".join(f"{kind} {result[kind]}" for kind in KINDS))
        if arguments.list:
            for module, number, kind, text in lines_of(name):
                print(f"    {kind:<10} {module}:{number:<5} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

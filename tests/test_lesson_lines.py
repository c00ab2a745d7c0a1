"""The lesson reads like the lesson: what one ``train_step`` runs, line by line, and the size of the conv layers.

The line counts come from ``benchmarks/lesson_lines.py`` (every distinct line of scratchae that one step runs, after
a warm-up step, put in kinds); they depend on the code only, never on the machine.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))

import lesson_lines  # noqa: E402

from scratchae import conv  # noqa: E402


@pytest.mark.parametrize("name", sorted(lesson_lines.STEPS))
def test_one_train_step_runs_few_lines_and_most_of_them_are_the_lesson(name):
    most, share = lesson_lines.TARGETS[name]
    result = lesson_lines.summary(name)
    assert result["total"] <= most, result
    assert result["lesson_share"] >= share, result
    assert result["machinery"] <= 8, result  # devices and helpers stay out of the step


def test_the_classifier_of_lines_tells_the_kinds_apart():
    """The counts are only as honest as the kinds: a namespace look-up, a check and a flag are not the lesson."""
    kinds = {kind for _, _, kind, _ in lesson_lines.lines_of("simple")}
    assert {"lesson", "namespace", "check", "flag"} <= kinds
    lines = {text: kind for _, _, kind, text in lesson_lines.lines_of("simple")}
    assert lines["if not input_grad:"] == "flag"
    assert lines["xp = get_namespace(dy)"] == "namespace"
    assert lines["if not math.isfinite(value):"] == "check"
    assert lines["self.W.grad = self.x.T @ dy  # (D_in, D_out)  = sum over the batch of x_n^T dy_n"] == "lesson"


def code_lines(function) -> int:
    """Lines of code of a function: its body without the docstring, blank lines and comment lines."""
    source = textwrap.dedent(inspect.getsource(function))
    body = ast.parse(source).body[0].body
    start = body[1].lineno if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        else body[0].lineno
    lines = source.splitlines()[start - 1:]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("layer", [conv.Conv2D, conv.ConvTranspose2D, conv.MaxPool2D, conv.UpSampling2D])
def test_each_lesson_conv_pass_fits_on_one_screen(layer):
    assert code_lines(layer.forward) <= 15
    assert code_lines(layer.backward) <= 15


def test_the_lesson_conv_says_where_the_kernel_is_flipped():
    source = inspect.getsource(conv.Conv2D.backward)
    flip_line = next(line for line in source.splitlines() if "FLIPPED" in line)
    assert "col2im" in flip_line or "col2im" in source.splitlines()[source.splitlines().index(flip_line) + 1]

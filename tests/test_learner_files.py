"""``scratchae gradcheck --layer FILE.py:Class``: a learner's own layer from the command line.

Status 0 when every gradient is right, 1 with the report when one is wrong, 2 with one line naming the file and the
line when the file cannot be used (a syntax error, a failing import, a missing class, a failing constructor).
"""

from __future__ import annotations

import pytest

from scratchae.cli import main
from scratchae.learner_files import OwnCodeError, parse_spec

LAYERS = '''
import numpy
from scratchae.layers import Layer


class LeakyReLU(Layer):
    def __init__(self, slope=0.01):
        if slope < 0:
            raise ValueError("the slope must be >= 0")
        self.slope = slope

    def forward(self, x):
        self.x = x
        return numpy.where(x > 0, x, self.slope * x)

    def backward(self, dy, input_grad=True):
        return dy * numpy.where(self.x > 0, 1.0, self.slope).astype(dy.dtype)


class WrongTanh(Layer):
    def forward(self, x):
        self.y = numpy.tanh(x)
        return self.y

    def backward(self, dy, input_grad=True):
        return dy * (1.0 - self.y)
'''


def run(argv):
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.fixture
def layers_file(tmp_path):
    path = tmp_path / "my_layers.py"
    path.write_text(LAYERS, encoding="utf-8")
    return path


def test_a_right_layer_with_arguments_passes(layers_file, capsys):
    assert run(["gradcheck", "--layer", f"{layers_file}:LeakyReLU(0.1)", "--input-shape", "4,10"]) == 0
    out = capsys.readouterr().out
    assert "LeakyReLU" in out and "passed: every gradient matches" in out


def test_a_wrong_gradient_exits_1_with_the_report(layers_file, capsys):
    assert run(["gradcheck", "--layer", f"{layers_file}:WrongTanh", "--input-shape", "3,5"]) == 1
    out = capsys.readouterr().out
    assert "WRONG" in out and "FAILED: 1 wrong gradient" in out


@pytest.mark.parametrize("source, spec, message", [
    ("import numpy\n\nclass A:\n    def f(self:\n        pass\n", "A", r"my_layers.py, line 4: syntax error"),
    ("import numpy\nimport not_a_module_anywhere\n", "A",
     r"my_layers.py, line 2: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    (LAYERS, "Tanh", r"my_layers.py has no class Tanh \(it defines LeakyReLU, WrongTanh\)"),
    (LAYERS, "LeakyReLU(-1)", r"my_layers.py, line 9: LeakyReLU\(-1\) failed: ValueError: the slope must be >= 0"),
    (LAYERS, "LeakyReLU(__import__('os'))", r"must be plain values"),
], ids=["syntax error", "import error", "missing class", "failing constructor", "code in the arguments"])
def test_a_file_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, capsys, source, spec, message):
    path = tmp_path / "my_layers.py"
    path.write_text(source, encoding="utf-8")
    assert run(["gradcheck", "--layer", f"{path}:{spec}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("scratchae: error: ")
    assert __import__("re").search(message, err), err


def test_spec_parsing():
    assert parse_spec("my_layers.py:LeakyReLU(0.1, name='a')")[1:] == ("LeakyReLU", (0.1,), {"name": "a"})
    assert parse_spec("dir/x.py:Tanh")[1:] == ("Tanh", (), {})
    for bad in ("my_layers:Tanh", "my_layers.py", "my_layers.py:Tanh(", "my_layers.py:a.b()"):
        with pytest.raises(OwnCodeError):
            parse_spec(bad)


def test_a_missing_file_and_a_bad_shape_are_one_line(tmp_path, capsys):
    assert run(["gradcheck", "--layer", f"{tmp_path / 'nowhere.py'}:A"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert run(["gradcheck", "--layer", "x.py:A", "--input-shape", "4,x"]) == 2
    assert "expected sizes separated by commas" in capsys.readouterr().err


BROKEN = '''
import sys

import numpy
from scratchae.layers import Layer


class ExitsInForward(Layer):
    def forward(self, x):
        sys.exit(0)

    def backward(self, dy, input_grad=True):
        return dy


class ExitsInBackward(Layer):
    def forward(self, x):
        return x

    def backward(self, dy, input_grad=True):
        raise SystemExit(0)


class NotALayer:
    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class NumbersForParameters(Layer):
    def parameters(self):
        return [1, 2]

    def forward(self, x):
        return x

    def backward(self, dy, input_grad=True):
        return dy


class NegativeSize(Layer):
    in_features = -3

    def forward(self, x):
        return x

    def backward(self, dy, input_grad=True):
        return dy
'''


@pytest.mark.parametrize("spec, mistake", [
    ("ExitsInForward", "ExitsInForward.forward called sys.exit(0); a layer's method must return (my_layers.py, "
                       "line 10)"),
    ("ExitsInBackward", "ExitsInBackward.backward called sys.exit(0); a layer's method must return (my_layers.py, "
                        "line 21)"),
    ("NotALayer", "NotALayer has no parameters(): a layer is a class derived from scratchae.Layer"),
    ("NumbersForParameters", "NumbersForParameters.parameters() gave int at position 0; it must give the layer's "
                             "Parameter objects"),
    ("NegativeSize", "NegativeSize.in_features is -3; it must be at least 1"),
])
def test_a_layer_that_exits_or_breaks_the_protocol_fails_with_its_mistake_named(tmp_path, capsys, spec, mistake):
    path = tmp_path / "my_layers.py"
    path.write_text(BROKEN, encoding="utf-8")
    assert run(["gradcheck", "--layer", f"{path}:{spec}"]) == 1  # never 0: a teacher's CI reads the status
    out, err = capsys.readouterr()
    assert f"  mistake: {mistake}" in out and "FAILED" in out
    assert "Traceback" not in out + err


def test_a_file_that_exits_while_it_loads_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "my_layers.py"
    path.write_text("import sys\nsys.exit(0)\n", encoding="utf-8")
    assert run(["gradcheck", "--layer", f"{path}:A"]) == 2
    assert capsys.readouterr().err == (f"scratchae: error: {path}, line 2: called sys.exit(0); a file of layers must "
                                       f"define them, not end the program\n")


def test_sizes_below_one_are_named(capsys):
    for sizes in ("0,10", "-1,10"):
        assert run(["gradcheck", "--layer", "x.py:A", f"--input-shape={sizes}"]) == 2
        assert f"every size must be at least 1, got '{sizes}'" in capsys.readouterr().err


def test_a_right_layer_passes_at_the_largest_input_the_check_allows(tmp_path, capsys):
    from scratchae.cli import GRADCHECK_BYTES, GRADCHECK_COPIES

    path = tmp_path / "relu.py"
    path.write_text("from scratchae.layers import Layer\n\n\nclass ReLU(Layer):\n    def forward(self, x):\n"
                    "        self.x = x\n        return x * (x > 0)\n\n    def backward(self, dy):\n"
                    "        return dy * (self.x > 0)\n", encoding="utf-8")
    largest = GRADCHECK_BYTES // (8 * GRADCHECK_COPIES)  # each number is moved by the step, however many there are
    assert run(["gradcheck", "--layer", f"{path}:ReLU", "--input-shape", f"{largest},1"]) == 0
    assert "passed: every gradient matches" in capsys.readouterr().out

"""The first mistakes a learner makes in a backward pass, named in the learner's words, with their file and line.

Each test writes one mistake into a learner's file, then reads the message three ways: :func:`check_layer` (or
:func:`check_model`) from Python, ``scratchae gradcheck --layer FILE.py:Class`` and, where an exercise asks for that
backward, ``scratchae exercises check``. A mistake is a line of a right layer replaced by a wrong one, so that the
right layer passing shows that the message comes from that line alone.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from scratchae import exercises
from scratchae.cli import main
from scratchae.gradcheck import check_layer, check_loss, check_model
from scratchae.layers import Dense, Sequential, Sigmoid
from scratchae.learner_files import load_file
from scratchae.losses import MSELoss
from scratchae.models import Autoencoder

#: A learner's Dense with the docstrings of the exercise's stub (the shapes named N, D_in, D_out).
DENSE = '''
import numpy

from scratchae.layers import Layer, Parameter


class Dense(Layer):
    def __init__(self, in_features, out_features, seed=0):
        rng = numpy.random.default_rng(seed)
        self.W = Parameter(rng.standard_normal((in_features, out_features)).astype(numpy.float32), "W")
        self.b = Parameter((0.1 * rng.standard_normal(out_features)).astype(numpy.float32), "b")
        self.in_features = in_features

    def forward(self, x):
        """x: (N, D_in) -> y: (N, D_out)."""
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dy, input_grad=True):
        """dy: (N, D_out) = dL/dy -> dx: (N, D_in) = dL/dx."""
        self.W.grad = self.x.T @ dy
        self.b.grad = dy.sum(axis=0)
        return dy @ self.W.data.T

    def parameters(self):
        return [self.W, self.b]
'''

#: A learner's Conv2D whose backward computes dL/dx as a full convolution of dy with the flipped kernel.
CONV2D = '''
import numpy

from scratchae.layers import Layer, Parameter


class Conv2D(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, seed=0):
        rng = numpy.random.default_rng(seed)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.W = Parameter(rng.standard_normal(shape).astype(numpy.float32), "W")  # (C_out, C_in, K, K)
        self.b = Parameter(numpy.zeros(out_channels, dtype=numpy.float32), "b")  # (C_out,)
        self.stride, self.padding = stride, padding
        self.in_channels = in_channels

    def forward(self, x):
        """x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out)."""
        pad, s = self.padding, self.stride
        k = self.W.data.shape[2]
        self.x_pad = numpy.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        n, _, height, width = self.x_pad.shape
        out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
        y = numpy.zeros((n, self.W.data.shape[0], out_h, out_w), dtype=x.dtype)
        for p in range(k):
            for q in range(k):
                window = self.x_pad[:, :, p:p + s * out_h:s, q:q + s * out_w:s]
                y += numpy.einsum("nchw,oc->nohw", window, self.W.data[:, :, p, q])
        return y + self.b.data[:, None, None]

    def backward(self, dy, input_grad=True):
        BACKWARD

    def parameters(self):
        return [self.W, self.b]
'''

#: Conv2D's backward: dW and db as the windows give them, dL/dx as a full convolution of dy (spread by the stride,
#: padded by K - 1) with the kernel turned by 180 degrees.
CONV2D_BACKWARD = '''
pad, s = self.padding, self.stride
k = self.W.data.shape[2]
n, c_out, out_h, out_w = dy.shape
self.b.grad = dy.sum(axis=(0, 2, 3))
self.W.grad = numpy.zeros_like(self.W.data)
for p in range(k):
    for q in range(k):
        window = self.x_pad[:, :, p:p + s * out_h:s, q:q + s * out_w:s]
        self.W.grad[:, :, p, q] = numpy.einsum("nohw,nchw->oc", dy, window)
spread = numpy.zeros((n, c_out, s * (out_h - 1) + 1, s * (out_w - 1) + 1), dtype=dy.dtype)
spread[:, :, ::s, ::s] = dy
full = numpy.pad(spread, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
kernel = self.W.data[:, :, ::-1, ::-1]
rows, columns = s * (out_h - 1) + k, s * (out_w - 1) + k
dx_pad = numpy.zeros_like(self.x_pad)
for p in range(k):
    for q in range(k):
        dx_pad[:, :, :rows, :columns] += numpy.einsum("nohw,oc->nchw", full[:, :, p:p + rows, q:q + columns],
                                                      kernel[:, :, p, q])
return dx_pad[:, :, pad:dx_pad.shape[2] - pad, pad:dx_pad.shape[3] - pad]
'''.strip()

#: The flip forgotten; the comment (words about the flip are not a flip) is ignored.
FLIPPED, UNFLIPPED = "kernel = self.W.data[:, :, ::-1, ::-1]", "kernel = self.W.data  # to flip: [:, :, ::-1, ::-1]"


def write(folder, name: str, source: str, right: str, wrong: str):
    """``source`` with its line ``right`` replaced by ``wrong``, written to ``folder/name``; returns the path and
    the number of the (first) line changed."""
    assert source.count(right) == 1, right
    path = folder / name
    path.write_text(source.replace(right, wrong), encoding="utf-8")
    return path, line_of(path, wrong.splitlines()[0])


def line_of(path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    (number,) = [n for n, line in enumerate(lines, start=1) if text.strip() in line]
    return number


def conv_source() -> str:
    return CONV2D.replace("BACKWARD", textwrap.indent(CONV2D_BACKWARD, " " * 8).lstrip())


def command(argv, capsys) -> tuple[int, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


STUB = re.compile(r"^( *)raise NotImplementedError\(\"exercise (\w+):.*$", re.MULTILINE)


def exercise_answer(folder, name: str, code: str):
    """Start the exercises in ``folder`` and replace exercise ``name``'s stub with ``code``; returns its path."""
    exercises.start(folder)
    (exercise,) = exercises.find([name])
    path = folder / exercise.file
    text = path.read_text(encoding="utf-8")
    match = STUB.search(text)
    assert match and match.group(2) == name
    path.write_text(text[:match.start()] + textwrap.indent(code, match.group(1)) + text[match.end():],
                    encoding="utf-8")
    return path


def exercise_verdict(folder, name: str, capsys) -> str:
    """The line ``scratchae exercises check FOLDER NAME`` prints for the exercise (status 1: it is wrong)."""
    status, out = command(["exercises", "check", str(folder), name], capsys)
    assert status == 1, out
    (line,) = [line for line in out.splitlines() if re.match(rf" *\d+ +{name} ", line)]
    return line


DENSE_RIGHT = "self.W.grad = self.x.T @ dy\nself.b.grad = dy.sum(axis=0)\nreturn dy @ self.W.data.T"


def test_the_right_layers_pass(tmp_path, capsys):
    """The files the mistakes are written into are right as they stand: every message below comes from its line."""
    dense = tmp_path / "dense.py"
    dense.write_text(DENSE, encoding="utf-8")
    assert check_layer(load_file(dense).Dense(5, 3)).passed
    conv = tmp_path / "conv.py"
    conv.write_text(conv_source(), encoding="utf-8")
    assert check_layer(load_file(conv).Conv2D(2, 3, 3, stride=2, padding=1), input_shape=(2, 2, 7, 6)).passed
    assert command(["gradcheck", "--layer", f"{conv}:Conv2D(2, 3, 3)", "--input-shape", "2,2,6,6"], capsys)[0] == 0


def test_dy_at_w_names_the_shape_dx_must_have_the_product_and_the_one_that_fits(tmp_path, capsys):
    path, line = write(tmp_path, "my_layers.py", DENSE, "return dy @ self.W.data.T", "return dy @ self.W.data")
    said = ("Dense.backward raised ValueError: dL/dx must be (N, D_in) = (4, 5); `dy @ self.W.data` is (4, 3) @ "
            "(5, 3), and the 3 columns of dy do not meet the 5 rows of self.W.data; `dy @ self.W.data.T` would be "
            f"(4, 3) @ (3, 5) = (4, 5) (my_layers.py, line {line})")
    report = check_layer(load_file(path).Dense(5, 3))
    assert report.mistakes == [said]
    status, out = command(["gradcheck", "--layer", f"{path}:Dense(5, 3)"], capsys)
    assert status == 1 and f"mistake: {said}" in out and "gufunc" not in out
    stub = exercise_answer(tmp_path / "exercises", "dense", DENSE_RIGHT.replace("W.data.T", "W.data"))
    verdict = exercise_verdict(tmp_path / "exercises", "dense", capsys)
    assert verdict.endswith(said.replace("my_layers.py, line", "03_dense.py, line").replace(
        f"line {line}", f"line {line_of(stub, 'return dy @ self.W.data')}"))


def test_a_weight_gradient_of_crossed_factors_names_its_shape_and_the_product_that_fits(tmp_path, capsys):
    path, line = write(tmp_path, "my_layers.py", DENSE, "self.W.grad = self.x.T @ dy", "self.W.grad = dy @ self.x")
    said = ("Dense.backward raised ValueError: dL/dW must be (D_in, D_out) = (5, 3); `dy @ self.x` is (4, 3) @ "
            "(4, 5), and the 3 columns of dy do not meet the 4 rows of self.x; `self.x.T @ dy` would be (5, 4) @ "
            f"(4, 3) = (5, 3) (my_layers.py, line {line})")
    assert check_layer(load_file(path).Dense(5, 3)).mistakes == [said]
    assert f"mistake: {said}" in command(["gradcheck", "--layer", f"{path}:Dense(5, 3)"], capsys)[1]


def test_an_elementwise_product_of_shapes_that_do_not_broadcast_names_them(tmp_path, capsys):
    path, line = write(tmp_path, "my_layers.py", DENSE, "self.W.grad = self.x.T @ dy", "self.W.grad = self.x * dy")
    said = ("Dense.backward raised ValueError: dL/dW must be (D_in, D_out) = (5, 3); `self.x * dy` is (4, 5) * "
            "(4, 3): elementwise, shapes must match axis by axis from the right (or be 1 there), and 5 does not "
            f"match 3 (my_layers.py, line {line})")
    assert check_layer(load_file(path).Dense(5, 3)).mistakes == [said]
    assert f"mistake: {said}" in command(["gradcheck", "--layer", f"{path}:Dense(5, 3)"], capsys)[1]


def test_a_product_written_with_numpy_dot_reads_the_same(tmp_path):
    path, line = write(tmp_path, "my_layers.py", DENSE, "return dy @ self.W.data.T",
                       "return numpy.dot(dy, self.W.data)")
    assert check_layer(load_file(path).Dense(5, 3)).mistakes == [
        "Dense.backward raised ValueError: dL/dx must be (N, D_in) = (4, 5); `numpy.dot(dy, self.W.data)` is (4, 3) "
        "@ (5, 3), and the 3 columns of dy do not meet the 5 rows of self.W.data; `numpy.dot(dy, self.W.data.T)` "
        f"would be (4, 3) @ (3, 5) = (4, 5) (my_layers.py, line {line})"]


def test_any_other_shape_error_on_the_learners_line_names_the_arrays_there(tmp_path):
    """An error NumPy raises where no product or elementwise operation can be read keeps NumPy's words, with every
    array of the learner's expression sized."""
    path, line = write(tmp_path, "my_layers.py", DENSE, "return dy @ self.W.data.T",
                       "return numpy.concatenate([dy, self.x]).reshape(4, 5)")
    (mistake,) = check_layer(load_file(path).Dense(5, 3)).mistakes
    assert mistake.startswith("Dense.backward raised ValueError: dL/dx must be (N, D_in) = (4, 5); all the input "
                              "array dimensions except for the concatenation axis must match exactly")
    assert mistake.endswith("; in `numpy.concatenate([dy, self.x])`, dy is (4, 3), self.x is (4, 5) "
                            f"(my_layers.py, line {line})")


def test_plus_equals_on_a_gradient_still_none_says_backward_sets_it(tmp_path, capsys):
    path, line = write(tmp_path, "my_layers.py", DENSE, "self.W.grad = self.x.T @ dy", "self.W.grad += self.x.T @ dy")
    said = ("Dense.backward raised TypeError: `self.W.grad += self.x.T @ dy` reads self.W.grad, which is None until a "
            "backward sets it: backward sets grad (`self.W.grad = ...`), it does not add to it (`+=`), so that a "
            f"second call gives the same gradient (my_layers.py, line {line})")
    assert check_layer(load_file(path).Dense(5, 3)).mistakes == [said]
    status, out = command(["gradcheck", "--layer", f"{path}:Dense(5, 3)"], capsys)
    assert status == 1 and f"mistake: {said}" in out and "NoneType" not in out
    stub = exercise_answer(tmp_path / "exercises", "dense", DENSE_RIGHT.replace("W.grad =", "W.grad +="))
    verdict = exercise_verdict(tmp_path / "exercises", "dense", capsys)
    assert "reads self.W.grad, which is None until a backward sets it: backward sets grad" in verdict
    assert verdict.endswith(f"(03_dense.py, line {line_of(stub, 'self.W.grad +=')})")


def test_another_none_is_named_by_its_expression(tmp_path, capsys):
    path, _ = write(tmp_path, "my_layers.py", DENSE, "self.x = x", "self.x = None")
    said = ("Dense.backward raised AttributeError: `self.x` is None in `self.W.grad = self.x.T @ dy`: it must hold "
            "an array by then (is it set, and does every function that gives it `return` it?) (my_layers.py, line "
            f"{line_of(path, 'self.W.grad = self.x.T @ dy')})")
    assert check_layer(load_file(path).Dense(5, 3)).mistakes == [said]
    assert f"mistake: {said}" in command(["gradcheck", "--layer", f"{path}:Dense(5, 3)"], capsys)[1]


@pytest.mark.parametrize("stride, padding, input_shape", [(1, 0, (2, 2, 6, 6)), (2, 1, (2, 2, 7, 6))])
def test_a_convolution_that_forgets_to_flip_its_kernel_is_told_so(tmp_path, capsys, stride, padding, input_shape):
    path, _ = write(tmp_path, "my_conv.py", conv_source(), FLIPPED, UNFLIPPED)
    layer = load_file(path).Conv2D(2, 3, 3, stride=stride, padding=padding)
    report = check_layer(layer, input_shape=input_shape)
    (wrong,) = [check for check in report.checks if not check.passed(report.tolerance)]
    told = ("the kernel is not flipped: your dL/dx is the right one for the kernel W[:, :, ::-1, ::-1] (turned by "
            "180 degrees); dL/dx is a full convolution of dy with the flipped kernel")
    assert wrong.name == "x" and wrong.hint == told
    status, out = command(["gradcheck", "--layer", f"{path}:Conv2D(2, 3, 3, stride={stride}, padding={padding})",
                           "--input-shape", ",".join(map(str, input_shape))], capsys)
    assert status == 1 and told in out


def test_the_conv2d_exercise_tells_an_unflipped_kernel(tmp_path, capsys):
    exercise_answer(tmp_path, "conv2d", CONV2D_BACKWARD.replace(FLIPPED, UNFLIPPED))
    verdict = exercise_verdict(tmp_path, "conv2d", capsys)
    assert "wrong: gradient of x wrong at" in verdict and verdict.endswith("; the kernel is not flipped: your dL/dx "
                                                                           "is the right one for the kernel "
                                                                           "W[:, :, ::-1, ::-1] (turned by 180 "
                                                                           "degrees); dL/dx is a full convolution "
                                                                           "of dy with the flipped kernel")
    right = tmp_path / "right"
    exercise_answer(right, "conv2d", CONV2D_BACKWARD)
    assert exercises.check_one(right, "conv2d").right


def test_a_transposed_weight_gradient_of_the_right_shape_is_named(tmp_path, capsys):
    """A square W hides ``dy.T @ x`` from the shape check: its numbers say it is transposed."""
    path, _ = write(tmp_path, "my_layers.py", DENSE, "self.W.grad = self.x.T @ dy", "self.W.grad = dy.T @ self.x")
    report = check_layer(load_file(path).Dense(5, 5))
    (wrong,) = [check for check in report.checks if not check.passed(report.tolerance)]
    told = ("analytic = numerical transposed: the right numbers in the wrong places (a product's factors swapped, or "
            "a .T missing)")
    assert wrong.name == "W" and wrong.hint == told
    status, out = command(["gradcheck", "--layer", f"{path}:Dense(5, 5)"], capsys)
    assert status == 1 and told in out


def test_a_transposed_weight_gradient_of_the_transposed_shape_is_named(tmp_path, capsys):
    path, _ = write(tmp_path, "my_layers.py", DENSE, "self.W.grad = self.x.T @ dy", "self.W.grad = dy.T @ self.x")
    said = ("Dense: parameter W: grad has shape (3, 5), but the parameter has shape (5, 3); a gradient has its "
            "parameter's shape; transposed, it is the right gradient: swap the product's factors, as (A @ B).T = "
            "B.T @ A.T")
    assert check_layer(load_file(path).Dense(5, 3)).mistakes == [said]
    assert f"mistake: {said}" in command(["gradcheck", "--layer", f"{path}:Dense(5, 3)"], capsys)[1]
    exercise_answer(tmp_path / "exercises", "dense", DENSE_RIGHT.replace("self.x.T @ dy", "dy.T @ self.x"))
    assert exercise_verdict(tmp_path / "exercises", "dense", capsys).endswith(f"wrong: {said}")


def test_a_transposed_input_gradient_is_named(tmp_path):
    path, _ = write(tmp_path, "my_layers.py", DENSE, "return dy @ self.W.data.T", "return self.W.data @ dy.T")
    (mistake,) = check_layer(load_file(path).Dense(5, 3)).mistakes
    assert mistake == ("Dense.backward returned dL/dx of shape (5, 4); the input has shape (4, 5), and dL/dx must "
                       "have the input's shape; transposed, it is the right gradient: swap the product's factors, as "
                       "(A @ B).T = B.T @ A.T")


@pytest.mark.parametrize("wrong, told", [
    ("return -(dy @ self.W.data.T)", "analytic = -1 x numerical everywhere: the sign is flipped"),
    ("return 2.0 * dy @ self.W.data.T", "analytic = 2 x numerical everywhere: a constant factor is wrong"),
])
def test_a_sign_or_a_constant_factor_is_named(tmp_path, capsys, wrong, told):
    path, _ = write(tmp_path, "my_layers.py", DENSE, "return dy @ self.W.data.T", wrong)
    report = check_layer(load_file(path).Dense(5, 3))
    (check,) = [check for check in report.checks if not check.passed(report.tolerance)]
    assert check.name == "x" and check.hint == told
    status, out = command(["gradcheck", "--layer", f"{path}:Dense(5, 3)"], capsys)
    assert status == 1 and told in out
    exercise_answer(tmp_path / "exercises", "dense", DENSE_RIGHT.replace("return dy @ self.W.data.T", wrong))
    assert exercise_verdict(tmp_path / "exercises", "dense", capsys).endswith(f"; {told}")


def test_check_model_names_the_shapes_inside_a_model(tmp_path):
    path, line = write(tmp_path, "my_layers.py", DENSE, "self.W.grad = self.x.T @ dy", "self.W.grad = dy @ self.x")
    mine = load_file(path).Dense(4, 3)
    model = Autoencoder(Sequential([Dense(6, 4, rng=0), Sigmoid(), mine]), Sequential([Dense(3, 6, rng=1), Sigmoid()]))
    (mistake,) = check_model(model, MSELoss(), input_shape=(5, 6)).mistakes
    assert mistake == ("Autoencoder.backward raised ValueError: dL/dW must be (4, 3); `dy @ self.x` is (5, 3) @ "
                       "(5, 4), and the 3 columns of dy do not meet the 5 rows of self.x; `self.x.T @ dy` would be "
                       f"(4, 5) @ (5, 3) = (4, 3) (my_layers.py, line {line})")


def test_a_gradient_handed_to_the_wrong_layer_says_which_layer_got_which_shape(tmp_path, capsys):
    """Sequential's backward asking its layers in the forward order: the first library layer asked gets dy."""
    stub = exercise_answer(tmp_path, "sequential", "for layer in self.layers:\n    dy = layer.backward(dy)\nreturn dy")
    verdict = exercise_verdict(tmp_path, "sequential", capsys)
    assert verdict.endswith("wrong: Sequential.backward raised ValueError: `layer.backward(dy)` handed "
                            "Dense.backward a gradient of shape (4, 3) that does not fit it: a layer's backward "
                            "takes the gradient of its own output (are the layers asked in the right order, each "
                            "given what the one after it returned?) "
                            f"(04_sequential.py, line {line_of(stub, 'dy = layer.backward(dy)')})")


#: The exercise's loop form of dL/dx (the forward's loop over the kernel's positions), with a flip it must not have.
LOOP_FLIPPED = CONV2D_BACKWARD.split("spread =")[0] + """dx_pad = numpy.zeros_like(self.x_pad)
for p in range(k):
    for q in range(k):
        rows, columns = slice(p, p + s * out_h, s), slice(q, q + s * out_w, s)
        dx_pad[:, :, rows, columns] += numpy.einsum("nohw,oc->nchw", dy, self.W.data[:, :, k - 1 - p, k - 1 - q])
return dx_pad[:, :, pad:dx_pad.shape[2] - pad, pad:dx_pad.shape[3] - pad]"""


def test_a_kernel_flipped_in_the_loop_form_is_flipped_once_too_often(tmp_path, capsys):
    exercise_answer(tmp_path, "conv2d", LOOP_FLIPPED)
    verdict = exercise_verdict(tmp_path, "conv2d", capsys)
    assert verdict.endswith("; the kernel is flipped once too often: your dL/dx is the right one for the kernel "
                            "W[:, :, ::-1, ::-1] (turned by 180 degrees); in a loop over the kernel's positions "
                            "(p, q), as the forward pass makes, dL/dx takes W[:, :, p, q] as it is")
    right = tmp_path / "right"
    exercise_answer(right, "conv2d", LOOP_FLIPPED.replace("k - 1 - p, k - 1 - q", "p, q"))
    assert exercises.check_one(right, "conv2d").right


def test_an_in_place_sum_whose_result_does_not_fit_says_so(tmp_path):
    path, _ = write(tmp_path, "my_layers.py", DENSE, "self.b.grad = dy.sum(axis=0)",
                       "self.b.grad = numpy.zeros(self.b.data.shape, dtype=dy.dtype)\n        self.b.grad += dy")
    said = ("Dense.backward raised ValueError: dL/db must be (D_out,) = (3,); `self.b.grad += dy` is (3,) += (4, 3): "
            "the result would be (4, 3), which does not fit in self.b.grad (my_layers.py, line "
            f"{line_of(path, 'self.b.grad += dy')})")
    assert check_layer(load_file(path).Dense(5, 3)).mistakes == [said]


def test_an_einsum_whose_letters_do_not_fit_names_the_letter_and_its_sizes(tmp_path, capsys):
    """The kernel's slice transposed, in a product that spans two lines: the message gives it on one."""
    path, line = write(tmp_path, "my_conv.py", conv_source(), "kernel[:, :, p, q])", "kernel[:, :, p, q].T)")
    wrong = 'numpy.einsum("nohw,oc->nchw", full[:, :, p:p + rows, q:q + columns], kernel[:, :, p, q].T)'
    said = (f"Conv2D.backward raised ValueError: in `{wrong}`, the letter o is 3 in full[:, :, p:p + rows, q:q + "
            "columns] but 2 in kernel[:, :, p, q].T (full[:, :, p:p + rows, q:q + columns] is (2, 3, 6, 6), "
            f"kernel[:, :, p, q].T is (2, 3)) (my_conv.py, line {line - 1})")
    assert check_layer(load_file(path).Conv2D(2, 3, 3), input_shape=(2, 2, 6, 6)).mistakes == [said]
    status, out = command(["gradcheck", "--layer", f"{path}:Conv2D(2, 3, 3)", "--input-shape", "2,2,6,6"], capsys)
    assert status == 1 and f"mistake: {said}" in out


def test_a_kernel_gradient_with_its_channels_swapped_is_named(tmp_path, capsys):
    """With as many input as output channels, dW[o, c] written as dW[c, o] keeps its shape: its numbers tell."""
    path, _ = write(tmp_path, "my_conv.py", conv_source(), '"nohw,nchw->oc"', '"nohw,nchw->co"')
    report = check_layer(load_file(path).Conv2D(3, 3, 3), input_shape=(2, 3, 6, 6))
    (wrong,) = [check for check in report.checks if not check.passed(report.tolerance)]
    told = ("analytic = numerical with its axes in the order (1, 0, 2, 3): the right numbers in the wrong places (an "
            "einsum's or a transpose's axes in another order)")
    assert wrong.name == "W" and wrong.hint == told
    status, out = command(["gradcheck", "--layer", f"{path}:Conv2D(3, 3, 3)", "--input-shape", "2,3,6,6"], capsys)
    assert status == 1 and told in out


#: A learner's softmax cross-entropy, as the exercise gives it, whose backward builds its one-hot labels.
SOFTMAX_CROSS_ENTROPY = '''
import numpy

from scratchae.losses import Loss


class SoftmaxCrossEntropyLoss(Loss):
    targets = "labels"

    def forward(self, logits, labels):
        """logits: (N, C) floats, labels: (N,) integers in [0, C) -> a 0-d array."""
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
        self.cache = (log_probs, labels)
        return -log_probs[numpy.arange(len(labels)), labels].mean()

    def backward(self):
        """-> dL/dlogits: (N, C)."""
        log_probs, labels = self.cache
        one_hot = numpy.eye(log_probs.shape[1])[labels]
        grad = numpy.exp(log_probs) - one_hot
        return grad / len(labels)
'''


def test_check_loss_names_the_shapes_of_a_one_hot_of_the_wrong_size(tmp_path, capsys):
    """``numpy.eye(N)`` where ``numpy.eye(C)`` belongs: the loss's gradient and its one-hot labels do not match."""
    path, line = write(tmp_path, "my_losses.py", SOFTMAX_CROSS_ENTROPY, "numpy.eye(log_probs.shape[1])",
                       "numpy.eye(len(labels))")
    grad_line = line_of(path, "grad = numpy.exp(log_probs) - one_hot")
    said = ("SoftmaxCrossEntropyLoss.backward raised ValueError: dL/dpred must be (N, C) = (5, 4); "
            "`numpy.exp(log_probs) - one_hot` is (5, 4) - (5, 5): elementwise, shapes must match axis by axis from "
            f"the right (or be 1 there), and 4 does not match 5 (my_losses.py, line {grad_line})")
    assert check_loss(load_file(path).SoftmaxCrossEntropyLoss(), input_shape=(5, 4)).mistakes == [said]
    right = tmp_path / "right.py"
    right.write_text(SOFTMAX_CROSS_ENTROPY, encoding="utf-8")
    assert check_loss(load_file(right).SoftmaxCrossEntropyLoss(), input_shape=(5, 4)).passed
    code = "log_probs, labels = self.cache\none_hot = numpy.eye(len(labels))[labels]\n" \
           "grad = numpy.exp(log_probs) - one_hot\nreturn grad / len(labels)"
    stub = exercise_answer(tmp_path / "exercises", "softmax_cross_entropy", code)
    verdict = exercise_verdict(tmp_path / "exercises", "softmax_cross_entropy", capsys)
    assert verdict.endswith(said.replace("my_losses.py", "07_softmax_cross_entropy.py").replace(
        f"line {grad_line}", f"line {line_of(stub, 'grad = numpy.exp(log_probs) - one_hot')}"))


def test_a_learners_folder_whose_name_begins_like_the_librarys_is_still_the_learners(tmp_path, monkeypatch):
    from scratchae import mistakes

    library, learner = tmp_path / "scratchae", tmp_path / "scratchae_work"  # side by side, one name a prefix
    library.mkdir()
    learner.mkdir()
    monkeypatch.setattr(mistakes, "_library_folders", lambda: (str(library),))
    path, line = write(learner, "my_layers.py", DENSE, "self.W.grad = self.x.T @ dy", "self.W.grad = dy @ self.x")
    [said] = check_layer(load_file(path).Dense(5, 3)).mistakes
    assert said.endswith(f"(my_layers.py, line {line})")

"""The exercises: stubs report "not started", a typical wrong answer is named, the library's own code passes.

Each answer below replaces the stub's ``raise NotImplementedError(...)`` line in a fresh copy of the exercise file.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from scratchae import exercises
from scratchae.cli import main

#: name -> (the library's implementation, a typical wrong answer, words the verdict on the wrong answer must hold)
ANSWERS = {
    "relu": ("return dy * (self.x > 0).astype(dy.dtype)",
             "return (self.x > 0).astype(dy.dtype)",
             "gradient of x wrong at"),
    "sigmoid": ("return dy * self.y * (1.0 - self.y)",
                "return dy * self.y",
                "gradient of x wrong at"),
    "dense": ("self.W.grad = self.x.T @ dy\nself.b.grad = dy.sum(axis=0)\nreturn dy @ self.W.data.T",
              "self.W.grad = dy @ self.x\nself.b.grad = dy.sum(axis=0)\nreturn dy @ self.W.data.T",
              "Dense.backward raised ValueError: dL/dW must be (D_in, D_out) = (5, 3); `dy @ self.x` is (4, 3) "
              "@ (4, 5)"),
    "sequential": ("for layer in reversed(self.layers):\n    dy = layer.backward(dy)\nreturn dy",
                   "for layer in reversed(self.layers[1:]):\n    dy = layer.backward(dy)\nreturn dy",
                   "Sequential.backward returned dL/dx of shape (4, 4); the input has shape (4, 5)"),
    "mse": ("return 2.0 * self.cache / self.cache.size",
            "return 2.0 * self.cache",
            "analytic = 12 x numerical everywhere"),
    "bce": ("p, target = self.cache\nreturn (p - target) / (p * (1.0 - p) * p.size)",
            "p, target = self.cache\nreturn (target - p) / (p * (1.0 - p) * p.size)",
            "analytic = -1 x numerical everywhere"),
    "softmax_cross_entropy": ("log_probs, labels = self.cache\ngrad = numpy.exp(log_probs)\n"
                              "grad[numpy.arange(len(labels)), labels] -= 1.0\nreturn grad / len(labels)",
                              "log_probs, labels = self.cache\ngrad = numpy.exp(log_probs)\n"
                              "grad[numpy.arange(len(labels)), labels] -= 1.0\nreturn grad",
                              "analytic = 5 x numerical everywhere"),
    "adam": ("m, v, g = self.m[index], self.v[index], parameter.grad\n"
             "m[...] = self.beta1 * m + (1.0 - self.beta1) * g\nv[...] = self.beta2 * v + (1.0 - self.beta2) * g * g\n"
             "m_hat = m / (1.0 - self.beta1 ** self.steps)\nv_hat = v / (1.0 - self.beta2 ** self.steps)\n"
             "parameter.data -= self.lr * m_hat / (numpy.sqrt(v_hat) + self.eps)",
             "m, v, g = self.m[index], self.v[index], parameter.grad\n"
             "m[...] = self.beta1 * m + (1.0 - self.beta1) * g\nv[...] = self.beta2 * v + (1.0 - self.beta2) * g * g\n"
             "parameter.data -= self.lr * m / (numpy.sqrt(v) + self.eps)",
             "after step 1, W differs from the library's"),
    "train_step": ("out = model.forward(x)\nvalue = float(loss.forward(out, x if y is None else y))\n"
                   "model.backward(loss.backward())\noptimizer.step()\nreturn value",
                   "out = model.forward(x)\nvalue = float(loss.forward(out, x if y is None else y))\n"
                   "model.backward(loss.backward())\nreturn value",
                   "on an autoencoder, step 1 left every weight where it was"),
    "vae_sample": ("return dz, dz * eps * numpy.exp(0.5 * logvar) * 0.5",
                   "return dz, dz * eps * numpy.exp(0.5 * logvar)",
                   "gradient of logvar wrong at"),
    "kl": ("mu, logvar = self.cache\nn = mu.shape[0]\nreturn mu / n, 0.5 * (numpy.exp(logvar) - 1.0) / n",
           "mu, logvar = self.cache\nreturn mu, 0.5 * (numpy.exp(logvar) - 1.0)",
           "analytic = 4 x numerical everywhere"),
    "conv2d": ("pad, s = self.padding, self.stride\nk = self.W.data.shape[2]\nout_h, out_w = dy.shape[2], dy.shape[3]\n"
               "self.b.grad = dy.sum(axis=(0, 2, 3))\nself.W.grad = numpy.zeros_like(self.W.data)\n"
               "dx_pad = numpy.zeros_like(self.x_pad)\nfor p in range(k):\n    for q in range(k):\n"
               "        rows, columns = slice(p, p + s * out_h, s), slice(q, q + s * out_w, s)\n"
               "        window = self.x_pad[:, :, rows, columns]\n"
               "        self.W.grad[:, :, p, q] = numpy.einsum('nohw,nchw->oc', dy, window)\n"
               "        dx_pad[:, :, rows, columns] += numpy.einsum('nohw,oc->nchw', dy, self.W.data[:, :, p, q])\n"
               "return dx_pad[:, :, pad:dx_pad.shape[2] - pad, pad:dx_pad.shape[3] - pad]",
               "pad, s = self.padding, self.stride\nk = self.W.data.shape[2]\nout_h, out_w = dy.shape[2], dy.shape[3]\n"
               "self.b.grad = dy.sum(axis=(0, 2, 3))\nself.W.grad = numpy.zeros_like(self.W.data)\n"
               "dx_pad = numpy.zeros_like(self.x_pad)\nfor p in range(k):\n    for q in range(k):\n"
               "        rows, columns = slice(p, p + s * out_h, s), slice(q, q + s * out_w, s)\n"
               "        window = self.x_pad[:, :, rows, columns]\n"
               "        self.W.grad[:, :, p, q] = numpy.einsum('nohw,nchw->oc', dy, window)\n"
               "        dx_pad[:, :, rows, columns] = numpy.einsum('nohw,oc->nchw', dy, self.W.data[:, :, p, q])\n"
               "return dx_pad[:, :, pad:dx_pad.shape[2] - pad, pad:dx_pad.shape[3] - pad]",
               "gradient of x wrong at"),
    "maxpool2d": ("k, s = self.pool_size, self.stride\nout_h, out_w = self.y.shape[2], self.y.shape[3]\n"
                  "dx = numpy.zeros_like(self.x)\ntaken = numpy.zeros(self.y.shape, dtype=bool)\n"
                  "for p in range(k):\n    for q in range(k):\n"
                  "        rows, columns = slice(p, p + s * out_h, s), slice(q, q + s * out_w, s)\n"
                  "        first = (self.x[:, :, rows, columns] == self.y) & ~taken\n        taken |= first\n"
                  "        dx[:, :, rows, columns] += dy * first\nreturn dx",
                  "k, s = self.pool_size, self.stride\nout_h, out_w = self.y.shape[2], self.y.shape[3]\n"
                  "dx = numpy.zeros_like(self.x)\ntaken = numpy.zeros(self.y.shape, dtype=bool)\n"
                  "for p in range(k):\n    for q in range(k):\n"
                  "        rows, columns = slice(p, p + s * out_h, s), slice(q, q + s * out_w, s)\n"
                  "        first = (self.x[:, :, rows, columns] == self.y) & ~taken\n        taken |= first\n"
                  "        dx[:, :, rows, columns] = numpy.where(first, dy, dx[:, :, rows, columns])\nreturn dx",
                  "gradient of x wrong at"),
    "upsampling2d": ("n, c, height, width = dy.shape\nf = self.factor\n"
                     "return dy.reshape(n, c, height // f, f, width // f, f).sum(axis=(3, 5))",
                     "f = self.factor\nreturn dy[:, :, ::f, ::f]",
                     "gradient of x wrong at"),
    "l1_penalty": ("return self.l1 * numpy.sign(self.h) / self.h.shape[0]",
                   "return self.l1 * numpy.ones_like(self.h) / self.h.shape[0]",
                   "the sign is dropped"),
}

STUB = re.compile(r"^( *)raise NotImplementedError\(\"exercise (\w+):.*$", re.MULTILINE)


def answer(folder, name: str, code: str) -> None:
    """Replace the stub of exercise ``name`` in ``folder`` with ``code``, indented as the stub was."""
    (exercise,) = exercises.find([name])
    path = folder / exercise.file
    text = path.read_text(encoding="utf-8")
    match = STUB.search(text)
    assert match and match.group(2) == name
    path.write_text(text[:match.start()] + textwrap.indent(code, match.group(1)) + text[match.end():],
                    encoding="utf-8")


def test_every_exercise_has_an_answer_here():
    assert list(ANSWERS) == exercises.names()


def test_untouched_stubs_are_not_started_and_start_never_overwrites(tmp_path):
    written, kept = exercises.start(tmp_path)
    assert [path.name for path in written] == [e.file for e in exercises.EXERCISES] + list(exercises.TEST_FILES)
    assert kept == []
    assert [result.status for result in exercises.check(tmp_path)] == ["not started"] * len(exercises.EXERCISES)
    mine = tmp_path / exercises.EXERCISES[0].file
    mine.write_text("# my own work\n", encoding="utf-8")
    (tmp_path / exercises.EXERCISES[1].file).unlink()
    written, kept = exercises.start(tmp_path)
    assert [path.name for path in written] == [exercises.EXERCISES[1].file]
    assert mine.read_text(encoding="utf-8") == "# my own work\n"


def test_every_stub_names_its_exercise_and_documents_shapes(tmp_path):
    exercises.start(tmp_path)
    for exercise in exercises.EXERCISES:
        text = (tmp_path / exercise.file).read_text(encoding="utf-8")
        assert f'raise NotImplementedError("exercise {exercise.name}:' in text
        assert re.search(r"\(N, [A-Z]", text) or "(any,)" in text or "(N, D)" in text, exercise.name


@pytest.mark.parametrize("name", list(ANSWERS))
def test_the_library_answer_passes_and_a_typical_mistake_is_named(tmp_path, name):
    right, wrong, words = ANSWERS[name]
    exercises.start(tmp_path)
    answer(tmp_path, name, right)
    result = exercises.check_one(tmp_path, name)
    assert result.status == "right", result.line()
    exercises.start(tmp_path / "second")
    answer(tmp_path / "second", name, wrong)
    result = exercises.check_one(tmp_path / "second", name)
    assert result.status == "wrong"
    assert words in result.detail, result.detail


def test_other_typical_mistakes_are_named(tmp_path):
    exercises.start(tmp_path)
    answer(tmp_path, "dense", "self.W.grad = dy.T @ self.x\nself.b.grad = dy.sum(axis=0)\nreturn dy @ self.W.data.T")
    detail = exercises.check_one(tmp_path, "dense").detail
    assert "parameter W: grad has shape (3, 5), but the parameter has shape (5, 3)" in detail
    answer(tmp_path, "adam", "parameter.data -= self.lr * parameter.grad")
    detail = exercises.check_one(tmp_path, "adam").detail
    assert "after step 1, W differs from the library's" in detail and "times the library's" not in detail
    answer(tmp_path, "relu", "dy[self.x <= 0] = 0.0\nreturn dy")
    assert "changed dy in place" in exercises.check_one(tmp_path, "relu").detail
    answer(tmp_path, "l1_penalty", "return self.l1 * numpy.sign(self.h.T @ self.h) / self.h.shape[0]")
    detail = exercises.check_one(tmp_path, "l1_penalty").detail
    assert "with respect to the code h, its activity" in detail and "not a weight's" in detail


def test_the_command_lists_starts_and_checks(tmp_path, capsys):
    assert main(["exercises", "list"]) == 0
    listed = capsys.readouterr().out
    assert "01_relu.py" in listed and "kl" in listed
    folder = tmp_path / "mine"
    assert main(["exercises", "start", str(folder)]) == 0
    assert f"{len(exercises.EXERCISES)} exercise files" in capsys.readouterr().out
    answer(folder, "relu", ANSWERS["relu"][0])
    answer(folder, "sigmoid", ANSWERS["sigmoid"][1])
    assert main(["exercises", "check", str(folder), "relu"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 of 1 right"
    assert main(["exercises", "check", str(folder)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"1 of {len(exercises.EXERCISES)} right"
    assert re.match(r" *1 +relu +right", lines[1]) and re.match(r" *2 +sigmoid +wrong: gradient of x", lines[2])
    assert re.match(r" *3 +dense +not started", lines[3])
    assert main(["exercises", "check", str(folder), "nonsense"]) == 2
    assert "no exercise named nonsense" in capsys.readouterr().err


def test_the_pytest_entry_runs_one_exercise_by_its_marker(tmp_path):
    exercises.start(tmp_path)
    answer(tmp_path, "mse", ANSWERS["mse"][0])
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    passed = subprocess.run(command + ["-m", "mse"], capture_output=True, text=True, cwd=tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = subprocess.run(command + ["-m", "bce"], capture_output=True, text=True, cwd=tmp_path)
    assert failed.returncode == 1 and "bce: not started" in failed.stdout

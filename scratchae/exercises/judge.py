"""The checks that judge each exercise: one function per exercise, each using the library for everything else.

A check takes the reader's module and raises :class:`Wrong` with a sentence that names the gradient, where it is
wrong and by how much; :func:`run` turns that, a stub's ``NotImplementedError`` or any error in the reader's code
into a :class:`Result`. Gradients are checked in float64 against centred differences with a random upstream gradient
(:func:`scratchae.gradcheck.check_layer`), then compared with the library's own implementation on random float32
inputs, which also shows a silent upcast to float64. Adam and ``train_step`` are run a few steps beside the library's
and must follow the same trajectory.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy

from scratchae import builders, gradcheck, gradcheck_suite, layers, losses, mistakes, models, numerical, optim, training
from scratchae.learner_files import OwnCodeError, load_file, located

F32, F64 = numpy.float32, numpy.float64

#: How far float32 results may be from the library's (different but equivalent arithmetic rounds differently).
FLOAT32_RTOL, FLOAT32_ATOL = 1e-4, 1e-6


@dataclass(frozen=True)
class Result:
    """The verdict on one exercise: ``status`` is "not started", "wrong" or "right"; ``detail`` says why."""

    name: str
    status: str
    detail: str = ""

    @property
    def right(self) -> bool:
        return self.status == "right"

    def line(self) -> str:
        return f"{self.name}: {self.status}" + (f": {self.detail}" if self.detail else "")


class Wrong(Exception):
    """An exercise's answer is wrong; the message says which quantity, where and by how much."""


def run(name: str, path, check) -> Result:
    """Load the reader's file ``path`` and run ``check`` on it; every outcome becomes a :class:`Result`."""
    if not path.exists():
        return Result(name, "not started", f"no file {path.name} (scratchae exercises start adds missing ones)")
    try:
        check(load_file(path))
    except NotImplementedError as error:
        if f"exercise {name}" in str(error):
            return Result(name, "not started")
        return Result(name, "wrong", f"NotImplementedError: {error} ({located(error, path)})")
    except Wrong as wrong:
        return Result(name, "wrong", str(wrong))
    except OwnCodeError as error:
        return Result(name, "wrong", str(error))
    except Exception as error:  # the reader's code raised: one line naming the line, not a traceback
        told = mistakes.explain(error) or error
        return Result(name, "wrong", f"{type(error).__name__}: {told} ({located(error, path)})")
    return Result(name, "right")


# ---------------------------------------------------------------------------------------------------------------
# Layers


def check_relu(module) -> None:
    _judge_layer(module.ReLU(), layers.ReLU(), (4, 10))


def check_sigmoid(module) -> None:
    _judge_layer(module.Sigmoid(), layers.Sigmoid(), (4, 10))


def check_dense(module) -> None:
    yours = module.Dense(5, 3, seed=0)
    _judge_layer(yours, layers.Dense(5, 3, rng=0), (4, 5))


def check_sequential(module) -> None:
    rng = numpy.random.default_rng(0)
    inner = [layers.Dense(5, 4, rng=rng), layers.ReLU(), layers.Dense(4, 3, rng=rng), layers.Sigmoid()]
    for layer in (inner[0], inner[2]):  # biases off zero, so that no ReLU input sits on its kink
        layer.b.data = (0.3 * rng.standard_normal(layer.b.shape)).astype(F32)
    library = layers.Sequential(copy.deepcopy(inner))
    _judge_layer(module.Sequential(inner), library, (4, 5))


def _judge_layer(yours, library, input_shape, draw=None) -> None:
    """Your layer against centred differences (and the protocol), then against the library's on float32 input.

    ``draw(rng, shape)`` gives the input where standard normal numbers will not do (pooling wants no ties).
    """
    rng = numpy.random.default_rng(1)
    given = None if draw is None else draw(rng, input_shape)
    x = (gradcheck_suite.off_kinks(rng.standard_normal(input_shape)) if given is None else given).astype(F32)
    name = type(yours).__name__
    _call(f"{name}.forward", yours.forward, x.copy())
    dy = rng.standard_normal(library.forward(x.copy()).shape).astype(F32)
    expected = mistakes.Expected("dL/dx", tuple(x.shape), {"x": tuple(x.shape), "dy": tuple(dy.shape)})
    _call(f"{name}.backward", yours.backward, dy, expected=expected)
    report = gradcheck.check_layer(yours, given, input_shape=input_shape)
    if not report.passed:
        raise Wrong(_first_failure(report))
    for mine, theirs in zip(yours.parameters(), library.parameters()):
        theirs.data = mine.data.copy()
    dy = rng.standard_normal(library.forward(x.copy()).shape).astype(F32)
    yours.forward(x.copy())
    _agree("dL/dx", yours.backward(dy.copy()), library.backward(dy.copy()))
    for (name, mine), theirs in zip(numerical.parameter_names(yours), library.parameters()):
        _agree(f"the gradient of {name}", mine.grad, theirs.grad)


def _call(what: str, function, *arguments, expected: mistakes.Expected | None = None):
    """``function(*arguments)``; an error other than a stub's becomes :class:`Wrong`, naming the call and the line
    in the reader's words (:func:`scratchae.mistakes.describe`; ``expected``: what the result must be)."""
    try:
        return function(*arguments)
    except NotImplementedError:
        raise
    except Exception as error:  # the reader's code raised: a sentence with its line, not a traceback
        raise Wrong(mistakes.describe(what, error, function, expected)) from None


def _first_failure(report) -> str:
    if report.mistakes:
        return report.mistakes[0]
    worst = max((check for check in report.checks if not check.passed(report.tolerance)), key=lambda c: c.error)
    return _describe(worst)


def _describe(check) -> str:
    """``gradient of W wrong at (1, 2): yours 0.5, numerical 0.25 (relative error 3.3e-01)``, and a factor's hint."""
    hint = f"; {check.hint}" if check.hint else ""
    return (f"gradient of {check.name} wrong at {check.index}: yours {check.analytic:.6g}, numerical "
            f"{check.numeric:.6g} (relative error {check.error:.1e}){hint}")


def _agree(what: str, yours, library, rtol: float = FLOAT32_RTOL, atol: float = FLOAT32_ATOL) -> None:
    """Your array must equal the library's (same shape, same dtype, same numbers up to rounding)."""
    if yours is None or not hasattr(yours, "shape"):
        raise Wrong(f"{what} is {type(yours).__name__}, the library's is an array of shape {tuple(library.shape)}")
    if tuple(yours.shape) != tuple(library.shape):
        raise Wrong(f"{what} has shape {tuple(yours.shape)}, the library's {tuple(library.shape)}")
    if yours.dtype != library.dtype:
        raise Wrong(f"{what} is {yours.dtype} where the library's is {library.dtype} (a silent change of dtype: "
                    f"a float64 constant or .astype(float)?)")
    yours64, library64 = numpy.asarray(yours, dtype=F64), numpy.asarray(library, dtype=F64)
    far = numpy.abs(yours64 - library64) > atol + rtol * numpy.abs(library64)
    if far.any():
        where = tuple(int(i) for i in numpy.unravel_index(int(numpy.argmax(far)), far.shape))
        raise Wrong(f"{what} differs from the library's at {where}: yours {yours64[where]:.6g}, the library's "
                    f"{library64[where]:.6g}")


# ---------------------------------------------------------------------------------------------------------------
# Losses


def check_mse(module) -> None:
    rng = numpy.random.default_rng(2)
    pred = rng.standard_normal((3, 4))
    _judge_loss(module.MSELoss(), losses.MSELoss(), pred, pred + rng.uniform(0.1, 1.0, (3, 4)))


def check_bce(module) -> None:
    rng = numpy.random.default_rng(3)
    _judge_loss(module.BCELoss(), losses.BCELoss(), rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0.0, 1.0, (3, 4)))


def check_softmax_cross_entropy(module) -> None:
    rng = numpy.random.default_rng(4)
    _judge_loss(module.SoftmaxCrossEntropyLoss(), losses.SoftmaxCrossEntropyLoss(), rng.standard_normal((5, 4)),
                rng.integers(0, 4, size=5))


def _judge_loss(yours, library, pred, target) -> None:
    """Your loss's gradient against centred differences, then against the library's on float32 input."""
    target32 = target.astype(F32) if target.dtype == F64 else target
    name = type(yours).__name__
    _call(f"{name}.forward", yours.forward, pred.astype(F32), target32)
    _call(f"{name}.backward", yours.backward,
          expected=mistakes.Expected("dL/dpred", tuple(pred.shape), {"pred": tuple(pred.shape)}))
    report = gradcheck.check_loss(yours, pred, target)
    if not report.passed:
        raise Wrong(_first_failure(report).replace("gradient of pred", "gradient of pred (dL/dpred)"))
    yours.forward(pred.astype(F32), target32)
    library.forward(pred.astype(F32), target32)
    _agree("dL/dpred", yours.backward(), library.backward())


# ---------------------------------------------------------------------------------------------------------------
# Adam and train_step: a few steps beside the library's


ADAM_STEPS = 5


def check_adam(module) -> None:
    rng = numpy.random.default_rng(5)
    shapes = [(3, 4), (4,)]
    gradients = [[rng.standard_normal(shape) for shape in shapes] for _ in range(ADAM_STEPS)]
    start = [rng.standard_normal(shape) for shape in shapes]
    for dtype in (F64, F32):
        yours = [layers.Parameter(array.astype(dtype), name) for array, name in zip(start, "Wb")]
        theirs = [layers.Parameter(array.astype(dtype), name) for array, name in zip(start, "Wb")]
        mine, library = module.Adam(yours, lr=1e-2), optim.Adam(theirs, lr=1e-2)
        for step, grads in enumerate(gradients, start=1):
            before = [parameter.data.copy() for parameter in theirs]
            for parameter, other, grad in zip(yours, theirs, grads):
                parameter.grad, other.grad = grad.astype(dtype), grad.astype(dtype)
            mine.step()
            library.step()
            for parameter, other, grad, was in zip(yours, theirs, grads, before):
                if not numpy.array_equal(parameter.grad, grad.astype(dtype)):
                    raise Wrong(f"step {step} changed {parameter.name}.grad; an update reads the gradient, never "
                                f"writes it")
                _agree_step(step, parameter, other, was, dtype)


def _agree_step(step: int, yours, library, before, dtype) -> None:
    rtol = 1e-9 if dtype == F64 else FLOAT32_RTOL
    try:
        _agree(f"after step {step}, {yours.name}", yours.data, library.data, rtol=rtol, atol=0.0)
    except Wrong as wrong:
        taken, expected = yours.data - before, library.data - before  # the steps themselves
        if taken.shape == expected.shape and numpy.all(expected != 0):
            ratio = numpy.asarray(taken, dtype=F64) / expected
            if numpy.allclose(ratio, ratio.flat[0], rtol=1e-3):
                raise Wrong(f"{wrong}: your step is {float(ratio.flat[0]):.4g} times the library's") from None
        raise


TRAIN_STEPS = 3


def check_train_step(module) -> None:
    rng = numpy.random.default_rng(6)
    x = rng.random((6, 12)).astype(F32)
    labels = rng.integers(0, 3, size=6)
    cases = [("an autoencoder", lambda: builders.simple_autoencoder(4, input_dim=12, hidden_dim=8, seed=0),
              losses.MSELoss, None),
             ("a classifier", lambda: builders.mlp_classifier(4, n_classes=3, input_dim=12, seed=0),
              losses.SoftmaxCrossEntropyLoss, labels)]
    for what, build, loss_class, y in cases:
        yours, theirs = build(), build()
        your_optimizer, their_optimizer = optim.Adam(yours.parameters()), optim.Adam(theirs.parameters())
        for step in range(1, TRAIN_STEPS + 1):
            before = [parameter.data.copy() for parameter in yours.parameters()]
            value = module.train_step(yours, loss_class(), your_optimizer, x, y)
            expected = training.train_step(theirs, loss_class(), their_optimizer, x, y)
            if not isinstance(value, (float, int, numpy.floating)) or isinstance(value, bool):
                raise Wrong(f"train_step returned {type(value).__name__}; it must return the batch's loss as a "
                            f"Python float")
            if abs(float(value) - expected) > 1e-6 * max(1.0, abs(expected)):
                raise Wrong(f"on {what}, step {step} returned the loss {float(value):.6g}, the library's "
                            f"{expected:.6g}")
            if all(numpy.array_equal(parameter.data, was) for parameter, was in zip(yours.parameters(), before)):
                raise Wrong(f"on {what}, step {step} left every weight where it was: the optimizer never stepped")
            for (name, mine), other in zip(yours.named_parameters(), theirs.parameters()):
                _agree(f"on {what}, after step {step}, {name}", mine.data, other.data)


# ---------------------------------------------------------------------------------------------------------------
# The VAE: its sample's backward and its KL term


def check_vae_sample(module) -> None:
    rng = numpy.random.default_rng(7)
    mu, logvar, eps, dz = (rng.standard_normal((4, 3)) for _ in range(4))
    given = dz.copy()
    result = module.gaussian_sample_backward(dz, logvar, eps)
    dmu, dlogvar = _pair(result, "gaussian_sample_backward", mu.shape)
    if not numpy.array_equal(dz, given):
        raise Wrong("gaussian_sample_backward changed dz in place; build new arrays")

    def z(_):
        return models.gaussian_sample(mu, logvar, eps)

    _judge_checks([numerical.compare("mu", z, mu, dmu, given), numerical.compare("logvar", z, logvar, dlogvar, given)])
    args = [array.astype(F32) for array in (dz, logvar, eps)]
    for name, mine, theirs in zip(("dL/dmu", "dL/dlogvar"), module.gaussian_sample_backward(*args),
                                  models.gaussian_sample_backward(*args)):
        _agree(name, mine, theirs)


def check_kl(module) -> None:
    rng = numpy.random.default_rng(8)
    mu, logvar = rng.standard_normal((4, 3)), 0.5 * rng.standard_normal((4, 3))
    kl = module.KLDivergence()
    kl.forward(mu, logvar)
    dmu, dlogvar = _pair(kl.backward(), "KLDivergence.backward", mu.shape)
    _judge_checks([numerical.compare("mu", lambda m: kl.forward(m, logvar), mu, dmu),
                   numerical.compare("logvar", lambda v: kl.forward(mu, v), logvar, dlogvar)])
    library = losses.VAELoss("mse")
    x = numpy.full((4, 2), 0.5, dtype=F32)
    library.forward((x, mu.astype(F32), logvar.astype(F32)), x)
    kl.forward(mu.astype(F32), logvar.astype(F32))
    for name, mine, theirs in zip(("dKL/dmu", "dKL/dlogvar"), kl.backward(), library.backward()[1:]):
        _agree(name, mine, theirs)


def _pair(result, what: str, shape) -> tuple:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Wrong(f"{what} returned {type(result).__name__}; it must return two arrays (dL/dmu, dL/dlogvar)")
    for name, array in zip(("dL/dmu", "dL/dlogvar"), result):
        if not hasattr(array, "shape") or tuple(array.shape) != tuple(shape):
            found = tuple(array.shape) if hasattr(array, "shape") else type(array).__name__
            raise Wrong(f"{what}: {name} has shape {found}, it must have shape {tuple(shape)}")
    return tuple(numpy.asarray(array, dtype=F64) for array in result)


def _judge_checks(checks) -> None:
    wrong = [check for check in checks if not check.passed(numerical.LAYER_TOLERANCE)]
    if wrong:
        raise Wrong(_describe(max(wrong, key=lambda check: check.error)))


# ---------------------------------------------------------------------------------------------------------------
# Convolution: windows that overlap and strides above 1, where backward passes go wrong


def check_conv2d(module) -> None:
    from scratchae import conv

    _judge_layer(module.Conv2D(2, 3, 3, stride=2, padding=1, seed=0),
                 conv.Conv2D(2, 3, 3, stride=2, padding=1, rng=0), (2, 2, 7, 6))


def check_maxpool2d(module) -> None:
    from scratchae import conv

    _judge_layer(module.MaxPool2D(3, stride=2), conv.MaxPool2D(3, stride=2), (2, 2, 7, 7), draw=_apart)


def check_upsampling2d(module) -> None:
    from scratchae import conv

    _judge_layer(module.UpSampling2D(2), conv.UpSampling2D(2), (2, 2, 3, 4))


# ---------------------------------------------------------------------------------------------------------------
# The sparse autoencoder's L1 activity penalty


def check_l1_penalty(module) -> None:
    """Codes of both signs, kept 0.05 or more from the corner at 0 for the numerical check; then exact zeros (a
    ReLU's code is mostly zeros), where the subgradient must be 0 as the library's."""
    from scratchae import sparse

    rng = numpy.random.default_rng(9)
    h = gradcheck_suite.off_kinks(rng.standard_normal((4, 5)))
    penalty = module.L1Penalty(0.3)
    penalty.forward(h)
    dh = _activity_gradient(penalty.backward(), h)
    right = sparse.l1_penalty_backward(h, 0.3)
    if numpy.allclose(numpy.abs(dh), numpy.abs(right)) and not numpy.allclose(dh, right):
        raise Wrong("the sign is dropped: where h < 0, |h| falls as h grows, so the gradient there is -l1 / N "
                    "(l1 * sign(h) / N)")
    _judge_checks([numerical.compare("h", lambda v: penalty.forward(v), h, dh)])
    h32 = numpy.where(rng.uniform(size=(6, 5)) < 0.4, 0.0, rng.standard_normal((6, 5))).astype(F32)
    penalty.forward(h32)
    mine = penalty.backward()
    if numpy.any(numpy.asarray(mine)[h32 == 0.0] != 0.0):
        raise Wrong("at h = 0 the gradient must be 0 (sign(0) = 0, the subgradient Keras and PyTorch use)")
    _agree("d(penalty)/dh", mine, sparse.l1_penalty_backward(h32, 0.3))


def _activity_gradient(result, h) -> numpy.ndarray:
    """The learner's d(penalty)/dh as float64, or Wrong when it is not an array shaped like the code."""
    if not hasattr(result, "shape"):
        raise Wrong(f"L1Penalty.backward returned {type(result).__name__}; it must return one array, d(penalty)/dh")
    if tuple(result.shape) != tuple(h.shape):
        raise Wrong(f"L1Penalty.backward returned shape {tuple(result.shape)}: the penalty's gradient is with respect "
                    f"to the code h, its activity, so it has h's shape {tuple(h.shape)} (N, Z), not a weight's")
    return numpy.asarray(result, dtype=F64)


def _apart(rng, shape):
    """Numbers at least 1e-2 apart, so that no pooling window has a tie that a step h could flip."""
    size = int(numpy.prod(shape))
    return (rng.permutation(size) * 1e-2 + rng.uniform(1e-3, 2e-3, size) - 0.5 * size * 1e-2).reshape(shape)

r"""Numerical gradients: the proof that the hand-written backward passes are right.

A centred difference estimates the derivative of a scalar function :math:`f` with respect to one number :math:`x_i`:

.. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h},

with an error of order :math:`h^2`. To check a layer, whose output is an array, we check the scalar
:math:`f = \sum (\text{output} \cdot dy)` for a *random* upstream gradient ``dy``: its gradient is exactly what
``backward(dy)`` returns, and a random ``dy`` exercises every output (an all-ones ``dy`` would hide some mistakes).

Work in float64: in float32 the rounding error of ``f`` divided by ``h`` swamps the estimate. A relative error
below 1e-7 means the gradient is right; above 1e-2 it is wrong. For a parameter with many elements, a directional
check compares the derivative along a few random directions instead of looping over every element.

The numerical tools (:func:`numerical_gradient`, :func:`compare`, :func:`check_layer`, :func:`check_loss`,
:func:`check_model`) know the layer protocol (``forward``, ``backward``, ``parameters``) by duck typing only; their
loops run on NumPy arrays. :func:`check_everything` runs them on every layer, every loss and whole models: the suite
behind ``scratchae gradcheck``, callable from a notebook too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy

from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from scratchae.models import Autoencoder

#: Parameters with more elements than this are checked along random directions instead of element by element.
DIRECTIONAL_ABOVE = 4096

LAYER_TOLERANCE = 1e-7
MODEL_TOLERANCE = 1e-6


@dataclass
class GradientCheck:
    """The outcome of one comparison of an analytic gradient with a numerical one.

    ``index`` is the element (or the random direction) where the relative error is largest, and ``analytic`` and
    ``numeric`` are the two values there.
    """

    name: str
    error: float
    index: tuple | str
    analytic: float
    numeric: float
    method: str

    def passed(self, tolerance: float) -> bool:
        return self.error < tolerance

    def __str__(self):
        return (f"{self.name}: relative error {self.error:.2e} at {self.index} ({self.method}): "
                f"analytic {self.analytic:.10e}, numeric {self.numeric:.10e}")


def rel_error(a, b) -> float:
    """Largest elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)`` (CS231n's measure)."""
    a, b = numpy.asarray(a, dtype=numpy.float64), numpy.asarray(b, dtype=numpy.float64)
    return float(numpy.max(_elementwise_rel_error(a, b)))


def _elementwise_rel_error(a: numpy.ndarray, b: numpy.ndarray) -> numpy.ndarray:
    return numpy.abs(a - b) / numpy.maximum(1e-8, numpy.abs(a) + numpy.abs(b))


def numerical_gradient(f, x: numpy.ndarray, upstream=None, h: float = 1e-5) -> numpy.ndarray:
    """Centred-difference gradient of ``sum(f(x) * upstream)`` with respect to ``x``.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns an array (or a scalar). It may read ``x`` through a closure: ``x`` is changed in place,
        one element at a time, and restored.
    x : numpy.ndarray of float64
    upstream : array like ``f(x)``, optional
        The upstream gradient ``dL/df``; None means ``f`` is already a scalar loss.
    h : float
        Step size.

    Returns
    -------
    numpy.ndarray, same shape as ``x``
    """
    _require_float64_numpy(x)
    grad = numpy.zeros_like(x)
    for index in numpy.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        plus = _as_float64(f(x))
        x[index] = original - h
        minus = _as_float64(f(x))
        x[index] = original
        grad[index] = _weighted_sum(plus - minus, upstream) / (2.0 * h)
    return grad


def directional_derivatives(f, x: numpy.ndarray, directions, upstream=None, h: float = 1e-5) -> numpy.ndarray:
    """Centred-difference derivatives of ``sum(f(x) * upstream)`` along each of ``directions``.

    ``directions`` has shape (K, *x.shape); the result has shape (K,). Compare it with
    ``[sum(analytic_grad * u) for u in directions]``.
    """
    _require_float64_numpy(x)
    original = x.copy()
    derivatives = []
    for direction in directions:
        x[...] = original + h * direction
        plus = _as_float64(f(x))
        x[...] = original - h * direction
        minus = _as_float64(f(x))
        derivatives.append(_weighted_sum(plus - minus, upstream) / (2.0 * h))
    x[...] = original
    return numpy.asarray(derivatives)


def compare(name: str, f, x: numpy.ndarray, analytic, upstream=None, *, rng=None, h: float = 1e-5,
            n_directions: int = 6, directional_above: int = DIRECTIONAL_ABOVE) -> GradientCheck:
    """Compare ``analytic`` (the hand-written gradient of ``sum(f(x) * upstream)``) with a numerical one.

    Small arrays are checked element by element; arrays larger than ``directional_above`` along
    ``n_directions`` random unit directions drawn from ``rng``.
    """
    analytic = numpy.asarray(analytic, dtype=numpy.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"{name}: analytic gradient has shape {analytic.shape}, expected {x.shape}")
    if x.size <= directional_above:
        numeric = numerical_gradient(f, x, upstream, h)
        errors = _elementwise_rel_error(analytic, numeric)
        worst = numpy.unravel_index(int(numpy.argmax(errors)), x.shape)
        return GradientCheck(name, float(errors[worst]), tuple(int(i) for i in worst),
                             float(analytic[worst]), float(numeric[worst]), "elementwise")
    rng = numpy.random.default_rng(rng)
    directions = rng.standard_normal((n_directions, *x.shape))
    directions /= numpy.sqrt(numpy.sum(directions**2, axis=tuple(range(1, directions.ndim)), keepdims=True))
    numeric = directional_derivatives(f, x, directions, upstream, h)
    along = numpy.asarray([numpy.sum(analytic * direction) for direction in directions])
    errors = _elementwise_rel_error(along, numeric)
    worst = int(numpy.argmax(errors))
    return GradientCheck(name, float(errors[worst]), f"direction {worst}", float(along[worst]), float(numeric[worst]),
                         f"directional x{n_directions}")


def check_layer(layer, x: numpy.ndarray, rng, **options) -> list[GradientCheck]:
    """Check ``layer.backward`` against numerical gradients, for its input and every parameter.

    ``x`` and the layer's parameters must be float64 NumPy arrays. The upstream gradient is random.
    """
    upstream = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(upstream)
    analytic = {name: parameter.grad.copy() for name, parameter in _named_parameters(layer)}
    checks = [compare("x", lambda _: layer.forward(x), x, dx, upstream, rng=rng, **options)]
    for name, parameter in _named_parameters(layer):
        checks.append(compare(name, lambda _: layer.forward(x), parameter.data, analytic[name], upstream,
                              rng=rng, **options))
    return checks


def check_loss(loss, pred: numpy.ndarray, target, **options) -> GradientCheck:
    """Check ``loss.backward()`` against the numerical gradient of the scalar loss with respect to ``pred``."""
    loss.forward(pred, target)
    analytic = loss.backward()
    return compare("pred", lambda p: loss.forward(p, target), pred, analytic, **options)


def check_model(model, loss, x: numpy.ndarray, target, rng, **options) -> list[GradientCheck]:
    """Check the gradient of ``loss(model(x), target)`` with respect to every parameter of ``model``."""
    loss.forward(model.forward(x), target)
    model.backward(loss.backward())
    analytic = {name: parameter.grad.copy() for name, parameter in _named_parameters(model)}

    def total_loss(_):
        return loss.forward(model.forward(x), target)

    return [compare(name, total_loss, parameter.data, analytic[name], rng=rng, **options)
            for name, parameter in _named_parameters(model)]


def _named_parameters(module) -> list:
    if hasattr(module, "named_parameters"):
        return module.named_parameters()
    return [(parameter.name, parameter) for parameter in module.parameters()]


def _as_float64(value) -> numpy.ndarray:
    return numpy.array(value, dtype=numpy.float64)  # a copy: f may return an array it later overwrites


def _weighted_sum(value: numpy.ndarray, upstream) -> float:
    # Weighting the *difference* of the outputs, not each output, avoids subtracting two large sums: outputs
    # that the perturbed number does not touch cancel exactly.
    if upstream is None:
        return float(numpy.sum(value))
    return float(numpy.sum(value * upstream))


def _require_float64_numpy(x) -> None:
    if not isinstance(x, numpy.ndarray) or x.dtype != numpy.float64:
        kind = f"{type(x).__name__} of {getattr(x, 'dtype', '?')}"
        raise TypeError(f"numerical gradients need a float64 NumPy array (float32 rounding swamps the estimate), "
                        f"got {kind}")


# ---------------------------------------------------------------------------------------------------------------
# The whole suite: every layer, every loss and whole models


@dataclass
class CheckedCase:
    """The checks of one layer, loss or model, and the tolerance they must pass (a whole model sums more rounding
    errors than one layer, so it gets :data:`MODEL_TOLERANCE`)."""

    what: str
    tolerance: float
    checks: list[GradientCheck]

    @property
    def passed(self) -> bool:
        return all(check.passed(self.tolerance) for check in self.checks)


def off_kinks(x: numpy.ndarray, margin: float = 0.05) -> numpy.ndarray:
    """Move values away from 0, where ReLU has no derivative, so that ``x +- h`` never crosses the kink."""
    return x + numpy.where(x >= 0, margin, -margin)


def check_everything(seed: int = 0) -> list[CheckedCase]:
    """Check every layer, every loss and whole models against numerical gradients, in float64.

    Returns one :class:`CheckedCase` per layer, loss or model; :func:`format_report` lays them out as a table.
    """
    rng = numpy.random.default_rng(seed)
    return _layer_cases(rng) + _loss_cases(rng) + _model_cases(rng)


def _layer_cases(rng) -> list[CheckedCase]:
    f64 = numpy.float64
    x = off_kinks(rng.standard_normal((4, 7)))
    layers = (Dense(7, 5, rng=rng, dtype=f64), Dense(784, 128, rng=rng, dtype=f64), ReLU(), Sigmoid(), Identity(),
              Sequential([Dense(7, 6, rng=rng, dtype=f64), ReLU(), Dense(6, 3, rng=rng, dtype=f64)]))
    cases = []
    for layer in layers:
        # the 784-wide layer gets inputs of its own; its 100,352 weights are checked along random directions
        layer_input = off_kinks(rng.standard_normal((3, 784))) if getattr(layer, "in_features", 0) == 784 else x
        cases.append(CheckedCase(repr(layer).replace("\n", "").replace("  ", " "), LAYER_TOLERANCE,
                                 check_layer(layer, layer_input, rng)))
    return cases


def _loss_cases(rng) -> list[CheckedCase]:
    probabilities, targets = rng.uniform(0.05, 0.95, (4, 7)), rng.uniform(0.0, 1.0, (4, 7))
    labels = rng.integers(0, 7, size=4)
    return [CheckedCase("MSELoss", LAYER_TOLERANCE, [check_loss(MSELoss(), probabilities.copy(), targets)]),
            CheckedCase("BCELoss", LAYER_TOLERANCE, [check_loss(BCELoss(), probabilities.copy(), targets)]),
            CheckedCase("SoftmaxCrossEntropyLoss", LAYER_TOLERANCE,
                        [check_loss(SoftmaxCrossEntropyLoss(), rng.standard_normal((4, 7)), labels)])]


def _model_cases(rng) -> list[CheckedCase]:
    f64 = numpy.float64

    def stack(sizes, last):
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [Dense(n_in, n_out, rng=rng, dtype=f64), ReLU()]
        layers[-1] = last
        return Sequential(layers)

    model = Autoencoder(stack([12, 8, 6, 4], ReLU()), stack([4, 6, 8, 12], Sigmoid()))
    images = rng.uniform(0.0, 1.0, (5, 12))
    return [CheckedCase(f"autoencoder 12-8-6-4-6-8-12 + {type(loss).__name__}", MODEL_TOLERANCE,
                        check_model(model, loss, images, images, rng)) for loss in (MSELoss(), BCELoss())]


def format_report(cases: list[CheckedCase]) -> str:
    """A table with one row per check: what, parameter, largest relative error, method, pass or FAIL."""
    lines = [f"{'what':<58}{'parameter':<14}{'max rel error':>14}  {'method':<16}result"]
    failures = 0
    for case in cases:
        for check in case.checks:
            passed = check.passed(case.tolerance)
            failures += not passed
            lines.append(f"{case.what[:57]:<58}{check.name:<14}{check.error:>14.2e}  {check.method:<16}"
                         + ("pass" if passed else f"FAIL (> {case.tolerance:.0e})"))
            if not passed:
                lines.append(f"    {check}")
    lines.append("all gradients match" if failures == 0 else f"{failures} gradient check(s) failed")
    return "\n".join(lines)

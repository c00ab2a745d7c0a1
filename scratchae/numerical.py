r"""Numerical gradients: the proof that the hand-written backward passes are right.

A centred difference estimates the derivative of a scalar function :math:`f` with respect to one number :math:`x_i`:

.. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h},

with an error of order :math:`h^2`. To check a layer, whose output is an array, we check the scalar
:math:`f = \sum (\text{output} \cdot dy)` for a *random* upstream gradient ``dy``: its gradient is exactly what
``backward(dy)`` returns, and a random ``dy`` exercises every output (an all-ones ``dy`` would hide some mistakes).

Work in float64: in float32 the rounding error of ``f`` divided by ``h`` swamps the estimate. A relative error
below 1e-7 means the gradient is right; above 1e-2 it is wrong. For a parameter with many elements, a directional
check compares the derivative along a few random directions instead of looping over every element.

The building blocks (:func:`numerical_gradient`, :func:`compare`, :func:`layer_checks`, :func:`loss_check`,
:func:`model_checks`) work on objects that are already float64 and know the layer protocol (``forward``,
``backward``, ``parameters``) by duck typing only; their loops run on NumPy arrays. :mod:`scratchae.gradcheck`
checks a learner's own float32 layer with them, and :mod:`scratchae.gradcheck_suite` checks every layer, loss and
model of the library.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy

#: Parameters with more elements than this are checked along random directions instead of element by element.
DIRECTIONAL_ABOVE = 4096

LAYER_TOLERANCE = 1e-7
MODEL_TOLERANCE = 1e-6

#: Gradients smaller than this fraction of the largest one in the same array are compared against that fraction.
RELATIVE_FLOOR = 1e-2

#: The step of the whole-model checks of :func:`check_everything`. A whole model's loss is a mean over many outputs,
#: and its early layers' gradients are small against the loss itself, so the rounding error of a centred difference,
#: about (machine epsilon * |loss|) / h, matters more than for one layer; a larger step divides it, and the ReLU
#: inputs are kept well away from their kinks (:func:`_well_posed`). Too large a step would let the curvature of the
#: sigmoid and of exp show instead; 6e-5 keeps both errors below half the tolerance over hundreds of seeds.
MODEL_STEP = 6e-5


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
    #: What the whole array says when it is wrong everywhere by one factor (a missing 1/N, a flipped sign), when it is
    #: the right one transposed, or (:func:`scratchae.gradcheck.check_layer`) a convolution's unflipped kernel; or "".
    hint: str = ""

    def passed(self, tolerance: float) -> bool:
        return self.error < tolerance

    def __str__(self):
        hint = f" ({self.hint})" if self.hint else ""
        return (f"{self.name}: relative error {self.error:.2e} at {self.index} ({self.method}): "
                f"analytic {self.analytic:.10e}, numeric {self.numeric:.10e}{hint}")


def rel_error(a, b) -> float:
    """Largest elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)`` (CS231n's measure)."""
    a, b = numpy.asarray(a, dtype=numpy.float64), numpy.asarray(b, dtype=numpy.float64)
    return float(numpy.max(_elementwise_rel_error(a, b)))


def _elementwise_rel_error(a: numpy.ndarray, b: numpy.ndarray, floor: float = 1e-8) -> numpy.ndarray:
    return numpy.abs(a - b) / numpy.maximum(floor, numpy.abs(a) + numpy.abs(b))


def _compared_errors(analytic: numpy.ndarray, numeric: numpy.ndarray) -> numpy.ndarray:
    """Elementwise relative errors, with gradients far below the array's largest compared against 1% of its scale.

    A centred difference is off by about (machine epsilon * |f|) / h in absolute terms, whatever the gradient: for
    an entry a million times smaller than its neighbours that rounding alone is a large *relative* error. Below
    :data:`RELATIVE_FLOOR` of the array's scale, an entry's error is therefore measured against that floor; a wrong
    gradient still shows, as an absolute error far above the tolerance times the floor.
    """
    scale = float(numpy.max(numpy.abs(analytic), initial=0.0) + numpy.max(numpy.abs(numeric), initial=0.0))
    return _elementwise_rel_error(analytic, numeric, floor=max(1e-8, RELATIVE_FLOOR * scale))


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
    ``n_directions`` random directions drawn from ``rng`` (each number moved by about ``h``).
    """
    analytic = numpy.asarray(analytic, dtype=numpy.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"{name}: analytic gradient has shape {analytic.shape}, expected {x.shape}")
    if x.size <= directional_above:
        numeric = numerical_gradient(f, x, upstream, h)
        errors = _compared_errors(analytic, numeric)
        worst = numpy.unravel_index(int(numpy.argmax(errors)), x.shape)
        return GradientCheck(name, float(errors[worst]), tuple(int(i) for i in worst),
                             float(analytic[worst]), float(numeric[worst]), "elementwise",
                             _relation(analytic, numeric))
    rng = numpy.random.default_rng(rng)
    directions = rng.standard_normal((n_directions, *x.shape))
    # Each number moves by about h, however many there are: a unit-length direction would move each of a million
    # numbers by h / 1000, a step lost in the rounding of x + step.
    directions /= numpy.sqrt(numpy.mean(directions**2, axis=tuple(range(1, directions.ndim)), keepdims=True))
    numeric = directional_derivatives(f, x, directions, upstream, h)
    along = numpy.asarray([numpy.sum(analytic * direction) for direction in directions])
    errors = _compared_errors(along, numeric)
    worst = int(numpy.argmax(errors))
    return GradientCheck(name, float(errors[worst]), f"direction {worst}", float(along[worst]), float(numeric[worst]),
                         f"directional x{n_directions}", _constant_factor(along, numeric))


def _constant_factor(analytic: numpy.ndarray, numeric: numpy.ndarray) -> str:
    """"analytic = c x numerical everywhere" when one factor c (not 1) explains a wrong gradient, else "".

    A forgotten 1/N, a flipped sign or a missing 1/2 makes the whole gradient a multiple of the right one; saying so
    points at the mistake better than one element's values.
    """
    factor = _factor(analytic, numeric)
    if factor is None or abs(factor - 1.0) < 1e-3:
        return ""
    return f"analytic = {factor:.6g} x numerical everywhere: {_what_factor(factor)}"


def _relation(analytic: numpy.ndarray, numeric: numpy.ndarray) -> str:
    """What explains a wrong gradient as a whole: a constant factor (:func:`_constant_factor`, a flipped sign
    included), or the right numbers transposed (``dy.T @ x`` where ``x.T @ dy`` belongs), or both; else "".

    For an array of 3 or 4 axes, "transposed" is any order of its axes that keeps its shape (a kernel's (C_out,
    C_in) swapped).
    """
    if _factor(analytic, numeric) is not None or analytic.ndim < 2 or analytic.ndim > 4:
        return _constant_factor(analytic, numeric)  # "" when it is the right gradient (a factor of 1)
    for axes in itertools.permutations(range(analytic.ndim)):
        moved = numpy.transpose(numeric, axes)
        if moved.shape != analytic.shape or numpy.array_equal(moved, numeric):
            continue
        factor = _factor(analytic, moved)
        if factor is None:
            continue
        if analytic.ndim == 2:
            moved_how, cause = "transposed", "a product's factors swapped, or a .T missing"
        else:
            moved_how = f"with its axes in the order {axes}"
            cause = "an einsum's or a transpose's axes in another order"
        if abs(factor - 1.0) < 1e-3:
            return f"analytic = numerical {moved_how}: the right numbers in the wrong places ({cause})"
        return f"analytic = {factor:.6g} x numerical {moved_how}: transposed, and {_what_factor(factor)}"
    return ""


def _factor(analytic: numpy.ndarray, numeric: numpy.ndarray) -> float | None:
    """The c with ``analytic = c * numeric`` everywhere (up to rounding), or None if there is none."""
    numeric_norm = float(numpy.sum(numeric * numeric))
    if numeric_norm == 0.0 or analytic.size < 2:
        return None
    factor = float(numpy.sum(analytic * numeric)) / numeric_norm
    residual = float(numpy.max(numpy.abs(analytic - factor * numeric)))
    scale = float(numpy.max(numpy.abs(analytic)))
    return None if residual > 1e-6 * max(scale, 1e-12) else factor


def _what_factor(factor: float) -> str:
    return "the sign is flipped" if abs(factor + 1.0) < 1e-3 else "a constant factor is wrong"


def layer_checks(layer, x: numpy.ndarray, rng, **options) -> list[GradientCheck]:
    """Compare ``layer.backward`` with numerical gradients, for its input and every parameter: the building block
    of :func:`check_layer`, on a layer that is already float64 and follows the protocol.

    ``x`` and the layer's parameters must be float64 NumPy arrays. The upstream gradient is random. Parameters are
    named by their path (``"0.W"``, ``"encoder.first.b"``), so that two sublayers' ``W`` never collide.
    """
    upstream = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(upstream.copy())
    named = parameter_names(layer)
    analytic = [parameter.grad.copy() for _, parameter in named]
    checks = [compare("x", lambda _: layer.forward(x), x, dx, upstream, rng=rng, **options)]
    for (name, parameter), gradient in zip(named, analytic):
        checks.append(compare(name, lambda _: layer.forward(x), parameter.data, gradient, upstream, rng=rng,
                              **options))
    return checks


def loss_check(loss, pred: numpy.ndarray, target, **options) -> GradientCheck:
    """Compare ``loss.backward()`` with the numerical gradient of the scalar loss with respect to ``pred``: the
    building block of :func:`check_loss`, on float64 arrays."""
    loss.forward(pred, target)
    analytic = loss.backward()
    return compare("pred", lambda p: loss.forward(p, target), pred, analytic, **options)


def model_checks(model, loss, x: numpy.ndarray, target, rng, **options) -> list[GradientCheck]:
    """Compare the gradient of ``loss(model(x), target)`` with respect to every parameter of ``model`` with
    numerical ones: the building block of :func:`check_model`, on a float64 model."""
    loss.forward(model.forward(x), target)
    model.backward(loss.backward())
    named = parameter_names(model)
    analytic = [parameter.grad.copy() for _, parameter in named]

    def total_loss(_):
        return loss.forward(model.forward(x), target)

    return [compare(name, total_loss, parameter.data, gradient, rng=rng, **options)
            for (name, parameter), gradient in zip(named, analytic)]


def parameter_names(module) -> list[tuple[str, object]]:
    """``[(path, parameter), ...]`` in the order of ``module.parameters()``, each path unique.

    A module's own ``named_parameters()`` gives the names when they are unique (``"encoder.0.W"``); otherwise (a
    layer of the reader's own, made of sublayers that each have a ``W``) the path is found from the attributes that
    hold the parameter (``"first.W"``, ``"second.W"``), or is its position in ``parameters()``.
    """
    parameters = list(module.parameters())
    if hasattr(module, "named_parameters"):
        names = [name for name, _ in module.named_parameters()]
        if len(set(names)) == len(names) == len(parameters):
            return list(zip(names, parameters))
    paths = _attribute_paths(module)
    named, used = [], set()
    for position, parameter in enumerate(parameters):
        name = paths.get(id(parameter), f"parameters()[{position}]")
        if name in used:
            name = f"{name} (parameters()[{position}])"
        used.add(name)
        named.append((name, parameter))
    return named


def _attribute_paths(module, prefix: str = "", paths: dict | None = None, depth: int = 0) -> dict[int, str]:
    """id(parameter) -> the attribute path that reaches it from ``module`` (a ``layers`` list counts by index)."""
    paths = {} if paths is None else paths
    if depth > 8 or not hasattr(module, "__dict__"):
        return paths
    for attribute, value in vars(module).items():
        items = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        for index, item in items:
            if index is None:
                path = f"{prefix}{attribute}"
            else:
                path = f"{prefix}{index}" if attribute == "layers" else f"{prefix}{attribute}.{index}"
            if _is_parameter(item):
                paths.setdefault(id(item), path)
            elif callable(getattr(item, "parameters", None)):
                _attribute_paths(item, f"{path}.", paths, depth + 1)
    return paths


def _is_parameter(value) -> bool:
    return hasattr(value, "data") and hasattr(value, "grad") and not callable(getattr(value, "parameters", None))


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

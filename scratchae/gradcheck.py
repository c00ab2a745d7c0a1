r"""Numerical gradients: the proof that the hand-written backward passes are right.

A centred difference estimates the derivative of a scalar function :math:`f` with respect to one number :math:`x_i`:

.. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h},

with an error of order :math:`h^2`. To check a layer, whose output is an array, we check the scalar
:math:`f = \sum (\text{output} \cdot dy)` for a *random* upstream gradient ``dy``: its gradient is exactly what
``backward(dy)`` returns, and a random ``dy`` exercises every output (an all-ones ``dy`` would hide some mistakes).

Work in float64: in float32 the rounding error of ``f`` divided by ``h`` swamps the estimate. A relative error
below 1e-7 means the gradient is right; above 1e-2 it is wrong. For a parameter with many elements, a directional
check compares the derivative along a few random directions instead of looping over every element.

For a layer, loss or model of your own, one call does it all, from a notebook::

    report = check_layer(MyTanh(), input_shape=(4, 10))   # also check_loss(loss), check_model(model, loss)
    print(report)                                          # the table; report.passed is a bool

It checks a float64 copy (your float32 layer is left as it was) and names every break of the layer protocol on the
way: an exception and its line, ``backward`` returning None, a gradient never set or of the wrong shape or dtype,
``dy`` changed in place, gradients added up over calls. ``scratchae gradcheck --layer my_layers.py:MyTanh`` runs it
from a terminal.

The building blocks (:func:`numerical_gradient`, :func:`compare`, :func:`layer_checks`, :func:`loss_check`,
:func:`model_checks`) work on objects that are already float64 and know the layer protocol (``forward``,
``backward``, ``parameters``) by duck typing only; their loops run on NumPy arrays. :func:`check_everything` runs
them on every layer, every loss and whole models: the suite behind ``scratchae gradcheck``.
"""

from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from scratchae.backend import to_numpy

from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.models import Autoencoder, gaussian_sample, gaussian_sample_backward, variational_autoencoder

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
    #: What the whole array says when it is wrong everywhere by one factor (a missing 1/N, a flipped sign), or "".
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
    ``n_directions`` random unit directions drawn from ``rng``.
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
                             _constant_factor(analytic, numeric))
    rng = numpy.random.default_rng(rng)
    directions = rng.standard_normal((n_directions, *x.shape))
    directions /= numpy.sqrt(numpy.sum(directions**2, axis=tuple(range(1, directions.ndim)), keepdims=True))
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
    numeric_norm = float(numpy.sum(numeric * numeric))
    if numeric_norm == 0.0 or analytic.size < 2:
        return ""
    factor = float(numpy.sum(analytic * numeric)) / numeric_norm
    residual = float(numpy.max(numpy.abs(analytic - factor * numeric)))
    scale = float(numpy.max(numpy.abs(analytic)))
    if abs(factor - 1.0) < 1e-3 or residual > 1e-6 * max(scale, 1e-12):
        return ""
    return f"analytic = {factor:.6g} x numerical everywhere: a constant factor is wrong"


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


# ---------------------------------------------------------------------------------------------------------------
# A learner's own code: one call checks a layer, a loss or a model, and says what is wrong


@dataclass
class CheckedCase:
    """The report on one layer, loss or model: its gradient checks, the tolerance they must pass, and the mistakes
    against the layer protocol that were found on the way (a backward that returned None, a gradient never set...).

    ``passed`` is a bool; ``str(report)`` is the table a learner reads. A whole model sums more rounding errors than
    one layer, so it gets :data:`MODEL_TOLERANCE`.
    """

    what: str
    tolerance: float
    checks: list[GradientCheck]
    mistakes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every check passes and no mistake was found; a case that checked nothing has not passed."""
        passed = sum(check.passed(self.tolerance) for check in self.checks)
        return not self.mistakes and passed == len(self.checks) > 0

    def failures(self) -> list[str]:
        """One line per mistake and per wrong gradient, mistakes first."""
        wrong = [f"{self.what}: {check}" for check in self.checks if not check.passed(self.tolerance)]
        return self.mistakes + wrong

    def __str__(self):
        lines = [f"{self.what}: gradients in float64 against centred differences (tolerance {self.tolerance:.0e})",
                 f"  {'gradient':<16}{'rel. error':>11}  {'worst at':<14}{'analytic':>15}  {'numerical':>15}  verdict"]
        for check in self.checks:
            verdict = "right" if check.passed(self.tolerance) else f"WRONG (> {self.tolerance:.0e})"
            lines.append(f"  {check.name:<16}{check.error:>11.2e}  {str(check.index):<14}{check.analytic:>15.6e}  "
                         f"{check.numeric:>15.6e}  {verdict}")
            if check.hint and not check.passed(self.tolerance):
                lines.append(f"  {'':<16}{check.hint}")
        lines += [f"  mistake: {mistake}" for mistake in self.mistakes]
        if self.passed:
            lines.append("passed: every gradient matches")
        else:
            wrong = sum(not check.passed(self.tolerance) for check in self.checks)
            lines.append(f"FAILED: {_count(wrong, 'wrong gradient')}, {_count(len(self.mistakes), 'mistake')}")
        return "\n".join(lines)


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


class _Stop(Exception):
    """A mistake after which nothing more can be checked (the reason is already in the report)."""


def check_layer(layer, x=None, *, input_shape=None, seed: int = 0, tolerance: float = LAYER_TOLERANCE,
                h: float = 1e-5) -> CheckedCase:
    """Check a layer's ``backward`` (yours or the library's): one call from a notebook.

    The layer may be float32: a float64 deep copy is checked (float32 rounding would swamp the numerical estimate),
    and the layer itself is left as it was. The upstream gradient is random, the input is kept off the kink at 0.
    Besides every gradient, the check names each break of the layer protocol: an exception, ``backward`` returning
    None or a gradient of the wrong shape or dtype, a parameter whose ``grad`` was never set, ``dy`` changed in place,
    a second call that gives other gradients (``+=`` where ``=`` belongs), and float32 input giving float64 output.

    Parameters
    ----------
    layer : object with ``forward``, ``backward`` and ``parameters``
    x : array, optional
        The input; by default a standard normal one of ``input_shape``.
    input_shape : tuple of int, optional
        Default ``(4, layer.in_features)`` for a layer that has ``in_features``, else ``(4, 10)``.
    seed : int
        Seeds the input and the upstream gradient.
    tolerance : float
        The largest relative error that passes.

    Returns
    -------
    CheckedCase
        ``passed`` (a bool) and, as ``str``, the table: for the input and each parameter, the relative error, where
        it is worst, the analytic and numerical values there, and the verdict; then the mistakes.

    Examples
    --------
    >>> report = check_layer(MyTanh(), input_shape=(4, 10))
    >>> print(report)            # doctest: +SKIP
    """
    rng = numpy.random.default_rng(seed)
    name = type(layer).__name__
    report = CheckedCase(name, tolerance, [])
    x = _float64_input(x, input_shape or _default_input_shape(layer), rng)
    try:
        twin = _float64_copy(layer)
        named = parameter_names(twin)
        _watch_sublayers(twin, report)
        upstream, dx, grads = _protocol_of_layer(twin, named, x, rng, report)
        report.checks.append(compare("x", lambda _: twin.forward(x), x, dx, upstream, rng=rng, h=h))
        for (path, parameter), gradient in zip(named, grads):
            if gradient is not None:
                report.checks.append(compare(path, lambda _: twin.forward(x), parameter.data, gradient, upstream,
                                             rng=rng, h=h))
        _float32_stays_float32(layer, x, rng, report)
    except _Stop:
        pass
    return report


def _protocol_of_layer(twin, named, x, rng, report):
    """Run forward and backward twice on the float64 copy and note every break of the protocol.

    Returns the upstream gradient, dL/dx and each parameter's gradient (None where it cannot be compared).
    """
    name = type(twin).__name__
    y = _call(report, f"{name}.forward", twin.forward, x)
    _require_array(report, f"{name}.forward", "returned", y, None)
    upstream = rng.standard_normal(y.shape)
    for parameter in twin.parameters():
        parameter.grad = None  # so that a gradient the backward never sets shows as None
    dy = upstream.copy()
    dx = _call(report, f"{name}.backward", twin.backward, dy)
    _dy_untouched(report, f"{name}.backward", dy, upstream)
    _require_array(report, f"{name}.backward", "returned dL/dx", dx, x)
    grads = [_parameter_gradient(report, name, path, parameter) for path, parameter in named]
    _call(report, f"{name}.forward", twin.forward, x)
    again = _call(report, f"{name}.backward", twin.backward, upstream.copy())
    _same_again(report, f"{name}.backward", "dL/dx", dx, again)
    for (path, parameter), gradient in zip(named, grads):
        if gradient is not None:
            _same_again(report, f"{name}.backward", f"parameter {path}'s gradient", gradient, parameter.grad)
    return upstream, dx, grads


def _float32_stays_float32(layer, x, rng, report) -> None:
    """A float32 layer on float32 input must answer in float32: a float64 constant or ``.astype(float)`` in the
    layer would silently make the whole network float64 (twice the memory, half the speed)."""
    parameters = list(layer.parameters())
    if any(not isinstance(p.data, numpy.ndarray) or p.data.dtype != numpy.float32 for p in parameters):
        return
    name = type(layer).__name__
    single = copy.deepcopy(layer)
    x32 = x.astype(numpy.float32)
    y = _call(report, f"{name}.forward (float32)", single.forward, x32)
    dy = rng.standard_normal(y.shape).astype(numpy.float32)
    dx = _call(report, f"{name}.backward (float32)", single.backward, dy)
    arrays = [("its output", y), ("dL/dx", dx)] + [(f"parameter {path}'s gradient", p.grad)
                                                    for path, p in parameter_names(single)]
    for what, array in arrays:
        if getattr(array, "dtype", numpy.float32) != numpy.float32:
            report.mistakes.append(f"{name}: float32 input gave {array.dtype} {what}: a silent upcast (a float64 "
                                   f"array or .astype(float) inside the layer)")


def _call(report, what: str, function, *arguments):
    """``function(*arguments)``, or a mistake in the report naming the exception and the line that raised it."""
    try:
        return function(*arguments)
    except Exception as error:  # the reader's code may raise anything: it becomes a sentence, not a traceback
        report.mistakes.append(f"{what} raised {type(error).__name__}: {error}{where_raised(error)}")
        raise _Stop from error


def where_raised(error: Exception) -> str:
    """" (my_layers.py, line 12)": the last line of the traceback outside this library, if there is one."""
    frames = traceback.extract_tb(error.__traceback__)
    library = (str(Path(__file__).resolve().parent), str(Path(numpy.__file__).resolve().parent))
    outside = [frame for frame in frames if not str(Path(frame.filename).resolve()).startswith(library)]
    frame = (outside or frames or [None])[-1]
    return f" ({Path(frame.filename).name}, line {frame.lineno})" if frame is not None else ""


def _require_array(report, what: str, verb: str, value, like) -> None:
    if value is None or not hasattr(value, "shape"):
        expected = f", shape {tuple(like.shape)}" if like is not None else ""
        report.mistakes.append(f"{what} {verb} {'None' if value is None else type(value).__name__}; it must return "
                               f"an array{expected}" + (" (did a `return` go missing?)" if value is None else ""))
        raise _Stop
    if like is not None and tuple(value.shape) != tuple(like.shape):
        report.mistakes.append(f"{what} {verb} of shape {tuple(value.shape)}; the input has shape "
                               f"{tuple(like.shape)}, and dL/dx must have the input's shape")
        raise _Stop
    if like is not None and value.dtype != like.dtype:
        report.mistakes.append(f"{what} {verb} as {value.dtype}; the input is {like.dtype}, and dL/dx must have "
                               f"the input's dtype")
        raise _Stop


def _parameter_gradient(report, name: str, path: str, parameter):
    """A copy of the gradient backward set for ``parameter``, or None after noting why it cannot be used."""
    grad = parameter.grad
    if grad is None:
        report.mistakes.append(f"{name}: parameter {path}: grad was never set by backward (set "
                               f"self.{path.rsplit('.', 1)[-1]}.grad = dL/d{path.rsplit('.', 1)[-1]})")
        return None
    if not hasattr(grad, "shape") or tuple(grad.shape) != tuple(parameter.data.shape):
        shape = tuple(grad.shape) if hasattr(grad, "shape") else type(grad).__name__
        report.mistakes.append(f"{name}: parameter {path}: grad has shape {shape}, but the parameter has shape "
                               f"{tuple(parameter.data.shape)}; a gradient has its parameter's shape")
        return None
    if grad.dtype != parameter.data.dtype:
        report.mistakes.append(f"{name}: parameter {path}: grad is {grad.dtype}, but the parameter is "
                               f"{parameter.data.dtype}")
        return None
    return numpy.array(grad, dtype=numpy.float64)


def _dy_untouched(report, what: str, dy, before) -> None:
    """The protocol: backward never modifies the gradient it is given (the layer below may still need it)."""
    if isinstance(dy, tuple):
        for part, part_before in zip(dy, before):
            _dy_untouched(report, what, part, part_before)
        return
    if not numpy.array_equal(dy, before):
        where = numpy.unravel_index(int(numpy.argmax(dy != before)), dy.shape)
        report.mistakes.append(f"{what} changed dy in place (dy{list(int(i) for i in where)} was "
                               f"{float(before[where]):.6g}, now {float(dy[where]):.6g}); compute a new array "
                               f"(dx = dy * mask), never dy *= ...")


def _same_again(report, what: str, quantity: str, first, second) -> None:
    """A second forward and backward on the same input must give the same gradients (overwritten, not added)."""
    second = None if second is None else numpy.asarray(second, dtype=numpy.float64)
    if second is not None and second.shape == numpy.shape(first) and numpy.allclose(second, first, rtol=1e-12,
                                                                                   atol=0.0):
        return
    doubled = second is not None and second.shape == numpy.shape(first) and numpy.allclose(second, 2.0 * first)
    reason = ": twice the first, so it is accumulated (+=) where it must be overwritten (=)" if doubled else ""
    report.mistakes.append(f"{what}: a second call on the same input gave a different {quantity}{reason}")


def check_loss(loss, pred=None, target=None, *, input_shape=(4, 10), seed: int = 0,
               tolerance: float = LAYER_TOLERANCE) -> CheckedCase:
    """Check a loss's ``backward`` (yours or the library's) against the numerical gradient of its value.

    ``pred`` and ``target`` default to random arrays of ``input_shape`` suited to ``loss.targets``: probabilities
    in (0.05, 0.95) and targets in [0, 1] for ``"probabilities"``, logits and integer labels for ``"labels"``,
    normal values otherwise. They are checked in float64. Mistakes are named as for :func:`check_layer`.
    """
    rng = numpy.random.default_rng(seed)
    name = type(loss).__name__
    report = CheckedCase(name, tolerance, [])
    pred, target = _loss_inputs(loss, pred, target, input_shape, rng)
    twin = copy.deepcopy(loss)
    try:
        value = _call(report, f"{name}.forward", twin.forward, pred, target)
        if numpy.size(value) != 1:
            report.mistakes.append(f"{name}.forward returned shape {numpy.shape(value)}; a loss is one number")
            raise _Stop
        gradient = _call(report, f"{name}.backward", twin.backward)
        _require_array(report, f"{name}.backward", "returned dL/dpred", gradient, pred)
        gradient = numpy.array(gradient)
        _call(report, f"{name}.forward", twin.forward, pred, target)
        _same_again(report, f"{name}.backward", "dL/dpred", gradient, _call(report, f"{name}.backward", twin.backward))
        report.checks.append(compare("pred", lambda p: twin.forward(p, target), pred, gradient, rng=rng))
    except _Stop:
        pass
    return report


def check_model(model, loss, x=None, target=None, *, input_shape=None, seed: int = 0,
                tolerance: float = MODEL_TOLERANCE, h: float = MODEL_STEP) -> CheckedCase:
    """Check the gradient of ``loss(model(x), target)`` for every parameter of a model (float32 is fine: a float64
    copy is checked), and name the protocol mistakes of any layer in it, each parameter by its path
    (``"encoder.1.W"``).

    ``x`` defaults to numbers in (0.05, 0.95) of shape ``input_shape`` (default ``(4, model.input_features)``);
    ``target`` to ``x``, as an autoencoder's.
    """
    rng = numpy.random.default_rng(seed)
    name = type(model).__name__
    report = CheckedCase(name, tolerance, [])
    if x is None:
        features = getattr(model, "input_features", None)
        x = rng.uniform(0.05, 0.95, input_shape or (4, features() if callable(features) else 10))
    x = numpy.array(to_numpy(x), dtype=numpy.float64)
    target = x if target is None else numpy.array(to_numpy(target), dtype=_target_dtype(target))
    try:
        twin, twin_loss = _float64_copy(model), copy.deepcopy(loss)
        named = parameter_names(twin)
        watched = _watch_sublayers(twin, report)
        for parameter in twin.parameters():
            parameter.grad = None
        _call(report, f"{type(loss).__name__}.forward", twin_loss.forward,
              _call(report, f"{name}.forward", twin.forward, x), target)
        upstream = _call(report, f"{type(loss).__name__}.backward", twin_loss.backward)
        before = tuple(numpy.array(part) for part in upstream) if isinstance(upstream, tuple) else numpy.array(upstream)
        _call(report, f"{name}.backward", twin.backward, upstream)
        if not watched.caught:  # a layer inside that changed its dy has been named already
            _dy_untouched(report, f"{name}.backward", upstream, before)
        grads = [_parameter_gradient(report, _owner(twin, parameter), path, parameter) for path, parameter in named]

        def total_loss(_):
            return twin_loss.forward(twin.forward(x), target)

        total_loss(None)
        _call(report, f"{name}.backward", twin.backward, twin_loss.backward())
        for (path, parameter), gradient in zip(named, grads):
            if gradient is not None:
                _same_again(report, f"{_owner(twin, parameter)}.backward", f"parameter {path}'s gradient", gradient,
                            parameter.grad)
        for (path, parameter), gradient in zip(named, grads):
            if gradient is not None:
                report.checks.append(compare(path, total_loss, parameter.data, gradient, rng=rng, h=h))
    except _Stop:
        pass
    return report


class _Watch:
    """Which sublayers were caught changing their ``dy`` (each is named once)."""

    def __init__(self):
        self.caught = set()


def _watch_sublayers(module, report) -> _Watch:
    """Wrap the ``backward`` of every layer inside ``module`` (a copy) so that one that changes the gradient it is
    given is named with its path (``decoder.1``): a model's own check cannot otherwise tell which layer did it."""
    watch = _Watch()
    for path, layer in _sublayers(module):
        layer.backward = _watched_backward(layer, path, layer.backward, report, watch)
    return watch


def _watched_backward(layer, path: str, backward, report, watch):
    def watched(dy, *arguments, **options):
        before = numpy.array(dy) if isinstance(dy, numpy.ndarray) else None
        result = backward(dy, *arguments, **options)
        inner = any(caught.startswith(f"{path}.") for caught in watch.caught)  # a layer inside it did it
        if before is not None and not inner and path not in watch.caught and not numpy.array_equal(dy, before):
            watch.caught.add(path)
            _dy_untouched(report, f"{type(layer).__name__} ({path}).backward", dy, before)
        return result

    return watched


def _sublayers(module, prefix: str = "", depth: int = 0):
    """(path, layer) for every object inside ``module`` that has ``forward`` and ``backward``, depth first."""
    if depth > 8 or not hasattr(module, "__dict__"):
        return
    for attribute, value in list(vars(module).items()):
        items = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        for index, item in items:
            if not (callable(getattr(item, "forward", None)) and callable(getattr(item, "backward", None))):
                continue
            if index is None:
                path = f"{prefix}{attribute}"
            else:
                path = f"{prefix}{index}" if attribute == "layers" else f"{prefix}{attribute}.{index}"
            yield path, item
            yield from _sublayers(item, f"{path}.", depth + 1)


def _owner(module, parameter) -> str:
    """The class name of the layer that holds ``parameter`` inside ``module``."""
    stack, seen = [module], set()
    while stack:
        current = stack.pop()
        if id(current) in seen or not hasattr(current, "__dict__"):
            continue
        seen.add(id(current))
        for value in vars(current).values():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if item is parameter:
                    return type(current).__name__
                if callable(getattr(item, "parameters", None)):
                    stack.append(item)
    return type(module).__name__


def _default_input_shape(layer) -> tuple[int, ...]:
    if isinstance(getattr(layer, "in_features", None), int):
        return (4, layer.in_features)
    if isinstance(getattr(layer, "in_channels", None), int):
        return (2, layer.in_channels, 6, 6)
    return (4, 10)


def _float64_input(x, shape, rng) -> numpy.ndarray:
    """A float64 NumPy copy of ``x`` (or a standard normal draw of ``shape``), with every number at least 1e-3 from
    0, where ReLU and its kin have a kink that a centred difference must not straddle."""
    x = rng.standard_normal(tuple(shape)) if x is None else numpy.array(to_numpy(x), dtype=numpy.float64)
    margin = 1e-3
    return numpy.where(numpy.abs(x) < margin, numpy.where(x < 0, -margin, margin), x)


def _float64_copy(module):
    """A deep copy whose parameters are float64 NumPy arrays with no gradient; ``module`` is not touched."""
    twin = copy.deepcopy(module)
    for parameter in twin.parameters():
        parameter.data = numpy.array(to_numpy(parameter.data), dtype=numpy.float64)
        parameter.grad = None
    return twin


def _target_dtype(target):
    return numpy.int64 if numpy.issubdtype(numpy.asarray(to_numpy(target)).dtype, numpy.integer) else numpy.float64


def _loss_inputs(loss, pred, target, shape, rng):
    kind = getattr(loss, "targets", "values")
    if pred is None:
        pred = rng.uniform(0.05, 0.95, shape) if kind == "probabilities" else rng.standard_normal(shape)
    pred = numpy.array(to_numpy(pred), dtype=numpy.float64)
    if target is None:
        if kind == "labels":
            target = rng.integers(0, pred.shape[1], size=pred.shape[0])
        elif kind == "probabilities":
            target = rng.uniform(0.0, 1.0, pred.shape)
        else:
            target = pred + numpy.where(rng.random(pred.shape) < 0.5, -1.0, 1.0) * rng.uniform(0.1, 1.0, pred.shape)
    return pred, numpy.array(to_numpy(target), dtype=_target_dtype(target))


# ---------------------------------------------------------------------------------------------------------------
# The whole suite: every layer, every loss and whole models


def off_kinks(x: numpy.ndarray, margin: float = 0.05) -> numpy.ndarray:
    """Move values away from 0, where ReLU has no derivative, so that ``x +- h`` never crosses the kink."""
    return x + numpy.where(x >= 0, margin, -margin)


def check_everything(seed: int = 0) -> list[CheckedCase]:
    """Check every layer, every loss and whole models against numerical gradients, in float64.

    Returns one :class:`CheckedCase` per layer, loss or model; :func:`format_report` lays them out as a table.
    """
    rng = numpy.random.default_rng(seed)
    return (_layer_cases(rng) + _conv_cases(rng) + _loss_cases(rng) + _model_cases(rng) + _vae_cases(rng)
            + _conv_model_cases(rng))


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
                                 layer_checks(layer, layer_input, rng)))
    return cases


def _conv_cases(rng) -> list[CheckedCase]:
    """The convolutional layers where their gradients are easiest to get wrong: padding, stride 2, overlapping
    pooling windows, odd sizes (7 -> 4), output_padding. Pooled inputs are all 1e-3 or more apart, so that no window
    has a tie a step h could flip."""
    from scratchae.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape, UpSampling2D

    f64 = numpy.float64

    def apart(shape):
        size = int(numpy.prod(shape))
        return (rng.permutation(size) * 1e-2 + rng.uniform(0.0, 1e-3, size)).reshape(shape)

    layers = (("Conv2D 2->3 3x3 stride 2 'same' on 7x6", Conv2D(2, 3, 3, stride=2, rng=rng, dtype=f64),
               rng.standard_normal((2, 2, 7, 6))),
              ("Conv2D 4->2 2x3 padding 1 on 5x6", Conv2D(4, 2, (2, 3), padding=1, rng=rng, dtype=f64),
               rng.standard_normal((2, 4, 5, 6))),
              ("ConvTranspose2D 3->2 3x3 stride 2 output_padding 1",
               ConvTranspose2D(3, 2, 3, stride=2, padding=1, output_padding=1, rng=rng, dtype=f64),
               rng.standard_normal((2, 3, 4, 3))),
              ("MaxPool2D 2 'same' 7 -> 4", MaxPool2D(2, padding="same"), apart((2, 2, 7, 7))),
              ("MaxPool2D 3 stride 2 (overlapping windows)", MaxPool2D(3, stride=2), apart((2, 2, 7, 7))),
              ("UpSampling2D 2", UpSampling2D(2), rng.standard_normal((2, 2, 3, 4))),
              ("Flatten", Flatten(), rng.standard_normal((2, 2, 3, 3))),
              ("Reshape((2, 3, 3))", Reshape((2, 3, 3)), rng.standard_normal((2, 18))))
    cases = []
    for what, layer, x in layers:
        for parameter in layer.parameters():
            if parameter.name == "b":
                parameter.data = rng.standard_normal(parameter.shape)
        cases.append(CheckedCase(what, LAYER_TOLERANCE, layer_checks(layer, x, rng)))
    return cases


def _loss_cases(rng) -> list[CheckedCase]:
    probabilities, targets = rng.uniform(0.05, 0.95, (4, 7)), rng.uniform(0.0, 1.0, (4, 7))
    labels = rng.integers(0, 7, size=4)
    return [CheckedCase("MSELoss", LAYER_TOLERANCE, [loss_check(MSELoss(), probabilities.copy(), targets)]),
            CheckedCase("BCELoss", LAYER_TOLERANCE, [loss_check(BCELoss(), probabilities.copy(), targets)]),
            CheckedCase("SoftmaxCrossEntropyLoss", LAYER_TOLERANCE,
                        [loss_check(SoftmaxCrossEntropyLoss(), rng.standard_normal((4, 7)), labels)])]


def _model_cases(rng) -> list[CheckedCase]:
    f64 = numpy.float64

    def stack(sizes, last):
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [Dense(n_in, n_out, rng=rng, dtype=f64), ReLU()]
        layers[-1] = last
        return Sequential(layers)

    def draw():
        model = Autoencoder(stack([12, 8, 6, 4], ReLU()), stack([4, 6, 8, 12], Sigmoid()))
        return _biases_off_zero(model, rng), rng.uniform(0.0, 1.0, (5, 12))

    cases = []
    for loss in (MSELoss(), BCELoss()):
        model, images = _well_posed(draw, loss)
        cases.append(CheckedCase(f"autoencoder 12-8-6-4-6-8-12 + {type(loss).__name__}", MODEL_TOLERANCE,
                                 model_checks(model, loss, images, images, rng, h=MODEL_STEP)))
    return cases


def check_vae_loss(loss, x_hat, mu, logvar, target, **options) -> list[GradientCheck]:
    """Check ``VAELoss.backward()``: its gradient with respect to ``x_hat`` (the reconstruction term) and to ``mu``
    and ``logvar`` (the KL term), each against the numerical gradient of the scalar loss."""
    out = (x_hat, mu, logvar)
    loss.forward(out, target)
    analytic = loss.backward()

    def value(_):
        return loss.forward(out, target)

    return [compare(name, value, array, gradient, **options)
            for name, array, gradient in zip(("x_hat", "mu", "logvar"), out, analytic)]


def check_gaussian_sample(mu, logvar, eps, rng, **options) -> list[GradientCheck]:
    """Check the backward pass of the sample ``z = mu + exp(logvar / 2) * eps`` for a random upstream gradient."""
    dz = rng.standard_normal(mu.shape)
    dmu, dlogvar = gaussian_sample_backward(dz, logvar, eps)

    def z(_):
        return gaussian_sample(mu, logvar, eps)

    return [compare("mu", z, mu, dmu, dz, **options), compare("logvar", z, logvar, dlogvar, dz, **options)]


class WithFixedEps:
    """A variational autoencoder whose every forward pass uses the same ``eps``: a gradient check differentiates one
    function, and a fresh draw at each evaluation would change it."""

    def __init__(self, vae, eps):
        self.vae, self.eps = vae, eps

    def forward(self, x):
        return self.vae.forward(x, eps=self.eps)

    def backward(self, grads):
        self.vae.backward(grads)

    def parts(self):
        return self.vae.parts()

    def parameters(self):
        return self.vae.parameters()

    def named_parameters(self):
        return self.vae.named_parameters()


def _vae_cases(rng) -> list[CheckedCase]:
    n, pixels, latent = 5, 12, 3
    target = rng.uniform(0.0, 1.0, (n, pixels))
    cases = []
    for reconstruction in VAELoss.RECONSTRUCTIONS:
        x_hat, mu = rng.uniform(0.05, 0.95, (n, pixels)), rng.standard_normal((n, latent))
        logvar = 0.5 * rng.standard_normal((n, latent))
        cases.append(CheckedCase(f"VAELoss(reconstruction={reconstruction!r}, beta=0.7): reconstruction and KL",
                                 LAYER_TOLERANCE, check_vae_loss(VAELoss(reconstruction, beta=0.7), x_hat, mu, logvar,
                                                                 target)))
    mu, logvar, eps = (rng.standard_normal((n, latent)), 0.5 * rng.standard_normal((n, latent)),
                       rng.standard_normal((n, latent)))
    cases.append(CheckedCase("the sample z = mu + exp(logvar / 2) * eps", LAYER_TOLERANCE,
                             check_gaussian_sample(mu, logvar, eps, rng)))

    def draw():
        vae = variational_autoencoder(latent, hidden_dim=8, input_dim=pixels, seed=int(rng.integers(1 << 31)),
                                      dtype=numpy.float64)
        return WithFixedEps(_biases_off_zero(vae, rng).train(), rng.standard_normal((n, latent))), target

    for reconstruction in VAELoss.RECONSTRUCTIONS:
        loss = VAELoss(reconstruction)
        fixed, _ = _well_posed(draw, loss)
        cases.append(CheckedCase(f"VAE 12-8-(3, 3)-8-12 + VAELoss({reconstruction!r}), eps held fixed",
                                 MODEL_TOLERANCE, model_checks(fixed, loss, target, target, rng, h=MODEL_STEP)))
    return cases


def _conv_model_cases(rng) -> list[CheckedCase]:
    """The three convolutional models, small (two or three channels, 12 x 12 and 6 x 6 images) but with every layer
    and size rule of the full ones: the conv autoencoder's "same" pooling of 3 rows to 2 and its "valid" convolution,
    the denoiser (checked without noise: the noise has no gradient), and the VAE's stride-2 convolutions and
    transposed convolutions with and without output_padding. Max-pooling windows are drawn again until their two
    largest inputs are apart, as ReLU inputs are kept off their kink."""
    from scratchae.conv import MaxPool2D
    from scratchae.models import conv_autoencoder, conv_denoising_autoencoder, conv_variational_autoencoder

    n, f64 = 3, numpy.float64
    # How far from a kink every value is kept (a ReLU input from 0, the largest input of a pooling window from the
    # next). These models have hundreds of pre-activations, and the margin of 1e-2 of the dense checks would rarely
    # be met by any draw; a step of MODEL_STEP moves each by about MODEL_STEP times an input below 1, a fifth of this.
    margin = 3e-4

    def pooling_gaps(model, x) -> list[float]:
        """For every max-pooling layer, the smallest gap between the largest input of a window and the next (the
        gradient jumps from one to the other where they cross). Windows side by side, as in these models."""
        gaps = []
        for part in model.parts().values():
            for layer in part.layers:
                if isinstance(layer, MaxPool2D):
                    k, (batch, channels, height, width) = layer.pool_size, x.shape
                    rows, cols = -(-height // k) * k, -(-width // k) * k
                    padded = numpy.full((batch, channels, rows, cols), -numpy.inf)
                    padded[:, :, :height, :width] = x
                    windows = padded.reshape(batch, channels, rows // k, k, cols // k, k).transpose(0, 1, 2, 4, 3, 5)
                    ranked = numpy.sort(windows.reshape(batch, channels, rows // k, cols // k, k * k), axis=-1)
                    gaps.append(float(numpy.min(ranked[..., -1] - ranked[..., -2])))
                x = layer.forward(x)
        return gaps

    def seed():
        return int(rng.integers(1 << 31))

    def images(side):
        return rng.uniform(0.0, 1.0, (n, side * side))

    def clear_of_ties(draw):
        def draw_clear():
            for _ in range(100):
                model, inputs = draw()
                if all(gap > margin for gap in pooling_gaps(model, inputs)):
                    return model, inputs
            raise RuntimeError("no draw in 100 gave max-pooling windows without near ties")
        return draw_clear

    autoencoders = (
        ("conv autoencoder (1, 12, 12), channels 2-3-2", clear_of_ties(lambda: (_biases_off_zero(conv_autoencoder(
            image_shape=(1, 12, 12), channels=(2, 3, 2), seed=seed(), dtype=f64), rng), images(12)))),
        ("conv denoising autoencoder (1, 8, 8), 2 channels, no noise", clear_of_ties(lambda: (_biases_off_zero(
            conv_denoising_autoencoder(image_shape=(1, 8, 8), channels=2, seed=seed(), dtype=f64), rng),
            images(8)))))
    cases = []
    for what, draw in autoencoders:
        loss = BCELoss()
        model, inputs = _well_posed(draw, loss, margin=margin)
        cases.append(CheckedCase(f"{what} + BCELoss", MODEL_TOLERANCE,
                                 model_checks(model, loss, inputs, inputs, rng, h=MODEL_STEP)))
    target = images(6)

    def draw_vae():
        vae = conv_variational_autoencoder(2, image_shape=(1, 6, 6), channels=(2, 3), hidden_dim=4, seed=seed(),
                                           dtype=f64)
        return WithFixedEps(_biases_off_zero(vae, rng).train(), rng.standard_normal((n, 2))), target

    loss = VAELoss("bce")
    fixed, _ = _well_posed(draw_vae, loss, margin=margin)
    cases.append(CheckedCase("conv VAE (1, 6, 6), channels 2-3, eps held fixed + VAELoss('bce')", MODEL_TOLERANCE,
                             model_checks(fixed, loss, target, target, rng, h=MODEL_STEP)))
    return cases


def _biases_off_zero(model, rng):
    """Give every Dense layer a small random bias, away from zero.

    Biases start at zero, and a ReLU whose inputs are all zero (a dead unit before it) then sits exactly on its kink,
    where the centred difference sees one side only. Random biases move every pre-activation off the kink.
    """
    for name, parameter in model.named_parameters():
        if name.endswith(".b"):
            parameter.data = off_kinks(0.1 * rng.standard_normal(parameter.shape))
    return model


def _well_posed(draw, loss, margin: float = 1e-2, smallest_gradient: float = 1e-4, tries: int = 100):
    """``draw()`` a (model, inputs) pair again until its gradients can be checked to the model tolerance.

    Two things make a draw unfit. A ReLU input within ``margin`` of 0: ReLU has no derivative there, and a numerical
    derivative taken across the kink is meaningless (a step of :data:`MODEL_STEP` moves every pre-activation far
    less than the margin). And a parameter that barely moves the loss: a centred difference of the loss is rounded
    to about 1e-16 of the loss divided by h, so a parameter whose largest gradient is below ``smallest_gradient``
    times the loss could not be checked to 1e-6 by any step. The inputs of an autoencoder are its targets.
    """
    for _ in range(tries):
        model, inputs = draw()
        value = abs(float(loss.forward(model.forward(inputs), inputs)))
        model.backward(loss.backward())
        relus = [layer for part in model.parts().values() for layer in part.layers if isinstance(layer, ReLU)]
        clear = all(float(numpy.min(numpy.abs(layer.x))) > margin for layer in relus)
        measurable = all(float(numpy.max(numpy.abs(parameter.grad))) >= smallest_gradient * value
                         for _, parameter in model.named_parameters())
        if clear and measurable:
            return model, inputs
    raise RuntimeError(f"no draw in {tries} gave a model whose gradients can be checked")


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
        for mistake in case.mistakes:
            failures += 1
            lines.append(f"{case.what[:57]:<58}{'protocol':<14}{'':>14}  {'':<16}FAIL")
            lines.append(f"    {mistake}")
    lines.append("all gradients match" if failures == 0 else f"{failures} gradient check(s) failed")
    return "\n".join(lines)

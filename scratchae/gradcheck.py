"""Gradient checks of a learner's own layer, loss or model, with a report that names every mistake.

For a layer, loss or model of your own, one call does it all, from a notebook::

    report = check_layer(MyTanh(), input_shape=(4, 10))   # also check_loss(loss), check_model(model, loss)
    print(report)                                          # the table; report.passed is a bool

It checks a float64 copy (your float32 layer is left as it was) with the numerical gradients of
:mod:`scratchae.numerical`, and names every break of the layer protocol on the way: an exception and its line, told
in your words (:mod:`scratchae.mistakes`: the product whose shapes do not fit and the shape its result must have, a
``+=`` on a gradient still None), ``backward`` returning None, a gradient never set or of the wrong shape or dtype,
``dy`` changed in place, gradients added up over calls. A wrong gradient that is the right one transposed, of the
other sign, times a constant, or (for a convolution) with its kernel not flipped, is said to be so.
``scratchae gradcheck --layer my_layers.py:MyTanh`` runs it from a terminal.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy

from scratchae.backend import to_numpy
from scratchae.mistakes import Expected, describe, kernel_turned
from scratchae.numerical import LAYER_TOLERANCE, MODEL_STEP, MODEL_TOLERANCE, GradientCheck, compare, parameter_names

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
    try:
        _has_the_layer_protocol(layer, report)
        x = _float64_input(x, input_shape or _default_input_shape(layer, report), rng)
        twin = _float64_copy(layer)
        named = parameter_names(twin)
        _watch_sublayers(twin, report)
        upstream, dx, grads = _protocol_of_layer(twin, named, x, rng, report)
        input_check = compare("x", lambda _: twin.forward(x), x, dx, upstream, rng=rng, h=h)
        if not input_check.passed(tolerance) and not input_check.hint:
            input_check.hint = kernel_turned(twin, named, x, dx, upstream, tolerance, h)
        report.checks.append(input_check)
        for (path, parameter), gradient in zip(named, grads):
            if gradient is not None:
                report.checks.append(compare(path, lambda _: twin.forward(x), parameter.data, gradient, upstream,
                                             rng=rng, h=h))
        _float32_stays_float32(layer, x, rng, report)
    except _Stop:
        pass
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # the reader's code, run again by the numerical check: a sentence, not a traceback
        report.mistakes.append(describe(f"{name} (in the numerical check)", error))
    return report


def _has_the_layer_protocol(layer, report) -> None:
    """A layer has ``forward``, ``backward`` and ``parameters()``, the last giving Parameters (objects with an
    array ``data``); anything else is named before the check starts."""
    name = type(layer).__name__
    missing = [method for method in ("forward", "backward", "parameters") if not callable(getattr(layer, method, None))]
    if missing:
        report.mistakes.append(f"{name} has no {', '.join(f'{method}()' for method in missing)}: a layer is a class "
                               f"derived from scratchae.Layer (class {name}(Layer)), with forward and backward")
        raise _Stop
    parameters = _call(report, f"{name}.parameters", lambda: list(layer.parameters()))
    for position, parameter in enumerate(parameters):
        if not hasattr(getattr(parameter, "data", None), "shape") or not hasattr(parameter, "grad"):
            report.mistakes.append(f"{name}.parameters() gave {type(parameter).__name__} at position {position}; "
                                   f"it must give the layer's Parameter objects (scratchae.Parameter), each holding "
                                   f"its array in .data")
            raise _Stop


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
    expected = Expected("dL/dx", tuple(x.shape), {"x": tuple(x.shape), "dy": tuple(dy.shape)})
    dx = _call(report, f"{name}.backward", twin.backward, dy, expected=expected)
    _dy_untouched(report, f"{name}.backward", dy, upstream)

    def right(path, array, gradient) -> bool:  # whether ``gradient`` is dL/d(array), for ``upstream``
        check = compare(path, lambda _: twin.forward(x), array, gradient, upstream, rng=0)
        return check.passed(report.tolerance)

    _require_array(report, f"{name}.backward", "returned dL/dx", dx, x, lambda g: right("x", x, g))
    grads = [_parameter_gradient(report, name, path, parameter, lambda g, p=parameter, n=path: right(n, p.data, g))
             for path, parameter in named]
    _call(report, f"{name}.forward", twin.forward, x)
    again = _call(report, f"{name}.backward", twin.backward, upstream.copy(), expected=expected)
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


def _call(report, what: str, function, *arguments, expected: Expected | None = None):
    """``function(*arguments)``, or a mistake in the report naming the exception and the line that raised it, in
    the reader's words where :mod:`scratchae.mistakes` can read them (``expected``: what the result must be)."""
    try:
        return function(*arguments)
    except KeyboardInterrupt:  # Ctrl-C is the reader's wish to stop, not a mistake
        raise
    except BaseException as error:  # the reader's code may raise anything, sys.exit too: a sentence, not a traceback
        report.mistakes.append(describe(what, error, function, expected))
        raise _Stop from error


def _require_array(report, what: str, verb: str, value, like, right=None) -> None:
    """``value`` must be an array of the shape and dtype of ``like``; ``right(candidate)`` (optional) says whether
    an array of ``like``'s shape is the right gradient, to tell a transposed one."""
    if value is None or not hasattr(value, "shape"):
        expected = f", shape {tuple(like.shape)}" if like is not None else ""
        report.mistakes.append(f"{what} {verb} {'None' if value is None else type(value).__name__}; it must return "
                               f"an array{expected}" + (" (did a `return` go missing?)" if value is None else ""))
        raise _Stop
    if like is not None and tuple(value.shape) != tuple(like.shape):
        report.mistakes.append(f"{what} {verb} of shape {tuple(value.shape)}; the input has shape "
                               f"{tuple(like.shape)}, and dL/dx must have the input's shape"
                               + _transposed_note(value, like.shape, right))
        raise _Stop
    if like is not None and value.dtype != like.dtype:
        report.mistakes.append(f"{what} {verb} as {value.dtype}; the input is {like.dtype}, and dL/dx must have "
                               f"the input's dtype")
        raise _Stop


#: Said of a gradient of the transposed shape that is the right one once transposed.
TRANSPOSED = "; transposed, it is the right gradient: swap the product's factors, as (A @ B).T = B.T @ A.T"


def _transposed_note(gradient, shape, right) -> str:
    """:data:`TRANSPOSED` when ``gradient`` (2-d) has the transpose of ``shape`` and, transposed, is ``right``."""
    if right is None or getattr(gradient, "ndim", 0) != 2 or tuple(gradient.shape[::-1]) != tuple(shape):
        return ""
    try:
        return TRANSPOSED if right(numpy.array(to_numpy(gradient), dtype=numpy.float64).T.copy()) else ""
    except Exception:  # the forward of a layer that is wrong in other ways may fail: then nothing is said
        return ""


def _parameter_gradient(report, name: str, path: str, parameter, right=None):
    """A copy of the gradient backward set for ``parameter``, or None after noting why it cannot be used;
    ``right(candidate)`` (optional) says whether an array of the parameter's shape is its right gradient."""
    grad = parameter.grad
    if grad is None:
        report.mistakes.append(f"{name}: parameter {path}: grad was never set by backward (set "
                               f"self.{path.rsplit('.', 1)[-1]}.grad = dL/d{path.rsplit('.', 1)[-1]})")
        return None
    if not hasattr(grad, "shape") or tuple(grad.shape) != tuple(parameter.data.shape):
        shape = tuple(grad.shape) if hasattr(grad, "shape") else type(grad).__name__
        report.mistakes.append(f"{name}: parameter {path}: grad has shape {shape}, but the parameter has shape "
                               f"{tuple(parameter.data.shape)}; a gradient has its parameter's shape"
                               + _transposed_note(grad, parameter.data.shape, right))
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
        expected = Expected("dL/dpred", tuple(pred.shape), {"pred": tuple(pred.shape)})
        gradient = _call(report, f"{name}.backward", twin.backward, expected=expected)
        _require_array(report, f"{name}.backward", "returned dL/dpred", gradient, pred)
        gradient = numpy.array(gradient)
        _call(report, f"{name}.forward", twin.forward, pred, target)
        _same_again(report, f"{name}.backward", "dL/dpred", gradient,
                    _call(report, f"{name}.backward", twin.backward, expected=expected))
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

        def total_loss(_):
            return twin_loss.forward(twin.forward(x), target)

        def right(path, parameter, gradient) -> bool:  # whether ``gradient`` is dL/d(parameter)
            return compare(path, total_loss, parameter.data, gradient, rng=0, h=h).passed(tolerance)

        grads = [_parameter_gradient(report, _owner(twin, parameter), path, parameter,
                                     lambda g, p=parameter, n=path: right(n, p, g)) for path, parameter in named]
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


def _default_input_shape(layer, report) -> tuple[int, ...]:
    for attribute, shape in (("in_features", lambda n: (4, n)), ("in_channels", lambda n: (2, n, 6, 6))):
        size = getattr(layer, attribute, None)
        if isinstance(size, int):
            if size < 1:
                report.mistakes.append(f"{type(layer).__name__}.{attribute} is {size}; it must be at least 1")
                raise _Stop
            return shape(size)
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

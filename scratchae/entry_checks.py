"""What enters training is checked once, at the door: the data (shape, dtype, range, NaN), the targets against the
loss and the model's output, the optimizer against the model, and the options of :func:`scratchae.training.fit`.

Each problem is a ValueError (a TypeError for labels that are not integers) whose one line names it, raised before
any training, so that nothing deep inside the loop (or on every layer's every call) has to check again.
"""

from __future__ import annotations

from scratchae.backend import get_namespace, has_non_finite, is_floating, to_device
from scratchae.history import History
from scratchae.layers import Sigmoid
from scratchae.losses import check_labels
from scratchae.stopping import StopRequest


def check_fit_options(*, shuffle, progress, history, on_epoch_end, stop) -> None:
    """Each of fit's options is of a kind it takes: a wrong one is a ValueError that names it, not a failure deep
    inside the loop (``progress="yes"`` would otherwise be a bare KeyError)."""
    if not isinstance(shuffle, bool):
        raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
    if not (isinstance(progress, bool) or (isinstance(progress, str) and progress == "always")):
        raise ValueError(f"progress must be True (a bar on a terminal), False or 'always', got {progress!r}")
    if history is not None and not isinstance(history, History):
        raise ValueError(f"history must be a History (from an earlier fit or a checkpoint), got "
                         f"{type(history).__name__}")
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise ValueError(f"on_epoch_end must be a function on_epoch_end(epoch, logs), got "
                         f"{type(on_epoch_end).__name__}")
    if stop is not None and not isinstance(stop, StopRequest):
        raise ValueError(f"stop must be a StopRequest, got {type(stop).__name__}")


def check_optimizer(model, optimizer) -> None:
    """The optimizer updates this model's parameters, the very objects (compared by identity, which is cheap).

    An optimizer built on a model that was then built again (a notebook cell run twice) steps the old model's
    weights: the new one would never learn, and nothing would say so.

    Raises
    ------
    ValueError
        If the optimizer holds a parameter that is not one of ``model.parameters()``.
    """
    params = getattr(optimizer, "params", None)
    if not isinstance(params, list):
        raise ValueError(f"optimizer must be an Optimizer such as Adam(model.parameters()), got "
                         f"{type(optimizer).__name__}")
    own = {id(parameter) for parameter in model.parameters()}
    foreign = sum(id(parameter) not in own for parameter in params)
    if foreign:
        raise ValueError(f"{foreign} of the optimizer's {len(params)} parameters are not this model's (was the model "
                         f"built again, e.g. by running its cell twice?); build the optimizer again on this model: "
                         f"optimizer = {type(optimizer).__name__}(model.parameters())")



def prepare_data(model, loss, x, y, what: str):
    """Check data once, where it enters training, and move it to the model's device.

    Raises ValueError naming the problem: not an array, wrong shape for the model, not floating point, a dtype other
    than the model's, no samples, NaN or infinity, inputs and targets of different lengths, or targets the loss
    cannot take (labels for a classifier, numbers in [0, 1] for binary cross-entropy).
    """
    _require_array(x, f"{what}: the inputs")
    features = model.input_features
    if len(x.shape) != 2 or x.shape[1] != features:
        raise ValueError(f"{what}: the model expects inputs of shape (N, {features}), got {tuple(x.shape)}")
    if not is_floating(x):
        raise ValueError(f"{what}: inputs must be floating point (for images: x.astype('float32') / 255), "
                         f"got {x.dtype}")
    if x.dtype != model.dtype:
        raise ValueError(f"{what}: inputs are {x.dtype} but the model's weights are {model.dtype}; "
                         f"convert with x.astype(...)")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: there are no samples")
    if has_non_finite(x):
        raise ValueError(f"{what}: inputs contain NaN or infinite values")
    if y is None and loss.targets == "labels":
        raise ValueError(f"{what}: {type(loss).__name__} compares the model's outputs with class labels; pass them "
                         f"as y")
    if y is not None:
        _require_array(y, f"{what}: the targets")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{what}: {x.shape[0]} inputs but {y.shape[0]} targets")
    _check_targets(model, loss, x if y is None else y, what)
    return to_device(x, model.device), None if y is None else to_device(y, model.device)


def _require_array(array, what: str) -> None:
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        raise ValueError(f"{what} must be an array (for example numpy.asarray(...)), got {type(array).__name__}")


def _check_targets(model, loss, target, what: str) -> None:
    """The targets fit what the loss compares the outputs with (``loss.targets``)."""
    if loss.targets == "labels":
        check_labels(target, target.shape[0], model.output_features, what)
        return
    expected = (target.shape[0], model.output_features)
    if tuple(target.shape) != expected or target.dtype != model.dtype:
        raise ValueError(f"{what}: targets must be {model.dtype} of shape {expected} like the model's outputs, got "
                         f"{target.dtype} of shape {tuple(target.shape)}")
    if has_non_finite(target):
        raise ValueError(f"{what}: targets contain NaN or infinite values")
    if loss.targets == "probabilities":
        low, high = _target_range(target)
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{what}: {type(loss).__name__} compares the outputs with probabilities in [0, 1], but "
                             f"the targets range from {low:g} to {high:g} (scale images to [0, 1], e.g. x / 255)")
    elif _ends_in_sigmoid(model):
        low, high = _target_range(target)
        if low < -SIGMOID_SLACK or high > 1.0 + SIGMOID_SLACK:
            raise ValueError(f"{what}: the model's output is a sigmoid, between 0 and 1, but the targets range from "
                             f"{low:g} to {high:g}, a scale it can never reach (scale images to [0, 1], e.g. x / 255)")


#: How far beyond (0, 1) the targets of a model with a sigmoid output may lie before they are refused as data on
#: another scale (0..255 pixels): a little beyond is only a loss the model cannot bring to zero.
SIGMOID_SLACK = 0.5


def _target_range(target) -> tuple[float, float]:
    xp = get_namespace(target)
    return float(xp.min(target)), float(xp.max(target))


def _ends_in_sigmoid(model) -> bool:
    """Whether the model's output is its last part's last layer, a Sigmoid (a model of the library's kind)."""
    parts = model.parts() if hasattr(model, "parts") else {}
    last = list(parts.values())[-1] if parts else None
    layers = getattr(last, "layers", None)
    return bool(layers) and isinstance(layers[-1], Sigmoid)


def prepare_validation(model, loss, validation):
    if validation is None:
        return None
    if isinstance(validation, (tuple, list)):
        if len(validation) != 2:
            raise ValueError(f"validation must be x_val or a pair (x_val, y_val), got a {type(validation).__name__} "
                             f"of {len(validation)} items")
        x_val, y_val = validation
    else:
        x_val, y_val = validation, None
    return prepare_data(model, loss, x_val, y_val, "validation data")

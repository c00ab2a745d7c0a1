"""Optimizers: they read ``Parameter.grad`` (set by the last backward) and update ``Parameter.data`` in place.

State (momentum, Adam's moments) belongs to one Parameter object each, is created on the first ``step`` on the
parameter's own device and in its dtype, and is never shared: two parameters of the same shape get two states. A
model cast or moved with ``Model.to`` after training has its optimizer's state cast and moved with it by
:meth:`Optimizer.follow_parameters`, which ``fit`` and ``checkpoint.save`` call once, at their door, not at every
step. Hyperparameters are kept as Python floats, so float32 arrays stay float32.

These are the lesson's forms: ``Adam.update`` is its docstring's formula line by line. The engine's
:class:`scratchae.engine.adam.FastAdam` computes the same update with fewer passes over memory.
"""

from __future__ import annotations

import abc

from scratchae.backend import device_of, get_namespace, to_device
from scratchae.validate import require_float


class Optimizer(abc.ABC):
    """Base class: holds the parameters and checks the learning rate."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        self.lr = require_float("lr", lr, above=0.0)
        self.steps = 0

    def step(self) -> None:
        """Apply the gradients that the last backward set, to every parameter."""
        self.count_step()
        for index, parameter in enumerate(self.params):
            self.update(index, parameter)

    def count_step(self) -> None:
        """Count one more step; at the first, name any parameter that backward never reaches (a check once, at the
        door, not at every step)."""
        if self.steps == 0:
            self.require_gradients()
        self.steps += 1

    def require_gradients(self) -> None:
        """Raise a RuntimeError naming every parameter that has no gradient (backward was not called, or does not
        reach it). ``step`` checks once, at the first step: a check at the door, not at every step."""
        missing = [getattr(parameter, "path", parameter.name) for parameter in self.params if parameter.grad is None]
        if missing:
            raise RuntimeError(f"{type(self).__name__}.step: no gradient for parameter(s) {missing}; "
                               f"call backward before step")

    @abc.abstractmethod
    def update(self, index: int, parameter) -> None:
        """Update one parameter in place from its gradient (each optimizer's own rule)."""

    def follow_parameters(self) -> None:
        """Give every state array its parameter's dtype and device, which ``Model.to`` may have changed since the
        state was made (``model.to(dtype=numpy.float64)`` after training): the state is cast and moved with the
        parameters, so that the next step and a saved checkpoint see one dtype. One comparison per array when
        nothing changed."""
        for arrays in self.state_arrays().values():
            for index, (array, parameter) in enumerate(zip(arrays, self.params)):
                if array is None:
                    continue
                device = device_of(parameter.data)
                if array.dtype != parameter.data.dtype or device_of(array) != device:
                    arrays[index] = to_device(array, device).astype(parameter.data.dtype)

    def state_dict(self) -> dict:
        """Step count, hyperparameters and per-parameter state arrays (for checkpoints)."""
        self.follow_parameters()
        return {"steps": self.steps, "hyperparameters": self.hyperparameters(), "state": self.state_arrays()}

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}

    def state_arrays(self) -> dict[str, list]:
        return {}

    def load_state_arrays(self, steps: int, arrays: dict[str, list]) -> None:
        """Restore what ``state_dict`` saved; arrays must already be on the parameters' device."""
        self.steps = steps
        for name, values in arrays.items():
            setattr(self, name, list(values))

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.hyperparameters().items())
        return f"{type(self).__name__}({arguments})"


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (heavy-ball) momentum, as ``torch.optim.SGD``:

    :math:`v \leftarrow \mu v + g`, :math:`\theta \leftarrow \theta - \eta v` (plain :math:`\theta - \eta g` when
    :math:`\mu = 0`).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = require_float("momentum", momentum, minimum=0.0, below=1.0)
        self.velocity = [None] * len(self.params)

    def update(self, index, parameter):
        if self.momentum == 0.0:
            parameter.data -= self.lr * parameter.grad
            return
        xp = get_namespace(parameter.data)
        if self.velocity[index] is None:
            self.velocity[index] = xp.zeros_like(parameter.data)
        velocity = self.velocity[index]
        velocity *= self.momentum
        velocity += parameter.grad
        parameter.data -= self.lr * velocity

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum}

    def state_arrays(self):
        return {"velocity": self.velocity} if self.momentum else {}


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with weight decay as ``torch.optim.Adam`` applies it (added to the gradient).

    For each parameter :math:`\theta` with gradient :math:`g`, at step :math:`t`:

    .. math::
        g &\leftarrow g + \lambda \theta \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \qquad v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat m &= m / (1 - \beta_1^t) \qquad \hat v = v / (1 - \beta_2^t) \\
        \theta &\leftarrow \theta - \eta \, \hat m / (\sqrt{\hat v} + \epsilon)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        beta1, beta2 = betas
        self.beta1 = require_float("betas[0]", beta1, minimum=0.0, below=1.0)
        self.beta2 = require_float("betas[1]", beta2, minimum=0.0, below=1.0)
        self.eps = require_float("eps", eps, above=0.0)
        self.weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
        self.m = [None] * len(self.params)  # first moments, one array per parameter
        self.v = [None] * len(self.params)  # second moments

    def update(self, index, parameter):
        """One Adam step for one parameter: the docstring's formula, line by line."""
        xp = get_namespace(parameter.data)
        if self.m[index] is None:  # the first step: both moments start at zero
            self.m[index], self.v[index] = xp.zeros_like(parameter.data), xp.zeros_like(parameter.data)
        g = parameter.grad + self.weight_decay * parameter.data  # (shape of the parameter), the L2 penalty's gradient
        self.m[index] = self.beta1 * self.m[index] + (1.0 - self.beta1) * g  # running mean of g
        self.v[index] = self.beta2 * self.v[index] + (1.0 - self.beta2) * g * g  # running mean of g^2
        m_hat = self.m[index] / (1.0 - self.beta1**self.steps)  # bias corrections: m and v start at 0, so early
        v_hat = self.v[index] / (1.0 - self.beta2**self.steps)  # on they are too small by these factors
        parameter.data -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)  # in place: the model sees the new weights

    def hyperparameters(self):
        return {"lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps, "weight_decay": self.weight_decay}

    def state_arrays(self):
        return {"m": self.m, "v": self.v}

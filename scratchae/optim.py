"""Optimizers: they read ``Parameter.grad`` (set by the last backward) and update ``Parameter.data`` in place.

State (momentum, Adam's moments) belongs to one Parameter object each, is created on the first ``step`` on the
parameter's own device and in its dtype, and is never shared: two parameters of the same shape get two states. It
follows its parameter: a model cast or moved with ``Model.to`` after training has its optimizer's state cast and
moved with it at the next step or save.
Hyperparameters are kept as Python floats, so float32 arrays stay float32.
"""

from __future__ import annotations

import abc
import math

from scratchae.backend import device_of, fused, get_namespace, to_device
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
        missing = [getattr(parameter, "path", parameter.name) for parameter in self.params if parameter.grad is None]
        if missing:
            raise RuntimeError(f"{type(self).__name__}.step: no gradient for parameter(s) {missing}; "
                               f"call backward before step")
        self.follow_parameters()
        self.steps += 1
        for index, parameter in enumerate(self.params):
            self.update(index, parameter)

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
        xp = get_namespace(parameter.data)
        if self.m[index] is None:
            self.m[index] = xp.zeros_like(parameter.data)
            self.v[index] = xp.zeros_like(parameter.data)
        g = parameter.grad
        if self.weight_decay:
            g = g + self.weight_decay * parameter.data  # the L2 penalty's gradient, as torch.optim.Adam adds it
        # lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / bc1 and v_hat = v / bc2, equals
        # step_size * m / (sqrt(v) + eps_hat) once numerator and denominator are multiplied by sqrt(bc2):
        # the bias corrections fold into two numbers, and no separate m_hat and v_hat arrays are needed.
        sqrt_bc2 = math.sqrt(1.0 - self.beta2 ** self.steps)
        step_size = self.lr * sqrt_bc2 / (1.0 - self.beta1 ** self.steps)
        eps_hat = self.eps * sqrt_bc2
        adam_update(parameter.data, g, self.m[index], self.v[index], self.beta1, 1.0 - self.beta1, self.beta2,
                    1.0 - self.beta2, step_size, eps_hat)

    def hyperparameters(self):
        return {"lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps, "weight_decay": self.weight_decay}

    def state_arrays(self):
        return {"m": self.m, "v": self.v}


@fused
def adam_update(xp, param, g, m, v, beta1, rest1, beta2, rest2, step_size, eps_hat):
    """One Adam step for one parameter, in place: ``param``, ``m`` and ``v`` change; every array has its shape.

    ``rest1`` and ``rest2`` are 1 - beta1 and 1 - beta2, passed in rather than computed here: in a fused GPU kernel a
    number computed inside is float64, and would make the float32 arithmetic float64. In-place updates (``m *= ...``)
    reuse the state arrays instead of allocating new ones each step.
    """
    m *= beta1
    m += rest1 * g  # m = beta1 m + (1 - beta1) g
    v *= beta2
    v += rest2 * (g * g)  # v = beta2 v + (1 - beta2) g^2
    denominator = xp.sqrt(v)
    denominator += eps_hat
    step = m / denominator
    step *= step_size
    param -= step  # param = param - step_size * m / (sqrt(v) + eps_hat)

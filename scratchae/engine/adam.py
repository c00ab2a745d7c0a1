"""The engine's Adam: the lesson's update with the bias corrections folded into two numbers, in place.

The lesson (:class:`scratchae.optim.Adam`) computes ``lr * m_hat / (sqrt(v_hat) + eps)`` with
``m_hat = m / bc1`` and ``v_hat = v / bc2`` (``bc1 = 1 - beta1^t``, ``bc2 = 1 - beta2^t``). Multiplying numerator and
denominator by ``sqrt(bc2)`` gives the same number as

    step_size * m / (sqrt(v) + eps_hat),   step_size = lr * sqrt(bc2) / bc1,   eps_hat = eps * sqrt(bc2),

with no ``m_hat`` and ``v_hat`` arrays: fewer passes over memory, and every state array updated in place. On a GPU
the whole update is one fused kernel (:func:`scratchae.backend.fused`). The results agree with the lesson's to
float rounding (``tests/test_engine.py``).
"""

from __future__ import annotations

import math

from scratchae.backend import fused, get_namespace
from scratchae.optim import Adam


class FastAdam(Adam):
    """:class:`scratchae.optim.Adam`, folded and in place; the same hyperparameters, state and checkpoint entries."""

    saved_as = "Adam"

    def update(self, index, parameter):
        if self.m[index] is None:
            xp = get_namespace(parameter.data)
            self.m[index], self.v[index] = xp.zeros_like(parameter.data), xp.zeros_like(parameter.data)
        g = parameter.grad
        if self.weight_decay:
            g = g + self.weight_decay * parameter.data  # the L2 penalty's gradient, as torch.optim.Adam adds it
        sqrt_bc2 = math.sqrt(1.0 - self.beta2**self.steps)
        step_size = self.lr * sqrt_bc2 / (1.0 - self.beta1**self.steps)
        adam_update(parameter.data, g, self.m[index], self.v[index], self.beta1, 1.0 - self.beta1, self.beta2,
                    1.0 - self.beta2, step_size, self.eps * sqrt_bc2)


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

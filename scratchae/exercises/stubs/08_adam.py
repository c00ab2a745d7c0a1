"""Exercise adam: one step of the Adam optimizer (Kingma & Ba, 2015).

For a parameter theta with gradient g, at step t = 1, 2, ...:

    m <- beta1 m + (1 - beta1) g            v <- beta2 v + (1 - beta2) g^2
    m_hat = m / (1 - beta1^t)               v_hat = v / (1 - beta2^t)
    theta <- theta - lr m_hat / (sqrt(v_hat) + eps)

Write ``update``, which applies this to one parameter.

Check it with ``scratchae exercises check . adam``: a few steps against the library's Adam.
"""

import numpy

from scratchae.optim import Optimizer


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.m = [numpy.zeros_like(p.data) for p in self.params]  # first moments, one array per parameter
        self.v = [numpy.zeros_like(p.data) for p in self.params]  # second moments

    def update(self, index, parameter):
        """Update ``parameter.data`` in place (shape (any,), same as ``parameter.grad``) from ``parameter.grad``.

        ``self.steps`` is t: ``step()`` has already counted this step (1 on the first call). ``self.m[index]`` and
        ``self.v[index]`` are this parameter's moments, of its shape. Which quantities are corrected for their bias
        towards zero, and why does the correction matter most in the first steps? Keep float32 parameters float32
        (the hyperparameters are Python floats, so they do not promote the arrays) and leave ``parameter.grad``
        unchanged.
        """
        raise NotImplementedError("exercise adam: write Adam.update")

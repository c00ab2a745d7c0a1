"""Loss functions with hand-written gradients.

``loss.forward(pred, target)`` returns the mean loss as a 0-d array (call ``float()`` on it only to log it: on a GPU
that waits for the device). ``loss.backward()`` returns ``dL/dpred``, the array that starts backpropagation.
"""

from __future__ import annotations

from scratchae.backend import arange_like, get_namespace


class Loss:
    """Base class: keeps the cache between ``forward`` and ``backward``."""

    def __init__(self):
        self.cache = None

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def _cached(self):
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward was called before forward: there is no loss to differentiate")
        return self.cache

    def __repr__(self):
        return f"{type(self).__name__}()"


def _check_same_shape(loss: Loss, pred, target) -> None:
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"{type(loss).__name__}: pred has shape {tuple(pred.shape)} but target has shape "
                         f"{tuple(target.shape)}; they must match")
    if pred.dtype != target.dtype:
        raise TypeError(f"{type(loss).__name__}: pred is {pred.dtype} but target is {target.dtype}; "
                        f"they must match (mixing dtypes would silently upcast)")


class MSELoss(Loss):
    r"""Mean squared error over every element: :math:`L = \frac{1}{M} \sum_i (p_i - t_i)^2`, M = N * D.

    :math:`\partial L / \partial p_i = 2 (p_i - t_i) / M`.
    """

    def forward(self, pred, target):
        """pred, target: (N, D) -> 0-d array."""
        _check_same_shape(self, pred, target)
        xp = get_namespace(pred, target)
        diff = pred - target  # (N, D)
        self.cache = diff
        flat = xp.reshape(diff, (-1,))  # (N * D,)
        return (flat @ flat) / _count(diff)  # (), the dot product of diff with itself is its sum of squares

    def backward(self):
        """-> dL/dpred: (N, D)."""
        diff = self._cached()
        return (2.0 / _count(diff)) * diff  # (N, D)


class BCELoss(Loss):
    r"""Binary cross-entropy on probabilities, as Keras computes it.

    :math:`L = -\frac{1}{M} \sum_i t_i \log p_i + (1 - t_i) \log(1 - p_i)`, with ``p`` first clipped to
    :math:`[\epsilon, 1 - \epsilon]` (Keras's ``epsilon = 1e-7``), so ``log(0)`` never happens and the loss is never
    NaN or infinite. Where the clip is active the gradient is zero, as for any clip.

    :math:`\partial L / \partial p_i = \frac{p_i - t_i}{p_i (1 - p_i)} / M` inside the clip range.
    """

    def __init__(self, epsilon: float = 1e-7):
        super().__init__()
        if not 0.0 < epsilon < 0.5:
            raise ValueError(f"epsilon must lie in (0, 0.5), got {epsilon}")
        self.epsilon = float(epsilon)

    def forward(self, pred, target):
        """pred, target: (N, D), pred in [0, 1] -> 0-d array."""
        _check_same_shape(self, pred, target)
        xp = get_namespace(pred, target)
        p = xp.clip(pred, self.epsilon, 1.0 - self.epsilon)  # (N, D)
        inside = (pred >= self.epsilon) & (pred <= 1.0 - self.epsilon)  # (N, D), where the clip passes gradients
        self.cache = (p, target, inside)
        return -xp.mean(target * xp.log(p) + (1.0 - target) * xp.log(1.0 - p))  # ()

    def backward(self):
        """-> dL/dpred: (N, D)."""
        p, target, inside = self._cached()
        xp = get_namespace(p)
        dp = (p - target) / (p * (1.0 - p) * _count(p))  # (N, D)
        return xp.where(inside, dp, 0.0)  # (N, D)


class SoftmaxCrossEntropyLoss(Loss):
    r"""Softmax followed by cross-entropy, on raw scores (logits) and integer class labels.

    :math:`L = \frac{1}{N} \sum_n \left(\log \sum_c e^{z_{nc}} - z_{n y_n}\right)`, with the log-sum-exp computed
    after subtracting each row's maximum so that ``exp`` never overflows.
    :math:`\partial L / \partial z = (\mathrm{softmax}(z) - \mathrm{onehot}(y)) / N`.
    """

    def forward(self, logits, labels):
        """logits: (N, C) floats, labels: (N,) integers in [0, C) -> 0-d array."""
        xp = get_namespace(logits, labels)
        _check_labels(logits, labels, xp)
        shifted = logits - xp.max(logits, axis=1, keepdims=True)  # (N, C), max of each row is 0
        log_sum_exp = xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))  # (N, 1)
        log_probs = shifted - log_sum_exp  # (N, C)
        one_hot = xp.astype(labels[:, None] == arange_like(logits.shape[1], logits), logits.dtype)  # (N, C)
        self.cache = (log_probs, one_hot)
        return -xp.sum(log_probs * one_hot) / logits.shape[0]  # ()

    def backward(self):
        """-> dL/dlogits: (N, C)."""
        log_probs, one_hot = self._cached()
        xp = get_namespace(log_probs)
        return (xp.exp(log_probs) - one_hot) / log_probs.shape[0]  # (N, C)


def _check_labels(logits, labels, xp) -> None:
    if len(logits.shape) != 2:
        raise ValueError(f"SoftmaxCrossEntropyLoss: logits must have shape (N, C), got {tuple(logits.shape)}")
    if not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(f"SoftmaxCrossEntropyLoss: labels must be integers (class indices), got dtype {labels.dtype}")
    if tuple(labels.shape) != (logits.shape[0],):
        raise ValueError(f"SoftmaxCrossEntropyLoss: labels must have shape ({logits.shape[0]},) to match logits "
                         f"{tuple(logits.shape)}, got {tuple(labels.shape)}")
    n_classes = logits.shape[1]
    if bool(xp.any((labels < 0) | (labels >= n_classes))):
        raise ValueError(f"SoftmaxCrossEntropyLoss: labels must lie in [0, {n_classes - 1}] for {n_classes} classes, "
                         f"got values from {int(xp.min(labels))} to {int(xp.max(labels))}")


def _count(array) -> int:
    """Number of elements, as a Python int (a Python number keeps float32 arrays float32)."""
    count = 1
    for size in array.shape:
        count *= size
    return count

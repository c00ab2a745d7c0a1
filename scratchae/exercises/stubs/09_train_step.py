"""Exercise train_step: one step of training, four lines.

Everything it needs exists already: a model with ``forward`` and ``backward``, a loss with ``forward`` and
``backward``, an optimizer with ``step``. Put them together.

Check it with ``scratchae exercises check . train_step``: a few steps against the library's train_step.
"""


def train_step(model, loss, optimizer, x, y=None):
    """One step of gradient descent on one batch; returns the batch's loss as a Python float.

    model : has ``forward(x)`` -> its output, and ``backward(gradient of the loss with respect to that output)``,
        which sets every parameter's gradient.
    loss : ``forward(output, target)`` -> a 0-d array; ``backward()`` -> the gradient with respect to ``output``.
    optimizer : ``step()`` moves every parameter using its gradient.
    x : (N, D) the batch; y : its targets, or None for an autoencoder, whose target is x itself.

    In which order must these four calls come, and what does each take from the one before?
    """
    raise NotImplementedError("exercise train_step: write train_step")

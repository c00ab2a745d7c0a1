"""Going back when training diverges: a copy of what one epoch changes, to restore if its loss or its weights stop
being numbers (NaN or infinity), so that the model is left at the last state whose weights were all finite."""

from __future__ import annotations

import copy

from scratchae.backend import copy_of, has_non_finite
from scratchae.stopping import TrainingDiverged


def weights_are_finite(model) -> bool:
    """One reduction per parameter: cheap enough to run after every epoch."""
    return not any(has_non_finite(parameter.data) for parameter in model.parameters())


class Snapshot:
    """A copy of what one epoch changes (weights, optimizer state, the model's random-draw counters, the history's
    unfinished epoch), to go back to if that epoch diverges."""

    def __init__(self, model, optimizer, history):
        self.model, self.optimizer, self.history = model, optimizer, history
        self.weights = [copy_of(parameter.data) for parameter in model.parameters()]
        self.steps = optimizer.steps
        self.state = {name: [None if array is None else copy_of(array) for array in arrays]
                      for name, arrays in optimizer.state_arrays().items()}
        self.counters = model.counters()
        self.unfinished = copy.deepcopy(history.unfinished)
        self.epochs = len(history)

    def restore(self, what_happened: str) -> TrainingDiverged:
        """Put everything back; returns the error that says so."""
        for parameter, weights in zip(self.model.parameters(), self.weights, strict=True):
            parameter.data, parameter.grad = weights, None
        self.optimizer.load_state_arrays(self.steps, self.state)
        self.model.set_counters(self.counters)
        self.history.unfinished = self.unfinished
        if self.unfinished:
            where = f"batch {self.unfinished['batches']} of epoch {self.epochs + 1}, where this run resumed"
        else:
            where = f"the end of epoch {self.epochs}" if self.epochs else "its weights before training"
        return TrainingDiverged(f"{what_happened}; the model is back at {where}, the last state whose weights were "
                                f"all finite (try a smaller learning rate, or a smaller weight on a term of the loss)")

"""What a training run records: the mean of each measure over every epoch's samples (:class:`History`), added up
batch by batch (:func:`add_batch`). :func:`scratchae.training.fit` keeps one; a checkpoint saves it."""

from __future__ import annotations


class History:
    """Per-epoch records of a run, as Keras keeps them: ``history["loss"]``, ``history["val_loss"]``, ...

    Attributes
    ----------
    metrics : dict[str, list[float]]
        ``loss`` (the mean training loss over the epoch's samples) and whatever else the loss measures
        (``accuracy`` for a classifier, ``reconstruction`` and ``kl`` for a VAE), each also as ``val_...`` when there
        is validation data.
    seconds : list[float]
        Wall-clock time of each epoch (kept apart from ``metrics``, which a seeded run repeats exactly).
    interrupted : bool
        True when Ctrl-C stopped the run early.
    unfinished : dict or None
        Where an interrupted epoch stopped: ``{"batches": done, "sums": {...}, "samples": n, "seconds": s}``;
        :func:`fit` given this history carries on from there. None between epochs.
    """

    def __init__(self, metrics: dict[str, list[float]] | None = None, seconds: list[float] | None = None):
        self.metrics = {name: list(values) for name, values in (metrics or {}).items()}
        self.seconds = list(seconds or [])
        self.interrupted = False
        self.unfinished = None

    def __getitem__(self, name: str) -> list[float]:
        return self.metrics[name]

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    def __len__(self) -> int:
        """The number of whole epochs recorded."""
        return len(self.metrics.get("loss", []))

    def record(self, logs: dict[str, float], seconds: float) -> None:
        for name, value in logs.items():
            self.metrics.setdefault(name, []).append(value)
        self.seconds.append(seconds)

    def final(self) -> dict[str, float]:
        """The last epoch's value of every metric."""
        return {name: values[-1] for name, values in self.metrics.items() if values}

    def plot(self, title: str = "Loss during training", **options):
        """The loss curves as a matplotlib Figure (see :func:`scratchae.plots.loss_curves`)."""
        from scratchae import plots  # matplotlib is imported only when a figure is asked for

        return plots.loss_curves({name: values for name, values in self.metrics.items() if "loss" in name},
                                 title=title, **options)

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "seconds": self.seconds, "interrupted": self.interrupted,
                "unfinished": self.unfinished}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        history = cls(data.get("metrics"), data.get("seconds"))
        history.interrupted = bool(data.get("interrupted", False))
        history.unfinished = data.get("unfinished")
        return history

    def to_csv(self) -> str:
        """One row per epoch: epoch, every metric, seconds (:func:`scratchae.history_csv.history_csv`)."""
        from scratchae.history_csv import history_csv  # a file format, loaded when asked for

        return history_csv(self)

    def __repr__(self):
        return f"History(epochs={len(self)}, final={self.final()})"


def add_batch(totals: dict, values: dict[str, float], n: int) -> None:
    """Add one batch's means to running sums, each weighted by the batch's size (as Keras averages)."""
    totals["batches"] += 1
    totals["samples"] += n
    for name, value in values.items():
        totals["sums"][name] = totals["sums"].get(name, 0.0) + value * n

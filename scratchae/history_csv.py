"""A run's history as CSV: one row per epoch (epoch, every metric, seconds), for a spreadsheet or pandas."""

from __future__ import annotations


def history_csv(history) -> str:
    """The rows of :class:`scratchae.training.History` ``history``: a header, then one line per whole epoch."""
    names = sorted(history.metrics)
    lines = [",".join(["epoch", *names, "seconds"])]
    for epoch in range(len(history)):
        values = [_csv_value(history.metrics[name], epoch) for name in names]
        lines.append(",".join([str(epoch + 1), *values, _csv_value(history.seconds, epoch)]))
    return "\n".join(lines) + "\n"


def _csv_value(values: list[float], index: int) -> str:
    return repr(values[index]) if index < len(values) else ""

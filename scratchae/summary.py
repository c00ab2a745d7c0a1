"""A Keras-style summary of a network: each layer's output shape and parameter count, and the total."""

from __future__ import annotations

from scratchae.layers import Sequential
from scratchae.shapes import output_shape


def summary(network: Sequential, input_shape) -> str:
    """A Keras-style table of one network's layers: output shapes, parameter counts and the total.

    ``input_shape`` is the shape of one sample, such as ``(784,)`` or ``(1, 28, 28)``; a number is a feature size.
    """
    return format_summary(summary_rows(network, input_shape))


def summary_rows(network: Sequential, input_shape, prefix: str = "") -> list[tuple[str, str, int]]:
    """One ``(layer, output shape, parameter count)`` row per layer of ``network``: ``(None, 784)`` for flat
    features, ``(None, C, H, W)`` for images (None stands for the batch size)."""
    rows, shape = [], (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    for index, layer in enumerate(network.layers):
        shape = output_shape(layer, shape)
        count = sum(parameter.size for parameter in layer.parameters())
        rows.append((f"{prefix}{index} {type(layer).__name__}", f"(None, {', '.join(map(str, shape))})", count))
    return rows


def format_summary(rows: list[tuple[str, str, int]]) -> str:
    """Lay out ``(layer, output shape, parameter count)`` rows as a text table with a total."""
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(header[0]), *(len(row[0]) for row in rows)) + 2,
              max(len(header[1]), *(len(row[1]) for row in rows)) + 2, 12]
    rule = "-" * sum(widths)
    lines = [rule, f"{header[0]:<{widths[0]}}{header[1]:<{widths[1]}}{header[2]:>{widths[2]}}", "=" * sum(widths)]
    lines += [f"{name:<{widths[0]}}{shape:<{widths[1]}}{count:>{widths[2]},}" for name, shape, count in rows]
    lines += [rule, f"Total params: {sum(row[2] for row in rows):,}", rule]
    return "\n".join(lines)

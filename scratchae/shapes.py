"""Shapes: what one sample looks like after a layer, a network or a model's first layers, found without running it.

A summary, a checkpoint (before it allocates any weight) and the PyTorch twin all need to know the shape of a sample
after each layer. Image layers answer with their own ``output_shape`` (:class:`scratchae.conv.ShapedLayer`), flat
layers with ``output_features``; this module walks a network with them, in one place.
"""

from __future__ import annotations

import math

from scratchae.conv import Reshape, ShapedLayer
from scratchae.layers import Dense, Layer, Sequential


def output_shape(layer: Layer, input_shape: tuple) -> tuple:
    """The shape of one sample after ``layer`` (a Sequential too), from the shape of one sample before it.

    Layers of this module answer with their own ``output_shape``; other layers with ``output_features`` on flat
    samples; layers without parameters (ReLU, Sigmoid, Identity) act elementwise and keep any shape.
    """
    input_shape = tuple(input_shape)
    if hasattr(layer, "layers"):
        for inner in layer.layers:
            input_shape = output_shape(inner, input_shape)
        return input_shape
    if isinstance(layer, ShapedLayer):
        return tuple(layer.output_shape(input_shape))
    if len(input_shape) == 1:
        return (layer.output_features(input_shape[0]),)
    if not layer.parameters():
        return input_shape
    raise ValueError(f"{layer!r} takes flat features, not images of shape {input_shape}; put a Flatten() before it")


def input_features(network: Sequential) -> int:
    """The feature size a network takes: that of its first Dense layer or first Reshape, whichever comes first."""
    for layer in network.layers:
        if isinstance(layer, Dense):
            return layer.in_features
        if isinstance(layer, Reshape):
            return math.prod(layer.shape)
    raise ValueError(f"the network has no Dense layer and no Reshape, so its input size is unknown: {network!r}")

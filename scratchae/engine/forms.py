"""Which floor a model runs: :func:`fast` swaps every lesson layer for its engine form, :func:`lesson` back.

A swap keeps the layer's own Parameter objects (the same weights, the same optimizer state) and its configuration:
only the class changes, so the model computes the same numbers by other means, and its checkpoint is the same file.
"""

from __future__ import annotations

from scratchae.conv import Conv2D, ConvTranspose2D, MaxPool2D, UpSampling2D
from scratchae.engine.conv import FastConv2D, FastConvTranspose2D, FastMaxPool2D, FastUpSampling2D
from scratchae.engine.elementwise import FastDense, FastReLU, FastSigmoid
from scratchae.layers import Dense, ReLU, Sigmoid

#: Each lesson class and the engine form that stands in for it.
ENGINE_FORMS = {Conv2D: FastConv2D, ConvTranspose2D: FastConvTranspose2D, MaxPool2D: FastMaxPool2D,
                UpSampling2D: FastUpSampling2D, Dense: FastDense, ReLU: FastReLU, Sigmoid: FastSigmoid}

#: Each engine form and the lesson class it stands in for.
LESSON_FORMS = {fast_form: lesson_form for lesson_form, fast_form in ENGINE_FORMS.items()}


def fast(model):
    """Put the engine's form of every layer of ``model`` (a model or a Sequential) in place; returns ``model``."""
    return _swap(model, ENGINE_FORMS)


def lesson(model):
    """Put the lesson's form of every layer of ``model`` back in place; returns ``model``."""
    return _swap(model, LESSON_FORMS)


def is_fast(model) -> bool:
    """Whether any layer of ``model`` is an engine form."""
    return any(type(layer) in LESSON_FORMS for layer in _layers(model))


def _swap(model, forms: dict):
    for layer in _layers(model):
        layer.__class__ = forms.get(type(layer), type(layer))  # same attributes, same Parameters: another class
    return model


def _layers(model):
    """Every layer inside ``model``: the layers of its parts (a model), or of itself (a Sequential)."""
    networks = model.parts().values() if hasattr(model, "parts") else [model]
    for network in networks:
        yield from _inner(network)


def _inner(layer):
    if hasattr(layer, "layers"):
        for inner in layer.layers:
            yield from _inner(inner)
    else:
        yield layer

"""Saving and loading trained models: one ``.npz`` file that brings a run back exactly.

The file holds

- ``meta``: JSON text with a format name and version, the architecture (``model.config()``), the optimizer's
  type, hyperparameters and step count, and the history;
- ``param/<name>``: every weight, by the names of ``model.named_parameters()``;
- ``optim/<state>/<i>``: the optimizer's state arrays (Adam's ``m`` and ``v``) for the i-th parameter.

It is read with ``allow_pickle=False``, so a checkpoint can never run code. It is written to a temporary file in
the same folder and renamed over the target only when complete, so a crash mid-save leaves the previous good file
in place.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

import numpy

from scratchae.backend import DEFAULT_DTYPE, to_device, to_numpy
from scratchae.files import write_atomically
from scratchae.layers import Dense, Identity, Layer, ReLU, Sequential, Sigmoid
from scratchae.models import Autoencoder, Classifier, DenoisingAutoencoder, Model, VariationalAutoencoder
from scratchae.optim import SGD, Adam, Optimizer
from scratchae.training import History

FORMAT = "scratchae-checkpoint"
VERSION = 1
OPTIMIZER_TYPES = {"Adam": Adam, "SGD": SGD}


class CheckpointError(ValueError):
    """The file is not a scratchae checkpoint this version can read (damaged, truncated, foreign or newer)."""


@dataclass
class Checkpoint:
    """What :func:`load` gives back: the model, and the optimizer and history when they were saved."""

    model: Model
    optimizer: Optimizer | None
    history: History | None
    meta: dict


def save(path, model: Model, optimizer: Optimizer | None = None, history: History | None = None, *,
         extra: dict | None = None) -> str:
    """Write ``model`` (and ``optimizer`` state and ``history``) to ``path`` atomically; returns the path.

    ``extra`` is any JSON-able information to keep with it (the loss, the data set); it comes back in ``meta``.
    """
    path = os.fspath(path)
    meta = {"extra": extra or {}, "format": FORMAT, "version": VERSION, "architecture": model.config(),
            "dtype": str(model.dtype),
            "optimizer": None if optimizer is None else _optimizer_meta(optimizer),
            "history": None if history is None else history.to_dict()}
    arrays = {"meta": numpy.array(json.dumps(meta))}
    arrays.update({f"param/{name}": to_numpy(parameter.data) for name, parameter in model.named_parameters()})
    if optimizer is not None:
        arrays.update(_optimizer_arrays(optimizer))
    write_atomically(path, lambda file: numpy.savez(file, **arrays))
    return path


def _optimizer_meta(optimizer: Optimizer) -> dict:
    state = optimizer.state_dict()
    return {"type": type(optimizer).__name__, "hyperparameters": state["hyperparameters"], "steps": state["steps"]}


def _optimizer_arrays(optimizer: Optimizer) -> dict[str, numpy.ndarray]:
    arrays = {}
    for state_name, values in optimizer.state_arrays().items():
        for index, value in enumerate(values):
            if value is not None:  # state is created on the first step
                arrays[f"optim/{state_name}/{index}"] = to_numpy(value)
    return arrays


def load(path, *, device: str = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save`; the model (and optimizer state) are put on ``device``.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    CheckpointError
        If the file is damaged or truncated, is not a scratchae checkpoint, or comes from a newer version.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    meta, arrays = _read(path)
    try:
        model = model_from_config(meta["architecture"], dtype=numpy.dtype(meta["dtype"]))
        _load_weights(model, arrays, path)
        model.to(device)
        optimizer = _rebuild_optimizer(meta["optimizer"], model, arrays, device)
        history = _rebuild_history(meta["history"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path}: the checkpoint's contents do not fit together: {error!r}") from error
    return Checkpoint(model, optimizer, history, meta)


def _rebuild_history(saved) -> History | None:
    if saved is None:
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("metrics", {}), dict):
        raise ValueError("the history is not a record of per-epoch metrics")
    return History.from_dict(saved)


def _read(path: str) -> tuple[dict, dict[str, numpy.ndarray]]:
    """Read every array eagerly, so that any damage shows up here, as one clear error."""
    try:
        with open(path, "rb") as handle, numpy.load(handle, allow_pickle=False) as file:
            arrays = {name: file[name] for name in file.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is damaged or truncated, or is not a .npz checkpoint ({error})") from error
    if "meta" not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a scratchae checkpoint (it has no 'meta' entry)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: the checkpoint's 'meta' entry is not valid JSON ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a scratchae checkpoint (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{path} is not a scratchae checkpoint")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise CheckpointError(f"{path} was written in checkpoint format version {meta.get('version')}, newer than "
                              f"this scratchae reads (up to {VERSION}); upgrade scratchae to load it")
    return meta, arrays


def _load_weights(model: Model, arrays: dict[str, numpy.ndarray], path: str) -> None:
    for name, parameter in model.named_parameters():
        key = f"param/{name}"
        if key not in arrays:
            raise CheckpointError(f"{path}: the checkpoint has no weights for {name}")
        if arrays[key].shape != parameter.data.shape or arrays[key].dtype != parameter.data.dtype:
            raise CheckpointError(f"{path}: weights {name} are {arrays[key].dtype} of shape {arrays[key].shape}, "
                                  f"the architecture needs {parameter.data.dtype} of shape {parameter.data.shape}")
        parameter.data = arrays[key]


def _rebuild_optimizer(meta: dict | None, model: Model, arrays: dict[str, numpy.ndarray], device: str):
    if meta is None:
        return None
    optimizer = OPTIMIZER_TYPES[meta["type"]](model.parameters(), **meta["hyperparameters"])
    state = {}
    for state_name in optimizer.state_arrays():
        state[state_name] = [_optional_array(arrays, f"optim/{state_name}/{index}", device)
                             for index in range(len(optimizer.params))]
    optimizer.load_state_arrays(meta["steps"], state)
    return optimizer


def _optional_array(arrays: dict[str, numpy.ndarray], key: str, device: str):
    return to_device(arrays[key], device) if key in arrays else None


# ---------------------------------------------------------------------------------------------------------------
# Rebuilding an architecture from the JSON a checkpoint holds

#: The layer classes a saved architecture may name.
LAYER_TYPES = {cls.__name__: cls for cls in (Dense, ReLU, Sigmoid, Identity)}

#: The model classes a saved architecture may name.
MODEL_TYPES = {cls.__name__: cls for cls in (Autoencoder, DenoisingAutoencoder, Classifier, VariationalAutoencoder)}


def layer_from_config(config: dict, dtype=DEFAULT_DTYPE) -> Layer:
    """Rebuild a layer from ``{"type": "Dense", "in_features": ..., ...}`` (weights are loaded separately)."""
    options = dict(config)
    kind = options.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; known types: {', '.join(LAYER_TYPES)}")
    if kind == "Dense":
        return Dense(**options, rng=0, dtype=dtype)
    return LAYER_TYPES[kind](**options)


def model_from_config(config: dict, dtype=DEFAULT_DTYPE) -> Model:
    """Rebuild a model from what :meth:`Model.config` returned (its weights are loaded separately)."""
    options = dict(config)
    kind = options.pop("type", None)
    if kind not in MODEL_TYPES:
        raise ValueError(f"unknown model type {kind!r}; known types: {', '.join(MODEL_TYPES)}")
    parts = [Sequential(layer_from_config(layer, dtype) for layer in options.pop(name)) for name in MODEL_TYPES[kind].PARTS]
    counters = options.pop("counters", {})
    if "noisy_batches" in options:  # where checkpoints of format version 1 kept the denoising model's counter
        counters["noisy_batches"] = options.pop("noisy_batches")
    model = MODEL_TYPES[kind](*parts, **options)
    model.set_counters(counters)
    return model

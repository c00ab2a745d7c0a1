"""Saving and loading trained models: one ``.npz`` file that brings a run back exactly.

The file holds

- ``meta``: JSON text with a format name and version, the versions of scratchae and NumPy that wrote it
  (``software``, which :func:`software_versions` gives), the architecture (``model.config()``), the optimizer's
  type, hyperparameters and step count, and the history;
- ``param/<name>``: every weight, by the names of ``model.named_parameters()``;
- ``optim/<state>/<i>``: the optimizer's state arrays (Adam's ``m`` and ``v``) for the i-th parameter.

It is written to a temporary file in the same folder and renamed over the target only when complete, so a crash
mid-save leaves the previous good file in place.

A checkpoint may come from anywhere, so reading one trusts nothing in it. Every problem is a
:class:`CheckpointError` that names the file, and a small file cannot make loading use much memory or time:

- only a checkpoint's own entries are read (``meta``, then the weights and optimizer state its architecture
  needs); anything else in the file is ignored, unread;
- the meta is checked field by field (types, known layers, sizes within bounds) before anything is built from it;
- each array's ``.npy`` header (shape and dtype, the first bytes of its entry) is checked against the architecture
  before its data is read, and the entry must be stored uncompressed, as :func:`save` writes it, within the bytes
  the file has. What loading reads is then bytes the file really holds, never sizes it only claims (a few
  kilobytes of compressed zeros can claim gigabytes);
- the model is built only once these headers prove that all its weights are in the file;
- weights and optimizer state must be finite, and the optimizer's state complete once it has taken a step;
- nothing is ever unpickled (``allow_pickle=False``), so a checkpoint can never run code.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass

import numpy
from numpy.lib import format as npy_format

from scratchae.backend import DEFAULT_DTYPE, has_non_finite, ignore_overflow, to_device, to_numpy
from scratchae.validate import require_float, require_int
from scratchae.atomic_files import write_atomically
from scratchae.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape, UpSampling2D
from scratchae.layers import INITS, Dense, Identity, Layer, ReLU, Sequential, Sigmoid
from scratchae.models import Autoencoder, Classifier, DenoisingAutoencoder, Model, VariationalAutoencoder
from scratchae.engine import forms as engine_forms
from scratchae.engine.adam import FastAdam
from scratchae.sparse import SparseAutoencoder
from scratchae.optim import SGD, Adam, Optimizer
from scratchae.training import History

FORMAT = "scratchae-checkpoint"
VERSION = 1
OPTIMIZER_TYPES = {"Adam": Adam, "SGD": SGD}

#: The dtypes a saved model may have: NumPy's real floating-point types.
DTYPES = {name: numpy.dtype(name) for name in ("float16", "float32", "float64")}

#: The largest feature size a saved layer may have: far beyond any data this library trains on, and small enough
#: that nothing computed from it overflows.
MAX_FEATURES = 2**24

#: The largest channel count, kernel side, stride, padding and upsampling factor a saved image layer may have; with
#: MAX_FEATURES numbers per sample at every layer, they bound what a forward pass of the model may allocate.
MAX_CHANNELS = 2**16
MAX_WINDOW = 2**10

#: The longest meta text read, in characters (4 bytes each in the file): a history of 20,000 epochs fits.
MAX_META_CHARACTERS = 2**22

#: How much of an entry is read to find its ``.npy`` header (about 128 bytes for the arrays of a checkpoint).
HEADER_BYTES = 4096

#: What zipfile and numpy.lib.format raise for a damaged archive, entry or ``.npy`` header (NumPy reports every
#: malformed header as a ValueError).
READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError)

#: Bytes read from an entry at a time, as numpy.load reads them: a large array never needs a second copy in memory.
READ_CHUNK = 2**18


class CheckpointError(ValueError):
    """The file is not a scratchae checkpoint this version can read (damaged, truncated, crafted, foreign or newer)."""


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
    meta = {"extra": extra or {}, "format": FORMAT, "version": VERSION, "software": software_versions(),
            "architecture": model.config(),
            "dtype": str(model.dtype),
            "optimizer": None if optimizer is None else _optimizer_meta(optimizer),
            "history": None if history is None else history.to_dict()}
    arrays = {"meta": numpy.array(json.dumps(meta))}
    arrays.update({f"param/{name}": to_numpy(parameter.data) for name, parameter in model.named_parameters()})
    if optimizer is not None:
        arrays.update(_optimizer_arrays(optimizer))
    write_atomically(path, lambda file: numpy.savez(file, **arrays))
    return path


def software_versions() -> dict[str, str]:
    """The versions of scratchae and NumPy running now, as a checkpoint records them: a run resumed under others
    may add its numbers up differently."""
    import scratchae

    return {"scratchae": scratchae.__version__, "numpy": numpy.__version__}


def _optimizer_meta(optimizer: Optimizer) -> dict:
    state = optimizer.state_dict()
    return {"type": getattr(optimizer, "saved_as", type(optimizer).__name__), "hyperparameters": state["hyperparameters"], "steps": state["steps"]}


def _optimizer_arrays(optimizer: Optimizer) -> dict[str, numpy.ndarray]:
    optimizer.follow_parameters()  # state of the parameters' dtype, even after a Model.to(dtype=...)
    arrays = {}
    for state_name, values in optimizer.state_arrays().items():
        for index, value in enumerate(values):
            if value is not None:  # state is created on the first step
                arrays[f"optim/{state_name}/{index}"] = to_numpy(value)
    return arrays


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load(path, *, device: str = "cpu", fast: bool = False) -> Checkpoint:
    """Read a checkpoint written by :func:`save`; the model (and optimizer state) are put on ``device``.

    The model is built of the lesson's layers, or of the engine's forms of them with ``fast=True`` (and its Adam
    as the engine's :class:`~scratchae.engine.adam.FastAdam`): the file is the same for both floors.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    CheckpointError
        If the file is damaged or truncated, is not a scratchae checkpoint, comes from a newer version, or holds
        anything a checkpoint written by :func:`save` could not (see the module's description of what is checked).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return _load(path, device, fast)
    except CheckpointError as error:
        # the checks below say what is wrong; the file's name is added once, here
        raise CheckpointError(f"{path}: {error}") from error.__cause__


def _load(path: str, device: str, fast: bool) -> Checkpoint:
    with _Archive(path) as archive:
        meta = _read_meta(archive)
        dtype = _check_meta(meta)
        history = _history_from_meta(meta["history"])
        weights = _read_weights(archive, expected_parameters(meta["architecture"]), dtype)
        model = model_from_config(meta["architecture"], dtype)  # only now: its weights are in the file
        optimizer, steps = _optimizer_from_meta(meta["optimizer"], model)
        state = {} if optimizer is None else _read_state(archive, optimizer, steps, model)
    for name, parameter in model.named_parameters():
        parameter.data = weights[name]
    model.to(device)
    if fast:
        engine_forms.fast(model)
        if type(optimizer) is Adam:
            optimizer.__class__ = FastAdam  # the same state and hyperparameters, the engine's update
    if optimizer is not None:
        optimizer.load_state_arrays(steps, {state_name: [None if array is None else to_device(array, device)
                                                         for array in arrays]
                                            for state_name, arrays in state.items()})
    return Checkpoint(model, optimizer, history, meta)


class _Archive:
    """The entries of one checkpoint file, each read only when asked for, its data only after its header.

    An entry must be stored, not compressed, and the entries read must together take no more bytes than the file
    has: the size an entry's header gives is then proven by the file itself, and reading allocates no more than
    the file's size.
    """

    def __init__(self, path: str):
        self.file_size = os.path.getsize(path)
        self.claimed = 0  # bytes of the file that the entries read so far take
        try:
            self.zip = zipfile.ZipFile(path)
        except PermissionError:  # a file that cannot be read is not a damaged one: its own error says so
            raise
        except READ_ERRORS as error:
            raise CheckpointError(f"the file is damaged or truncated, or is not a .npz checkpoint ({error})") from error

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.zip.close()

    def array(self, key: str, check) -> numpy.ndarray | None:
        """The array of entry ``key`` (``param/encoder.0.W``), or None if the file has no such entry.

        ``check(shape, dtype)`` sees what the header gives and raises a CheckpointError if that is not what the
        checkpoint needs there; only then is the data read.
        """
        try:
            info = self.zip.getinfo(f"{key}.npy")  # numpy.savez names each entry after its array, plus .npy
        except KeyError:
            return None
        self._claim(key, info)
        with _reported_as_damage(key):
            stream = self.zip.open(info)
        with stream:
            with _reported_as_damage(key):
                start = io.BytesIO(stream.read(HEADER_BYTES))  # bounded, whatever length the header claims
                shape, fortran_order, dtype = _read_npy_header(start)
            _check_npy_header(key, info, shape, dtype, header_size=start.tell())
            check(shape, dtype)
            with _reported_as_damage(key):
                return _read_npy_data(start, stream, shape, fortran_order, dtype)

    def _claim(self, key: str, info: zipfile.ZipInfo) -> None:
        """Check that the bytes of entry ``key`` are really in the file, before any of them are read."""
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:  # flag bit 0: encrypted
            raise CheckpointError(f"entry {key} is compressed or encrypted; checkpoints are stored uncompressed, as "
                                  f"save writes them, so that the file's own size bounds what loading reads")
        self.claimed += info.file_size  # the most that reading the entry gives, whatever else the zip says
        if self.claimed > self.file_size:
            raise CheckpointError(f"entry {key} claims {info.file_size:,} bytes, which with the entries read before "
                                  f"it are more than the file's {self.file_size:,}")


@contextlib.contextmanager
def _reported_as_damage(key: str):
    """Turn what zipfile and NumPy raise for a damaged entry into a CheckpointError that names the entry."""
    try:
        yield
    except READ_ERRORS as error:
        raise CheckpointError(f"entry {key} is damaged or truncated ({error})") from error


def _read_npy_header(stream) -> tuple[tuple, bool, numpy.dtype]:
    """Shape, Fortran order and dtype from the start of a ``.npy`` file (format 1.0 or 2.0, as numpy.savez writes)."""
    version = npy_format.read_magic(stream)
    readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f".npy format version {version[0]}.{version[1]}, which numpy.savez does not write")
    return readers[version](stream)


def _check_npy_header(key: str, info: zipfile.ZipInfo, shape: tuple, dtype: numpy.dtype, header_size: int) -> None:
    """What every entry's header must give: numbers, not objects, and exactly as many bytes as the entry has."""
    if dtype.hasobject:  # the way into pickles: refused, without a word about allowing them
        raise CheckpointError(f"entry {key} holds Python objects; a checkpoint holds numbers only, and scratchae "
                              f"never unpickles a file, as unpickling can run any code")
    if info.file_size != header_size + math.prod(shape) * dtype.itemsize:
        raise CheckpointError(f"entry {key} has {info.file_size:,} bytes, which do not make the {dtype} array of "
                              f"shape {shape} its header describes")


def _read_npy_data(start: io.BytesIO, stream, shape: tuple, fortran_order: bool, dtype: numpy.dtype) -> numpy.ndarray:
    """The data after a ``.npy`` header, byte for byte as numpy.load reads it: the first bytes came in ``start``
    with the header, the rest come from ``stream`` in chunks straight into the array (no second copy)."""
    array = numpy.empty(shape, dtype, order="F" if fortran_order else "C")
    buffer = memoryview(array.reshape(-1, order="A").view(numpy.uint8))  # the array's bytes, in memory order
    filled = start.readinto(buffer)
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:filled + READ_CHUNK])
        if not count:
            raise EOFError(f"the data end after {filled:,} of {len(buffer):,} bytes")
        filled += count
    return array


def _shaped(shape: tuple, dtype: numpy.dtype, what: str):
    """A ``check`` for :meth:`_Archive.array`: the header must give ``shape`` and ``dtype``."""
    def check(found_shape, found_dtype):
        if found_shape != tuple(shape) or found_dtype != dtype:
            raise CheckpointError(f"{what} are {found_dtype} of shape {found_shape}, the architecture needs {dtype} "
                                  f"of shape {tuple(shape)}")
    return check


def _finite(array: numpy.ndarray, what: str) -> numpy.ndarray:
    with ignore_overflow():  # a large finite sum may overflow on the way to the answer
        if has_non_finite(array):
            raise CheckpointError(f"{what} hold NaN or infinite values")
    return array


def _read_meta(archive: _Archive) -> dict:
    meta = archive.array("meta", _meta_check)
    if meta is None:
        raise CheckpointError("the file is an .npz file but not a scratchae checkpoint (it has no 'meta' entry)")
    try:
        return json.loads(str(meta[()]))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"the checkpoint's 'meta' entry is not valid JSON ({error})") from error
    except ValueError as error:  # an integer of more digits than Python converts (4300)
        raise CheckpointError(f"the checkpoint's 'meta' entry holds a number too long to read ({error})") from error
    except RecursionError as error:
        raise CheckpointError("the checkpoint's 'meta' entry is nested too deeply to read") from error


def _meta_check(shape: tuple, dtype: numpy.dtype) -> None:
    """The 'meta' entry is one string (as ``numpy.array(text)`` saves it) of at most MAX_META_CHARACTERS."""
    if dtype.kind != "U" or shape != () or dtype.itemsize > 4 * MAX_META_CHARACTERS:
        raise CheckpointError(f"the 'meta' entry is not the JSON text of a checkpoint (it holds {dtype} of shape "
                              f"{shape}; the text is at most {MAX_META_CHARACTERS:,} characters)")


def _read_weights(archive: _Archive, shapes: dict[str, tuple], dtype: numpy.dtype) -> dict[str, numpy.ndarray]:
    """Every weight the architecture has, each of its shape and dtype, and finite."""
    weights = {}
    for name, shape in shapes.items():
        key = f"param/{name}"
        array = archive.array(key, _shaped(shape, dtype, f"weights {name}"))
        if array is None:
            raise CheckpointError(f"the checkpoint has no weights {name} (no entry {key})")
        weights[name] = _finite(array, f"weights {name}")
    return weights


# ---------------------------------------------------------------------------------------------------------------
# Checking the meta: each check raises a CheckpointError that says which field is wrong and how


def _check_meta(meta) -> numpy.dtype:
    """Check the fields every checkpoint has; returns the model's dtype. The architecture, optimizer and history
    are checked where they are rebuilt."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = f" (format {_shown(meta.get('format'))})" if isinstance(meta, dict) else ""
        raise CheckpointError(f"the file is not a scratchae checkpoint{found}")
    version = _whole(meta.get("version"), "the checkpoint's format version", minimum=1)
    if version > VERSION:
        raise CheckpointError(f"the file was written in checkpoint format version {version}, newer than this "
                              f"scratchae reads (up to {VERSION}); upgrade scratchae to load it")
    for key in ("architecture", "dtype", "optimizer", "history"):
        _field(meta, key, "the checkpoint's meta")
    _mapping(meta.get("extra", {}), "the checkpoint's extra information")
    dtype = meta["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CheckpointError(f"the model's dtype is {_shown(dtype)}; a model has one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _field(mapping: dict, key: str, what: str):
    if key not in mapping:
        raise CheckpointError(f"{what} has no {key!r} entry")
    return mapping[key]


def _mapping(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise CheckpointError(f"{what} should be a mapping, got {_shown(value)}")
    return value


def _list(value, what: str) -> list:
    if not isinstance(value, list):
        raise CheckpointError(f"{what} should be a list, got {_shown(value)}")
    return value


def _whole(value, what: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = require_int(what, value, minimum=minimum)
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if maximum is not None and value > maximum:
        raise CheckpointError(f"{what} must be at most {maximum:,}, got {_shown(value)}")
    return value


def _number(value, what: str, minimum: float | None = None) -> float:
    try:
        return require_float(what, value, minimum=minimum)
    except ValueError as error:
        raise CheckpointError(str(error)) from None


def _shown(value) -> str:
    """A field's value in a few words for a message: a container by its kind, never in full."""
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


# ---------------------------------------------------------------------------------------------------------------
# Rebuilding an architecture from the JSON a checkpoint holds

#: The layer classes a saved architecture may name.
LAYER_TYPES = {cls.__name__: cls for cls in (Dense, ReLU, Sigmoid, Identity, Conv2D, ConvTranspose2D, MaxPool2D,
                                             UpSampling2D, Flatten, Reshape)}

#: The options each layer type's config holds (what its ``config()`` returns).
LAYER_OPTIONS = {"Dense": ("in_features", "out_features", "init"), "ReLU": (), "Sigmoid": (), "Identity": (),
                 "Conv2D": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
                 "ConvTranspose2D": ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                                     "output_padding"),
                 "MaxPool2D": ("pool_size", "stride", "padding"), "UpSampling2D": ("factor",), "Flatten": (),
                 "Reshape": ("shape",)}

#: The layers with weights, and the shape of their ``W`` from their config (``b`` has one number per output).
WEIGHT_SHAPES = {
    "Dense": lambda config: (config["in_features"], config["out_features"]),
    "Conv2D": lambda config: (config["out_channels"], config["in_channels"], *_kernel(config)),
    "ConvTranspose2D": lambda config: (config["in_channels"], config["out_channels"], *_kernel(config)),
}

#: The model classes a saved architecture may name.
MODEL_TYPES = {cls.__name__: cls for cls in (Autoencoder, DenoisingAutoencoder, Classifier, VariationalAutoencoder,
                                             SparseAutoencoder)}


def expected_parameters(config) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight an architecture has, found from its JSON alone, without building it.

    A Dense layer has ``W`` of shape (in_features, out_features), a Conv2D ``W`` of shape (C_out, C_in, KH, KW), a
    ConvTranspose2D ``W`` of shape (C_in, C_out, KH, KW), and each of them a ``b`` with one number per output
    feature or channel, named as :meth:`Model.named_parameters` names them (``encoder.0.W``); the other layers
    have none.

    Raises
    ------
    CheckpointError
        If the architecture is not one a model's ``config()`` gives: an unknown model or layer type, a part missing
        or empty, sizes that are not whole numbers within bounds, layers whose shapes do not chain (each takes what
        the one before gives: features, channels, or images large enough for its kernel), a sample of more than
        :data:`MAX_FEATURES` numbers at any layer, or a first part that starts with neither a Dense layer nor a
        Reshape (the model's input size is the first of them).
    """
    kind = _model_type(config)
    shapes, shape, gives = {}, None, {}  # shape: one sample's, after the layers so far; gives: each part's output
    first_input = None  # the model's input size
    model_type = MODEL_TYPES[kind]
    for part in model_type.PARTS:
        if part in model_type.PART_INPUTS:  # a part that takes another's output than the one just before it
            shape = gives[model_type.PART_INPUTS[part]]
        layers = _list(_field(config, part, "the architecture"), f"the architecture's {part}")
        if not layers:
            raise CheckpointError(f"the architecture's {part} has no layers")
        for index, layer in enumerate(layers):
            where = f"layer {part}.{index}"
            layer_kind = _layer_type(layer, where)
            if shape is None:
                shape = _input_shape(layer_kind, layer)
                first_input = None if shape is None else shape[0]
            shape = _shape_after(layer_kind, layer, shape, where)
            if layer_kind in WEIGHT_SHAPES:
                weights = WEIGHT_SHAPES[layer_kind](layer)
                shapes[f"{part}.{index}.W"] = weights
                shapes[f"{part}.{index}.b"] = (weights[1] if layer_kind != "Conv2D" else weights[0],)
        if shape is None:
            raise CheckpointError(f"the architecture's {part} has no Dense layer and no Reshape, so the model has no "
                                  f"input size")
        gives[part] = shape
    _check_sizes_agree(model_type, gives, first_input=first_input)
    return shapes


def _kernel(config) -> tuple[int, int]:
    size = config["kernel_size"]
    return (size, size) if isinstance(size, int) else tuple(size)


def _input_shape(kind: str, config) -> tuple | None:
    """The shape of one sample a model's first layers take: known at its first Dense layer or Reshape."""
    if kind == "Dense":
        return (config["in_features"],)
    if kind == "Reshape":
        return (math.prod(config["shape"]),)
    if kind in LAYER_OPTIONS and LAYER_OPTIONS[kind] == ():  # activations, Flatten: any input, sized later
        return None
    raise CheckpointError(f"the model begins with a {kind} layer, which takes images of a size the architecture "
                          f"does not give; a model begins with a Dense layer or a Reshape")


def _shape_after(kind: str, config, shape: tuple | None, where: str) -> tuple | None:
    """The shape of one sample after the layer, from the shape before it (None: not known yet), or a
    CheckpointError that says why the layer cannot take it."""
    if shape is None:
        return None
    if kind == "Dense":
        if shape != (config["in_features"],):
            raise CheckpointError(f"{where} takes {config['in_features']} features, but the layer before it gives "
                                  f"{_described(shape)}")
        return (config["out_features"],)
    if kind in ("Conv2D", "ConvTranspose2D") and (len(shape) != 3 or shape[0] != config["in_channels"]):
        raise CheckpointError(f"{where} takes images of {config['in_channels']} channels, but the layer before it "
                              f"gives {_described(shape)}")
    if kind in ("MaxPool2D", "UpSampling2D") and len(shape) != 3:
        raise CheckpointError(f"{where} takes images, but the layer before it gives {_described(shape)}")
    try:
        after = tuple(_stand_in(kind, config).output_shape(shape)) if kind not in ("ReLU", "Sigmoid", "Identity") \
            else shape
    except ValueError as error:
        raise CheckpointError(f"{where}: {error}") from None
    if math.prod(after) > MAX_FEATURES:
        raise CheckpointError(f"{where} gives {_described(after)}, more than {MAX_FEATURES:,} numbers a sample")
    return after


def _stand_in(kind: str, config) -> Layer:
    """A layer with the config's sizes, for its ``output_shape``. A convolution's stand-in has one channel on each
    side, so that its weights are a kernel's few numbers whatever the config claims: the rows and columns of the
    output do not depend on the channels, and the channels are the config's own."""
    options = {key: value for key, value in config.items() if key != "type"}
    if kind in ("Conv2D", "ConvTranspose2D"):
        layer = LAYER_TYPES[kind](**{**options, "in_channels": 1, "out_channels": 1}, rng=0)
        return _Channels(layer, config["in_channels"], config["out_channels"])
    return LAYER_TYPES[kind](**options)


class _Channels:
    """A one-channel convolution's ``output_shape`` for images of ``in_channels``, giving ``out_channels``."""

    def __init__(self, layer, in_channels: int, out_channels: int):
        self.layer, self.in_channels, self.out_channels = layer, in_channels, out_channels

    def output_shape(self, shape):
        _, height, width = self.layer.output_shape((1, *shape[1:]))
        return self.out_channels, height, width


def _described(shape: tuple) -> str:
    return f"{shape[0]} features" if len(shape) == 1 else f"samples of shape {shape}"


def _check_sizes_agree(model_type, gives: dict, first_input: int) -> None:
    """What the model's structure needs of its sizes: an autoencoder gives back as many features as it takes, and a
    VAE's two heads give codes of one size."""
    if "decoder" in model_type.PARTS and gives["decoder"] != (first_input,):
        raise CheckpointError(f"the decoder gives {_described(gives['decoder'])} but the model takes {first_input} "
                              f"features: an autoencoder gives back as many as it takes")
    if "logvar_head" in model_type.PARTS and gives["logvar_head"] != gives["mu_head"]:
        raise CheckpointError(f"the mean head gives codes of {_described(gives['mu_head'])} but the log-variance head "
                              f"of {_described(gives['logvar_head'])}: a Gaussian has one of each per number")
    if "head" in model_type.PARTS and len(gives["head"]) != 1:
        raise CheckpointError(f"the head gives {_described(gives['head'])}; a classifier gives one score per class")


def _model_type(config) -> str:
    kind = _mapping(config, "the architecture").get("type")
    if not isinstance(kind, str) or kind not in MODEL_TYPES:
        raise CheckpointError(f"unknown model type {_shown(kind)}; known types: {', '.join(MODEL_TYPES)}")
    return kind


def _layer_type(config, where: str) -> str:
    """Check a layer's config (type, options, sizes, init); returns its type."""
    kind = _mapping(config, where).get("type")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise CheckpointError(f"{where}: unknown layer type {_shown(kind)}; known types: {', '.join(LAYER_TYPES)}")
    unknown = sorted(set(config) - {"type", *LAYER_OPTIONS[kind]})
    if unknown:
        raise CheckpointError(f"{where}: a {kind} layer has no option {', '.join(map(repr, unknown))}")
    if kind == "Dense":
        for size in ("in_features", "out_features"):
            _whole(_field(config, size, f"{where} (Dense)"), f"{where}: {size}", 1, MAX_FEATURES)
        init = config.get("init", "glorot_uniform")
        if not isinstance(init, str) or init not in INITS:
            raise CheckpointError(f"{where}: unknown init {_shown(init)}; known: {', '.join(INITS)}")
    elif kind in IMAGE_OPTION_CHECKS:
        IMAGE_OPTION_CHECKS[kind](config, where)
    return kind


def _check_convolution(config, where: str) -> None:
    for name in ("in_channels", "out_channels"):
        _whole(_field(config, name, f"{where} (convolution)"), f"{where}: {name}", 1, MAX_CHANNELS)
    kernel = _field(config, "kernel_size", f"{where} (convolution)")
    for index, size in enumerate(kernel if isinstance(kernel, list) and len(kernel) == 2 else [kernel]):
        _whole(size, f"{where}: kernel_size", 1, MAX_WINDOW)
    _whole(config.get("stride", 1), f"{where}: stride", 1, MAX_WINDOW)
    padding = config.get("padding", 0)
    if config["type"] == "Conv2D" and padding in ("same", "valid"):
        return
    _whole(padding, f"{where}: padding (a number, or 'same' or 'valid' for Conv2D)", 0, MAX_WINDOW)
    if config["type"] == "ConvTranspose2D":
        _whole(config.get("output_padding", 0), f"{where}: output_padding", 0, MAX_WINDOW)


def _check_pooling(config, where: str) -> None:
    _whole(config.get("pool_size", 2), f"{where}: pool_size", 1, MAX_WINDOW)
    if config.get("stride") is not None:
        _whole(config["stride"], f"{where}: stride", 1, MAX_WINDOW)
    if config.get("padding", "valid") not in ("valid", "same"):
        raise CheckpointError(f"{where}: padding must be 'valid' or 'same', got {_shown(config['padding'])}")


def _check_reshape(config, where: str) -> None:
    shape = _list(_field(config, "shape", f"{where} (Reshape)"), f"{where}: shape")
    if not 1 <= len(shape) <= 3:
        raise CheckpointError(f"{where}: shape has {len(shape)} sizes; a Reshape gives features or (C, H, W) images")
    for size in shape:
        _whole(size, f"{where}: shape", 1, MAX_FEATURES)
    if math.prod(shape) > MAX_FEATURES:
        raise CheckpointError(f"{where}: shape {shape} holds more than {MAX_FEATURES:,} numbers")


#: The checks of each image layer's options, before any is built.
IMAGE_OPTION_CHECKS = {"Conv2D": _check_convolution, "ConvTranspose2D": _check_convolution,
                       "MaxPool2D": _check_pooling,
                       "UpSampling2D": lambda config, where: _whole(config.get("factor", 2), f"{where}: factor", 1,
                                                                    MAX_WINDOW),
                       "Reshape": _check_reshape}


def layer_from_config(config: dict, dtype=DEFAULT_DTYPE) -> Layer:
    """Rebuild a layer from ``{"type": "Dense", "in_features": ..., ...}`` (weights are loaded separately)."""
    kind = _layer_type(config, "the layer")
    options = {key: value for key, value in config.items() if key != "type"}
    try:
        if kind in WEIGHT_SHAPES:
            return LAYER_TYPES[kind](**options, rng=0, dtype=dtype)
        return LAYER_TYPES[kind](**options)
    except ValueError as error:  # an option the layer refuses (output_padding not below the stride)
        raise CheckpointError(f"a {kind} layer refuses its options: {error}") from error


def model_from_config(config: dict, dtype=DEFAULT_DTYPE) -> Model:
    """Rebuild a model from what :meth:`Model.config` returned (its weights are loaded separately).

    The model's own options (a denoising model's noise) are checked by its constructor, and must come out of it as
    they went in.
    """
    expected_parameters(config)  # checks every layer and part before any is built
    model_class = MODEL_TYPES[config["type"]]
    parts = [Sequential(layer_from_config(layer, dtype) for layer in config[name]) for name in model_class.PARTS]
    options = {key: value for key, value in config.items()
               if key not in ("type", "counters", "noisy_batches", *model_class.PARTS)}
    try:
        model = model_class(*parts, **options)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as error:
        raise CheckpointError(f"the {model_class.__name__}'s options are refused by it: {error}") from error
    if not _same_as_json(options, model.options()):
        raise CheckpointError(f"the {model_class.__name__}'s options {options} are not what it keeps "
                              f"({model.options()})")
    counters = dict(_mapping(config.get("counters", {}), "the model's counters"))
    if "noisy_batches" in config:  # where checkpoints of format version 1 kept the denoising model's counter
        counters["noisy_batches"] = config["noisy_batches"]
    try:
        model.set_counters(counters)
    except ValueError as error:
        raise CheckpointError(f"the model's counters: {error}") from error
    return model


def _same_as_json(given: dict, kept: dict) -> bool:
    """Whether a constructor kept every option it was given as it was (seen as JSON: a tuple is a list there)."""
    kept = json.loads(json.dumps(kept))
    return all(key in kept and kept[key] == value for key, value in given.items())


# ---------------------------------------------------------------------------------------------------------------
# Rebuilding the optimizer and the history


def _optimizer_from_meta(saved, model: Model) -> tuple[Optimizer | None, int]:
    """The optimizer on the model's parameters, its hyperparameters checked by its constructor, and its step count."""
    if saved is None:
        return None, 0
    _mapping(saved, "the optimizer")
    kind = _field(saved, "type", "the optimizer")
    if not isinstance(kind, str) or kind not in OPTIMIZER_TYPES:
        raise CheckpointError(f"unknown optimizer {_shown(kind)}; known: {', '.join(OPTIMIZER_TYPES)}")
    hyperparameters = _mapping(_field(saved, "hyperparameters", "the optimizer"), f"the {kind} hyperparameters")
    steps = _whole(_field(saved, "steps", "the optimizer"), f"the {kind} optimizer's steps", 0)
    try:
        optimizer = OPTIMIZER_TYPES[kind](model.parameters(), **hyperparameters)
    except (TypeError, ValueError) as error:  # TypeError: a name it does not take, or betas that are not a pair
        raise CheckpointError(f"the {kind} hyperparameters are refused by {kind}: {error}") from error
    return optimizer, steps


def _read_state(archive: _Archive, optimizer: Optimizer, steps: int, model: Model) -> dict[str, list]:
    """The optimizer's state arrays (None where absent), each of its parameter's shape and dtype, and finite.

    They are all there, or (before the first step, which creates them) none: resuming with some missing would
    silently change the run.
    """
    state = {}
    for state_name in optimizer.state_arrays():
        state[state_name] = []
        for index, (name, parameter) in enumerate(model.named_parameters()):
            what = f"optimizer state {state_name} of {name}"
            check = _shaped(parameter.data.shape, parameter.data.dtype, what)
            array = archive.array(f"optim/{state_name}/{index}", check)
            state[state_name].append(None if array is None else _finite(array, what))
    missing = [f"optim/{state_name}/{index}" for state_name, arrays in state.items()
               for index, array in enumerate(arrays) if array is None]
    total = len(state) * len(optimizer.params)
    if missing and (steps > 0 or len(missing) < total):
        raise CheckpointError(f"the {type(optimizer).__name__} optimizer has taken {steps} steps, but the file lacks "
                              f"{len(missing)} of its {total} state arrays (first {missing[0]}); they are all there "
                              f"once it has stepped, and none before")
    return state


def _history_from_meta(saved) -> History | None:
    """The history, once its metrics are lists of finite numbers of one length and its unfinished epoch adds up."""
    if saved is None:
        return None
    _mapping(saved, "the history")
    metrics = _mapping(saved.get("metrics", {}), "the history's metrics")
    for name, values in metrics.items():
        for value in _list(values, f"the history's {name}"):
            _number(value, f"a value of the history's {name}")
    lengths = {name: len(values) for name, values in metrics.items()}
    if len(set(lengths.values())) > 1:
        raise CheckpointError(f"the history's metrics have different lengths: {lengths}")
    for value in _list(saved.get("seconds", []), "the history's seconds"):
        _number(value, "a value of the history's seconds", minimum=0.0)
    if not isinstance(saved.get("interrupted", False), bool):
        raise CheckpointError(f"the history's interrupted should be true or false, got {_shown(saved['interrupted'])}")
    if saved.get("unfinished") is not None:
        _check_unfinished(saved["unfinished"])
    return History.from_dict(saved)


def _check_unfinished(unfinished) -> None:
    """An interrupted epoch: ``{"batches": int, "sums": {name: float}, "samples": int, "seconds": float}``."""
    what = "the history's unfinished epoch"
    fields = sorted(_mapping(unfinished, what))
    if fields != ["batches", "samples", "seconds", "sums"]:
        raise CheckpointError(f"{what} has the fields {fields}, not batches, samples, seconds and sums")
    batches = _whole(unfinished["batches"], f"{what}'s batches", 0)
    samples = _whole(unfinished["samples"], f"{what}'s samples", 0)
    _number(unfinished["seconds"], f"{what}'s seconds", minimum=0.0)
    sums = _mapping(unfinished["sums"], f"{what}'s sums")
    for name, value in sums.items():
        _number(value, f"{what}'s sum of {name}")
    # every batch adds at least one sample and a running loss; before the first batch there is nothing
    started = batches > 0
    if samples < batches or (samples > 0) != started or bool(sums) != started or (started and "loss" not in sums):
        raise CheckpointError(f"{what} does not add up: {batches} batches, {samples} samples, sums of {sorted(sums)}")

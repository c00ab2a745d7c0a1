"""Fixtures shared by the test suite.

``rng``
    a seeded NumPy generator, new for every test, so that tests never depend on global random state.
``strict``
    the strict Array API backend (array-api-strict) on its non-CPU device ``Device('device1')``, whose arrays refuse
    to be converted to NumPy: code that runs on it touches no NumPy function on the way. It carries helpers to put
    arrays there, to bring them back for comparison, and to move a layer's or a model's parameters there.
``check_gradients``
    asserts that every :class:`scratchae.gradcheck.GradientCheck` passes its tolerance, and on failure prints the
    check itself (parameter, index, analytic and numeric values).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy
import pytest


@pytest.fixture
def rng() -> numpy.random.Generator:
    return numpy.random.default_rng(20240607)


@dataclass(frozen=True)
class StrictBackend:
    """The array-api-strict namespace, its non-CPU device, and the transfers a test needs."""

    xp: ModuleType
    device: object  # array_api_strict.Device('device1'): arrays there cannot become NumPy arrays
    cpu: object  # array_api_strict.Device('CPU_DEVICE')

    def asarray(self, array):
        """A NumPy array (or anything NumPy reads) -> a strict array on the non-CPU device, same dtype."""
        return self.xp.asarray(numpy.asarray(array), device=self.device)

    def to_numpy(self, array) -> numpy.ndarray:
        """A strict array on any device -> a NumPy array (through the strict CPU device)."""
        return numpy.asarray(array.to_device(self.cpu))

    def move(self, module):
        """Put every parameter of a layer, Sequential or model on the non-CPU device, in place; returns it."""
        for parameter in module.parameters():
            parameter.data = self.asarray(parameter.data)
            parameter.grad = None
        return module


@pytest.fixture(scope="session")
def strict() -> StrictBackend:
    import array_api_strict

    return StrictBackend(array_api_strict, array_api_strict.Device("device1"), array_api_strict.Device("CPU_DEVICE"))


def _assert_checks_pass(checks, tolerance: float) -> None:
    checks = [checks] if not isinstance(checks, (list, tuple)) else checks
    assert checks, "no gradient was checked"
    for check in checks:
        assert check.passed(tolerance), f"gradient check failed (tolerance {tolerance:.0e}): {check}"


@pytest.fixture
def check_gradients():
    return _assert_checks_pass


@pytest.fixture(autouse=True)
def english_unless_asked(monkeypatch):
    """Figures, captions and pages speak the locale's language (LANGUAGE, LC_ALL, LC_MESSAGES, LANG); the tests read
    their English words, so they run in English on any machine, and a test of another language asks for it."""
    from scratchae import i18n

    monkeypatch.setenv("LANGUAGE", "en")
    i18n.use_language(None)
    yield
    i18n.use_language(None)

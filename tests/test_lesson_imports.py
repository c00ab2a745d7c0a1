"""The lesson's promise: reading (and importing) layers, conv, losses, optim, models, the builders a notebook calls
and ``train_step`` never pulls in a progress bar, a network or archive module, a plotting library, threadpoolctl,
CuPy, or the application modules around the lesson (docs/lesson.md says so).
"""

from __future__ import annotations

import json
import subprocess
import sys

LESSON_IMPORTS = """
import scratchae.layers, scratchae.conv, scratchae.losses, scratchae.optim, scratchae.models, scratchae.builders
import scratchae.sparse
from scratchae.training import train_step
"""

#: Top-level modules (and a few submodules) the lesson must not load: progress bars, network, archives, plots, GPU.
FORBIDDEN = ("tqdm", "http", "urllib.request", "urllib.error", "socket", "ssl", "email", "zipfile", "gzip", "tarfile",
             "bz2", "lzma", "shutil", "matplotlib", "pooch", "sklearn", "pandas", "cupy", "threadpoolctl",
             "scratchae.data", "scratchae.plots", "scratchae.checkpoint", "scratchae.cli", "scratchae.atomic_files")


def modules_loaded_by(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def forbidden_among(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN))


def test_importing_the_lesson_loads_no_progress_bar_network_archive_or_plotting_module():
    loaded = modules_loaded_by(LESSON_IMPORTS)
    assert {"scratchae.models", "scratchae.builders", "scratchae.sparse", "scratchae.training"} <= loaded  # ran
    assert forbidden_among(loaded) == []


def test_the_check_sees_a_forbidden_module():
    """The same check on code that imports the data module (downloads, archives) finds them: it can fail."""
    loaded = modules_loaded_by(LESSON_IMPORTS + "import scratchae.data\n")
    assert {"scratchae.data", "gzip", "zipfile", "http.client"} <= set(forbidden_among(loaded))


def test_the_check_sees_threadpoolctl_and_the_progress_bar_that_fit_loads():
    """Running ``fit`` loads what the lesson's import does not: the thread count's threadpoolctl and tqdm's bar."""
    fit_once = LESSON_IMPORTS + """
import numpy
from scratchae.losses import MSELoss
from scratchae.optim import Adam
from scratchae.training import fit
model = scratchae.builders.simple_autoencoder(input_dim=6, hidden_dim=4, latent_dim=2)
fit(model, MSELoss(), Adam(model.parameters()), numpy.full((8, 6), 0.5, dtype=numpy.float32), epochs=1,
    batch_size=4, progress=False)
"""
    assert {"threadpoolctl", "tqdm"} <= set(forbidden_among(modules_loaded_by(fit_once)))

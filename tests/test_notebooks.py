"""Every demo opens as a notebook and runs there: converted by jupytext, executed cell by cell by nbclient in an
IPython kernel, in quick mode on the small digits set, with its figures shown inline and written to disk."""

from __future__ import annotations

import json

import jupytext
import pytest
from nbclient import NotebookClient

from scratchae.cli.demo import demo_script
from scratchae.cli.gallery import DEMOS, expected_figures


@pytest.fixture
def notebook_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own paths, without its migration warning
    monkeypatch.setenv("MPLBACKEND", "agg")
    return tmp_path


@pytest.mark.parametrize("name", list(DEMOS))
def test_the_demo_runs_as_a_notebook(name, notebook_environment, monkeypatch):
    out = notebook_environment / name
    # A kernel's command line is its own; the demo reads its options from the environment instead.
    monkeypatch.setenv("SCRATCHAE_DEMO_OPTIONS", f"--quick --data digits --device cpu --out {out}")
    with demo_script(name) as script:
        notebook = jupytext.read(script)
    assert sum(cell.cell_type == "code" for cell in notebook.cells) >= 3  # the `# %%` cells became notebook cells
    client = NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook_environment)}})
    client.execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    shown = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(shown) == len(expected_figures()[name])  # each figure is shown in the notebook, where it is made
    metrics = json.loads((out / "metrics.json").read_text())
    assert [figure["file"] for figure in metrics["figures"]] == list(expected_figures()[name])
    assert all((out / file).is_file() for file in expected_figures()[name])

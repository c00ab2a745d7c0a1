"""Every demo opens as a notebook and runs there, by the README's own commands: ``scratchae notebooks notebooks``
writes them, nbclient executes each cell by cell in an IPython kernel (quick mode, on the small digits set), with
its figures shown inline and written to disk, and ``jupyter execute --inplace`` runs one as a learner types it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from scratchae.cli import main
from scratchae.cli.gallery import DEMOS, expected_figures

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK = "--quick --data digits --device cpu"


def readme_notebook_commands() -> list[str]:
    """The commands of the README's notebook block, without their comments, the install line left out."""
    section = README.read_text(encoding="utf-8").split("**As notebooks.**", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [command for command in commands if command and not command.startswith("pip install")]


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    """A folder where the README's ``scratchae notebooks`` command has run, as a learner runs it."""
    folder = tmp_path_factory.mktemp("learner")
    convert = [command for command in readme_notebook_commands() if command.startswith("scratchae notebooks")]
    assert len(convert) == 1
    previous = Path.cwd()
    os.chdir(folder)
    try:
        assert main(shlex.split(convert[0])[1:]) == 0
    finally:
        os.chdir(previous)
    return folder


@pytest.fixture
def notebook_environment(monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own paths, without its migration warning
    monkeypatch.setenv("MPLBACKEND", "agg")


def execute(path: Path) -> list[dict]:
    """Run the notebook at ``path`` in a python3 kernel whose working folder is the notebook's; its outputs."""
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    NotebookClient(notebook, timeout=240, resources={"metadata": {"path": str(path.parent)}}).execute()
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def assert_clean(outputs: list[dict]) -> None:
    """No error and no warning (a TqdmWarning above all) among a notebook's outputs."""
    assert not [output for output in outputs if output.get("output_type") == "error"]
    printed = "".join(output.get("text", "") for output in outputs if output.get("output_type") == "stream")
    assert "Warning" not in printed, printed


def test_the_readme_writes_every_demo_as_a_notebook(readme_folder):
    written = sorted(path.name for path in (readme_folder / "notebooks").iterdir())
    assert written == sorted([".scratchae-files.json", *(f"{name}.ipynb" for name in DEMOS)])  # and the list of
    # the notebooks scratchae wrote, so that it replaces only those
    for name in DEMOS:
        notebook = nbformat.read(readme_folder / "notebooks" / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        assert sum(cell.cell_type == "code" for cell in notebook.cells) >= 3  # the `# %%` cells became cells
        assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
        assert any(f'Demo.start("{name}")' in cell.source for cell in notebook.cells)  # options from the environment


@pytest.mark.parametrize("name", list(DEMOS))
def test_the_demo_runs_as_a_notebook(name, readme_folder, notebook_environment, monkeypatch, tmp_path):
    out = tmp_path / name
    # A kernel's command line is its own; a notebook written without options reads them from the environment.
    monkeypatch.setenv("SCRATCHAE_DEMO_OPTIONS", f"{QUICK} --out {out}")
    outputs = execute(readme_folder / "notebooks" / f"{name}.ipynb")

    assert_clean(outputs)
    shown = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(shown) == len(expected_figures()[name])  # each figure is shown in the notebook, where it is made
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["quick"] is True and metrics["data"] == "digits"
    assert [figure["file"] for figure in metrics["figures"]] == list(expected_figures()[name])
    assert all((out / file).is_file() for file in expected_figures()[name])


def test_options_written_into_a_notebook_run_there_and_its_progress_bar_is_a_widget(tmp_path, notebook_environment,
                                                                                     monkeypatch):
    monkeypatch.delenv("SCRATCHAE_DEMO_OPTIONS", raising=False)
    assert main(["notebooks", str(tmp_path), *shlex.split(QUICK), "--only", "one_step"]) == 0
    path = tmp_path / "one_step.ipynb"
    notebook = nbformat.read(path, as_version=4)
    assert any('Demo.start("one_step", ["--quick", "--data", "digits", "--device", "cpu"])' in cell.source
               for cell in notebook.cells)
    # A learner's own cell: fit with its progress bar, which Jupyter draws as a widget, with no warning.
    notebook.cells.append(nbformat.v4.new_code_cell(
        "from scratchae import MSELoss, SGD, builders, training\n"
        "tiny = builders.simple_autoencoder(latent_dim=2, input_dim=64, hidden_dim=4)\n"
        "training.fit(tiny, MSELoss(), SGD(tiny.parameters(), lr=0.1), dataset.x_train[:32], epochs=1,\n"
        "             batch_size=16, progress='always')"))
    nbformat.write(notebook, path)

    outputs = execute(path)
    assert_clean(outputs)
    assert any("application/vnd.jupyter.widget-view+json" in output.get("data", {}) for output in outputs)
    metrics = json.loads((tmp_path / "outputs-quick" / "one_step" / "metrics.json").read_text())
    assert metrics["quick"] is True and metrics["data"] == "digits"
    assert (tmp_path / "outputs-quick" / "index.html").is_file()  # a demo run alone writes the gallery beside it


def test_the_readmes_jupyter_execute_command_runs_a_notebook_in_place(readme_folder, notebook_environment):
    run = [command for command in readme_notebook_commands() if command.startswith("jupyter execute")]
    assert len(run) == 1
    bin_folder = Path(sys.executable).parent  # where the environment's `jupyter` command is
    environment = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
                   "SCRATCHAE_DEMO_OPTIONS": QUICK}
    done = subprocess.run(run[0], shell=True, cwd=readme_folder, env=environment, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    notebook_path = readme_folder / shlex.split(run[0])[-1]
    outputs = [output for cell in nbformat.read(notebook_path, as_version=4).cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    assert_clean(outputs)
    assert any("image/png" in output.get("data", {}) for output in outputs)  # its figure, kept in the notebook
    assert (notebook_path.parent / "outputs-quick" / "one_step" / "00_one_step.png").is_file()


def test_without_jupytext_the_command_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jupytext", None)  # as if it were not installed
    assert main(["notebooks", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "jupytext" in error and 'pip install -e ".[notebook]"' in error
    assert not list(tmp_path.iterdir())

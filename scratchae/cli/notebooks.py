"""``scratchae notebooks DIR``: every demo as a Jupyter notebook, ``DIR/NAME.ipynb``.

    scratchae notebooks notebooks                   every demo, each run with the chapter's own settings
    scratchae notebooks notebooks --quick           the same, each notebook set to a quick run
    scratchae notebooks notebooks --lang pt         the same in Portuguese: its text, figures and captions
    jupyter execute --inplace notebooks/vae.ipynb   run one from the command line, its outputs saved in it

Each demo is a percent-format script (``# %%`` cells); jupytext turns its cells into notebook cells, and the
notebook names the ``python3`` kernel, so it opens and runs in Jupyter, JupyterLab, VS Code and Colab. Options given
here (``--quick``, ``--data``, ``--device``, ``--epochs``, ``--seed``) are written into the notebook's first cell,
``Demo.start("vae", ["--quick"])``, where a learner sees them and can change them; a notebook written without
options reads them from the environment variable ``SCRATCHAE_DEMO_OPTIONS`` instead. Figures are shown in the
notebook and written to ``outputs/NAME/`` (``outputs-quick/NAME/`` for a quick run) beside it. With ``--lang``, each
markdown cell is the chapter's text in that language (its translation in the message catalogs of
:mod:`scratchae.i18n`), and ``--lang`` goes into the first cell so that figures and captions follow.

A notebook is replaced only as scratchae wrote it: one that was edited (a new cell, or outputs saved by ``jupyter
execute --inplace``) or that scratchae did not write is kept, and the command refuses with one line naming it, unless
``--overwrite`` says to replace it (:mod:`scratchae.cli.own_files`).

The notebooks need Jupyter's own packages: ``pip install -e ".[notebook]"`` (jupytext, nbclient, ipykernel and
ipywidgets, which draws progress bars as widgets).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from scratchae.cli.arguments import add_language_option, add_run_options, path_name
from scratchae.cli.demo import demo_script
from scratchae.cli.gallery import DEMOS
from scratchae.cli import own_files

#: Where Jupyter finds the kernel: the ``python3`` kernel that ipykernel installs in every environment.
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

#: What to install when the notebook packages are missing.
INSTALL_HINT = 'pip install -e ".[notebook]"'


class NotebookError(Exception):
    """The notebooks cannot be written (jupytext is missing, or a demo does not start as expected)."""


def add_notebooks_command(commands) -> None:
    """Register ``scratchae notebooks`` on the sub-command parsers of the ``scratchae`` command."""
    parser = commands.add_parser("notebooks", help="write every demo as a Jupyter notebook, DIR/NAME.ipynb",
                                 description="Write every demo as a Jupyter notebook (DIR/NAME.ipynb) that opens in "
                                             "Jupyter, JupyterLab, VS Code or Colab. Options given here are "
                                             "written into each notebook's first cell.")
    parser.add_argument("dir", metavar="DIR", type=path_name, help="folder for the notebooks (made if missing)")
    parser.add_argument("--quick", action="store_true", help="set every notebook to a quick run (a few hundred "
                                                             "images, 2 epochs)")
    add_run_options(parser, epochs=None, epochs_help="epochs of every model (default: each demo's own)",
                    out=None, out_help="the notebooks' output folder, one subfolder per demo (default: outputs, or "
                                       "outputs-quick with --quick, beside each notebook)")
    add_language_option(parser)
    parser.add_argument("--only", nargs="+", choices=list(DEMOS), metavar="NAME",
                        help=f"write only these demos ({', '.join(DEMOS)})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace notebooks that were edited or that scratchae did not write (by default they "
                             "are kept and the command refuses)")
    parser.set_defaults(run=run_notebooks_command)


def run_notebooks_command(arguments: argparse.Namespace) -> int:
    """``scratchae notebooks DIR``: write the notebooks and say where; status 2 with one line if that fails."""
    try:
        written = write_notebooks(arguments.dir, arguments.only or list(DEMOS), demo_options(arguments),
                                  overwrite=arguments.overwrite, lang=arguments.lang)
    except NotebookError as error:
        print(f"scratchae: error: {error}", file=sys.stderr)
        return 2
    print(f"{len(written)} notebook(s) in {Path(arguments.dir)}:")
    for path in written:
        print(f"  {path}")
    print(f"open them in Jupyter, JupyterLab, VS Code or Colab, or run one: jupyter execute --inplace "
          f"{shlex.quote(str(written[0]))}")
    return 0


def demo_options(arguments: argparse.Namespace) -> dict[str, list[str]]:
    """Demo name -> the options given on the command line, as that demo's own command line takes them (defaults
    left out; ``--out OUT`` becomes ``--out OUT/NAME``, as for ``scratchae demo``)."""
    options = ["--quick"] if arguments.quick else []
    if arguments.data != "mnist-5k":
        options += ["--data", arguments.data]
    if arguments.device != "auto":
        options += ["--device", arguments.device]
    if arguments.epochs is not None:
        options += ["--epochs", str(arguments.epochs)]
    if arguments.seed != 0:
        options += ["--seed", str(arguments.seed)]
    if getattr(arguments, "lang", None) is not None:
        options += ["--lang", arguments.lang]
    names = arguments.only or list(DEMOS)
    if arguments.out is None:
        return {name: options for name in names}
    return {name: options + ["--out", str(Path(arguments.out) / name)] for name in names}


def write_notebooks(folder, names, options: dict[str, list[str]] | None = None, *,
                    overwrite: bool = False, lang: str | None = None) -> list[Path]:
    """Write each demo of ``names`` as ``folder/NAME.ipynb`` (atomically), with its ``options`` (demo name -> a
    list of command-line options) in its first cell and its markdown cells in ``lang``; returns their paths.

    Every notebook is checked before any is written: one that was edited or that scratchae did not write is a
    :class:`scratchae.cli.own_files.NotOursError` (nothing written) unless ``overwrite``.
    """
    from scratchae.i18n import gettext

    try:
        import jupytext
    except ImportError:
        raise NotebookError(f"writing notebooks needs jupytext, which is not installed: {INSTALL_HINT}") from None
    folder = Path(folder)
    for name in names:
        own_files.check_replaceable(folder / f"{name}.ipynb", overwrite=overwrite, how=_fresh_copy(folder, name))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        with demo_script(name) as script:
            notebook = jupytext.read(script)
        if options and options.get(name):
            _write_options(notebook, name, options[name])
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = gettext(cell.source, lang)  # the chapter's text, looked up whole
        notebook.metadata["kernelspec"] = dict(KERNELSPEC)
        notebook.metadata["language_info"] = {"name": "python"}
        notebook.metadata.pop("jupytext", None)  # a plain notebook, not one paired with a script
        paths.append(own_files.write_text(folder / f"{name}.ipynb", jupytext.writes(notebook, fmt="ipynb"),
                                          command="scratchae notebooks", overwrite=overwrite,
                                          how=_fresh_copy(folder, name)))
    return paths


def _fresh_copy(folder: Path, name: str) -> str:
    """How to get a fresh copy of a notebook that is kept because it was edited."""
    other = shlex.quote(str(folder / "fresh"))
    return (f"for a fresh copy beside it, run scratchae notebooks {other} --only {name}; or give --overwrite to "
            f"replace it")


def _write_options(notebook, name: str, options: list[str]) -> None:
    """Put ``options`` into the cell that starts the demo: ``Demo.start("NAME")`` -> ``Demo.start("NAME", [...])``."""
    call = f'Demo.start("{name}")'
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and call in cell.source]
    if len(cells) != 1:
        raise NotebookError(f"demos/{name}.py: expected one cell calling {call}, found {len(cells)}")
    cells[0].source = cells[0].source.replace(call, f'Demo.start("{name}", {json.dumps(options)})')

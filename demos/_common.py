"""What every demo shares: its command line, its output folder, a record of what it trained, and ``metrics.json``.

A demo begins with ``demo = Demo.start("simple_autoencoder")``, which reads the command line, picks the device and
makes the output folder. The chapter then trains its models itself, with :func:`scratchae.training.fit` in plain
sight; the helper only keeps a record:

- ``demo.load_data()`` loads the data set that ``--data`` names (a few hundred images with ``--quick``);
- ``demo.schedule(...)`` says how many epochs to train: the notebook's, or, on a smaller data set, as many as give
  the notebook's number of gradient steps;
- ``with demo.timed("train ..."):`` times a block; ``on_epoch_end=demo.print_epoch`` prints one line per epoch (the
  first three, every tenth and the last); while a model trains, a progress line says the chapter, the model, epoch k
  of n and the time left (:class:`scratchae.progress.ProgressLine`, rewritten in place on a terminal);
- ``demo.record(label, history, ...)`` keeps a model's final losses for ``metrics.json`` and the gallery;
- ``demo.tsne(codes)`` maps latent codes to 2-D points with :func:`scratchae.plots.tsne_embedding`;
- ``demo.save(fig, file, caption)`` writes a figure as a PNG and returns it, so that a notebook cell ending with it
  shows it; ``demo.save_page(html, file, caption)`` writes a page (the latent explorer) that the gallery links;
- ``demo.finish()`` writes ``metrics.json`` (the data set, the epochs, the time taken and where it went, the final
  losses, every figure with its caption) and writes the gallery page of the folder above: always in the default
  ``outputs/`` (or ``outputs-quick/``), and in a folder given by ``--out`` if a page is already there.

The command line of every demo (``--data``, ``--device``, ``--seed``, ``--epochs``, ``--out``, ``--threads`` as for
``scratchae train``, ``--quick``: a few hundred images, 2 epochs, a short t-SNE, the same code otherwise, and
``--lang``: the language of the figures and captions, see :mod:`scratchae.i18n`).
Arguments a demo does not know are ignored, so that it also runs inside a Jupyter kernel, whose command line holds
the kernel's own arguments; there the options can come from the environment variable ``SCRATCHAE_DEMO_OPTIONS``
(for example ``--quick --data digits``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scratchae import data, plots, threads
from scratchae.progress import ProgressLine, reporting_to
from scratchae.backend import DeviceError, resolve_device, to_device, to_numpy
from scratchae.cli.arguments import add_run_options
from scratchae.cli.gallery import INDEX, METRICS, write_index
from scratchae.atomic_files import write_text_atomically
from scratchae.i18n import N_, format_text as _f, use_language

#: ``--quick``: epochs of every model, training and test images, and t-SNE steps (the fewest scikit-learn allows).
QUICK_EPOCHS = 2
QUICK_TRAIN_SIZE = 500
QUICK_TEST_SIZE = 200
QUICK_TSNE_ITERATIONS = 250

#: t-SNE as the notebooks run it: scikit-learn's default number of steps and the notebooks' random_state.
TSNE_ITERATIONS = 1000
TSNE_SEED = 42

#: Resolution of the saved figures: a row of ten 28x28 digits is 1,500 pixels wide.
FIGURE_DPI = 100

#: Where a notebook kernel finds the demo's options (its own command line holds the kernel's).
OPTIONS_VARIABLE = "SCRATCHAE_DEMO_OPTIONS"

#: Set to 1 by ``scratchae demo`` when it shows a demo's output on a terminal: the demo's progress line is then
#: rewritten in place, although the demo's own output is a pipe.
LIVE_PROGRESS_VARIABLE = "SCRATCHAE_LIVE_PROGRESS"


def parse_arguments(name: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The demo's options from ``argv`` (``sys.argv[1:]`` and $SCRATCHAE_DEMO_OPTIONS by default); unknown
    arguments are ignored."""
    parser = argparse.ArgumentParser(prog=f"python demos/{name}.py", allow_abbrev=False,
                                     description="Reproduce a chapter of the notebooks and save its figures as PNG.")
    add_run_options(parser, epochs=None, epochs_help="epochs of every model (default: the chapter's own, 2 with "
                                                     "--quick)",
                    out=None, out_help=f"output folder (default: outputs/{name}, or outputs-quick/{name} with --quick)")
    parser.add_argument("--quick", action="store_true", help="a run of a few seconds on a few hundred images")
    parser.add_argument("--lang", default=None, help="the language of figures and captions (default: the locale's)")
    if argv is None:
        argv = sys.argv[1:] + shlex.split(os.environ.get(OPTIONS_VARIABLE, ""))
    arguments, _ = parser.parse_known_args(argv)
    return arguments


@dataclass(frozen=True)
class Schedule:
    """How long a model trains: ``epochs``, and ``text``, the words for a caption."""

    epochs: int
    text: str


class Demo:
    """One run of a demo: its options, output folder, device, and the record that ``finish`` writes.

    Attributes
    ----------
    name : str
        The demo's name, which is also the name of its script and of its default output folder.
    out : pathlib.Path
        Where figures and ``metrics.json`` go.
    device : str
        ``"cpu"`` or ``"gpu"``.
    seed : int
        Seed for everything random.
    threads : int or None
        Training threads of every model (``--threads``); None: each model's default, every core for a model with
        convolutions and one for a dense model (:func:`scratchae.training_run.threads_for`).
    quick : bool
        Whether this is a quick run.
    results : dict[str, dict]
        Model label -> its final values (``loss``, ``val_loss``, ``val_accuracy`` ...), epochs and batch size.
    timings : dict[str, float]
        What took the time, in seconds (training each model, t-SNE, drawing and writing figures, ...).
    figures : list[dict]
        ``{"file": ..., "caption": ...}`` for every figure saved, in order.
    """

    def __init__(self, name: str, arguments: argparse.Namespace):
        self.name = name
        self.started = time.perf_counter()
        self.data_name = arguments.data
        self.seed = arguments.seed
        self.quick = arguments.quick
        self.requested_epochs = arguments.epochs
        default_out = Path("outputs-quick" if self.quick else "outputs") / name
        self.out = Path(arguments.out) if arguments.out is not None else default_out
        self.owns_gallery = arguments.out is None  # outputs/ is the demos' own folder; another may hold anything
        try:
            self.device = resolve_device(arguments.device)
        except DeviceError as error:
            raise SystemExit(f"{name}: error: {error}") from None
        threads.use(arguments.threads)  # --threads for every model, else each model's own default
        self.threads = arguments.threads
        if arguments.lang is not None:
            try:
                use_language(arguments.lang)  # figures, captions and the gallery page in this language
            except ValueError as error:
                raise SystemExit(f"{name}: error: {error}") from None
        self.out.mkdir(parents=True, exist_ok=True)
        self.data_info: dict = {"data": self.data_name}
        self.train_size = None
        self.results: dict[str, dict] = {}
        self.timings: dict[str, float] = {}
        self.figures: list[dict] = []
        self.pages: list[dict] = []
        live = sys.stdout.isatty() or os.environ.get(LIVE_PROGRESS_VARIABLE) == "1"
        self.progress_line = ProgressLine(name, live=live)
        self._reporting = contextlib.ExitStack()  # every fit of the demo reports to the line, until finish()
        self._reporting.enter_context(reporting_to(self.progress_line))

    @classmethod
    def start(cls, name: str, argv: list[str] | None = None) -> Demo:
        """Read the command line, pick the device, make the output folder; in a notebook, let figures show."""
        demo = cls(name, parse_arguments(name, argv))
        _show_figures_in_notebook()
        mode = " (quick)" if demo.quick else ""
        print(f"{name}{mode}: data {demo.data_name}, device {demo.device}, seed {demo.seed}, figures to {demo.out}")
        return demo

    # ---------------------------------------------------------------------------------------------------------------
    # Data, devices and how long to train

    def load_data(self, *, train_size: int | None = None, test_size: int | None = None) -> data.Dataset:
        """Load the ``--data`` set; a stratified subset of ``train_size`` / ``test_size`` images where it has more.

        The second notebook takes 10,000 training and 1,000 test digits of MNIST; ``mnist-5k`` (4,000 + 1,000) is
        used whole. ``--quick`` keeps a few hundred of each.
        """
        if self.quick:
            train_size = min(train_size or QUICK_TRAIN_SIZE, QUICK_TRAIN_SIZE)
            test_size = min(test_size or QUICK_TEST_SIZE, QUICK_TEST_SIZE)
        with self.timed(N_("load data")):
            try:
                dataset = data.load(self.data_name, seed=self.seed)
                sizes = {}
                if train_size is not None and train_size < len(dataset.x_train):
                    sizes["train_size"] = train_size
                if test_size is not None and test_size < len(dataset.x_test):
                    sizes["test_size"] = test_size
                if sizes:
                    dataset = data.load(self.data_name, seed=self.seed, **sizes)
            except data.DataError as error:
                raise SystemExit(f"{self.name}: error: {error}") from None
        self.train_size = len(dataset.x_train)
        self.data_info = {"data": dataset.name, "train_size": len(dataset.x_train),
                          "test_size": len(dataset.x_test), "image_shape": list(dataset.image_shape)}
        print(dataset)
        return dataset

    def schedule(self, notebook_epochs: int, notebook_samples: int, batch_size: int, *,
                 source: str = N_("the notebook")) -> Schedule:
        """How many epochs to train a model that the notebook (or ``source``) trains ``notebook_epochs`` epochs on
        ``notebook_samples`` images in batches of ``batch_size``.

        On a data set as large as the notebook's, its epochs. On a smaller one (the 4,000 digits of ``mnist-5k``), as
        many epochs as it takes to make about as many gradient steps as the notebook does: an epoch of fewer images
        is fewer steps, and it is the steps that train the network. ``--epochs`` overrides both; ``--quick`` trains
        2 epochs.
        """
        notebook_steps = notebook_epochs * math.ceil(notebook_samples / batch_size)
        if self.requested_epochs is not None or self.quick:
            epochs = self.requested_epochs if self.requested_epochs is not None else QUICK_EPOCHS
            return Schedule(epochs, _f("{epochs} epochs ({source} trains {notebook_epochs})", epochs=epochs,
                                       source=_f(source), notebook_epochs=notebook_epochs))
        steps_per_epoch = math.ceil(self.train_size / batch_size)
        if self.train_size >= notebook_samples:
            return Schedule(notebook_epochs, _f("{epochs} epochs, as {source}", epochs=notebook_epochs,
                                                source=_f(source)))
        epochs = math.ceil(notebook_steps / steps_per_epoch)
        return Schedule(epochs, _f("{epochs} epochs of {images:,} images, {steps:,} gradient steps: about the "
                                   "{notebook_steps:,} of {notebook_epochs} epochs on {notebook_images:,} in {source}",
                                   epochs=epochs, images=self.train_size, steps=epochs * steps_per_epoch,
                                   notebook_steps=notebook_steps, notebook_epochs=notebook_epochs,
                                   notebook_images=notebook_samples, source=_f(source)))

    def to_device(self, x):
        """A NumPy array -> the same array on the demo's device (the models' inputs)."""
        return to_device(x, self.device)

    # ---------------------------------------------------------------------------------------------------------------
    # Keeping a record

    def print_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """``fit``'s ``on_epoch_end``: one line per epoch (the first three, every tenth and the last when there are
        many)."""
        if epoch <= 3 or epoch % 10 == 0 or epoch == self.progress_line.total:
            self.progress_line.clear()
            print(f"  epoch {epoch:4d}  " + "  ".join(f"{name} {value:.4f}" for name, value in logs.items()),
                  flush=True)

    def record(self, label: str, history=None, **values) -> None:
        """Keep ``history``'s final values (and any other ``values``) under ``label`` for ``metrics.json``."""
        if history is not None:
            values = {"epochs": len(history), **values, **history.final(), "seconds": round(sum(history.seconds), 2)}
        self.results.setdefault(label, {}).update(values)

    def tsne(self, codes):
        """Latent codes (n, latent_dim), on any device -> 2-D points (n, 2) by t-SNE, as the notebooks compute it."""
        iterations = QUICK_TSNE_ITERATIONS if self.quick else TSNE_ITERATIONS
        with self.timed(N_("t-SNE")):
            return plots.tsne_embedding(to_numpy(codes), seed=TSNE_SEED, max_iter=iterations)

    @contextlib.contextmanager
    def timed(self, what: str):
        """Add the time the block takes to ``timings[what]``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[what] = self.timings.get(what, 0.0) + time.perf_counter() - started

    # ---------------------------------------------------------------------------------------------------------------
    # Output

    def save(self, fig, filename: str, caption: str):
        """Write ``fig`` to ``out/filename`` (PNG) and list it with its caption; returns ``fig``.

        A quick run's figures are stamped as such, and so are their captions, so that they are never taken for
        the results of a full run.
        """
        if self.quick:  # below the figure's edge, where no axis label is: the image grows to hold it
            fig.text(0.995, 0.0, _f("quick run: {epochs} epochs on a few hundred images", epochs=QUICK_EPOCHS),
                     ha="right", va="top", fontsize="small", color="#b00020")
            caption = _f("Quick run (a few hundred images, {epochs} epochs): {caption}", epochs=QUICK_EPOCHS,
                         caption=caption)
        with self.timed(N_("figures")):
            path = plots.save_figure(fig, self.out / filename, dpi=FIGURE_DPI, tight=self.quick)
        self.figures = [entry for entry in self.figures if entry["file"] != filename]
        self.figures.append({"file": filename, "caption": caption})
        print(f"saved {path}")
        return fig

    def save_page(self, text: str, filename: str, caption: str) -> Path:
        """Write an HTML page (``text``) to ``out/filename`` and list it with its caption for the gallery."""
        if self.quick:
            caption = _f("Quick run (a few hundred images, {epochs} epochs): {caption}", epochs=QUICK_EPOCHS,
                         caption=caption)
        with self.timed(N_("figures")):
            path = write_text_atomically(self.out / filename, text)
        self.pages = [entry for entry in self.pages if entry["file"] != filename] + [
            {"file": filename, "caption": caption}]
        print(f"saved {path}")
        return path

    def finish(self) -> Path:
        """Write ``metrics.json``, write the gallery page of the folder above (see the module's docstring), and print
        where the time went; returns the path of ``metrics.json``."""
        self._reporting.close()
        seconds = time.perf_counter() - self.started
        epochs = [values["epochs"] for values in self.results.values() if "epochs" in values]
        metrics = {
            "demo": self.name,
            **self.data_info,
            "device": self.device,
            "quick": self.quick,
            "seed": self.seed,
            "threads": self.threads,
            "epochs": max(epochs) if epochs else None,
            "seconds": round(seconds, 2),
            "timings": {what: round(value, 2) for what, value in self.timings.items()},
            "results": self.results,
            "figures": self.figures,
            "pages": self.pages,
        }
        path = write_text_atomically(self.out / METRICS, json.dumps(metrics, indent=2) + "\n")
        if self.owns_gallery or (self.out.parent / INDEX).is_file():  # keep the page true to the figures beside it
            write_index(self.out.parent)
        where = ", ".join(f"{what} {value:.1f} s" for what, value in
                          sorted(self.timings.items(), key=lambda item: -item[1]))
        figures = f"{len(self.figures)} figure" + ("" if len(self.figures) == 1 else "s")
        print(f"\n{self.name}: {figures} in {seconds:.1f} s ({where}); metrics in {path}")
        return path


def _show_figures_in_notebook() -> None:
    """Inside a Jupyter kernel, make a cell that ends with a figure show it; a script never opens a window."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        shell.run_line_magic("matplotlib", "inline")

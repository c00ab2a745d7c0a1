"""What every demo shares: its command line, its output folder, training with a record of it, and ``metrics.json``.

A demo begins with ``demo = Demo.start("simple_autoencoder")``, which reads the command line, picks the device and
makes the output folder. Then

- ``demo.load_data()`` loads the data set that ``--data`` names (a few hundred images with ``--quick``);
- ``demo.fit(label, model, loss, optimizer, x, ...)`` trains a model with :func:`scratchae.training.fit`, prints one
  line per epoch and records the final losses;
- ``demo.tsne(codes)`` maps latent codes to 2-D points with :func:`scratchae.plots.tsne_embedding`;
- ``demo.save(fig, file, caption)`` writes a figure as a PNG and returns it, so that a notebook cell ending with it
  shows it;
- ``demo.finish()`` writes ``metrics.json``: the data set, the epochs, the time taken and where it went, the final
  losses and accuracies, and every figure with its caption. ``scratchae demo`` builds its gallery from these files.

The command line of every demo::

    --data NAME     mnist-5k (the default, needs no network), mnist, fashion-mnist or digits
    --device NAME   auto (the default: the GPU if CuPy can use one), cpu or gpu
    --epochs N      epochs of every model (default: the notebooks' settings; 2 with --quick)
    --seed S        seeds the data split, the weights, the shuffling and the noise (default 0)
    --out DIR       where the figures go (default outputs/NAME/)
    --quick         a few seconds: a few hundred images, 2 epochs, a short t-SNE; the same code otherwise

Arguments a demo does not know are ignored, so that it also runs inside a Jupyter kernel, whose command line holds
the kernel's own arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path


from scratchae import data, plots
from scratchae.arguments import count
from scratchae.backend import DEVICES, DeviceError, resolve_device, to_device, to_numpy
from scratchae.training import fit

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


def parse_arguments(name: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The demo's options from ``argv`` (``sys.argv[1:]`` by default); unknown arguments are ignored."""
    parser = argparse.ArgumentParser(prog=f"python demos/{name}.py", allow_abbrev=False,
                                     description="Reproduce a chapter of the notebooks and save its figures as PNG.")
    parser.add_argument("--data", choices=data.DATASETS, default="mnist-5k", help="data set (default: mnist-5k)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="cpu, gpu or auto (default)")
    parser.add_argument("--epochs", type=count(1), default=None,
                        help="epochs of every model (default: the notebooks' settings, 2 with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random (default: 0)")
    parser.add_argument("--out", default=None, help=f"output folder (default: outputs/{name})")
    parser.add_argument("--quick", action="store_true", help="a run of a few seconds on a few hundred images")
    arguments, _ = parser.parse_known_args(argv)
    return arguments


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
        self.out = Path(arguments.out if arguments.out is not None else Path("outputs") / name)
        try:
            self.device = resolve_device(arguments.device)
        except DeviceError as error:
            raise SystemExit(f"{name}: error: {error}") from None
        self.out.mkdir(parents=True, exist_ok=True)
        self.data_info: dict = {"data": self.data_name}
        self.results: dict[str, dict] = {}
        self.timings: dict[str, float] = {}
        self.figures: list[dict] = []

    @classmethod
    def start(cls, name: str, argv: list[str] | None = None) -> Demo:
        """Read the command line, pick the device, make the output folder; in a notebook, let figures show."""
        demo = cls(name, parse_arguments(name, argv))
        _show_figures_in_notebook()
        mode = " (quick)" if demo.quick else ""
        print(f"{name}{mode}: data {demo.data_name}, device {demo.device}, seed {demo.seed}, figures to {demo.out}")
        return demo

    # ---------------------------------------------------------------------------------------------------------------
    # Data and devices

    def epochs(self, notebook_epochs: int) -> int:
        """Epochs to train: ``--epochs`` if given, else the notebook's number (or 2 with ``--quick``)."""
        if self.requested_epochs is not None:
            return self.requested_epochs
        return QUICK_EPOCHS if self.quick else notebook_epochs

    def load_data(self, *, train_size: int | None = None, test_size: int | None = None) -> data.Dataset:
        """Load the ``--data`` set; a stratified subset of ``train_size`` / ``test_size`` images where it has more.

        The second notebook takes 10,000 training and 1,000 test digits of MNIST; ``mnist-5k`` (4,000 + 1,000) is
        used whole. ``--quick`` keeps a few hundred of each.
        """
        if self.quick:
            train_size = min(train_size or QUICK_TRAIN_SIZE, QUICK_TRAIN_SIZE)
            test_size = min(test_size or QUICK_TEST_SIZE, QUICK_TEST_SIZE)
        with self.timed("load data"):
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
        self.data_info = {"data": dataset.name, "train_size": len(dataset.x_train),
                          "test_size": len(dataset.x_test), "image_shape": list(dataset.image_shape)}
        print(dataset)
        return dataset

    def to_device(self, x):
        """A NumPy array -> the same array on the demo's device (the models' inputs)."""
        return to_device(x, self.device)

    # ---------------------------------------------------------------------------------------------------------------
    # Training and t-SNE

    def fit(self, label: str, model, loss, optimizer, x, y=None, *, epochs: int, batch_size: int, validation=None,
            **options):
        """Train ``model`` with :func:`scratchae.training.fit`, print each epoch, record the final values.

        ``label`` names the model in the printed lines, in ``metrics.json`` and in the gallery. The other arguments
        are those of ``fit``; the shuffling is seeded by ``--seed``.

        Returns
        -------
        scratchae.training.History
        """
        print(f"\n{label}: {epochs} epochs, batch size {batch_size}, {len(x)} training samples, {self.device}")

        def print_epoch(epoch, logs):
            values = "  ".join(f"{name} {value:.4f}" for name, value in logs.items())
            print(f"  epoch {epoch:3d}/{epochs}  {values}", flush=True)

        with self.timed(f"train {label}") as clock:
            history = fit(model, loss, optimizer, x, y, epochs=epochs, batch_size=batch_size, validation=validation,
                          seed=self.seed, progress=False, on_epoch_end=print_epoch, **options)
        self.record(label, epochs=len(history), batch_size=batch_size, **history.final(),
                    seconds=round(clock.seconds, 2))
        return history

    def record(self, label: str, **values) -> None:
        """Keep values under ``label`` in the results (final losses, accuracies, a baseline to compare with)."""
        self.results.setdefault(label, {}).update(values)

    def tsne(self, codes):
        """Latent codes (n, latent_dim), on any device -> 2-D points (n, 2) by t-SNE, as the notebooks compute it."""
        iterations = QUICK_TSNE_ITERATIONS if self.quick else TSNE_ITERATIONS
        with self.timed("t-SNE"):
            return plots.tsne_embedding(to_numpy(codes), seed=TSNE_SEED, max_iter=iterations)

    @contextlib.contextmanager
    def timed(self, what: str):
        """Add the time the block takes to ``timings[what]``; the yielded clock's ``seconds`` is this block's."""
        clock = _Clock()
        started = time.perf_counter()
        try:
            yield clock
        finally:
            clock.seconds = time.perf_counter() - started
            self.timings[what] = self.timings.get(what, 0.0) + clock.seconds

    # ---------------------------------------------------------------------------------------------------------------
    # Output

    def save(self, fig, filename: str, caption: str):
        """Write ``fig`` to ``out/filename`` (PNG) and list it with its caption; returns ``fig``."""
        with self.timed("figures"):
            path = plots.save_figure(fig, self.out / filename, dpi=FIGURE_DPI)
        self.figures = [entry for entry in self.figures if entry["file"] != filename]
        self.figures.append({"file": filename, "caption": caption})
        print(f"saved {path}")
        return fig

    def finish(self) -> Path:
        """Write ``metrics.json`` into the output folder and print where the time went; returns its path."""
        seconds = time.perf_counter() - self.started
        epochs = [values["epochs"] for values in self.results.values() if "epochs" in values]
        metrics = {
            "demo": self.name,
            **self.data_info,
            "device": self.device,
            "quick": self.quick,
            "seed": self.seed,
            "epochs": max(epochs) if epochs else None,
            "seconds": round(seconds, 2),
            "timings": {what: round(value, 2) for what, value in self.timings.items()},
            "results": self.results,
            "figures": self.figures,
        }
        path = self.out / "metrics.json"
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        where = ", ".join(f"{what} {value:.1f} s" for what, value in
                          sorted(self.timings.items(), key=lambda item: -item[1]))
        figures = f"{len(self.figures)} figure" + ("" if len(self.figures) == 1 else "s")
        print(f"\n{self.name}: {figures} in {seconds:.1f} s ({where}); metrics in {path}")
        return path


class _Clock:
    seconds = 0.0


def _show_figures_in_notebook() -> None:
    """Inside a Jupyter kernel, make a cell that ends with a figure show it; a script never opens a window."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        shell.run_line_magic("matplotlib", "inline")

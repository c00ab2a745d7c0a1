"""Every figure of the notebooks, drawn from NumPy arrays.

Each function returns a :class:`matplotlib.figure.Figure` built with matplotlib's object-oriented API. Nothing here
touches ``pyplot``: no window ever opens and no global backend is switched, so the figures are drawn the same way in a
notebook, in a script and on a headless server. Show a figure in a notebook by leaving it as the last expression of a
cell; write it to disk with :func:`save_figure`.

The functions take NumPy arrays only. Arrays that live on a GPU are converted first by the caller::

    from scratchae.backend import to_numpy
    fig = reconstructions(to_numpy(x), to_numpy(model.reconstruct(x)), image_shape=(28, 28))

Images may come flat, ``(n, height * width)``, or already shaped, ``(n, height, width)``; pixel values are drawn on a
fixed grey scale from 0 (black) to 1 (white), so two figures can be compared by eye.

Every text a figure draws (titles, axis labels, legends, row titles) is looked up in the message catalogs of
:mod:`scratchae.i18n`: ``lang="pt"`` draws it in Portuguese, and without ``lang`` the language is the one of
:func:`scratchae.use_language` or of the environment (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``). A
title the catalog knows is translated (the default titles, the notebooks' own titles); any other is drawn as given.
Numbers that a figure writes (``t = 0.50``, a loss in a row title, the ticks of its axes) take the language's
decimal point.

The figures, by notebook chapter:

- sample digits, noisy inputs: :func:`image_row`
- loss per epoch: :func:`loss_curves`, several runs on one plot: :func:`compare_loss_curves`, final losses:
  :func:`loss_table`
- originals over reconstructions: :func:`reconstructions`, several models at once: :func:`compare_reconstructions`
- noisy / denoised / original, generated samples: :func:`image_grid`
- t-SNE of latent codes: :func:`tsne_embedding`, then :func:`latent_scatter` or :func:`side_by_side_scatter`
- interpolation between two codes: :func:`interpolation_strip`
- a variational autoencoder's total loss beside its two terms: :func:`history_panels`; the manifold of a 2-d
  latent space: :func:`image_mosaic`, two of them side by side: :func:`side_by_side_mosaics`
- a convolution's learned kernels: :func:`filter_grid`; an image's feature maps through a network:
  :func:`feature_maps`
- a plain code's values against a sparse one's: :func:`code_distributions`; anomaly scores of normal and anomalous
  images: :func:`score_histogram`, :func:`roc_curve`
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from scratchae.atomic_files import write_atomically
from scratchae.i18n import N_, decimal_point, format_text, gettext

#: Width and height, in inches, of one image in a grid of images.
CELL_INCHES = 1.5

#: Readable names for the series that :class:`scratchae.training.History` and Keras record.
SERIES_LABELS = {
    "loss": N_("training loss"),
    "val_loss": N_("validation loss"),
    "accuracy": N_("training accuracy"),
    "val_accuracy": N_("validation accuracy"),
}


# --------------------------------------------------------------------------------------------------------------------
# Numbers on the axes
# --------------------------------------------------------------------------------------------------------------------


class _DecimalPointFormatter(ScalarFormatter):
    """matplotlib's usual tick labels (``0.02``, ``0.04``, the offset ``1e-5``) with another decimal point."""

    def __init__(self, point: str):
        super().__init__()
        self.swap = str.maketrans(".", point)

    def __call__(self, x, pos=None):
        return super().__call__(x, pos).translate(self.swap)

    def get_offset(self):
        return super().get_offset().translate(self.swap)


def _numbers_in_language(draw):
    """Make the figure function ``draw`` write the ticks of its axes with the decimal point of its ``lang``.

    The ticks are matplotlib's own (it chooses 0.02, 0.04 ... from the data), so the figure's text cannot translate
    them: each axis that still has matplotlib's usual formatter gets one that writes the language's decimal point.
    """
    @functools.wraps(draw)
    def drawn(*args, lang=None, **kwargs):
        fig = draw(*args, lang=lang, **kwargs)
        point = decimal_point(lang)
        if point != ".":
            for axis in (axis for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)):
                if type(axis.get_major_formatter()) is ScalarFormatter:  # not a log axis, not ticks we wrote
                    axis.set_major_formatter(_DecimalPointFormatter(point))
        return fig
    return drawn


# --------------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------------


def _as_images(images, image_shape, name="images"):
    """Check a batch of images against ``image_shape`` and return it as an ``(n, height, width)`` array."""
    images = np.asarray(images)
    height, width = _check_image_shape(image_shape)
    if images.ndim < 2:
        raise ValueError(
            f"{name} must be a batch of images, shape (n, {height * width}) or (n, {height}, {width}); "
            f"got shape {images.shape}"
        )
    per_image = int(np.prod(images.shape[1:]))
    if per_image != height * width:
        raise ValueError(
            f"{name} of shape {images.shape} do not match image_shape {(height, width)}: each image has "
            f"{per_image} values, expected {height} * {width} = {height * width}"
        )
    return images.reshape(len(images), height, width)


def _check_image_shape(image_shape):
    """Return ``(height, width)`` from an image shape such as ``(28, 28)``, or raise a ValueError."""
    shape = tuple(int(size) for size in image_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"image_shape must be (height, width) with positive sizes, got {tuple(image_shape)}")
    return shape


def _draw_image(ax, image, title=None):
    """Draw one grey-scale image on ``ax``, without ticks or frame.

    The grey scale is fixed to [0, 1] rather than stretched to each image's own range: a faint reconstruction
    must look faint, not be brightened into a sharp one.
    """
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title, fontsize="small")


def _named_rows(rows):
    """Turn ``{title: images}`` or ``[(title, images), ...]`` into a list of ``(title, images)`` pairs."""
    pairs = list(rows.items()) if isinstance(rows, Mapping) else [tuple(row) for row in rows]
    if not pairs:
        raise ValueError("rows is empty: give at least one (title, images) row")
    for row in pairs:
        if len(row) != 2:
            raise ValueError(f"each row must be a (title, images) pair, got {len(row)} items")
    return pairs


def _draw_row(subfigure, images, n_columns, image_titles):
    """Draw ``images`` left to right in the first cells of a row of ``n_columns``; titles go above the first ones."""
    for column, image in enumerate(images):
        ax = subfigure.add_subplot(1, n_columns, column + 1)
        _draw_image(ax, image, image_titles[column] if column < len(image_titles) else None)


def image_grid(rows, image_shape, *, n=None, title=None, image_titles=None, lang=None):
    r"""Draw rows of images, each row under its own title.

    This is the figure of the denoising chapter (noisy / denoised / original) and of generation (decoded from
    :math:`z \sim \mathcal{N}(0, I)` / decoded from codes like the real ones); the other image figures are built on it.

    Parameters
    ----------
    rows : dict[str, array] or list of (str, array)
        Row title -> images of shape ``(k, height * width)`` or ``(k, height, width)``, drawn top to bottom.
    image_shape : tuple of int
        ``(height, width)`` of one image, e.g. ``(28, 28)`` for MNIST or ``(8, 8)`` for the digits data set.
    n : int, optional
        Draw only the first ``n`` images of each row. All of them by default.
    title : str, optional
        Title of the whole figure.
    image_titles : sequence of str, optional
        One title per column, written above the images of the first row (e.g. the values of ``t`` in an
        interpolation).
    lang : str, optional
        The language of the titles (see the module's docstring).

    Returns
    -------
    matplotlib.figure.Figure
        One image axis per image drawn.

    Raises
    ------
    ValueError
        If a row's images do not match ``image_shape``, every row is empty, or there are more column titles than
        columns.

    Examples
    --------
    >>> fig = image_grid({"Noisy input": x_noisy, "Denoised": x_denoised, "Original": x}, (28, 28), n=10)
    """
    named = [(gettext(row_title, lang), _as_images(images, image_shape, f"row {row_title!r}")[:n])
             for row_title, images in _named_rows(rows)]
    n_columns = max(len(images) for _, images in named)
    if n_columns == 0:
        raise ValueError("every row is empty: there are no images to draw")
    image_titles = [] if image_titles is None else list(image_titles)
    if len(image_titles) > n_columns:
        raise ValueError(f"got {len(image_titles)} image_titles for {n_columns} columns of images")

    # Each row is a subfigure, so its title sits centred above it whatever the number of columns.
    extra = 0.6 if title else 0.0
    fig = Figure(figsize=(CELL_INCHES * n_columns, (CELL_INCHES + 0.4) * len(named) + extra), layout="constrained")
    subfigures = fig.subfigures(len(named), 1, squeeze=False)[:, 0]
    for row, (subfigure, (row_title, images)) in enumerate(zip(subfigures, named)):
        subfigure.suptitle(row_title)
        _draw_row(subfigure, images, n_columns, image_titles if row == 0 else [])
    if title:
        fig.suptitle(gettext(title, lang), fontsize="x-large")
    return fig


def image_row(images, image_shape, *, title=N_("Samples"), n=10, image_titles=None, lang=None):
    """Draw the first ``n`` images side by side in one row (the notebooks' "MNIST samples" and "noisy input").

    Parameters
    ----------
    images : array, shape (k, height * width) or (k, height, width)
        The images, with pixel values in [0, 1].
    image_shape : tuple of int
        ``(height, width)`` of one image.
    title : str
        Title above the row.
    n : int or None
        How many images to draw (all when None).
    image_titles : sequence of str, optional
        A small title above each image.
    lang : str, optional
        The language of the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return image_grid([(title, images)], image_shape, n=n, image_titles=image_titles, lang=lang)


def compare_reconstructions(originals, reconstructed, image_shape, *, losses=None, n=10,
                            title=N_("Originals and reconstructions"), originals_title=N_("Originals"), lang=None):
    """Draw the originals on top and, below them, one row of reconstructions per model.

    Exercise 1 compares latent sizes this way (``{"latent 2": ..., "latent 4": ..., "latent 32": ...}``) and
    exercise 2 compares a deep autoencoder with a single hidden layer; the final losses go into the row titles.

    Parameters
    ----------
    originals : array, shape (k, height * width) or (k, height, width)
        The input images.
    reconstructed : dict[str, array]
        Model name -> its reconstructions of ``originals``, in the same order.
    image_shape : tuple of int
        ``(height, width)`` of one image.
    losses : dict[str, float], optional
        Model name -> a final loss to print in the row title (e.g. the last validation loss).
    n : int or None
        How many images per row (all when None).
    title : str, optional
        Title of the figure.
    originals_title : str
        Title of the first row.
    lang : str, optional
        The language of the titles.

    Returns
    -------
    matplotlib.figure.Figure
        ``(1 + len(reconstructed)) * n`` image axes.

    Raises
    ------
    ValueError
        If the images do not match ``image_shape``, or a model has fewer reconstructions than there are originals
        to draw.
    """
    originals = _as_images(originals, image_shape, "originals")[:n]
    losses = {} if losses is None else losses
    rows = [(originals_title, originals)]
    for name, images in reconstructed.items():
        images = _as_images(images, image_shape, f"reconstructions of {name!r}")[:n]
        if len(images) < len(originals):
            raise ValueError(f"{len(originals)} originals but only {len(images)} reconstructions of {name!r}")
        shown = gettext(name, lang)
        row_title = format_text("{name} (loss {loss:.4f})", lang, name=shown, loss=float(losses[name])) \
            if name in losses else shown
        rows.append((row_title, images))
    return image_grid(rows, image_shape, title=title, lang=lang)


def reconstructions(originals, reconstructed, image_shape, *, n=10, title=None, row_title=N_("Reconstructions"),
                    originals_title=N_("Originals"), lang=None):
    """Draw originals over their reconstructions: two rows on the same [0, 1] grey scale.

    Parameters
    ----------
    originals : array, shape (k, height * width) or (k, height, width)
        The input images.
    reconstructed : array, same shape as ``originals``
        What the autoencoder made of them.
    image_shape : tuple of int
        ``(height, width)`` of one image.
    n : int or None
        How many pairs to draw (all when None).
    title : str, optional
        Title of the figure.
    row_title : str
        Title of the second row.
    originals_title : str
        Title of the first row (the first notebook's "Originals", the second's "Original images").
    lang : str, optional
        The language of the titles.

    Returns
    -------
    matplotlib.figure.Figure
        ``2 * n`` image axes.
    """
    return compare_reconstructions(originals, {row_title: reconstructed}, image_shape, n=n, title=title,
                                   originals_title=originals_title, lang=lang)


def interpolation_strip(images, image_shape, ts, *, title=N_("Linear interpolation in the latent space"), columns=6,
                        lang=None):
    r"""Draw the images decoded along :math:`z(t) = (1 - t) z_1 + t z_2`, each under its value of ``t``.

    Parameters
    ----------
    images : array, shape (steps, height * width) or (steps, height, width)
        The decoded images, one per value of ``t``.
    image_shape : tuple of int
        ``(height, width)`` of one image.
    ts : sequence of float, length steps
        The interpolation weights, e.g. ``np.linspace(0, 1, 12)``.
    title : str
        Title above the strip.
    columns : int
        Images per line: a longer strip goes on in the next line, so that a page never shrinks it until its
        labels cannot be read.
    lang : str, optional
        The language of the title and of the numbers.

    Returns
    -------
    matplotlib.figure.Figure
        ``steps`` image axes titled ``t = 0.00`` ... ``t = 1.00``, left to right and top to bottom.

    Raises
    ------
    ValueError
        If there is not one value of ``t`` per image.
    """
    ts = np.asarray(ts, dtype=float).reshape(-1)
    if len(ts) != len(images):
        raise ValueError(f"ts has shape {ts.shape} but images has shape {np.shape(images)}: give one t per image")
    images = _as_images(images, image_shape)
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    columns = min(columns, len(images))
    lines = -(-len(images) // columns)  # ceil
    extra = 0.6 if title else 0.0
    fig = Figure(figsize=(CELL_INCHES * columns, (CELL_INCHES + 0.3) * lines + extra), layout="constrained")
    for index, (image, t) in enumerate(zip(images, ts)):
        _draw_image(fig.add_subplot(lines, columns, index + 1), image, format_text("t = {t:.2f}", lang, t=t))
    if title:
        fig.suptitle(gettext(title, lang), fontsize="x-large")
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------------------------


def _history_mapping(history):
    """The mapping of name -> per-epoch values inside ``history``.

    ``history`` is such a mapping itself, a :class:`scratchae.training.History` (whose ``metrics`` is one) or a
    Keras ``History`` (whose ``history`` is one).
    """
    for mapping in (history, getattr(history, "metrics", None), getattr(history, "history", None)):
        if isinstance(mapping, Mapping):
            return mapping
    raise TypeError(f"expected a mapping of name -> per-epoch values, or a History holding one, "
                    f"got {type(history).__name__}")


def _as_series(history):
    """Return the per-epoch series of a history as a dict of name -> list of floats, leaving out empty ones."""
    series = _history_mapping(history)
    return {str(name): [float(value) for value in values] for name, values in series.items() if len(values)}


def _loss_names(series):
    """The names to plot on a loss axis: those that mention "loss", or all of them if none does."""
    names = [name for name in series if "loss" in name]
    return names or list(series)


def _label(name, lang=None):
    return gettext(SERIES_LABELS.get(name, name), lang)


def _plot_history(ax, history, *, run=None, color=None, markers=False, lang=None):
    """Draw the loss series of one history on ``ax``: training solid, validation dashed."""
    series = _as_series(history)
    for name in _loss_names(series):
        values = series[name]
        epochs = np.arange(1, len(values) + 1)  # epoch 1 is the first one trained
        label = _label(name, lang) if run is None else f"{gettext(run, lang)}: {_label(name, lang)}"
        ax.plot(epochs, values, label=label, color=color, marker="o" if markers else None, markersize=4,
                linestyle="--" if name.startswith("val") else "-")


def _loss_axes(title, grid, log, xlabel=N_("Epoch"), lang=None):
    """A figure with one empty axis labelled for losses per epoch (or per ``xlabel``)."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    _label_loss_axis(ax, title, grid, log, xlabel, lang)
    return fig, ax


def _label_loss_axis(ax, title, grid, log, xlabel, lang):
    ax.set_title(gettext(title, lang))
    ax.set_xlabel(gettext(xlabel, lang))
    ax.set_ylabel(gettext("Loss", lang))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers: no tick at 2.5
    if log:
        ax.set_yscale("log")
    ax.grid(grid)


@_numbers_in_language
def loss_curves(history, *, title=N_("Loss during training"), markers=False, grid=False, log=False,
                xlabel=N_("Epoch"), lang=None):
    """Draw the training and validation loss per epoch.

    Parameters
    ----------
    history : mapping or History
        Series name -> one value per epoch, e.g. ``{"loss": [...], "val_loss": [...]}``, or a
        :class:`scratchae.training.History` (or a Keras ``History``) that holds one. Only series whose name
        contains "loss" are drawn (all of them if none does), so accuracies recorded beside the losses stay out of
        the loss axis.
    title : str
        Title of the plot.
    markers : bool
        Mark each epoch with a dot (the second notebook's style).
    grid : bool
        Draw a grid.
    log : bool
        Use a logarithmic loss axis, where late epochs' small gains stay visible.
    xlabel : str
        What one value is of (the values are numbered from 1): "Epoch", or "Step" for a loss per batch.
    lang : str, optional
        The language of the title, the axes and the legend.

    Returns
    -------
    matplotlib.figure.Figure
        One line per series and a legend.
    """
    fig, ax = _loss_axes(title, grid, log, xlabel, lang)
    _plot_history(ax, history, markers=markers, lang=lang)
    if ax.lines:  # an empty history (no epoch yet) draws no line, and a legend of nothing would only warn
        ax.legend()
    return fig


@_numbers_in_language
def compare_loss_curves(runs, *, title=N_("Loss of several models"), markers=False, grid=True, log=False,
                        difference_to=None, lang=None):
    """Draw several runs' loss curves on one plot, one colour per run (training solid, validation dashed).

    Parameters
    ----------
    runs : dict[str, mapping or History]
        Run name -> its history, e.g. ``{"single hidden layer": history1, "deep": history2}``.
    title, markers, grid, log, lang
        As in :func:`loss_curves`.
    difference_to : str, optional
        A run's name: below the curves, a second panel draws each other run's loss minus that run's, epoch by
        epoch and series by series, around a line at 0. Curves that lie on top of each other on the first panel
        (a difference of 1 % of the loss) come apart there.

    Returns
    -------
    matplotlib.figure.Figure
        One line per run and series, and a legend; with ``difference_to``, a second axis with one line per other
        run and series.
    """
    if not runs:
        raise ValueError("runs is empty: give at least one name -> history")
    if difference_to is not None and difference_to not in runs:
        raise ValueError(f"difference_to={difference_to!r} is not one of the runs: {', '.join(map(repr, runs))}")
    if difference_to is None:
        fig, ax = _loss_axes(title, grid, log, lang=lang)
    else:  # the curves on top, their differences below, on one axis of epochs
        fig = Figure(figsize=(8, 8), layout="constrained")
        ax, below = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        _label_loss_axis(ax, title, grid, log, N_("Epoch"), lang)
        ax.set_xlabel("")
    colors = colormaps["tab10"].colors
    for index, (run, history) in enumerate(runs.items()):
        _plot_history(ax, history, run=run, color=colors[index % len(colors)], markers=markers, lang=lang)
    ax.legend()
    if difference_to is not None:
        _draw_differences(below, runs, difference_to, colors, grid, lang)
    return fig


def _draw_differences(bottom, runs, reference, colors, grid, lang):
    """On ``bottom``, each run's loss minus the ``reference`` run's, per series (training solid, validation dashed)."""
    base = _as_series(runs[reference])
    for index, (run, history) in enumerate(runs.items()):
        if run == reference:
            continue
        series = _as_series(history)
        for name in _loss_names(series):
            if name not in base:
                continue
            length = min(len(series[name]), len(base[name]))
            difference = np.asarray(series[name][:length]) - np.asarray(base[name][:length])
            bottom.plot(np.arange(1, length + 1), difference, color=colors[index % len(colors)],
                        linestyle="--" if name.startswith("val") else "-",
                        label=f"{gettext(run, lang)}: {_label(name, lang)}")
    bottom.axhline(0.0, color=colors[list(runs).index(reference) % len(colors)], linewidth=1)
    bottom.set_title(format_text("Difference to {run} (below 0: lower loss than {run})", lang,
                                 run=gettext(reference, lang)), fontsize="medium")
    bottom.set_xlabel(gettext("Epoch", lang))
    bottom.set_ylabel(gettext("Loss difference", lang))
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(grid)
    if bottom.lines[:-1]:
        bottom.legend()


def _final_values(values):
    """Name -> final value: the last epoch of each per-epoch series, plain numbers as they are, None if empty."""
    finals = {}
    for name, value in _history_mapping(values).items():
        if np.ndim(value) == 0:
            finals[name] = float(value)
        else:
            finals[name] = float(value[-1]) if len(value) else None
    return finals


def loss_table(rows, *, title=N_("Final losses"), digits=4, lang=None):
    """Draw a small table of final losses, one row per model (exercise 2).

    Parameters
    ----------
    rows : dict[str, mapping or History]
        Model name -> either its final values (``{"loss": 0.011, "val_loss": 0.012}``) or its whole history, from
        which the last epoch's values are taken.
    title : str
        Title above the table.
    digits : int
        Decimal places shown.
    lang : str, optional
        The language of the title, the headings and the numbers.

    Returns
    -------
    matplotlib.figure.Figure
        A figure whose only axis holds the table; a value a model did not record shows as a dash.
    """
    if not rows:
        raise ValueError("rows is empty: give at least one model name -> losses")
    finals = {name: _final_values(values) for name, values in rows.items()}
    columns = list(dict.fromkeys(column for values in finals.values() for column in values))
    cells = [[format_text("{value:.{digits}f}", lang, value=values[column], digits=digits)
              if values.get(column) is not None else "-" for column in columns] for values in finals.values()]

    fig = Figure(figsize=(2.0 * (len(columns) + 1), 0.4 * (len(rows) + 1) + 0.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    fig.suptitle(gettext(title, lang))  # centred on the figure: the row names stick out to the left of the axis
    # The table fills the axis, whose size the figure size above sets from the number of rows and columns.
    ax.table(cellText=cells, rowLabels=[gettext(name, lang) for name in finals],
             colLabels=[_label(column, lang) for column in columns],
             cellLoc="center", bbox=[0.0, 0.0, 1.0, 1.0])
    return fig


@_numbers_in_language
def history_panels(history, names, *, titles=None, title=None, markers=False, lang=None):
    """Draw several measures of a run side by side, one panel each, training solid and validation dashed.

    A variational autoencoder's loss is the sum of two terms that pull in opposite directions; this figure shows the
    total beside each term (``names=("loss", "reconstruction", "kl")``).

    Parameters
    ----------
    history : mapping or History
        As in :func:`loss_curves`; ``name`` and ``"val_" + name`` are drawn in the panel of ``name``.
    names : sequence of str
        The measures, one panel each, left to right.
    titles : sequence of str, optional
        A title per panel (the names by default).
    title : str, optional
        Title of the whole figure.
    markers : bool
        Mark each epoch with a dot.
    lang : str, optional
        The language of the titles, the axes and the legends.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per name.

    Raises
    ------
    ValueError
        If a name has no values in ``history``.
    """
    series = _as_series(history)
    names = list(names)
    titles = list(titles) if titles is not None else names
    missing = [name for name in names if name not in series]
    if missing:
        raise ValueError(f"the history has no values for {', '.join(missing)}; it has {', '.join(series) or 'none'}")
    fig = Figure(figsize=(5 * len(names), 4.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name, panel_title in zip(axes, names, titles):
        for shown in (name, f"val_{name}"):
            if shown in series:
                values = series[shown]
                validation = shown.startswith("val_")
                ax.plot(np.arange(1, len(values) + 1), values,
                        label=gettext("validation", lang) if validation else gettext("training", lang),
                        linestyle="--" if validation else "-", marker="o" if markers else None, markersize=4)
        ax.set_title(gettext(panel_title, lang))
        ax.set_xlabel(gettext("Epoch", lang))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(gettext(title, lang), fontsize="x-large")
    return fig


def image_mosaic(images, image_shape, *, columns, title=None, axis_labels=None, ticks=None, lang=None):
    """Tile many small images into one picture, row by row (the manifold of a 2-d latent space).

    Parameters
    ----------
    images : array, shape (rows * columns, height * width) or (rows * columns, height, width)
        The images, first row left to right, then the next row.
    image_shape : tuple of int
        ``(height, width)`` of one image.
    columns : int
        Images per row.
    title : str, optional
        Title above the mosaic.
    axis_labels : (str, str), optional
        Labels of the horizontal and vertical axes (what changes along each).
    ticks : (sequence of float, sequence of float), optional
        A value per column and per row, written along the axes (for example the latent coordinates).
    lang : str, optional
        The language of the title, the axis labels and the numbers.

    Returns
    -------
    matplotlib.figure.Figure
        One axis holding the whole mosaic.
    """
    images = _as_images(images, image_shape)
    height, width = images.shape[1:]
    if columns < 1 or len(images) % columns:
        raise ValueError(f"{len(images)} images do not fill rows of {columns}")
    rows = len(images) // columns
    # (rows, columns, height, width) -> (rows * height, columns * width): one picture, drawn in one call
    mosaic = images.reshape(rows, columns, height, width).transpose(0, 2, 1, 3).reshape(rows * height, columns * width)
    fig = Figure(figsize=(min(12.0, 0.6 * columns + 1.5), min(12.0, 0.6 * rows + 1.5)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0)
    if ticks is None:
        ax.set_axis_off()
    else:
        # A label on every other column and row at most, so that the labels stay readable on a 20 x 20 grid.
        column_values, row_values = ticks
        column_step, row_step = max(1, columns // 10), max(1, rows // 10)
        ax.set_xticks(np.arange(0, columns, column_step) * width + width / 2,
                      [format_text("{v:.2f}", lang, v=value) for value in list(column_values)[::column_step]],
                      fontsize="medium")
        ax.set_yticks(np.arange(0, rows, row_step) * height + height / 2,
                      [format_text("{v:.2f}", lang, v=value) for value in list(row_values)[::row_step]],
                      fontsize="medium")
    if axis_labels is not None:
        ax.set_xlabel(gettext(axis_labels[0], lang))
        ax.set_ylabel(gettext(axis_labels[1], lang))
    if title:
        ax.set_title(gettext(title, lang))
    return fig


def _mosaic(images, columns):
    """(rows * columns, height, width) -> one (rows * height, columns * width) picture, row by row."""
    height, width = images.shape[1:]
    if columns < 1 or len(images) % columns:
        raise ValueError(f"{len(images)} images do not fill rows of {columns}")
    rows = len(images) // columns
    return images.reshape(rows, columns, height, width).transpose(0, 2, 1, 3).reshape(rows * height, columns * width)


def side_by_side_mosaics(panels, image_shape, *, columns, title=None, axis_labels=None, ticks=None, lang=None):
    """Two or more mosaics of :func:`image_mosaic` side by side, one per model, on the same grey scale (the
    manifolds of two 2-d latent spaces decoded from the same grid of codes).

    Parameters
    ----------
    panels : dict[str, array]
        Panel title -> its images, shape (rows * columns, height * width) or (rows * columns, height, width).
    image_shape, columns, axis_labels, ticks, lang
        As in :func:`image_mosaic`, the same for every panel.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per panel, each holding its whole mosaic.
    """
    named = _named_rows(panels)
    mosaics = [(name, _mosaic(_as_images(images, image_shape, f"panel {name!r}"), columns)) for name, images in named]
    height, width = _check_image_shape(image_shape)
    rows = mosaics[0][1].shape[0] // height
    side = min(8.0, 0.45 * max(rows, columns) + 1.5)
    fig = Figure(figsize=(side * len(mosaics), side + (0.5 if title else 0.0)), layout="constrained")
    axes = fig.subplots(1, len(mosaics), squeeze=False)[0]
    for ax, (name, mosaic) in zip(axes, mosaics):
        ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(gettext(name, lang))
        if ticks is None:
            ax.set_axis_off()
        else:
            column_values, row_values = ticks
            ax.set_xticks(np.arange(columns) * width + width / 2,
                          [format_text("{v:.1f}", lang, v=value) for value in column_values],
                          fontsize="x-small", rotation=90)
            ax.set_yticks(np.arange(rows) * height + height / 2,
                          [format_text("{v:.1f}", lang, v=value) for value in row_values], fontsize="x-small")
        if axis_labels is not None:
            ax.set_xlabel(gettext(axis_labels[0], lang))
            ax.set_ylabel(gettext(axis_labels[1], lang))
    if title:
        fig.suptitle(gettext(title, lang), fontsize="x-large")
    return fig


@_numbers_in_language
def filter_grid(filters, *, columns=8, title=None, lang=None):
    """Draw convolution kernels as small images, on one colour scale centred on 0 (red positive, blue negative).

    Parameters
    ----------
    filters : array, shape (k, kh, kw)
        The kernels, e.g. ``W[:, 0]`` of a first :class:`~scratchae.conv.Conv2D` layer, (C_out, KH, KW).
    columns : int
        Kernels per row.
    title : str, optional
        Title of the figure.
    lang : str, optional
        The language of the title and of the colour bar's label.

    Returns
    -------
    matplotlib.figure.Figure
        One image axis per kernel (titled by its index), all on the colour scale [-m, m] where m is the largest
        absolute weight, and a colour bar.
    """
    filters = np.asarray(filters, dtype=float)
    if filters.ndim != 3 or len(filters) == 0:
        raise ValueError(f"filters must have shape (k, kh, kw), got {filters.shape}")
    limit = float(np.max(np.abs(filters))) or 1.0
    columns = min(columns, len(filters))
    rows = -(-len(filters) // columns)
    fig = Figure(figsize=(1.1 * columns + 1.0, 1.1 * rows + (0.5 if title else 0.2)), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index < len(filters):
            shown = ax.imshow(filters[index], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(index), fontsize="small")
    fig.colorbar(shown, ax=axes, shrink=0.8, label=gettext("weight", lang))
    if title:
        fig.suptitle(gettext(title, lang))
    return fig


def feature_maps(stages, *, columns=16, title=None, lang=None):
    """Draw the channels of one image at several stages of a network, one row of maps per stage.

    Parameters
    ----------
    stages : dict[str, array]
        Row title -> the maps of one image at that stage, shape (channels, height, width).
    columns : int
        At most this many maps per row (the first channels).
    title : str, optional
        Title of the figure.
    lang : str, optional
        The language of the titles.

    Returns
    -------
    matplotlib.figure.Figure
        One image axis per map drawn. Each row has a grey scale of its own, from its smallest to its largest value
        (black to white), so that the maps of one stage compare with each other.
    """
    named = [(name, np.asarray(maps, dtype=float)) for name, maps in _named_rows(stages)]
    for name, maps in named:
        if maps.ndim != 3 or len(maps) == 0:
            raise ValueError(f"stage {name!r}: maps must have shape (channels, height, width), got {maps.shape}")
    n_columns = min(columns, max(len(maps) for _, maps in named))
    fig = Figure(figsize=(0.9 * n_columns + 0.4, 1.3 * len(named) + (0.6 if title else 0.0)), layout="constrained")
    subfigures = fig.subfigures(len(named), 1, squeeze=False)[:, 0]
    for subfigure, (name, maps) in zip(subfigures, named):
        subfigure.suptitle(gettext(name, lang), fontsize="medium")
        low, high = float(maps.min()), float(maps.max())
        for column, image in enumerate(maps[:n_columns]):
            ax = subfigure.add_subplot(1, n_columns, column + 1)
            ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1.0)
            ax.set_axis_off()
    if title:
        fig.suptitle(gettext(title, lang), fontsize="large")
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Latent spaces
# --------------------------------------------------------------------------------------------------------------------


def tsne_embedding(codes, *, seed=42, max_iter=1000, perplexity=30.0):
    """Map latent codes to 2-D points with t-SNE, for a scatter plot of the latent space.

    Parameters
    ----------
    codes : array, shape (n, latent_dim)
        One latent code per sample (the notebooks use 1000 test digits), with n >= 2.
    seed : int
        Random state of t-SNE: the same seed gives the same picture.
    max_iter : int
        Optimisation steps (scikit-learn needs at least 250).
    perplexity : float
        Roughly the number of neighbours each point attends to. It must stay below the number of samples, so it is
        lowered to ``n - 1`` for small inputs.

    Returns
    -------
    numpy.ndarray, shape (n, 2), float64
        The embedded points.

    Notes
    -----
    The PCA initialisation and the "auto" learning rate make the result stable and reproducible. t-SNE runs with
    NumPy's linear-algebra library held to one thread: its own parallel loops and a multi-threaded BLAS would
    otherwise compete for the same cores, which can make it many times slower on a small machine. Its parallel
    loops (OpenMP) run as many threads as :func:`scratchae.threads.resolve` says (one unless ``--threads`` says
    otherwise): their threads spin while they wait for each other, so beside one busy program two of them made a
    quick demo's t-SNE more than ten times slower.
    """
    from sklearn.manifold import TSNE  # scikit-learn is only needed by this function: import it when called
    from threadpoolctl import threadpool_limits

    from scratchae.threads import resolve

    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"codes must have shape (n, latent_dim) with n >= 2, got shape {codes.shape}")
    tsne = TSNE(n_components=2, init="pca", learning_rate="auto", max_iter=int(max_iter),
                perplexity=min(float(perplexity), len(codes) - 1.0), random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"), threadpool_limits(limits=resolve(), user_api="openmp"):
        points = tsne.fit_transform(codes)
    return np.asarray(points, dtype=np.float64)


def _check_points(points, labels):
    """Return ``points`` as an (n, 2) array and ``labels`` as an (n,) array, or raise a ValueError."""
    points = np.asarray(points, dtype=float)
    labels = np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got shape {points.shape}")
    if labels.shape != (len(points),):
        raise ValueError(f"labels of shape {labels.shape} do not match points of shape {points.shape}: "
                         f"expected one label per point, shape ({len(points)},)")
    return points, labels


def _class_colors(n_classes):
    """A colour map with exactly one distinct colour per class (the notebooks' "tab10" for the ten digits)."""
    if n_classes <= 10:
        return ListedColormap(colormaps["tab10"].colors[:n_classes])
    if n_classes <= 20:
        return ListedColormap(colormaps["tab20"].colors[:n_classes])
    return colormaps["viridis"].resampled(n_classes)


def _class_name(label, class_names):
    return str(label) if class_names is None else str(class_names[int(label)])


def _scatter_classes(ax, points, labels, classes, class_names, axis_labels, lang):
    """Scatter the points on ``ax``, coloured by class; return the scatter and one legend handle per class."""
    cmap = _class_colors(len(classes))
    # Colour by the index of each point's class, with one colour bin per class: the colour bar then shows
    # one solid block per class with its tick in the middle.
    norm = BoundaryNorm(np.arange(len(classes) + 1) - 0.5, cmap.N)
    scatter = ax.scatter(points[:, 0], points[:, 1], c=np.searchsorted(classes, labels), cmap=cmap, norm=norm,
                         s=10, alpha=0.8)
    ax.set_xlabel(gettext(axis_labels[0], lang))
    ax.set_ylabel(gettext(axis_labels[1], lang))
    handles = [Line2D([], [], linestyle="", marker="o", color=cmap(index),
                      label=gettext(_class_name(label, class_names), lang))
               for index, label in enumerate(classes)]
    return scatter, handles


#: The axes of a t-SNE plot (the second notebook's "Componente t-SNE 1" and "2").
TSNE_AXES = (N_("t-SNE component 1"), N_("t-SNE component 2"))


@_numbers_in_language
def latent_scatter(points, labels, *, title=N_("t-SNE of the latent space"), legend=True, colorbar=False,
                   class_names=None, axis_labels=TSNE_AXES, lang=None):
    """Scatter 2-D points (e.g. from :func:`tsne_embedding`) coloured by class.

    The first notebook keys the colours with a colour bar, the second with a legend; either or both can be drawn.

    Parameters
    ----------
    points : array, shape (n, 2)
        The 2-D points.
    labels : array, shape (n,)
        The class of each point (e.g. the digit).
    title : str
        Title of the plot.
    legend : bool
        Draw a legend with one entry per class.
    colorbar : bool
        Draw a colour bar with one tick per class.
    class_names : sequence of str, optional
        Name of each class, indexed by the integer label (e.g. the clothes of Fashion-MNIST). The labels themselves
        by default.
    axis_labels : (str, str)
        What the two coordinates are (t-SNE components, or the two numbers of a 2-d code).
    lang : str, optional
        The language of the title, the axes, the legend and the class names.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``points`` is not (n, 2) or there is not one label per point.
    """
    points, labels = _check_points(points, labels)
    classes = np.unique(labels)
    fig = Figure(figsize=(10, 8), layout="constrained")
    ax = fig.add_subplot()
    scatter, handles = _scatter_classes(ax, points, labels, classes, class_names, axis_labels, lang)
    ax.set_title(gettext(title, lang))
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(handles=handles, title=gettext("class", lang), loc="best", markerscale=1.5)
    if colorbar:
        bar = fig.colorbar(scatter, ax=ax, ticks=np.arange(len(classes)))
        bar.ax.set_yticklabels([handle.get_label() for handle in handles])
    return fig


@_numbers_in_language
def side_by_side_scatter(panels, labels, *, title=None, class_names=None, lang=None):
    """Scatter several 2-D embeddings of the same samples side by side, with one shared legend.

    The second notebook sets the classifier's latent space (trained to separate the digits) beside the
    autoencoder's (trained only to reconstruct them), both embedded with t-SNE.

    Parameters
    ----------
    panels : dict[str, array]
        Panel title -> points of shape (n, 2), drawn left to right. Point ``i`` of every panel is sample ``i``.
    labels : array, shape (n,)
        The class of each sample.
    title : str, optional
        Title of the whole figure.
    class_names : sequence of str, optional
        As in :func:`latent_scatter`.
    lang : str, optional
        The language of the titles, the axes and the legend.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per panel and one figure legend with an entry per class.
    """
    if not panels:
        raise ValueError("panels is empty: give at least one title -> points")
    checked = {name: _check_points(points, labels) for name, points in panels.items()}
    classes = np.unique(np.asarray(labels).reshape(-1))
    fig = Figure(figsize=(7 * len(checked) + 1.5, 6.5), layout="constrained")
    axes = fig.subplots(1, len(checked), squeeze=False)[0]
    for ax, (name, (points, panel_labels)) in zip(axes, checked.items()):
        _, handles = _scatter_classes(ax, points, panel_labels, classes, class_names, TSNE_AXES, lang)
        ax.set_title(gettext(name, lang))
        ax.grid(True, alpha=0.3)
    fig.legend(handles=handles, title=gettext("class", lang), loc="outside right center", markerscale=1.5)
    if title:
        fig.suptitle(gettext(title, lang), fontsize="x-large")
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Sparse codes and anomaly scores
# --------------------------------------------------------------------------------------------------------------------


@_numbers_in_language
def code_distributions(codes, *, title=N_("Code values"), bins=50, lang=None):
    """Histograms of the values of two or more latent codes on one axis (a plain code against a sparse one).

    Parameters
    ----------
    codes : dict[str, array]
        Label -> the codes of the same images, any shape (every value counts once). The label should hold what the
        caption needs (the mean, computed by the caller).
    title : str
    bins : int
        Bins shared by every code, from the smallest value of all to the largest.
    lang : str, optional
        The language of the title, the axes and the legend.

    Returns
    -------
    matplotlib.figure.Figure
        One outlined histogram per code, the count axis logarithmic (a sparse code is mostly zeros), and a legend.
    """
    named = [(label, np.asarray(values, dtype=np.float64).reshape(-1)) for label, values in _named_rows(codes)]
    low = min(float(values.min()) for _, values in named)
    high = max(float(values.max()) for _, values in named)
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for label, values in named:
        ax.hist(values, bins=edges, histtype="step", linewidth=1.8, label=gettext(label, lang))
    ax.set_yscale("log")
    ax.set_xlabel(gettext("Code value", lang))
    ax.set_ylabel(gettext("Count (log scale)", lang))
    ax.set_title(gettext(title, lang))
    ax.legend()
    return fig


@_numbers_in_language
def score_histogram(normal_scores, anomalous_scores, *, threshold=None, score_label=N_("Anomaly score"),
                    title=N_("Anomaly scores"), bins=60, threshold_label=N_("threshold"), lang=None):
    """Histograms of the scores of normal and of anomalous images, each normalised to an area of 1 (there are often
    many more anomalies than normal images), with a threshold as a vertical line.

    Parameters
    ----------
    normal_scores, anomalous_scores : array, shape (n,) and (m,)
    threshold : float, optional
        Drawn as a dashed line labelled ``threshold_label``.
    score_label, title : str
    lang : str, optional
        The language of the title, the axes and the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    normal = np.asarray(normal_scores, dtype=np.float64).reshape(-1)
    anomalous = np.asarray(anomalous_scores, dtype=np.float64).reshape(-1)
    if normal.size == 0 or anomalous.size == 0:
        raise ValueError("a histogram of normal against anomalous scores needs scores of both kinds")
    both = np.concatenate([normal, anomalous])
    edges = np.linspace(float(both.min()), float(both.max()) if both.max() > both.min() else both.min() + 1.0,
                        bins + 1)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(normal, bins=edges, density=True, alpha=0.6, color="tab:blue",
            label=format_text("normal ({n:,})", lang, n=normal.size))
    ax.hist(anomalous, bins=edges, density=True, alpha=0.6, color="tab:red",
            label=format_text("anomalous ({n:,})", lang, n=anomalous.size))
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=gettext(threshold_label, lang))
    ax.set_xlabel(gettext(score_label, lang))
    ax.set_ylabel(gettext("Density", lang))
    ax.set_title(gettext(title, lang))
    ax.legend()
    return fig


@_numbers_in_language
def roc_curve(false_positive_rates, true_positive_rates, *, auroc=None, title=N_("ROC curve"), point=None,
              point_label=None, lang=None):
    """A receiver operating characteristic: the fraction of anomalies caught against the fraction of normal images
    flagged, as the threshold falls, with the diagonal of a score that knows nothing.

    Parameters
    ----------
    false_positive_rates, true_positive_rates : array, shape (k,)
        From ``sklearn.metrics.roc_curve`` (see :func:`scratchae.anomaly.roc`).
    auroc : float, optional
        Written in the legend.
    point : (float, float), optional
        One operating point (false alarm rate, detection rate) to mark, labelled ``point_label``.
    lang : str, optional
        The language of the title, the axes and the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fpr = np.asarray(false_positive_rates, dtype=np.float64)
    tpr = np.asarray(true_positive_rates, dtype=np.float64)
    if fpr.shape != tpr.shape or fpr.ndim != 1:
        raise ValueError(f"the rates must be two 1-d arrays of one length, got shapes {fpr.shape} and {tpr.shape}")
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color="tab:red", linewidth=2,
            label=gettext("model", lang) if auroc is None else format_text("model (AUROC {auroc:.3f})", lang,
                                                                             auroc=auroc))
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label=gettext("chance (AUROC 0.5)", lang))
    if point is not None:
        ax.plot([point[0]], [point[1]], "o", color="black",
                label=None if point_label is None else gettext(point_label, lang))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(gettext("False alarm rate (normal images flagged)", lang))
    ax.set_ylabel(gettext("Detection rate (anomalies flagged)", lang))
    ax.set_title(gettext(title, lang))
    ax.legend(loc="lower right")
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------------------------


def save_figure(fig, path, *, dpi=100, tight=False):
    """Write a figure to a file, atomically, creating missing folders.

    The image is written with :func:`scratchae.atomic_files.write_atomically`: a crash or an error half-way never leaves
    a truncated image, and an older file at ``path`` stays intact until the new one is complete.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    path : str or os.PathLike
        Destination. The format follows the suffix (``.png``, ``.pdf``, ``.svg`` ...); PNG when there is none.
    dpi : int
        Resolution in dots per inch (a 15-inch-wide row of ten digits is 1500 pixels wide at 100 dpi).
    tight : bool
        Fit the image to what the figure draws, text placed outside its edges included (a note below it) and
        empty margins left out.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    IsADirectoryError
        If ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot save a figure to {path}: it is a folder; give a file name such as "
                                f"{path / 'figure.png'}")
    file_format = path.suffix.lstrip(".").lower() or "png"
    bbox = "tight" if tight else None
    return write_atomically(path, lambda file: fig.savefig(file, format=file_format, dpi=dpi, bbox_inches=bbox))

"""Figures: what each one draws, bad input, and atomic saving."""

import re

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from scratchae import plots

SHAPE = (8, 8)  # the digits data set: small images keep the tests fast


def _images(n, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).random((n, shape[0] * shape[1]), dtype=np.float32)


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def _drawn_rows(fig):
    """The pixels each row of an image grid draws: one list of (height, width) arrays per row (subfigure)."""
    return [[np.asarray(ax.images[0].get_array()) for ax in subfigure.axes if ax.images] for subfigure in fig.subfigs]


def _assert_draws(drawn, images, shape=SHAPE):
    """The drawn images are exactly ``images`` (flat or shaped), in order."""
    expected = np.asarray(images).reshape(len(images), *shape)
    assert len(drawn) == len(expected)
    for picture, image in zip(drawn, expected):
        np.testing.assert_array_equal(picture, image)


def _history(epochs=5, start=0.1):
    losses = start * 0.8 ** np.arange(epochs)
    return {"loss": list(losses), "val_loss": list(losses * 1.1)}


# --------------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------------


def test_image_row_draws_the_first_n_images_on_a_fixed_grey_scale():
    fig = plots.image_row(_images(15), SHAPE, title="MNIST samples", n=10)
    assert isinstance(fig, Figure)
    axes = _image_axes(fig)
    assert len(axes) == 10
    _assert_draws([ax.images[0].get_array() for ax in axes], _images(15)[:10])
    image = axes[0].images[0]
    assert image.get_clim() == (0.0, 1.0)
    assert image.get_cmap().name == "gray"
    assert image.get_array().shape == SHAPE
    assert not axes[0].axison


@pytest.mark.parametrize("shape", [(28, 28), (8, 8), (4, 6)])
def test_images_may_come_flat_or_shaped(shape):
    flat = _images(3, shape)
    for images in (flat, flat.reshape(3, *shape), flat.reshape(3, 1, *shape)):
        axes = _image_axes(plots.image_row(images, shape, n=None))
        assert len(axes) == 3
        assert axes[-1].images[0].get_array().shape == shape


def test_image_grid_draws_one_titled_row_per_entry():
    rows = {"Noisy input": _images(10), "Denoised": _images(10, seed=1), "Original": _images(10, seed=2)}
    fig = plots.image_grid(rows, SHAPE, title="Denoising")
    assert len(_image_axes(fig)) == 30
    assert [subfigure.get_suptitle() for subfigure in fig.subfigs] == list(rows)
    for drawn, images in zip(_drawn_rows(fig), rows.values(), strict=True):
        _assert_draws(drawn, images)
    # The same rows given as a list of pairs, cut to 4 images each.
    fig = plots.image_grid(list(rows.items()), SHAPE, n=4)
    assert len(_image_axes(fig)) == 12
    for drawn, images in zip(_drawn_rows(fig), rows.values(), strict=True):
        _assert_draws(drawn, images[:4])


def test_reconstructions_are_two_rows_of_n():
    originals, reconstructed = _images(20), _images(20, seed=1)
    fig = plots.reconstructions(originals, reconstructed, SHAPE, n=10)
    assert len(_image_axes(fig)) == 20
    assert [subfigure.get_suptitle() for subfigure in fig.subfigs] == ["Originals", "Reconstructions"]
    top, bottom = _drawn_rows(fig)
    _assert_draws(top, originals[:10])
    _assert_draws(bottom, reconstructed[:10])  # the reconstructions, not the originals again


def test_compare_reconstructions_puts_the_final_losses_in_the_row_titles():
    reconstructed = {f"latent {dim}": _images(10, seed=dim) for dim in (2, 4, 32)}
    losses = {"latent 2": 0.05, "latent 4": 0.04, "latent 32": 0.01234}
    fig = plots.compare_reconstructions(_images(10), reconstructed, SHAPE, losses=losses, n=6)
    assert len(_image_axes(fig)) == 4 * 6
    titles = [subfigure.get_suptitle() for subfigure in fig.subfigs]
    assert titles[0] == "Originals"
    assert titles[-1] == "latent 32 (loss 0.0123)"
    drawn = _drawn_rows(fig)
    _assert_draws(drawn[0], _images(10)[:6])
    for row, images in zip(drawn[1:], reconstructed.values(), strict=True):
        _assert_draws(row, images[:6])


def test_interpolation_strip_titles_each_image_with_its_t():
    ts = np.linspace(0, 1, 12)
    fig = plots.interpolation_strip(_images(12), SHAPE, ts)
    axes = _image_axes(fig)
    assert len(axes) == 12
    assert [ax.get_title() for ax in axes] == [f"t = {t:.2f}" for t in ts]
    _assert_draws([ax.images[0].get_array() for ax in axes], _images(12))
    # Two lines of 6, so that a page never shrinks the strip until its labels cannot be read.
    assert len({round(ax.get_position().y0, 6) for ax in axes}) == 2
    assert fig.get_figwidth() == 6 * plots.CELL_INCHES


def test_image_size_that_does_not_match_image_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(3, 64\).*\(28, 28\)"):
        plots.image_row(_images(3), (28, 28))
    with pytest.raises(ValueError, match="originals"):
        plots.reconstructions(_images(3), _images(3, (28, 28)), (28, 28))
    with pytest.raises(ValueError, match="batch of images"):
        plots.image_row(np.zeros(64), SHAPE)
    with pytest.raises(ValueError, match="image_shape"):
        plots.image_row(_images(3), (64,))


def test_image_mosaic_tiles_the_images_row_by_row_with_readable_ticks():
    images = _images(6)
    fig = plots.image_mosaic(images, SHAPE, columns=3, axis_labels=("z1", "z2"), ticks=([-1.0, 0.0, 1.0], [1.0, -1.0]))
    (ax,) = fig.axes
    mosaic = np.asarray(ax.images[0].get_array())
    assert mosaic.shape == (2 * 8, 3 * 8)
    for index, image in enumerate(images.reshape(6, 8, 8)):
        row, column = divmod(index, 3)
        np.testing.assert_array_equal(mosaic[row * 8:(row + 1) * 8, column * 8:(column + 1) * 8], image)
    assert [label.get_text() for label in ax.get_xticklabels()] == ["-1.00", "0.00", "1.00"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z1", "z2")
    # A 20 x 20 grid labels every other code, upright, in a size that reads once the page fits the figure.
    grid = plots.image_mosaic(_images(400), SHAPE, columns=20, ticks=(np.linspace(-2, 2, 20), np.linspace(2, -2, 20)))
    labels = grid.axes[0].get_xticklabels()
    assert len(labels) == 10 and labels[1].get_text() == f"{np.linspace(-2, 2, 20)[2]:.2f}"
    assert labels[0].get_rotation() == 0 and labels[0].get_fontsize() >= 10


def test_interpolation_needs_one_t_per_image():
    with pytest.raises(ValueError, match=r"ts has shape \(5,\).*\(12, 64\)"):
        plots.interpolation_strip(_images(12), SHAPE, np.linspace(0, 1, 5))


def test_too_few_reconstructions_is_an_error():
    with pytest.raises(ValueError, match="10 originals but only 3"):
        plots.reconstructions(_images(10), _images(3), SHAPE)


# --------------------------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------------------------


def test_loss_curves_draw_one_line_per_loss_series_with_a_legend():
    history = {**_history(), "accuracy": [0.5, 0.6, 0.7, 0.8, 0.9]}
    fig = plots.loss_curves(history)
    (ax,) = fig.axes
    assert len(ax.lines) == 2  # the accuracy is not a loss
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["training loss", "validation loss"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), history["loss"])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), history["val_loss"])
    assert ax.get_xlabel() == "Epoch"


def test_loss_curves_with_markers_and_grid_from_a_keras_style_history():
    class KerasHistory:
        history = {"loss": [0.3, 0.2, 0.1], "val_loss": []}

    fig = plots.loss_curves(KerasHistory(), markers=True, grid=True)
    (ax,) = fig.axes
    assert len(ax.lines) == 1  # an empty validation series is left out
    assert ax.lines[0].get_marker() == "o"
    assert ax.xaxis.get_gridlines()[0].get_visible()


def test_loss_curves_reject_what_is_not_a_history():
    with pytest.raises(TypeError, match="mapping"):
        plots.loss_curves([0.3, 0.2])


def test_compare_loss_curves_draws_every_run_on_one_plot():
    fig = plots.compare_loss_curves({"single hidden layer": _history(), "deep": _history(start=0.08)})
    (ax,) = fig.axes
    assert len(ax.lines) == 4
    assert len(ax.get_legend().get_texts()) == 4
    # One colour per run, the validation curve dashed.
    assert ax.lines[0].get_color() == ax.lines[1].get_color() != ax.lines[2].get_color()
    assert ax.lines[1].get_linestyle() == "--"
    expected = [*_history().values(), *_history(start=0.08).values()]
    for line, values in zip(ax.lines, expected, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), values)


def test_loss_curves_accept_a_scratchae_history():
    from scratchae.training import History

    fig = plots.loss_curves(History(_history()))
    assert len(fig.axes[0].lines) == 2


def test_loss_table_shows_the_final_values():
    fig = plots.loss_table({"single hidden layer": _history(), "deep": {"loss": 0.0123, "val_loss": 0.0134}})
    (ax,) = fig.axes
    (table,) = ax.tables
    texts = [cell.get_text().get_text() for cell in table.get_celld().values()]
    assert f"{0.1 * 0.8 ** 4:.4f}" in texts
    assert "0.0123" in texts and "deep" in texts and "validation loss" in texts


# --------------------------------------------------------------------------------------------------------------------
# Latent spaces
# --------------------------------------------------------------------------------------------------------------------


def test_tsne_embedding_is_two_dimensional_and_deterministic():
    codes = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    first = plots.tsne_embedding(codes, seed=3, max_iter=250)
    assert first.shape == (60, 2)
    assert first.dtype == np.float64
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, plots.tsne_embedding(codes, seed=3, max_iter=250))


def test_tsne_embedding_lowers_the_perplexity_for_tiny_inputs():
    codes = np.random.default_rng(0).normal(size=(5, 3))
    assert plots.tsne_embedding(codes, max_iter=250, perplexity=30).shape == (5, 2)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        plots.tsne_embedding(codes[:, 0])


def _points_and_labels(n=50, n_classes=10):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)), np.arange(n) % n_classes


def test_latent_scatter_with_a_legend():
    points, labels = _points_and_labels()
    fig = plots.latent_scatter(points, labels, title="AE latent space")
    (ax,) = fig.axes
    assert len(ax.collections) == 1
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), points)  # every point where it is
    np.testing.assert_array_equal(ax.collections[0].get_array(), labels)  # each point coloured by its own class
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [str(digit) for digit in range(10)]
    assert ax.get_title() == "AE latent space"


def test_latent_scatter_with_a_colorbar_and_class_names():
    points, labels = _points_and_labels(n_classes=3)
    names = ["cat", "dog", "bird"]
    fig = plots.latent_scatter(points, labels, legend=False, colorbar=True, class_names=names)
    ax, bar_ax = fig.axes
    assert ax.get_legend() is None
    assert ax.collections[0].colorbar is not None
    assert [label.get_text() for label in bar_ax.get_yticklabels()] == names


def test_latent_scatter_rejects_mismatched_labels():
    points, labels = _points_and_labels()
    with pytest.raises(ValueError, match=r"labels of shape \(49,\).*\(50, 2\)"):
        plots.latent_scatter(points, labels[:-1])
    with pytest.raises(ValueError, match=r"\(50, 3\)"):
        plots.latent_scatter(np.zeros((50, 3)), labels)


def test_side_by_side_scatter_shares_one_legend():
    points, labels = _points_and_labels()
    panels = {"Classifier latent space": points, "Autoencoder latent space": points[::-1]}
    fig = plots.side_by_side_scatter(panels, labels, title="Same digits, two latent spaces")
    assert [ax.get_title() for ax in fig.axes] == list(panels)
    assert all(len(ax.collections) == 1 for ax in fig.axes)
    for ax, panel in zip(fig.axes, panels.values(), strict=True):
        np.testing.assert_array_equal(ax.collections[0].get_offsets(), panel)
    (legend,) = fig.legends
    assert len(legend.get_texts()) == 10
    with pytest.raises(ValueError, match="labels of shape"):
        plots.side_by_side_scatter(panels, labels[:10])


# --------------------------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _small_figure():
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_save_figure_writes_a_png_atomically(tmp_path):
    path = plots.save_figure(_small_figure(), tmp_path / "new" / "folder" / "curve.png", dpi=50)
    assert path == tmp_path / "new" / "folder" / "curve.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert matplotlib.image.imread(path).shape[:2] == (50, 100)  # 1 x 2 inches at 50 dpi
    assert [entry.name for entry in path.parent.iterdir()] == ["curve.png"]  # no temporary file left


def test_a_failed_save_keeps_the_previous_file(tmp_path):
    path = plots.save_figure(_small_figure(), tmp_path / "curve.png", dpi=50)
    good = path.read_bytes()

    broken = _small_figure()

    def fail_half_way(file, **kwargs):
        file.write(PNG_SIGNATURE)  # a truncated image, then the failure
        raise RuntimeError("disk full")

    broken.savefig = fail_half_way
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save_figure(broken, path)
    assert path.read_bytes() == good
    assert [entry.name for entry in tmp_path.iterdir()] == ["curve.png"]


def test_saving_to_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "figures").mkdir()
    with pytest.raises(IsADirectoryError, match="folder"):
        plots.save_figure(_small_figure(), tmp_path / "figures")
    assert list((tmp_path / "figures").iterdir()) == []
    assert [entry.name for entry in tmp_path.iterdir()] == ["figures"]


def test_every_figure_can_be_saved(tmp_path):
    points, labels = _points_and_labels()
    figures = [
        plots.image_grid({"z ~ N(0, I)": _images(12), "z ~ N(mean, cov) of the real codes": _images(12)}, SHAPE),
        plots.loss_table({"deep": _history()}),
        plots.side_by_side_scatter({"a": points, "b": points}, labels),
        plots.latent_scatter(points, labels, colorbar=True),
    ]
    for index, fig in enumerate(figures):
        path = plots.save_figure(fig, tmp_path / f"figure_{index}.png", dpi=30)
        assert path.read_bytes().startswith(PNG_SIGNATURE)


# --------------------------------------------------------------------------------------------------------------------
# Convolution: kernels, feature maps, two manifolds
# --------------------------------------------------------------------------------------------------------------------


def test_filter_grid_draws_each_kernel_on_one_scale_centred_on_zero():
    filters = np.random.default_rng(0).standard_normal((16, 3, 3))
    fig = plots.filter_grid(filters, columns=8, title="First layer")
    axes = _image_axes(fig)
    assert len(axes) == 16
    limit = np.abs(filters).max()
    for index, ax in enumerate(axes):
        image = ax.images[0]
        np.testing.assert_array_equal(image.get_array(), filters[index])  # the weights themselves, not rescaled
        assert image.get_clim() == (-limit, limit)
        assert ax.get_title() == str(index)
    assert len(fig.axes) == 2 * 8 + 1  # 16 cells and a colour bar


def test_filter_grid_refuses_what_is_not_a_stack_of_kernels():
    with pytest.raises(ValueError, match=r"\(k, kh, kw\)"):
        plots.filter_grid(np.zeros((3, 3)))


def test_feature_maps_draws_every_channel_of_every_stage_on_the_stages_own_scale():
    rng = np.random.default_rng(1)
    stages = {"input": rng.random((1, 8, 8)), "block 1": 3.0 * rng.random((4, 4, 4)), "code": rng.random((2, 2, 2))}
    fig = plots.feature_maps(stages)
    assert [subfigure.get_suptitle() for subfigure in fig.subfigs] == list(stages)
    drawn = [[ax.images[0] for ax in subfigure.axes] for subfigure in fig.subfigs]
    assert [len(row) for row in drawn] == [1, 4, 2]
    for (name, maps), images in zip(stages.items(), drawn):
        for channel, image in enumerate(images):
            np.testing.assert_array_equal(image.get_array(), maps[channel])
            assert image.get_clim() == (maps.min(), maps.max())


def test_feature_maps_draws_at_most_columns_maps_a_stage():
    fig = plots.feature_maps({"block": np.random.default_rng(2).random((20, 4, 4))}, columns=16)
    assert len(_image_axes(fig)) == 16


def test_side_by_side_mosaics_tile_each_panel_row_by_row():
    panels = {"dense VAE": _images(6), "conv VAE": _images(6, seed=1)}
    fig = plots.side_by_side_mosaics(panels, SHAPE, columns=3, title="Two manifolds", axis_labels=("z1", "z2"),
                                     ticks=([0.0, 1.0, 2.0], [1.0, 0.0]))
    axes = _image_axes(fig)
    assert [ax.get_title() for ax in axes] == list(panels)
    for ax, images in zip(axes, panels.values()):
        mosaic = ax.images[0].get_array()
        assert mosaic.shape == (2 * 8, 3 * 8)
        np.testing.assert_array_equal(mosaic[:8, 8:16], images[1].reshape(SHAPE))  # row 0, column 1
        np.testing.assert_array_equal(mosaic[8:, :8], images[3].reshape(SHAPE))  # row 1, column 0
        assert ax.images[0].get_clim() == (0.0, 1.0)
        assert [label.get_text() for label in ax.get_yticklabels()] == ["1.0", "0.0"]


def test_side_by_side_mosaics_refuse_images_that_do_not_fill_the_rows():
    with pytest.raises(ValueError, match="do not fill rows of 4"):
        plots.side_by_side_mosaics({"a": _images(6)}, SHAPE, columns=4)


# --------------------------------------------------------------------------------------------------------------------
# Languages
# --------------------------------------------------------------------------------------------------------------------


def _texts(fig):
    """Every text the figure draws: titles, suptitles of rows, axis labels, legend entries, tick labels."""
    from matplotlib.text import Text

    texts = {text.get_text() for text in fig.findobj(Text) if text.get_text()}
    cells = {cell.get_text().get_text() for ax in fig.axes for table in ax.tables for cell in table.get_celld().values()}
    return texts | cells


def _title(fig):
    """The figure's main title, read from matplotlib: its suptitle, the first row's, or its first axis's title."""
    for owner in (fig, *fig.subfigs[:1]):  # the figure's suptitle, or the first row's (a one-row image figure)
        if owner._suptitle is not None and owner._suptitle.get_text():
            return owner._suptitle.get_text()
    return fig.axes[0].get_title()


#: Every figure of plots, drawn with lang: (call, the English title, the Portuguese one, other words drawn in pt).
FIGURES_IN_BOTH_LANGUAGES = {
    "image_grid": (lambda lang: plots.image_grid(
        {"Noisy": _images(3), "Reconstructed (clean)": _images(3), "Original": _images(3)}, SHAPE,
        title="Images generated from random samples of the latent space", lang=lang),
        "Images generated from random samples of the latent space",
        "Imagens Geradas a Partir de Amostras Aleatórias do Latent Space",
        {"Ruidoso", "Reconstruído (Limpo)", "Original"}),
    "image_row": (lambda lang: plots.image_row(_images(4), SHAPE, title="MNIST samples", lang=lang),
                  "MNIST samples", "Amostras do MNIST", set()),
    "compare_reconstructions": (lambda lang: plots.compare_reconstructions(
        _images(3), {"deep": _images(3)}, SHAPE, losses={"deep": 0.01234}, lang=lang),
        "Originals and reconstructions", "Originais e reconstruções", {"Originais", "profunda (loss 0,0123)"}),
    "reconstructions": (lambda lang: plots.reconstructions(
        _images(3), _images(3), SHAPE, title="Originals and reconstructions", originals_title="Original images",
        row_title="Reconstructed images", lang=lang),
        "Originals and reconstructions", "Originais e reconstruções", {"Imagens Originais", "Imagens Reconstruídas"}),
    "interpolation_strip": (lambda lang: plots.interpolation_strip(_images(3), SHAPE, [0.0, 0.5, 1.0], lang=lang),
                            "Linear interpolation in the latent space", "Interpolação Linear no Espaço Latente",
                            {"t = 0,50"}),
    "loss_curves": (lambda lang: plots.loss_curves(_history(), lang=lang), "Loss during training",
                    "Loss durante o treinamento", {"Época", "Loss", "loss de treinamento", "loss de validação"}),
    "compare_loss_curves": (lambda lang: plots.compare_loss_curves(
        {"deep": _history(), "single hidden layer": _history(start=0.2)}, difference_to="single hidden layer",
        lang=lang),
        "Loss of several models", "Loss de vários modelos", {"profunda: loss de treinamento", "Diferença de loss"}),
    "loss_table": (lambda lang: plots.loss_table({"deep": _history()}, lang=lang), "Final losses", "Losses finais",
                   {"loss de validação", "profunda"}),
    "history_panels": (lambda lang: plots.history_panels(
        {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5]}, ["loss"], titles=["negative ELBO (nats per image)"],
        title="The VAE's loss and its two terms", lang=lang),
        "The VAE's loss and its two terms", "A loss do VAE e seus dois termos",
        {"ELBO negativo (nats por imagem)", "treinamento", "validação", "Época"}),
    "image_mosaic": (lambda lang: plots.image_mosaic(
        _images(4), SHAPE, columns=2, title="Digits decoded across the 2-d latent space", ticks=([-0.5, 0.5],) * 2,
        lang=lang),
        "Digits decoded across the 2-d latent space", "Dígitos decodificados através do espaço latente 2-d",
        {"-0,50"}),
    "side_by_side_mosaics": (lambda lang: plots.side_by_side_mosaics(
        {"dense VAE": _images(4), "conv VAE": _images(4)}, SHAPE, columns=2, title="Two 2-d latent spaces, decoded",
        lang=lang),
        "Two 2-d latent spaces, decoded", "Dois espaços latentes 2-d, decodificados",
        {"VAE denso", "VAE convolucional"}),
    "filter_grid": (lambda lang: plots.filter_grid(
        np.ones((2, 3, 3)), title="The 16 learned 3 x 3 kernels of the first layer", lang=lang),
        "The 16 learned 3 x 3 kernels of the first layer", "Os 16 kernels 3 x 3 aprendidos pela primeira camada",
        {"peso"}),
    "feature_maps": (lambda lang: plots.feature_maps(
        {"input": np.ones((1, 4, 4))}, title="A test {label} through the convolutional encoder", lang=lang),
        "A test {label} through the convolutional encoder", "Um {label} de teste pelo encoder convolucional",
        {"entrada"}),
    "latent_scatter": (lambda lang: plots.latent_scatter(
        np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1]), title="Visualization of the latent space with t-SNE",
        lang=lang),
        "Visualization of the latent space with t-SNE", "Visualização do Espaço Latente com t-SNE",
        {"Componente t-SNE 1", "Componente t-SNE 2", "classe"}),
    "side_by_side_scatter": (lambda lang: plots.side_by_side_scatter(
        {"Autoencoder's encoder (reconstruction, no labels)": np.arange(8.0).reshape(4, 2)}, np.array([0, 1, 0, 1]),
        title="t-SNE of the latent space", lang=lang),
        "t-SNE of the latent space", "t-SNE do espaço latente",
        {"Encoder do autoencoder (reconstrução, sem rótulos)", "classe"}),
    "code_distributions": (lambda lang: plots.code_distributions(
        {"plain": np.arange(6.0), "sparse": np.zeros(6)}, lang=lang), "Code values", "Valores do código",
        {"Valor do código", "Contagem (escala logarítmica)"}),
    "score_histogram": (lambda lang: plots.score_histogram(np.arange(5.0), np.arange(5.0) + 3, threshold=4.0,
                                                           lang=lang),
                        "Anomaly scores", "Pontuações de anomalia", {"normais (5)", "anômalas (5)", "limiar"}),
    "roc_curve": (lambda lang: plots.roc_curve(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.9, 1.0]), auroc=0.95,
                                               lang=lang),
                  "ROC curve", "Curva ROC", {"modelo (AUROC 0,950)", "acaso (AUROC 0,5)"}),
}


def test_every_figure_is_covered_in_both_languages():
    drawing = {name for name, value in vars(plots).items() if callable(value) and not name.startswith("_")
               and getattr(value, "__module__", None) == plots.__name__} - {"tsne_embedding", "save_figure"}
    assert drawing == set(FIGURES_IN_BOTH_LANGUAGES)


@pytest.mark.parametrize("name", sorted(FIGURES_IN_BOTH_LANGUAGES))
def test_every_figure_draws_its_title_and_words_in_english_and_in_portuguese(name):
    draw, english, portuguese, words = FIGURES_IN_BOTH_LANGUAGES[name]
    assert _title(draw("en")) == english
    fig = draw("pt")
    assert _title(fig) == portuguese != english
    assert words <= _texts(fig)


def _tick_labels(fig) -> list[str]:
    """Every tick label and axis offset text that the figure shows (matplotlib writes them at draw time)."""
    fig.draw_without_rendering()
    return [text.get_text() for ax in fig.axes if ax.axison for axis in (ax.xaxis, ax.yaxis) if axis.get_visible()
            for text in (*axis.get_ticklabels(), axis.get_offset_text()) if text.get_visible() and text.get_text()]


@pytest.mark.parametrize("name", sorted(FIGURES_IN_BOTH_LANGUAGES))
def test_every_figures_tick_labels_take_the_languages_decimal_point(name):
    draw = FIGURES_IN_BOTH_LANGUAGES[name][0]
    english, portuguese = draw("en"), draw("pt")
    assert [label.replace(".", ",") for label in _tick_labels(english)] == _tick_labels(portuguese)
    for en_axis, pt_axis in zip(_axes(english), _axes(portuguese), strict=True):  # whatever ticks the data gives
        if isinstance(en_axis.get_major_formatter(), ScalarFormatter):
            written = []
            for axis in (en_axis, pt_axis):
                axis.get_major_formatter().set_locs([0.0, 0.25, 0.5])  # ticks of quarters, as data could give
                written.append(axis.get_major_formatter()(0.25))
            assert written == ["0.25", "0,25"]


def _axes(fig) -> list:
    """Every x and y axis that the figure shows, in order."""
    return [axis for ax in fig.axes if ax.axison for axis in (ax.xaxis, ax.yaxis) if axis.get_visible()]


def test_matplotlibs_own_ticks_are_written_with_a_decimal_comma_in_portuguese():
    english, portuguese = (_tick_labels(plots.loss_curves(_history(), lang=lang)) for lang in ("en", "pt"))
    assert any(re.fullmatch(r"0\.\d+", label) for label in english)
    assert [label.replace(".", ",") for label in english] == portuguese
    colour_bar = _tick_labels(plots.filter_grid(np.linspace(-0.5, 0.5, 18).reshape(2, 3, 3), lang="pt"))
    assert any(re.fullmatch(r"[−-]?0,\d+", label) for label in colour_bar), colour_bar


def test_figures_follow_use_language_and_the_environment(monkeypatch):
    from scratchae import i18n

    monkeypatch.setenv("LANGUAGE", "pt_BR")
    i18n.use_language(None)
    assert _title(plots.loss_curves(_history())) == "Loss durante o treinamento"
    i18n.use_language("en")
    try:
        assert _title(plots.loss_curves(_history())) == "Loss during training"
        assert _title(plots.loss_curves(_history(), lang="pt")) == "Loss durante o treinamento"
    finally:
        i18n.use_language(None)


def test_the_notebooks_titles_in_portuguese_are_their_own_word_for_word():
    fig = plots.loss_curves(_history(), lang="pt")
    assert (fig.axes[0].get_title(), fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == \
        ("Loss durante o treinamento", "Época", "Loss")
    rows = plots.reconstructions(_images(2), _images(2), SHAPE, lang="pt")
    assert [subfigure._suptitle.get_text() for subfigure in rows.subfigs] == ["Originais", "Reconstruções"]
    tsne = plots.latent_scatter(np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1]),
                                title="t-SNE of the latent space (32D -> 2D)", lang="pt")
    assert tsne.axes[0].get_title() == "t-SNE do Espaço Latente (32D -> 2D)"
    noisy = plots.image_row(_images(2), SHAPE, title="Noisy input", lang="pt")
    assert noisy.subfigs[0]._suptitle.get_text() == "Entrada Ruidosa"


def test_a_title_the_catalog_does_not_know_is_drawn_as_given():
    assert _title(plots.loss_curves(_history(), title="My own run", lang="pt")) == "My own run"


def test_compare_loss_curves_draws_the_differences_to_one_run_below():
    deep, single = _history(start=0.1), _history(start=0.12)
    fig = plots.compare_loss_curves({"deep": deep, "single": single}, difference_to="single", log=True)
    top, bottom = fig.axes
    assert top.get_yscale() == "log" and len(top.lines) == 4
    by_label = {line.get_label(): line.get_ydata() for line in bottom.lines}
    np.testing.assert_allclose(by_label["deep: training loss"], np.subtract(deep["loss"], single["loss"]))
    np.testing.assert_allclose(by_label["deep: validation loss"], np.subtract(deep["val_loss"], single["val_loss"]))
    shown = {label for label in by_label if not label.startswith("_")}  # the line at 0 has no label
    assert shown == {"deep: training loss", "deep: validation loss"}  # no line for the reference itself
    with pytest.raises(ValueError, match="difference_to='other' is not one of the runs"):
        plots.compare_loss_curves({"deep": deep}, difference_to="other")

"""The two course notebooks that scratchae reproduces, and which chapter, figure and function redraws each of their
figures and exercises, with the notebook's settings beside scratchae's.

The gallery shows this table (:func:`table_rows`, in the gallery's language) and ``docs/notebooks.md`` holds it as
Markdown (:func:`markdown_table`; a test keeps the page equal to it). The notebooks' titles are their own, in
Portuguese; the steps are gradient steps, ``epochs * ceil(images / batch)``: on the 4,000 training digits of
``mnist-5k`` a chapter trains as many epochs as it takes to make about as many steps as the notebook
(:meth:`scratchae.demos._common.Demo.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass

from scratchae.i18n import N_, gettext


@dataclass(frozen=True)
class Notebook:
    title: str  # the notebook's own title
    framework: str


@dataclass(frozen=True)
class Figure:
    """One figure or exercise of a notebook, and what redraws it."""

    notebook: Notebook
    shown: str  # the notebook's title for it, word for word, or what it is when it has none
    chapter: str  # the demo's name
    files: tuple[str, ...]  # the figures (and pages) the chapter writes for it
    functions: tuple[str, ...]  # the scratchae functions that draw it
    notebook_settings: str
    scratchae_settings: str


KERAS = Notebook("Autoencoders", "Keras")
PYTORCH = Notebook("Representações Latentes e Autoencoders", "PyTorch")
NOTEBOOKS = (KERAS, PYTORCH)

_SIMPLE_NB = N_("784-128-32-128-784 (ReLU, sigmoid), Adam (lr 1e-3), MSE, 20 epochs of 60,000 images in batches of "
                "256: 4,700 steps")
_SIMPLE = N_("the same network, Adam (lr 1e-3), MSE, batches of 256, 294 epochs of the 4,000 digits of mnist-5k: "
             "4,704 steps")
_LINEAR_NB = N_("784-128-64-16 (linear)-64-128-784, Adam (lr 1e-3, weight decay 1e-8), MSE, 20 epochs of a "
                "10,000-image subset in batches of 64: 3,140 steps")
_LINEAR = N_("the same network and optimizer, batches of 64, 50 epochs of 4,000 digits: 3,150 steps")

FIGURES = (
    Figure(KERAS, "Amostras do MNIST", "simple_autoencoder", ("01_samples.png",), ("plots.image_row",),
           N_("10 training images of MNIST (60,000 to train, 10,000 to test)"),
           N_("10 training digits of mnist-5k (4,000 to train, 1,000 to test); --data mnist for the whole set")),
    Figure(KERAS, "Loss durante o treinamento (Época / Loss)", "simple_autoencoder", ("02_loss.png",),
           ("plots.loss_curves",), _SIMPLE_NB, _SIMPLE),
    Figure(KERAS, "Originais / Reconstruções", "simple_autoencoder", ("03_reconstructions.png",),
           ("plots.reconstructions",), N_("10 test images"), N_("10 test digits")),
    Figure(KERAS, "t-SNE do Espaço Latente (32D -> 2D)", "simple_autoencoder", ("04_latent_tsne.png",),
           ("plots.tsne_embedding", "plots.latent_scatter(colorbar=True)"),
           N_("the 32-d codes of 1,000 test images; t-SNE with random_state 42, PCA initialisation, automatic "
              "learning rate"),
           N_("the 32-d codes of 1,000 test digits; t-SNE with seed 42, PCA initialisation, automatic learning rate, "
              "1,000 iterations")),
    Figure(KERAS, "Entrada Ruidosa", "denoising", ("05_noisy_inputs.png",), ("plots.image_row",),
           N_("Gaussian noise of factor 0.5, clipped to [0, 1], drawn once for the whole training set"),
           N_("Gaussian noise of factor 0.5, clipped to [0, 1]; fresh noise in every training batch, the test "
              "images' drawn once")),
    Figure(KERAS, "Ruidoso / Reconstruído (Limpo) / Original", "denoising", ("06_denoised.png",),
           ("plots.image_grid",),
           N_("784-128-64-32-64-128-784, Adam, MSE, 20 epochs of 60,000 images in batches of 128: 9,380 steps"),
           N_("the same network, Adam (lr 1e-3), MSE, batches of 128, 294 epochs of 4,000 digits: 9,408 steps")),
    Figure(KERAS, N_("Exercise 1: encoding_dim 4 or 2"), "exercises", ("07_latent_sizes.png",
                                                                         "07_latent_2_explorer.html"),
           ("plots.compare_reconstructions", "cli.explore.explorer_page"),
           N_("an exercise without code: change encoding_dim of the simple autoencoder"),
           N_("codes of 2, 4 and 32 numbers, each trained as figure 2; the code of 2 as a page in the browser")),
    Figure(KERAS, N_("Exercise 2: more layers, without noise"), "exercises",
           ("08_deep_vs_single_losses.png", "08_deep_vs_single_table.png", "08_deep_vs_single_reconstructions.png"),
           ("plots.compare_loss_curves", "plots.loss_table", "plots.compare_reconstructions"),
           N_("an exercise without code: the denoising chapter's deep network on clean images"),
           N_("784-128-64-32-64-128-784 against 784-128-32-128-784, both trained as figure 2")),
    Figure(PYTORCH, N_("The latent space of an encoder trained to classify (described; its code is missing from the "
                       "export)"), "latent_spaces", ("09_classifier_vs_autoencoder.png",),
           ("plots.tsne_embedding", "plots.side_by_side_scatter"),
           N_("an encoder trained with cross-entropy, then t-SNE of its latent codes"),
           N_("784-128-64-16 with a 10-way head, softmax cross-entropy, Adam (lr 1e-3), batches of 64, 50 epochs of "
              "4,000 digits (3,150 steps), beside the linear-latent autoencoder")),
    Figure(PYTORCH, "Training Loss (Autoencoder)", "linear_latent", ("10_loss.png",),
           ("plots.loss_curves(markers=True, grid=True)",), _LINEAR_NB, _LINEAR),
    Figure(PYTORCH, "Imagens Originais / Imagens Reconstruídas", "linear_latent", ("11_reconstructions.png",),
           ("plots.reconstructions",), N_("10 images of the first validation batch"), N_("10 test digits")),
    Figure(PYTORCH, "Visualização do Espaço Latente com t-SNE (Componente t-SNE 1 / 2)", "linear_latent",
           ("12_latent_tsne.png",), ("plots.tsne_embedding", "plots.latent_scatter(legend=True)"),
           N_("the 16-d codes of 1,000 validation images; t-SNE with perplexity 30, 1,000 iterations, random_state 42"),
           N_("the 16-d codes of 1,000 test digits; t-SNE with perplexity 30, 1,000 iterations, seed 42, PCA "
              "initialisation")),
    Figure(PYTORCH, "Interpolação Linear no Espaço Latente", "linear_latent", ("13_interpolation.png",),
           ("plots.interpolation_strip",), N_("the first two validation images, 12 steps of t from 0 to 1"),
           N_("the first test digit and the first of another class, 12 steps of t from 0 to 1")),
    Figure(PYTORCH, "Imagens Geradas a Partir de Amostras Aleatórias do Latent Space", "linear_latent",
           ("14_generation.png",), ("plots.image_grid",), N_("12 codes z ~ N(0, I)"),
           N_("12 codes z ~ N(0, I), and 12 drawn with the mean and covariance of the real codes")),
    Figure(PYTORCH, "Por quê a geração é problemática?", "vae", ("17_vae_vs_autoencoder_generation.png",),
           ("plots.image_grid",),
           N_("text only: why a plain autoencoder's decoder fails on random codes, and why VAEs"),
           N_("the same 12 codes z ~ N(0, I) decoded by the plain autoencoder and by a VAE (latent 16, Adam lr 1e-3, "
              "batches of 128, 147 epochs of 4,000 digits: 4,704 steps, the 4,690 of pytorch/examples)")),
)


def table_rows(lang: str | None = None) -> list[tuple[str, ...]]:
    """One row per figure: notebook, its figure, chapter, files, functions, the notebook's settings, scratchae's."""
    return [(f"{figure.notebook.title} ({figure.notebook.framework})", gettext(figure.shown, lang),
             figure.chapter, ", ".join(figure.files), "; ".join(figure.functions),
             gettext(figure.notebook_settings, lang), gettext(figure.scratchae_settings, lang)) for figure in FIGURES]


HEADINGS = (N_("notebook"), N_("its figure or exercise"), N_("chapter"), N_("figure file"), N_("function"),
            N_("the notebook's settings"), N_("scratchae's settings"))


def markdown_table(lang: str | None = None) -> str:
    """The table as Markdown: chapters as ``demos/NAME.py``, files and functions as code."""
    lines = ["| " + " | ".join(gettext(heading, lang) for heading in HEADINGS) + " |",
             "|" + " --- |" * len(HEADINGS)]
    for figure, (notebook, shown, chapter, _, _, theirs, ours) in zip(FIGURES, table_rows(lang)):
        cells = (notebook, shown, f"`demos/{chapter}.py`", ", ".join(f"`{name}`" for name in figure.files),
                 ", ".join(f"`{name}`" for name in figure.functions), theirs, ours)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # The exercises of the first notebook
#
# **Exercise 1.** Shrink the code of the simple autoencoder to 4 numbers, or 2, and watch the reconstructions:
# do the digits blur? Are they still recognisable?
#
# **Exercise 2.** Give the autoencoder more layers, as the denoising chapter did, but train it on clean images;
# compare its final loss and the sharpness of its images with the single-hidden-layer network.
#
# Every network here is trained as in the first notebook: Adam, mean squared error, batches of 256, validated on
# the test images, for as many gradient steps as the notebook's 20 epochs on 60,000 images.

# %%
from scratchae import builders, plots
from scratchae.backend import to_numpy
from scratchae.cli.explore import explorer_page
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.losses import MSELoss
from scratchae.engine.adam import FastAdam
from scratchae.training import fit

demo = Demo.start("exercises")

# %%
dataset = demo.load_data()
x_train, x_test = dataset.x_train, dataset.x_test
shape = dataset.image_shape
originals = x_test[:10]


schedule = demo.schedule(notebook_epochs=20, notebook_samples=60_000, batch_size=256)


def train(label, model):
    """Train an autoencoder as the first notebook does; return its history."""
    model.to(demo.device)
    with demo.timed(_f("train {model}", model=label)):
        history = fit(model, MSELoss(), FastAdam(model.parameters(), lr=1e-3), x_train, epochs=schedule.epochs,
                      batch_size=256, validation=x_test, seed=demo.seed, progress=False,
                      on_epoch_end=demo.print_epoch)
    demo.record(label, history, batch_size=256)
    return history


def reconstruct(model):
    """The model's reconstructions of the ten digits shown, as NumPy."""
    return to_numpy(model.reconstruct(demo.to_device(originals)))


# %% [markdown]
# ## Exercise 1: how small can the code be?
#
# The same 784-128-d-128-784 network with a code of d = 2, 4 and 32 numbers. Each row gives the final
# validation loss. With 2 numbers the network can hardly say more than roughly which digit it saw: most digits
# come out as blurred, typical shapes, some of them of another class. 4 numbers keep more of the shape; 32 keep
# the details. The code of 2 numbers is a plane: `07_latent_2_explorer.html` opens it in the browser.

# %%
latent_sizes = (2, 4, 32)
histories, reconstructions = {}, {}
for latent_dim in latent_sizes:
    label = _f("latent {d}", d=latent_dim)
    model = builders.simple_autoencoder(latent_dim=latent_dim, input_dim=dataset.n_features, seed=demo.seed, fast=True)
    histories[latent_dim] = train(_f("simple AE (latent {d})", d=latent_dim), model)
    reconstructions[label] = reconstruct(model)
    if latent_dim == 2:  # a code of two numbers is a plane: a page to explore it in the browser
        demo.save_page(explorer_page(model, x_test[:1000], dataset.y_test[:1000], image_shape=shape,
                                     class_names=dataset.class_names, title=_f("Exercise 1's autoencoder, latent 2")),
                       "07_latent_2_explorer.html",
                       _f("Exercise 1's code of 2 numbers in the browser: the codes of the test digits, the digit the "
                          "decoder draws at the pointer, and the walk between two clicked codes (one file, offline)."))

final_losses = {_f("latent {d}", d=d): history["val_loss"][-1] for d, history in histories.items()}
demo.save(plots.compare_reconstructions(originals, reconstructions, shape, losses=final_losses,
                                        title=_f("Exercise 1: reconstructions with a code of 2, 4 and 32 numbers")),
          "07_latent_sizes.png",
          _f("Exercise 1: ten test digits and their reconstructions by the simple autoencoder with a latent code of "
             "2, 4 and 32 numbers; each row gives its final validation loss ({schedule}).", schedule=schedule.text))

# %% [markdown]
# ## Exercise 2: a deeper network on clean images
#
# 784-128-64-32-64-128-784 (the denoising chapter's network, without the noise) against the single hidden layer
# of exercise 1, 784-128-32-128-784: both have a code of 32 numbers and train on the same data in the same way.
# First the loss curves on one plot (training solid, validation dashed), then the final losses in a table,
# then the reconstructions side by side. Depth does not win by itself: the deeper network has more weights to fit,
# and with few images it may still be learning when the training stops, or begin to learn these images by heart.
# Try `--data mnist` or other `--epochs` and compare again.

# %%
deep = builders.deep_autoencoder(latent_dim=32, input_dim=dataset.n_features, seed=demo.seed, fast=True)
single, deep_name = _f("single hidden layer"), _f("deep")
runs = {single: histories[32], deep_name: train(_f("deep AE (latent 32)"), deep)}
demo.save(plots.compare_loss_curves(runs, title=_f("Exercise 2: deep and single-hidden-layer autoencoders")),
          "08_deep_vs_single_losses.png",
          _f("Exercise 2: training (solid) and validation (dashed) loss per epoch of the deep autoencoder "
             "(784-128-64-32-64-128-784) and the single-hidden-layer one (784-128-32-128-784), on clean images "
             "({schedule}).", schedule=schedule.text))

# %%
demo.save(plots.loss_table(runs, title=_f("Exercise 2: final losses")), "08_deep_vs_single_table.png",
          _f("Exercise 2: final training and validation losses of the two networks."))

# %%
compared = {single: reconstructions[_f("latent {d}", d=32)], deep_name: reconstruct(deep)}
losses = {name: history["val_loss"][-1] for name, history in runs.items()}
demo.save(plots.compare_reconstructions(originals, compared, shape, losses=losses,
                                        title=_f("Exercise 2: reconstructions of the two networks")),
          "08_deep_vs_single_reconstructions.png",
          _f("Exercise 2: ten test digits and their reconstructions by the single-hidden-layer and the deep "
             "autoencoder, side by side, with their final validation losses."))

# %%
demo.finish()

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # A simple autoencoder
#
# An autoencoder is two networks back to back. The **encoder** $z = f(x)$ squeezes an image $x$ into a short
# code $z$; the **decoder** $\hat x = g(z)$ rebuilds the image from the code. Trained to give back its input, it
# minimises the mean squared error
#
# $$L(x, \hat x) = \frac{1}{N} \sum_{i=1}^{N} (x_i - \hat x_i)^2 .$$
#
# The code is the bottleneck: 32 numbers for 784 pixels, 24.5 times fewer, so the network must keep what matters
# and drop the rest. This chapter trains the first notebook's network, 784-128-32-128-784 (ReLU, and a sigmoid on
# the output so that pixels stay in [0, 1]), and looks at what it learned.
#
# Run it as a script (`python demos/simple_autoencoder.py`, `--quick` for a few seconds) or open it as a notebook.
# Every figure is also saved as a PNG in `outputs/simple_autoencoder/`.

# %%
import numpy

from scratchae import builders, plots
from scratchae.backend import to_numpy
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.losses import MSELoss
from scratchae.engine.adam import FastAdam
from scratchae.training import fit

demo = Demo.start("simple_autoencoder")

# %% [markdown]
# ## The data
#
# Handwritten digits, 28 x 28 pixels, each flattened to one row of 784 numbers in [0, 1] (the dense layers take
# vectors). The default data set, `mnist-5k`, is 5,000 real MNIST digits that need no download: 4,000 to train on
# and 1,000 to test with. `--data mnist` takes the full 60,000 + 10,000.

# %%
dataset = demo.load_data()
x_train, x_test, y_test = dataset.x_train, dataset.x_test, dataset.y_test
shape = dataset.image_shape

# %% [markdown]
# Ten training digits, drawn on a fixed grey scale from 0 (black) to 1 (white).

# %%
samples_title = _f("MNIST samples") if dataset.name.startswith("mnist") else _f("{name} samples", name=dataset.name)
demo.save(plots.image_row(x_train, shape, title=samples_title, n=10), "01_samples.png",
          _f("Ten training digits, as the network sees them: {pixels} numbers in [0, 1] drawn as a {height} x {width} "
             "image.", pixels=dataset.n_features, height=shape[0], width=shape[1]))

# %% [markdown]
# ## The model
#
# Encoder 784 → 128 → 32, decoder 32 → 128 → 784, ReLU after every layer but the last, which is a sigmoid.
# Encoder and decoder are separate networks, so that each can be used alone later: the encoder to look at the
# codes, the decoder to turn a code into an image.

# %%
# fast=True: the engine's forms of the same layers (scratchae/engine/), the same numbers, faster; leave it out to
# step through the lesson's own layers in a debugger
model = builders.simple_autoencoder(latent_dim=32, input_dim=dataset.n_features, seed=demo.seed,
                                   fast=True).to(demo.device)
print(model.summary())

# %% [markdown]
# ## Training
#
# Adam on the mean squared error in mini-batches of 256, as the notebook does. The input is also the target
# (x → x), so `fit` gets no `y`. The notebook trains 20 epochs of 60,000 images; on the 4,000 of `mnist-5k` an
# epoch is 15 times fewer gradient steps, so the chapter trains as many epochs as it takes to make as many steps.
# After each epoch the loss on the test images, which the network never trains on, is measured too: when both
# curves fall together, the network is learning digits, not memorising these particular ones.

# %%
schedule = demo.schedule(notebook_epochs=20, notebook_samples=60_000, batch_size=256)
with demo.timed(_f("train simple AE")):
    history = fit(model, MSELoss(), FastAdam(model.parameters(), lr=1e-3), x_train, epochs=schedule.epochs,
                  batch_size=256, validation=x_test, seed=demo.seed, progress=False, on_epoch_end=demo.print_epoch)
demo.record(_f("simple AE (latent 32)"), history, batch_size=256)
demo.save(plots.loss_curves(history, title=_f("Loss during training")), "02_loss.png",
          _f("Training and validation loss (mean squared error) per epoch of the simple autoencoder (latent 32, "
             "batch 256, {schedule}).", schedule=schedule.text))

# %% [markdown]
# ## Reconstructions
#
# Test digits on top, what the autoencoder made of them below. Everything that survives went through 32 numbers.
# The arrays cross from the device to NumPy once, here, before they are drawn.

# %%
originals = x_test[:10]
reconstructed = to_numpy(model.reconstruct(demo.to_device(originals)))
demo.save(plots.reconstructions(originals, reconstructed, shape, title=_f("Originals and reconstructions")),
          "03_reconstructions.png",
          _f("Ten test digits (top) over their reconstructions from a 32-number code (bottom)."))

# %% [markdown]
# ## The latent space, seen with t-SNE
#
# Each test digit is now a point in 32 dimensions. t-SNE draws those points in 2-D so that points that are close
# in 32-D stay close. Nobody told the autoencoder which digit is which, yet digits of the same class gather:
# to rebuild a digit well, the code must say what the digit looks like, and that is mostly which digit it is.

# %%
n = min(1000, len(x_test))
codes = to_numpy(model.encode(demo.to_device(x_test[:n])))  # (n, 32)
points = demo.tsne(codes)  # (n, 2)
# How much the codes gather by digit, measured in 32-D: how often a code's nearest other code is of the same digit,
# against how often two digits drawn at random are.
squared = (codes**2).sum(axis=1)  # (n,)
distances = squared[:, None] + squared[None, :] - 2 * codes @ codes.T  # (n, n) squared distances
numpy.fill_diagonal(distances, numpy.inf)  # a code is not its own neighbour
same_as_nearest = float((y_test[:n][distances.argmin(axis=1)] == y_test[:n]).mean())
chance = float(((numpy.bincount(y_test[:n]) / n) ** 2).sum())
demo.record(_f("latent codes of the test digits"), nearest_code_same_digit=round(same_as_nearest, 4),
            by_chance=round(chance, 4))
demo.save(plots.latent_scatter(points, y_test[:n], title=_f("t-SNE of the latent space (32D -> 2D)"),
                               legend=False, colorbar=True, class_names=dataset.class_names),
          "04_latent_tsne.png",
          _f("t-SNE of the 32-d latent codes of {n:,} test digits, coloured by digit. The autoencoder never saw a "
             "label, yet for {same:.0f} % of the digits the nearest other code (in 32-D) is of the same digit, "
             "against {chance:.0f} % for two digits drawn at random.", n=n, same=100 * same_as_nearest,
             chance=100 * chance))

# %%
demo.finish()

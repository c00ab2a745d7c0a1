# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # A denoising autoencoder
#
# A denoising autoencoder is trained to rebuild a **clean** image from a **corrupted** copy of it. It can no longer
# get away with copying its input: it has to learn what digits look like, so that it can tell the strokes from the
# noise. This chapter follows the first notebook: Gaussian noise of standard deviation 0.5, clipped back to
# [0, 1], and a deeper network, 784-128-64-32-64-128-784.

# %%
from scratchae import builders, data, plots
from scratchae.backend import random_generator, to_numpy
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.losses import MSELoss
from scratchae.engine.adam import FastAdam
from scratchae.training import fit

demo = Demo.start("denoising")
NOISE_FACTOR = 0.5

# %%
dataset = demo.load_data()
x_train, x_test = dataset.x_train, dataset.x_test
shape = dataset.image_shape

# %% [markdown]
# ## Adding noise
#
# $\tilde x = \mathrm{clip}(x + 0.5\,\varepsilon,\ 0,\ 1)$ with $\varepsilon \sim \mathcal{N}(0, I)$: every pixel
# moves by a random amount, and the clip keeps pixel values valid. The noisy test images are drawn once, with a
# fixed seed, so that every epoch is validated on the same images. The training images get fresh noise in every
# batch: the model draws it itself while it trains, so it never sees the same corruption twice.

# %%
x_test_noisy = data.add_gaussian_noise(x_test, NOISE_FACTOR, random_generator(demo.seed + 1), clip=(0.0, 1.0))
demo.save(plots.image_row(x_test_noisy, shape, title=_f("Noisy input"), n=10),
          "05_noisy_inputs.png",
          _f("Ten test digits with Gaussian noise (noise factor {noise}), clipped to [0, 1]: what the denoising "
             "autoencoder gets as input.", noise=NOISE_FACTOR))

# %% [markdown]
# ## The model and its training
#
# The deep network, trained on noisy inputs against clean targets: the loss compares the output with the clean
# image. Adam, mean squared error, batches of 128, validated on (noisy test images, clean test images); as many
# gradient steps as the notebook's 20 epochs on 60,000 images.

# %%
model = builders.denoising_autoencoder(latent_dim=32, noise_factor=NOISE_FACTOR, input_dim=dataset.n_features,
                                     seed=demo.seed, fast=True).to(demo.device)
print(model.summary())
schedule = demo.schedule(notebook_epochs=20, notebook_samples=60_000, batch_size=128)
with demo.timed(_f("train denoising AE")):
    history = fit(model, MSELoss(), FastAdam(model.parameters(), lr=1e-3), x_train, epochs=schedule.epochs,
                  batch_size=128, validation=(x_test_noisy, x_test), seed=demo.seed, progress=False,
                  on_epoch_end=demo.print_epoch)
demo.record(_f("deep denoising AE"), history, batch_size=128)

# %% [markdown]
# ## Results
#
# The noisy input, the model's output and the clean original, for ten test digits. To put a number on it: the
# mean squared error between the noisy input and the original, against the one between the output and the
# original.

# %%
noise_error = float(((x_test_noisy - x_test) ** 2).mean())
demo.record(_f("noisy input, no model (baseline)"), val_loss=noise_error)
denoised = to_numpy(model.reconstruct(demo.to_device(x_test_noisy[:10])))
final_error = history["val_loss"][-1]
rows = {_f("Noisy"): x_test_noisy[:10], _f("Reconstructed (clean)"): denoised, _f("Original"): x_test[:10]}
demo.save(plots.image_grid(rows, shape, title=_f("Denoising autoencoder")), "06_denoised.png",
          _f("Noisy inputs (top), the deep denoising autoencoder's outputs (middle) and the originals (bottom); the "
             "test-set MSE to the originals falls from {noisy:.4f} to {denoised:.4f} (batch 128, {schedule}).",
             noisy=noise_error, denoised=final_error, schedule=schedule.text))

# %%
demo.finish()

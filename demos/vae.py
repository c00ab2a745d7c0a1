# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # The variational autoencoder
#
# The second notebook ends by decoding random codes $z \sim \mathcal{N}(0, I)$ with a plain autoencoder, and they
# decode to blobs: nothing in its training asked the codes to fill $\mathcal{N}(0, I)$, so most of it is a region
# the decoder has never seen. A **variational autoencoder** (VAE) asks exactly that. Its encoder gives each image a
# Gaussian, a mean $\mu$ and a log-variance $\log\sigma^2$, instead of a point; the decoder learns from a *sample*
# of it,
#
# $$z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I),$$
#
# and the loss (the negative evidence lower bound, per image) adds to the reconstruction error the KL divergence of
# that Gaussian from $\mathcal{N}(0, I)$:
#
# $$L = \sum_i \mathrm{BCE}(\hat x_i, x_i)
#       - \tfrac12 \sum_j \left(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\right).$$
#
# The gradients are the chain rule again, through the sample: $\partial L/\partial\mu = \partial L/\partial z +
# \mu$ and $\partial L/\partial\log\sigma^2 = \partial L/\partial z \cdot \varepsilon\,\sigma/2 + (\sigma^2-1)/2$,
# written out in `VariationalAutoencoder.backward` (`scratchae/models.py`) and `VAELoss` (`scratchae/losses.py`).

# %%
from statistics import NormalDist

import numpy

from scratchae import builders, plots
from scratchae.backend import to_numpy
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.losses import MSELoss, VAELoss
from scratchae.engine.adam import FastAdam
from scratchae.training import fit

demo = Demo.start("vae")
dataset = demo.load_data()
x_train, x_test, y_test = dataset.x_train, dataset.x_test, dataset.y_test
shape, D = dataset.image_shape, dataset.n_features
LATENT = 16  # the plain autoencoder's latent size, so that the very same random codes can go to both decoders

# %% [markdown]
# ## The plain autoencoder of the second notebook
#
# 784-128-64-16 (linear)-64-128-784, trained as in that chapter: mean squared error, Adam (lr 1e-3, weight decay
# 1e-8), batches of 64.

# %%
plain = builders.linear_latent_autoencoder(LATENT, input_dim=D, seed=demo.seed, fast=True).to(demo.device)
plain_schedule = demo.schedule(notebook_epochs=20, notebook_samples=10_000, batch_size=64)
with demo.timed(_f("train plain AE")):
    plain_history = fit(plain, MSELoss(), FastAdam(plain.parameters(), lr=1e-3, weight_decay=1e-8), x_train,
                        epochs=plain_schedule.epochs, batch_size=64, validation=x_test, seed=demo.seed,
                        progress=False, on_epoch_end=demo.print_epoch)
demo.record(_f("plain AE (linear latent 16)"), plain_history, batch_size=64)

# %% [markdown]
# ## The VAE
#
# The VAE of pytorch/examples with a 16-d latent space: encoder 784-400 (ReLU), two heads 400-16 for $\mu$ and
# $\log\sigma^2$, decoder 16-400-784 (ReLU, sigmoid). Adam, lr 1e-3, batches of 128, as many gradient steps as
# its 10 epochs on 60,000 images. `fit` gets no `y`: the target is the input, and the model returns
# `(x_hat, mu, logvar)`, which `VAELoss` takes whole.

# %%
vae = builders.variational_autoencoder(LATENT, input_dim=D, seed=demo.seed, fast=True).to(demo.device)
print(vae.summary())
schedule = demo.schedule(notebook_epochs=10, notebook_samples=60_000, batch_size=128, source="pytorch/examples")
with demo.timed(_f("train VAE")):
    history = fit(vae, VAELoss("bce"), FastAdam(vae.parameters(), lr=1e-3), x_train, epochs=schedule.epochs,
                  batch_size=128, validation=x_test, seed=demo.seed, progress=False, on_epoch_end=demo.print_epoch)
demo.record(_f("VAE (latent 16)"), history, batch_size=128)
final = history.final()
reconstruction, kl = history["val_reconstruction"], history["val_kl"]  # per epoch, on the test digits
demo.save(plots.history_panels(history, ("loss", "reconstruction", "kl"),
                               titles=(_f("negative ELBO (nats per image)"),
                                       _f("reconstruction (BCE summed over pixels)"),
                                       "KL(N(mu, sigma^2) || N(0, I))"),
                               title=_f("The VAE's loss and its two terms")),
          "15_vae_loss.png",
          _f("The VAE's loss per epoch (left) and its two terms (training solid, test dashed); on the test digits "
             "the reconstruction error (middle) {reconstruction_moves} from {reconstruction_first:.1f} to "
             "{reconstruction_last:.1f} nats and the KL term (right) {kl_moves} from {kl_first:.1f} to {kl_last:.1f} "
             "between the first epoch and the last; final test loss {loss:.1f} nats per image = "
             "{reconstruction:.1f} + {kl:.1f} (batch 128, {schedule}).",
             reconstruction_moves=_f("falls") if reconstruction[-1] < reconstruction[0] else _f("rises"),
             reconstruction_first=reconstruction[0], reconstruction_last=reconstruction[-1],
             kl_moves=_f("rises") if kl[-1] > kl[0] else _f("falls"), kl_first=kl[0], kl_last=kl[-1],
             loss=final["val_loss"], reconstruction=final["val_reconstruction"], kl=final["val_kl"],
             schedule=schedule.text))

# %% [markdown]
# ## Reconstructions
#
# `reconstruct` decodes the mean code $\mu$, with no sampling.

# %%
originals = x_test[:10]
test_inputs = demo.to_device(x_test)
plain_mse = float(((to_numpy(plain.reconstruct(test_inputs)) - x_test) ** 2).mean())  # over every test pixel
vae_mse = float(((to_numpy(vae.reconstruct(test_inputs)) - x_test) ** 2).mean())
print(f"mean squared error over the {len(x_test):,} test digits: plain autoencoder {plain_mse:.4f}, VAE {vae_mse:.4f}")
demo.record(_f("reconstructions of the test digits"), plain_autoencoder_mse=round(plain_mse, 5),
            vae_mse=round(vae_mse, 5))
demo.save(plots.compare_reconstructions(originals, {
    _f("plain autoencoder (test MSE {mse:.4f})", mse=plain_mse): to_numpy(plain.reconstruct(demo.to_device(originals))),
    _f("VAE, decoded mu (test MSE {mse:.4f})", mse=vae_mse): to_numpy(vae.reconstruct(demo.to_device(originals)))},
    shape, title=_f("Test digits, and what each model rebuilds")),
    "16_vae_reconstructions.png",
    _f("Ten test digits (top), rebuilt by the plain autoencoder (middle) and by the VAE from its mean code (bottom); "
       "over all {n:,} test digits the mean squared error is {plain:.4f} for the plain autoencoder and {vae:.4f} for "
       "the VAE: {closer} reconstructions are the closer to the originals.", n=len(x_test), plain=plain_mse,
       vae=vae_mse, closer=_f("the plain autoencoder's") if plain_mse < vae_mse else _f("the VAE's")))

# %% [markdown]
# ## The second notebook's experiment, answered
#
# The *same* twelve random codes $z \sim \mathcal{N}(0, I)$, decoded by each model. The plain autoencoder's real
# codes lie far from the origin, so these codes land where its decoder has never been; the VAE was trained to keep
# its codes near $\mathcal{N}(0, I)$, so they decode to digit-like images.

# %%
z = numpy.random.default_rng(demo.seed).standard_normal((12, LATENT)).astype(numpy.float32)  # (12, 16)
rows = {_f("plain autoencoder"): to_numpy(plain.decode(demo.to_device(z))),
        "VAE": to_numpy(vae.decode(demo.to_device(z)))}
demo.save(plots.image_grid(rows, shape, title=_f("The same 12 codes z ~ N(0, I), decoded")),
          "17_vae_vs_autoencoder_generation.png",
          _f("The same 12 random codes z ~ N(0, I) decoded by the plain autoencoder of the second notebook (top) and "
             "by the VAE (bottom): only the VAE was trained to make N(0, I) the place where its codes live."))

# %% [markdown]
# ## A VAE with a 2-d latent space
#
# With two numbers per image the latent space can be drawn as it is, with no t-SNE. The KL term's weight rises from
# 0 over the first epochs (a *warm-up*): a latent space this small first learns to reconstruct, then is pulled
# towards $\mathcal{N}(0, I)$.

# %%
vae_2d = builders.variational_autoencoder(2, input_dim=D, seed=demo.seed, fast=True).to(demo.device)
warmup = max(1, schedule.epochs // 10)
with demo.timed(_f("train 2-d VAE")):
    history_2d = fit(vae_2d, VAELoss("bce", warmup_epochs=warmup), FastAdam(vae_2d.parameters(), lr=1e-3), x_train,
                     epochs=schedule.epochs, batch_size=128, validation=x_test, seed=demo.seed, progress=False,
                     on_epoch_end=demo.print_epoch)
demo.record(_f("VAE (latent 2)"), history_2d, batch_size=128, kl_warmup_epochs=warmup)
n = min(1000, len(x_test))
codes = to_numpy(vae_2d.encode(demo.to_device(x_test[:n])))  # (n, 2), the mean codes
demo.save(plots.latent_scatter(codes, y_test[:n], title=_f("The 2-d latent space: mu of {n:,} test digits", n=n),
                               class_names=dataset.class_names, axis_labels=("z1", "z2")),
          "18_vae_latent_2d.png",
          _f("The mean codes mu of {n:,} test digits in the 2-d VAE's latent space, coloured by digit (no t-SNE: the "
             "space has two dimensions); KL warm-up over {warmup}.", n=n,
             warmup=_f("1 epoch") if warmup == 1 else _f("{n} epochs", n=warmup)))

# %% [markdown]
# The same plane as a page that opens in the browser, `18_vae_explorer.html` (or `scratchae explore RUN_DIR` for a
# model trained with `scratchae train --model vae --latent-dim 2`): move the pointer and the decoder draws the
# digit of the code under it; click two points to walk from one to the other. The page runs this decoder, Dense,
# ReLU, Dense, Sigmoid, written out in plain JavaScript.

# %%
from scratchae.cli.explore import explorer_page

demo.save_page(explorer_page(vae_2d, x_test[:n], y_test[:n], image_shape=shape, class_names=dataset.class_names,
                             title=_f("The VAE chapter's 2-d VAE")),
               "18_vae_explorer.html",
               _f("The 2-d latent space in the browser: the mean codes of {n:,} test digits, the digit the decoder "
                  "draws at the pointer, and the walk between two clicked codes (one file, offline).", n=n))

# %% [markdown]
# ## The manifold of digits
#
# A 20 x 20 grid of codes taken at evenly spaced *quantiles* of $\mathcal{N}(0, 1)$ in each coordinate (the inverse
# of the normal CDF, `statistics.NormalDist().inv_cdf`), so that the grid covers the prior where it has mass, and
# every code decoded.

# %%
quantiles = [NormalDist().inv_cdf(p) for p in numpy.linspace(0.05, 0.95, 20)]  # 20 values of z
grid = numpy.array([[z1, z2] for z2 in reversed(quantiles) for z1 in quantiles], dtype=numpy.float32)  # (400, 2)
manifold = to_numpy(vae_2d.decode(demo.to_device(grid)))  # (400, D)
demo.save(plots.image_mosaic(manifold, shape, columns=20, title=_f("Digits decoded across the 2-d latent space"),
                             axis_labels=("z1", "z2"), ticks=(quantiles, list(reversed(quantiles)))),
          "19_vae_manifold.png",
          _f("Images decoded from a 20 x 20 grid of codes at the 5 % to 95 % quantiles of N(0, 1) in each coordinate: "
             "the digits change smoothly into one another across the latent space."))

# %% [markdown]
# ## Interpolation, through both latent spaces
#
# The same two test digits as in the linear-latent chapter, and the segment between their codes,
# $z(t) = (1 - t) z_1 + t z_2$, decoded by each model.

# %%
first = 0
second = int(numpy.flatnonzero(y_test[:n] != y_test[first])[0])  # the first test digit of another class
ts = numpy.linspace(0.0, 1.0, 12, dtype=numpy.float32)  # (12,)
pair = demo.to_device(x_test[[first, second]])


def path(model):
    z1, z2 = to_numpy(model.encode(pair))  # (LATENT,) each; for the VAE, the mean codes
    return to_numpy(model.decode(demo.to_device((1 - ts[:, None]) * z1 + ts[:, None] * z2)))  # (12, D)


names = dataset.class_names
half = len(ts) // 2  # each path in two lines of 6 images, so that a page does not shrink its labels away
rows = {_f("{model}, t = {low:.2f} to {high:.2f}", model=label, low=ts[start], high=ts[start + half - 1]): images
        for label, images in ((_f("plain autoencoder"), path(plain)), ("VAE", path(vae)))
        for start, images in ((0, images[:half]), (half, images[half:]))}
demo.save(plots.image_grid(rows, shape, image_titles=[_f("t = {t:.2f}", t=t) for t in ts[:half]],
                           title=_f("From a {first} to a {second}", first=names[y_test[first]],
                                    second=names[y_test[second]])),
          "20_vae_interpolation.png",
          _f("12 evenly spaced points between the codes of the same two test digits, a {first} and a {second}, "
             "decoded by the plain autoencoder (top two rows) and by the VAE (bottom two rows).",
             first=names[y_test[first]], second=names[y_test[second]]))

# %%
demo.finish()

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # An autoencoder with a linear latent layer: reconstruction, interpolation, generation
#
# The second notebook's autoencoder: encoder $f$ 784-128-64-16 whose last layer is linear (no activation, so a
# code can take any real value), decoder $g$ 16-64-128-784 with a sigmoid output. It minimises
#
# $$\mathcal{L}(x, \hat x) = \mathcal{L}(x, g(f(x))) = \frac{1}{N} \sum_{i=1}^{N} (x_i - \hat x_i)^2 .$$
#
# After training, the decoder is used on its own: on codes between two digits, and on codes drawn at random.

# %%
import numpy

from scratchae import builders, plots
from scratchae.backend import to_numpy
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.losses import MSELoss
from scratchae.engine.adam import FastAdam
from scratchae.training import fit

demo = Demo.start("linear_latent")
LATENT_DIM = 16

# %% [markdown]
# ## Data and training
#
# 10,000 training and 1,000 test digits as in the notebook, which calls the test digits its validation set (the
# whole of `mnist-5k`, 4,000 + 1,000, by default). Adam with learning rate 1e-3 and weight decay 1e-8, batches of
# 64, for as many gradient steps as the notebook's 20 epochs on 10,000 digits.

# %%
dataset = demo.load_data(train_size=10_000, test_size=1_000)
x_train, x_test, y_test = dataset.x_train, dataset.x_test, dataset.y_test
shape = dataset.image_shape

model = builders.linear_latent_autoencoder(latent_dim=LATENT_DIM, input_dim=dataset.n_features,
                                         seed=demo.seed, fast=True).to(demo.device)
print(model.summary())
schedule = demo.schedule(notebook_epochs=20, notebook_samples=10_000, batch_size=64)
with demo.timed(_f("train linear-latent AE")):
    history = fit(model, MSELoss(), FastAdam(model.parameters(), lr=1e-3, weight_decay=1e-8), x_train,
                  epochs=schedule.epochs, batch_size=64, validation=x_test, seed=demo.seed, progress=False,
                  on_epoch_end=demo.print_epoch)
demo.record(_f("linear-latent AE (latent 16)"), history, batch_size=64)

# %% [markdown]
# The training loss per epoch, one marker per epoch, as the notebook draws it.

# %%
demo.save(plots.loss_curves({"loss": history["loss"]}, title=_f("Training loss (autoencoder)"), markers=True,
                            grid=True),
          "10_loss.png",
          _f("Training loss (mean squared error) per epoch of the linear-latent autoencoder (Adam, lr 1e-3, weight "
             "decay 1e-8, batch 64, {schedule}).", schedule=schedule.text))

# %% [markdown]
# ## Reconstructions
#
# Test digits over their reconstructions, on a grey scale fixed to [0, 1] so that a faint reconstruction
# looks faint.

# %%
originals = x_test[:10]
reconstructed = to_numpy(model.reconstruct(demo.to_device(originals)))
demo.save(plots.reconstructions(originals, reconstructed, shape, originals_title=_f("Original images"),
                                row_title=_f("Reconstructed images")),
          "11_reconstructions.png",
          _f("Ten test digits (top) over their reconstructions by the linear-latent autoencoder (bottom), grey scale "
             "fixed to [0, 1]."))

# %% [markdown]
# ## The latent space with t-SNE
#
# The 16-d codes of the test digits, drawn in 2-D by t-SNE, one colour per digit.

# %%
n = min(1000, len(x_test))
test_codes = to_numpy(model.encode(demo.to_device(x_test[:n])))  # (n, 16)
points = demo.tsne(test_codes)
demo.save(plots.latent_scatter(points, y_test[:n], title=_f("Visualization of the latent space with t-SNE"),
                               legend=True, class_names=dataset.class_names),
          "12_latent_tsne.png",
          _f("t-SNE of the 16-d latent codes of {n:,} test digits, with a legend of the digits.", n=n))

# %% [markdown]
# ## Interpolating in the latent space
#
# Take the codes $z_1$ and $z_2$ of two test digits of different classes and decode the points of the
# segment between them,
#
# $$z(t) = (1 - t)\, z_1 + t\, z_2, \quad t \in [0, 1],$$
#
# in 12 steps. If the latent space is continuous, the images change smoothly from one digit into the other; the
# ends are the two digits' reconstructions.

# %%
first = 0
second = int(numpy.flatnonzero(y_test[:n] != y_test[first])[0])  # the first digit of another class
z1, z2 = test_codes[first], test_codes[second]  # (16,) each
ts = numpy.linspace(0.0, 1.0, 12, dtype=numpy.float32)  # (12,)
z_path = (1 - ts[:, None]) * z1 + ts[:, None] * z2  # (12, 16)
path_images = to_numpy(model.decode(demo.to_device(z_path)))  # (12, 784)
names = dataset.class_names
demo.save(plots.interpolation_strip(path_images, shape, ts, title=_f("Linear interpolation in the latent space")),
          "13_interpolation.png",
          _f("Images decoded at 12 evenly spaced points z(t) = (1 - t) z1 + t z2 between the latent codes of two "
             "test digits, from a {first} (t = 0) to a {second} (t = 1).", first=names[y_test[first]],
             second=names[y_test[second]]))

# %% [markdown]
# ## Generating new digits
#
# The decoder turns any 16 numbers into an image. A first try: draw $z \sim \mathcal{N}(0, I)$ and decode it.
# The results are rarely digits. Nothing in the training asked the codes to follow a standard normal
# distribution: they lie in a region of their own, with their own centre, spread and correlations, and most of
# $\mathcal{N}(0, I)$ falls where the decoder has never been, so it produces something it was never taught.
#
# A second try: fit a Gaussian to the codes of the real training digits, their mean $\mu$ and covariance
# $\Sigma$, and draw $z \sim \mathcal{N}(\mu, \Sigma)$. These codes land where real codes are, and many decode to
# digit-like shapes; some still fall between the clusters, because the real codes are not one Gaussian but one
# cloud per digit. Making the latent space follow a known distribution by construction is the idea of the
# variational autoencoder (VAE).

# %%
rng = numpy.random.default_rng(demo.seed)
train_codes = to_numpy(model.encode(demo.to_device(x_train)))  # (N, 16)
mean, covariance = train_codes.mean(axis=0), numpy.cov(train_codes, rowvar=False)  # (16,), (16, 16)
z_standard = rng.standard_normal((12, LATENT_DIM)).astype(numpy.float32)  # z ~ N(0, I)
z_fitted = rng.multivariate_normal(mean, covariance, size=12).astype(numpy.float32)  # z ~ N(mu, Sigma)
spread = float(numpy.sqrt(numpy.trace(covariance)))  # typical distance of a real code from its mean
distance = float(numpy.linalg.norm(mean))  # distance from the origin, the centre of N(0, I)
print(f"real codes: centre {distance:.1f} away from the origin, spread {spread:.1f} (N(0, I): 0 and "
      f"{LATENT_DIM ** 0.5:.1f})")
demo.record(_f("latent codes of the training digits"), distance_of_mean_from_origin=round(distance, 3),
            spread=round(spread, 3))
rows = {_f("Decoded from z ~ N(0, I)"): to_numpy(model.decode(demo.to_device(z_standard))),
        _f("Decoded from z ~ N(μ, Σ), the mean and covariance of the real codes"):
            to_numpy(model.decode(demo.to_device(z_fitted)))}
demo.save(plots.image_grid(rows, shape, title=_f("Images generated from random samples of the latent space")),
          "14_generation.png",
          _f("12 images decoded from random codes z ~ N(0, I) (top), which fall where the decoder has never been "
             "(the real codes are centred {distance:.1f} from the origin with a spread of {spread:.1f}, against 0 "
             "and {standard:.1f}), and 12 decoded from codes drawn with the mean and covariance of the real codes "
             "(bottom), which land among them.", distance=distance, spread=spread, standard=LATENT_DIM ** 0.5))

# %%
demo.finish()

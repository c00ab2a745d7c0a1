# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Convolutional autoencoders
#
# Every network so far began by flattening the image into 784 numbers: a Dense layer does not know that pixel 29 is
# below pixel 1. A **convolution** does. Each of its output maps is one small kernel, 3 x 3 weights here, slid over
# the whole image,
#
# $$y_{o,i,j} = b_o + \sum_{c,p,q} W_{o,c,p,q}\; x_{c,\,i+p,\,j+q},$$
#
# so a stroke is detected the same way wherever it is, with 9 weights per input channel instead of one per pixel.
# Max pooling keeps the largest value of each 2 x 2 block (the image halves), upsampling repeats each pixel in a
# 2 x 2 block (it doubles). The layers are in `scratchae/conv.py`, with their backward passes: the gradient of a
# convolution with respect to its input is a convolution of the output's gradient with the *flipped* kernel.
#
# This chapter builds the networks of Chollet's "Building Autoencoders in Keras" and of the keras-io VAE example,
# and puts each beside the dense network of the earlier chapters.

# %%
from statistics import NormalDist

import numpy

from scratchae import builders, data, plots
from scratchae.backend import random_generator, to_numpy
from scratchae.conv import Conv2D
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.layers import ReLU
from scratchae.losses import BCELoss, VAELoss
from scratchae.engine.adam import FastAdam
from scratchae.training import fit

demo = Demo.start("convolutional")
# a quick run trains on 256 images: the convolutions of 28 x 28 images are the slowest layers of the course
dataset = demo.load_data(**({"train_size": 256, "test_size": 100} if demo.quick else {}))
x_train, x_test, y_test = dataset.x_train, dataset.x_test, dataset.y_test
shape = dataset.image_shape
image_shape = (1, *shape)  # one grey channel: (C, H, W)
BATCH = 128
CONV_VAE_LR = 3e-3  # the convolutional VAE's learning rate: see its section below
# One schedule for every model of the chapter, so that each comparison is after the same number of gradient steps:
# as many as 3 epochs of 60,000 images (the blog trains 50, and 100 for the denoiser; convolutions in NumPy are slow).
schedule = demo.schedule(notebook_epochs=3, notebook_samples=60_000, batch_size=BATCH, source=_f("this chapter"))


def weights(model) -> int:
    return sum(parameter.size for parameter in model.parameters())


def train(model, loss, label, validation=None, lr=1e-3):
    """Adam (lr 1e-3 unless told) on the training digits, batches of 128, the chapter's schedule."""
    with demo.timed(_f("train {model}", model=label)):
        history = fit(model, loss, FastAdam(model.parameters(), lr=lr), x_train, epochs=schedule.epochs,
                      batch_size=BATCH, validation=x_test if validation is None else validation, seed=demo.seed,
                      progress=False, on_epoch_end=demo.print_epoch)
    demo.record(label, history, batch_size=BATCH, parameters=weights(model))
    return history


def test_mse(model, inputs, targets) -> float:
    """Mean squared error per pixel of the model's reconstructions of ``inputs`` against ``targets``."""
    rebuilt = to_numpy(model.reconstruct(demo.to_device(inputs)))
    return float(numpy.mean((rebuilt - targets) ** 2))


# %% [markdown]
# ## The convolutional autoencoder
#
# The blog's network: three 3 x 3 convolutions of 16, 8 and 8 channels, each followed by 2 x 2 max pooling, take a
# 28 x 28 digit to a code of shape (8, 4, 4), 128 numbers (the last pooling is "same": 7 rows pool to 4, the last
# window holding one row). The decoder mirrors it with upsampling; its third convolution has no padding, which
# takes 16 rows to 14, so that the last upsampling lands on 28. Binary cross-entropy, as the blog trains it. The
# model still takes and gives flat rows of 784 pixels: a `Reshape` comes first and a `Flatten` last, so `fit` is the
# same call as in every chapter.

# %%
conv = builders.conv_autoencoder(image_shape=image_shape, seed=demo.seed, fast=True).to(demo.device)
print(conv.summary())
conv_history = train(conv, BCELoss(), _f("conv AE (16-8-8, code (8, 4, 4))"))

# %% [markdown]
# ## What the first layer learned
#
# The 16 kernels of the first convolution, each 3 x 3 weights on the one grey channel: red weights add the pixel
# under them, blue ones subtract it.

# %%
first = next(layer for layer in conv.encoder.layers if isinstance(layer, Conv2D))
kernels = to_numpy(first.W.data)[:, 0]  # (16, 3, 3): output channel, row, column
demo.save(plots.filter_grid(kernels, columns=8, title=_f("The 16 learned 3 x 3 kernels of the first layer")),
          "21_conv_filters.png",
          _f("The 16 kernels of the conv autoencoder's first layer after {schedule}: weights from {low:.2f} to "
             "{high:.2f}, each drawn on the same scale, red positive and blue negative.", schedule=schedule.text,
             low=kernels.min(), high=kernels.max()))

# %% [markdown]
# ## One digit through the encoder
#
# The encoder's layers one at a time on one test digit, keeping the maps after each block (convolution, pooling,
# ReLU): 16 maps of 14 x 14, 8 of 7 x 7, and the code, 8 of 4 x 4.

# %%
digit = x_test[:1]  # (1, 784)
stages, x = {_f("input"): digit.reshape(image_shape)}, demo.to_device(digit)
block = 0
for layer in conv.encoder.layers:
    x = layer.forward(x)
    if isinstance(layer, ReLU):
        block += 1
        maps = to_numpy(x)[0]  # (C, H, W)
        name = _f("the code") if block == 3 else _f("after block {block}", block=block)
        stages[_f("{stage}: {channels} maps of {height} x {width}", stage=name, channels=maps.shape[0],
                  height=maps.shape[1], width=maps.shape[2])] = maps
code = maps
label = dataset.class_names[y_test[0]] if dataset.class_names else str(y_test[0])
demo.save(plots.feature_maps(stages, title=_f("A test {label} through the convolutional encoder", label=label)),
          "22_conv_feature_maps.png",
          _f("One test digit (a {label}) and its feature maps after each of the encoder's three blocks, each row on a "
             "grey scale of its own; the code holds {size} numbers, {zeros:.0%} of them zero.", label=label,
             size=code.size, zeros=numpy.mean(code == 0)))

# %% [markdown]
# ## Dense against convolutional
#
# The first chapter's dense autoencoder, 784-128-32-128-784, trained the same way (BCE, the same batches, the same
# number of steps), and both scored by the mean squared error of their test reconstructions.

# %%
dense = builders.simple_autoencoder(32, input_dim=dataset.n_features, seed=demo.seed, fast=True).to(demo.device)
train(dense, BCELoss(), _f("dense AE (784-128-32-128-784)"))
dense_mse, conv_mse = test_mse(dense, x_test, x_test), test_mse(conv, x_test, x_test)
demo.record(_f("dense AE (784-128-32-128-784)"), test_mse=dense_mse)
demo.record(_f("conv AE (16-8-8, code (8, 4, 4))"), test_mse=conv_mse)
originals = x_test[:10]
demo.save(plots.compare_reconstructions(originals, {
    _f("dense, {weights:,} weights, code of 32 (test MSE {mse:.4f})", weights=weights(dense), mse=dense_mse):
        to_numpy(dense.reconstruct(demo.to_device(originals))),
    _f("convolutional, {weights:,} weights, code of 128 (test MSE {mse:.4f})", weights=weights(conv), mse=conv_mse):
        to_numpy(conv.reconstruct(demo.to_device(originals)))}, shape,
    title=_f("Test digits, rebuilt by a dense and a convolutional autoencoder")),
    "23_dense_vs_conv_reconstructions.png",
    _f("Ten test digits (top), rebuilt by the dense autoencoder ({dense_weights:,} weights, test MSE {dense_mse:.4f}) "
       "and by the convolutional one ({conv_weights:,} weights, test MSE {conv_mse:.4f}), both trained with BCE for "
       "{schedule}.", dense_weights=weights(dense), dense_mse=dense_mse, conv_weights=weights(conv),
       conv_mse=conv_mse, schedule=schedule.text))

# %% [markdown]
# ## Denoising, dense and convolutional
#
# The blog's convolutional denoiser (32 channels everywhere, two poolings: a code of shape (32, 7, 7)) and the deep
# dense denoiser of the denoising chapter, both trained on fresh noise (0.5, clipped to [0, 1]) in every batch, and
# both shown the same noisy test digits.

# %%
NOISE = 0.5
x_test_noisy = data.add_gaussian_noise(x_test, NOISE, random_generator(demo.seed + 1), clip=(0.0, 1.0))
denoisers = {
    _f("dense denoiser"): builders.denoising_autoencoder(32, noise_factor=NOISE, input_dim=dataset.n_features,
                                                       seed=demo.seed, fast=True),
    _f("conv denoiser"): builders.conv_denoising_autoencoder(image_shape=image_shape, noise_factor=NOISE,
                                                            seed=demo.seed, fast=True)}
dense_denoiser, conv_denoiser = denoisers
errors = {}
for name, model in denoisers.items():
    model.to(demo.device)
    train(model, BCELoss(), name, validation=(x_test_noisy, x_test))
    errors[name] = test_mse(model, x_test_noisy, x_test)
    demo.record(name, test_mse=errors[name])
noise_mse = float(numpy.mean((x_test_noisy - x_test) ** 2))
rows = {_f("Noisy input (MSE {mse:.4f})", mse=noise_mse): x_test_noisy[:10]}
rows.update({_f("{name}, {weights:,} weights (MSE {mse:.4f})", name=name, weights=weights(model), mse=errors[name]):
             to_numpy(model.reconstruct(demo.to_device(x_test_noisy[:10]))) for name, model in denoisers.items()})
rows[_f("Original")] = x_test[:10]
demo.save(plots.image_grid(rows, shape, title=_f("The same noisy digits, denoised")), "24_dense_vs_conv_denoising.png",
          _f("The same noisy test digits (noise {noise}, MSE to the originals {noise_mse:.4f}), denoised by the dense "
             "denoiser ({dense_weights:,} weights, test MSE {dense_mse:.4f}) and by the convolutional one "
             "({conv_weights:,} weights, test MSE {conv_mse:.4f}); {schedule}.", noise=NOISE, noise_mse=noise_mse,
             dense_weights=weights(denoisers[dense_denoiser]), dense_mse=errors[dense_denoiser],
             conv_weights=weights(denoisers[conv_denoiser]), conv_mse=errors[conv_denoiser],
             schedule=schedule.text))

# %% [markdown]
# ## A convolutional VAE, and its manifold
#
# The keras-io VAE: two stride-2 convolutions (32 and 64 channels, 28 -> 14 -> 7), a Dense layer of 16, heads for
# $\mu$ and $\log\sigma^2$ in a 2-d latent space; the decoder goes back with a Dense layer to (64, 7, 7) and
# stride-2 *transposed* convolutions. Beside it, the dense VAE of the VAE chapter with the same 2-d latent space.
# Both are trained as there, the KL term's weight rising from 0 over the first tenth of the epochs, and decoded on
# the same 20 x 20 grid of codes, at quantiles of $\mathcal{N}(0, 1)$.
#
# The chapter's budget is short for this network: 1,408 gradient steps on `mnist-5k`, where the keras-io example
# takes 16,410 (30 epochs of 70,000 digits in batches of 128). With Adam's usual learning rate, 1e-3, its test loss
# was still falling fast when the steps ran out (174.5 nats, 4.1 less than four epochs before), and the test digits'
# mean codes were centred at (-1.27, -0.58), far from the (0, 0) of $\mathcal{N}(0, I)$: the right half of the grid
# lay where no digit's code was, and the decoder drew a 0 over all of it. A learning rate of 3e-3 costs nothing and
# goes further in the same 1,408 steps: a test loss of 165.6, codes centred at (-0.01, -0.94), and more digits on the
# grid. `docs/conv_vae_learning_rate.png` shows both manifolds (`python docs/conv_vae_learning_rate.py` draws it). So
# the convolutional VAE trains with 3e-3, and the caption measures what is still missing.

# %%
vaes = {_f("dense VAE"): builders.variational_autoencoder(2, input_dim=dataset.n_features, seed=demo.seed, fast=True),
        _f("conv VAE"): builders.conv_variational_autoencoder(2, image_shape=image_shape, seed=demo.seed, fast=True)}
dense_vae, conv_vae = vaes
learning_rates = {dense_vae: 1e-3, conv_vae: CONV_VAE_LR}
print(vaes[conv_vae].summary())
quantiles = [NormalDist().inv_cdf(p) for p in numpy.linspace(0.05, 0.95, 20)]  # 20 values of z
grid = numpy.array([[z1, z2] for z2 in reversed(quantiles) for z1 in quantiles], dtype=numpy.float32)  # (400, 2)
manifolds, elbo, still_falling, nearest, spread = {}, {}, {}, {}, {}
warmup = max(1, schedule.epochs // 10)
last = max(1, schedule.epochs // 10)  # the last tenth of the epochs: is the test loss still falling?
for name, vae in vaes.items():
    vae.to(demo.device)
    losses = train(vae, VAELoss("bce", warmup_epochs=warmup), name, lr=learning_rates[name])["val_loss"]
    elbo[name], still_falling[name] = losses[-1], losses[-1 - last] - losses[-1] if len(losses) > last else 0.0
    # Which digit each code of the grid lies nearest to, among the mean codes of the test digits: the decoder draws,
    # at a code, much what it learned to draw for the digits whose codes are around it.
    codes = to_numpy(vae.encode(demo.to_device(x_test)))  # (n, 2)
    spread[name] = (codes.mean(axis=0), codes.std(axis=0))  # (2,) each: N(0, I) would give (0, 0) and (1, 1)
    distances = ((grid[:, None, :] - codes[None, :, :]) ** 2).sum(axis=2)  # (400, n)
    shares = numpy.bincount(y_test[distances.argmin(axis=1)], minlength=dataset.n_classes) / len(grid)  # (classes,)
    nearest[name] = (int(shares.argmax()), float(shares.max()))
    demo.record(name, learning_rate=learning_rates[name], loss_fall_over_last_epochs=round(still_falling[name], 2),
                grid_share_of_most_common_digit=round(nearest[name][1], 3))
    manifolds[_f("{name}: {weights:,} weights, test loss {loss:.1f}", name=name, weights=weights(vae),
                 loss=elbo[name])] = to_numpy(vae.decode(demo.to_device(grid)))
steps = schedule.epochs * -(-len(x_train) // BATCH)  # epochs * ceil(images / batch)
names = dataset.class_names or [str(label) for label in range(dataset.n_classes)]


def epochs_words(n: int) -> str:
    return _f("1 epoch") if n == 1 else _f("{n} epochs", n=n)


(dense_mean, dense_std), (conv_mean, conv_std) = spread[dense_vae], spread[conv_vae]
demo.save(plots.side_by_side_mosaics(manifolds, shape, columns=20, title=_f("Two 2-d latent spaces, decoded"),
                                     axis_labels=("z1", "z2"), ticks=(quantiles, list(reversed(quantiles)))),
          "25_dense_vs_conv_vae_manifold.png",
          _f("The same 20 x 20 grid of codes (5 % to 95 % quantiles of N(0, 1)) decoded by the dense VAE (left, "
             "{dense_weights:,} weights, Adam lr {dense_lr:g}, test loss {dense_loss:.1f} nats per image) and by the "
             "convolutional VAE (right, {conv_weights:,} weights, lr {conv_lr:g}, test loss {conv_loss:.1f}); "
             "{schedule}, KL warm-up over {warmup}. The convolutional VAE is short of steps: {steps:,} are "
             "{share:.0%} of the keras-io example's 16,410, and its test loss still fell by {conv_fall:.1f} over the "
             "last {last} (the dense VAE's by {dense_fall:.1f}). The KL term has not yet pulled its codes onto "
             "N(0, I): the test digits' mean codes are centred at ({conv_mean_1:.2f}, {conv_mean_2:.2f}) with "
             "spreads ({conv_std_1:.2f}, {conv_std_2:.2f}) (dense VAE: ({dense_mean_1:.2f}, {dense_mean_2:.2f}) and "
             "({dense_std_1:.2f}, {dense_std_2:.2f}); N(0, I): (0, 0) and (1, 1)), so part of the grid lies where no "
             "test digit's code is, and there the decoder draws what it draws for the nearest codes: the digit whose "
             "test codes lie nearest to most of the grid is the {conv_digit} ({conv_digit_share:.0%} of the grid; "
             "dense VAE: the {dense_digit}, {dense_digit_share:.0%}).",
             dense_weights=weights(vaes[dense_vae]), dense_lr=learning_rates[dense_vae], dense_loss=elbo[dense_vae],
             conv_weights=weights(vaes[conv_vae]), conv_lr=learning_rates[conv_vae], conv_loss=elbo[conv_vae],
             schedule=schedule.text, warmup=epochs_words(warmup), steps=steps, share=steps / 16_410,
             conv_fall=still_falling[conv_vae], last=epochs_words(last), dense_fall=still_falling[dense_vae],
             conv_mean_1=conv_mean[0], conv_mean_2=conv_mean[1], conv_std_1=conv_std[0], conv_std_2=conv_std[1],
             dense_mean_1=dense_mean[0], dense_mean_2=dense_mean[1], dense_std_1=dense_std[0],
             dense_std_2=dense_std[1], conv_digit=names[nearest[conv_vae][0]], conv_digit_share=nearest[conv_vae][1],
             dense_digit=names[nearest[dense_vae][0]], dense_digit_share=nearest[dense_vae][1]))

# %%
demo.finish()

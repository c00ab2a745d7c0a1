# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Latent representations: a classifier's and an autoencoder's
#
# The output of any hidden layer of a network is a *latent representation* of its input,
# $\mathbf z = f_\theta(x) \in \mathbb{R}^m$, and what it holds depends on the loss the network was trained on.
#
# - A **classifier** trained with cross-entropy only needs to tell the classes apart, so its encoder learns to keep
#   what separates them and to drop the rest: the classes should form tight, distinct groups.
# - An **autoencoder** trained to rebuild its input has to keep everything needed to redraw it, the slant, the
#   thickness, the style, with no labels at all.
#
# Both get the same encoder shape, 784-128-64-16 with a linear 16-d output, and train on the same digits (the
# second notebook's 10,000 training and 1,000 test images when the data set has that many). t-SNE then draws the
# same 1,000 test digits in each latent space.

# %%
from scratchae import builders, plots
from scratchae.backend import to_numpy
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.losses import MSELoss, SoftmaxCrossEntropyLoss
from scratchae.engine.adam import FastAdam
from scratchae.training import fit

demo = Demo.start("latent_spaces")

# %%
dataset = demo.load_data(train_size=10_000, test_size=1_000)
x_train, y_train, x_test, y_test = dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test

# %% [markdown]
# ## The classifier
#
# The encoder, then a linear head that gives one score (logit) per class; softmax cross-entropy on the labels,
# which `fit` gets as `y`. Adam with learning rate 1e-3, batches of 64, as many gradient steps as the notebook's
# 20 epochs on 10,000 digits.

# %%
classifier = builders.mlp_classifier(latent_dim=16, n_classes=dataset.n_classes, input_dim=dataset.n_features,
                                   seed=demo.seed, fast=True).to(demo.device)
print(classifier.summary())
schedule = demo.schedule(notebook_epochs=20, notebook_samples=10_000, batch_size=64)
with demo.timed(_f("train classifier")):
    classifier_history = fit(classifier, SoftmaxCrossEntropyLoss(), FastAdam(classifier.parameters(), lr=1e-3), x_train,
                             y_train, epochs=schedule.epochs, batch_size=64, validation=(x_test, y_test),
                             seed=demo.seed, progress=False, on_epoch_end=demo.print_epoch)
demo.record(_f("classifier (latent 16)"), classifier_history, batch_size=64)
accuracy = classifier_history["val_accuracy"][-1]
print(f"test accuracy {accuracy:.1%}")

# %% [markdown]
# ## The autoencoder
#
# The second notebook's autoencoder, 784-128-64-16 (linear) - 64-128-784 with a sigmoid output: mean squared
# error, Adam with learning rate 1e-3 and weight decay 1e-8, batches of 64. It never sees a label.

# %%
autoencoder = builders.linear_latent_autoencoder(latent_dim=16, input_dim=dataset.n_features,
                                               seed=demo.seed, fast=True).to(demo.device)
with demo.timed(_f("train autoencoder")):
    autoencoder_history = fit(autoencoder, MSELoss(), FastAdam(autoencoder.parameters(), lr=1e-3, weight_decay=1e-8),
                              x_train, epochs=schedule.epochs, batch_size=64, validation=x_test, seed=demo.seed,
                              progress=False, on_epoch_end=demo.print_epoch)
demo.record(_f("linear-latent AE (latent 16)"), autoencoder_history, batch_size=64)

# %% [markdown]
# ## The two latent spaces
#
# The 16-d codes of the same test digits from both encoders, each drawn in 2-D by t-SNE. The classifier's
# clusters are tight and far apart: it was paid to separate the digits. The autoencoder's are looser and touch
# where digits look alike (such as 4, 7 and 9, or 3, 5 and 8), because its codes also describe how each digit is
# written.

# %%
n = min(1000, len(x_test))
shown = demo.to_device(x_test[:n])
panels = {_f("Classifier's encoder (cross-entropy, test accuracy {accuracy:.1%})", accuracy=accuracy):
          demo.tsne(to_numpy(classifier.encode(shown))),
          _f("Autoencoder's encoder (reconstruction, no labels)"): demo.tsne(to_numpy(autoencoder.encode(shown)))}
demo.save(plots.side_by_side_scatter(panels, y_test[:n], class_names=dataset.class_names,
                                     title=_f("The same {n:,} test digits in two 16-d latent spaces (t-SNE)", n=n)),
          "09_classifier_vs_autoencoder.png",
          _f("t-SNE of the 16-d latent codes of the same {n:,} test digits: the classifier's encoder (left, trained "
             "with cross-entropy) and the autoencoder's (right, trained without labels), with a legend of the digits "
             "(batch 64, {schedule}).", n=n, schedule=schedule.text))

# %%
demo.finish()

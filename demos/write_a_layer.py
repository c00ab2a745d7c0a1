# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Your turn: write a layer
#
# Every layer of the library is a small class with a `forward` and a `backward`. This chapter writes a new one as
# you would: LeakyReLU, which lets a little of the negative numbers through, y = x for x > 0 and y = 0.1 x
# otherwise, so that a unit is never dead. We check its backward pass with one call, watch two typical mistakes get
# caught and named, fix them, and train an autoencoder that uses it.

# %%
from scratchae import models, plots
from scratchae.backend import get_namespace
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.gradcheck import check_layer
from scratchae.layers import Dense, Layer, ReLU, Sequential, Sigmoid
from scratchae.losses import MSELoss
from scratchae.optim import Adam
from scratchae.training import fit

demo = Demo.start("write_a_layer")

# %% [markdown]
# ## The forward pass
#
# `forward` keeps what `backward` will need: here the input x, to know which side of 0 each number was on.
# `get_namespace(x)` is NumPy for NumPy arrays and CuPy for GPU arrays, so the same lines run on both.


# %%
class LeakyReLU(Layer):
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """x: (N, D) -> y: (N, D)."""
        self.x = x  # (N, D), kept for backward
        return get_namespace(x).where(x > 0, x, self.slope * x)  # (N, D)

    def backward(self, dy, input_grad=True):
        """dy = dL/dy: (N, D) -> dL/dx: (N, D)."""
        return dy * (self.x > 0)  # (N, D)  a first try: ReLU's derivative


# %% [markdown]
# ## A first try, checked
#
# The backward above is ReLU's: it forgets that a negative x still passes 0.1 of its gradient. `check_layer` takes
# the layer as it is (float32 is fine: it checks a float64 copy), feeds it a random input kept off the kink at 0,
# sends back a random upstream gradient dy, and compares `backward` with the centred difference
# (f(x + h) - f(x - h)) / 2h of f = sum(y * dy), number by number. The table names the gradient that is wrong,
# where it is worst, and both values there.

# %%
first_try = check_layer(LeakyReLU(), input_shape=(4, 10))
print(first_try)

# %% [markdown]
# ## A second try: right numbers, a broken promise
#
# Scaling the negative entries by the slope fixes the numbers. Doing it *in place*, on `dy` itself, breaks the
# layer protocol: the gradient a layer receives may still be needed by whoever sent it (a layer whose output feeds
# two others adds two gradients). The check compares `dy` with a copy taken before the call and names the mistake.


# %%
class SecondTry(LeakyReLU):
    def backward(self, dy, input_grad=True):
        dy[self.x <= 0] *= self.slope  # changes the caller's array
        return dy


second_try = check_layer(SecondTry(), input_shape=(4, 10))
print(second_try)

# %% [markdown]
# ## Right
#
# A new array: dL/dx = dy where x > 0, slope * dy elsewhere. The same two lines are `scratchae gradcheck --layer
# my_layers.py:LeakyReLU(0.1)` from a terminal, for a layer kept in a file.


# %%
def leaky_relu_backward(self, dy, input_grad=True):
    """dy = dL/dy: (N, D) -> dL/dx: (N, D)."""
    return get_namespace(dy).where(self.x > 0, dy, self.slope * dy)  # (N, D)


LeakyReLU.backward = leaky_relu_backward
report = check_layer(LeakyReLU(), input_shape=(4, 10))
print(report)
assert report.passed and not first_try.passed and not second_try.passed
demo.record("check_layer", first_try_passed=first_try.passed, second_try_passed=second_try.passed,
            fixed_passed=report.passed, fixed_relative_error=max(check.error for check in report.checks))

# %% [markdown]
# ## Train with it
#
# The first notebook's autoencoder (D-128-32-128-D, where D = 784 is the number of pixels of a 28 x 28 digit;
# Adam, mean squared error, batches of 256) with LeakyReLU in place of ReLU, beside the same network with ReLU,
# from the same initial weights and batches. The two runs' losses differ by about 1 %: on one plot the curves lie
# on top of each other, so the figure draws them on a logarithmic scale and, below, the difference between them.

# %%
dataset = demo.load_data()
D = dataset.n_features


def autoencoder(activation):
    encoder = Sequential([Dense(D, 128, rng=demo.seed), activation(), Dense(128, 32, rng=demo.seed + 1),
                          activation()])
    decoder = Sequential([Dense(32, 128, rng=demo.seed + 2), activation(), Dense(128, D, rng=demo.seed + 3),
                          Sigmoid()])
    return models.Autoencoder(encoder, decoder).to(demo.device)


schedule = demo.schedule(notebook_epochs=20, notebook_samples=60_000, batch_size=256)
histories = {}
for name, activation in ((_f("LeakyReLU (yours)"), LeakyReLU), (_f("ReLU (the library's)"), ReLU)):
    model = autoencoder(activation)
    with demo.timed(_f("train {model}", model=name)):
        histories[name] = fit(model, MSELoss(), Adam(model.parameters(), lr=1e-3), dataset.x_train,
                              epochs=schedule.epochs, batch_size=256, validation=dataset.x_test, seed=demo.seed,
                              progress=False, on_epoch_end=demo.print_epoch)
    demo.record(name, histories[name], batch_size=256)

# %%
leaky_name, relu_name = histories
leaky, relu = (histories[name].final()["val_loss"] for name in histories)
demo.save(plots.compare_loss_curves(histories, title=_f("An autoencoder with your LeakyReLU"), log=True,
                                    difference_to=relu_name),
          "26_write_a_layer.png",
          _f("Top: training (solid) and validation (dashed) loss, on a logarithmic scale, of the {D}-128-32-128-{D} "
             "autoencoder (D = {D} pixels) with the LeakyReLU written in this chapter and with ReLU, same weights and "
             "batches ({schedule}). Bottom: LeakyReLU's loss minus ReLU's, epoch by epoch; final validation MSE "
             "{leaky:.4f} with LeakyReLU, {relu:.4f} with ReLU, a difference of {difference:+.4f} "
             "({percent:+.1f} %).", D=D, schedule=schedule.text, leaky=leaky, relu=relu, difference=leaky - relu,
             percent=100 * (leaky - relu) / relu))

# %%
demo.finish()

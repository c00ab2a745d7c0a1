# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # The whole engine on one screen
#
# Everything the later chapters do is one step, repeated: run the network forward, measure the loss, send its
# gradient backward through every layer, and move every weight a little downhill. This chapter takes that step by
# hand on one batch of real digits, printing the shape of every array on the way, then checks one gradient against
# a numerical one. The code it calls is short: `Dense`, `ReLU` and `Sigmoid` in `scratchae/layers.py`, `MSELoss`
# in `losses.py`, `Adam` in `optim.py`.

# %%
import numpy

from scratchae import Adam, Dense, MSELoss, ReLU, Sequential, Sigmoid, models, plots
from scratchae.backend import to_numpy
from scratchae.demos._common import Demo
from scratchae.i18n import format_text as _f
from scratchae.numerical import rel_error
from scratchae.training import train_step

demo = Demo.start("one_step")
dataset = demo.load_data()
x = demo.to_device(dataset.x_train[:64])  # one batch of 64 digits, each a row of D pixels in [0, 1]
D = dataset.n_features  # 784 for the 28 x 28 digits of MNIST

# %% [markdown]
# ## The network
#
# The next chapter's autoencoder, D-128-32-128-D, where D = 784 is the number of pixels of a 28 x 28 digit, built
# from its layers: an encoder that squeezes each digit into 32 numbers and a decoder that rebuilds it, with a sigmoid
# at the end so that pixels stay in [0, 1].

# %%
encoder = Sequential([Dense(D, 128, rng=0), ReLU(), Dense(128, 32, rng=1), ReLU()])
decoder = Sequential([Dense(32, 128, rng=2), ReLU(), Dense(128, D, rng=3), Sigmoid()])
model = models.Autoencoder(encoder, decoder).to(demo.device)
layers = encoder.layers + decoder.layers
loss = MSELoss()
optimizer = Adam(model.parameters(), lr=1e-3)

# %% [markdown]
# ## Forward: each layer keeps what its backward pass will need

# %%
out = x
for layer in layers:
    out = layer.forward(out)
    print(f"forward   {type(layer).__name__:<8} -> output {tuple(out.shape)}")
before = float(loss.forward(out, x))  # the target is the input itself
print(f"loss (mean squared error) {before:.5f}")

# %% [markdown]
# ## Backward: the chain rule, last layer first
#
# The loss gives dL/dx̂; each layer turns the gradient of its output into that of its input and sets the
# gradients of its own weights on the way.

# %%
grad = loss.backward()
print(f"loss      -> dL/dx_hat {tuple(grad.shape)}")
for layer in reversed(layers):
    grad = layer.backward(grad)
    weights = "".join(f", dL/d{p.name} {tuple(p.grad.shape)}" for p in layer.parameters())
    print(f"backward  {type(layer).__name__:<8} -> dL/dinput {tuple(grad.shape)}{weights}")

# %% [markdown]
# ## One step downhill, then the same four lines as `train_step`
#
# Adam moves every weight against its gradient. `training.train_step` is the four lines above in one call; taken
# again and again on the same batch, the loss falls.

# %%
optimizer.step()
losses = [before] + [train_step(model, loss, optimizer, x) for _ in range(150)]
print(f"loss before the first step {before:.5f}, after one {losses[1]:.5f}, after 150 {losses[-1]:.5f}")
demo.record(_f("one batch, 150 steps"), loss_before=before, loss_after_one_step=losses[1], loss_after_150=losses[-1])
demo.save(plots.loss_curves({"loss": losses}, title=_f("One batch of 64 digits, step after step"), xlabel=_f("Step")),
          "00_one_step.png",
          _f("The mean squared error on one batch of 64 digits, from {before:.4f} before the first Adam step to "
             "{after:.4f} after 150: each step is forward, loss, backward, Adam's update.", before=before,
             after=losses[-1]))

# %% [markdown]
# ## Is the backward pass right? Ask the definition of a derivative
#
# For a weight w, dL/dw ≈ (L(w + h) − L(w − h)) / 2h. We check the first Dense layer in float64 (in float32 the
# rounding error of L, divided by h, would swamp the estimate), with a random upstream gradient dy, so that the
# scalar checked is L = sum(output * dy).

# %%
rng = numpy.random.default_rng(0)
check = Dense(D, 128, rng=0, dtype=numpy.float64)
digits = to_numpy(x[:4]).astype(numpy.float64)  # (4, D)
dy = rng.standard_normal((4, 128))  # (4, 128)
check.forward(digits)
check.backward(dy)  # sets check.W.grad, the analytic gradient (D, 128)
h, W = 1e-5, check.W.data
lit = numpy.flatnonzero(digits.sum(axis=0))  # pixels that are not black in these digits: their weights matter
for i, j in zip(rng.choice(lit, 5), rng.integers(0, 128, 5)):
    W[i, j] += h
    plus = numpy.sum(check.forward(digits) * dy)
    W[i, j] -= 2 * h
    minus = numpy.sum(check.forward(digits) * dy)
    W[i, j] += h
    numeric = (plus - minus) / (2 * h)
    print(f"dL/dW[{i:3d}, {j:3d}]  backward {check.W.grad[i, j]: .8f}  numerical {numeric: .8f}  "
          f"relative error {rel_error(check.W.grad[i, j], numeric):.1e}")

# %%
demo.finish()

"""Reference quality on the full Fashion-MNIST, behind the ``slow`` marker (``python -m pytest -m slow``).

The first notebook's setting: the simple autoencoder, Adam lr 1e-3, 20 epochs, batch 256, validated on the 10,000
test images. Keras reaches a validation MSE of 0.0113 +- 0.0002 there (PyTorch 0.0121 +- 0.0005, three seeds each);
scratchae must do as well as Keras.
"""

from __future__ import annotations

import pytest

from scratchae import builders, data
from scratchae.losses import MSELoss
from scratchae.optim import Adam
from scratchae.training import fit

KERAS_VALIDATION_MSE = 0.0113
KERAS_SPREAD = 0.0002


@pytest.mark.slow
def test_simple_autoencoder_reaches_keras_quality_on_fashion_mnist():
    try:
        fashion = data.load("fashion-mnist", download=False)
    except data.DataNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not on this machine: {error}")
    final_losses = []
    for seed in (0, 1, 2):
        model = builders.simple_autoencoder(32, seed=seed)
        history = fit(model, MSELoss(), Adam(model.parameters(), lr=1e-3), fashion.x_train, epochs=20,
                      batch_size=256, validation=fashion.x_test, seed=seed, progress=False)
        final_losses.append(history["val_loss"][-1])
    assert sum(final_losses) / 3 <= KERAS_VALIDATION_MSE + KERAS_SPREAD, final_losses


@pytest.mark.slow
def test_vae_reaches_the_elbo_of_the_same_vae_in_pytorch_on_fashion_mnist():
    """pytorch/examples' VAE (784-400-(20, 20)-400-784, BCE), 10 epochs, batch 128, Adam lr 1e-3, from the same
    initial weights in both; the final per-sample test loss (the negative ELBO, eps sampled) within 2 %."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the comparison is optional")
    import numpy

    from scratchae.losses import VAELoss
    from scratchae.torch_twin import torch_vae_loss, torch_vae_twin
    from scratchae.training import evaluate

    try:
        fashion = data.load("fashion-mnist", download=False)
    except data.DataNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not on this machine: {error}")
    vae = builders.variational_autoencoder(seed=0)
    net = torch_vae_twin(vae)  # built before training: the same start
    fit(vae, VAELoss(), Adam(vae.parameters(), lr=1e-3), fashion.x_train, epochs=10, batch_size=128, seed=0,
        progress=False)
    ours = evaluate(vae, VAELoss(), fashion.x_test)["loss"]

    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x_train, x_test = torch.from_numpy(fashion.x_train), torch.from_numpy(fashion.x_test)
    for epoch in range(10):
        order = torch.from_numpy(numpy.random.default_rng((0, epoch)).permutation(len(x_train)))
        for batch in x_train[order].split(128):
            optimizer.zero_grad()
            torch_vae_loss(net(batch), batch).backward()
            optimizer.step()
    with torch.no_grad():
        theirs = sum(torch_vae_loss(net(batch), batch).item() * len(batch) for batch in x_test.split(1024))
    theirs /= len(x_test)
    print(f"negative ELBO per test image: scratchae {ours:.2f}, PyTorch {theirs:.2f}")
    assert abs(ours - theirs) / theirs <= 0.02, (ours, theirs)


def _train_torch_twin(torch, net, loss_of, x_train, epochs: int, batch_size: int, seed: int) -> None:
    """Train a twin as scratchae's fit trains its model: Adam lr 1e-3, the same batches in the same order."""
    import numpy

    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for epoch in range(epochs):
        order = torch.from_numpy(numpy.random.default_rng((seed, epoch)).permutation(len(x_train)))
        for batch in x_train[order].split(batch_size):
            optimizer.zero_grad()
            loss_of(net, batch).backward()
            optimizer.step()


#: The batch of the test-loss passes, the same in both, so that a VAE's test batches draw the same eps.
TEST_BATCH = 1000


def _torch_test_loss(torch, net, loss_of, x_test) -> float:
    with torch.no_grad():
        return sum(loss_of(net, batch).item() * len(batch) for batch in x_test.split(TEST_BATCH)) / len(x_test)


def _scratchae_eps(torch, vae, stream: tuple):
    """A function that returns, call after call, the eps that ``vae`` draws for its 1st, 2nd, ... batch of a stream:
    training batches (``stream=()``, seeds ``(seed, k)``) or evaluation batches (``(1,)``, seeds ``(seed, k, 1)``)."""
    import itertools

    import numpy

    from scratchae.backend import random_generator, standard_normal_like

    batches = itertools.count()

    def draw(n: int):
        like = numpy.empty((n, vae.latent_dim), dtype=numpy.float32)
        rng = random_generator((vae.seed, next(batches), *stream), like=like)
        return torch.from_numpy(standard_normal_like(like, rng))

    return draw


#: Epochs of the convolutional comparisons (the blog trains 50, keras-io 30): 1,407 steps, time enough for two runs
#: in float32 to drift apart if their arithmetic differed, and short enough for a slow test.
CONV_EPOCHS = 3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conv", "conv-vae"])
def test_conv_models_reach_the_test_loss_of_their_pytorch_twins_on_fashion_mnist(name):
    """The Keras blog's conv autoencoder (BCE) and the keras-io conv VAE (BCE + KL, latent 2), 3 epochs, batch 128,
    Adam lr 1e-3, from the same initial weights in both; the final test loss within 2 %."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the comparison is optional")

    from scratchae.losses import BCELoss, VAELoss
    from scratchae.torch_twin import torch_twin, torch_vae_loss, torch_vae_twin
    from scratchae.training import evaluate

    try:
        fashion = data.load("fashion-mnist", download=False)
    except data.DataNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not on this machine: {error}")
    model = builders.BUILDERS[name](seed=0)
    if name == "conv-vae":
        # A VAE with a 2-d code follows its noise closely over 1,407 steps: the twin draws the very eps that
        # scratchae draws for each batch (training, then evaluation), so that only the arithmetic differs.
        net, loss = torch_vae_twin(model), VAELoss("bce")  # built before training: the same start
        training_eps, test_eps = _scratchae_eps(torch, model, ()), _scratchae_eps(torch, model, (1,))

        def loss_of(net, batch):
            return torch_vae_loss(net(batch, eps=training_eps(len(batch))), batch)

        def test_loss_of(net, batch):
            return torch_vae_loss(net(batch, eps=test_eps(len(batch))), batch)
    else:
        net, loss = torch_twin(model), BCELoss()

        def loss_of(net, batch):
            return torch.nn.functional.binary_cross_entropy(net(batch), batch)

        test_loss_of = loss_of
    fit(model, loss, Adam(model.parameters(), lr=1e-3), fashion.x_train, epochs=CONV_EPOCHS, batch_size=128, seed=0,
        progress=False)
    ours = evaluate(model, loss, fashion.x_test, batch_size=TEST_BATCH)["loss"]
    x_train, x_test = torch.from_numpy(fashion.x_train), torch.from_numpy(fashion.x_test)
    _train_torch_twin(torch, net, loss_of, x_train, CONV_EPOCHS, 128, seed=0)
    theirs = _torch_test_loss(torch, net, test_loss_of, x_test)
    print(f"{name} test loss: scratchae {ours:.4f}, PyTorch {theirs:.4f}")
    assert abs(ours - theirs) / theirs <= 0.02, (ours, theirs)

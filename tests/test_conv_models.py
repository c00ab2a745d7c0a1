"""The convolutional models: their architectures, whole-model gradients in float64, checkpoints (and the refusal of
crafted image layers), and the command."""

from __future__ import annotations

import json

import numpy
import pytest

from scratchae import checkpoint, gradcheck_suite
from scratchae.checkpoint import CheckpointError, load, save
from scratchae.cli import main
from scratchae.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape, UpSampling2D
from scratchae.losses import BCELoss, VAELoss
from scratchae.models import Autoencoder, DenoisingAutoencoder, VariationalAutoencoder
from scratchae.builders import (BUILDERS, IMAGE_BUILDERS, conv_autoencoder, conv_denoising_autoencoder, conv_variational_autoencoder)
from scratchae.optim import Adam
from scratchae.training import fit

F64 = numpy.float64


def layer_kinds(network) -> list[str]:
    return [type(layer).__name__ for layer in network.layers]


def images(n, side=28, seed=0):
    return numpy.random.default_rng(seed).uniform(0.0, 1.0, (n, side * side)).astype(numpy.float32)


# ---------------------------------------------------------------------------------------------------------------
# Architectures


def test_conv_autoencoder_is_the_keras_blogs_network():
    model = conv_autoencoder()
    assert isinstance(model, Autoencoder)
    assert layer_kinds(model.encoder) == ["Reshape"] + ["Conv2D", "MaxPool2D", "ReLU"] * 3
    assert layer_kinds(model.decoder) == ["Conv2D", "ReLU", "UpSampling2D"] * 3 + ["Conv2D", "Sigmoid", "Flatten"]
    convs = [layer for part in model.parts().values() for layer in part.layers if isinstance(layer, Conv2D)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 16, (3, 3), "same"), (16, 8, (3, 3), "same"), (8, 8, (3, 3), "same"), (8, 8, (3, 3), "same"),
        (8, 8, (3, 3), "same"), (8, 16, (3, 3), "valid"), (16, 1, (3, 3), "same")]
    assert all(layer.padding == "same" for layer in model.encoder.layers if isinstance(layer, MaxPool2D))
    assert model.part_shapes() == {"encoder": (8, 4, 4), "decoder": (784,)}
    assert sum(parameter.size for parameter in model.parameters()) == 4385


def test_conv_denoising_autoencoder_is_the_blogs_denoiser():
    model = conv_denoising_autoencoder()
    assert isinstance(model, DenoisingAutoencoder)
    assert model.noise_factor == 0.5 and model.clip == (0.0, 1.0)
    assert model.part_shapes() == {"encoder": (32, 7, 7), "decoder": (784,)}
    convs = [layer for part in model.parts().values() for layer in part.layers if isinstance(layer, Conv2D)]
    assert [c.out_channels for c in convs] == [32, 32, 32, 32, 1]
    assert sum(parameter.size for parameter in model.parameters()) == 28353


def test_conv_vae_is_the_keras_io_network():
    vae = conv_variational_autoencoder()
    assert isinstance(vae, VariationalAutoencoder) and vae.latent_dim == 2
    assert layer_kinds(vae.encoder) == ["Reshape", "Conv2D", "ReLU", "Conv2D", "ReLU", "Flatten", "Dense", "ReLU"]
    strided = [layer for layer in vae.encoder.layers if isinstance(layer, Conv2D)]
    assert [(c.out_channels, c.stride, c.padding) for c in strided] == [(32, 2, "same"), (64, 2, "same")]
    transposed = [layer for layer in vae.decoder.layers if isinstance(layer, ConvTranspose2D)]
    assert [(c.out_channels, c.stride, c.padding, c.output_padding) for c in transposed] == [
        (64, 2, 1, 1), (32, 2, 1, 1), (1, 1, 1, 0)]
    assert vae.part_shapes() == {"encoder": (16,), "mu_head": (2,), "logvar_head": (2,), "decoder": (784,)}
    # keras-io's summaries: encoder 69,076 parameters (heads included), decoder 65,089
    assert sum(parameter.size for parameter in vae.parameters()) == 69_076 + 65_089


@pytest.mark.parametrize("name", IMAGE_BUILDERS)
def test_conv_models_take_and_give_flat_images(name):
    model = BUILDERS[name]()
    out = model.forward(images(3))
    x_hat = out[0] if isinstance(out, tuple) else out
    assert x_hat.shape == (3, 784) and x_hat.dtype == numpy.float32
    assert 0.0 < float(x_hat.min()) and float(x_hat.max()) < 1.0
    assert model.input_features == model.output_features == 784


@pytest.mark.parametrize("name", IMAGE_BUILDERS)
def test_conv_models_fit_the_8x8_digits(name):
    model = BUILDERS[name](image_shape=(1, 8, 8))
    out = model.forward(images(2, side=8))
    assert (out[0] if isinstance(out, tuple) else out).shape == (2, 64)


def test_odd_images_keep_their_size_through_the_conv_vae():
    vae = conv_variational_autoencoder(image_shape=(1, 10, 10), channels=(2, 3), hidden_dim=4)
    assert vae.part_shapes()["decoder"] == (100,)
    assert [layer.output_padding for layer in vae.decoder.layers if isinstance(layer, ConvTranspose2D)] == [0, 1, 0]


@pytest.mark.parametrize("builder, options, phrase", [
    (conv_autoencoder, {"image_shape": (1, 30, 30)}, "cannot give back 30 x 30"),
    (conv_denoising_autoencoder, {"image_shape": (1, 10, 10)}, "divisible by 4"),
    (conv_variational_autoencoder, {"image_shape": (1, 10, 12)}, "both even or both odd"),
    (conv_autoencoder, {"image_shape": (28, 28)}, "(channels, height, width)"),
    (conv_autoencoder, {"channels": (16, 8)}, "three numbers"),
    (conv_denoising_autoencoder, {"channels": 0}, "channels must be a whole number >= 1"),
])
def test_images_a_network_cannot_give_back_are_refused_by_name(builder, options, phrase):
    with pytest.raises(ValueError) as error:
        builder(**options)
    assert phrase in str(error.value)


def test_summary_shows_image_shapes():
    text = conv_autoencoder().summary()
    for row in ("encoder.1 Conv2D        (None, 16, 28, 28)           160",
                "encoder.8 MaxPool2D     (None, 8, 4, 4)",
                "decoder.6 Conv2D        (None, 16, 14, 14)         1,168",
                "decoder.11 Flatten      (None, 784)"):
        assert row in text
    assert "Total params: 4,385" in text


# ---------------------------------------------------------------------------------------------------------------
# Gradients


def test_whole_conv_models_pass_their_gradient_checks():
    cases = gradcheck_suite._conv_model_cases(numpy.random.default_rng(7))
    assert len(cases) == 6  # three models, each on the lesson's floor and on the engine's
    assert [case.what.split(":")[0] for case in cases] == ["lesson", "engine"] * 3
    for case in cases:
        assert case.passed, gradcheck_suite.format_report([case])
        names = {check.name for check in case.checks}
        assert names == {name for name, _ in _model_of(case.what).named_parameters()}


def _model_of(what: str):
    """A model of the same architecture as the case ``what`` describes (for the names of its parameters)."""
    what = what.split(": ", 1)[1]  # after the floor
    if what.startswith("conv autoencoder"):
        return conv_autoencoder(image_shape=(1, 12, 12), channels=(2, 3, 2))
    if what.startswith("conv denoising"):
        return conv_denoising_autoencoder(image_shape=(1, 8, 8), channels=2)
    return conv_variational_autoencoder(image_shape=(1, 6, 6), channels=(2, 3), hidden_dim=4)


def test_the_model_check_sees_a_wrong_pooling_gradient(monkeypatch):
    """The whole-model check is not blind: with the pooling's backward sending each window's gradient to every
    input of the window, the conv autoencoder's check fails."""
    from scratchae import conv

    def spread(self, dy, input_grad=True):
        return UpSampling2D(self.pool_size).forward(dy)[:, :, :self.cache_shape[2], :self.cache_shape[3]]

    original_forward = conv.MaxPool2D.forward

    def forward(self, x):
        self.cache_shape = x.shape
        return original_forward(self, x)

    from scratchae.engine.conv import FastMaxPool2D

    for pooling in (conv.MaxPool2D, FastMaxPool2D):  # both floors
        monkeypatch.setattr(pooling, "forward", forward)
        monkeypatch.setattr(pooling, "backward", spread)
    cases = gradcheck_suite._conv_model_cases(numpy.random.default_rng(7))
    pooled = [case for case in cases if "VAE" not in case.what]  # the VAE has no pooling
    assert len(pooled) == 4 and not any(case.passed for case in pooled)


def test_a_conv_model_gives_the_same_numbers_in_float64_and_float32():
    x = images(4)
    model64 = conv_autoencoder(dtype=F64)
    model32 = conv_autoencoder()
    numpy.testing.assert_allclose(model32.forward(x), model64.forward(x.astype(F64)), atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


@pytest.mark.parametrize("name", IMAGE_BUILDERS)
def test_a_trained_conv_model_comes_back_exactly(name, tmp_path):
    model = BUILDERS[name](image_shape=(1, 8, 8), seed=1)
    loss = VAELoss("bce") if name == "conv-vae" else BCELoss()
    optimizer = Adam(model.parameters())
    history = fit(model, loss, optimizer, images(64, side=8), epochs=1, batch_size=32, progress=False)
    restored = load(save(tmp_path / "model.npz", model, optimizer, history))
    assert restored.model.config() == model.config()
    for (name_a, a), (name_b, b) in zip(model.named_parameters(), restored.model.named_parameters(), strict=True):
        assert name_a == name_b and numpy.array_equal(a.data, b.data)
    x = images(5, side=8, seed=2)
    if isinstance(model, VariationalAutoencoder):
        numpy.testing.assert_array_equal(restored.model.reconstruct(x), model.reconstruct(x))
    else:
        numpy.testing.assert_array_equal(restored.model.forward(x), model.forward(x))
    assert restored.optimizer.steps == optimizer.steps


@pytest.mark.parametrize("layer", [Conv2D(2, 3, (3, 5), stride=2, padding="valid"), ConvTranspose2D(2, 3, 3),
                                   MaxPool2D(3, stride=2, padding="same"), UpSampling2D(3), Flatten(),
                                   Reshape((1, 4, 4))], ids=lambda layer: type(layer).__name__)
def test_the_options_an_image_layer_config_may_hold_are_those_it_saves(layer):
    assert sorted(layer.config()) == sorted(checkpoint.LAYER_OPTIONS[type(layer).__name__])
    rebuilt = checkpoint.layer_from_config(json.loads(json.dumps({"type": type(layer).__name__, **layer.config()})))
    assert rebuilt.config() == layer.config()


@pytest.fixture(scope="module")
def conv_meta(tmp_path_factory) -> dict:
    path = save(tmp_path_factory.mktemp("conv") / "conv.npz", conv_autoencoder(seed=4))
    return json.loads(str(numpy.load(path)["meta"]))


def _with(part, index, **options):
    return lambda architecture: architecture[part][index].update(options)


def _insert(part, index, layer):
    return lambda architecture: architecture[part].insert(index, layer)


CRAFTED = [
    ("channels that do not chain", _with("encoder", 4, in_channels=9), "takes images of 9 channels"),
    ("a huge channel count", _with("encoder", 1, out_channels=10**9), "at most 65,536"),
    ("a kernel of zero", _with("encoder", 1, kernel_size=0), "kernel_size must be a whole number >= 1"),
    ("a kernel of three sizes", _with("encoder", 1, kernel_size=[3, 3, 3]), "kernel_size must be a whole number"),
    ("a kernel larger than the image", _with("encoder", 7, kernel_size=9, padding="valid"), "needs images of at least"),
    ("an unknown padding", _with("encoder", 1, padding="full"), "padding"),
    ("a stride that is a word", _with("encoder", 1, stride="two"), "stride must be a whole number"),
    ("a pooling padding that is a number", _with("encoder", 2, padding=1), "padding must be 'valid' or 'same'"),
    ("an upsampling of a million", _with("decoder", 2, factor=10**6), "at most 1,024"),
    ("samples beyond the bound", lambda a: a["decoder"].__setitem__(2, {"type": "UpSampling2D", "factor": 1000}),
     "more than 16,777,216 numbers"),
    ("a Reshape of the wrong size", _insert("decoder", 0, {"type": "Reshape", "shape": [8, 4, 5]}), "cannot reshape"),
    ("a first Reshape of another size", _with("encoder", 0, shape=[1, 27, 28]), "the model takes 756 features"),
    ("a Reshape of four axes", _with("encoder", 0, shape=[1, 1, 28, 28]), "4 sizes"),
    ("a model that begins with a convolution", lambda a: a["encoder"].pop(0), "begins with a Conv2D"),
    ("a Dense layer on images", _insert("decoder", 0, {"type": "Dense", "in_features": 128, "out_features": 128}),
     "takes 128 features, but the layer before it gives samples of shape (8, 4, 4)"),
    ("a decoder that gives images", lambda a: a["decoder"].pop(), "gives samples of shape (1, 28, 28) but the model"),
    ("a decoder of the wrong size", _with("decoder", 6, padding="same"), "gives 1024 features but the model takes 784"),
    ("an output_padding not below the stride",
     _insert("decoder", 0, {"type": "ConvTranspose2D", "in_channels": 8, "out_channels": 8, "kernel_size": 3,
                            "stride": 1, "padding": 1, "output_padding": 1}), "output_padding must be smaller"),
    ("an image layer option it does not have", _with("decoder", 2, mode="bilinear"), "no option 'mode'"),
]


@pytest.mark.parametrize("case, change, phrase", CRAFTED, ids=[case[0] for case in CRAFTED])
def test_a_crafted_conv_architecture_is_refused_before_anything_is_built(case, change, phrase, conv_meta, tmp_path):
    meta = json.loads(json.dumps(conv_meta))
    change(meta["architecture"])
    with pytest.raises(CheckpointError) as refused:
        checkpoint.expected_parameters(meta["architecture"])
    assert phrase in str(refused.value)
    path = tmp_path / "crafted.npz"
    numpy.savez(path, meta=numpy.array(json.dumps(meta)))
    with pytest.raises(CheckpointError) as refused:
        load(path)
    assert str(path) in str(refused.value) and phrase in str(refused.value)


def test_a_conv_checkpoint_with_weights_of_the_wrong_shape_is_refused(tmp_path):
    path = save(tmp_path / "conv.npz", conv_autoencoder(seed=4))
    arrays = dict(numpy.load(path))
    arrays["param/encoder.1.W"] = numpy.zeros((16, 1, 3, 2), dtype=numpy.float32)
    numpy.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=r"encoder.1.W are float32 of shape \(16, 1, 3, 2\)"):
        load(path)


# ---------------------------------------------------------------------------------------------------------------
# The command


def run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_train_and_evaluate_a_conv_vae_from_the_command(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "--model", "conv-vae", "--data", "digits", "--train-size", "200", "--test-size", "50",
                "--epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(None, 32, 4, 4)" in printed and "epoch   1" in printed
    saved = load(out / "model.npz")
    assert saved.meta["extra"]["loss"] == "bce" and saved.model.latent_dim == 2
    assert run(["evaluate", str(out), "--device", "cpu"]) == 0
    assert "test set (50 samples)" in capsys.readouterr().out


def test_the_conv_autoencoder_trains_with_bce_by_default(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "--model", "conv", "--data", "digits", "--train-size", "100", "--test-size", "20",
                "--epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    assert load(out / "model.npz").meta["extra"]["loss"] == "bce"


@pytest.mark.parametrize("argv, phrase", [
    (["--model", "conv", "--latent-dim", "3"], "--latent-dim does not apply to --model conv"),
    (["--model", "conv-denoising", "--beta", "2"], "--beta does not apply to --model conv-denoising"),
    (["--model", "conv-vae", "--noise-factor", "0.2"], "--noise-factor does not apply to --model conv-vae"),
])
def test_options_a_conv_model_ignores_are_refused(argv, phrase, tmp_path, capsys):
    assert run(["train", *argv, "--data", "digits", "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert phrase in error and "Traceback" not in error


def test_backward_stops_at_the_first_layer_with_weights(monkeypatch):
    """The Reshape in front of the first convolution has nothing to learn and the data needs no gradient: the first
    convolution is asked for no dL/dx, and the Reshape's backward is never run."""
    model = conv_autoencoder(image_shape=(1, 8, 8))
    calls = []
    original = Conv2D.backward

    def recorded(self, dy, input_grad=True):
        calls.append((self, input_grad))
        return original(self, dy, input_grad)

    monkeypatch.setattr(Conv2D, "backward", recorded)
    monkeypatch.setattr(Reshape, "backward", lambda *args, **kwargs: pytest.fail("Reshape.backward was run"))
    loss = BCELoss()
    x = images(2, side=8)
    loss.forward(model.forward(x), x)
    model.backward(loss.backward())
    assert calls[-1] == (model.encoder.layers[1], False)
    assert all(input_grad for _, input_grad in calls[:-1])
    assert all(parameter.grad is not None for parameter in model.parameters())

"""The notebooks' models: their architectures, encode / decode on any batch, and the denoising model's noise."""

from __future__ import annotations

import numpy
import pytest

from scratchae.numerical import MODEL_TOLERANCE, model_checks
from scratchae.layers import Dense
from scratchae.losses import MSELoss
from scratchae.models import Autoencoder, Classifier, DenoisingAutoencoder
from scratchae.builders import (deep_autoencoder, denoising_autoencoder, linear_latent_autoencoder, mlp_classifier, simple_autoencoder)
from scratchae.optim import SGD
from scratchae.training import fit


@pytest.fixture
def rng() -> numpy.random.Generator:
    return numpy.random.default_rng(20240607)


def describe(sequential) -> list:
    """A Sequential as plain data: ("Dense", in, out) for dense layers, the class name for activations."""
    return [("Dense", layer.in_features, layer.out_features) if isinstance(layer, Dense) else type(layer).__name__
            for layer in sequential.layers]


def images(rng, n: int, features: int = 784) -> numpy.ndarray:
    return rng.uniform(0.0, 1.0, (n, features)).astype(numpy.float32)


# --------------------------------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------------------------------

DEEP_ENCODER = [("Dense", 784, 128), "ReLU", ("Dense", 128, 64), "ReLU", ("Dense", 64, 32), "ReLU"]
DEEP_DECODER = [("Dense", 32, 64), "ReLU", ("Dense", 64, 128), "ReLU", ("Dense", 128, 784), "Sigmoid"]

ARCHITECTURES = {
    "simple": (simple_autoencoder, Autoencoder,
               [("Dense", 784, 128), "ReLU", ("Dense", 128, 32), "ReLU"],
               [("Dense", 32, 128), "ReLU", ("Dense", 128, 784), "Sigmoid"]),
    "deep": (deep_autoencoder, Autoencoder, DEEP_ENCODER, DEEP_DECODER),
    "denoising": (denoising_autoencoder, DenoisingAutoencoder, DEEP_ENCODER, DEEP_DECODER),
    "linear-latent": (linear_latent_autoencoder, Autoencoder,
                      [("Dense", 784, 128), "ReLU", ("Dense", 128, 64), "ReLU", ("Dense", 64, 16), "Identity"],
                      [("Dense", 16, 64), "ReLU", ("Dense", 64, 128), "ReLU", ("Dense", 128, 784), "Sigmoid"]),
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_autoencoder_layers_are_the_notebooks(name):
    builder, model_type, encoder, decoder = ARCHITECTURES[name]
    model = builder()
    assert type(model) is model_type
    assert describe(model.encoder) == encoder
    assert describe(model.decoder) == decoder
    assert all(parameter.data.dtype == numpy.float32 for parameter in model.parameters())


def test_classifier_is_an_encoder_to_a_linear_latent_then_a_linear_head_to_ten_logits():
    model = mlp_classifier()
    assert type(model) is Classifier
    assert describe(model.encoder) == [("Dense", 784, 128), "ReLU", ("Dense", 128, 64), "ReLU", ("Dense", 64, 16),
                                       "Identity"]
    assert describe(model.head) == [("Dense", 16, 10)]


def test_latent_and_input_sizes_follow_the_arguments(rng):
    model = deep_autoencoder(latent_dim=8, input_dim=64)
    assert describe(model.encoder)[0] == ("Dense", 64, 128)
    assert describe(model.encoder)[-2] == ("Dense", 64, 8)
    assert model.encode(images(rng, 3, 64)).shape == (3, 8)
    classifier = mlp_classifier(latent_dim=4, n_classes=3, input_dim=64)
    assert classifier.forward(images(rng, 5, 64)).shape == (5, 3)


def test_simple_autoencoder_summary_counts_209968_parameters():
    summary = simple_autoencoder().summary()
    assert "Total params: 209,968" in summary
    for shape in ("(None, 128)", "(None, 32)", "(None, 784)"):
        assert shape in summary
    assert summary.count("Dense") == 4


@pytest.mark.parametrize("builder", [simple_autoencoder, deep_autoencoder, linear_latent_autoencoder,
                                     denoising_autoencoder, mlp_classifier])
def test_summary_total_is_the_number_of_weights(builder):
    model = builder()
    total = sum(parameter.size for parameter in model.parameters())
    assert f"Total params: {total:,}" in model.summary()


def test_builders_are_seeded():
    first, same, other = simple_autoencoder(seed=3), simple_autoencoder(seed=3), simple_autoencoder(seed=4)
    pairs = list(zip(first.parameters(), same.parameters(), strict=True))
    assert sum(numpy.array_equal(a.data, b.data) for a, b in pairs) == len(pairs) > 0
    assert not numpy.array_equal(first.parameters()[0].data, other.parameters()[0].data)


# --------------------------------------------------------------------------------------------------------------------
# Encode, decode, reconstruct
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("builder, latent", [(simple_autoencoder, 32), (deep_autoencoder, 32),
                                             (linear_latent_autoencoder, 16), (denoising_autoencoder, 32)])
def test_encode_and_decode_take_any_batch_size(builder, latent, n, rng):
    model = builder()
    z = model.encode(images(rng, n))
    assert z.shape == (n, latent) and z.dtype == numpy.float32
    x_hat = model.decode(z)
    assert x_hat.shape == (n, 784) and x_hat.dtype == numpy.float32
    assert numpy.all((x_hat >= 0.0) & (x_hat <= 1.0))


@pytest.mark.parametrize("builder", [simple_autoencoder, linear_latent_autoencoder, denoising_autoencoder])
def test_reconstruct_is_decode_of_encode(builder, rng):
    model = builder()
    x = images(rng, 5)
    assert numpy.array_equal(model.reconstruct(x), model.decode(model.encode(x)))


def test_interpolation_between_two_codes_is_one_decode_call(rng):
    model = linear_latent_autoencoder()
    z = model.encode(images(rng, 2))  # (2, 16)
    t = numpy.linspace(0.0, 1.0, 9, dtype=numpy.float32)[:, None]  # (9, 1)
    path = (1.0 - t) * z[0] + t * z[1]  # (9, 16)
    frames = model.decode(path)
    assert frames.shape == (9, 784) and frames.dtype == numpy.float32
    numpy.testing.assert_allclose(frames[0], model.decode(z[:1])[0], rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(frames[-1], model.decode(z[1:])[0], rtol=1e-5, atol=1e-6)


def test_random_codes_decode_in_one_call(rng):
    model = simple_autoencoder()
    codes = rng.standard_normal((16, 32), dtype=numpy.float32)
    samples = model.decode(codes)
    assert samples.shape == (16, 784)
    assert numpy.all((samples >= 0.0) & (samples <= 1.0))


def test_classifier_encode_forward_and_predict(rng):
    model = mlp_classifier()
    x = images(rng, 6)
    z = model.encode(x)
    logits = model.forward(x)
    assert z.shape == (6, 16) and logits.shape == (6, 10)
    assert numpy.array_equal(model.head.forward(z), logits)
    assert numpy.array_equal(model.predict(x), numpy.argmax(logits, axis=1))


def test_a_backward_pass_reaches_every_parameter(rng, check_gradients):
    model = simple_autoencoder()
    x = images(rng, 4)
    loss = MSELoss()
    loss.forward(model.forward(x), x)
    model.backward(loss.backward())
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.shape == parameter.data.shape, name
    # ... with the right values: the same network, small and in float64, against centred differences
    small = simple_autoencoder(3, input_dim=10, hidden_dim=6, seed=1, dtype=numpy.float64)
    for name, parameter in small.named_parameters():
        if name.endswith(".b"):  # biases clear of zero keep every ReLU clear of its kink
            parameter.data[...] = rng.uniform(0.1, 0.5, size=parameter.shape)
    x = rng.random((5, 10))
    checks = model_checks(small, MSELoss(), x, x, rng)
    assert [check.name for check in checks] == [name for name, _ in small.named_parameters()]
    check_gradients(checks, MODEL_TOLERANCE)


# --------------------------------------------------------------------------------------------------------------------
# The denoising autoencoder's noise
# --------------------------------------------------------------------------------------------------------------------

def spy_on_encoder(model) -> list:
    """Record every input the encoder sees (a copy), keeping the encoder's behaviour."""
    seen = []
    forward = model.encoder.forward

    def recording_forward(x):
        seen.append(numpy.array(x, copy=True))
        return forward(x)

    model.encoder.forward = recording_forward
    return seen


def test_denoising_training_forward_corrupts_the_input_afresh_each_call(rng):
    model = denoising_autoencoder().train()
    seen = spy_on_encoder(model)
    x = images(rng, 8) * 0.5 + 0.25  # away from the clip range's ends, so the noise shows
    model.forward(x)
    model.forward(x)
    first, second = seen
    assert not numpy.array_equal(first, x)
    assert not numpy.array_equal(first, second)
    for noisy in (first, second):
        assert noisy.dtype == numpy.float32
        assert noisy.min() >= 0.0 and noisy.max() <= 1.0
        assert 0.2 < float(numpy.mean(numpy.abs(noisy - x))) < 0.5  # noise_factor 0.5, clipped


def test_denoising_noise_sequence_is_seeded(rng):
    x = images(rng, 8)
    runs = {}
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        model = denoising_autoencoder(seed=seed).train()
        seen = spy_on_encoder(model)
        for _ in range(3):
            model.forward(x)
        runs[label] = seen
    assert len(runs["a"]) == len(runs["b"]) == 3  # one input per forward call
    assert sum(numpy.array_equal(a, b) for a, b in zip(runs["a"], runs["b"])) == 3
    assert not numpy.array_equal(runs["a"][0], runs["c"][0])


def test_denoising_eval_mode_adds_no_noise(rng):
    model = denoising_autoencoder().eval()
    seen = spy_on_encoder(model)
    x = images(rng, 4)
    out = model.forward(x)
    assert numpy.array_equal(seen[0], x)
    assert numpy.array_equal(out, model.reconstruct(x))
    assert model.noisy_batches == 0
    model.train()
    model.forward(x)
    assert model.noisy_batches == 1
    assert not numpy.array_equal(seen[-1], x)


def test_denoising_reconstruct_never_adds_noise_even_in_training_mode(rng):
    model = denoising_autoencoder().train()
    x = images(rng, 4)
    assert numpy.array_equal(model.reconstruct(x), model.eval().forward(x))


class RecordingMSE(MSELoss):
    def __init__(self):
        super().__init__()
        self.targets = []

    def forward(self, pred, target):
        self.targets.append(numpy.array(target, copy=True))
        return super().forward(pred, target)


def test_denoising_fit_feeds_noisy_inputs_and_scores_against_the_clean_input(rng):
    model = denoising_autoencoder(input_dim=64)
    seen = spy_on_encoder(model)
    x = images(rng, 20, 64)
    loss = RecordingMSE()
    fit(model, loss, SGD(model.parameters(), lr=0.1), x, epochs=2, batch_size=20, shuffle=False, progress=False)
    assert len(loss.targets) == 2
    for target in loss.targets:
        assert numpy.array_equal(target, x)
    assert not numpy.array_equal(seen[0], x)
    assert not numpy.array_equal(seen[0], seen[1])  # a fresh corruption every batch, even of the same images
    assert model.noisy_batches == 2


def test_denoising_rejects_a_negative_noise_factor():
    with pytest.raises(ValueError, match="noise_factor"):
        denoising_autoencoder(noise_factor=-0.1)

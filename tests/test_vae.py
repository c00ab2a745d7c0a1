"""The variational autoencoder and its loss: shapes, seeded sampling, every gradient against numerical ones in float64,
numerics at extreme log-variances, bad input, the strict Array API backend, and checkpoints that resume exactly."""

from __future__ import annotations

import math
import warnings

import numpy
import pytest

from scratchae import checkpoint, data, gradcheck_suite, models, numerical
from scratchae.backend import box_muller
from scratchae.numerical import LAYER_TOLERANCE, MODEL_TOLERANCE
from scratchae.gradcheck_suite import WithFixedEps
from scratchae.losses import BCELoss, VAELoss
from scratchae.models import VariationalAutoencoder, gaussian_sample
from scratchae.builders import variational_autoencoder
from scratchae.optim import Adam
from scratchae.training import History, evaluate, fit, train_step

F64 = numpy.float64


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def small_vae(latent=3, seed=0, dtype=numpy.float32, hidden=8, pixels=12):
    return variational_autoencoder(latent, hidden_dim=hidden, input_dim=pixels, seed=seed, dtype=dtype)


def weights(model):
    return [parameter.data.copy() for parameter in model.parameters()]


# ---------------------------------------------------------------------------------------------------- the model


def test_the_builder_makes_the_pytorch_examples_vae():
    vae = variational_autoencoder()
    assert isinstance(vae, VariationalAutoencoder)
    summary = vae.summary()
    assert "Total params: 652,824" in summary  # 784-400, 400-20 twice, 20-400-784: as pytorch/examples
    assert [tuple(p.shape) for p in vae.parameters()] == [(784, 400), (400,), (400, 20), (20,), (400, 20), (20,),
                                                          (20, 400), (400,), (400, 784), (784,)]
    assert vae.latent_dim == 20 and vae.input_features == 784 and vae.output_features == 784


def test_forward_gives_the_reconstruction_mean_and_log_variance(rng):
    vae = small_vae().train()
    x = rng.random((5, 12), dtype=numpy.float32)
    x_hat, mu, logvar = vae.forward(x)
    assert x_hat.shape == (5, 12) and mu.shape == (5, 3) and logvar.shape == (5, 3)
    assert x_hat.dtype == mu.dtype == logvar.dtype == numpy.float32  # no silent upcast
    assert bool(numpy.all((x_hat > 0) & (x_hat < 1)))
    numpy.testing.assert_array_equal(vae.encode(x), mu)
    numpy.testing.assert_array_equal(vae.reconstruct(x), vae.decode(mu))


def test_eps_is_seeded_per_batch_so_a_run_repeats(rng):
    x = rng.random((4, 12), dtype=numpy.float32)
    first, second = small_vae(seed=5).train(), small_vae(seed=5).train()
    outputs = [first.forward(x)[0] for _ in range(3)]
    assert not numpy.array_equal(outputs[0], outputs[1])  # a fresh eps for every batch
    for expected in outputs:
        numpy.testing.assert_array_equal(second.forward(x)[0], expected)  # the same stream for the same seed
    assert first.sampled_batches == 3


def test_evaluation_uses_a_stream_of_its_own_that_restarts(rng):
    vae = small_vae()
    x = rng.random((4, 12), dtype=numpy.float32)
    vae.eval()
    first = [vae.forward(x)[0] for _ in range(2)]
    vae.eval()
    again = [vae.forward(x)[0] for _ in range(2)]
    for a, b in zip(first, again):
        numpy.testing.assert_array_equal(a, b)
    assert vae.sampled_batches == 0  # evaluation never moves the training stream


def test_sample_decodes_standard_normal_codes():
    vae = small_vae()
    images = vae.sample(6, seed=1)
    assert images.shape == (6, 12) and images.dtype == numpy.float32
    numpy.testing.assert_array_equal(vae.sample(6, seed=1), images)
    z = box_muller(numpy.random.default_rng(1), (6, 3), numpy.float32)  # how scratchae draws N(0, I) on NumPy
    numpy.testing.assert_array_equal(images, vae.decode(z))


# ---------------------------------------------------------------------------------------------------- the loss


def test_the_loss_is_the_negative_elbo_per_sample(rng):
    x = rng.random((4, 6))
    x_hat, mu, logvar = rng.uniform(0.1, 0.9, (4, 6)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    for reconstruction in ("bce", "mse"):
        loss = VAELoss(reconstruction, beta=2.0)
        value = float(loss.forward((x_hat, mu, logvar), x))
        if reconstruction == "bce":
            expected_reconstruction = -numpy.sum(x * numpy.log(x_hat) + (1 - x) * numpy.log(1 - x_hat)) / 4
        else:
            expected_reconstruction = numpy.sum((x_hat - x) ** 2) / 4
        kl = -0.5 * numpy.sum(1 + logvar - mu**2 - numpy.exp(logvar)) / 4
        assert value == pytest.approx(expected_reconstruction + 2.0 * kl, rel=1e-12)
        assert loss.metrics() == pytest.approx({"reconstruction": expected_reconstruction, "kl": kl}, rel=1e-12)


def test_kl_warm_up_raises_the_weight_from_zero_over_the_first_epochs():
    loss = VAELoss(beta=0.5, warmup_epochs=4)
    weights_by_epoch = []
    for epoch in range(6):
        loss.start_epoch(epoch)
        weights_by_epoch.append(loss.kl_weight)
    assert weights_by_epoch == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    plain = VAELoss(beta=0.5)
    plain.start_epoch(0)
    assert plain.kl_weight == 0.5


@pytest.mark.parametrize("options, message", [
    ({"reconstruction": "l1"}, "unknown reconstruction 'l1'; choose one of bce, mse"),
    ({"beta": -0.1}, "beta must be a finite number >= 0, got -0.1"),
    ({"beta": float("nan")}, "beta must be a finite number >= 0, got nan"),
    ({"beta": float("inf")}, "beta must be a finite number >= 0, got inf"),
    ({"warmup_epochs": -1}, "warmup_epochs must be a whole number >= 0, got -1"),
])
def test_bad_loss_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        VAELoss(**options)


@pytest.mark.parametrize("options, message", [
    ({"latent_dim": 0}, "latent_dim must be a whole number >= 1, got 0"),
    ({"hidden_dim": -3}, "hidden_dim must be a whole number >= 1, got -3"),
    ({"latent_dim": 2.5}, "latent_dim must be a whole number >= 1, got 2.5"),
])
def test_bad_sizes_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        variational_autoencoder(**options)


def test_bce_targets_outside_0_1_are_refused_before_training(digits):
    vae = variational_autoencoder(2, hidden_dim=16, input_dim=64)
    optimizer = Adam(vae.parameters())
    before = weights(vae)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\], but the targets range from 0 to 16"):
        fit(vae, VAELoss("bce"), optimizer, digits.x_train * 16, epochs=1, batch_size=32, progress=False)
    assert optimizer.steps == 0 and vae.sampled_batches == 0
    after = weights(vae)
    assert len(after) == len(before) > 0 and sum(numpy.array_equal(a, b) for a, b in zip(before, after)) == len(before)
    with pytest.raises(ValueError, match=r"the model's output is a sigmoid, between 0 and 1, but the targets range "
                                         r"from 0 to 16"):  # MSE takes any values, but a sigmoid cannot reach these
        fit(vae, VAELoss("mse"), optimizer, digits.x_train * 16, epochs=1, batch_size=512, progress=False)
    fit(vae, VAELoss("mse"), optimizer, digits.x_train, epochs=1, batch_size=512, progress=False)


# ---------------------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("reconstruction", ["bce", "mse"])
def test_the_loss_gradients_reconstruction_and_kl_term(rng, check_gradients, reconstruction):
    x_hat, mu = rng.uniform(0.05, 0.95, (6, 10)), rng.standard_normal((6, 4))
    logvar, target = 0.5 * rng.standard_normal((6, 4)), rng.uniform(0.0, 1.0, (6, 10))
    check_gradients(gradcheck_suite.check_vae_loss(VAELoss(reconstruction, beta=1.3), x_hat, mu, logvar, target),
                    LAYER_TOLERANCE)


def test_the_kl_term_alone(rng, check_gradients):
    """With the same x_hat and target, only the KL term depends on mu and logvar."""
    x_hat, mu, logvar = rng.uniform(0.05, 0.95, (5, 3)), rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    loss = VAELoss("mse", beta=1.0)
    loss.forward((x_hat, mu, logvar), x_hat)
    _, dmu, dlogvar = loss.backward()
    numpy.testing.assert_allclose(dmu, mu / 5, rtol=1e-12)  # dKL/dmu = mu, per sample
    numpy.testing.assert_allclose(dlogvar, 0.5 * (numpy.exp(logvar) - 1) / 5, rtol=1e-12)
    checks = gradcheck_suite.check_vae_loss(loss, x_hat, mu, logvar, x_hat)
    assert checks[0].analytic == 0.0  # x_hat is the target: the reconstruction term is at its minimum
    check_gradients(checks[1:], LAYER_TOLERANCE)


def test_the_sampling_step(rng, check_gradients):
    mu, logvar, eps = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    numpy.testing.assert_allclose(gaussian_sample(mu, logvar, eps), mu + numpy.exp(logvar / 2) * eps)
    check_gradients(gradcheck_suite.check_gaussian_sample(mu, logvar, eps, rng), LAYER_TOLERANCE)


@pytest.mark.parametrize("reconstruction", ["bce", "mse"])
def test_the_whole_vae_end_to_end_with_eps_held_fixed(rng, check_gradients, reconstruction):
    x = rng.uniform(0.0, 1.0, (6, 12))

    def draw():  # a VAE, with eps held fixed, clear of ReLU's kinks (see gradcheck_suite._well_posed)
        vae = gradcheck_suite._biases_off_zero(small_vae(dtype=F64, seed=int(rng.integers(1000))), rng).train()
        return WithFixedEps(vae, rng.standard_normal((6, 3))), x

    fixed, _ = gradcheck_suite._well_posed(draw, VAELoss(reconstruction))
    checks = numerical.model_checks(fixed, VAELoss(reconstruction, beta=0.8), x, x, rng, h=numerical.MODEL_STEP)
    assert {check.name for check in checks} == {name for name, _ in fixed.named_parameters()}
    check_gradients(checks, MODEL_TOLERANCE)


def test_a_wrong_sampling_gradient_is_caught(rng, monkeypatch):
    vae = gradcheck_suite._biases_off_zero(small_vae(dtype=F64, seed=3), rng).train()
    x = rng.uniform(0.0, 1.0, (6, 12))

    def forgets_the_half(dz, logvar, eps):
        return dz, dz * eps * numpy.exp(0.5 * logvar)  # dz/dlogvar is eps * sigma / 2, not eps * sigma

    monkeypatch.setattr(models, "gaussian_sample_backward", forgets_the_half)
    checks = numerical.model_checks(WithFixedEps(vae, rng.standard_normal((6, 3))), VAELoss(), x, x, rng,
                                    h=numerical.MODEL_STEP)
    failed = {check.name for check in checks if not check.passed(MODEL_TOLERANCE)}
    assert {"logvar_head.0.W", "logvar_head.0.b", "encoder.0.W"} <= failed
    assert "decoder.2.W" not in failed  # the decoder does not see the log-variance's gradient


# ---------------------------------------------------------------------------------------------------- numerics


def test_extreme_log_variances_neither_overflow_nor_warn(rng):
    vae = small_vae().train()
    x = rng.random((4, 12), dtype=numpy.float32)
    head = vae.logvar_head.layers[0]
    for sign in (1.0, -1.0):
        head.b.data[...] = sign * 100.0  # logvar = +-100 before the clamp
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            x_hat, mu, logvar = vae.forward(x)
            loss = VAELoss()
            value = float(loss.forward((x_hat, mu, logvar), x))
            vae.backward(loss.backward())
        assert float(numpy.max(numpy.abs(logvar))) == VariationalAutoencoder.LOGVAR_LIMIT
        assert math.isfinite(value) and all(numpy.all(numpy.isfinite(p.grad)) for p in vae.parameters())
        assert float(numpy.max(numpy.abs(head.W.grad))) == 0.0  # the clamp passes no gradient where it is active


def test_bce_reconstruction_is_as_stable_as_bce_loss():
    x = numpy.array([[0.0, 1.0, 1.0, 0.0]], dtype=numpy.float32)
    x_hat = numpy.array([[1.0, 0.0, 1.0, 0.0]], dtype=numpy.float32)  # sure and wrong, sure and right
    zeros = numpy.zeros((1, 2), dtype=numpy.float32)
    loss = VAELoss("bce")
    value = float(loss.forward((x_hat, zeros, zeros), x))
    assert value == pytest.approx(4 * float(BCELoss().forward(x_hat, x)), rel=1e-6)
    assert math.isfinite(value) and bool(numpy.all(numpy.isfinite(loss.backward()[0])))


# ---------------------------------------------------------------------------------------------------- training


def test_training_on_digits_lowers_the_elbo_and_records_both_terms(digits):
    vae = variational_autoencoder(4, hidden_dim=64, input_dim=64, seed=1)
    history = fit(vae, VAELoss(), Adam(vae.parameters(), lr=3e-3), digits.x_train, epochs=4, batch_size=64,
                  validation=digits.x_test, progress=False)
    for name in ("loss", "reconstruction", "kl", "val_loss", "val_reconstruction", "val_kl"):
        assert len(history[name]) == 4
    assert history["loss"][-1] < history["loss"][0]
    for epoch in range(4):
        assert history["loss"][epoch] == pytest.approx(history["reconstruction"][epoch] + history["kl"][epoch])
    repeated = evaluate(vae, VAELoss(), digits.x_test)
    assert repeated == evaluate(vae, VAELoss(), digits.x_test)  # validation draws eps from a fixed stream
    assert repeated["loss"] == pytest.approx(history["val_loss"][-1])


def test_train_step_takes_the_vae_as_it_takes_any_model(rng):
    vae = small_vae().train()
    optimizer = Adam(vae.parameters(), lr=1e-2)
    x = rng.random((16, 12), dtype=numpy.float32)
    losses = [train_step(vae, VAELoss(), optimizer, x) for _ in range(30)]
    assert losses[-1] < losses[0] and optimizer.steps == 30


def test_the_vae_gives_numpys_numbers_on_the_strict_backend(strict, rng):
    x = rng.random((8, 12))
    reference, moved = small_vae(dtype=F64, seed=2).train(), strict.move(small_vae(dtype=F64, seed=2)).train()
    for model, data_ in ((reference, x), (moved, strict.asarray(x))):
        optimizer = Adam(model.parameters(), lr=1e-2)
        for _ in range(3):
            train_step(model, VAELoss(), optimizer, data_)
    for p_ref, p in zip(reference.parameters(), moved.parameters(), strict=True):
        assert p.data.device == strict.device
        numpy.testing.assert_allclose(strict.to_numpy(p.data), p_ref.data, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------- checkpoints


def test_a_checkpoint_keeps_the_vae_and_its_counter(tmp_path, digits):
    vae = variational_autoencoder(3, hidden_dim=32, input_dim=64, seed=4)
    optimizer = Adam(vae.parameters())
    history = fit(vae, VAELoss("mse", beta=0.5), optimizer, digits.x_train, epochs=2, batch_size=256,
                  progress=False)
    path = checkpoint.save(tmp_path / "vae.npz", vae, optimizer, history)
    restored = checkpoint.load(path)
    assert isinstance(restored.model, VariationalAutoencoder)
    assert restored.model.sampled_batches == vae.sampled_batches == 2 * math.ceil(len(digits.x_train) / 256)
    assert restored.model.seed == 4 and restored.model.summary() == vae.summary()
    for a, b in zip(weights(vae), weights(restored.model)):
        numpy.testing.assert_array_equal(a, b)


def test_a_resumed_vae_run_is_bit_identical_to_one_that_never_stopped(tmp_path, digits):
    def run(epochs, model=None, optimizer=None, history=None):
        model = model or variational_autoencoder(3, hidden_dim=32, input_dim=64, seed=6)
        optimizer = optimizer or Adam(model.parameters(), lr=2e-3)
        history = fit(model, VAELoss(warmup_epochs=2), optimizer, digits.x_train, epochs=epochs, batch_size=100,
                      validation=digits.x_test, seed=3, progress=False, history=history)
        return model, optimizer, history

    straight, _, straight_history = run(4)
    first, optimizer, history = run(2)
    saved = checkpoint.load(checkpoint.save(tmp_path / "half.npz", first, optimizer, history))
    resumed, _, resumed_history = run(2, saved.model, saved.optimizer, saved.history)
    for a, b in zip(weights(straight), weights(resumed)):
        numpy.testing.assert_array_equal(a, b)
    assert resumed_history.metrics == straight_history.metrics
    assert isinstance(resumed_history, History) and len(resumed_history) == 4

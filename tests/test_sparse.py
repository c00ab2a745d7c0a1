"""The sparse autoencoder: Keras's L1 activity penalty, its one-line gradient, training, checkpoints and the command."""

from __future__ import annotations

import json

import numpy
import pytest

from scratchae import builders, checkpoint, gradcheck_suite, sparse
from scratchae.cli import main
from scratchae.optim import Adam
from scratchae.sparse import SparseAutoencoder, SparseLoss, l1_penalty, l1_penalty_backward
from scratchae.training import fit


def test_the_penalty_is_keras_l1_times_the_sum_of_abs_h_averaged_over_the_batch():
    h = numpy.array([[1.0, -2.0, 0.0], [0.5, 0.0, -0.5]])
    assert float(l1_penalty(h, 0.1)) == pytest.approx(0.1 * (3.0 + 1.0) / 2)


def test_its_gradient_is_l1_sign_h_over_n_and_zero_at_zero():
    h = numpy.array([[1.0, -2.0, 0.0], [0.5, 0.0, -0.5]], dtype=numpy.float32)
    gradient = l1_penalty_backward(h, 0.1)
    assert gradient.dtype == numpy.float32  # no silent upcast
    numpy.testing.assert_allclose(gradient, 0.05 * numpy.array([[1, -1, 0], [1, 0, -1]]), rtol=1e-6)


def test_every_sparse_case_of_the_suite_passes_for_both_signs_and_both_codes():
    cases = gradcheck_suite._sparse_cases(numpy.random.default_rng(0))
    whats = [case.what for case in cases]
    assert sum("SparseLoss" in what and "penalty" in what for what in whats) == 2
    assert any("ReLU code" in what for what in whats) and any("linear code" in what for what in whats)
    for case in cases:
        for check in case.checks:
            assert check.passed(case.tolerance), f"{case.what}: {check}"
    assert any("sparse" in case.what for case in gradcheck_suite.check_everything(0))


@pytest.mark.parametrize("mutation", ["sign dropped", "gradient of h itself", "penalty gradient never added"])
def test_a_mutated_penalty_gradient_fails_the_checks(monkeypatch, mutation):
    def no_sign(h, l1):
        return (l1 / h.shape[0]) + 0.0 * h  # l1 / N everywhere: the sign dropped

    def of_h(h, l1):
        return (l1 / h.shape[0]) * h  # the gradient of h^2 / 2, not of |h|

    def none(h, l1):
        return 0.0 * h

    monkeypatch.setattr(sparse, "l1_penalty_backward", {"sign dropped": no_sign, "gradient of h itself": of_h,
                                                        "penalty gradient never added": none}[mutation])
    cases = gradcheck_suite._sparse_cases(numpy.random.default_rng(0))
    failed = [case.what for case in cases if not all(check.passed(case.tolerance) for check in case.checks)]
    assert failed and all("SparseLoss" in what for what in failed)
    assert any("linear code" in what for what in failed)  # a code of both signs catches the dropped sign


def test_training_reports_the_penalty_in_the_loss_and_the_mean_code_in_the_history():
    rng = numpy.random.default_rng(1)
    x = rng.uniform(0.0, 1.0, (64, 20)).astype(numpy.float32)
    model = builders.sparse_autoencoder(8, l1=1e-2, input_dim=20, seed=1)
    loss = SparseLoss(model.l1)
    history = fit(model, loss, Adam(model.parameters()), x, epochs=3, batch_size=64, progress=False, validation=x)
    for prefix in ("", "val_"):
        for name in ("loss", "reconstruction", "l1_penalty", "code_mean"):
            assert len(history[prefix + name]) == 3
        numpy.testing.assert_allclose(history[prefix + "loss"],
                                      numpy.add(history[prefix + "reconstruction"], history[prefix + "l1_penalty"]),
                                      rtol=1e-6)
    code = model.encode(x)  # the validation pass saw the model of the end of the epoch
    assert history["val_code_mean"][-1] == pytest.approx(float(numpy.mean(numpy.abs(code))), rel=1e-5)
    assert history["val_l1_penalty"][-1] == pytest.approx(1e-2 * float(numpy.sum(numpy.abs(code))) / 64, rel=1e-5)


def test_the_penalty_makes_the_code_smaller_after_the_same_steps():
    rng = numpy.random.default_rng(2)
    x = rng.uniform(0.0, 1.0, (256, 30)).astype(numpy.float32)
    means = {}
    for l1 in (0.0, 3e-2):
        model = builders.sparse_autoencoder(16, l1=l1, input_dim=30, seed=2)
        history = fit(model, SparseLoss(l1), Adam(model.parameters(), lr=1e-2), x, epochs=20, batch_size=64,
                      progress=False)
        means[l1] = history["code_mean"][-1]
    assert means[3e-2] < 0.5 * means[0.0]


def test_the_builder_is_chollets_network():
    model = builders.sparse_autoencoder()
    assert [type(layer).__name__ for layer in model.encoder.layers] == ["Dense", "ReLU"]
    assert [type(layer).__name__ for layer in model.decoder.layers] == ["Dense", "Sigmoid"]
    assert (model.encoder.layers[0].in_features, model.encoder.layers[0].out_features) == (784, 32)
    assert sum(parameter.data.size for parameter in model.parameters()) == 784 * 32 + 32 + 32 * 784 + 784
    assert model.l1 == 1e-4 and builders.BUILDERS["sparse"] is builders.sparse_autoencoder
    with pytest.raises(ValueError, match="l1"):
        SparseAutoencoder(model.encoder, model.decoder, l1=-1.0)


def test_a_checkpoint_keeps_the_model_and_its_l1(tmp_path):
    model = builders.sparse_autoencoder(8, l1=3e-3, input_dim=20, seed=4)
    x = numpy.random.default_rng(4).uniform(0.0, 1.0, (5, 20)).astype(numpy.float32)
    checkpoint.save(tmp_path / "model.npz", model)
    loaded = checkpoint.load(tmp_path / "model.npz").model
    assert isinstance(loaded, SparseAutoencoder) and loaded.l1 == 3e-3
    for mine, theirs in zip(model.forward(x), loaded.forward(x), strict=True):
        numpy.testing.assert_array_equal(mine, theirs)


def test_the_command_trains_model_sparse_with_its_l1_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--model", "sparse", "--data", "digits", "--train-size", "200", "--test-size", "50",
              "--out", str(out)]
    assert main([*common, "--epochs", "2", "--l1", "1e-3"]) == 0
    assert "code_mean" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert len(history["metrics"]["code_mean"]) == 2 and len(history["metrics"]["val_l1_penalty"]) == 2
    saved = checkpoint.load(out / "model.npz")
    assert saved.model.l1 == 1e-3 and saved.meta["extra"]["settings"]["l1"] == 1e-3
    assert main([*common, "--epochs", "3", "--resume"]) == 0
    assert len(checkpoint.load(out / "model.npz").history) == 3
    assert main([*common, "--epochs", "4", "--resume", "--l1", "1e-2"]) == 2
    assert "--l1" in capsys.readouterr().err
    assert main(["train", "--model", "simple", "--l1", "1e-3", "--out", str(tmp_path / "other")]) == 2
    assert "--l1 does not apply to --model simple" in capsys.readouterr().err


def test_a_sparse_training_step_runs_on_a_strict_array_api_device_as_on_numpy(strict):
    """The penalty and its gradient use the namespace of the code (xp.abs, xp.sign): the same step on
    array-api-strict's non-CPU device, whose arrays refuse NumPy, gives NumPy's numbers."""
    x = numpy.random.default_rng(7).uniform(0.0, 1.0, (6, 12)).astype(numpy.float32)
    reference = builders.sparse_autoencoder(4, l1=0.05, input_dim=12, seed=7)
    model = strict.move(builders.sparse_autoencoder(4, l1=0.05, input_dim=12, seed=7))
    optimizers = Adam(reference.parameters(), lr=0.01), Adam(model.parameters(), lr=0.01)
    losses = SparseLoss(0.05, "bce"), SparseLoss(0.05, "bce")
    for _ in range(3):
        values = []
        for net, loss, optimizer, inputs in zip((reference, model), losses, optimizers, (x, strict.asarray(x))):
            values.append(float(loss.forward(net.forward(inputs), inputs)))
            net.backward(loss.backward())
            optimizer.step()
        assert values[1] == pytest.approx(values[0], rel=1e-5)
        assert losses[1].metrics()["code_mean"] == pytest.approx(losses[0].metrics()["code_mean"], rel=1e-5)
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        numpy.testing.assert_allclose(strict.to_numpy(mine.data), theirs.data, rtol=1e-5, atol=1e-6)

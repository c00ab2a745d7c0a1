"""fit(): learning on real data, batching, shuffling, determinism, data checks, divergence, Ctrl-C, evaluate()."""

from __future__ import annotations

import math
import os
import signal

import numpy
import pytest

from scratchae import data
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from scratchae.builders import (deep_autoencoder, denoising_autoencoder, linear_latent_autoencoder, mlp_classifier, simple_autoencoder)
from scratchae.optim import SGD, Adam
from scratchae.training import History, TrainingDiverged, evaluate, fit



@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


@pytest.fixture
def rng() -> numpy.random.Generator:
    return numpy.random.default_rng(20240607)


def weights(model) -> list[numpy.ndarray]:
    return [parameter.data.copy() for parameter in model.parameters()]


def same_weights(model, snapshot) -> bool:
    return all(numpy.array_equal(parameter.data, old) for parameter, old in zip(model.parameters(), snapshot))


def uniform(rng, n: int, features: int = 64) -> numpy.ndarray:
    return rng.uniform(0.0, 1.0, (n, features)).astype(numpy.float32)


# --------------------------------------------------------------------------------------------------------------------
# Learning on digits
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("builder", [simple_autoencoder, deep_autoencoder, linear_latent_autoencoder,
                                     denoising_autoencoder])
def test_autoencoders_learn_digits_in_a_few_epochs(builder, digits):
    model = builder(input_dim=64)
    before = evaluate(model, MSELoss(), digits.x_test)["loss"]
    history = fit(model, MSELoss(), Adam(model.parameters()), digits.x_train, epochs=3, batch_size=64,
                  validation=digits.x_test, progress=False)
    assert sorted(history.metrics) == ["loss", "val_loss"]
    assert len(history) == 3 and len(history["val_loss"]) == 3 and len(history.seconds) == 3
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["val_loss"][-1] < 0.7 * before
    assert not history.interrupted


def test_classifier_learns_digits_well_beyond_chance(digits):
    model = mlp_classifier(input_dim=64)
    history = fit(model, SoftmaxCrossEntropyLoss(), Adam(model.parameters()), digits.x_train, digits.y_train,
                  epochs=4, batch_size=64, validation=(digits.x_test, digits.y_test), progress=False)
    assert sorted(history.metrics) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(values) == 4 for values in history.metrics.values())
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.7
    assert history["accuracy"][-1] > 0.7
    accuracy = float(numpy.mean(model.predict(digits.x_test) == digits.y_test))
    assert accuracy == pytest.approx(history["val_accuracy"][-1])


def test_fit_leaves_the_model_in_evaluation_mode(digits):
    model = denoising_autoencoder(input_dim=64)
    fit(model, MSELoss(), Adam(model.parameters()), digits.x_train[:64], epochs=1, batch_size=32, progress=False)
    x = digits.x_test[:5]
    assert numpy.array_equal(model.forward(x), model.reconstruct(x))


def test_validation_of_a_denoising_model_draws_no_training_noise(digits):
    model = denoising_autoencoder(input_dim=64)
    fit(model, MSELoss(), Adam(model.parameters()), digits.x_train[:100], epochs=2, batch_size=32,
        validation=digits.x_test, progress=False)
    assert model.noisy_batches == 2 * 4


# --------------------------------------------------------------------------------------------------------------------
# Batches and shuffling
# --------------------------------------------------------------------------------------------------------------------

class BatchRecorder:
    """Wraps a model's forward: remembers which rows of ``x`` (by content) made up every training batch.

    The tests that use it train on one thread (``threads=1``), whose step calls ``model.forward`` with each whole
    batch; on more threads each part runs on a replica of the model (``tests/test_parallel.py``)."""

    def __init__(self, model, x):
        self.rows = {row.tobytes(): index for index, row in enumerate(x)}
        assert len(self.rows) == len(x), "rows must be distinct to be recognised"
        self.batches = []
        self.forward = model.forward
        model.forward = self

    def __call__(self, x_batch):
        self.batches.append([self.rows[row.tobytes()] for row in numpy.asarray(x_batch)])
        return self.forward(x_batch)

    def epochs(self, batches_per_epoch: int) -> list[list[int]]:
        flat = [self.batches[i:i + batches_per_epoch] for i in range(0, len(self.batches), batches_per_epoch)]
        return [[index for batch in epoch for index in batch] for epoch in flat]


def test_the_last_partial_batch_is_used(rng):
    model = simple_autoencoder(input_dim=64)
    x = uniform(rng, 100)
    recorder = BatchRecorder(model, x)
    optimizer = Adam(model.parameters())
    fit(model, MSELoss(), optimizer, x, epochs=1, batch_size=32, progress=False, threads=1)
    assert optimizer.steps == 4
    assert [len(batch) for batch in recorder.batches] == [32, 32, 32, 4]
    fit(model, MSELoss(), optimizer, x, epochs=2, batch_size=32, progress=False)
    assert optimizer.steps == 12


def test_every_epoch_visits_every_sample_once_in_a_new_seeded_order(rng):
    x = uniform(rng, 100)
    orders = {}
    for label, seed in (("a", 0), ("b", 0), ("c", 1)):
        model = simple_autoencoder(input_dim=64)
        recorder = BatchRecorder(model, x)
        fit(model, MSELoss(), Adam(model.parameters()), x, epochs=3, batch_size=32, seed=seed, progress=False,
            threads=1)
        orders[label] = recorder.epochs(4)
    first, second, third = orders["a"]
    for order in orders["a"] + orders["c"]:
        assert sorted(order) == list(range(100))
    assert first != second and second != third and first != third
    assert first != list(range(100))
    assert orders["a"] == orders["b"]
    assert orders["a"][0] != orders["c"][0]


def test_without_shuffle_batches_come_in_order(rng):
    x = uniform(rng, 50)
    model = simple_autoencoder(input_dim=64)
    recorder = BatchRecorder(model, x)
    fit(model, MSELoss(), Adam(model.parameters()), x, epochs=2, batch_size=16, shuffle=False, progress=False,
        threads=1)
    assert recorder.epochs(4) == [list(range(50))] * 2


# --------------------------------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------------------------------

def train(builder, x, y=None, *, seed, epochs=2, loss=None):
    model = builder(input_dim=64)
    loss = loss or MSELoss()
    validation = x[:50] if y is None else (x[:50], y[:50])
    history = fit(model, loss, Adam(model.parameters()), x, y, epochs=epochs, batch_size=32, seed=seed,
                  validation=validation, progress=False)
    return model, history


@pytest.mark.parametrize("builder", [simple_autoencoder, denoising_autoencoder])
def test_same_seed_same_data_gives_bit_identical_runs(builder, digits):
    x = digits.x_train[:300]
    first, history_1 = train(builder, x, seed=7)
    second, history_2 = train(builder, x, seed=7)
    other, history_3 = train(builder, x, seed=8)
    assert same_weights(second, weights(first))
    assert history_1.metrics == history_2.metrics
    for name in history_1.metrics:
        assert numpy.array_equal(history_1[name], history_2[name])
    assert not same_weights(other, weights(first))
    assert history_3["loss"] != history_1["loss"]


def test_classifier_runs_are_bit_identical_too(digits):
    x, y = digits.x_train[:300], digits.y_train[:300]
    first, history_1 = train(mlp_classifier, x, y, seed=3, loss=SoftmaxCrossEntropyLoss())
    second, history_2 = train(mlp_classifier, x, y, seed=3, loss=SoftmaxCrossEntropyLoss())
    assert same_weights(second, weights(first))
    assert history_1.metrics == history_2.metrics


# --------------------------------------------------------------------------------------------------------------------
# Data checked once, before any training
# --------------------------------------------------------------------------------------------------------------------

def _nan_at_end(x):
    x = x.copy()
    x[-1, 5] = numpy.nan
    return x


def _inf_at_end(x):
    x = x.copy()
    x[-1, 0] = numpy.inf
    return x


def _labels_with(y, value):
    y = y.copy()
    y[-1] = value
    return y


# (case, classifier?, make (x, y, validation) from the clean (x, labels), a phrase the message must contain)
BAD_DATA = [
    ("wrong feature size", False, lambda x, y: (x[:, :63], None, None), r"\(N, 64\)"),
    ("integer dtype", False, lambda x, y: ((x * 16).astype(numpy.int64), None, None), "floating point"),
    ("uint8 images", False, lambda x, y: ((x * 255).astype(numpy.uint8), None, None), "floating point"),
    ("float64 into float32", False, lambda x, y: (x.astype(numpy.float64), None, None), "float64"),
    ("NaN", False, lambda x, y: (_nan_at_end(x), None, None), "NaN"),
    ("inf", False, lambda x, y: (_inf_at_end(x), None, None), "infinite"),
    ("1-d inputs", False, lambda x, y: (x[0], None, None), "shape"),
    ("no samples", False, lambda x, y: (x[:0], None, None), "no samples"),
    ("target length", False, lambda x, y: (x, x[:-1], None), "targets"),
    ("target dtype", False, lambda x, y: (x, x.astype(numpy.float64), None), "targets"),
    ("NaN in targets", False, lambda x, y: (x, _nan_at_end(x), None), "NaN"),
    ("NaN in validation", False, lambda x, y: (x, None, _nan_at_end(x[:20])), "validation"),
    ("float64 validation", False, lambda x, y: (x, None, x[:20].astype(numpy.float64)), "validation"),
    ("label length", True, lambda x, y: (x, y[:-1], None), "targets"),
    ("float labels", True, lambda x, y: (x, y.astype(numpy.float32), None), "integer"),
    ("one-hot labels", True, lambda x, y: (x, numpy.eye(10, dtype=numpy.int64)[y], None), "1-d"),
    ("label 10 of 10 classes", True, lambda x, y: (x, _labels_with(y, 10), None), "label"),
    ("negative label", True, lambda x, y: (x, _labels_with(y, -1), None), "label"),
    ("bad validation label", True, lambda x, y: (x, y, (x[:20], _labels_with(y[:20], 12))), "label"),
    ("no labels for a classifier", True, lambda x, y: (x, "none", None), "class labels; pass them as y"),
    ("validation without its labels", True, lambda x, y: (x, y, (x[:20],)), r"pair \(x_val, y_val\)"),
    ("a Python list", False, lambda x, y: (x.tolist(), None, None), "must be an array"),
    ("no validation samples", False, lambda x, y: (x, None, x[:0]), "validation data: there are no samples"),
]


@pytest.mark.parametrize("case, classifier, make, phrase", BAD_DATA, ids=[case[0] for case in BAD_DATA])
def test_bad_data_is_refused_before_any_training(case, classifier, make, phrase, digits):
    x, labels = digits.x_train[:200], digits.y_train[:200]
    model = mlp_classifier(input_dim=64) if classifier else denoising_autoencoder(input_dim=64)
    loss = SoftmaxCrossEntropyLoss() if classifier else MSELoss()
    x_bad, y_bad, validation = make(x, labels)
    if classifier and y_bad is None:
        y_bad = labels
    if isinstance(y_bad, str):  # "none": give no labels at all
        y_bad = None
    optimizer = Adam(model.parameters())
    before = weights(model)
    with pytest.raises((ValueError, TypeError), match=phrase):  # TypeError for labels that are not integers
        fit(model, loss, optimizer, x_bad, y_bad, epochs=2, batch_size=32, validation=validation, progress=False)
    assert optimizer.steps == 0
    assert same_weights(model, before)
    assert getattr(model, "noisy_batches", 0) == 0


@pytest.mark.parametrize("argument, value", [("epochs", -1), ("batch_size", -1), ("batch_size", 0),
                                             ("epochs", 1.5), ("batch_size", 32.0), ("epochs", None)])
def test_negative_or_non_integer_counts_are_refused(argument, value, rng):
    model = simple_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    before = weights(model)
    options = {"epochs": 1, "batch_size": 32, argument: value}
    with pytest.raises(ValueError, match=argument):
        fit(model, MSELoss(), optimizer, uniform(rng, 40), progress=False, **options)
    assert optimizer.steps == 0 and same_weights(model, before)


def test_zero_epochs_trains_nothing(rng):
    model = denoising_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    before = weights(model)
    history = fit(model, MSELoss(), optimizer, uniform(rng, 40), epochs=0, batch_size=8, validation=uniform(rng, 8),
                  progress=False)
    assert len(history) == 0 and history.metrics == {} and not history.interrupted
    assert optimizer.steps == 0 and model.noisy_batches == 0
    assert same_weights(model, before)


# --------------------------------------------------------------------------------------------------------------------
# A loss that is no longer a number
# --------------------------------------------------------------------------------------------------------------------

def test_a_huge_learning_rate_raises_training_diverged_and_goes_back_to_the_last_finite_epoch(digits):
    model = mlp_classifier(input_dim=64)
    optimizer = SGD(model.parameters(), lr=1e12)
    ends = [(weights(model), optimizer.steps)]  # the state before training, then after each whole epoch
    with pytest.raises(TrainingDiverged) as raised:
        fit(model, SoftmaxCrossEntropyLoss(), optimizer, digits.x_train, digits.y_train, epochs=3, batch_size=32,
            progress=False, on_epoch_end=lambda epoch, logs: ends.append((weights(model), optimizer.steps)))
    assert isinstance(raised.value, FloatingPointError)
    last_weights, last_steps = ends[-1]
    assert all(numpy.all(numpy.isfinite(parameter.data)) for parameter in model.parameters())
    assert same_weights(model, last_weights) and optimizer.steps == last_steps
    where = f"the end of epoch {len(ends) - 1}" if len(ends) > 1 else "its weights before training"
    assert f"the model is back at {where}" in str(raised.value)


class NaNOnCall(MSELoss):
    """MSE that returns NaN on its n-th call (counting from 1)."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, pred, target):
        self.calls += 1
        value = super().forward(pred, target)
        return value * numpy.float32("nan") if self.calls == self.n else value


def test_the_diverged_error_names_the_epoch_and_the_batch_and_restores_the_epoch_before(rng):
    model = simple_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    after_epoch_1 = []
    history = History()
    with pytest.raises(TrainingDiverged, match=r"the loss became nan in epoch 2, batch 3; the model is back at the "
                                               r"end of epoch 1"):
        fit(model, NaNOnCall(4 + 3), optimizer, uniform(rng, 100), epochs=3, batch_size=32, progress=False,
            history=history, on_epoch_end=lambda epoch, logs: after_epoch_1.append(weights(model)))
    assert optimizer.steps == 4  # the four batches of epoch 1, none of epoch 2
    assert same_weights(model, after_epoch_1[0])
    assert len(history) == 1 and history.unfinished is None


def test_weights_that_overflow_while_the_loss_stays_finite_are_caught_and_undone(digits):
    """One batch per epoch and an absurd learning rate: the only loss computed is finite (it comes before the step),
    but the step leaves inf and NaN weights. The model must not keep them."""
    model = simple_autoencoder(input_dim=64)
    before = weights(model)
    with pytest.raises(TrainingDiverged, match="the weights became NaN or infinite in epoch 1 .*before training"):
        fit(model, MSELoss(), Adam(model.parameters(), lr=1e39), digits.x_train, epochs=1, batch_size=100_000,
            progress=False)
    assert same_weights(model, before)


# --------------------------------------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------------------------------------

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


class CtrlCOnCall(MSELoss):
    """MSE whose n-th call (counting from 1) presses Ctrl-C, as if the user did mid-batch."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, pred, target):
        self.calls += 1
        if self.calls == self.n:
            ctrl_c()
        return super().forward(pred, target)


@pytest.mark.parametrize("call", [2, 6])
def test_ctrl_c_mid_epoch_finishes_the_batch_and_returns_the_history(call, rng):
    model = simple_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    handler = signal.getsignal(signal.SIGINT)
    history = fit(model, CtrlCOnCall(call), optimizer, uniform(rng, 100), epochs=5, batch_size=32, progress=False)
    assert isinstance(history, History)
    assert history.interrupted
    assert optimizer.steps == call  # the batch in flight is finished, then training stops
    assert len(history) == (call - 1) // 4  # only complete epochs are recorded
    assert signal.getsignal(signal.SIGINT) is handler


def test_ctrl_c_in_an_epoch_callback_stops_before_the_next_epoch(rng):
    model = simple_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    handler = signal.getsignal(signal.SIGINT)
    seen = []

    def on_epoch_end(epoch, logs):
        seen.append((epoch, dict(logs)))
        if epoch == 2:
            ctrl_c()

    history = fit(model, MSELoss(), optimizer, uniform(rng, 100), epochs=5, batch_size=32, progress=False,
                  on_epoch_end=on_epoch_end)
    assert history.interrupted
    assert len(history) == 2
    assert [epoch for epoch, _ in seen] == [1, 2]
    assert seen[1][1]["loss"] == history["loss"][1]
    assert signal.getsignal(signal.SIGINT) is handler
    # the weights are those of the two recorded epochs: no batch of a third epoch ran
    assert optimizer.steps == 2 * 4


def test_sigint_handler_is_restored_when_training_fails(rng):
    handler = signal.getsignal(signal.SIGINT)
    model = simple_autoencoder(input_dim=64)
    with pytest.raises(TrainingDiverged):
        fit(model, NaNOnCall(2), Adam(model.parameters()), uniform(rng, 64), epochs=1, batch_size=32,
            progress=False)
    assert signal.getsignal(signal.SIGINT) is handler


# --------------------------------------------------------------------------------------------------------------------
# Progress output
# --------------------------------------------------------------------------------------------------------------------

def test_progress_false_prints_nothing(capsys, rng):
    model = simple_autoencoder(input_dim=64)
    fit(model, MSELoss(), Adam(model.parameters()), uniform(rng, 64), epochs=2, batch_size=16,
        validation=uniform(rng, 8), progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_always_shows_a_bar_on_stderr(capsys, rng):
    model = simple_autoencoder(input_dim=64)
    fit(model, MSELoss(), Adam(model.parameters()), uniform(rng, 64), epochs=1, batch_size=16, progress="always")
    assert "epoch 1" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------------
# evaluate()
# --------------------------------------------------------------------------------------------------------------------

def test_evaluate_is_the_sample_weighted_mean_whatever_the_batch_size(rng):
    model = simple_autoencoder(input_dim=64)
    x = uniform(rng, 100)
    x[96:] = 0.0  # a last, small batch unlike the others: an unweighted mean of batch means would show it
    loss = MSELoss()
    exact = float(numpy.mean((model.reconstruct(x).astype(numpy.float64) - x) ** 2))
    results = [evaluate(model, loss, x, batch_size=size)["loss"] for size in (1, 7, 32, 100, 1024)]
    for result in results:
        assert result == pytest.approx(exact, rel=1e-5)
    batch_means = [float(numpy.mean((model.reconstruct(x[i:i + 32]) - x[i:i + 32]) ** 2)) for i in range(0, 100, 32)]
    assert abs(numpy.mean(batch_means) - exact) > 1e-3 * exact  # the check above can tell the two apart


def test_evaluate_gives_loss_and_accuracy_for_a_classifier(digits):
    model = mlp_classifier(input_dim=64)
    x, y = digits.x_test, digits.y_test
    loss = SoftmaxCrossEntropyLoss()
    by_7, whole = evaluate(model, loss, x, y, batch_size=7), evaluate(model, loss, x, y, batch_size=len(x))
    assert sorted(by_7) == ["accuracy", "loss"]
    assert by_7["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    assert by_7["accuracy"] == whole["accuracy"] == float(numpy.mean(model.predict(x) == y))
    assert math.isfinite(by_7["loss"])


def test_evaluate_puts_a_denoising_model_in_evaluation_mode(rng):
    model = denoising_autoencoder(input_dim=64).train()
    x = uniform(rng, 10)
    result = evaluate(model, MSELoss(), x)["loss"]
    assert model.noisy_batches == 0
    assert result == pytest.approx(float(numpy.mean((model.reconstruct(x) - x) ** 2)), rel=1e-6)


def test_bce_targets_outside_0_1_are_refused_where_data_enters(digits):
    model = simple_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    with pytest.raises(ValueError, match=r"BCELoss compares the outputs with probabilities in \[0, 1\], but the "
                                         r"targets range from 0 to 255"):
        fit(model, BCELoss(), optimizer, (digits.x_train * 255).round(), epochs=1, batch_size=32, progress=False)
    assert optimizer.steps == 0


@pytest.mark.parametrize("make, phrase", [
    (lambda x, y: (x[:0], None), "there are no samples"),
    (lambda x, y: (x.tolist(), None), "must be an array"),
    (lambda x, y: (x, None), "class labels; pass them as y"),
])
def test_evaluate_names_what_is_wrong_with_its_data(digits, make, phrase):
    model = mlp_classifier(input_dim=64)
    x, y = make(digits.x_test, digits.y_test)
    with pytest.raises(ValueError, match=phrase):
        evaluate(model, SoftmaxCrossEntropyLoss(), x, y)


# --------------------------------------------------------------------------------------------------------------------
# A notebook's mistakes, named
# --------------------------------------------------------------------------------------------------------------------

def test_an_optimizer_of_a_model_built_again_is_refused(digits):
    model = simple_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    model = simple_autoencoder(input_dim=64)  # the model's cell run again, the optimizer's not
    with pytest.raises(ValueError, match=r"8 of the optimizer's 8 parameters are not this model's \(was the model "
                                         r"built again.*build the optimizer again on this model: optimizer = "
                                         r"Adam\(model.parameters\(\)\)"):
        fit(model, MSELoss(), optimizer, digits.x_train, epochs=1, batch_size=64, progress=False)
    assert optimizer.steps == 0


def test_an_optimizer_of_part_of_the_model_is_allowed(digits):
    model = simple_autoencoder(input_dim=64)
    frozen = [parameter.data.copy() for parameter in model.encoder.parameters()]
    fit(model, MSELoss(), Adam(model.decoder.parameters()), digits.x_train, epochs=1, batch_size=64, progress=False)
    assert all(numpy.array_equal(parameter.data, old) for parameter, old in zip(model.encoder.parameters(), frozen))


@pytest.mark.parametrize("option, value, phrase", [
    ("progress", "yes", r"progress must be True \(a bar on a terminal\), False or 'always', got 'yes'"),
    ("progress", 1, "progress must be True"),
    ("shuffle", "no", "shuffle must be True or False, got 'no'"),
    ("history", {"loss": []}, "history must be a History"),
    ("on_epoch_end", "print", "on_epoch_end must be a function"),
    ("stop", True, "stop must be a StopRequest"),
])
def test_a_bad_option_of_fit_is_a_clear_value_error(option, value, phrase, rng):
    model = simple_autoencoder(input_dim=64)
    optimizer = Adam(model.parameters())
    with pytest.raises(ValueError, match=phrase):
        fit(model, MSELoss(), optimizer, uniform(rng, 32), epochs=1, batch_size=16, **{"progress": False,
                                                                                        option: value})
    assert optimizer.steps == 0


def test_mse_targets_on_another_scale_than_a_sigmoid_output_are_refused(digits):
    model = simple_autoencoder(input_dim=64)  # its output is a sigmoid
    optimizer = Adam(model.parameters())
    with pytest.raises(ValueError, match=r"the model's output is a sigmoid, between 0 and 1, but the targets range "
                                         r"from 0 to 255, a scale it can never reach \(scale images to \[0, 1\]"):
        fit(model, MSELoss(), optimizer, (digits.x_train * 255).round(), epochs=1, batch_size=32, progress=False)
    assert optimizer.steps == 0
    slightly = numpy.clip(digits.x_train * 1.2 - 0.1, -0.1, 1.1).astype(numpy.float32)  # a little beyond: trains
    fit(model, MSELoss(), optimizer, slightly, epochs=1, batch_size=256, progress=False)
    assert optimizer.steps > 0


def test_mse_targets_beyond_0_1_are_fine_for_an_output_that_is_not_a_sigmoid(rng):
    model = mlp_classifier(input_dim=64, n_classes=64)  # logits: any real number
    targets = (uniform(rng, 32) * 255).round()
    fit(model, MSELoss(), Adam(model.parameters()), uniform(rng, 32), targets, epochs=1, batch_size=16,
        progress=False)

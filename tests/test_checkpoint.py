"""Checkpoints: exact round trips, exact resumption, atomic writes, and clear errors for every bad file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy
import pytest

from scratchae import checkpoint, data
from scratchae.checkpoint import CheckpointError, load, save
from scratchae.losses import MSELoss, SoftmaxCrossEntropyLoss
from scratchae.models import Classifier, DenoisingAutoencoder, denoising_autoencoder, mlp_classifier, simple_autoencoder
from scratchae.optim import SGD, Adam
from scratchae.training import fit



@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits", train_size=300, test_size=100)


@pytest.fixture
def rng() -> numpy.random.Generator:
    return numpy.random.default_rng(20240607)


def assert_same_weights(model_a, model_b) -> None:
    named_a, named_b = model_a.named_parameters(), model_b.named_parameters()
    assert [name for name, _ in named_a] == [name for name, _ in named_b]
    for (name, a), (_, b) in zip(named_a, named_b):
        assert a.data.dtype == b.data.dtype, name
        assert numpy.array_equal(a.data, b.data), name


def trained(builder, digits, *, epochs=2, optimizer=Adam, classifier=False, **options):
    model = builder(input_dim=64, **options)
    opt = optimizer(model.parameters()) if optimizer is Adam else optimizer(model.parameters(), lr=0.05, momentum=0.9)
    loss = SoftmaxCrossEntropyLoss() if classifier else MSELoss()
    y = digits.y_train if classifier else None
    validation = (digits.x_test, digits.y_test) if classifier else digits.x_test
    history = fit(model, loss, opt, digits.x_train, y, epochs=epochs, batch_size=64, validation=validation,
                  progress=False)
    return model, opt, history


@pytest.fixture(scope="module")
def good_file(tmp_path_factory, digits) -> str:
    """A small, valid checkpoint with optimizer state and history, to be damaged by the tests."""
    model, optimizer, history = trained(simple_autoencoder, digits, epochs=1)
    return save(tmp_path_factory.mktemp("good") / "model.npz", model, optimizer, history)


def read_arrays(path) -> dict[str, numpy.ndarray]:
    with numpy.load(path, allow_pickle=False) as file:
        return {name: file[name] for name in file.files}


def rewrite(source, target, *, meta_change=None, array_change=None) -> str:
    """Copy a checkpoint with its meta JSON and/or its arrays changed (as a damaged or foreign writer would)."""
    arrays = read_arrays(source)
    meta = json.loads(str(arrays["meta"]))
    if meta_change is not None:
        meta_change(meta)
    arrays["meta"] = numpy.array(json.dumps(meta))
    if array_change is not None:
        array_change(arrays)
    numpy.savez(target, **arrays)
    return str(target)


# --------------------------------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------------------------------

def test_round_trip_is_bit_exact_for_weights_adam_state_and_history(tmp_path, digits):
    model, optimizer, history = trained(simple_autoencoder, digits)
    path = save(tmp_path / "model.npz", model, optimizer, history, extra={"data": "digits", "loss": "mse"})
    restored = load(path)
    assert_same_weights(model, restored.model)
    assert restored.model.summary() == model.summary()
    assert isinstance(restored.optimizer, Adam)
    assert restored.optimizer.steps == optimizer.steps == 2 * 5
    assert restored.optimizer.hyperparameters() == optimizer.hyperparameters()
    for name in ("m", "v"):
        saved, loaded = optimizer.state_arrays()[name], restored.optimizer.state_arrays()[name]
        assert len(saved) == len(loaded) == len(model.parameters())
        for a, b in zip(saved, loaded):
            assert a.dtype == b.dtype and numpy.array_equal(a, b)
    assert restored.optimizer.params == restored.model.parameters()  # the state belongs to the loaded weights
    assert restored.history.metrics == history.metrics
    assert restored.history.seconds == history.seconds
    assert restored.history.interrupted == history.interrupted
    assert restored.meta["extra"] == {"data": "digits", "loss": "mse"}
    x = digits.x_test[:5]
    assert numpy.array_equal(restored.model.reconstruct(x), model.reconstruct(x))


def test_round_trip_keeps_the_denoising_model_and_its_noise_counter(tmp_path, digits):
    model, optimizer, history = trained(denoising_autoencoder, digits, noise_factor=0.3, seed=4)
    assert model.noisy_batches == 2 * 5
    restored = load(save(tmp_path / "dae.npz", model, optimizer, history)).model
    assert isinstance(restored, DenoisingAutoencoder)
    assert restored.noisy_batches == model.noisy_batches
    assert (restored.noise_factor, restored.seed, restored.clip) == (0.3, 4, (0.0, 1.0))
    assert_same_weights(model, restored)


def test_round_trip_of_a_classifier_with_sgd_momentum(tmp_path, digits):
    model, optimizer, history = trained(mlp_classifier, digits, optimizer=SGD, classifier=True)
    restored = load(save(tmp_path / "clf.npz", model, optimizer, history))
    assert isinstance(restored.model, Classifier)
    assert_same_weights(model, restored.model)
    assert isinstance(restored.optimizer, SGD) and restored.optimizer.momentum == 0.9
    assert restored.optimizer.steps == optimizer.steps
    for a, b in zip(optimizer.velocity, restored.optimizer.velocity):
        assert numpy.array_equal(a, b)
    assert numpy.array_equal(restored.model.predict(digits.x_test), model.predict(digits.x_test))
    assert sorted(restored.history.metrics) == ["accuracy", "loss", "val_accuracy", "val_loss"]


def test_a_model_alone_loads_without_optimizer_or_history(tmp_path):
    model = simple_autoencoder(input_dim=64, seed=9)
    restored = load(save(tmp_path / "bare.npz", model))
    assert restored.optimizer is None and restored.history is None
    assert_same_weights(model, restored.model)


def test_an_optimizer_that_never_stepped_round_trips(tmp_path):
    model = simple_autoencoder(input_dim=64)
    restored = load(save(tmp_path / "fresh.npz", model, Adam(model.parameters(), lr=0.01)))
    assert restored.optimizer.steps == 0 and restored.optimizer.lr == 0.01


@pytest.mark.parametrize("builder", [simple_autoencoder, denoising_autoencoder])
def test_resuming_from_a_checkpoint_repeats_an_uninterrupted_run_exactly(builder, tmp_path, digits):
    straight, _, straight_history = trained(builder, digits, epochs=4)

    first_half, optimizer, history = trained(builder, digits, epochs=2)
    saved = load(save(tmp_path / "half.npz", first_half, optimizer, history))
    resumed_history = fit(saved.model, MSELoss(), saved.optimizer, digits.x_train, epochs=2, batch_size=64,
                          validation=digits.x_test, progress=False, history=saved.history)

    assert len(resumed_history) == 4
    assert_same_weights(straight, saved.model)
    assert saved.optimizer.steps == 4 * 5
    assert resumed_history.metrics == straight_history.metrics


# --------------------------------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("crash", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_crash_mid_save_leaves_the_previous_file_and_no_temporary(crash, tmp_path, monkeypatch):
    model = simple_autoencoder(input_dim=64, seed=1)
    path = save(tmp_path / "model.npz", model)
    good = (tmp_path / "model.npz").read_bytes()

    def crashing_savez(file, *args, **arrays):
        file.write(b"PK\x03\x04 half of a zip file")
        raise crash

    monkeypatch.setattr(checkpoint.numpy, "savez", crashing_savez)
    with pytest.raises(type(crash)):
        save(path, simple_autoencoder(input_dim=64, seed=2))
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    assert (tmp_path / "model.npz").read_bytes() == good
    assert_same_weights(model, load(path).model)


def test_save_creates_missing_folders_and_replaces_an_old_file(tmp_path):
    path = tmp_path / "runs" / "a" / "model.npz"
    save(path, simple_autoencoder(input_dim=64, seed=1))
    newer = simple_autoencoder(input_dim=64, seed=2)
    save(path, newer)
    assert_same_weights(newer, load(path).model)
    assert os.listdir(path.parent) == ["model.npz"]


def test_a_saved_checkpoint_has_the_usual_file_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = save(tmp_path / "model.npz", simple_autoencoder(input_dim=64))
    (tmp_path / "other.txt").write_text("written the ordinary way")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "other.txt").st_mode) == 0o666 & ~umask


# --------------------------------------------------------------------------------------------------------------------
# Bad files: each gives an error that names its problem
# --------------------------------------------------------------------------------------------------------------------

def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load(tmp_path / "nowhere.npz")


def test_a_truncated_file_is_reported_as_damaged(tmp_path, good_file):
    content = Path(good_file).read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(content[:len(content) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load(path)


def test_a_file_of_garbage_is_reported(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a checkpoint\n" * 100)
    with pytest.raises(CheckpointError, match="not a .npz checkpoint"):
        load(path)


def test_a_foreign_npz_is_reported_as_not_a_checkpoint(tmp_path, rng):
    path = tmp_path / "foreign.npz"
    numpy.savez(path, weights=rng.standard_normal((3, 4)), bias=rng.standard_normal(4))
    with pytest.raises(CheckpointError, match="not a scratchae checkpoint"):
        load(path)


def test_a_newer_format_version_is_reported(tmp_path, good_file):
    path = rewrite(good_file, tmp_path / "v99.npz", meta_change=lambda meta: meta.update(version=99))
    with pytest.raises(CheckpointError, match="version 99"):
        load(path)


def test_an_npz_with_a_foreign_meta_is_reported(tmp_path, good_file):
    path = rewrite(good_file, tmp_path / "other.npz", meta_change=lambda meta: meta.update(format="other-tool"))
    with pytest.raises(CheckpointError, match="not a scratchae checkpoint"):
        load(path)


def test_meta_that_is_not_json_is_reported(tmp_path, good_file):
    def break_meta(arrays):
        arrays["meta"] = numpy.array("{not json")

    path = rewrite(good_file, tmp_path / "nojson.npz", array_change=break_meta)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(path)


def _drop_weights(arrays):
    del arrays["param/decoder.2.W"]


def _reshape_weights(arrays):
    arrays["param/encoder.0.b"] = arrays["param/encoder.0.b"][:-1]


def _int_weights(arrays):
    arrays["param/encoder.0.W"] = arrays["param/encoder.0.W"].astype(numpy.int32)


def _double_weights(arrays):
    arrays["param/encoder.0.W"] = arrays["param/encoder.0.W"].astype(numpy.float64)


INCONSISTENT = [
    ("missing weights", None, _drop_weights, "decoder.2.W"),
    ("wrong weight shape", None, _reshape_weights, "encoder.0.b"),
    ("integer weights", None, _int_weights, "encoder.0.W"),
    ("float64 weights in a float32 model", None, _double_weights, "encoder.0.W"),
    ("unknown model type", lambda meta: meta["architecture"].update(type="Transformer"), None, "Transformer"),
    ("unknown layer type", lambda meta: meta["architecture"]["encoder"][1].update(type="Softmax"), None, "Softmax"),
    ("unknown optimizer", lambda meta: meta["optimizer"].update(type="RMSprop"), None, "RMSprop"),
    ("no architecture", lambda meta: meta.pop("architecture"), None, "architecture"),
    ("no history entry", lambda meta: meta.pop("history"), None, "history"),
    ("history of the wrong kind", lambda meta: meta.update(history=[1, 2, 3]), None, "history"),
]


@pytest.mark.parametrize("case, meta_change, array_change, phrase", INCONSISTENT, ids=[c[0] for c in INCONSISTENT])
def test_a_checkpoint_whose_parts_do_not_fit_is_reported(case, meta_change, array_change, phrase, tmp_path, good_file):
    path = rewrite(good_file, tmp_path / "odd.npz", meta_change=meta_change, array_change=array_change)
    with pytest.raises(CheckpointError, match=phrase):
        load(path)


unpickled = []


class Tripwire:
    """Records it if it is ever unpickled: a checkpoint must never run code."""

    def __reduce__(self):
        return unpickled.append, ("unpickled",)


def test_object_arrays_are_refused_without_unpickling(tmp_path, good_file):
    def add_object_array(arrays):
        arrays["param/encoder.0.W"] = numpy.array([Tripwire(), Tripwire()], dtype=object)

    path = rewrite(good_file, tmp_path / "pickled.npz", array_change=add_object_array)
    with pytest.raises(CheckpointError, match="allow_pickle"):
        load(path)
    assert unpickled == []

"""Checkpoints: exact round trips, exact resumption, atomic writes, and clear errors for every bad file."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy
import pytest

from scratchae import checkpoint, data
from scratchae.checkpoint import CheckpointError, load, save
from scratchae.losses import MSELoss, SoftmaxCrossEntropyLoss
from scratchae.layers import Dense, Identity, ReLU, Sigmoid
from scratchae.models import Classifier, DenoisingAutoencoder
from scratchae.builders import BUILDERS, IMAGE_BUILDERS, denoising_autoencoder, mlp_classifier, simple_autoencoder
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
    with pytest.raises(CheckpointError, match="never unpickles") as error:
        load(path)
    assert unpickled == []
    assert "allow_pickle" not in str(error.value)  # no advice to load an untrusted file the way that runs its code


# --------------------------------------------------------------------------------------------------------------------
# Crafted files: loading reads only what it needs, and never allocates what a file only claims
# --------------------------------------------------------------------------------------------------------------------

MiB = 2**20

#: A child process loads one file under an address-space limit this much above what it has mapped after its imports.
ADDRESS_SPACE_BUDGET = 128 * MiB

#: Loads a checkpoint under the limit, and prints the outcome, the growth of its peak memory and the weights' digests.
LOAD_UNDER_A_LIMIT = """
import hashlib, json, resource, sys
from scratchae.checkpoint import load

def mapped_bytes():
    with open("/proc/self/status") as status:
        return 1024 * int(next(line for line in status if line.startswith("VmSize:")).split()[1])

path, budget = sys.argv[1], int(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (mapped_bytes() + budget, hard))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    model = load(path).model
    outcome = {"error": None, "digests": {name: hashlib.sha256(parameter.data.tobytes()).hexdigest()
                                          for name, parameter in model.named_parameters()}}
except Exception as error:
    outcome = {"error": type(error).__name__, "message": str(error)}
outcome["peak_growth_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(outcome))
"""

needs_address_space_limits = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                                reason="reads the address space from Linux's /proc")


def load_in_a_small_address_space(path) -> dict:
    """Load ``path`` in a child process (the limit must not touch the test runner) and return what it printed."""
    result = subprocess.run([sys.executable, "-c", LOAD_UNDER_A_LIMIT, str(path), str(ADDRESS_SPACE_BUDGET)],
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def digests(model) -> dict[str, str]:
    return {name: hashlib.sha256(parameter.data.tobytes()).hexdigest() for name, parameter in model.named_parameters()}


def meta_of(path) -> dict:
    return json.loads(str(read_arrays(path)["meta"]))


#: The feature size of the crafted network's layers: 9000 x 9000 float32 weights take 324 MB.
HUGE = 9000


def huge_meta(good_file) -> dict:
    """The meta of a checkpoint of four HUGE x HUGE Dense layers, without optimizer or history."""
    dense = {"type": "Dense", "in_features": HUGE, "out_features": HUGE, "init": "glorot_uniform"}
    meta = meta_of(good_file)
    meta.update(optimizer=None, history=None, architecture={
        "type": "Autoencoder", "encoder": [dense, {"type": "ReLU"}, dense], "decoder": [dense, {"type": "ReLU"}, dense],
        "counters": {}})
    return meta


def npy_header(shape, dtype="<f4") -> bytes:
    """The header of a ``.npy`` file of this shape and dtype, as numpy writes it."""
    buffer = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def claim_size(path, member: str, size: int, stored_size: int | None = None) -> None:
    """Make the zip's central directory say that the stored ``member`` holds ``size`` bytes, whatever it holds
    (and that ``stored_size`` of them are in the file, the same number unless given)."""
    content = bytearray(Path(path).read_bytes())
    name = member.encode()
    record = content.find(b"PK\x01\x02")
    while content[record + 46:record + 46 + len(name)] != name:  # a central directory record: its name at 46
        record = content.find(b"PK\x01\x02", record + 1)
    sizes = (size if stored_size is None else stored_size, size)  # compressed, then uncompressed, at 20
    content[record + 20:record + 28] = struct.pack("<II", *sizes)
    Path(path).write_bytes(bytes(content))


def _no_weights(path, good_file):
    numpy.savez(path, meta=numpy.array(json.dumps(huge_meta(good_file))))
    return "no weights encoder.0.W"


def _headers_without_data(path, good_file):
    _no_weights(path, good_file)
    with zipfile.ZipFile(path, "a") as archive:
        for part in ("encoder", "decoder"):
            for index in (0, 2):
                archive.writestr(f"param/{part}.{index}.W.npy", npy_header((HUGE, HUGE)))
                archive.writestr(f"param/{part}.{index}.b.npy", npy_header((HUGE,)))
    return "do not make"


def _a_directory_that_claims_the_data(path, good_file):
    _no_weights(path, good_file)
    header = npy_header((HUGE, HUGE))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("param/encoder.0.W.npy", header + bytes(16))
    claim_size(path, "param/encoder.0.W.npy", len(header) + HUGE * HUGE * 4)
    return "more than the file's"


def _compressed_weights_of_the_right_shape(path, good_file):
    """128 MiB of zeros, deflated to a few hundred kilobytes, as the first weights of a 4096-8192-4096 network."""
    meta = huge_meta(good_file)
    meta["architecture"]["encoder"] = [{"type": "Dense", "in_features": 4096, "out_features": 8192}]
    meta["architecture"]["decoder"] = [{"type": "Dense", "in_features": 8192, "out_features": 4096}]
    numpy.savez(path, meta=numpy.array(json.dumps(meta)))
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("param/encoder.0.W.npy", "w", force_zip64=True) as entry:
            entry.write(npy_header((4096, 8192)))
            for _ in range(128):
                entry.write(bytes(MiB))
    return "compressed"


CLAIMS = [_no_weights, _headers_without_data, _a_directory_that_claims_the_data, _compressed_weights_of_the_right_shape]


@needs_address_space_limits
@pytest.mark.parametrize("craft", CLAIMS, ids=[craft.__name__.strip("_") for craft in CLAIMS])
def test_a_file_that_only_claims_large_weights_is_refused_in_a_small_address_space(craft, tmp_path, good_file):
    path = tmp_path / "claims.npz"
    phrase = craft(path, good_file)
    assert os.path.getsize(path) < 2 * MiB
    outcome = load_in_a_small_address_space(path)
    assert outcome["error"] == "CheckpointError", outcome
    assert phrase in outcome["message"] and "claims.npz" in outcome["message"]
    assert outcome["peak_growth_mib"] < 16, outcome


@needs_address_space_limits
def test_a_huge_compressed_extra_entry_is_ignored_without_being_inflated(tmp_path, good_file):
    path = tmp_path / "with-extra.npz"
    shutil.copyfile(good_file, path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("notes.npy", "w", force_zip64=True) as entry:  # 256 MiB of zeros in about a megabyte
            entry.write(npy_header((256 * MiB,), "|u1"))
            for _ in range(256):
                entry.write(bytes(MiB))
    assert os.path.getsize(path) < os.path.getsize(good_file) + 2 * MiB
    outcome = load_in_a_small_address_space(path)
    assert outcome["error"] is None, outcome
    assert outcome["digests"] == digests(load(good_file).model)
    assert outcome["peak_growth_mib"] < 16, outcome


def test_unknown_entries_are_ignored_unread(tmp_path, good_file):
    def add_extras(arrays):
        arrays["notes"] = numpy.array([Tripwire()], dtype=object)  # reading it would be refused, or unpickle it
        arrays["optim/m/99"] = numpy.full(3, numpy.nan)  # beyond the model's parameters: not state of any of them

    path = rewrite(good_file, tmp_path / "extras.npz", array_change=add_extras)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("junk.npy", b"not an array at all")
    assert_same_weights(load(good_file).model, load(path).model)
    assert unpickled == []


def test_a_compressed_checkpoint_is_refused_before_anything_is_inflated(tmp_path, good_file):
    path = tmp_path / "compressed.npz"
    numpy.savez_compressed(path, **read_arrays(good_file))
    with pytest.raises(CheckpointError, match="entry meta is compressed") as error:
        load(path)
    assert "compressed.npz" in str(error.value)


def test_a_weight_saved_in_fortran_order_loads_bit_exact(tmp_path):
    model = simple_autoencoder(input_dim=64, seed=3)
    weights = model.encoder.layers[0].W
    weights.data = numpy.asfortranarray(weights.data)
    restored = load(save(tmp_path / "fortran.npz", model)).model
    assert_same_weights(model, restored)
    assert restored.encoder.layers[0].W.data.flags.f_contiguous


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_weights_an_architecture_expects_are_those_its_model_has(name):
    model = BUILDERS[name](**({"image_shape": (1, 8, 8)} if name in IMAGE_BUILDERS else {"input_dim": 64}))
    expected = checkpoint.expected_parameters(json.loads(json.dumps(model.config())))
    assert expected == {key: parameter.data.shape for key, parameter in model.named_parameters()}


@pytest.mark.parametrize("layer", [Dense(3, 2), ReLU(), Sigmoid(), Identity()], ids=lambda layer: type(layer).__name__)
def test_the_options_a_layer_config_may_hold_are_those_the_layer_saves(layer):
    assert sorted(layer.config()) == sorted(checkpoint.LAYER_OPTIONS[type(layer).__name__])


# --------------------------------------------------------------------------------------------------------------------
# Crafted files: every one is a CheckpointError that names the file
# --------------------------------------------------------------------------------------------------------------------

def _edit_meta_text(edit):
    """An array_change for rewrite() that edits the meta's JSON text itself (for what json.dumps cannot write)."""
    def change(arrays):
        arrays["meta"] = numpy.array(edit(str(arrays["meta"])))
    return change


def _replace_in_meta(old: str, new: str):
    return _edit_meta_text(lambda text: text.replace(old, new, 1))


def _set_layer(part, index, **options):
    return lambda meta: meta["architecture"][part][index].update(options)


def _object_meta(arrays):
    arrays["meta"] = numpy.array([Tripwire()], dtype=object)


def _long_meta(arrays):
    arrays["meta"] = numpy.array(str(arrays["meta"]) + " " * checkpoint.MAX_META_CHARACTERS)


LONG = "9" * 5000  # more digits than Python turns into an int

DEEP = "[" * 10**5 + "]" * 10**5  # deeper than Python's recursion limit

CRAFTED = [
    ("a long number", None, _replace_in_meta('"in_features": 64', f'"in_features": {LONG}'), "number too long"),
    ("deep nesting", None, _replace_in_meta('"extra": {}', f'"extra": {DEEP}'), "nested too deeply"),
    ("a meta that is a list", None, _edit_meta_text(lambda text: "[1, 2]"), "not a scratchae checkpoint"),
    ("an object array as meta", None, _object_meta, "never unpickles"),
    ("a meta that is a number", None, lambda arrays: arrays.update(meta=numpy.array(3.0)), "not the JSON text"),
    ("a meta text beyond the bound", None, _long_meta, "at most"),
    ("version 0", lambda meta: meta.update(version=0), None, "format version must be a whole number >= 1"),
    ("version true", lambda meta: meta.update(version=True), None, "format version must be a whole number >= 1"),
    ("an unknown dtype", lambda meta: meta.update(dtype="complex128"), None, "dtype is 'complex128'"),
    ("no dtype", lambda meta: meta.pop("dtype"), None, "no 'dtype' entry"),
    ("extra as a list", lambda meta: meta.update(extra=[1]), None, "extra information should be a mapping"),
    ("architecture as a list", lambda meta: meta.update(architecture=[]), None, "architecture should be a mapping"),
    ("a layer as a list", lambda meta: meta["architecture"]["encoder"].__setitem__(0, [64, 128]), None,
     "layer encoder.0 should be a mapping"),
    ("a part as a mapping", lambda meta: meta["architecture"].update(decoder={}), None, "decoder should be a list"),
    ("a missing part", lambda meta: meta["architecture"].pop("decoder"), None, "no 'decoder' entry"),
    ("an empty part", lambda meta: meta["architecture"].update(decoder=[]), None, "decoder has no layers"),
    ("an encoder without a Dense layer", lambda meta: meta["architecture"].update(encoder=[{"type": "ReLU"}]), None,
     "encoder has no Dense layer"),
    ("a huge feature count", _set_layer("encoder", 0, out_features=10**30), None, "at most 16,777,216"),
    ("a fractional size", _set_layer("encoder", 0, in_features=64.0), None, "whole number"),
    ("a size of true", _set_layer("encoder", 0, in_features=True), None, "whole number"),
    ("a size of zero", _set_layer("decoder", 2, out_features=0), None, "whole number >= 1"),
    ("a missing size", lambda meta: meta["architecture"]["encoder"][0].pop("in_features"), None, "no 'in_features'"),
    ("layers that do not chain", _set_layer("encoder", 2, in_features=100), None, "takes 100 features"),
    ("an unknown init", _set_layer("encoder", 0, init="orthogonal"), None, "unknown init 'orthogonal'"),
    ("an unknown layer option", _set_layer("encoder", 1, slope=0.1), None, "no option 'slope'"),
    ("a layer type that is a list", _set_layer("encoder", 1, type=["ReLU"]), None, "unknown layer type a list"),
    ("a model type that is a list", lambda meta: meta["architecture"].update(type=[]), None, "unknown model type"),
    ("an option the model does not take", lambda meta: meta["architecture"].update(noise_factor=0.5), None,
     "refused by it"),
    ("counters as a list", lambda meta: meta["architecture"].update(counters=[]), None, "counters should be a mapping"),
    ("a counter the model does not keep", lambda meta: meta["architecture"].update(counters={"noisy_batches": 3}), None,
     "keeps no counter"),
]


def _crafted_denoising(path, change):
    """A denoising model's checkpoint with its architecture changed: for the options only that model has."""
    model = denoising_autoencoder(input_dim=64, seed=2)
    save(path, model)
    return rewrite(path, path, meta_change=lambda meta: change(meta["architecture"]))


DENOISING = [
    ("noise that is a word", lambda arch: arch.update(noise_factor="loud"), "refused by it"),
    ("negative noise", lambda arch: arch.update(noise_factor=-1.0), "noise_factor must be a finite number >= 0"),
    ("a clip of one number", lambda arch: arch.update(clip=[0.0]), "refused by it"),
    ("a clip of three numbers", lambda arch: arch.update(clip=[0.0, 1.0, 2.0]), "not what it keeps"),
    ("a fractional seed", lambda arch: arch.update(seed=1.5), "seed must be a whole number >= 0"),
    ("a negative counter", lambda arch: arch["counters"].update(noisy_batches=-1), "whole number >= 0"),
]


@pytest.mark.parametrize("case, meta_change, array_change, phrase", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_a_crafted_meta_is_a_checkpoint_error_that_names_the_file(case, meta_change, array_change, phrase, tmp_path,
                                                                  good_file):
    path = rewrite(good_file, tmp_path / "crafted.npz", meta_change=meta_change, array_change=array_change)
    with pytest.raises(CheckpointError, match=re.escape(phrase)) as error:
        load(path)
    assert "crafted.npz" in str(error.value) and "allow_pickle" not in str(error.value)


@pytest.mark.parametrize("case, change, phrase", DENOISING, ids=[c[0] for c in DENOISING])
def test_crafted_model_options_are_refused_by_the_model(case, change, phrase, tmp_path):
    path = _crafted_denoising(tmp_path / "dae.npz", change)
    with pytest.raises(CheckpointError, match=re.escape(phrase)) as error:
        load(path)
    assert "dae.npz" in str(error.value)


def test_a_denoising_counter_where_early_checkpoints_kept_it_still_loads(tmp_path):
    model = denoising_autoencoder(input_dim=64, seed=2)
    model.noisy_batches = 7

    def move_the_counter(meta):
        meta["architecture"]["noisy_batches"] = meta["architecture"].pop("counters")["noisy_batches"]

    path = rewrite(save(tmp_path / "early.npz", model), tmp_path / "early.npz", meta_change=move_the_counter)
    assert load(path).model.noisy_batches == 7


def test_an_npy_file_named_npz_is_reported(tmp_path, rng):
    path = tmp_path / "array.npz"
    with open(path, "wb") as file:
        numpy.save(file, rng.standard_normal((3, 4)))
    with pytest.raises(CheckpointError, match="not a .npz checkpoint") as error:
        load(path)
    assert "array.npz" in str(error.value)


def _replace_entry(path, member: str, content: bytes) -> None:
    rewrite(path, path, array_change=lambda arrays: arrays.pop(member.removesuffix(".npy")))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(member, content)


def _unreadable_header(path):
    _replace_entry(path, "param/encoder.0.W.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4}  \n")


def _npy_format_3(path):
    _replace_entry(path, "param/encoder.0.W.npy", b"\x93NUMPY\x03\x00" + npy_header((64, 128))[8:])


def _flipped_byte(path):
    """One byte of the weights' data changed, as a bad disk would: the zip's checksum no longer matches."""
    weights = read_arrays(path)["param/decoder.0.W"]
    content = bytearray(Path(path).read_bytes())
    at = content.find(weights.tobytes())
    content[at + 100] ^= 0xFF
    Path(path).write_bytes(bytes(content))


def _data_cut_short(path):
    """An entry 8 bytes short of its array, whose zip record says it has them all but stores only what it has."""
    bias = read_arrays(path)["param/decoder.0.b"]
    content = npy_header(bias.shape) + bias.tobytes()[:-8]
    _replace_entry(path, "param/decoder.0.b.npy", content)
    claim_size(path, "param/decoder.0.b.npy", len(content) + 8, stored_size=len(content))


DAMAGED_ENTRIES = [
    (_unreadable_header, "entry param/encoder.0.W is damaged or truncated (Cannot parse header"),
    (_npy_format_3, "entry param/encoder.0.W is damaged or truncated (.npy format version 3.0"),
    (_flipped_byte, "entry param/decoder.0.W is damaged or truncated (Bad CRC-32"),
    (_data_cut_short, "entry param/decoder.0.b is damaged or truncated (the data end after"),
]


@pytest.mark.parametrize("damage, phrase", DAMAGED_ENTRIES, ids=[c[0].__name__.strip("_") for c in DAMAGED_ENTRIES])
def test_a_damaged_entry_is_reported_by_its_name(damage, phrase, tmp_path, good_file):
    path = tmp_path / "damaged.npz"
    shutil.copyfile(good_file, path)
    damage(path)
    with pytest.raises(CheckpointError, match=re.escape(phrase)) as error:
        load(path)
    assert "damaged.npz" in str(error.value)


# --------------------------------------------------------------------------------------------------------------------
# Crafted files: weights, optimizer state and history are checked
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [numpy.nan, numpy.inf, -numpy.inf])
def test_weights_that_are_not_finite_are_refused(value, tmp_path, good_file):
    def spoil(arrays):
        arrays["param/decoder.2.b"][5] = value

    path = rewrite(good_file, tmp_path / "nan.npz", array_change=spoil)
    with pytest.raises(CheckpointError, match="weights decoder.2.b hold NaN or infinite values"):
        load(path)


def _set_optimizer(**fields):
    return lambda meta: meta["optimizer"].update(fields)


def _set_hyperparameters(**hyperparameters):
    return lambda meta: meta["optimizer"]["hyperparameters"].update(hyperparameters)


def _drop_state(key):
    return lambda arrays: arrays.pop(key)


def _change_state(key, change):
    def apply(arrays):
        arrays[key] = change(arrays[key])
    return apply


def _drop_all_state(arrays):
    for key in [key for key in arrays if key.startswith("optim/")]:
        del arrays[key]


def _nan_at_start(array):
    array = array.copy()
    array.flat[0] = numpy.nan
    return array


OPTIMIZER_STATE = [
    ("negative steps", _set_optimizer(steps=-1), None, "steps must be a whole number >= 0"),
    ("fractional steps", _set_optimizer(steps=2.5), None, "steps must be a whole number"),
    ("steps of true", _set_optimizer(steps=True), None, "steps must be a whole number"),
    ("steps missing", lambda meta: meta["optimizer"].pop("steps"), None, "no 'steps' entry"),
    ("the optimizer as a list", lambda meta: meta.update(optimizer=["Adam"]), None, "optimizer should be a mapping"),
    ("hyperparameters as a list", _set_optimizer(hyperparameters=[0.001]), None, "should be a mapping"),
    ("a negative learning rate", _set_hyperparameters(lr=-1.0), None, "lr must be a finite number > 0"),
    ("a learning rate that is a word", _set_hyperparameters(lr="fast"), None, "lr must be a finite number"),
    ("a NaN learning rate", _set_hyperparameters(lr=float("nan")), None, "lr must be a finite number"),
    ("three betas", _set_hyperparameters(betas=[0.9, 0.99, 0.999]), None, "refused by Adam"),
    ("a hyperparameter Adam does not take", _set_hyperparameters(momentum=0.9), None, "refused by Adam"),
    ("a missing moment", None, _drop_state("optim/m/3"), "lacks 1 of its 16 state arrays (first optim/m/3)"),
    ("no moments after steps", None, _drop_all_state, "lacks 16 of its 16"),
    ("some moments before any step", _set_optimizer(steps=0), _drop_state("optim/v/0"), "has taken 0 steps"),
    ("a moment of another shape", None, _change_state("optim/v/2", lambda array: array[:, :-1]),
     "optimizer state v of encoder.2.W are float32 of shape (128, 31)"),
    ("a moment of another dtype", None, _change_state("optim/m/1", lambda array: array.astype(numpy.float64)),
     "optimizer state m of encoder.0.b are float64"),
    ("a NaN moment", None, _change_state("optim/m/5", _nan_at_start), "optimizer state m of decoder.0.b hold NaN"),
    ("an infinite moment", None, _change_state("optim/v/7", lambda array: array + numpy.inf),
     "optimizer state v of decoder.2.b hold NaN"),
]


@pytest.mark.parametrize("case, meta_change, array_change, phrase", OPTIMIZER_STATE,
                         ids=[c[0] for c in OPTIMIZER_STATE])
def test_optimizer_state_that_does_not_fit_is_refused(case, meta_change, array_change, phrase, tmp_path, good_file):
    path = rewrite(good_file, tmp_path / "optim.npz", meta_change=meta_change, array_change=array_change)
    with pytest.raises(CheckpointError, match=re.escape(phrase)) as error:
        load(path)
    assert "optim.npz" in str(error.value)


def test_an_optimizer_that_never_stepped_may_keep_all_its_state(tmp_path, good_file):
    path = rewrite(good_file, tmp_path / "zero-steps.npz", meta_change=_set_optimizer(steps=0))
    restored = load(path).optimizer
    assert restored.steps == 0 and all(array is not None for array in restored.m + restored.v)


def _set_history(**fields):
    return lambda meta: meta["history"].update(fields)


UNFINISHED = {"batches": 2, "sums": {"loss": 12.5}, "samples": 128, "seconds": 0.25}

HISTORIES = [
    ("metrics as a list", _set_history(metrics=[0.1, 0.2]), "metrics should be a mapping"),
    ("a metric that is not a list", _set_history(metrics={"loss": 0.1}), "history's loss should be a list"),
    ("metrics of different lengths", _set_history(metrics={"loss": [0.1, 0.2], "val_loss": [0.1]}),
     "different lengths"),
    ("a metric that is a word", _set_history(metrics={"loss": ["low"]}), "history's loss must be a finite number"),
    ("a NaN metric", _set_history(metrics={"loss": [float("nan")]}), "must be a finite number"),
    ("a metric of true", _set_history(metrics={"loss": [True]}), "must be a finite number"),
    ("seconds as a mapping", _set_history(seconds={}), "seconds should be a list"),
    ("negative seconds", _set_history(seconds=[-1.0]), "seconds must be a finite number >= 0"),
    ("interrupted as a word", _set_history(interrupted="yes"), "true or false"),
    ("unfinished as a list", _set_history(unfinished=[2, 128]), "unfinished epoch should be a mapping"),
    ("unfinished without sums", _set_history(unfinished={"batches": 2, "samples": 128, "seconds": 0.25}),
     "not batches, samples, seconds and sums"),
    ("unfinished with negative batches", _set_history(unfinished={**UNFINISHED, "batches": -1}), "whole number >= 0"),
    ("unfinished with fractional samples", _set_history(unfinished={**UNFINISHED, "samples": 12.5}), "whole number"),
    ("unfinished with sums as a list", _set_history(unfinished={**UNFINISHED, "sums": [12.5]}),
     "sums should be a mapping"),
    ("unfinished with a NaN sum", _set_history(unfinished={**UNFINISHED, "sums": {"loss": float("nan")}}),
     "sum of loss must be a finite number"),
    ("fewer samples than batches", _set_history(unfinished={**UNFINISHED, "samples": 1}), "does not add up"),
    ("sums before any batch", _set_history(unfinished={**UNFINISHED, "batches": 0, "samples": 0}), "does not add up"),
    ("batches without a running loss", _set_history(unfinished={**UNFINISHED, "sums": {"accuracy": 1.0}}),
     "does not add up"),
]


@pytest.mark.parametrize("case, meta_change, phrase", HISTORIES, ids=[c[0] for c in HISTORIES])
def test_a_history_that_is_not_a_record_of_epochs_is_refused(case, meta_change, phrase, tmp_path, good_file):
    path = rewrite(good_file, tmp_path / "history.npz", meta_change=meta_change)
    with pytest.raises(CheckpointError, match=re.escape(phrase)) as error:
        load(path)
    assert "history.npz" in str(error.value)


def test_the_history_of_an_interrupted_epoch_round_trips(tmp_path, good_file):
    path = rewrite(good_file, tmp_path / "interrupted.npz",
                   meta_change=_set_history(interrupted=True, unfinished=UNFINISHED))
    history = load(path).history
    assert history.interrupted and history.unfinished == UNFINISHED


def test_architectures_whose_sizes_do_not_fit_together_are_refused(tmp_path):
    from scratchae.builders import variational_autoencoder

    for make, phrase in ((lambda arch: arch["mu_head"][0].update(out_features=5), "a Gaussian has one of each"),
                         (lambda arch: arch["decoder"][-2].update(out_features=32), "gives back as many as it takes")):
        vae = variational_autoencoder(4, hidden_dim=8, input_dim=16)
        path = save(tmp_path / "vae.npz", vae)
        with numpy.load(path, allow_pickle=False) as file:
            arrays = {name: file[name] for name in file.files}
        meta = json.loads(str(arrays["meta"]))
        make(meta["architecture"])
        arrays["meta"] = numpy.array(json.dumps(meta))
        numpy.savez(path, **arrays)
        with pytest.raises(CheckpointError, match=phrase):
            load(path)

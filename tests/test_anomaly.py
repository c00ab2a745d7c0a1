"""Anomaly detection: scores, AUROC on synthetic data whose anomalies are known, the threshold, a learner's own
images, and the commands ``train --normal-class`` and ``anomaly`` on good and bad input."""

from __future__ import annotations

import json

import numpy
import pytest

from scratchae import anomaly, builders, checkpoint
from scratchae.anomaly import AnomalyError
from scratchae.backend import random_generator, standard_normal_like
from scratchae.cli import main
from scratchae.losses import MSELoss, VAELoss
from scratchae.optim import Adam
from scratchae.training import fit

D = 36  # 6 x 6 synthetic images


def normal_images(rng, n):
    """Images made of 3 fixed patterns mixed at random: a 3-d family that a code of 3 numbers can rebuild."""
    patterns = numpy.random.default_rng(99).uniform(0.0, 1.0, (3, D))
    weights = rng.dirichlet(numpy.ones(3), size=n)  # (n, 3), each row sums to 1: pixels stay in [0, 1]
    return (weights @ patterns).astype(numpy.float32)


def trained_autoencoder(x):
    model = builders.simple_autoencoder(3, input_dim=D, hidden_dim=16, seed=0)
    fit(model, MSELoss(), Adam(model.parameters(), lr=3e-3), x, epochs=60, batch_size=32, progress=False)
    return model


@pytest.fixture(scope="module")
def synthetic():
    rng = numpy.random.default_rng(0)
    model = trained_autoencoder(normal_images(rng, 512))
    return model, rng


def test_an_obvious_anomaly_scores_near_one_and_no_anomaly_near_one_half(synthetic):
    model, rng = synthetic
    normal, noise = normal_images(rng, 300), rng.uniform(0.0, 1.0, (300, D)).astype(numpy.float32)
    scores = anomaly.reconstruction_errors(model, numpy.concatenate([normal, noise]))
    is_anomaly = numpy.repeat([False, True], 300)
    assert anomaly.auroc(scores, is_anomaly) > 0.99
    same = anomaly.reconstruction_errors(model, normal_images(rng, 600))  # "anomalies" of the normal kind
    assert abs(anomaly.auroc(same, rng.permutation(is_anomaly)) - 0.5) < 0.08


def test_scores_are_per_image_mean_squared_errors_and_repeat_exactly(synthetic):
    model, rng = synthetic
    x = normal_images(rng, 50)
    scores = anomaly.reconstruction_errors(model, x, batch_size=7)
    expected = numpy.mean((model.reconstruct(x).astype(numpy.float64) - x) ** 2, axis=1)
    numpy.testing.assert_allclose(scores, expected, rtol=1e-6)
    numpy.testing.assert_array_equal(scores, anomaly.reconstruction_errors(model, x, batch_size=7))


def test_a_vaes_score_is_its_negative_elbo_per_image_and_repeats():
    rng = numpy.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, (20, D)).astype(numpy.float32)
    vae = builders.variational_autoencoder(4, hidden_dim=8, input_dim=D, seed=3)
    scores = anomaly.anomaly_scores(vae, x)
    batch_rng = random_generator((anomaly.ELBO_SEED, 0, 0), like=x)
    eps = standard_normal_like(x, batch_rng, shape=(20, 4))  # the draw the score makes for the first batch
    expected = float(VAELoss("bce").forward(vae.forward(x, eps=eps), x))  # the mean over the batch
    assert scores.shape == (20,) and float(numpy.mean(scores)) == pytest.approx(expected, rel=1e-5)
    numpy.testing.assert_array_equal(scores, anomaly.anomaly_scores(vae, x))
    assert anomaly.score_name(vae).startswith("negative ELBO")


def test_auroc_and_roc_come_from_scikit_learn_and_need_both_kinds():
    from sklearn.metrics import roc_auc_score

    scores, flags = numpy.array([0.1, 0.4, 0.35, 0.8]), numpy.array([False, False, True, True])
    assert anomaly.auroc(scores, flags) == roc_auc_score(flags, scores) == 0.75
    fpr, tpr, _ = anomaly.roc(scores, flags)
    assert fpr[0] == 0.0 and tpr[-1] == 1.0
    with pytest.raises(AnomalyError, match="normal and anomalous"):
        anomaly.auroc(scores, numpy.zeros(4, dtype=bool))


def test_the_threshold_keeps_the_asked_share_of_normal_images_and_says_what_it_costs():
    normal = numpy.arange(1, 101, dtype=float)  # 1 .. 100
    threshold = anomaly.threshold_for_recall(normal, 0.95)
    assert threshold == 95.0 and numpy.mean(normal <= threshold) >= 0.95
    scores = numpy.concatenate([normal, [50.0, 99.0, 200.0]])
    flags = numpy.concatenate([numpy.zeros(100, bool), numpy.ones(3, bool)])
    costs = anomaly.threshold_costs(scores, flags, threshold)
    assert (costs["false_alarms"], costs["misses"], costs["anomalies"]) == (5, 1, 3)
    assert costs["false_alarm_rate"] == 0.05 and costs["miss_rate"] == pytest.approx(1 / 3)


def test_extremes_are_the_lowest_and_highest_scores_in_order():
    most_normal, most_anomalous = anomaly.extremes(numpy.array([0.5, 0.1, 0.9, 0.3, 0.7]), 2)
    assert most_normal.tolist() == [1, 3] and most_anomalous.tolist() == [2, 4]


def test_one_class_refuses_a_missing_or_empty_class():
    x, labels = numpy.zeros((4, 2)), numpy.array([0, 0, 1, 1])
    assert len(anomaly.one_class(x, labels, 1)) == 2
    with pytest.raises(AnomalyError, match="no image of class 2"):
        anomaly.one_class(x, labels, 2)
    with pytest.raises(AnomalyError, match="classes are 0 to 9"):
        anomaly.check_normal_class(10, 10, "mnist")


# ---------------------------------------------------------------------------------------------------------------
# A learner's own images


def test_own_images_from_png_files_and_arrays(tmp_path):
    from PIL import Image

    folder = tmp_path / "pngs"
    folder.mkdir()
    pixels = numpy.arange(64, dtype=numpy.uint8).reshape(8, 8) * 4
    Image.fromarray(pixels).save(folder / "b.png")
    Image.fromarray(255 - pixels).save(folder / "a.png")
    images, names = anomaly.read_images(folder, (8, 8))
    assert names == ["a.png", "b.png"] and images.shape == (2, 64) and images.dtype == numpy.float32
    numpy.testing.assert_allclose(images[1], pixels.reshape(-1) / 255.0, rtol=1e-6)
    numpy.save(tmp_path / "bytes.npy", numpy.stack([pixels, pixels]))
    numpy.testing.assert_allclose(anomaly.read_images(tmp_path / "bytes.npy", (8, 8))[0], images[[1, 1]], rtol=1e-6)
    numpy.savez(tmp_path / "named.npz", images=images, labels=numpy.array([1, 2]))
    assert anomaly.read_images(tmp_path / "named.npz", (8, 8))[1] == ["named.npz[0]", "named.npz[1]"]


@pytest.mark.parametrize("make, words", [
    (lambda p: numpy.save(p / "x.npy", numpy.zeros((3, 7, 8))), "do not fit the model, which takes 8 x 8"),
    (lambda p: numpy.save(p / "x.npy", numpy.full((2, 64), 1.5)), "range from 1.5 to 1.5, but must lie in [0, 1]"),
    (lambda p: numpy.save(p / "x.npy", numpy.full((2, 64), 300)), "must lie in 0 to 255"),
    (lambda p: numpy.save(p / "x.npy", numpy.full((2, 64), numpy.nan)), "NaN"),
    (lambda p: numpy.savez(p / "x.npz", a=numpy.zeros((1, 64)), b=numpy.zeros(1)), "name the images"),
    (lambda p: (p / "x.npy").write_text("not numpy"), "not an array of numbers (it holds text or pickled"),
    (lambda p: numpy.save(p / "x.npy", numpy.array([{"a": 1}], dtype=object)), "not an array of numbers"),
    (lambda p: numpy.save(p / "x.npy", numpy.zeros((0, 8, 8))), "holds no images (an array of shape (0, 8, 8))"),
    (lambda p: (p / "x.npz").write_bytes(b"PK\x03\x04" + b"junk" * 20), "not a readable NumPy file"),
    (lambda p: (p / "x.npz").write_bytes(b"\x93NUMPY" + b"\x00" * 20), "not a readable NumPy file"),
])
def test_wrong_own_images_are_named_in_one_line(tmp_path, make, words):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(AnomalyError) as raised:
        anomaly.read_images(path, (8, 8))
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_an_npy_file_named_npz_is_read_as_what_it_is(tmp_path):
    images = numpy.full((2, 8, 8), 0.5, dtype=numpy.float32)
    numpy.save(tmp_path / "x.npy", images)
    (tmp_path / "x.npy").rename(tmp_path / "renamed.npz")
    numpy.testing.assert_array_equal(anomaly.read_images(tmp_path / "renamed.npz", (8, 8))[0], images.reshape(2, 64))


def test_an_image_too_large_to_open_safely_is_named_in_one_line(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "pngs"
    folder.mkdir()
    Image.fromarray(numpy.zeros((64, 64), dtype=numpy.uint8)).save(folder / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses images of more than twice this many pixels
    with pytest.raises(AnomalyError, match=r"big.png: not a readable PNG image \(.*decompression bomb"):
        anomaly.read_images(folder, (8, 8))


def test_pngs_of_the_wrong_size_and_empty_folders_are_refused(tmp_path):
    from PIL import Image

    Image.fromarray(numpy.zeros((9, 8), numpy.uint8)).save(tmp_path / "tall.png")
    with pytest.raises(AnomalyError, match="tall.png: the image is 8 x 9 pixels, but the model takes 8 x 8"):
        anomaly.read_images(tmp_path, (8, 8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnomalyError, match="holds no PNG images"):
        anomaly.read_images(tmp_path / "empty", (8, 8))


# ---------------------------------------------------------------------------------------------------------------
# The commands


@pytest.fixture(scope="module")
def one_class_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "threes"
    assert main(["train", "--model", "simple", "--data", "digits", "--normal-class", "3", "--epochs", "3",
                 "--out", str(out)]) == 0
    return out


def test_train_normal_class_trains_on_that_class_and_records_it(one_class_run):
    from scratchae import checkpoint, data
    from scratchae.cli.train import _load_data, _recorded_settings

    settings = _recorded_settings(checkpoint.load(one_class_run / "model.npz").meta)
    assert settings["normal_class"] == 3
    run_data, digits = _load_data(settings), data.load("digits")
    assert set(run_data.y_train.tolist()) == {3}
    numpy.testing.assert_array_equal(run_data.x_train, digits.x_train[digits.y_train == 3])
    numpy.testing.assert_array_equal(run_data.y_test, digits.y_test)  # the test set stays whole
    manifest = json.loads((one_class_run / "run.json").read_text())
    assert manifest["epochs"] == 3


def test_anomaly_writes_its_report_and_figures_and_repeats_exactly(one_class_run, tmp_path, capsys):
    assert main(["anomaly", str(one_class_run), "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "class 3 as normal: AUROC" in printed and "false alarms" in printed
    report = json.loads((tmp_path / "a" / "anomaly.json").read_text())
    labels, scores = numpy.array(report["labels"]), numpy.array(report["scores"])
    assert report["normal_class"] == 3 and report["data"] == "digits" and len(scores) == len(labels) == 360
    assert report["auroc"] == pytest.approx(anomaly.auroc(scores, labels != 3)) and report["auroc"] > 0.6
    normal = scores[labels == 3]
    assert numpy.mean(normal <= report["threshold"]["threshold"]) >= 0.95
    for figure in ("anomaly_roc.png", "anomaly_histogram.png", "anomaly_extremes.png"):
        assert (tmp_path / "a" / figure).read_bytes().startswith(b"\x89PNG")
    assert main(["anomaly", str(one_class_run), "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "anomaly.json").read_text())
    assert again["scores"] == report["scores"] and again["auroc"] == report["auroc"]


def test_anomaly_scores_a_learners_images(one_class_run, tmp_path, capsys):
    from scratchae import data

    digits = data.load("digits")
    mine = numpy.concatenate([digits.x_test[digits.y_test == 3][:2], numpy.ones((1, 64), numpy.float32)])
    numpy.save(tmp_path / "mine.npy", mine.reshape(3, 8, 8))
    assert main(["anomaly", str(one_class_run), str(tmp_path / "mine.npy"), "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "anomaly_images.json").read_text())
    assert [image["name"] for image in record["images"]] == ["mine.npy[0]", "mine.npy[1]", "mine.npy[2]"]
    assert record["images"][2]["anomalous"] and record["images"][2]["score"] > record["images"][0]["score"]
    assert "mine.npy[2]" in capsys.readouterr().out
    assert main(["anomaly", str(one_class_run), "--out", str(tmp_path)]) == 0  # again, without the images
    assert not (tmp_path / "anomaly_images.json").exists()  # their scores, against the earlier threshold, are gone
    assert f"removed {tmp_path / 'anomaly_images.json'}" in capsys.readouterr().out
    (tmp_path / "anomaly_images.json").write_text("my own notes")
    assert main(["anomaly", str(one_class_run), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "anomaly_images.json").read_text() == "my own notes"  # a learner's file of that name stays


@pytest.mark.parametrize("arguments, words", [
    (["train", "--data", "digits", "--normal-class", "10"], "--normal-class 10: digits has no class 10: its classes "
                                                            "are 0 to 9"),
    (["train", "--data", "digits", "--normal-class", "9", "--train-size", "5"], "holds no image of class 9"),
    (["train", "--model", "classifier", "--data", "digits", "--normal-class", "1"],
     "--normal-class does not apply to --model classifier"),
])
def test_train_refuses_a_class_that_does_not_exist_or_is_empty(tmp_path, capsys, arguments, words):
    assert main([*arguments, "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert words in error and "Traceback" not in error
    assert not (tmp_path / "run" / "model.npz").exists()


def test_anomaly_refuses_bad_input_in_one_line(one_class_run, tmp_path, capsys):
    assert main(["anomaly", str(tmp_path)]) == 2
    assert f"no checkpoint at {tmp_path / 'model.npz'}" in capsys.readouterr().err
    numpy.save(tmp_path / "wrong.npy", numpy.zeros((2, 28, 28)))
    assert main(["anomaly", str(one_class_run), str(tmp_path / "wrong.npy"), "--out", str(tmp_path)]) == 2
    assert "do not fit the model, which takes 8 x 8 images" in capsys.readouterr().err
    assert not (tmp_path / "anomaly.json").exists()  # a wrong file is said before anything is written
    everything = tmp_path / "all"
    assert main(["train", "--data", "digits", "--epochs", "1", "--out", str(everything)]) == 0
    capsys.readouterr()
    assert main(["anomaly", str(everything)]) == 2
    error = capsys.readouterr().err
    assert "trained on every class" in error and "--normal-class" in error and len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("model, score", [("vae", "negative ELBO"), ("sparse", "reconstruction MSE"),
                                          ("denoising", "reconstruction MSE")])
def test_anomaly_scores_every_kind_of_autoencoder_with_its_own_score(tmp_path, capsys, model, score):
    out = tmp_path / model
    assert main(["train", "--model", model, "--data", "digits", "--normal-class", "5", "--epochs", "1",
                 "--out", str(out)]) == 0
    assert main(["anomaly", str(out)]) == 0
    report = json.loads((out / "anomaly.json").read_text())
    assert report["score"].startswith(score) and 0.0 <= report["auroc"] <= 1.0
    assert numpy.isfinite(report["scores"]).all()
    assert main(["anomaly", str(out), "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "anomaly.json").read_text())["scores"] == report["scores"]


def test_anomaly_never_replaces_a_file_it_did_not_write_unless_told(one_class_run, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "anomaly_roc.png").write_text("my own notes", encoding="utf-8")
    assert main(["anomaly", str(one_class_run), "--out", str(out)]) == 2
    assert "anomaly_roc.png was not written by scratchae" in capsys.readouterr().err
    assert (out / "anomaly_roc.png").read_text(encoding="utf-8") == "my own notes"
    assert not (out / "anomaly.json").exists()  # refused before anything was computed or written
    assert main(["anomaly", str(one_class_run), "--out", str(out), "--overwrite"]) == 0
    assert (out / "anomaly_roc.png").read_bytes().startswith(b"\x89PNG")
    assert main(["anomaly", str(one_class_run), "--out", str(out)]) == 0  # its own files: replaced on a rerun


def test_a_16_bit_png_reads_as_the_same_grey_levels_as_an_8_bit_one(tmp_path):
    from PIL import Image

    pixels = numpy.arange(64, dtype=numpy.uint8).reshape(8, 8) * 4
    for bits, array in ((8, pixels), (16, pixels.astype(numpy.uint16) * 257)):  # 257 maps 0..255 onto 0..65535
        (tmp_path / str(bits)).mkdir()
        Image.fromarray(array).save(tmp_path / str(bits) / "a.png")
    eight, sixteen = (anomaly.read_images(tmp_path / bits, (8, 8))[0] for bits in ("8", "16"))
    numpy.testing.assert_allclose(sixteen, eight, atol=1e-6)
    assert len(numpy.unique(sixteen)) == 64  # every grey level kept, not clipped to black and white


def test_a_pipe_named_like_an_image_is_refused_not_read_forever(tmp_path):
    import os

    from PIL import Image

    Image.fromarray(numpy.zeros((8, 8), dtype=numpy.uint8)).save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "z.png")
    with pytest.raises(AnomalyError, match=r"z.png: not a plain file"):
        anomaly.read_images(tmp_path, (8, 8))
    with pytest.raises(AnomalyError, match=r"z.png: not a plain file"):
        anomaly.read_images(tmp_path / "z.png", (8, 8))


def test_an_npy_header_announcing_more_than_memory_is_named_in_one_line(tmp_path, monkeypatch):
    def too_large(*_, **__):
        raise MemoryError  # what NumPy raises for a header that announces 10**11 rows

    numpy.save(tmp_path / "x.npy", numpy.zeros((2, 64)))
    monkeypatch.setattr(numpy, "load", too_large)
    with pytest.raises(AnomalyError, match=r"x.npy: the array its header announces does not fit in memory"):
        anomaly.read_images(tmp_path / "x.npy", (8, 8))


@pytest.mark.parametrize("recorded", ["3", -1, 3.5, True])
def test_a_normal_class_edited_in_the_checkpoint_is_named_as_damaged_settings(one_class_run, tmp_path, capsys,
                                                                              recorded):
    saved = checkpoint.load(one_class_run / "model.npz")
    extra = saved.meta["extra"]
    extra["settings"]["normal_class"] = recorded
    edited = tmp_path / "edited"
    checkpoint.save(edited / "model.npz", saved.model, saved.optimizer, saved.history, extra=extra)
    assert main(["anomaly", str(edited)]) == 2
    error = capsys.readouterr().err
    assert "holds no settings that scratchae train recorded (or they are damaged)" in error
    assert "trained on every class" not in error and len(error.strip().splitlines()) == 1

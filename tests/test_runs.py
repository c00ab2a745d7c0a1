"""No lost work: ``scratchae train`` against a run folder that exists, Ctrl-C and ``kill -9`` at random moments, a
diverging training, and the messages a learner sees. Processes are real and bounded in number and time."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

from scratchae import checkpoint
from scratchae.cli.run_folder import MANIFEST, STAGING_PREFIX, RunFolder
from scratchae.atomic_files import TEMPORARY_SUFFIX

EPOCHS = 10
COMMON = ["--data", "digits", "--batch-size", "32", "--device", "cpu"]


def train(*arguments, cwd, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "scratchae", "train", *COMMON, *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=180)
    if check:
        assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def weights(path: Path) -> dict[str, numpy.ndarray]:
    with numpy.load(path, allow_pickle=False) as file:
        return {name: file[name] for name in file.files if name.startswith(("param/", "optim/"))}


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        numpy.testing.assert_array_equal(first[name], second[name], err_msg=name)


#: Epochs asked of the runs that these tests stop: so many that a stop sent within a second of an epoch's end always
#: lands during the training, so that every such test tests a resume (they are resumed to EPOCHS in total).
MANY_EPOCHS = 200


def start(out: Path, *arguments, cwd, epochs: int = EPOCHS) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scratchae", "train", *COMMON, "--epochs", str(epochs),
                             "--out", str(out), *arguments], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_training(process: subprocess.Popen, epochs: int = 2) -> float:
    """Read the process's output until ``epochs`` epochs have ended: the training is under way. Returns the median
    time an epoch took so far (lines are read as they come, so a busy machine can bunch them: the median, not the
    last one)."""
    ended = []
    for line in process.stdout:
        if line.startswith("epoch"):
            ended.append(time.perf_counter())
            if int(line.split()[1]) >= epochs:
                return float(numpy.median(numpy.diff(ended))) if len(ended) > 1 else 0.0
    raise AssertionError(f"the training never started: {process.stderr.read()}")


def stop_moment(process: subprocess.Popen, rng: random.Random) -> None:
    """Wait for a random moment a few epochs into the training, on a fast machine as on a slow one: the end of
    epoch 2, 3 or 4 (read from the output), then a random part of an epoch (at most 10 ms): mid-epoch, in validation
    or in a save. The runs it stops are trained for EPOCHS or more, so the stop always lands before their end."""
    epoch_seconds = wait_for_training(process, epochs=rng.randint(2, 4))
    time.sleep(rng.uniform(0.0, min(epoch_seconds, 0.01)))


def folder_is_one_consistent_run(folder: Path) -> None:
    """Every file the manifest lists is there, the checkpoint loads, and no staging or temporary file is left."""
    manifest = json.loads((folder / MANIFEST).read_text())
    assert all((folder / name).is_file() for name in manifest["files"])
    saved = checkpoint.load(folder / "model.npz")
    assert len(saved.history) == manifest["epochs"]
    history = json.loads((folder / "history.json").read_text())
    assert len(history["metrics"]["loss"]) == manifest["epochs"]
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(STAGING_PREFIX) or p.name.endswith(
        TEMPORARY_SUFFIX)]
    assert not leftovers


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory):
    """Each model trained EPOCHS epochs without a stop, as the reference that interrupted runs must equal."""
    cwd = tmp_path_factory.mktemp("straight")
    runs = {}
    for model in ("simple", "denoising", "vae"):
        train("--model", model, "--epochs", str(EPOCHS), "--out", model, cwd=cwd)
        runs[model] = cwd / model / "model.npz"
    return runs


# ---------------------------------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("model, trial", [("simple", 0), ("denoising", 1), ("vae", 2), ("vae", 3)])
def test_ctrl_c_at_a_random_moment_saves_a_state_that_resumes_bit_for_bit(model, trial, tmp_path, straight_runs):
    rng = random.Random(trial)
    process = start(tmp_path / "run", "--model", model, cwd=tmp_path, epochs=MANY_EPOCHS)
    stop_moment(process, rng)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr
    assert process.returncode == 130, stderr  # stopped during the training, always: the state was saved
    assert "--resume" in stderr.splitlines()[-1] and len(stderr.strip().splitlines()) <= 2
    folder_is_one_consistent_run(tmp_path / "run")
    assert len(checkpoint.load(tmp_path / "run" / "model.npz").history) < EPOCHS  # a state the resume continues
    resumed = train("--model", model, "--epochs", str(EPOCHS), "--out", "run", "--resume", cwd=tmp_path)
    assert "Traceback" not in resumed.stderr
    folder_is_one_consistent_run(tmp_path / "run")
    assert_same_weights(tmp_path / "run" / "model.npz", straight_runs[model])
    saved = checkpoint.load(tmp_path / "run" / "model.npz")
    reference = checkpoint.load(straight_runs[model])
    assert saved.history.metrics == reference.history.metrics and saved.history.unfinished is None


# ---------------------------------------------------------------------------------------------------- kill -9


@pytest.mark.parametrize("trial", range(3))
def test_kill_9_at_a_random_moment_leaves_a_folder_that_loads_and_resumes(trial, tmp_path, straight_runs):
    rng = random.Random(100 + trial)
    process = start(tmp_path / "run", "--model", "simple", "--save-every", "0", cwd=tmp_path, epochs=MANY_EPOCHS)
    stop_moment(process, rng)  # the state after epoch 1 is saved: a kill from here on leaves a run
    process.kill()
    process.communicate(timeout=60)
    folder = RunFolder(tmp_path / "run")
    folder.recover()  # what the next start does first
    assert folder.holds_run()
    folder_is_one_consistent_run(folder.path)
    assert len(checkpoint.load(folder.checkpoint).history) < EPOCHS  # a state the resume below continues
    train("--model", "simple", "--epochs", str(EPOCHS), "--out", "run", "--resume", cwd=tmp_path)
    folder_is_one_consistent_run(folder.path)
    assert_same_weights(folder.checkpoint, straight_runs["simple"])


# ---------------------------------------------------------------------------------------------------- the run folder


def test_a_commit_that_fails_half_way_leaves_the_old_state(tmp_path):
    folder = RunFolder(tmp_path)
    a, b = "history.csv", "history.json"
    folder.commit({a: lambda path: path.write_text("old a"), b: lambda path: path.write_text("old b")},
                  {"epochs": 1})

    def breaks(path):
        path.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        folder.commit({a: lambda path: path.write_text("new a"), b: breaks}, {"epochs": 2})
    assert (tmp_path / a).read_text() == "old a" and (tmp_path / b).read_text() == "old b"
    assert folder.manifest()["epochs"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [a, b, MANIFEST]


def test_a_commit_stopped_after_its_manifest_is_finished_on_the_next_start(tmp_path):
    folder = RunFolder(tmp_path)
    folder.commit({"model.npz": lambda p: p.write_text("old"), "loss.png": lambda p: p.write_text("old figure")},
                  {"epochs": 1})
    staging = tmp_path / f"{STAGING_PREFIX}12345678"  # as a kill leaves it: complete, half moved into place
    staging.mkdir()
    (staging / MANIFEST).write_text(json.dumps({"epochs": 2, "files": ["model.npz", "history.json"]}))
    (staging / "history.json").write_text("new history")
    (tmp_path / "model.npz").write_text("new")  # already moved
    incomplete = tmp_path / f"{STAGING_PREFIX}abcdefab"  # killed before its manifest: never used
    incomplete.mkdir()
    (incomplete / "model.npz").write_text("never")
    folder.recover()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "model.npz", MANIFEST]
    assert (tmp_path / "model.npz").read_text() == "new" and folder.manifest()["epochs"] == 2
    assert not (tmp_path / "loss.png").exists()  # the old state's figure does not stay beside the new checkpoint


# ---------------------------------------------------------------------------------------------------- the command


def test_out_is_checked_before_anything_is_trained(tmp_path):
    (tmp_path / "f").write_text("a file")
    for out in ("f", "f/inside"):
        done = train("--out", out, cwd=tmp_path, check=False)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith("scratchae: error: --out") and "Layer (type)" not in done.stdout
    assert (tmp_path / "f").read_text() == "a file"


def test_an_existing_run_is_resumed_or_overwritten_only_when_asked(tmp_path):
    train("--epochs", "3", "--out", "run", cwd=tmp_path)
    refused = train("--epochs", "2", "--out", "run", cwd=tmp_path, check=False)
    assert refused.returncode == 2
    message = refused.stderr.strip().splitlines()[-1]
    assert "holds a run (simple on digits, 3 epochs)" in message and "--resume" in message and "--overwrite" in message
    assert checkpoint.load(tmp_path / "run" / "model.npz").history.metrics["loss"].__len__() == 3
    resumed = train("--epochs", "5", "--out", "run", "--resume", cwd=tmp_path)
    assert "trained 2 epochs" in resumed.stdout and "holds 5 epochs" in resumed.stdout
    nothing = train("--epochs", "4", "--out", "run", "--resume", cwd=tmp_path)
    assert "nothing to do" in nothing.stdout
    overwritten = train("--epochs", "1", "--out", "run", "--overwrite", cwd=tmp_path)
    assert "trained 1 epoch in" in overwritten.stdout  # and "1 epoch", not "1 epochs"
    assert len(checkpoint.load(tmp_path / "run" / "model.npz").history) == 1


def test_resume_refuses_settings_that_would_change_the_run(tmp_path):
    train("--epochs", "1", "--out", "run", cwd=tmp_path)
    changed = train("--epochs", "2", "--out", "run", "--resume", "--batch-size", "64", cwd=tmp_path, check=False)
    assert changed.returncode == 2
    assert "with --batch-size 32, not --batch-size 64" in changed.stderr and "--overwrite" in changed.stderr


def test_a_diverging_run_saves_only_its_last_finite_state_and_exits_1(tmp_path):
    done = train("--lr", "1e39", "--epochs", "1", "--batch-size", "100000", "--out", "nan", cwd=tmp_path,
                 check=False)
    assert done.returncode == 1
    assert "the weights became NaN or infinite" in done.stderr and "nothing new was saved" in done.stderr
    assert not (tmp_path / "nan" / "model.npz").exists()
    train("--epochs", "2", "--out", "good", cwd=tmp_path)
    again = train("--epochs", "4", "--out", "good", "--resume", "--lr", "1e39", cwd=tmp_path, check=False)
    assert again.returncode == 1 and "back at the end of epoch 2" in again.stderr
    saved = checkpoint.load(tmp_path / "good" / "model.npz")  # loads: every weight is finite
    assert len(saved.history) == 2


def test_the_whole_data_not_found_message_is_printed(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHAE_DATA", str(tmp_path / "nowhere"))
    done = subprocess.run([sys.executable, "-m", "scratchae", "train", "--data", "mnist", "--device", "cpu",
                           "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SCRATCHAE_DATA": str(tmp_path / "nowhere"),
                               "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for phrase in ("is not on this machine", "Missing files", "Looked in", "What to do", "mnist-5k"):
        assert phrase in done.stderr


def test_evaluate_uses_the_data_set_the_checkpoint_records(tmp_path):
    train("--epochs", "1", "--out", "run", cwd=tmp_path)
    done = subprocess.run([sys.executable, "-m", "scratchae", "evaluate", "run", "--device", "cpu"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digits test set (360 samples)")


def test_zero_epochs_save_the_untrained_model_without_a_warning(tmp_path):
    done = subprocess.run([sys.executable, "-W", "error", "-m", "scratchae", "train", *COMMON, "--epochs", "0",
                           "--out", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "No artists" not in done.stderr
    assert len(checkpoint.load(tmp_path / "run" / "model.npz").history) == 0


def test_a_classifier_on_a_few_images_still_scores_every_class(tmp_path):
    done = train("--model", "classifier", "--train-size", "5", "--epochs", "1", "--out", "run", cwd=tmp_path)
    assert "val_accuracy" in done.stdout
    assert checkpoint.load(tmp_path / "run" / "model.npz").model.output_features == 10


# ---------------------------------------------------------------------------------------------------- in-process


def in_process(argv) -> int:
    from scratchae.cli import main

    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_ctrl_c_at_a_chosen_batch_saves_mid_epoch_and_resumes_bit_for_bit(tmp_path, monkeypatch, capsys):
    """Deterministic: Ctrl-C arrives during the 60th step (epoch 2 of 45 batches), whatever the machine's speed."""
    from scratchae import training

    options = ["train", *COMMON, "--model", "denoising", "--epochs", "3"]
    assert in_process([*options, "--out", str(tmp_path / "straight")]) == 0
    real_step, calls = training.train_step, []

    def step_then_ctrl_c(*arguments):
        calls.append(1)
        if len(calls) == 60:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*arguments)

    monkeypatch.setattr(training, "train_step", step_then_ctrl_c)
    assert in_process([*options, "--out", str(tmp_path / "run")]) == 130
    assert "interrupted in epoch 2 after batch 15 of 45" in capsys.readouterr().err
    assert RunFolder(tmp_path / "run").manifest()["unfinished"] is True
    saved = checkpoint.load(tmp_path / "run" / "model.npz")
    assert len(saved.history) == 1 and saved.history.unfinished["batches"] == 15
    monkeypatch.setattr(training, "train_step", real_step)
    assert in_process([*options, "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert_same_weights(tmp_path / "run" / "model.npz", tmp_path / "straight" / "model.npz")


def test_ctrl_c_before_the_training_starts_stops_it_at_once_and_saves_nothing(tmp_path, monkeypatch, capsys):
    from scratchae import training

    real_prepare, steps = training.prepare_data, []

    def ctrl_c_while_preparing(*arguments):
        os.kill(os.getpid(), signal.SIGINT)
        return real_prepare(*arguments)

    monkeypatch.setattr(training, "prepare_data", ctrl_c_while_preparing)
    monkeypatch.setattr(training, "train_step", lambda *arguments: steps.append(1) or 0.0)
    assert in_process(["train", *COMMON, "--epochs", "5", "--out", str(tmp_path / "run")]) == 130
    assert "before the training started; nothing was saved" in capsys.readouterr().err
    assert steps == [] and not RunFolder(tmp_path / "run").holds_run()


def test_a_seed_below_zero_is_a_one_line_error(tmp_path):
    for command in (["train", *COMMON, "--out", "run"], ["gradcheck"], ["demo", "--quick", "--only", "one_step"]):
        done = subprocess.run([sys.executable, "-m", "scratchae", *command, "--seed", "-1"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "--seed: must be a whole number >= 0, got -1" in done.stderr


def test_sizes_that_cannot_fit_in_memory_are_a_one_line_error(tmp_path):
    done = train("--latent-dim", "1000000000000", "--out", "run", cwd=tmp_path, check=False)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("scratchae: error: not enough")


def test_evaluate_scores_a_vae_by_its_whole_elbo_after_a_warm_up(tmp_path):
    train("--model", "vae", "--latent-dim", "2", "--kl-warmup", "5", "--epochs", "1", "--out", "vae", cwd=tmp_path)
    done = subprocess.run([sys.executable, "-m", "scratchae", "evaluate", "vae", "--device", "cpu"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    scores = done.stdout.splitlines()[0].split(": ", 1)[1].split()  # "loss 40.1  reconstruction 31.3  kl 8.8"
    values = {name: float(value) for name, value in zip(scores[::2], scores[1::2])}
    assert values["kl"] > 0 and values["loss"] == pytest.approx(values["reconstruction"] + values["kl"], rel=1e-3)


def test_evaluate_takes_a_float64_checkpoint(tmp_path):
    from scratchae.builders import simple_autoencoder

    checkpoint.save(tmp_path / "f64.npz", simple_autoencoder(input_dim=64, dtype=numpy.float64))
    done = subprocess.run([sys.executable, "-m", "scratchae", "evaluate", "f64.npz", "--data", "digits", "--device",
                           "cpu"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_manifest_cannot_name_files_outside_its_folder(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.prepare()
    victim = tmp_path / "victim.txt"
    victim.write_text("not the run's")
    (folder.path / MANIFEST).write_text(json.dumps({"epochs": 1, "files": ["../victim.txt", "/etc/hostname",
                                                                          "loss.png"]}))
    folder.commit({"history.csv": lambda path: path.write_text("b")}, {"epochs": 2})
    assert victim.read_text() == "not the run's"
    assert folder.manifest()["files"] == ["history.csv"]

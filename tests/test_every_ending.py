"""No lost work, however a run ends or whatever its folder holds: SIGTERM and SIGHUP, two runs into one folder,
run folders whose files lie, a full disk. Processes are real (few, small, bounded in time); the rest runs in
process. The helpers are those of test_runs."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_runs import COMMON, assert_same_weights, folder_is_one_consistent_run, in_process, stop_moment, train

from scratchae import checkpoint
from scratchae.cli import train as runs
from scratchae.cli.run_folder import MANIFEST, STAGING_PREFIX, RunFolder
from scratchae.data import DataError
from scratchae.atomic_files import TEMPORARY_SUFFIX
from scratchae.training import STOP_SIGNALS


#: Epochs of the runs that these tests stop: a few, so that the tests stay short.
EPOCHS = 12  # enough that a stop soon after the first epoch always lands before the end, on a fast machine too


@pytest.fixture(scope="module")
def straight_simple(tmp_path_factory) -> Path:
    """The simple model trained EPOCHS epochs without a stop: what a stopped and resumed run must equal."""
    out = tmp_path_factory.mktemp("straight") / "simple"
    assert in_process(["train", *COMMON, "--epochs", str(EPOCHS), "--out", str(out)]) == 0
    return out / "model.npz"


def start(out: Path, *arguments, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scratchae", "train", *COMMON, "--epochs", str(EPOCHS), "--out",
                             str(out), *arguments], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def listing(root: Path, leave_out: Path | None = None) -> dict[str, str]:
    """Every entry under ``root`` (links not followed) with what it is: a file's SHA-256, a link's target."""
    entries = {}
    for path in sorted(root.rglob("*")):
        if leave_out is not None and (path == leave_out or leave_out in path.parents):
            continue
        if path.is_symlink():
            entries[str(path.relative_to(root))] = f"link to {os.readlink(path)}"
        elif path.is_file():
            entries[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            entries[str(path.relative_to(root))] = "folder"
    return entries


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------------- signals


#: Epochs asked of the runs that a signal stops: so many that the signal, sent a few epochs in (test_runs.stop_moment),
#: always lands during the training (an ending before it would test no resume).
MANY_EPOCHS = 200


@pytest.mark.parametrize("stop, trial", [pytest.param(signal.SIGTERM, 0, id="SIGTERM"),
                                         pytest.param(signal.SIGHUP, 1, id="SIGHUP")])
def test_sigterm_and_sighup_at_a_random_moment_save_a_state_that_resumes_bit_for_bit(stop, trial, tmp_path,
                                                                                      straight_simple, capsys):
    process = subprocess.Popen([sys.executable, "-m", "scratchae", "train", *COMMON, "--epochs", str(MANY_EPOCHS),
                                "--out", str(tmp_path / "run")], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stop_moment(process, random.Random(trial))
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr
    assert process.returncode == 128 + stop, stderr  # stopped during the training, always: a resume is tested
    line = last_line(stderr)
    assert line.startswith(f"scratchae: interrupted by {stop.name}") and " is saved in " in line
    assert "--resume" in line and len(stderr.strip().splitlines()) == 1
    folder_is_one_consistent_run(tmp_path / "run")
    saved = checkpoint.load(tmp_path / "run" / "model.npz").history
    assert len(saved) < EPOCHS, line  # the state is one that the resume below continues (not past its end)
    assert in_process(["train", *COMMON, "--epochs", str(EPOCHS), "--out", str(tmp_path / "run"), "--resume"]) == 0
    folder_is_one_consistent_run(tmp_path / "run")
    assert len(checkpoint.load(tmp_path / "run" / "model.npz").history) == EPOCHS
    assert_same_weights(tmp_path / "run" / "model.npz", straight_simple)


def test_a_closed_terminal_saves_the_run(tmp_path):
    """The run shows its progress bar on a terminal that then closes (SIGHUP, and writes that fail after it)."""
    import pty

    pid, terminal = pty.fork()
    if pid == 0:  # the child: the run, on the terminal (never back into pytest, even if exec fails)
        try:
            os.chdir(tmp_path)
            os.execv(sys.executable, [sys.executable, "-m", "scratchae", "train", *COMMON, "--epochs", "50", "--out",
                                      "run"])
        finally:
            os._exit(127)
    shown, deadline = b"", time.monotonic() + 120
    while b"epoch   2" not in shown and time.monotonic() < deadline:
        shown += os.read(terminal, 4096)
    os.close(terminal)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGHUP, shown.decode(errors="replace")[-2000:]
    folder_is_one_consistent_run(tmp_path / "run")
    assert len(checkpoint.load(tmp_path / "run" / "model.npz").history) >= 2


def test_a_stop_signal_mid_epoch_exits_with_its_own_status_in_process(tmp_path, monkeypatch, capsys):
    """Deterministic: SIGTERM arrives during the 50th step (epoch 2 of 45 batches), SIGHUP in a second run during
    its 10th."""
    from scratchae import training

    real_step, handlers = training.train_step, {stop: signal.getsignal(stop) for stop in STOP_SIGNALS}
    for stop, at_step, status in ((signal.SIGTERM, 50, 143), (signal.SIGHUP, 10, 129)):
        calls = []

        def step_then_signal(*arguments, stop=stop, at_step=at_step, calls=calls):
            calls.append(1)
            if len(calls) == at_step:
                os.kill(os.getpid(), stop)
            return real_step(*arguments)

        monkeypatch.setattr(training, "train_step", step_then_signal)
        out = tmp_path / stop.name
        assert in_process(["train", *COMMON, "--epochs", "2", "--out", str(out)]) == status
        batch = at_step if at_step <= 45 else at_step - 45
        epoch = 1 if at_step <= 45 else 2
        assert last_line(capsys.readouterr().err) == (
            f"scratchae: interrupted by {stop.name} in epoch {epoch} after batch {batch} of 45; the state is saved "
            f"in {out}: continue with scratchae train --out {out} --resume --epochs 2")
        assert checkpoint.load(out / "model.npz").history.unfinished["batches"] == batch
    assert {stop: signal.getsignal(stop) for stop in STOP_SIGNALS} == handlers  # the handlers are put back


def test_the_first_state_is_saved_after_the_first_epoch_whatever_save_every(tmp_path, monkeypatch, capsys):
    saves = []
    real_commit = RunFolder.commit

    def commit(self, writers, about):
        saves.append((about["epochs"], "loss.png" in writers))
        return real_commit(self, writers, about)

    monkeypatch.setattr(RunFolder, "commit", commit)
    assert in_process(["train", *COMMON, "--epochs", "3", "--save-every", "100000", "--out", str(tmp_path)]) == 0
    assert saves == [(1, False), (3, True)]  # after the first epoch, then at the end with the figures


# ---------------------------------------------------------------------------------------------------- one writer


def test_two_runs_started_together_into_one_folder_one_runs_and_the_other_refuses(tmp_path, straight_simple, capsys):
    first, second = start(tmp_path / "run", cwd=tmp_path), start(tmp_path / "run", cwd=tmp_path)
    results = {process: process.communicate(timeout=180) for process in (first, second)}
    assert sorted(process.returncode for process in results) == [0, 2]
    runner = first if first.returncode == 0 else second
    refused = second if runner is first else first
    message = last_line(results[refused][1])
    assert f"is being written by another scratchae train (pid {runner.pid})" in message
    assert "nothing in it was changed" in message and "Traceback" not in results[refused][1]
    assert len(results[refused][1].strip().splitlines()) == 1
    folder_is_one_consistent_run(tmp_path / "run")
    assert_same_weights(tmp_path / "run" / "model.npz", straight_simple)  # the run was not disturbed
    assert in_process(["train", *COMMON, "--epochs", str(EPOCHS + 1), "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert len(checkpoint.load(tmp_path / "run" / "model.npz").history) == EPOCHS + 1


def test_a_train_into_a_locked_folder_changes_nothing_in_it(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with folder.writing():  # this test process is the running train
        folder.commit({"model.npz": lambda path: path.write_text("a run's checkpoint")}, {"epochs": 1})
        (tmp_path / "run" / f"{STAGING_PREFIX}0123abcd").mkdir()  # the running train's staging, being written
        (tmp_path / "run" / f"{STAGING_PREFIX}0123abcd" / "model.npz").write_text("half")
        stale = tmp_path / "run" / f".model.npz.00000000{TEMPORARY_SUFFIX}"
        stale.write_text("a temporary file")
        os.utime(stale, (0, 0))  # old enough to be cleared by a start that holds the lock
        before = listing(tmp_path)
        for extra in ([], ["--resume"], ["--overwrite"]):
            done = train("--epochs", "1", "--out", "run", *extra, cwd=tmp_path, check=False)
            assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
            assert f"(pid {os.getpid()})" in done.stderr and "kill -TERM" in done.stderr
        assert listing(tmp_path) == before
    assert stale.exists()  # cleared only by the next start that holds the lock
    folder.recover()
    assert not stale.exists() and not (tmp_path / "run" / f"{STAGING_PREFIX}0123abcd").exists()


# ---------------------------------------------------------------------------------------------------- files are data


def test_recovery_follows_no_link_and_lying_manifests_change_nothing_outside_the_run(tmp_path, capsys):
    for name in ("other", "run"):
        assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(tmp_path / name)]) == 0
    run = tmp_path / "run"
    (tmp_path / "victim.txt").write_text("a learner's notes")
    (run / f"{STAGING_PREFIX}deadbeef").symlink_to(tmp_path / "other")  # a complete run, reached by a link
    lying = run / f"{STAGING_PREFIX}0badf00d"  # a staged state whose manifest names what is not the run's
    lying.mkdir()
    (lying / "model.npz").symlink_to(tmp_path / "victim.txt")
    (lying / MANIFEST).write_text(json.dumps({"epochs": 9, "files": ["model.npz", "../victim.txt", "notes.txt"]}))
    (run / "notes.txt").write_text("the learner's, in the run folder")
    (run / "sub").mkdir()
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["files"] += ["notes.txt", "sub", "../victim.txt", str(tmp_path / "victim.txt")]
    (run / MANIFEST).write_text(json.dumps(manifest))
    outside = listing(tmp_path, leave_out=run)
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(run)]) == 2  # refused: it holds a run
    assert in_process(["train", *COMMON, "--epochs", "2", "--out", str(run), "--resume"]) == 0
    assert listing(tmp_path, leave_out=run) == outside
    assert (run / "notes.txt").read_text() == "the learner's, in the run folder" and (run / "sub").is_dir()
    assert (run / f"{STAGING_PREFIX}deadbeef").is_symlink()  # left alone, not followed
    assert len(checkpoint.load(run / "model.npz").history) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_run_json_that_lies_is_one_clear_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out)]) == 0
    written = json.loads((out / MANIFEST).read_text())
    for field, value in [("epochs", "many"), ("epochs", [1]), ("epochs", None), ("epochs", True),
                         ("model", "m" * 5000), ("model", ["simple"]), ("data", {"a": 1}), ("unfinished", "yes"),
                         (None, [])]:
        (out / MANIFEST).write_text(json.dumps({**written, field: value} if field else value))
        capsys.readouterr()
        assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out)]) == 2, (field, value)
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and len(error) < 300
        assert f"{out} holds a run (a checkpoint); continue it with --resume" in error


def test_checkpoint_settings_that_lie_are_one_clear_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out)]) == 0
    saved = checkpoint.load(out / "model.npz")
    extra = saved.meta["extra"]
    for settings, loss in [({**extra["settings"], "model": ["simple"]}, "mse"),
                           ({**extra["settings"], "loss": {"mse": 1}}, "mse"), (extra["settings"], "l" * 5000)]:
        checkpoint.save(out / "model.npz", saved.model, saved.optimizer, saved.history,
                        extra={**extra, "settings": settings, "loss": loss})
        capsys.readouterr()
        command = ["evaluate", str(out), "--device", "cpu"] if len(loss) > 40 else \
            ["train", *COMMON, "--epochs", "2", "--out", str(out), "--resume"]
        assert in_process(command) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and len(error) < 300 and "Traceback" not in error


def test_an_interrupted_epoch_the_data_cannot_have_is_one_clear_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out)]) == 0
    saved = checkpoint.load(out / "model.npz")
    saved.history.unfinished = {"batches": 999, "samples": 999 * 32, "sums": {"loss": 1.0}, "seconds": 0.0}
    checkpoint.save(out / "model.npz", saved.model, saved.optimizer, saved.history, extra=saved.meta["extra"])
    capsys.readouterr()
    assert in_process(["train", *COMMON, "--epochs", "2", "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "records an interrupted epoch of 999 batches" in error and error.count("\n") == 1


def test_a_recorded_data_dir_is_used_only_when_given_again(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out), "--data-dir",
                       str(tmp_path / "given")]) == 0
    assert checkpoint.load(out / "model.npz").meta["extra"]["settings"]["data_dir"] == str(tmp_path / "given")
    asked = []

    def load(name, **options):
        asked.append(options["data_dir"])
        raise DataError("stopped here by the test")

    monkeypatch.setattr(runs.data, "load", load)
    in_process(["evaluate", str(out), "--device", "cpu"])
    in_process(["train", *COMMON, "--epochs", "2", "--out", str(out), "--resume"])
    in_process(["evaluate", str(out), "--device", "cpu", "--data-dir", str(tmp_path / "again")])
    assert asked == [None, None, str(tmp_path / "again")]


# ---------------------------------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 64 KiB tmpfs (where the tests may mount one), else a folder and a limit of 64 KiB on the size
    of any file the train command writes (RLIMIT_FSIZE): either way, no checkpoint fits."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0 if os.geteuid() == 0 else False
    try:
        yield folder, (None if mounted else _limit_file_size)
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_disk_full_from_the_start_says_that_the_trained_epochs_are_lost_and_how_to_go_on(small_disk, tmp_path):
    disk, limit = small_disk
    done = subprocess.run([sys.executable, "-m", "scratchae", "train", *COMMON, "--epochs", "2", "--out",
                           str(disk / "run")], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          preexec_fn=limit)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    full = "the disk is full" if limit is None else "the file size limit is reached"
    assert lines[0].startswith(f"warning: {full}: {disk / 'run'} could not take the state after epoch 1 (")
    assert lines[0].endswith("; it keeps no state of this run; the training goes on, and the save is tried again "
                             "after each epoch: free some space")
    assert len(lines) == 2  # said once, then the end
    assert lines[-1].startswith(f"scratchae: error: {full}: {disk / 'run'} could not take the state after epoch 2 (")
    assert lines[-1].endswith("and it keeps no state of this run: the 2 epochs trained are lost; free some space or "
                              "give another --out, then start again")
    assert not RunFolder(disk / "run").holds_run()
    assert list((disk / "run").iterdir()) == []  # no staging, temporary or lock file left


def test_a_disk_that_fills_up_names_the_state_it_keeps_and_how_to_resume(tmp_path, monkeypatch, capsys):
    real_save, calls = checkpoint.save, []

    def save_until_full(path, *arguments, **options):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_save(path, *arguments, **options)

    monkeypatch.setattr(runs.checkpoint, "save", save_until_full)
    out = tmp_path / "run"
    assert in_process(["train", *COMMON, "--epochs", "3", "--out", str(out)]) == 2
    assert last_line(capsys.readouterr().err) == (
        f"scratchae: error: the disk is full: {out} could not take the state after epoch 3 (No space left on "
        f"device); it keeps the state after epoch 1: free some space, then continue with scratchae train --out "
        f"{out} --resume --epochs 3")
    folder_is_one_consistent_run(out)
    assert len(checkpoint.load(out / "model.npz").history) == 1
    monkeypatch.setattr(runs.checkpoint, "save", real_save)
    assert in_process(["train", *COMMON, "--epochs", "3", "--out", str(out), "--resume"]) == 0
    assert len(checkpoint.load(out / "model.npz").history) == 3

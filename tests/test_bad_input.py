"""Bad input at the command's doors, each one line that names the problem, never a traceback, never a false pass,
and nothing the user had replaced: thread counts and time limits out of range, folders that are files or missing,
a damaged run.json, settings a resumed run was trained without, and files that are not plain files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_cli import run

from scratchae.atomic_files import write_atomically

TRAIN = ["train", "--data", "digits", "--epochs", "1", "--batch-size", "128", "--device", "cpu"]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder of the simple model, trained one epoch."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert run([*TRAIN, "--out", str(out)]) == 0
    return out


def test_a_thread_count_past_the_most_is_refused_before_anything_is_made(tmp_path, capsys):
    assert run([*TRAIN, "--threads", "100000", "--out", str(tmp_path / "run")]) == 2
    assert "--threads: must be a whole number >= 1 and <= 256, got 100000" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_a_time_limit_past_the_longest_is_refused(tmp_path, capsys):
    assert run(["exercises", "start", str(tmp_path)]) == 0
    capsys.readouterr()
    assert run(["exercises", "check", str(tmp_path), "relu", "--timeout", "1e10"]) == 2
    assert "--timeout: must be a finite number in (0, 1e+06)" in one_line(capsys.readouterr().err)


def test_exercises_check_on_a_folder_that_is_not_one_says_so_in_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    for folder in (tmp_path / "missing", tmp_path, tmp_path / "notes.txt"):
        assert run(["exercises", "check", str(folder)]) == 2
        assert (f"{folder} is not a folder of exercises (make one with: scratchae exercises start"
                in one_line(capsys.readouterr().err))


def test_demo_check_on_a_missing_folder_or_a_file_says_so_in_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    assert run(["demo", "--check", str(tmp_path / "missing")]) == 2
    assert one_line(capsys.readouterr().err) == (f"scratchae: error: {tmp_path / 'missing'}: no such folder; give the "
                                                 f"--out folder of a scratchae demo")
    assert run(["demo", "--check", str(tmp_path / "afile")]) == 2
    assert "afile: not a folder" in one_line(capsys.readouterr().err)


def test_a_folder_asked_for_where_a_file_is_is_named_as_such(tmp_path, trained, capsys):
    (tmp_path / "afile").write_text("mine")
    assert run(["evaluate", str(trained / "model.npz"), "--data", "digits", "--device", "cpu", "--out",
                str(tmp_path / "afile")]) == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder; nothing was written" in one_line(capsys.readouterr().err)
    assert (tmp_path / "afile").read_text() == "mine"


def test_resume_names_a_setting_the_run_was_trained_without_in_words(tmp_path, capsys):
    out = tmp_path / "run"
    assert run([*TRAIN, "--out", str(out)]) == 0
    capsys.readouterr()
    assert run([*TRAIN, "--epochs", "2", "--resume", "--latent-dim", "5", "--out", str(out)]) == 2
    message = one_line(capsys.readouterr().err)
    assert "trained, without --latent-dim (its default), not --latent-dim 5" in message and "None" not in message


@pytest.mark.parametrize("manifest", [b"[1, 2]", b"{not json", b"\xff\xfe"])
def test_a_damaged_run_json_is_named_as_the_reason(tmp_path, capsys, manifest):
    out = tmp_path / "run"
    assert run([*TRAIN, "--out", str(out)]) == 0
    (out / "run.json").write_bytes(manifest)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    capsys.readouterr()
    assert run([*TRAIN, "--epochs", "2", "--resume", "--out", str(out)]) == 2
    assert "(its run.json cannot be read: damaged, or not scratchae's)" in one_line(capsys.readouterr().err)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_an_unreadable_checkpoint_is_named_unreadable_not_damaged(trained, capsys, monkeypatch):
    import zipfile

    def refused(*_, **__):
        raise PermissionError(13, "Permission denied", str(trained / "model.npz"))

    monkeypatch.setattr(zipfile, "ZipFile", refused)  # as root, a mode of 000 would not stop the read
    assert run(["evaluate", str(trained / "model.npz"), "--data", "digits", "--device", "cpu"]) == 2
    assert one_line(capsys.readouterr().err) == f"scratchae: error: {trained / 'model.npz'}: Permission denied"


def test_a_pipe_or_a_device_is_never_replaced_by_a_file(tmp_path, trained, capsys):
    pipe = tmp_path / "pipe.html"
    os.mkfifo(pipe)
    with pytest.raises(IsADirectoryError, match="it is not a plain file"):
        write_atomically(pipe, lambda file: file.write(b"page"))
    vae = tmp_path / "vae"
    assert run([*TRAIN, "--model", "vae", "--latent-dim", "2", "--out", str(vae)]) == 0
    capsys.readouterr()
    assert run(["explore", str(vae), "--out", str(pipe), "--overwrite"]) == 2
    assert "it is not a plain file (a device, a pipe or a socket); it is kept as it is" in one_line(
        capsys.readouterr().err)
    assert os.path.exists(pipe) and not pipe.is_file()  # still the pipe


def test_a_layer_file_that_exits_fails_the_check_in_a_separate_process(tmp_path):
    (tmp_path / "mine.py").write_text("import sys\nfrom scratchae.layers import Layer\n\n\nclass Quits(Layer):\n"
                                      "    def forward(self, x):\n        sys.exit(0)\n\n"
                                      "    def backward(self, dy):\n        return dy\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "scratchae", "gradcheck", "--layer", "mine.py:Quits"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Quits.forward called sys.exit(0)" in done.stdout  # a CI sees the failure


@pytest.mark.parametrize("argv", [["train", "--out="], ["evaluate", "x.npz", "--out="], ["explore", "run", "--out="],
                                  ["anomaly", "run", "--out="], ["notebooks", ""], ["exercises", "check", ""],
                                  ["exercises", "start", ""], ["demo", "--check="], ["evaluate", ""], ["explore", ""],
                                  ["anomaly", ""], ["anomaly", "run", ""]])
def test_an_empty_name_is_refused_not_taken_for_the_default(argv, capsys):
    assert run(argv) == 2
    assert "expected a file or folder name, got an empty one" in one_line(capsys.readouterr().err)

"""No lost work, round four: nothing replaced that scratchae did not write, no recorded path followed, no file
deleted for its name alone, one line for a full disk or a read-only folder naming the file asked for, and the
smaller faults (pages of non-finite weights, text that would end the page's script, versions, quoting, long names,
memory bounds). Fault injection in process where it can be, as in test_every_ending."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import numpy
import pytest
from test_every_ending import small_disk  # noqa: F401 (a fixture)
from test_runs import COMMON, folder_is_one_consistent_run, in_process

from scratchae import checkpoint, data, models
from scratchae.atomic_files import TEMPORARY_SUFFIX, WriteError, temporary_path, write_text_atomically
from scratchae.cli import own_files
from scratchae.cli import train as runs
from scratchae.cli.explore import ExploreError, explorer_page
from scratchae.layers import Dense, Sequential


def one_line(error: str) -> str:
    assert error.count("\n") == 1 and "Traceback" not in error, error
    return error.strip()


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    """A run folder of a 2-d VAE, one epoch on the 8 x 8 digits."""
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert in_process(["train", "--model", "vae", "--latent-dim", "2", *COMMON, "--epochs", "1", "--train-size",
                       "300", "--out", str(out)]) == 0
    return out


def copy_run(run: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for path in run.iterdir():
        if path.is_file():
            (to / path.name).write_bytes(path.read_bytes())
    return to


# ---------------------------------------------------------------------------------------------------- not ours


def test_train_keeps_a_learners_files_of_a_runs_names_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    theirs = {name: f"the learner's {name}" for name in ("loss.png", "history.csv", "reconstructions.png")}
    for name, text in theirs.items():
        (out / name).write_text(text)
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out)]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"scratchae: error: {out} holds history.csv, loss.png, reconstructions.png, which scratchae train did not "
        f"write (its run.json does not list them); nothing was changed: move them away, give another --out, or "
        f"--overwrite to replace them")
    assert {name: (out / name).read_text() for name in theirs} == theirs and not (out / "model.npz").exists()
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out), "--overwrite"]) == 0
    folder_is_one_consistent_run(out)
    assert in_process(["train", *COMMON, "--epochs", "2", "--out", str(out), "--resume"]) == 0  # its own files now


def test_explore_never_writes_over_a_runs_checkpoint_nor_a_learners_page(vae_run, tmp_path, capsys):
    run = copy_run(vae_run, tmp_path / "run")
    model = (run / "model.npz").read_bytes()
    for extra in ([], ["--overwrite"]):
        assert in_process(["explore", str(run), "--out", str(run / "model.npz"), *extra]) == 2
        assert "is a run's own file, which the page never replaces" in one_line(capsys.readouterr().err)
    assert (run / "model.npz").read_bytes() == model
    mine = tmp_path / "mine.html"
    mine.write_text("<p>my own page</p>")
    assert in_process(["explore", str(run), "--out", str(mine), "--points", "50"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"scratchae: error: {mine} was not written by scratchae; it is kept as it is and nothing was written: give "
        f"another --out, or --overwrite to replace it")
    assert mine.read_text() == "<p>my own page</p>"
    assert in_process(["explore", str(run), "--out", str(mine), "--points", "50", "--overwrite"]) == 0
    assert in_process(["explore", str(run), "--out", str(mine), "--points", "60"]) == 0  # its own page now
    mine.write_text(mine.read_text() + "<!-- my note -->")
    capsys.readouterr()
    assert in_process(["explore", str(run), "--out", str(mine), "--points", "50"]) == 2
    assert "was changed since scratchae wrote it; it is kept as it is" in one_line(capsys.readouterr().err)
    assert mine.read_text().endswith("<!-- my note -->")


def test_notebooks_over_an_edited_notebook_keep_the_edit_and_say_how_to_get_a_fresh_copy(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    assert in_process(["notebooks", str(folder), "--only", "one_step", "denoising"]) == 0
    notebook = folder / "one_step.ipynb"
    edited = json.loads(notebook.read_text())
    edited["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["my own cell"]})
    notebook.write_text(json.dumps(edited))
    denoising = (folder / "denoising.ipynb").read_bytes()
    capsys.readouterr()
    assert in_process(["notebooks", str(folder), "--only", "denoising", "one_step", "--quick"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"scratchae: error: {notebook} was changed since scratchae wrote it; it is kept as it is and nothing was "
        f"written: for a fresh copy beside it, run scratchae notebooks {folder / 'fresh'} --only one_step; or give "
        f"--overwrite to replace it")
    assert "my own cell" in notebook.read_text()
    assert (folder / "denoising.ipynb").read_bytes() == denoising  # checked before any was written
    assert in_process(["notebooks", str(folder), "--only", "denoising"]) == 0  # an unedited one is replaced
    assert in_process(["notebooks", str(folder), "--only", "one_step", "--overwrite"]) == 0
    assert "my own cell" not in notebook.read_text()


def test_evaluate_keeps_a_learners_figure_of_the_same_name(vae_run, tmp_path, capsys):
    run = copy_run(vae_run, tmp_path / "run")
    figure = run / "reconstructions-digits.png"
    figure.write_bytes(b"my own figure")
    assert in_process(["evaluate", str(run), "--device", "cpu"]) == 2
    assert f"{figure} was not written by scratchae" in one_line(capsys.readouterr().err)
    assert figure.read_bytes() == b"my own figure"
    assert in_process(["evaluate", str(run), "--device", "cpu", "--overwrite"]) == 0
    assert in_process(["evaluate", str(run), "--device", "cpu"]) == 0


def test_a_list_of_own_files_that_lies_lets_nothing_be_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / own_files.LEDGER).write_text(json.dumps({"files": {
        "notes.txt": {"sha256": "0" * 64}, "../victim.txt": {"sha256": "0" * 64}, "x": "not an entry"}}))
    with pytest.raises(own_files.NotOursError, match="was changed since scratchae wrote it"):
        own_files.write_text(tmp_path / "notes.txt", "replaced", command="test")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / own_files.LEDGER).write_text("[not json")
    with pytest.raises(own_files.NotOursError, match="was not written by scratchae"):
        own_files.write_text(tmp_path / "notes.txt", "replaced", command="test")


# ---------------------------------------------------------------------------------------------------- paths and names


def test_explore_follows_no_data_dir_a_checkpoint_records(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    assert in_process(["train", "--model", "vae", "--latent-dim", "2", *COMMON, "--epochs", "1", "--train-size",
                       "200", "--out", str(out), "--data-dir", str(recorded)]) == 0
    assert checkpoint.load(out / "model.npz").meta["extra"]["settings"]["data_dir"] == str(recorded)
    asked, real_load = [], runs.data.load

    def load(name, **options):
        asked.append(options["data_dir"])
        return real_load(name, **{**options, "data_dir": None})

    monkeypatch.setattr(runs.data, "load", load)
    assert in_process(["explore", str(out), "--points", "20"]) == 0
    assert in_process(["explore", str(out), "--points", "20", "--data-dir", str(tmp_path / "again")]) == 0
    assert asked == [None, str(tmp_path / "again")]


def test_only_temporaries_that_are_provably_ours_are_deleted(tmp_path, capsys):
    run = tmp_path / "run"
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(run)]) == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("a learner's file")
    looks_like = [f".notes.txt.0123abcd{TEMPORARY_SUFFIX}",  # a temporary of a name the run never writes
                  f".model.npz.zzzzzzzz{TEMPORARY_SUFFIX}",  # not our 8 hex digits
                  f"x{TEMPORARY_SUFFIX}", "tmpabcdefgh", "tmp0123456_"]  # pooch's old names: anyone's
    for name in looks_like:
        (run / name).write_text("not scratchae's")
    (run / f".loss.png.0123abcd{TEMPORARY_SUFFIX}").symlink_to(victim)  # a link: never followed nor removed
    ours = run / f".history.csv.89abcdef{TEMPORARY_SUFFIX}"
    ours.write_text("half a history")
    for path in run.iterdir():
        os.utime(path, (time.time() - 3600,) * 2, follow_symlinks=False)
    assert in_process(["train", *COMMON, "--epochs", "2", "--out", str(run), "--resume"]) == 0
    assert not ours.exists()
    assert all((run / name).read_text() == "not scratchae's" for name in looks_like)
    assert (run / f".loss.png.0123abcd{TEMPORARY_SUFFIX}").is_symlink() and victim.read_text() == "a learner's file"


@pytest.mark.parametrize("name", ["p" * 250 + ".html", "é" * 120 + ".html", "a" * 255])
def test_a_legal_long_name_is_written_and_its_temporary_fits_in_255_bytes(tmp_path, name):
    assert len(os.fsencode(temporary_path(tmp_path / name).name)) <= 255
    assert temporary_path(tmp_path / name).name.endswith(TEMPORARY_SUFFIX)
    write_text_atomically(tmp_path / name, "the page")
    assert (tmp_path / name).read_text() == "the page"
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_explore_writes_a_page_of_a_long_legal_name(vae_run, tmp_path, capsys):
    out = tmp_path / ("explorer-" + "x" * 240 + ".html")
    assert len(out.name) == 254
    assert in_process(["explore", str(vae_run), "--out", str(out), "--points", "20"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_a_name_too_long_for_the_file_system_is_one_line_naming_it(vae_run, tmp_path, capsys):
    out = tmp_path / ("x" * 300 + ".html")
    assert in_process(["explore", str(vae_run), "--out", str(out), "--points", "20"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"scratchae: error: cannot write {out}: File name too long; nothing was written")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- a full disk


def _mounted(small_disk_fixture) -> Path:
    disk, limit = small_disk_fixture
    if limit is not None:
        pytest.skip("needs a tmpfs (mount -t tmpfs), which this machine does not let the tests mount")
    return disk


def test_a_full_disk_under_explore_is_one_line_naming_the_page_and_keeping_the_old_one(small_disk, vae_run,
                                                                                       capsys):  # noqa: F811
    disk = _mounted(small_disk)
    page = disk / "explorer.html"
    page.write_text("<p>the page of before</p>")
    own_files.record(page, "scratchae explore")  # scratchae's own page, which it may replace
    (disk / "filler").write_bytes(b"x" * (44 * 1024))
    assert in_process(["explore", str(vae_run), "--out", str(page), "--points", "500"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"scratchae: error: cannot write {page}: No space left on device; the explorer.html that was there is kept "
        f"as it was")
    assert page.read_text() == "<p>the page of before</p>"
    assert sorted(path.name for path in disk.iterdir()) == [own_files.LEDGER, "explorer.html", "filler"]


def test_a_read_only_folder_is_one_line_naming_the_file_asked_for(small_disk, capsys):  # noqa: F811
    disk = _mounted(small_disk)
    (disk / "notebooks").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        with pytest.raises(WriteError) as caught:
            write_text_atomically(disk / "notebooks" / "vae.ipynb", "{}")
        assert str(caught.value) == (f"cannot write {disk / 'notebooks' / 'vae.ipynb'}: Read-only file system; "
                                     f"nothing was written")
        assert in_process(["notebooks", str(disk / "notebooks"), "--only", "vae"]) == 2
        assert one_line(capsys.readouterr().err) == (
            f"scratchae: error: cannot write {disk / 'notebooks' / 'vae.ipynb'}: Read-only file system; nothing was "
            f"written")
        assert in_process(["exercises", "start", str(disk / "exercises")]) == 2
        assert one_line(capsys.readouterr().err) == (
            f"scratchae: error: cannot write into {disk / 'exercises'}: Read-only file system; nothing was written")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)


# ---------------------------------------------------------------------------------------------------- smaller


def test_a_page_of_weights_that_give_non_finite_codes_or_images_is_refused(vae_run, tmp_path, capsys):
    saved = checkpoint.load(vae_run / "model.npz")
    digits = data.load("digits")
    huge = checkpoint.load(vae_run / "model.npz").model  # encoder weights huge but finite: codes past float32
    for name, parameter in huge.named_parameters():
        if not name.startswith("decoder") and name.endswith("W"):  # the trunk's and the mu head's
            parameter.data *= numpy.float32(1e30)
    rng = numpy.random.default_rng(0)  # a linear decoder of huge finite weights: images past float32
    linear = models.Autoencoder(Sequential([Dense(64, 2, rng=rng)]), Sequential([Dense(2, 64, rng=rng)]))
    linear.decoder.layers[0].W.data[...] = numpy.float32(3e38)
    for model, what in ((huge, "codes"), (linear, "images")):
        assert all(numpy.isfinite(parameter.data).all() for parameter in model.parameters())
        with pytest.raises(ExploreError, match=f"give {what} that are not finite numbers"):
            explorer_page(model, digits.x_test[:50], digits.y_test[:50], image_shape=(8, 8), title="huge")
        run = tmp_path / what
        run.mkdir()
        checkpoint.save(run / "model.npz", model, extra={"data": "digits"} if model is linear else saved.meta["extra"])
        capsys.readouterr()
        assert in_process(["explore", str(run), "--points", "50"]) == 2
        assert f"give {what} that are not finite numbers" in one_line(capsys.readouterr().err)
        assert not (run / "explorer.html").exists()


def test_text_in_the_pages_json_cannot_end_or_change_its_script(vae_run):
    model = checkpoint.load(vae_run / "model.npz").model
    digits = data.load("digits")
    names = ["<!--<script>", "</script><script>alert(1)</script>", "a & b", *map(str, range(7))]
    page = explorer_page(model, digits.x_test[:40], digits.y_test[:40], image_shape=(8, 8), class_names=names,
                         title="</script><!--")
    start = page.index('<script type="application/json" id="page-data">') + len(
        '<script type="application/json" id="page-data">')
    text = page[start:page.index("</script>", start)]
    assert "<" not in text and ">" not in text
    assert json.loads(text)["class_names"] == names
    assert page.count("<script") == 3 and page.count("</script>") == 3  # the data, the decoder, the page


def test_checkpoints_record_the_versions_and_a_resume_under_others_says_so(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    monkeypatch.setattr(checkpoint, "software_versions", lambda: {"scratchae": "0.0.9", "numpy": "1.26.0"})
    assert in_process(["train", *COMMON, "--epochs", "1", "--out", str(out)]) == 0
    assert checkpoint.load(out / "model.npz").meta["software"] == {"scratchae": "0.0.9", "numpy": "1.26.0"}
    monkeypatch.undo()
    import scratchae

    capsys.readouterr()
    assert in_process(["train", *COMMON, "--epochs", "2", "--out", str(out), "--resume"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "other versions" in line]
    assert notes == [f"note: the run trained under other versions and resumes under these (scratchae '0.0.9' to "
                     f"{scratchae.__version__}; numpy '1.26.0' to {numpy.__version__}); from here on its last bits "
                     f"may differ from a run that was never stopped"]
    assert checkpoint.load(out / "model.npz").meta["software"] == {"scratchae": scratchae.__version__,
                                                                    "numpy": numpy.__version__}
    assert in_process(["train", *COMMON, "--epochs", "3", "--out", str(out), "--resume"]) == 0
    assert "other versions" not in capsys.readouterr().out


def test_the_continue_with_command_is_shell_quoted(tmp_path, monkeypatch, capsys):
    from scratchae import training

    real_step, calls = training.train_step, []

    def step_then_signal(*arguments):
        calls.append(1)
        if len(calls) == 10:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*arguments)

    monkeypatch.setattr(training, "train_step", step_then_signal)
    out = tmp_path / "my runs" / "it's mine"
    assert in_process(["train", *COMMON, "--epochs", "2", "--out", str(out)]) == 128 + signal.SIGTERM
    line = capsys.readouterr().err.strip().splitlines()[-1]
    command = shlex.split(line.split("continue with ", 1)[1])
    assert command == ["scratchae", "train", "--out", str(out), "--resume", "--epochs", "2"]
    monkeypatch.setattr(training, "train_step", real_step)
    assert in_process(command[1:]) == 0


def test_gradcheck_layer_refuses_an_input_past_its_memory_bound_before_loading_anything(tmp_path, capsys):
    assert in_process(["gradcheck", "--layer", str(tmp_path / "missing.py") + ":Big", "--input-shape",
                       "10000,1000"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "scratchae: error: --input-shape 10000,1000 has 10,000,000 numbers; the check holds up to 20 float64 copies "
        "of its input, and stays within 1 GiB: give at most 6,710,886 numbers (a few rows are enough to check a "
        "layer)")
    assert in_process(["gradcheck", "--help"]) == 0
    assert "at most 6,710,886 numbers" in " ".join(capsys.readouterr().out.split())

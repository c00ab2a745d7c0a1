"""The demo folder stays one run's, however ``scratchae demo`` ends: two demos started together, a demo interrupted
at chosen moments and run again, a full disk, a learner's own files in the folder. Processes are real (the quick
one-step chapter, a few seconds each), in the style of test_every_ending."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_every_ending import listing, small_disk  # noqa: F401 (small_disk is a fixture)

from scratchae.cli.run_folder import STAGING_PREFIX, RunFolder

QUICK = ["--quick", "--data", "digits", "--device", "cpu", "--only", "one_step"]


def demo(out: Path, *extra: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scratchae", "demo", *QUICK, "--out", str(out), *extra], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> tuple[str, str]:
    stdout, stderr = process.communicate(timeout=240)
    assert "Traceback" not in stdout + stderr
    return stdout, stderr


def check(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scratchae", "demo", "--check", str(out), "--only", "one_step"],
                          capture_output=True, text=True, timeout=120)


def leftovers(out: Path) -> list[str]:
    """Staging folders, temporaries and lock files anywhere under ``out``."""
    return [str(path.relative_to(out)) for path in out.rglob("*")
            if path.name.startswith(STAGING_PREFIX) or ".scratchae-tmp" in path.name or path.name == ".scratchae-lock"]


def test_two_demos_started_together_one_runs_and_the_other_refuses_naming_it(tmp_path):
    first, second = demo(tmp_path / "out", cwd=tmp_path), demo(tmp_path / "out", cwd=tmp_path)
    results = {process: finished(process) for process in (first, second)}
    assert sorted(process.returncode for process in results) == [0, 2], [r[1] for r in results.values()]
    runner = first if first.returncode == 0 else second
    refused = results[second if runner is first else first][1]
    assert refused.strip().splitlines() == [
        f"scratchae: error: --out {tmp_path / 'out'} is being written by another scratchae demo (pid {runner.pid}); "
        f"nothing in it was changed: wait for that run to end, or stop it (kill -TERM {runner.pid} stops it; its "
        f"finished chapters are kept), then try again"]
    assert check(tmp_path / "out").returncode == 0
    assert leftovers(tmp_path / "out") == []


def test_a_demo_into_a_locked_folder_changes_nothing(tmp_path):
    out = tmp_path / "out"
    assert finished(demo(out, cwd=tmp_path)) and check(out).returncode == 0
    with RunFolder(out, files=(), command="scratchae demo").writing():  # this test process is the running demo
        before = listing(out)
        second = demo(out, cwd=tmp_path)
        _, stderr = finished(second)
        assert second.returncode == 2 and f"(pid {os.getpid()})" in stderr and len(stderr.splitlines()) == 1
        assert listing(out) == before


# Moments inside the chapter, named by the line the demo has just printed (it flushes each line). Each leaves a tenth
# of a second or more of the chapter's work before its files could be committed, so the signal lands mid-chapter on
# a fast machine as on a slow one, where a sleep of fixed length once outlasted the whole chapter.
MOMENTS = {"loading its data": "    one_step (quick)", "about to train": "    Dataset(",
           "trained, drawing its figure": "    loss before the first step"}


def read_until(process: subprocess.Popen, start: str) -> None:
    for line in process.stdout:
        if line.startswith(start):
            return
    pytest.fail(f"the demo ended before printing a line that starts with {start!r}")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["interrupt", "kill"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_demo_interrupted_at_any_moment_keeps_the_earlier_run_and_the_next_run_clears_what_it_left(
        tmp_path, moment, stop):
    out = tmp_path / "out"
    assert finished(first := demo(out, cwd=tmp_path)) and first.returncode == 0
    earlier = json.loads((out / "one_step" / "run.json").read_text())["run"]
    stopped = demo(out, cwd=tmp_path)
    read_until(stopped, MOMENTS[moment])  # the chapter is under way
    stopped.send_signal(stop)
    _, stderr = finished(stopped)
    assert stopped.returncode == (-signal.SIGKILL if stop == signal.SIGKILL else 130), stderr  # stopped, not ended
    done = check(out)
    assert done.returncode == 0, done.stderr  # the earlier run whole, or the new one whole: never a mixture
    assert json.loads((out / "one_step" / "run.json").read_text())["run"] == earlier
    if stop == signal.SIGKILL:  # what the killed run left, for the next run to clear: its lock and staging folder
        assert ".scratchae-lock" in leftovers(out) and any(STAGING_PREFIX in path for path in leftovers(out))
    assert finished(again := demo(out, cwd=tmp_path)) and again.returncode == 0
    assert check(out).returncode == 0
    assert leftovers(out) == []


def test_check_refuses_figures_and_metrics_of_two_runs(tmp_path):
    out = tmp_path / "out"
    other = tmp_path / "other"
    assert finished(demo(out, cwd=tmp_path)) and finished(demo(other, "--seed", "1", cwd=tmp_path))
    (out / "one_step" / "metrics.json").write_bytes((other / "one_step" / "metrics.json").read_bytes())
    done = check(out)
    assert done.returncode == 1
    assert (f"scratchae: {out / 'one_step' / 'metrics.json'}: not the file of the run that run.json records "
            f"(changed, or of another run)") in done.stderr.splitlines()
    assert (f"scratchae: {out / 'one_step' / 'metrics.json'}: seed 1, but the run recorded in run.json had seed 0"
            in done.stderr.splitlines())


def test_a_learners_index_and_figures_are_kept_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    refused = demo(out, cwd=tmp_path)
    _, stderr = finished(refused)
    assert refused.returncode == 2
    assert stderr == (f"scratchae: error: {out / 'index.html'} was not written by scratchae; it is kept as it is and "
                      f"nothing was written: give another --out, or --overwrite to replace it\n")
    assert (out / "index.html").read_text() == "my own page" and not (out / "one_step").exists()
    (out / "one_step").mkdir()
    (out / "one_step" / "00_one_step.png").write_bytes(b"my own figure")
    (out / "index.html").unlink()
    refused = demo(out, cwd=tmp_path)
    _, stderr = finished(refused)
    assert refused.returncode == 2 and "holds 00_one_step.png, which scratchae demo did not write" in stderr
    assert (out / "one_step" / "00_one_step.png").read_bytes() == b"my own figure"
    replaced = demo(out, "--overwrite", cwd=tmp_path)
    finished(replaced)
    assert replaced.returncode == 0 and check(out).returncode == 0
    again = demo(out, cwd=tmp_path)  # its own files, replaced without being told
    finished(again)
    assert again.returncode == 0


def test_a_full_disk_under_demo_is_one_line_naming_the_figure_and_what_is_kept(small_disk, tmp_path):  # noqa: F811
    disk, limit = small_disk
    if limit is not None:
        pytest.skip("needs a tmpfs (mount -t tmpfs), which this machine does not let the tests mount")
    filler = disk / "a learner's file"
    filler.write_bytes(b"x" * (52 * 1024))  # leaves about 12 KiB: the log fits, the 34 KB figure does not
    process = demo(disk / "out", cwd=tmp_path)
    stdout, stderr = finished(process)
    assert process.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    figure = disk / "out" / "one_step" / "00_one_step.png"
    failed = [line for line in lines if line.startswith("scratchae: demo one_step failed")]
    assert len(failed) == 1, stderr
    assert failed[0].startswith(f"scratchae: demo one_step failed (exit status 1): cannot write {figure}: No space "
                                f"left on device; nothing was written; no figures of it are in "
                                f"{disk / 'out' / 'one_step'}; its output is in ")
    log = Path(failed[0].rsplit("its output is in ", 1)[1])
    assert "Traceback" in log.read_text()  # the traceback is in the log, not on the terminal
    assert STAGING_PREFIX not in stderr and ".scratchae-tmp" not in stderr
    assert all(line.startswith("scratchae: ") for line in lines)
    assert filler.stat().st_size == 52 * 1024
    assert leftovers(disk / "out") == []
    with contextlib.suppress(OSError):
        if log.parent != disk / "out" / "one_step":
            log.unlink()

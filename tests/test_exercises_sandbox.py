"""A learner's file cannot end, hang or fool ``scratchae exercises check``: each way out is a verdict line.

Fault injection as in test_every_ending: files that exit (at import, in ``backward``), raise ``BaseException``,
loop forever, call ``os._exit`` or crash Python through ctypes; a Ctrl-C in the middle; the teacher's CI recipe of docs/learners-turn.md run
against a passing, a wrong and an exiting folder. Every check runs under a time limit the test sets.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_exercises import ANSWERS, answer

from scratchae import exercises

ROOT = Path(__file__).resolve().parents[1]

#: The time limit these tests give each check (a right answer takes well under a tenth of it).
LIMIT = "2"

#: Where the verdict must say the fault was.
IN_BACKWARD = r"in `backward` \(01_relu\.py, line \d+\)"

#: What each kind of fault does in place of relu's backward, and the verdict it must get.
FAULTS = {
    "exit in backward": ("import sys\nsys.exit(0)", rf"wrong: exited with status 0 {IN_BACKWARD}"),
    "exit status 3": ("raise SystemExit(3)", rf"wrong: exited with status 3 {IN_BACKWARD}"),
    "BaseException": ("raise BaseException('not mine to catch')",
                      rf"wrong: raised BaseException: not mine to catch {IN_BACKWARD}"),
    "KeyboardInterrupt": ("raise KeyboardInterrupt", rf"wrong: raised KeyboardInterrupt {IN_BACKWARD}"),
    "endless loop": ("while True:\n    pass", rf"wrong: did not finish within {LIMIT} s; it was {IN_BACKWARD}"),
    "os._exit": ("import os\nos._exit(0)", r"wrong: exited with status 0 without a verdict \(os\._exit\?\)"),
    "segfault": ("import ctypes\nctypes.string_at(0)", rf"wrong: crashed \(SIGSEGV\) {IN_BACKWARD}"),
}


def check(folder: Path, *names: str, timeout: str = LIMIT, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scratchae", "exercises", "check", str(folder), *names,
                           "--timeout", timeout], capture_output=True, text=True, timeout=120, **options)


def verdict(output: str, name: str) -> str:
    line = next(line for line in output.splitlines() if re.match(rf" *\d+  {name} ", line))
    return line.split(None, 2)[2]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_file_that_exits_loops_or_crashes_is_a_wrong_verdict_and_the_status_is_1(tmp_path, fault):
    code, expected = FAULTS[fault]
    exercises.start(tmp_path)
    answer(tmp_path, "relu", code)
    answer(tmp_path, "sigmoid", ANSWERS["sigmoid"][0])
    done = check(tmp_path, "relu", "sigmoid")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.fullmatch(expected, verdict(done.stdout, "relu")), done.stdout
    assert verdict(done.stdout, "sigmoid") == "right"  # the checks after it still ran
    assert done.stdout.splitlines()[-1] == "1 of 2 right"
    assert done.stderr == ""


def test_a_process_the_learners_code_leaves_behind_neither_holds_nor_outlives_the_check(tmp_path):
    exercises.start(tmp_path)
    answer(tmp_path, "relu", "import subprocess\nsubprocess.Popen(['sleep', '300'])\n" + ANSWERS["relu"][0])
    started = time.monotonic()
    done = check(tmp_path, "relu", timeout="30")
    assert verdict(done.stdout, "relu") == "right" and done.returncode == 0
    assert time.monotonic() - started < 25  # the verdict came when it was written, not at the limit
    assert not _children_checking(tmp_path)


def test_an_exit_at_import_is_named_as_such(tmp_path):
    exercises.start(tmp_path)
    path = tmp_path / exercises.EXERCISES[0].file
    path.write_text("import sys\nsys.exit(0)\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    done = check(tmp_path, "relu")
    assert done.returncode == 1
    assert verdict(done.stdout, "relu") == "wrong: exited with status 0 at import (01_relu.py, line 2)"


def test_ctrl_c_keeps_the_verdicts_reached_and_ends_with_130(tmp_path):
    exercises.start(tmp_path)
    answer(tmp_path, "relu", ANSWERS["relu"][0])
    answer(tmp_path, "sigmoid", ANSWERS["sigmoid"][1])
    answer(tmp_path, "dense", "while True:\n    pass")  # the check that Ctrl-C stops
    process = subprocess.Popen([sys.executable, "-m", "scratchae", "exercises", "check", str(tmp_path), "--timeout",
                                "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shown = [process.stdout.readline() for _ in range(3)]  # the heading and two verdicts, printed as they came
    deadline = time.monotonic() + 60
    while not _children_checking(tmp_path) and time.monotonic() < deadline:  # dense's check has begun
        time.sleep(0.05)
    time.sleep(1.0)  # inside the endless loop of dense
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "relu" in shown[1] and shown[1].rstrip().endswith("right")
    assert "sigmoid" in shown[2] and "wrong: gradient of x" in shown[2]
    assert rest == ""
    count = len(exercises.EXERCISES)
    assert stderr == f"scratchae: interrupted while checking dense: 2 of {count} checked, 1 right\n"
    assert not _children_checking(tmp_path)  # the looping child was stopped with the checker


def _children_checking(folder: Path) -> list[int]:
    """The processes still checking an exercise of ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"scratchae.exercises.sandbox" in command and str(folder).encode() in command:
                found.append(int(entry.name))
    return found


def test_the_readme_ci_recipe_passes_only_a_folder_whose_every_exercise_is_right(tmp_path):
    page = (ROOT / "docs" / "learners-turn.md").read_text(encoding="utf-8")  # the page with the teacher's recipe
    recipe = re.search(r"`(scratchae exercises check submission --timeout \d+)`", page).group(1)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    statuses = {}
    for kind in ("passing", "wrong", "exiting"):
        folder = tmp_path / kind / "submission"
        exercises.start(folder)
        for name, (right, wrong, _) in ANSWERS.items():
            answer(folder, name, wrong if kind == "wrong" and name == "kl" else right)
        if kind == "exiting":  # every gradient right, but the file ends the process that would judge it
            path = folder / exercises.EXERCISES[2].file
            path.write_text(path.read_text(encoding="utf-8").replace(
                "return dy @ self.W.data.T", "import sys\n        sys.exit(0)"), encoding="utf-8")
        done = subprocess.run(["bash", "-c", recipe], cwd=folder.parent, env=environment, capture_output=True,
                              text=True, timeout=300)
        statuses[kind] = done.returncode
        assert "Traceback" not in done.stdout + done.stderr
        if kind == "exiting":
            assert "wrong: exited with status 0 in `backward` (03_dense.py" in done.stdout
    assert statuses == {"passing": 0, "wrong": 1, "exiting": 1}


def test_the_generated_pytest_files_still_fail_an_exiting_file(tmp_path):
    exercises.start(tmp_path)
    answer(tmp_path, "relu", "import sys\nsys.exit(0)")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path), "-m", "relu"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode != 0, done.stdout


def test_a_bad_timeout_or_folder_is_one_line_and_status_2(tmp_path):
    done = check(tmp_path, timeout="0")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    done = check(tmp_path / "missing")
    assert done.returncode == 2 and "is not a folder of exercises" in done.stderr
    assert len(done.stderr.splitlines()) == 1

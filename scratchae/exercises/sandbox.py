"""Each exercise checked in a child process of its own, under a time limit: a learner's file cannot end the checker.

A file that calls ``sys.exit(0)`` (at import or inside ``backward``), raises ``BaseException``, loops forever,
calls ``os._exit`` or crashes the interpreter (a segmentation fault through ``ctypes``) would stop, hang or fool a
checker that runs it in its own process: a teacher's CI that trusts the exit status would report a pass. Here each
exercise runs in ``python -m scratchae.exercises.sandbox``, and every way it can end is a verdict:

====================================  =====================================================================
the child                             the verdict
====================================  =====================================================================
reports a result                      that result (right, wrong, not started)
raises SystemExit / BaseException     wrong: exited with status 0 in `backward` (FILE, line N)
ends without a result (``os._exit``)  wrong: exited with status 3 without a verdict (os._exit?)
is killed by a signal (a crash)       wrong: crashed (SIGSEGV) in `backward` (FILE, line N)
runs past the time limit              wrong: did not finish within 5 s; it was in `backward` (FILE, line N)
====================================  =====================================================================

The child tells the parent over a pipe of its own (never its stdout, which the learner's prints use): first
``ready`` once the library is imported (the time limit starts then, so a slow start of Python is not counted
against the learner), then one JSON line with the result. Where the learner's code was is read from the Python
traceback that :mod:`faulthandler` writes to a file when the child crashes or is asked (SIGUSR1) before it is
killed for taking too long.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from scratchae.exercises.judge import Result

#: Seconds each exercise may take by default, from the moment its child has imported the library (a right answer
#: takes well under one).
DEFAULT_TIMEOUT = 5.0

#: Seconds a time limit may be at most (eleven days): the alarm behind it (``faulthandler.dump_traceback_later``)
#: overflows on far larger counts.
LONGEST_TIMEOUT = 1e6

#: Seconds a child may take to import the library and say it is ready (not the learner's time).
START_LIMIT = 120.0

#: Seconds a child that ran past its limit is given, at most, to write where it was before it is killed.
TRACE_GRACE = 5.0

#: ``File "PATH", line N in NAME``: one frame of the traceback faulthandler writes.
_FRAME = re.compile(r'^\s*File "(?P<file>.*)", line (?P<line>\d+) in (?P<function>.+?)\s*$')


def check_each(folder, exercises, *, timeout: float = DEFAULT_TIMEOUT):
    """Check each of ``exercises`` (in ``folder``) in a child process; yields one :class:`Result` as each ends."""
    for exercise in exercises:
        yield check_in_child(folder, exercise, timeout=timeout)


def check_in_child(folder, exercise, *, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """The verdict on ``exercise`` in ``folder``, checked in a child process that may take ``timeout`` seconds."""
    path = Path(folder) / exercise.file
    if not path.exists():  # no file, no code to run: said without a child
        return Result(exercise.name, "not started",
                      f"no file {path.name} (scratchae exercises start adds missing ones)")
    with tempfile.TemporaryDirectory(prefix="scratchae-check-") as scratch:
        trace = Path(scratch) / "trace.txt"
        read_end, write_end = os.pipe()
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "scratchae.exercises.sandbox", str(folder), exercise.name, str(write_end),
                 str(trace), str(timeout)],
                pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)  # Ctrl-C reaches the parent, which stops it
        finally:
            os.close(write_end)
        try:
            with os.fdopen(read_end, "rb") as messages:
                return _verdict(exercise.name, path, child, messages, trace, timeout)
        finally:
            _stop(child)


def _wait_for_trace(trace: Path, limit: float) -> None:
    """Wait until the child has written where it was into ``trace`` (faulthandler writes it in one go), or for
    ``limit`` seconds: a busy machine may take a while to run the child's signal handler."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not (trace.is_file() and trace.stat().st_size):
        time.sleep(0.02)
    time.sleep(0.05)  # the last of its lines


def _verdict(name: str, path: Path, child: subprocess.Popen, messages, trace: Path, timeout: float) -> Result:
    received = _read_until(messages, b"ready\n", START_LIMIT)
    if received is None:
        _stop(child)
        return Result(name, "wrong", f"its check did not start within {START_LIMIT:g} s (the machine is too busy?)")
    if received.endswith(b"ready\n"):
        received = _read_until(messages, b"\n", timeout)  # the verdict's line (a process the learner's code
        # started may hold the pipe open after the child ended)
        if received is None:  # still running at the limit: ask it where it is, then stop it
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGUSR1)
            _wait_for_trace(trace, TRACE_GRACE)
            _stop(child)
            where = _where(trace, path)
            return Result(name, "wrong", f"did not finish within {timeout:g} s" + (f"; it was{where}" if where else ""))
    status = child.wait()
    result = _result(received or b"")
    if result is not None:
        return Result(name, result.get("status", "wrong"), result.get("detail", ""))
    if status < 0:
        return Result(name, "wrong", f"crashed ({_signal_name(-status)}){_where(trace, path)}")
    return Result(name, "wrong", f"exited with status {status} without a verdict (os._exit?){_where(trace, path)}")


def _read_until(messages, end: bytes, limit: float) -> bytes | None:
    """What the child writes until it writes ``end`` or closes the pipe; None if ``limit`` seconds pass first."""
    received, deadline = b"", time.monotonic() + limit
    while not received.endswith(end):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([messages], [], [], left)[0]:
            return None
        chunk = os.read(messages.fileno(), 65536)
        if not chunk:  # the child closed the pipe: it ended
            break
        received += chunk
    return received


def _result(received: bytes) -> dict | None:
    """The child's result: the JSON object on the last line it wrote after ``ready`` (None if it wrote none)."""
    for line in reversed(received.splitlines()):
        with contextlib.suppress(ValueError):
            result = json.loads(line)
            if isinstance(result, dict) and result.get("status") in ("right", "wrong", "not started"):
                return result
    return None


def _stop(child: subprocess.Popen) -> None:
    """Kill the child and whatever it started (its own process group: it leads a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _signal_name(number: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(number).name
    return f"signal {number}"


def _where(trace: Path, path: Path) -> str:
    """`` in `backward` (03_dense.py, line 40)``: the most recent frame of the learner's file in the traceback that
    faulthandler wrote (empty if it wrote none there)."""
    try:
        text = trace.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():  # faulthandler lists the most recent call first
        frame = _FRAME.match(line)
        if frame and _same_path(frame.group("file"), path):
            return _place(frame.group("function"), path, frame.group("line"))
    return ""


def _place(function: str, path: Path, line) -> str:
    """`` in `backward` (03_dense.py, line 40)``, or `` at import (03_dense.py, line 3)`` for the file's top level."""
    return f" {'at import' if function == '<module>' else f'in `{function}`'} ({path.name}, line {line})"


def _same_path(file: str, path: Path) -> bool:
    with contextlib.suppress(OSError):
        return Path(file).resolve() == path.resolve()
    return False


# --------------------------------------------------------------------------------------------------------------------
# The child
# --------------------------------------------------------------------------------------------------------------------


def _child(folder: str, name: str, fd: int, trace: str, timeout: float) -> None:
    """Check exercise ``name`` in ``folder`` and write its result to the descriptor ``fd``."""
    import faulthandler

    from scratchae import exercises

    channel = os.fdopen(fd, "w", encoding="utf-8")
    trace_file = open(trace, "w", encoding="utf-8")  # noqa: SIM115 (open for the life of the process)
    faulthandler.enable(file=trace_file)  # a crash writes where it was
    faulthandler.register(signal.SIGUSR1, file=trace_file)  # so does the parent, before it stops a slow check
    faulthandler.dump_traceback_later(START_LIMIT + timeout, exit=True, file=trace_file)  # if the parent is gone
    (exercise,) = exercises.find([name])
    path = Path(folder) / exercise.file
    channel.write("ready\n")
    channel.flush()
    try:
        result = exercise.run(folder)
        verdict = {"status": result.status, "detail": result.detail}
    except BaseException as error:  # noqa: BLE001 (SystemExit, KeyboardInterrupt, BaseException: all theirs)
        verdict = {"status": "wrong", "detail": _escaped(error, path)}
    channel.write(json.dumps(verdict) + "\n")
    channel.flush()
    os._exit(0)  # no exit handler or finalizer of the learner's runs after the verdict


def _escaped(error: BaseException, path: Path) -> str:
    """What a SystemExit or other BaseException that escaped the checks says: ``exited with status 0 in
    `backward` (03_dense.py, line 40)``."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if _same_path(frame.filename, path)]
    where = _place(frames[-1].name, path, frames[-1].lineno) if frames else ""
    if isinstance(error, SystemExit):
        code = error.code
        status = 0 if code is None else code if isinstance(code, int) else 1
        said = "" if code is None or isinstance(code, int) else f" ({str(code)[:200]})"
        return f"exited with status {status}{where}{said}"
    message = str(error)[:200]
    return f"raised {type(error).__name__}{': ' + message if message else ''}{where}"


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]))

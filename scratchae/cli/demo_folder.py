"""The demo folder is one run's: one ``scratchae demo`` writes it at a time, and each chapter's files are one run's.

:func:`locked_output` holds the output folder's lock (a second ``scratchae demo`` is refused, naming the first's
pid) and refuses, before anything runs, to replace a file there that scratchae did not write. :func:`chapter_run`
runs one chapter into a hidden staging folder of ``OUT/NAME`` (a :class:`scratchae.cli.run_folder.RunFolder` whose
files are the chapter's figures, pages, ``metrics.json`` and ``log.txt``): only a run that finished moves into
place, all its files together and ``run.json`` last, recording the run's seed, settings and each file's SHA-256. A
failed or interrupted run leaves the earlier one whole; what a killed one left is cleared by the next. The child's
error becomes one line that names the file the user asked for (never the staging folder) and what was kept; its
traceback stays in the log (:class:`ChapterLog`). :func:`one_run_problems` is what ``scratchae demo --check`` adds:
each chapter's files are those its ``run.json`` records.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import signal
import tempfile
import uuid
from pathlib import Path

from scratchae.cli import own_files
from scratchae.cli.gallery import DEMOS, INDEX, LOG, METRICS, PAGES, read_metrics
from scratchae.cli.run_folder import MANIFEST, STAGING_PREFIX, RunFolder


#: What stopping a ``scratchae demo`` with SIGTERM does, for the message that refuses a second one.
_STOPPING = "stops it; its finished chapters are kept"

#: The signals that stop a demo run, held back while a finished chapter moves into place.
_STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

#: The last line of a Python traceback: ``package.module.SomeError: what happened``.
_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*: (?P<message>.+)$")


def chapter_files(name: str) -> tuple[str, ...]:
    """The files of one run of the demo ``name``: its figures, pages, ``metrics.json`` and ``log.txt``."""
    return (*DEMOS[name][1], *PAGES.get(name, ()), METRICS, LOG)


def chapter_folder(out, name: str) -> RunFolder:
    """The folder ``OUT/NAME`` of one chapter, holding one run's files (:mod:`scratchae.cli.run_folder`)."""
    return RunFolder(Path(out) / name, files=chapter_files(name), command="scratchae demo", stopping=_STOPPING)


@contextlib.contextmanager
def locked_output(out, names, *, overwrite: bool = False):
    """The block runs as the only ``scratchae demo`` writing ``out`` (a second is refused, naming this one's pid),
    after every file it would replace was found to be scratchae's (or ``overwrite`` said to replace it anyway).
    SIGTERM and SIGHUP stop it as Ctrl-C does: the chapter running is abandoned, the finished ones are kept."""
    folder = RunFolder(out, files=(INDEX, own_files.LEDGER), command="scratchae demo", stopping=_STOPPING)
    with folder.writing(), _stopped_as_by_ctrl_c():
        how = "give another --out, or --overwrite to replace it"
        own_files.check_replaceable(Path(out) / INDEX, overwrite=overwrite, how=how)
        for name in names:
            foreign = chapter_folder(out, name).foreign_files()
            if foreign and not overwrite:
                raise own_files.NotOursError(
                    f"{Path(out) / name} holds {', '.join(foreign)}, which scratchae demo did not write (its "
                    f"{MANIFEST} does not list them); nothing was changed: give another --out, or --overwrite to "
                    f"replace them")
        yield


@contextlib.contextmanager
def _stopped_as_by_ctrl_c():
    def interrupt(number, frame):
        raise KeyboardInterrupt

    previous = {stop: signal.signal(stop, interrupt) for stop in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


@contextlib.contextmanager
def chapter_run(out, name: str, options: list[str]):
    """One run of the chapter ``name`` into a staging folder of ``OUT/NAME``; yields a :class:`_ChapterRun` whose
    ``status`` the block sets to the child's exit status. Status 0 moves the run's files into place together (the
    earlier run's go); anything else (a failure, Ctrl-C) leaves the earlier run as it was, and keeps the log."""
    folder = chapter_folder(out, name)
    with folder.writing(), folder.staging() as staging:  # what an interrupted run left is cleared here
        chapter = _ChapterRun(folder, staging, name, options)
        try:
            yield chapter
        finally:
            chapter.finish()


class _ChapterRun:
    """One run of a chapter: its staging folder, its log, its exit status, and what is said if it failed."""

    def __init__(self, folder: RunFolder, staging: Path, name: str, options: list[str]):
        self.folder, self.staging, self.name, self.options = folder, staging, name, options
        self.log = ChapterLog(staging / LOG, shown_as=(str(staging), str(folder.path)))
        self.status: int | None = None  # None: stopped before the child ended
        self.why = ""  # ": the child's error line; what was kept" for a failed run

    def finish(self) -> None:
        """A finished run moves into place; any other keeps its log and says, in one line, why it failed (naming
        the files the user asked for, never the staging folder) and what was kept."""
        if self.status == 0:
            try:
                self._place()
                return
            except OSError as error:  # a full disk for run.json: the earlier run stays
                self.status, self.log.problem = 1, f"{error}"
        self._keep_log()
        if self.status is not None:
            why = f": {self.log.problem or self.log.error_line() or 'see its log'}; {self._kept()}"
            self.why = why.replace(str(self.staging), str(self.folder.path))

    def _place(self) -> None:
        files = [name for name in self.folder.files if (self.staging / name).is_file()]
        about = {"demo": self.name, "run": uuid.uuid4().hex, "seed": _seed(self.options),
                 "settings": list(self.options),
                 "sha256": {name: _sha256(self.staging / name) for name in files if name != LOG}}
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)  # a Ctrl-C now waits for the few renames to end
        try:
            self.folder.place(self.staging, files, about)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self.log.path = self.folder.path / LOG if self.log.path == self.staging / LOG else self.log.path

    def _keep_log(self) -> None:
        """The log of a run that did not finish replaces the chapter's log (the earlier run's figures stay)."""
        if self.log.path == self.staging / LOG:
            try:
                os.replace(self.staging / LOG, self.folder.path / LOG)
                self.log.path = self.folder.path / LOG
            except OSError:
                pass

    def _kept(self) -> str:
        if self.folder.manifest().get("files"):
            return f"the figures of its earlier run in {self.folder.path} are kept"
        return f"no figures of it are in {self.folder.path}"

    def report(self) -> dict:
        return {"why": self.why, "log": self.log.path} if self.status != 0 else {}


class ChapterLog:
    """A chapter's log: every line of the child's output. A disk that refuses it (full, read-only) moves it to a
    temporary file of the system's, never stopping the run; the lines are kept in memory too, to find the error."""

    def __init__(self, path: Path, shown_as: tuple[str, str] | None = None):
        self.path = Path(path)
        self.shown_as = shown_as  # (a path in the child's output, what the terminal says instead)
        self.lines: list[str] = []
        self.problem = ""  # what the runner itself could not do (write the run's record)
        self._file = None
        self._in_traceback = False

    @classmethod
    def of(cls, log) -> ChapterLog:
        return log if isinstance(log, ChapterLog) else cls(log)

    def __enter__(self) -> ChapterLog:
        try:
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed by __exit__)
        except OSError:
            self._fall_back()
        return self

    def __exit__(self, *exception) -> None:
        with contextlib.suppress(OSError):
            self._file.close()

    def write(self, line: str) -> None:
        self.lines.append(line)
        try:
            self._file.write(line)
            self._file.flush()
        except OSError:
            self._fall_back()

    def shown(self, line: str) -> str | None:
        """``line`` as the terminal shows it (the staging folder named as the folder the user asked for), or None
        once a traceback starts (it is in the log)."""
        self._in_traceback = self._in_traceback or line.startswith("Traceback (most recent call last)")
        if self._in_traceback:
            return None
        return line.replace(*self.shown_as) if self.shown_as else line

    def error_line(self) -> str:
        """The child's error in one line: a traceback's last line without the exception's module, or else the
        last line it printed."""
        lines = [line.strip() for line in self.lines if line.strip()]
        if not lines:
            return ""
        match = _ERROR_LINE.match(lines[-1]) if self._in_traceback else None
        return match.group("message") if match else lines[-1]

    def _fall_back(self) -> None:
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
        descriptor, name = tempfile.mkstemp(prefix="scratchae-demo-", suffix=".log")
        self.path = Path(name)
        self._file = os.fdopen(descriptor, "w", encoding="utf-8")
        self._file.writelines(self.lines)
        self._file.flush()


def _seed(options: list[str]) -> int | None:
    with contextlib.suppress(ValueError, IndexError):
        return int(options[options.index("--seed") + 1])
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_run_problems(out, name: str) -> list[str]:
    """What shows that the chapter ``OUT/NAME`` is not one run's: no ``run.json``, a figure, page or
    ``metrics.json`` that is not the file it records (changed, or of another run), a seed or quick mode in
    ``metrics.json`` other than the run's."""
    folder = chapter_folder(out, name)
    manifest = folder.manifest()
    if any(staging.name.startswith(STAGING_PREFIX) and (staging / MANIFEST).is_file()
           for staging in (folder.path.iterdir() if folder.path.is_dir() else ())):
        return [f"{folder.path}: a finished run was stopped (kill -9) while it moved into place; scratchae demo "
                f"--only {name} --out {shlex.quote(str(Path(out)))} completes the move before it runs"]
    if not manifest.get("files"):
        return [f"{folder.path / MANIFEST}: missing: nothing shows that the figures and metrics come from one run "
                f"(write them with scratchae demo --only {name} --out {shlex.quote(str(Path(out)))})"]
    recorded = manifest.get("sha256") if isinstance(manifest.get("sha256"), dict) else {}
    problems = []
    for file in (*DEMOS[name][1], *PAGES.get(name, ()), METRICS):
        path = folder.path / file
        if file not in manifest["files"] or not isinstance(recorded.get(file), str):
            problems.append(f"{path}: not part of the run that {MANIFEST} records")
        elif path.is_file() and not path.is_symlink() and _sha256(path) != recorded[file]:
            problems.append(f"{path}: not the file of the run that {MANIFEST} records (changed, or of another run)")
    metrics = read_metrics(folder.path) or {}
    settings = manifest.get("settings") if isinstance(manifest.get("settings"), list) else []
    if "seed" in metrics and metrics.get("seed") != manifest.get("seed"):
        problems.append(f"{folder.path / METRICS}: seed {metrics.get('seed')!r}, but the run recorded in "
                        f"{MANIFEST} had seed {manifest.get('seed')!r}")
    if "quick" in metrics and bool(metrics.get("quick")) != ("--quick" in settings):
        problems.append(f"{folder.path / METRICS}: quick is {metrics.get('quick')!r}, unlike the run recorded in "
                        f"{MANIFEST}")
    return problems

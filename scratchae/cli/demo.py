"""``scratchae demo``: run every demo, then write a gallery page of their figures.

    scratchae demo                       every demo, the notebooks' settings, figures in outputs/
    scratchae demo --quick               the same in seconds (a few hundred images, 2 epochs), in outputs-quick/
    scratchae demo --only denoising      some demos only
    scratchae demo --check outputs       check that every expected figure is there and is a real PNG image

Each demo is a script of the package ``scratchae.demos`` (the ``demos/`` folder of the repository). It runs as a
child process, ``python DEMO.py --out OUT/DEMO ...``, and writes its figures and a ``metrics.json`` (the data set,
the epochs, the time taken, the final losses and accuracies, every figure with its caption). Once they have run,
``OUT/index.html`` shows every figure with its caption and a table of the runs: a page that opens from the disk,
with no server. A demo that fails does not stop the others; the command then names it and ends with status 1.

The output folder is one run's (:func:`locked_output`, :func:`chapter_run`): a second ``scratchae demo`` into it is
refused while one runs, naming its pid; each chapter runs into a hidden staging folder beside its figures, and only
once it has finished are its files moved into ``OUT/NAME`` together, with ``run.json`` (the run's seed, settings
and each file's SHA-256) last, so an interrupted or failed run leaves the earlier complete one as it was, and what
an interrupted one left is cleared on the next run. ``--check`` checks that each chapter's figures and metrics are
those its ``run.json`` records. A file there that scratchae did not write (a learner's ``index.html``) is replaced
only with ``--overwrite``. A child's error (a full disk, a read-only folder) reaches the user as one line naming
the file and what was kept; its traceback is in the chapter's ``log.txt``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from scratchae.cli import own_files
from scratchae.cli.arguments import add_run_options
from scratchae.cli.run_folder import MANIFEST, STAGING_PREFIX, RunFolder
from scratchae.cli.gallery import (DEMOS, INDEX, LOG, METRICS, PAGES, PNG_SIGNATURE, read_metrics, read_text,
                                   write_index)

#: Where ``scratchae demo`` puts its figures, and where ``scratchae demo --quick`` puts its own.
FULL_OUT = "outputs"
QUICK_OUT = "outputs-quick"

# --------------------------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------------------------


def add_demo_command(commands) -> None:
    """Register ``scratchae demo`` on the sub-command parsers of the ``scratchae`` command."""
    demo = commands.add_parser("demo", help="run every demo and write OUT/index.html, a gallery of their figures",
                               description="Run the demos (each reproduces a chapter of the notebooks), then write "
                                           "OUT/index.html with every figure, its caption and the runs' results.")
    demo.add_argument("--quick", action="store_true", help="a fast pass: a few hundred images, 2 epochs")
    add_run_options(demo, epochs=None, epochs_help="epochs of every model (default: each demo's own, 2 with --quick)",
                    out=None, out_help=f"output folder (default: {FULL_OUT}, or {QUICK_OUT} with --quick, so that a "
                                       "quick pass never overwrites a full one)")
    demo.add_argument("--only", nargs="+", choices=list(DEMOS), metavar="NAME",
                      help=f"run only these demos ({', '.join(DEMOS)})")
    demo.add_argument("--check", metavar="DIR", default=None,
                      help="run nothing: check that DIR holds every expected figure as a real PNG image, and that "
                           "each chapter's figures and metrics come from one run")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace files in OUT that scratchae did not write (its index.html, a chapter's figures)")
    demo.set_defaults(run=run_demo_command)


def run_demo_command(arguments) -> int:
    """``scratchae demo``: run the demos and write the gallery, or only check a folder (``--check``)."""
    names = arguments.only or list(DEMOS)
    if arguments.check is not None:
        return _report_check(Path(arguments.check), names)
    out = Path(arguments.out or (QUICK_OUT if arguments.quick else FULL_OUT))
    options = ["--data", arguments.data, "--device", arguments.device, "--seed", str(arguments.seed)]
    if arguments.epochs is not None:
        options += ["--epochs", str(arguments.epochs)]
    if arguments.quick:
        options.append("--quick")
    if arguments.threads is not None:
        options += ["--threads", str(arguments.threads)]
    started = time.perf_counter()
    command = shlex.join(["scratchae", "demo", *_shown_options(arguments)])
    with locked_output(out, names, overwrite=arguments.overwrite):
        try:
            runs = run_demos(names, out, options)
        except KeyboardInterrupt:
            index = _write_gallery(out, command=command)
            print(f"\nscratchae: interrupted; the chapters that had not finished keep their earlier figures"
                  + (f"; the gallery of what had finished is {index}" if index else ""), file=sys.stderr)
            return 130
        index = _write_gallery(out, runs=runs, command=command)
    total = time.perf_counter() - started
    print(f"\n{'demo':<22}{'status':<10}{'seconds':>9}")
    for name, run in runs.items():
        print(f"{name:<22}{'ok' if run['status'] == 0 else 'FAILED':<10}{run['seconds']:>9.1f}")
    print(f"{'all':<22}{'':<10}{total:>9.1f}")
    if index:
        print(f"\ngallery: {index}")
    failed = [name for name, run in runs.items() if run["status"] != 0]
    if failed or not index:
        for name in failed:
            print(f"scratchae: demo {name} failed (exit status {runs[name]['status']}){runs[name].get('why', '')}; "
                  f"its output is in {runs[name].get('log', out / name / LOG)}", file=sys.stderr)
        return 1
    return 0


def _write_gallery(out: Path, **options) -> Path | None:
    """Write ``OUT/index.html``; a disk that refuses it is one line (the page there is kept), not the end of the
    command's report."""
    try:
        return write_index(out, **options)
    except OSError as error:
        print(f"scratchae: {error}", file=sys.stderr)
        return None


def _shown_options(arguments) -> list[str]:
    """The options of this run as they would be typed, for the gallery page."""
    shown = []
    if arguments.quick:
        shown.append("--quick")
    if arguments.data != "mnist-5k":
        shown += ["--data", arguments.data]
    if arguments.device != "auto":
        shown += ["--device", arguments.device]
    if arguments.epochs is not None:
        shown += ["--epochs", str(arguments.epochs)]
    if arguments.seed != 0:
        shown += ["--seed", str(arguments.seed)]
    if arguments.threads is not None:
        shown += ["--threads", str(arguments.threads)]
    if arguments.only:
        shown += ["--only", *arguments.only]
    return shown


# --------------------------------------------------------------------------------------------------------------------
# Running the demos
# --------------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def demo_script(name: str):
    """The path of a demo's script, as a file on disk for as long as the context lasts."""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; the demos are: {', '.join(DEMOS)}")
    with importlib.resources.as_file(importlib.resources.files("scratchae.demos") / f"{name}.py") as path:
        yield path


def run_demos(names, out, options: list[str]) -> dict[str, dict]:
    """Run each demo in turn as a child process, its output shown and kept in ``OUT/NAME/log.txt``.

    Returns
    -------
    dict[str, dict]
        Demo name -> ``{"status": exit status, "seconds": wall-clock time}``.
    """
    out = Path(out)
    runs = {}
    for number, name in enumerate(names, start=1):
        print(f"\n[{number}/{len(names)}] {name}", flush=True)
        started = time.perf_counter()
        with chapter_run(out, name, options) as chapter, demo_script(name) as script:
            chapter.status = _run_logged([sys.executable, str(script), "--out", str(chapter.staging), *options],
                                         chapter.log)
        runs[name] = {"status": chapter.status, "seconds": time.perf_counter() - started, **chapter.report()}
    return runs


def _run_logged(command: list[str], log) -> int:
    """Run ``command``, showing its output line by line and writing it to ``log`` (a path, or a chapter's
    :class:`_Log`); returns the exit status."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with _Log.of(log) as file:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   encoding="utf-8", errors="replace", env=environment, preexec_fn=_die_with_parent)
        try:
            for line in process.stdout:
                file.write(line)
                shown = file.shown(line)  # a traceback stays in the log; its last line is said once, at the end
                if shown is not None:
                    print("    " + shown, end="", flush=True)
        except BaseException:  # Ctrl-C: stop the demo too
            process.terminate()
            raise
        finally:
            process.stdout.close()
            status = process.wait()
    return status


# --------------------------------------------------------------------------------------------------------------------
# One run per folder: the lock, the staging folder and the swap
# --------------------------------------------------------------------------------------------------------------------

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
        self.log = _Log(staging / LOG, shown_as=(str(staging), str(folder.path)))
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


class _Log:
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
    def of(cls, log) -> _Log:
        return log if isinstance(log, _Log) else cls(log)

    def __enter__(self) -> _Log:
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


def _die_with_parent() -> None:
    """In the child, before the demo starts: on Linux, end with SIGTERM when the runner ends however it ends (even
    ``kill -9``), so that no orphan goes on writing into a staging folder the next run clears."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


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


# --------------------------------------------------------------------------------------------------------------------
# Checking a folder of outputs
# --------------------------------------------------------------------------------------------------------------------


def check_outputs(out, names=None, *, index: bool = True) -> list[str]:
    """What is wrong with the figures in ``out``: one line per missing or broken file (none when all is well).

    Every expected PNG of each demo (:func:`expected_figures`) must exist, start with the PNG signature and decode
    to a non-empty image; each demo's ``metrics.json`` must be readable and list its figures; its figures, pages and
    metrics must be those of the one run its ``run.json`` records (:func:`one_run_problems`); every page of
    :data:`PAGES` must be there; with ``index``, ``out/index.html`` must exist and show every figure and page.
    """
    from matplotlib.image import imread  # matplotlib only when images are checked

    out = Path(out)
    names = list(DEMOS) if names is None else list(names)
    problems = []
    page = read_text(out / INDEX) if index else None
    if index and page is None:
        problems.append(f"{out / INDEX}: missing")
    for name in names:
        metrics = read_metrics(out / name)
        if metrics is None:
            problems.append(f"{out / name / METRICS}: missing or not valid JSON")
        for figure in DEMOS[name][1]:
            path = out / name / figure
            problem = _png_problem(path, imread)
            if problem:
                problems.append(f"{path}: {problem}")
            if metrics is not None and figure not in [entry.get("file") for entry in metrics.get("figures", [])]:
                problems.append(f"{out / name / METRICS}: does not list {figure}")
            if page is not None and f'src="{name}/{figure}"' not in page:
                problems.append(f"{out / INDEX}: does not show {name}/{figure}")
        problems += one_run_problems(out, name)
        for explorer in PAGES.get(name, ()):
            if not (read_text(out / name / explorer) or "").startswith("<!DOCTYPE html>"):
                problems.append(f"{out / name / explorer}: missing or not an HTML page")
            if page is not None and f'href="{name}/{explorer}"' not in page:
                problems.append(f"{out / INDEX}: does not link {name}/{explorer}")
    return problems


def _png_problem(path: Path, imread) -> str | None:
    if not path.is_file():
        return "missing"
    with open(path, "rb") as file:
        if file.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            return "not a PNG file (wrong signature)"
    try:
        image = imread(path)
    except Exception as error:  # a damaged file raises whatever its decoder raises
        return f"cannot be decoded ({type(error).__name__}: {error})"
    if image.ndim not in (2, 3) or image.size == 0:
        return f"decodes to an empty or odd image of shape {image.shape}"
    return None


def _report_check(out: Path, names) -> int:
    problems = check_outputs(out, names)
    for problem in problems:
        print(f"scratchae: {problem}", file=sys.stderr)
    count = sum(len(DEMOS[name][1]) for name in names)
    if problems:
        print(f"scratchae: {len(problems)} problem(s) in {out}", file=sys.stderr)
        return 1
    print(f"{out}: all {count} figures of {len(names)} demo(s) are there and are valid PNG images")
    return 0



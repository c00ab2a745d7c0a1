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

The output folder is one run's (:mod:`scratchae.cli.demo_folder`): a second ``scratchae demo`` into it is
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
import importlib.resources
import io
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from scratchae.cli.arguments import add_language_option, add_run_options, path_name
from scratchae.cli.demo_folder import ChapterLog, chapter_run, locked_output, one_run_problems
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
    add_language_option(demo)
    demo.add_argument("--check", metavar="DIR", type=path_name, default=None,
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
    if arguments.lang is not None:
        options += ["--lang", arguments.lang]
    started = time.perf_counter()
    command = shlex.join(["scratchae", "demo", *_shown_options(arguments)])
    with locked_output(out, names, overwrite=arguments.overwrite):
        try:
            runs = run_demos(names, out, options)
        except KeyboardInterrupt:
            index = _write_gallery(out, command=command, lang=arguments.lang)
            print("\nscratchae: interrupted; the chapters that had not finished keep their earlier figures"
                  + (f"; the gallery of what had finished is {index}" if index else ""), file=sys.stderr)
            return 130
        index = _write_gallery(out, runs=runs, command=command, lang=arguments.lang)
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
    if arguments.lang is not None:
        shown += ["--lang", arguments.lang]
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
    :class:`ChapterLog`); returns the exit status."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "SCRATCHAE_LIVE_PROGRESS": str(int(sys.stdout.isatty()))}
    with ChapterLog.of(log) as file:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment,
                                   preexec_fn=_die_with_parent)
        output = io.TextIOWrapper(process.stdout, encoding="utf-8", errors="replace", newline="")
        try:  # newline="": a progress line ending in "\r" is rewritten in place on the terminal, and not logged
            for line in output:
                if not line.endswith("\r"):
                    file.write(line)
                shown = file.shown(line)  # a traceback stays in the log; its last line is said once, at the end
                if shown is not None:
                    print("    " + shown, end="", flush=True)
        except BaseException:  # Ctrl-C: stop the demo too
            process.terminate()
            raise
        finally:
            output.close()
            status = process.wait()
    return status


def _die_with_parent() -> None:
    """In the child, before the demo starts: on Linux, end with SIGTERM when the runner ends however it ends (even
    ``kill -9``), so that no orphan goes on writing into a staging folder the next run clears."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


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
    if not out.is_dir():  # a wrong DIR: one line, not a line for each of the figures a folder would hold
        print(f"scratchae: error: {out}: {'not a folder' if out.exists() else 'no such folder'}; give the --out "
              f"folder of a scratchae demo", file=sys.stderr)
        return 2
    problems = check_outputs(out, names)
    for problem in problems:
        print(f"scratchae: {problem}", file=sys.stderr)
    count = sum(len(DEMOS[name][1]) for name in names)
    if problems:
        print(f"scratchae: {len(problems)} problem(s) in {out}", file=sys.stderr)
        return 1
    print(f"{out}: all {count} figures of {len(names)} demo(s) are there and are valid PNG images")
    return 0



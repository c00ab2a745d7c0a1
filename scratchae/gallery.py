"""``scratchae demo``: run every demo, then write a gallery page of their figures.

    scratchae demo                       every demo, the notebooks' settings, figures in outputs/
    scratchae demo --quick               the same in seconds (a few hundred images, 2 epochs)
    scratchae demo --only denoising      some demos only
    scratchae demo --check outputs       check that every expected figure is there and is a real PNG image

Each demo is a script of the package ``scratchae.demos`` (the ``demos/`` folder of the repository). It runs as a
child process, ``python DEMO.py --out OUT/DEMO ...``, and writes its figures and a ``metrics.json`` (the data set,
the epochs, the time taken, the final losses and accuracies, every figure with its caption). Once they have run,
``OUT/index.html`` shows every figure with its caption and a table of the runs: a page that opens from the disk,
with no server. A demo that fails does not stop the others; the command then names it and ends with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import html
import importlib.resources
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scratchae.arguments import count
from scratchae.backend import DEVICES
from scratchae.data import DATASETS

#: Each demo, in the order of the notebooks: its title and the figures (PNG files) it must write.
DEMOS = {
    "simple_autoencoder": ("A simple autoencoder", (
        "01_samples.png", "02_loss.png", "03_reconstructions.png", "04_latent_tsne.png")),
    "denoising": ("A denoising autoencoder", (
        "05_noisy_inputs.png", "06_denoised.png")),
    "exercises": ("Exercises: the size of the code, and a deeper network", (
        "07_latent_sizes.png", "08_deep_vs_single_losses.png", "08_deep_vs_single_table.png",
        "08_deep_vs_single_reconstructions.png")),
    "latent_spaces": ("Latent spaces: a classifier's and an autoencoder's", (
        "09_classifier_vs_autoencoder.png",)),
    "linear_latent": ("A linear latent layer: reconstruction, interpolation, generation", (
        "10_loss.png", "11_reconstructions.png", "12_latent_tsne.png", "13_interpolation.png",
        "14_generation.png")),
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INDEX = "index.html"
METRICS = "metrics.json"
LOG = "log.txt"


def expected_figures() -> dict[str, tuple[str, ...]]:
    """Demo name -> the PNG files it writes into its output folder."""
    return {name: figures for name, (_, figures) in DEMOS.items()}


# --------------------------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------------------------


def add_demo_command(commands) -> None:
    """Register ``scratchae demo`` on the sub-command parsers of the ``scratchae`` command."""
    demo = commands.add_parser("demo", help="run every demo and write OUT/index.html, a gallery of their figures",
                               description="Run the demos (each reproduces a chapter of the notebooks), then write "
                                           "OUT/index.html with every figure, its caption and the runs' results.")
    demo.add_argument("--quick", action="store_true", help="a fast pass: a few hundred images, 2 epochs")
    demo.add_argument("--data", choices=DATASETS, default="mnist-5k")
    demo.add_argument("--device", choices=DEVICES, default="auto")
    demo.add_argument("--epochs", type=count(1), default=None,
                      help="epochs of every model (default: the notebooks' 20, or 2 with --quick)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    demo.add_argument("--only", nargs="+", choices=list(DEMOS), metavar="NAME",
                      help=f"run only these demos ({', '.join(DEMOS)})")
    demo.add_argument("--check", metavar="DIR", default=None,
                      help="run nothing: check that DIR holds every expected figure as a real PNG image")
    demo.set_defaults(run=run_demo_command)


def run_demo_command(arguments) -> int:
    """``scratchae demo``: run the demos and write the gallery, or only check a folder (``--check``)."""
    names = arguments.only or list(DEMOS)
    if arguments.check is not None:
        return _report_check(Path(arguments.check), names)
    out = Path(arguments.out)
    options = ["--data", arguments.data, "--device", arguments.device, "--seed", str(arguments.seed)]
    if arguments.epochs is not None:
        options += ["--epochs", str(arguments.epochs)]
    if arguments.quick:
        options.append("--quick")
    started = time.perf_counter()
    command = " ".join(["scratchae demo", *_shown_options(arguments)])
    try:
        runs = run_demos(names, out, options)
    except KeyboardInterrupt:
        index = write_index(out, command=command)
        print(f"\nscratchae: interrupted; the gallery of what had finished is {index}", file=sys.stderr)
        return 130
    index = write_index(out, runs=runs, command=command)
    total = time.perf_counter() - started
    print(f"\n{'demo':<22}{'status':<10}{'seconds':>9}")
    for name, run in runs.items():
        print(f"{name:<22}{'ok' if run['status'] == 0 else 'FAILED':<10}{run['seconds']:>9.1f}")
    print(f"{'all':<22}{'':<10}{total:>9.1f}")
    print(f"\ngallery: {index}")
    failed = [name for name, run in runs.items() if run["status"] != 0]
    if failed:
        for name in failed:
            print(f"scratchae: demo {name} failed (exit status {runs[name]['status']}); its output is in "
                  f"{out / name / LOG}", file=sys.stderr)
        return 1
    return 0


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
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (METRICS, *DEMOS[name][1]):  # nothing from an earlier run may pass for this one's
            (folder / stale).unlink(missing_ok=True)
        print(f"\n[{number}/{len(names)}] {name}", flush=True)
        started = time.perf_counter()
        with demo_script(name) as script:
            status = _run_logged([sys.executable, str(script), "--out", str(folder), *options], folder / LOG)
        runs[name] = {"status": status, "seconds": time.perf_counter() - started}
    return runs


def _run_logged(command: list[str], log: Path) -> int:
    """Run ``command``, showing its output line by line and writing it to ``log``; returns the exit status."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w", encoding="utf-8") as file:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   encoding="utf-8", errors="replace", env=environment)
        try:
            for line in process.stdout:
                file.write(line)
                print("    " + line, end="", flush=True)
        except BaseException:  # Ctrl-C: stop the demo too
            process.terminate()
            raise
        finally:
            process.stdout.close()
            status = process.wait()
    return status


# --------------------------------------------------------------------------------------------------------------------
# Checking a folder of outputs
# --------------------------------------------------------------------------------------------------------------------


def check_outputs(out, names=None, *, index: bool = True) -> list[str]:
    """What is wrong with the figures in ``out``: one line per missing or broken file (none when all is well).

    Every expected PNG of each demo (:func:`expected_figures`) must exist, start with the PNG signature and decode
    to a non-empty image; each demo's ``metrics.json`` must be readable and list its figures; with ``index``,
    ``out/index.html`` must exist and show every figure.
    """
    from matplotlib.image import imread  # matplotlib only when images are checked

    out = Path(out)
    names = list(DEMOS) if names is None else list(names)
    problems = []
    page = _read_text(out / INDEX) if index else None
    if index and page is None:
        problems.append(f"{out / INDEX}: missing")
    for name in names:
        metrics = _read_metrics(out / name)
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


# --------------------------------------------------------------------------------------------------------------------
# The gallery page
# --------------------------------------------------------------------------------------------------------------------


def write_index(out, *, runs: dict[str, dict] | None = None, command: str | None = None) -> Path:
    """Write ``out/index.html`` atomically from the ``metrics.json`` of every demo found in ``out``.

    Parameters
    ----------
    out : path
        The folder holding one subfolder per demo.
    runs : dict, optional
        Demo name -> ``{"status": ..., "seconds": ...}`` of the demos just run (a failed one is marked failed).
    command : str, optional
        The command that made the figures, shown on the page.

    Returns
    -------
    pathlib.Path
        The page's path.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    page = render_index(out, runs=runs, command=command)
    path = out / INDEX
    temporary = path.with_name(f".{INDEX}.{os.getpid()}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def render_index(out, *, runs: dict[str, dict] | None = None, command: str | None = None) -> str:
    """The gallery page as HTML text: a summary table, then every demo's figures with their captions.

    Images are referenced by paths relative to ``out`` (``NAME/FILE.png``), so the folder can be moved or opened
    from the disk. Demos without a ``metrics.json`` are listed as not run (or failed, as ``runs`` says).
    """
    out = Path(out)
    runs = runs or {}
    metrics = {name: _read_metrics(out / name) for name in DEMOS}
    summary = _summary_table(metrics, runs)
    results = _results_table(metrics)
    sections = [_section(name, metrics[name], runs.get(name)) for name in DEMOS
                if metrics[name] is not None or name in runs]
    made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    about = f"Made {made}"
    if command:
        about += f" by <code>{_e(command)}</code>"
    total = sum(m.get("seconds", 0.0) for m in metrics.values() if m is not None)
    about += f"; {_format_seconds(total)} of demos in all."
    return _PAGE.format(style=_STYLE, about=about, summary=summary, results=results, sections="\n".join(sections))


def _read_metrics(folder: Path) -> dict | None:
    text = _read_text(folder / METRICS)
    if text is None:
        return None
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError:
        return None
    return metrics if isinstance(metrics, dict) else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return None


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _format_seconds(seconds: float) -> str:
    seconds = float(seconds)
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _status(metrics: dict | None, run: dict | None) -> str:
    if run is not None and run["status"] != 0:
        return f'<span class="failed">failed (exit status {run["status"]})</span>'
    if metrics is None:
        return "not run"
    return "ok (quick)" if metrics.get("quick") else "ok"


def _summary_table(metrics: dict, runs: dict) -> str:
    rows = []
    for number, (name, (title, figures)) in enumerate(DEMOS.items(), start=1):
        m = metrics[name]
        run = runs.get(name)
        if m is None:
            cells = ["", "", "", "", ""]
            seconds = _format_seconds(run["seconds"]) if run else ""
        else:
            sizes = f"{m.get('train_size', '?'):,} / {m.get('test_size', '?'):,}" \
                if isinstance(m.get("train_size"), int) and isinstance(m.get("test_size"), int) else ""
            cells = [m.get("data", ""), sizes, m.get("device", ""), m.get("epochs", ""), len(m.get("figures", []))]
            seconds = _format_seconds(m.get("seconds", 0.0))
        link = f'<a href="#{_e(name)}">{_e(title)}</a>' if m is not None or run is not None else _e(title)
        rows.append("<tr>" + f"<td>{number}</td><td>{link}<br><code>{_e(name)}</code></td>"
                    + "".join(f"<td>{_e(cell)}</td>" for cell in cells)
                    + f"<td>{_e(seconds)}</td><td>{_status(m, run)}</td></tr>")
    head = ("<tr><th></th><th>demo</th><th>data set</th><th>train / test images</th><th>device</th><th>epochs</th>"
            "<th>figures</th><th>time</th><th>status</th></tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


#: Columns of the results table: the key in a model's results, and its heading.
_RESULT_COLUMNS = (("epochs", "epochs"), ("batch_size", "batch"), ("loss", "training loss"),
                   ("val_loss", "validation loss"), ("accuracy", "training accuracy"),
                   ("val_accuracy", "validation accuracy"), ("seconds", "seconds"))


def _format_value(key: str, value) -> str:
    if value is None or value == "":
        return ""
    if "accuracy" in key and isinstance(value, (int, float)):
        return f"{100 * value:.1f} %"
    if "loss" in key and isinstance(value, (int, float)):
        return f"{value:.4f}"
    if key == "seconds" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    return str(value)


def _results_table(metrics: dict) -> str:
    rows = []
    for name, m in metrics.items():
        if m is None:
            continue
        for label, values in m.get("results", {}).items():
            if not isinstance(values, dict):
                continue
            known = [_format_value(key, values.get(key)) for key, _ in _RESULT_COLUMNS]
            other = ", ".join(f"{key} {value}" for key, value in values.items()
                              if key not in dict(_RESULT_COLUMNS))
            rows.append(f"<tr><td><code>{_e(name)}</code></td><td>{_e(label)}</td>"
                        + "".join(f"<td>{_e(cell)}</td>" for cell in known) + f"<td>{_e(other)}</td></tr>")
    if not rows:
        return "<p>No results yet.</p>"
    head = ("<tr><th>demo</th><th>model</th>" + "".join(f"<th>{_e(title)}</th>" for _, title in _RESULT_COLUMNS)
            + "<th>other</th></tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _section(name: str, metrics: dict | None, run: dict | None) -> str:
    title = DEMOS[name][0]
    parts = [f'<section id="{_e(name)}">', f"<h2>{_e(title)}</h2>"]
    if metrics is None:
        parts.append(f'<p class="failed">This demo wrote no results: see <a href="{_e(name)}/{LOG}">its log</a>.</p>')
    else:
        where = ", ".join(f"{what} {value:.1f} s" for what, value in
                          sorted(metrics.get("timings", {}).items(), key=lambda item: -item[1]))
        parts.append(f"<p class=\"meta\"><code>demos/{_e(name)}.py</code> on {_e(metrics.get('data', '?'))}, "
                     f"{_e(metrics.get('device', '?'))}, {_e(_format_seconds(metrics.get('seconds', 0.0)))}"
                     + (f" ({_e(where)})" if where else "") + f". <a href=\"{_e(name)}/{METRICS}\">metrics.json</a>"
                     + (f", <a href=\"{_e(name)}/{LOG}\">log</a>" if run is not None else "") + "</p>")
        if run is not None and run["status"] != 0:
            parts.append(f'<p class="failed">This run failed (exit status {run["status"]}); the results below are '
                         f'those it wrote before it stopped.</p>')
        for figure in metrics.get("figures", []):
            source = f"{name}/{figure.get('file', '')}"
            caption = figure.get("caption", "")
            number = str(figure.get("file", "")).split("_", 1)[0]
            label = f"Figure {int(number)}. " if number.isdigit() else ""
            parts.append(f'<figure><a href="{_e(source)}"><img src="{_e(source)}" alt="{_e(caption)}" '
                         f'loading="lazy"></a><figcaption><b>{_e(label)}</b>{_e(caption)}</figcaption></figure>')
    parts.append("</section>")
    return "\n".join(parts)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.95em; color: #333; margin-top: 0.3em; }
.meta { color: #555; font-size: 0.9em; }
.failed { color: #b00020; font-weight: bold; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scratchae: the figures of the two notebooks</title>
<style>{style}</style>
</head>
<body>
<h1>scratchae: the figures of the two notebooks</h1>
<p class="meta">{about}</p>
<h2>Runs</h2>
{summary}
<h2>Final values</h2>
{results}
{sections}
</body>
</html>
"""

"""The gallery: one HTML page that shows every figure the demos made, with its caption and the runs' results.

``write_index(out)`` reads the ``metrics.json`` of every demo folder in ``out`` and writes ``out/index.html``, a page
that opens from the disk with no server. It is rebuilt whenever a demo finishes, so that it always shows the figures
that are beside it.
"""

from __future__ import annotations

import datetime
import html
import json
from pathlib import Path

from scratchae.atomic_files import write_text_atomically

#: Each demo, in the order of the notebooks: its title and the figures (PNG files) it must write.
DEMOS = {
    "one_step": ("The whole engine on one screen: one training step by hand", ("00_one_step.png",)),
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
    "vae": ("The variational autoencoder: generating from N(0, I)", (
        "15_vae_loss.png", "16_vae_reconstructions.png", "17_vae_vs_autoencoder_generation.png",
        "18_vae_latent_2d.png", "19_vae_manifold.png", "20_vae_interpolation.png")),
    "convolutional": ("Convolutional autoencoders: kernels, feature maps, dense against convolutional", (
        "21_conv_filters.png", "22_conv_feature_maps.png", "23_dense_vs_conv_reconstructions.png",
        "24_dense_vs_conv_denoising.png", "25_dense_vs_conv_vae_manifold.png")),
    "write_a_layer": ("Your turn: write a layer, check it, train with it", ("26_write_a_layer.png",)),
    "two_floors": ("Two floors: the lesson's convolution and the engine's, the same numbers", ("27_two_floors.png",)),
}

#: The pages (HTML files that open from the disk) a demo writes beside its figures: the 2-d latent explorers.
PAGES = {"exercises": ("07_latent_2_explorer.html",), "vae": ("18_vae_explorer.html",)}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INDEX = "index.html"
METRICS = "metrics.json"
LOG = "log.txt"


def expected_figures() -> dict[str, tuple[str, ...]]:
    """Demo name -> the PNG files it writes into its output folder."""
    return {name: figures for name, (_, figures) in DEMOS.items()}


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
    from scratchae.cli import own_files  # the page is listed as scratchae's, so the next run may replace it

    out = Path(out)
    return own_files.record(write_text_atomically(out / INDEX, render_index(out, runs=runs, command=command)),
                            "scratchae demo")


def render_index(out, *, runs: dict[str, dict] | None = None, command: str | None = None) -> str:
    """The gallery page as HTML text: a summary table, then every demo's figures with their captions.

    Images are referenced by paths relative to ``out`` (``NAME/FILE.png``), so the folder can be moved or opened
    from the disk. Demos without a ``metrics.json`` are listed as not run (or failed, as ``runs`` says).
    """
    out = Path(out)
    runs = runs or {}
    metrics = {name: read_metrics(out / name) for name in DEMOS}
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


def read_metrics(folder: Path) -> dict | None:
    text = read_text(folder / METRICS)
    if text is None:
        return None
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError:
        return None
    return metrics if isinstance(metrics, dict) else None


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return None


def _e(value) -> str:
    return html.escape(str(value), quote=True)


#: A space that never breaks a line: "2 min 59 s" stays on one line of a table.
_NO_BREAK = "\u00a0"


def _format_seconds(seconds: float) -> str:
    """``12.5 s``, or ``2 min 59 s`` (rounded to the second, so never ``2 min 60 s``), with no line break inside."""
    seconds = float(seconds)
    if seconds < 59.95:
        return f"{seconds:.1f}{_NO_BREAK}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}{_NO_BREAK}min{_NO_BREAK}{rest:02d}{_NO_BREAK}s"


def _format_number(value) -> str:
    """A number for people: whole numbers with thousands separators, others to 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


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
            epochs = m.get("epochs")
            cells = [m.get("data", ""), sizes, m.get("device", ""), "" if epochs is None else epochs,
                     len(m.get("figures", []))]
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
    return _format_number(value)


def _results_table(metrics: dict) -> str:
    rows = []
    for name, m in metrics.items():
        if m is None:
            continue
        for label, values in m.get("results", {}).items():
            if not isinstance(values, dict):
                continue
            known = [_format_value(key, values.get(key)) for key, _ in _RESULT_COLUMNS]
            other = ", ".join(f"{key.replace('_', ' ')} {_format_number(value)}" for key, value in values.items()
                              if key not in dict(_RESULT_COLUMNS) and value is not None)
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
        where = ", ".join(f"{what} {_format_seconds(value)}" for what, value in
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
        for page in metrics.get("pages", []):  # pages to open, such as the latent explorer
            source = f"{name}/{page.get('file', '')}"
            parts.append(f'<p class="page"><a href="{_e(source)}">Open {_e(page.get("file", ""))}</a>: '
                         f'{_e(page.get("caption", ""))}</p>')
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
.page { background: #f3f7fb; border-left: 4px solid #1f77b4; padding: 0.5em 0.8em; }
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

"""The gallery: one HTML page that shows every figure the demos made, with its caption and the runs' results.

``write_index(out)`` reads the ``metrics.json`` of every demo folder in ``out`` and writes ``out/index.html``, a page
that opens from the disk with no server. It is rebuilt whenever a demo finishes, so that it always shows the figures
that are beside it.

The page speaks the language of :mod:`scratchae.i18n` (``lang``, or :func:`scratchae.use_language`, or the
environment); the captions are the demos' own, written in the language the demos ran in. It names the two notebooks
and maps each of their figures to the chapter, file and function that redraws it
(:mod:`scratchae.cli.reference_notebooks`). Each figure is numbered by its file's number; where a chapter writes
several figures for one of the notebooks' (exercise 2: ``08_*``), a letter tells them apart (8a, 8b, 8c), so that no
two figures of the page share a number.
"""

from __future__ import annotations

import datetime
import html
import json
from pathlib import Path

from scratchae.atomic_files import write_text_atomically
from scratchae.cli.reference_notebooks import HEADINGS, NOTEBOOKS, table_rows
from scratchae.i18n import N_, format_text, gettext, resolve

#: Each demo, in the order of the notebooks: its title and the figures (PNG files) it must write.
DEMOS = {
    "one_step": (N_("The whole engine on one screen: one training step by hand"), ("00_one_step.png",)),
    "simple_autoencoder": (N_("A simple autoencoder"), (
        "01_samples.png", "02_loss.png", "03_reconstructions.png", "04_latent_tsne.png")),
    "denoising": (N_("A denoising autoencoder"), (
        "05_noisy_inputs.png", "06_denoised.png")),
    "exercises": (N_("Exercises: the size of the code, and a deeper network"), (
        "07_latent_sizes.png", "08_deep_vs_single_losses.png", "08_deep_vs_single_table.png",
        "08_deep_vs_single_reconstructions.png")),
    "latent_spaces": (N_("Latent spaces: a classifier's and an autoencoder's"), (
        "09_classifier_vs_autoencoder.png",)),
    "linear_latent": (N_("A linear latent layer: reconstruction, interpolation, generation"), (
        "10_loss.png", "11_reconstructions.png", "12_latent_tsne.png", "13_interpolation.png",
        "14_generation.png")),
    "vae": (N_("The variational autoencoder: generating from N(0, I)"), (
        "15_vae_loss.png", "16_vae_reconstructions.png", "17_vae_vs_autoencoder_generation.png",
        "18_vae_latent_2d.png", "19_vae_manifold.png", "20_vae_interpolation.png")),
    "convolutional": (N_("Convolutional autoencoders: kernels, feature maps, dense against convolutional"), (
        "21_conv_filters.png", "22_conv_feature_maps.png", "23_dense_vs_conv_reconstructions.png",
        "24_dense_vs_conv_denoising.png", "25_dense_vs_conv_vae_manifold.png")),
    "write_a_layer": (N_("Your turn: write a layer, check it, train with it"), ("26_write_a_layer.png",)),
    "two_floors": (N_("Two floors: the lesson's convolution and the engine's, the same numbers"),
                   ("27_two_floors.png",)),
    "anomaly": (N_("What autoencoders are for: anomaly detection, and sparse codes"), (
        "28_anomaly_histogram.png", "29_anomaly_roc.png", "30_most_normal_most_anomalous.png",
        "31_sparse_code_values.png")),
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


def figure_labels() -> dict[str, str]:
    """``"DEMO/FILE.png"`` -> its number in the gallery: the file's number (``"2"``), with a letter when several
    files share it (``"8a"``, ``"8b"``, ``"8c"``, in the order of :data:`DEMOS`)."""
    files = [(name, figure) for name, (_, figures) in DEMOS.items() for figure in figures]
    numbers = [int(figure.split("_", 1)[0]) for _, figure in files]
    labels, seen = {}, {}
    for (name, figure), number in zip(files, numbers):
        shared = numbers.count(number) > 1
        seen[number] = seen.get(number, -1) + 1
        labels[f"{name}/{figure}"] = f"{number}{'abcdefghij'[seen[number]]}" if shared else str(number)
    return labels


# --------------------------------------------------------------------------------------------------------------------
# The gallery page
# --------------------------------------------------------------------------------------------------------------------


def write_index(out, *, runs: dict[str, dict] | None = None, command: str | None = None,
                lang: str | None = None) -> Path:
    """Write ``out/index.html`` atomically from the ``metrics.json`` of every demo found in ``out``.

    Parameters
    ----------
    out : path
        The folder holding one subfolder per demo.
    runs : dict, optional
        Demo name -> ``{"status": ..., "seconds": ...}`` of the demos just run (a failed one is marked failed).
    command : str, optional
        The command that made the figures, shown on the page.
    lang : str, optional
        The page's language (see :mod:`scratchae.i18n`).

    Returns
    -------
    pathlib.Path
        The page's path.
    """
    from scratchae.cli import own_files  # the page is listed as scratchae's, so the next run may replace it

    out = Path(out)
    return own_files.record(write_text_atomically(out / INDEX, render_index(out, runs=runs, command=command, lang=lang)),
                            "scratchae demo")


def render_index(out, *, runs: dict[str, dict] | None = None, command: str | None = None,
                 lang: str | None = None) -> str:
    """The gallery page as HTML text: a summary table, then every demo's figures with their captions.

    Images are referenced by paths relative to ``out`` (``NAME/FILE.png``), so the folder can be moved or opened
    from the disk. Demos without a ``metrics.json`` are listed as not run (or failed, as ``runs`` says).
    """
    out = Path(out)
    runs = runs or {}
    lang = resolve(lang)
    metrics = {name: read_metrics(out / name) for name in DEMOS}
    summary = _summary_table(metrics, runs, lang)
    results = _results_table(metrics, lang)
    sections = [_section(name, metrics[name], runs.get(name), lang) for name in DEMOS
                if metrics[name] is not None or name in runs]
    made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    total = sum(m.get("seconds", 0.0) for m in metrics.values() if m is not None)
    if command:
        about = format_text("Made {made} by {command}; {time} of demos in all.", lang, made=made,
                            command=f"<code>{_e(command)}</code>", time=_format_seconds(total, lang))
    else:
        about = format_text("Made {made}; {time} of demos in all.", lang, made=made, time=_format_seconds(total, lang))
    title = gettext("scratchae: the figures of the two notebooks", lang)
    return _PAGE.format(style=_STYLE, lang=lang.replace("_", "-"), title=_e(title), about=about,
                        notebooks=_notebooks_section(lang), runs=_e(gettext("Runs", lang)), summary=summary,
                        final=_e(gettext("Final values", lang)), results=results, sections="\n".join(sections))


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


def _format_seconds(seconds: float, lang: str | None = None) -> str:
    """``12.5 s``, or ``2 min 59 s`` (rounded to the second, so never ``2 min 60 s``), with no line break inside."""
    seconds = float(seconds)
    if seconds < 59.95:
        return format_text("{seconds:.1f}", lang, seconds=seconds) + f"{_NO_BREAK}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}{_NO_BREAK}min{_NO_BREAK}{rest:02d}{_NO_BREAK}s"


def _format_number(value, lang: str | None = None) -> str:
    """A number for people: whole numbers with thousands separators, others to 4 significant digits, a truth as
    yes or no."""
    if isinstance(value, bool):
        return gettext("yes", lang) if value else gettext("no", lang)
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return format_text("{value:,}", lang, value=value)
    return format_text("{value:.4g}", lang, value=value)


def _status(metrics: dict | None, run: dict | None, lang: str | None = None) -> str:
    if run is not None and run["status"] != 0:
        failed = format_text("failed (exit status {status})", lang, status=run["status"])
        return f'<span class="failed">{_e(failed)}</span>'
    if metrics is None:
        return _e(gettext("not run", lang))
    return _e(gettext("ok (quick)", lang) if metrics.get("quick") else gettext("ok", lang))


def _notebooks_section(lang: str) -> str:
    """The two notebooks by their titles, and the table of which chapter, file and function redraws each figure."""
    names = format_text("scratchae reproduces, from scratch, the figures and exercises of two course notebooks: "
                        "{first} and {second}. Each row below is one of their figures (with its own title) or "
                        "exercises, and what redraws it here.", lang,
                        first=f"<cite>{_e(NOTEBOOKS[0].title)}</cite> ({_e(NOTEBOOKS[0].framework)})",
                        second=f"<cite>{_e(NOTEBOOKS[1].title)}</cite> ({_e(NOTEBOOKS[1].framework)})")
    labels = figure_labels()
    rows = []
    for notebook, shown, chapter, files, functions, theirs, ours in table_rows(lang):
        links = "<br>".join(
            f'<code>{_e(name)}</code> (<a href="#{_e(chapter)}">'
            f'{_e(format_text("figure {number}", lang, number=labels[f"{chapter}/{name}"]))}</a>)'
            if f"{chapter}/{name}" in labels else f"<code>{_e(name)}</code>" for name in files.split(", "))
        cells = [_e(notebook), _e(shown), f"<code>{_e(chapter)}</code>", links,
                 "<br>".join(f"<code>{_e(name)}</code>" for name in functions.split("; ")), _e(theirs), _e(ours)]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "<tr>" + "".join(f"<th>{_e(gettext(heading, lang))}</th>" for heading in HEADINGS) + "</tr>"
    return (f"<h2>{_e(gettext('The two notebooks', lang))}</h2>\n<p>{names}</p>\n"
            f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def _summary_table(metrics: dict, runs: dict, lang: str | None = None) -> str:
    rows = []
    for number, (name, (title, figures)) in enumerate(DEMOS.items(), start=1):
        m = metrics[name]
        run = runs.get(name)
        if m is None:
            cells = ["", "", "", "", ""]
            seconds = _format_seconds(run["seconds"], lang) if run else ""
        else:
            sizes = format_text("{train:,} / {test:,}", lang, train=m["train_size"], test=m["test_size"]) \
                if isinstance(m.get("train_size"), int) and isinstance(m.get("test_size"), int) else ""
            epochs = m.get("epochs")
            cells = [m.get("data", ""), sizes, m.get("device", ""),
                     "" if epochs is None else _format_number(epochs, lang),
                     len(m.get("figures", []))]
            seconds = _format_seconds(m.get("seconds", 0.0), lang)
        title = gettext(title, lang)
        link = f'<a href="#{_e(name)}">{_e(title)}</a>' if m is not None or run is not None else _e(title)
        rows.append("<tr>" + f"<td>{number}</td><td>{link}<br><code>{_e(name)}</code></td>"
                    + "".join(f"<td>{_e(cell)}</td>" for cell in cells)
                    + f"<td>{_e(seconds)}</td><td>{_status(m, run, lang)}</td></tr>")
    headings = ("", gettext("demo", lang), gettext("data set", lang), gettext("train / test images", lang),
                gettext("device", lang), gettext("epochs", lang), gettext("figures", lang), gettext("time", lang),
                gettext("status", lang))
    head = "<tr>" + "".join(f"<th>{_e(heading)}</th>" for heading in headings) + "</tr>"
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


#: Columns of the results table: the key in a model's results, and its heading.
_RESULT_COLUMNS = (("epochs", N_("epochs")), ("batch_size", N_("batch")), ("loss", N_("training loss")),
                   ("val_loss", N_("validation loss")), ("accuracy", N_("training accuracy")),
                   ("val_accuracy", N_("validation accuracy")), ("seconds", N_("seconds")))


#: The other values a chapter records (``demo.record(label, auroc=...)``) and a history's final values, by their
#: keys in ``metrics.json`` (which stay English): the name each has on the page. ``text`` is a sentence: no name.
_RESULT_NAMES = {
    "auroc": N_("AUROC"), "by_chance": N_("by chance"), "code_mean": N_("code mean"),
    "distance_of_mean_from_origin": N_("distance of the mean from the origin"), "engine_ms": N_("engine (ms)"),
    "false_alarms": N_("false alarms"), "first_try_passed": N_("first try passed"), "fixed_passed": N_("fixed passed"),
    "fixed_relative_error": N_("relative error once fixed"),
    "grid_share_of_most_common_digit": N_("share of the grid for the most common digit"), "kl": N_("KL"),
    "kl_warmup_epochs": N_("KL warm-up epochs"), "l1_penalty": N_("L1 penalty"),
    "largest_code_difference": N_("largest code difference"), "learning_rate": N_("learning rate"),
    "lesson_ms": N_("lesson (ms)"), "loss_after_150": N_("loss after 150"),
    "loss_after_one_step": N_("loss after one step"), "loss_before": N_("loss before"),
    "loss_fall_over_last_epochs": N_("loss fall over the last epochs"), "misses": N_("misses"),
    "nearest_code_same_digit": N_("nearest code of the same digit"), "parameters": N_("parameters"),
    "plain_autoencoder_mse": N_("plain autoencoder MSE"), "reconstruction": N_("reconstruction"),
    "second_try_passed": N_("second try passed"), "spread": N_("spread"), "test_code_mean": N_("test code mean"),
    "test_mse": N_("test MSE"), "text": "", "threshold": N_("threshold"), "val_code_mean": N_("validation code mean"),
    "val_kl": N_("validation KL"), "val_l1_penalty": N_("validation L1 penalty"),
    "val_reconstruction": N_("validation reconstruction"), "vae_mse": N_("VAE MSE"),
}


def _result_name(key: str, lang: str | None = None) -> str:
    """The name of a recorded value on the page: its translation when it is known, else its key in words."""
    name = _RESULT_NAMES.get(key)
    return key.replace("_", " ") if name is None else gettext(name, lang) if name else ""


def _format_value(key: str, value, lang: str | None = None) -> str:
    if value is None or value == "":
        return ""
    if "accuracy" in key and isinstance(value, (int, float)):
        return format_text("{percent:.1f} %", lang, percent=100 * value)
    if "loss" in key and isinstance(value, (int, float)):
        return format_text("{value:.4f}", lang, value=value)
    if key == "seconds" and isinstance(value, (int, float)):
        return format_text("{value:.1f}", lang, value=value)
    return _format_number(value, lang)


def _results_table(metrics: dict, lang: str | None = None) -> str:
    rows = []
    for name, m in metrics.items():
        if m is None:
            continue
        for label, values in m.get("results", {}).items():
            if not isinstance(values, dict):
                continue
            known = [_format_value(key, values.get(key), lang) for key, _ in _RESULT_COLUMNS]
            other = ", ".join(f"{_result_name(key, lang)} {_format_number(value, lang)}".strip()
                              for key, value in values.items()
                              if key not in dict(_RESULT_COLUMNS) and value is not None)
            rows.append(f"<tr><td><code>{_e(name)}</code></td><td>{_e(label)}</td>"
                        + "".join(f"<td>{_e(cell)}</td>" for cell in known) + f"<td>{_e(other)}</td></tr>")
    if not rows:
        return f"<p>{_e(gettext('No results yet.', lang))}</p>"
    head = (f"<tr><th>{_e(gettext('demo', lang))}</th><th>{_e(gettext('model', lang))}</th>"
            + "".join(f"<th>{_e(gettext(title, lang))}</th>" for _, title in _RESULT_COLUMNS)
            + f"<th>{_e(gettext('other', lang))}</th></tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _section(name: str, metrics: dict | None, run: dict | None, lang: str | None = None) -> str:
    title = gettext(DEMOS[name][0], lang)
    parts = [f'<section id="{_e(name)}">', f"<h2>{_e(title)}</h2>"]
    log_link = f'<a href="{_e(name)}/{LOG}">{_e(gettext("its log", lang))}</a>'
    if metrics is None:
        parts.append('<p class="failed">' + format_text("This demo wrote no results: see {log}.", lang, log=log_link)
                     + "</p>")
    else:
        where = ", ".join(f"{gettext(what, lang)} {_format_seconds(value, lang)}" for what, value in  # N_ where timed
                          sorted(metrics.get("timings", {}).items(), key=lambda item: -item[1]))
        meta = format_text("{script} on {data}, {device}, {time}", lang, script=f"<code>demos/{_e(name)}.py</code>",
                           data=_e(metrics.get("data", "?")), device=_e(metrics.get("device", "?")),
                           time=_e(_format_seconds(metrics.get("seconds", 0.0), lang)))
        parts.append(f"<p class=\"meta\">{meta}" + (f" ({_e(where)})" if where else "")
                     + f". <a href=\"{_e(name)}/{METRICS}\">metrics.json</a>"
                     + (f", <a href=\"{_e(name)}/{LOG}\">{_e(gettext('log', lang))}</a>" if run is not None else "")
                     + "</p>")
        if run is not None and run["status"] != 0:
            parts.append('<p class="failed">' + _e(format_text(
                "This run failed (exit status {status}); the results below are those it wrote before it stopped.",
                lang, status=run["status"])) + "</p>")
        labels = figure_labels()
        for figure in metrics.get("figures", []):
            source = f"{name}/{figure.get('file', '')}"
            caption = figure.get("caption", "")
            number = labels.get(source) or str(figure.get("file", "")).split("_", 1)[0]
            label = format_text("Figure {number}. ", lang, number=number.lstrip("0") or "0") \
                if number[:1].isdigit() else ""
            parts.append(f'<figure><a href="{_e(source)}"><img src="{_e(source)}" alt="{_e(caption)}" '
                         f'loading="lazy"></a><figcaption><b>{_e(label)}</b>{_e(caption)}</figcaption></figure>')
        for page in metrics.get("pages", []):  # pages to open, such as the latent explorer
            source = f"{name}/{page.get('file', '')}"
            opened = format_text("Open {file}", lang, file=page.get("file", ""))
            parts.append(f'<p class="page"><a href="{_e(source)}">{_e(opened)}</a>: '
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
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
<p class="meta">{about}</p>
{notebooks}
<h2>{runs}</h2>
{summary}
<h2>{final}</h2>
{results}
{sections}
</body>
</html>
"""

"""The demos and ``scratchae demo``: quick runs write every figure and a metrics.json; the gallery page; the check."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy
from matplotlib.image import imsave

from scratchae.cli import demo as demo_command, demo_folder, gallery
from scratchae.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(argv) -> int:
    """``main(argv)`` in this process: its return value, or the status of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


class _Images(HTMLParser):
    """The ``src`` of every ``<img>`` and the text of every ``<figcaption>`` of a page."""

    def __init__(self):
        super().__init__()
        self.sources, self.captions, self._caption = [], [], None

    def handle_starttag(self, tag, attributes):
        if tag == "img":
            self.sources.append(dict(attributes)["src"])
        elif tag == "figcaption":
            self._caption = []

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self.captions.append("".join(self._caption))
            self._caption = None

    def handle_data(self, text):
        if self._caption is not None:
            self._caption.append(text)


def parse_page(path: Path) -> _Images:
    parser = _Images()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# --------------------------------------------------------------------------------------------------------------------
# Real quick runs
# --------------------------------------------------------------------------------------------------------------------


def test_quick_demos_write_their_figures_their_metrics_and_the_gallery(tmp_path, capsys):
    out = tmp_path / "outputs"
    names = ["one_step", "simple_autoencoder", "linear_latent"]
    assert run(["demo", "--quick", "--data", "digits", "--device", "cpu", "--out", str(out), "--only", *names]) == 0
    printed = capsys.readouterr().out
    assert "epoch    2  loss" in printed and "gallery:" in printed

    assert demo_command.check_outputs(out, names) == []
    for name in names:
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert (metrics["demo"], metrics["data"], metrics["device"]) == (name, "digits", "cpu")
        assert metrics["quick"] is True and metrics["image_shape"] == [8, 8]
        assert all(figure["caption"].startswith("Quick run") for figure in metrics["figures"])
        assert metrics["train_size"] == 500 and metrics["test_size"] == 200
        assert [figure["file"] for figure in metrics["figures"]] == list(gallery.expected_figures()[name])
        assert all(figure["caption"].strip() for figure in metrics["figures"])
        assert metrics["seconds"] > 0
        trained = [values for values in metrics["results"].values() if "epochs" in values]
        assert all(values["epochs"] == 2 for values in trained) and metrics["epochs"] == (2 if trained else None)
        assert all(math.isfinite(values["loss"]) and math.isfinite(values["val_loss"]) for values in trained)
        assert (out / name / "log.txt").read_text().strip()

    page = parse_page(out / "index.html")
    expected = [f"{name}/{figure}" for name in names for figure in gallery.expected_figures()[name]]
    assert page.sources == expected
    assert len(page.captions) == len(expected) and all(page.captions)


def test_a_demo_runs_as_a_script_and_ignores_a_kernels_arguments(tmp_path):
    out = tmp_path / "denoising"
    with demo_command.demo_script("denoising") as script:
        # Jupyter starts its kernel with "-f CONNECTION_FILE": a demo opened as a notebook sees those arguments.
        result = subprocess.run([sys.executable, str(script), "--quick", "--data", "digits", "--device", "cpu",
                                 "--out", str(out), "-f", str(tmp_path / "kernel-1.json")],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [figure["file"] for figure in metrics["figures"]] == ["05_noisy_inputs.png", "06_denoised.png"]
    baseline = metrics["results"]["noisy input, no model (baseline)"]["val_loss"]
    assert 0 < baseline < 1
    for figure in metrics["figures"]:
        assert (out / figure["file"]).read_bytes()[:8] == PNG_SIGNATURE


# --------------------------------------------------------------------------------------------------------------------
# The gallery page and the check, on made-up outputs
# --------------------------------------------------------------------------------------------------------------------


def fake_outputs(out: Path, name: str, *, caption: str = "A caption", quick: bool = False) -> dict:
    """A demo folder as a run of ``scratchae demo`` leaves it: a small real PNG per expected figure, a metrics.json,
    and the run.json that records them as one run's."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    for file in gallery.expected_figures()[name]:
        imsave(folder / file, numpy.linspace(0.0, 1.0, 48).reshape(6, 8), cmap="gray")
        figures.append({"file": file, "caption": f"{caption} ({file})"})
    metrics = {"demo": name, "data": "mnist-5k", "train_size": 4000, "test_size": 1000, "image_shape": [28, 28],
               "device": "cpu", "quick": quick, "seed": 0, "epochs": 20, "seconds": 12.5,
               "timings": {"train model": 10.0, "figures": 2.0},
               "results": {"model A": {"epochs": 20, "batch_size": 256, "loss": 0.01234, "val_loss": 0.01351,
                                       "seconds": 10.0},
                           "classifier B": {"epochs": 20, "loss": 0.1, "val_accuracy": 0.9712}},
               "figures": figures}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    seal(folder, name, ["--seed", "0", *(["--quick"] if quick else [])])
    return metrics


def seal(folder: Path, name: str, settings: list[str]) -> None:
    """Record the files in ``folder`` as one run's, in its run.json, as ``scratchae demo`` does once a run ends."""
    files = [file for file in demo_folder.chapter_files(name) if (folder / file).is_file()]
    sha256 = {file: hashlib.sha256((folder / file).read_bytes()).hexdigest() for file in files if file != "log.txt"}
    (folder / "run.json").write_text(json.dumps({"demo": name, "run": "0" * 32, "seed": 0, "settings": settings,
                                                 "sha256": sha256, "files": files}))


def test_the_gallery_page_shows_every_figure_with_its_caption_and_a_table(tmp_path):
    out = tmp_path / "outputs"
    fake_outputs(out, "simple_autoencoder", caption="Digits < 5 & their codes")
    fake_outputs(out, "denoising", quick=True)
    runs = {"denoising": {"status": 0, "seconds": 13.0}, "exercises": {"status": 3, "seconds": 0.4}}

    path = gallery.write_index(out, runs=runs, command="scratchae demo --only denoising exercises")
    assert path == out / "index.html"
    assert sorted(item.name for item in out.iterdir() if not item.name.startswith(".")) == [
        "denoising", "index.html", "simple_autoencoder"]
    text = path.read_text(encoding="utf-8")
    page = parse_page(path)

    # Every figure, by a path relative to the page, that exists there.
    shown = ["simple_autoencoder", "denoising"]
    assert page.sources == [f"{name}/{file}" for name in shown for file in gallery.expected_figures()[name]]
    assert all((out / source).is_file() for source in page.sources)
    assert str(tmp_path) not in text
    # Captions, escaped, under a figure number.
    assert "Digits &lt; 5 &amp; their codes (01_samples.png)" in text
    assert page.captions[0] == "Figure 1. Digits < 5 & their codes (01_samples.png)"
    # The tables: data set, sizes, epochs, time, final losses and accuracy.
    for cell in ("<td>mnist-5k</td>", "<td>4,000 / 1,000</td>", "<td>20</td>", "<td>12.5\u00a0s</td>",
                 "<td>0.0123</td>", "<td>0.0135</td>", "<td>97.1 %</td>", "ok (quick)"):
        assert cell in text
    # A failed demo is marked and keeps a section that points to its log; one never run has no section.
    assert "failed (exit status 3)" in text and 'href="exercises/log.txt"' in text
    assert 'id="exercises"' in text and 'id="latent_spaces"' not in text


def test_the_gallery_rounds_numbers_for_people_and_shows_no_none(tmp_path):
    out = tmp_path / "outputs"
    metrics = fake_outputs(out, "one_step")
    metrics.update(epochs=None, seconds=179.4, timings={"train": 178.96})  # one_step trains steps, not epochs
    metrics["results"] = {"one batch, 150 steps": {"loss_before": 0.23154956102371216, "loss_after_150": 0.0196,
                                                   "steps": 150, "note": None}}
    (out / "one_step" / "metrics.json").write_text(json.dumps(metrics))
    text = gallery.write_index(out).read_text(encoding="utf-8")
    assert "None" not in text and "0.23154956" not in text
    assert "loss before 0.2315, loss after 150 0.0196, steps 150" in text
    assert "2\u00a0min\u00a059\u00a0s" in text and "2 min" not in text  # never split over two lines
    assert "train 2\u00a0min\u00a059\u00a0s" in text
    row = text.split('href="#one_step"', 1)[1].split("</tr>", 1)[0]
    assert "<td></td>" in row  # the epochs cell of a demo that trains no epochs is empty


def test_the_check_names_missing_and_broken_figures(tmp_path, capsys):
    out = tmp_path / "outputs"
    fake_outputs(out, "denoising")
    assert demo_command.check_outputs(out, ["denoising"], index=False) == []
    assert any("index.html: missing" in problem for problem in demo_command.check_outputs(out, ["denoising"]))

    noisy, denoised = out / "denoising" / "05_noisy_inputs.png", out / "denoising" / "06_denoised.png"
    noisy.write_bytes(PNG_SIGNATURE + b"\x00 not really an image")
    denoised.write_text("plain text")
    problems = demo_command.check_outputs(out, ["denoising"], index=False)
    assert len(problems) == 4
    assert str(noisy) in problems[0] and "cannot be decoded" in problems[0]
    assert str(denoised) in problems[1] and "not a PNG" in problems[1]
    assert problems[2:] == [f"{path}: not the file of the run that run.json records (changed, or of another run)"
                            for path in (noisy, denoised)]

    denoised.unlink()
    assert run(["demo", "--check", str(out), "--only", "denoising"]) == 1
    errors = capsys.readouterr().err
    assert f"{denoised}: missing" in errors and "cannot be decoded" in errors


def test_a_failing_demo_is_named_and_the_command_ends_with_status_1(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nprint('about to fail')\nsys.exit(3)\n")

    @contextlib.contextmanager
    def fake_script(name):
        yield broken

    monkeypatch.setattr(demo_command, "demo_script", fake_script)
    out = tmp_path / "outputs"
    fake_outputs(out, "denoising")  # an earlier complete run: kept whole, as its own
    before = {path.name: path.read_bytes() for path in (out / "denoising").iterdir()}
    assert run(["demo", "--quick", "--out", str(out), "--only", "denoising"]) == 1
    captured = capsys.readouterr()
    assert (f"demo denoising failed (exit status 3): about to fail; the figures of its earlier run in "
            f"{out / 'denoising'} are kept; its output is in {out / 'denoising' / 'log.txt'}") in captured.err
    assert "about to fail" in (out / "denoising" / "log.txt").read_text()
    after = {path.name: path.read_bytes() for path in (out / "denoising").iterdir() if path.name != "log.txt"}
    assert after == before  # the earlier run's figures, metrics and record, untouched
    assert demo_command.check_outputs(out, ["denoising"], index=False) == []
    assert "failed (exit status 3)" in (out / "index.html").read_text()


def test_a_quick_pass_has_a_folder_of_its_own_and_never_touches_a_full_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "index.html").write_text("the full run's gallery")
    assert run(["demo", "--quick", "--data", "digits", "--device", "cpu", "--only", "one_step"]) == 0
    assert (tmp_path / "outputs" / "index.html").read_text() == "the full run's gallery"
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["index.html"]
    page = parse_page(tmp_path / "outputs-quick" / "index.html")
    assert page.sources == ["one_step/00_one_step.png"]
    assert page.captions[0].startswith("Figure 0. Quick run")


def test_a_demo_run_on_its_own_in_a_fresh_folder_writes_the_gallery(tmp_path):
    with demo_command.demo_script("one_step") as script:
        done = subprocess.run([sys.executable, str(script), "--quick", "--data", "digits", "--device", "cpu"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = parse_page(tmp_path / "outputs-quick" / "index.html")  # its default folder: the page is made there
    assert page.sources == ["one_step/00_one_step.png"]


def test_a_demo_run_on_its_own_keeps_the_gallery_beside_it_true(tmp_path):
    out = tmp_path / "outputs"
    fake_outputs(out, "denoising", caption="An old caption")
    gallery.write_index(out)
    assert "An old caption" in (out / "index.html").read_text()
    with demo_command.demo_script("denoising") as script:
        done = subprocess.run([sys.executable, str(script), "--quick", "--data", "digits", "--device", "cpu",
                               "--out", str(out / "denoising")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = (out / "index.html").read_text()
    assert "An old caption" not in text and "Quick run" in text  # the page shows the figures beside it now


def test_a_quick_runs_stamp_sits_below_the_figure_apart_from_its_axis_labels(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))
    from demos._common import Demo
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imread
    from matplotlib.text import Text

    from scratchae import plots

    demo = Demo.start("chapter", ["--quick", "--out", str(tmp_path), "--data", "digits"])
    fig = demo.save(plots.loss_curves({"loss": [0.3, 0.2], "val_loss": [0.31, 0.25]}), "loss.png", "The loss.")
    stamp = next(text for text in fig.findobj(Text) if text.get_text().startswith("quick run:"))
    renderer = FigureCanvasAgg(fig).get_renderer()
    xlabel = fig.axes[0].xaxis.label.get_window_extent(renderer)
    assert stamp.get_window_extent(renderer).y1 <= xlabel.y0  # wholly below the label "Epoch", never over it
    pixels = imread(tmp_path / "loss.png")[..., :3]
    red = (pixels[..., 0] > 0.5) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)  # the stamp's colour, #b00020
    rows = numpy.flatnonzero(red.any(axis=1))
    assert len(rows) and rows.max() >= 0.9 * len(pixels)  # drawn, in the image's last rows: the image holds it
    assert demo.figures[-1]["caption"].startswith("Quick run (a few hundred images, ")

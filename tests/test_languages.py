"""The commands in Portuguese: the gallery page, ``scratchae demo --lang pt``, ``scratchae notebooks --lang pt`` and
``scratchae explore --lang pt``; the gallery's figure numbers; the notebooks named, and the table of their figures."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy
import pytest

from scratchae import builders, i18n
from scratchae.cli import gallery, main, reference_notebooks
from scratchae.cli.explore import explorer_page
from scratchae.message_catalogs import read_po

ROOT = Path(__file__).resolve().parents[1]
PORTUGUESE = ROOT / "scratchae" / "locale" / "pt_BR" / "LC_MESSAGES" / "scratchae.po"


def run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


class _Page(HTMLParser):
    """The ``lang`` of a page, the text of its ``<figcaption>`` elements and of its ``<h2>`` headings."""

    def __init__(self):
        super().__init__()
        self.lang, self.captions, self.headings, self._open = None, [], [], None

    def handle_starttag(self, tag, attributes):
        if tag == "html":
            self.lang = dict(attributes).get("lang")
        if tag in ("figcaption", "h2"):
            self._open = (tag, [])

    def handle_endtag(self, tag):
        if self._open and tag == self._open[0]:
            (self.captions if tag == "figcaption" else self.headings).append("".join(self._open[1]))
            self._open = None

    def handle_data(self, text):
        if self._open:
            self._open[1].append(text)


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def fake_demo(out: Path, name: str, caption: str = "a caption") -> None:
    """A demo folder with every expected figure listed in its metrics.json (the PNG files themselves are not read)."""
    folder = out / name
    folder.mkdir(parents=True)
    figures = [{"file": file, "caption": f"{caption} {file}"} for file in gallery.expected_figures()[name]]
    (folder / "metrics.json").write_text(json.dumps({"demo": name, "data": "mnist-5k", "train_size": 4000,
                                                     "test_size": 1000, "seconds": 12.5, "figures": figures,
                                                     "results": {"model": {"val_loss": 0.01351}}}))


# --------------------------------------------------------------------------------------------------------------------
# The gallery
# --------------------------------------------------------------------------------------------------------------------


def test_no_two_figures_of_the_gallery_share_a_number(tmp_path):
    for name in gallery.DEMOS:
        fake_demo(tmp_path, name)
    page = parse(gallery.render_index(tmp_path))
    numbers = [re.match(r"Figure (\w+)\. ", caption).group(1) for caption in page.captions]
    assert len(numbers) == sum(len(figures) for figures in gallery.expected_figures().values())
    assert len(set(numbers)) == len(numbers)
    assert [number for number in numbers if number.startswith("8")] == ["8a", "8b", "8c"]
    last = list(gallery.expected_figures().values())[-1][-1]  # the gallery's last figure: its file's number
    assert numbers[:3] == ["0", "1", "2"] and numbers[-1] == str(int(last.split("_", 1)[0]))


def test_the_check_of_figure_numbers_sees_a_number_used_twice(monkeypatch):
    """Two demos writing a figure of the same number get letters: the labels stay unique."""
    demos = {"a": ("A", ("03_x.png",)), "b": ("B", ("03_y.png", "04_z.png"))}
    monkeypatch.setattr(gallery, "DEMOS", demos)
    assert gallery.figure_labels() == {"a/03_x.png": "3a", "b/03_y.png": "3b", "b/04_z.png": "4"}


def test_the_gallery_names_both_notebooks_and_maps_their_figures(tmp_path):
    fake_demo(tmp_path, "simple_autoencoder")
    text = gallery.render_index(tmp_path)
    assert "<cite>Autoencoders</cite> (Keras)" in text
    assert "<cite>Representações Latentes e Autoencoders</cite> (PyTorch)" in text
    for figure in reference_notebooks.FIGURES:
        assert f"<td>{html.escape(figure.shown)}</td>" in text
    # the notebook's loss curve is figure 2 of the gallery, exercise 2's table figure 8b
    assert '<code>02_loss.png</code> (<a href="#simple_autoencoder">figure 2</a>)' in text
    assert '<code>08_deep_vs_single_table.png</code> (<a href="#exercises">figure 8b</a>)' in text


def test_the_gallery_page_in_portuguese(tmp_path):
    fake_demo(tmp_path, "simple_autoencoder", caption="uma legenda")
    page_text = gallery.render_index(tmp_path, runs={"denoising": {"status": 3, "seconds": 1.0}}, lang="pt")
    page = parse(page_text)
    assert page.lang == "pt-BR"
    assert {"Os dois notebooks", "Execuções", "Valores finais", "Um autoencoder simples"} <= set(page.headings)
    assert page.captions[0] == "Figura 1. uma legenda 01_samples.png"
    assert "<td>4.000 / 1.000</td>" in page_text and "<td>0,0135</td>" in page_text and "12,5\u00a0s" in page_text
    assert "falhou (status de saída 3)" in page_text
    assert "Exercício 1: encoding_dim 4 ou 2" in page_text


def test_the_docs_page_holds_the_table_of_the_notebooks_figures():
    page = (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
    assert reference_notebooks.markdown_table() in page
    assert '"Autoencoders"' in page and '"Representações Latentes e Autoencoders"' in page
    for figure in reference_notebooks.FIGURES:  # every file the table names is a figure the chapter writes
        for file in figure.files:
            assert file in gallery.expected_figures()[figure.chapter] + gallery.PAGES.get(figure.chapter, ())


# --------------------------------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------------------------------


def test_demo_quick_in_portuguese_writes_a_portuguese_gallery(tmp_path, capsys):
    out = tmp_path / "outputs"
    names = ["one_step", "denoising"]
    assert run(["demo", "--quick", "--lang", "pt", "--data", "digits", "--device", "cpu", "--out", str(out),
                "--only", *names]) == 0
    page = parse((out / "index.html").read_text(encoding="utf-8"))
    assert page.lang == "pt-BR" and "Um denoising autoencoder" in page.headings
    assert page.captions[0].startswith("Figura 0. Execução rápida (algumas centenas de imagens, 2 épocas): O erro "
                                       "quadrático médio num batch de 64 dígitos, de 0,")
    captions = [figure["caption"] for figure in json.loads((out / "denoising" / "metrics.json").read_text())["figures"]]
    assert captions[0].startswith("Execução rápida") and "fator de ruído 0,5" in captions[0]
    assert "--lang pt_BR" in (out / "index.html").read_text(encoding="utf-8")  # the command as it was run


def test_a_language_without_a_catalog_is_refused_in_one_line(tmp_path, capsys):
    assert run(["demo", "--quick", "--lang", "xx", "--out", str(tmp_path)]) == 2
    assert "no message catalog for the language 'xx'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_notebooks_in_portuguese_have_the_chapters_text_in_portuguese(tmp_path):
    pytest.importorskip("jupytext")
    assert run(["notebooks", str(tmp_path), "--lang", "pt", "--only", "simple_autoencoder"]) == 0
    notebook = json.loads((tmp_path / "simple_autoencoder.ipynb").read_text(encoding="utf-8"))
    markdown = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"]
    words = {message.msgid: message.msgstr for message in read_po(PORTUGUESE)}
    english = [msgid for msgid in words if msgid.startswith("# A simple autoencoder\n")]
    assert markdown[0] == words[english[0]] and markdown[0].startswith("# Um autoencoder simples")
    assert all(text in words.values() for text in markdown)  # every cell is its translation
    assert "24,5 vezes" in markdown[0]  # a number in prose takes the decimal comma
    code = "".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert 'Demo.start("simple_autoencoder", ["--lang", "pt_BR"])' in code  # figures and captions follow


def test_the_explorer_page_in_portuguese():
    model = builders.simple_autoencoder(2, input_dim=64, hidden_dim=8, seed=0)
    images = numpy.random.default_rng(0).random((5, 64), dtype=numpy.float32)
    page = explorer_page(model, images, numpy.arange(5), image_shape=(8, 8), title="teste", lang="pt")
    assert '<html lang="pt-BR">' in page and "<h1>Explorador do espaço latente</h1>" in page
    assert "seu código z" in page and "{{" not in page
    assert "Agora clique num segundo ponto" in page  # the words of the page's JavaScript
    english = explorer_page(model, images, numpy.arange(5), image_shape=(8, 8), title="test")
    assert '<html lang="en">' in english and "<h1>Latent space explorer</h1>" in english


def test_explore_takes_lang(tmp_path, capsys):
    out = tmp_path / "ae"
    assert run(["train", "--model", "simple", "--latent-dim", "2", "--data", "digits", "--epochs", "1",
                "--device", "cpu", "--out", str(out)]) == 0
    assert run(["explore", str(out), "--points", "50", "--lang", "pt"]) == 0
    page = (out / "explorer.html").read_text(encoding="utf-8")
    assert "simple em digits, 1 época" in page and "Esta página tem " in page


def test_use_language_is_part_of_the_package():
    import scratchae

    assert scratchae.use_language is i18n.use_language


def test_the_gallery_names_recorded_values_and_timings_in_portuguese(tmp_path):
    fake_demo(tmp_path, "anomaly")
    metrics = json.loads((tmp_path / "anomaly" / "metrics.json").read_text())
    metrics["timings"] = {"load data": 1.0, "figures": 2.0}  # metrics.json keeps the English keys
    metrics["results"] = {"detector": {"test_mse": 0.02, "false_alarms": 3, "first_try_passed": True,
                                       "text": "uma frase"}}
    (tmp_path / "anomaly" / "metrics.json").write_text(json.dumps(metrics))
    portuguese = gallery.render_index(tmp_path, lang="pt")
    assert "MSE de teste 0,02, alarmes falsos 3, primeira tentativa passou sim, uma frase" in portuguese
    assert "figuras 2,0\u00a0s, carregar os dados 1,0\u00a0s" in portuguese
    row = portuguese.split("<td>detector</td>", 1)[1].split("</tr>", 1)[0]
    assert "test mse" not in row and "True" not in row and "text" not in row
    assert "load data" not in portuguese.split('id="anomaly"', 1)[1]
    english = gallery.render_index(tmp_path, lang="en")
    assert "test MSE 0.02, false alarms 3, first try passed yes, uma frase" in english
    assert "figures 2.0\u00a0s, load data 1.0\u00a0s" in english


def test_the_anomaly_and_two_floors_chapters_in_portuguese(tmp_path, capsys):
    out = tmp_path / "outputs"
    assert run(["demo", "--quick", "--lang", "pt", "--data", "digits", "--device", "cpu", "--out", str(out),
                "--only", "two_floors", "anomaly"]) == 0
    anomaly = json.loads((out / "anomaly" / "metrics.json").read_text(encoding="utf-8"))
    assert {"AE treinado na classe 8", "detecção de anomalias", "custos do limiar"} <= set(anomaly["results"])
    assert anomaly["results"]["custos do limiar"]["text"].startswith("Manter 95 % das imagens normais abaixo do "
                                                                     "limiar (0,")
    captions = [figure["caption"] for figure in anomaly["figures"]]
    assert "Curva ROC do erro de reconstrução com a classe 8 como normal: AUROC 0," in captions[1]
    assert "Chollet relata uma média que cai de 7,30 para 3,33." in captions[3]
    two_floors = json.loads((out / "two_floors" / "metrics.json").read_text(encoding="utf-8"))
    assert {"mesmos números", "tempo das convoluções"} <= set(two_floors["results"])
    assert "As convoluções do autoencoder convolucional num batch de 128 dígitos" in two_floors["figures"][0]["caption"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "lição (ms)" in page and "alarmes falsos" in page

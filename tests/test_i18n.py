"""Languages: the catalogs hold every message the figures, pages and chapters use; the .mo files are compiled from
the .po files; the language comes from ``lang``, ``use_language`` or the environment, as gettext reads it; numbers
in prose take the language's decimal comma."""

from __future__ import annotations

import gettext
import io
from pathlib import Path

import pytest

from scratchae import i18n, message_catalogs, message_sources
from scratchae.message_catalogs import Message, compile_mo, read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = sorted((ROOT / "scratchae" / "locale").glob("*/LC_MESSAGES/scratchae.po"))


@pytest.fixture(scope="module")
def found():
    return message_sources.find_messages(ROOT)


def untranslated(catalog: list[Message], found) -> list[str]:
    """The messages of ``found`` that ``catalog`` lacks or leaves untranslated (empty or fuzzy)."""
    translated = {message.key for message in catalog if message.translated}
    keys = {(context, text): text if context is None else f"{context}\x04{text}" for context, text in found}
    return [text[:60] for (context, text), key in keys.items() if key not in translated]


def fields(text: str) -> set[str]:
    return {match.group(0) for match in message_sources.FIELD.finditer(text)}


# --------------------------------------------------------------------------------------------------------------------
# The catalogs against the code
# --------------------------------------------------------------------------------------------------------------------


def test_there_is_a_brazilian_portuguese_catalog():
    assert [path.parts[-3] for path in CATALOGS] == ["pt_BR"]
    assert i18n.languages() == ["pt_BR"]


@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parts[-3])
def test_every_message_the_figures_pages_and_chapters_use_is_translated(po, found):
    assert untranslated(read_po(po), found) == []


def test_the_check_sees_a_missing_message(found):
    """The same check on a catalog without one message, and with one left fuzzy, names both: it can fail."""
    catalog = read_po(CATALOGS[0])
    chapter = next(message for message in catalog if message.msgid.startswith("# A simple autoencoder"))
    title = next(message for message in catalog if message.msgid == "Loss during training")
    title.flags.append("fuzzy")
    before = set(untranslated(read_po(CATALOGS[0]), found))
    missing = set(untranslated([message for message in catalog if message is not chapter], found)) - before
    assert missing == {chapter.msgid[:60], "Loss during training"}


def test_the_messages_are_found_in_code_page_and_chapters(found):
    where = {text: locations for (_, text), locations in found.items()}
    assert "scratchae/plots.py" in where["Loss during training"]
    assert where["Latent space explorer"] == ["scratchae/cli/explorer.html"]
    assert any(text.startswith("# A simple autoencoder\n") for text in where)  # a chapter's markdown cell, whole
    assert ("decimal point", ".") in found and ("thousands separator", ",") in found
    assert "{value:.4f}" not in where  # a number's format alone is no message


def test_the_template_and_every_catalog_are_up_to_date_with_the_code():
    assert message_catalogs.update(ROOT, check=True) == []


@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parts[-3])
def test_the_mo_file_is_compiled_from_its_po_file(po):
    assert po.with_suffix(".mo").read_bytes() == compile_mo(read_po(po))


@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parts[-3])
def test_a_translation_keeps_its_messages_fields(po, found):
    """The ``{fields}`` of a message from Python code (not the LaTeX braces of a chapter) are the translation's."""
    chapters = {text for path in (ROOT / "demos").glob("*.py")
                for (_, text), _ in message_sources.chapter_messages(path, path.name)}
    in_code = set(text for _, text in found) - chapters
    wrong = [message.msgid[:60] for message in read_po(po)
             if message.translated and message.msgid in in_code and fields(message.msgid) != fields(message.msgstr)]
    assert wrong == []


@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parts[-3])
def test_the_notebooks_own_titles_are_kept_word_for_word(po):
    """Where a figure reproduces a notebook's, its title in Portuguese is that notebook's own."""
    words = {message.msgid: message.msgstr for message in read_po(po)}
    notebooks = {
        "MNIST samples": "Amostras do MNIST",
        "Loss during training": "Loss durante o treinamento", "Epoch": "Época", "Loss": "Loss",
        "Originals": "Originais", "Reconstructions": "Reconstruções",
        "t-SNE of the latent space (32D -> 2D)": "t-SNE do Espaço Latente (32D -> 2D)",
        "Noisy input": "Entrada Ruidosa",
        "Noisy": "Ruidoso", "Reconstructed (clean)": "Reconstruído (Limpo)", "Original": "Original",
        "Original images": "Imagens Originais", "Reconstructed images": "Imagens Reconstruídas",
        "Visualization of the latent space with t-SNE": "Visualização do Espaço Latente com t-SNE",
        "t-SNE component 1": "Componente t-SNE 1", "t-SNE component 2": "Componente t-SNE 2",
        "Linear interpolation in the latent space": "Interpolação Linear no Espaço Latente",
        "Images generated from random samples of the latent space":
            "Imagens Geradas a Partir de Amostras Aleatórias do Latent Space",
    }
    if po.parts[-3] == "pt_BR":
        assert {msgid: words.get(msgid) for msgid in notebooks} == notebooks


# --------------------------------------------------------------------------------------------------------------------
# The two file formats
# --------------------------------------------------------------------------------------------------------------------


def test_a_po_file_reads_back_as_written_and_its_mo_file_reads_in_gettext(tmp_path):
    messages = [Message("", message_catalogs.HEADER),
                Message("Loss", "Perda", locations=["scratchae/plots.py:12"]),
                Message('two\nlines, "quoted" \\ and\ttab', 'duas\nlinhas, "aspas" \\ e\ttab', comments=["mine"]),
                Message(".", ",", msgctxt="decimal point"),
                Message("unsure", "incerto", flags=["fuzzy"]),
                Message("not yet")]
    path = write_po(tmp_path / "x.po", messages)
    again = read_po(path)
    assert [(m.msgctxt, m.msgid, m.msgstr, m.flags, m.comments, m.locations) for m in again] == \
        [(m.msgctxt, m.msgid, m.msgstr, m.flags, m.comments, m.locations) for m in messages]
    words = gettext.GNUTranslations(io.BytesIO(compile_mo(again)))
    assert words.gettext("Loss") == "Perda"
    assert words.gettext('two\nlines, "quoted" \\ and\ttab') == 'duas\nlinhas, "aspas" \\ e\ttab'
    assert words.pgettext("decimal point", ".") == ","
    assert words.gettext(".") == "."  # the context keeps it apart from a message without one
    assert words.gettext("unsure") == "unsure" and words.gettext("not yet") == "not yet"  # fuzzy and empty: left out


@pytest.mark.parametrize("text, problem", [
    ('msgid "a"\nmsgstr "b" extra\n', "expected a string in double quotes"),
    ('msgid "a"\nmsgstr "b"\n"c\\q"\n', "unknown escape"),
    ('msgid_plural "a"\n', "plural forms"),
    ('"lonely"\n', "continues nothing"),
])
def test_a_broken_po_file_is_named_with_its_line(tmp_path, text, problem):
    path = tmp_path / "broken.po"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(message_catalogs.CatalogError, match=problem) as caught:
        read_po(path)
    assert str(caught.value).startswith(f"{path}:")


def test_a_message_built_on_the_spot_is_refused_by_the_extractor():
    assert message_sources.python_messages('_f("Loss {x}", x=1)\ngettext(title)\n', "a.py") == \
        [((None, "Loss {x}"), "a.py:1")]
    with pytest.raises(message_sources.MessageError, match=r"a\.py:2: _f\(\) needs a plain string"):
        message_sources.python_messages('x = 1\n_f(f"Loss {x}")\n', "a.py")


# --------------------------------------------------------------------------------------------------------------------
# Choosing the language, and numbers
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch):
    """No locale variable set and no language chosen; restored after the test."""
    for variable in i18n.ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    i18n.use_language(None)
    yield monkeypatch
    i18n.use_language(None)


@pytest.mark.parametrize("name", ["pt", "pt_BR", "pt-BR", "pt_BR.UTF-8", "PT", "pt_PT"])
def test_a_portuguese_name_finds_the_brazilian_catalog(name, environment):
    assert i18n.resolve(name) == "pt_BR"


@pytest.mark.parametrize("name", ["en", "en_US.UTF-8", "C", "POSIX"])
def test_english_names_are_the_messages_as_written(name, environment):
    assert i18n.resolve(name) == "en"
    assert i18n.gettext("Loss during training", name) == "Loss during training"


def test_a_language_without_a_catalog_is_a_clear_error(environment):
    with pytest.raises(ValueError, match="no message catalog for the language 'xx'; there are: en, pt_BR"):
        i18n.resolve("xx")
    with pytest.raises(ValueError, match="'xx'"):
        i18n.use_language("xx")
    assert i18n.resolve() == "en"  # the refused choice changed nothing


def test_the_environment_decides_as_gettext_reads_it(environment):
    assert i18n.resolve() == "en"
    environment.setenv("LANG", "pt_BR.UTF-8")
    assert i18n.resolve() == "pt_BR"
    environment.setenv("LC_MESSAGES", "en_US.UTF-8")  # read before LANG
    assert i18n.resolve() == "en"
    environment.setenv("LANGUAGE", "fr:pt")  # read first; a list, the first with a catalog wins
    assert i18n.resolve() == "pt_BR"
    environment.setenv("LANGUAGE", "fr")  # nothing for fr: English, not the next variable
    assert i18n.resolve() == "en"


def test_use_language_overrides_the_environment_and_lang_overrides_both(environment):
    environment.setenv("LANG", "en_US.UTF-8")
    assert i18n.use_language("pt") == "pt_BR"
    assert i18n.gettext("Loss during training") == "Loss durante o treinamento"
    assert i18n.gettext("Loss during training", "en") == "Loss during training"
    assert i18n.use_language(None) == "en"


def test_numbers_in_portuguese_prose_take_the_decimal_comma(environment):
    assert i18n.format_text("{n:,} / {x:.4f} / {p:.0%} / {s}", "pt", n=4000, x=0.01374, p=0.11, s="1.5") == \
        "4.000 / 0,0137 / 11% / 1.5"  # a string is not a number: it stays as it is
    assert i18n.format_text("{n:,} / {x:.4f}", "en", n=4000, x=0.01374) == "4,000 / 0.0137"
    assert i18n.format_text("t = {t:.2f}", "pt", t=0.5) == "t = 0,50"

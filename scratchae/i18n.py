"""The language of the figures, captions, pages and chapters: GNU gettext message catalogs, English by default.

The text a learner reads is written in English in the code, as the *message id*, and looked up in a catalog when it
is shown: ``scratchae/locale/LANG/LC_MESSAGES/scratchae.mo``, compiled from the ``.po`` file beside it (the one a
translator edits; :mod:`scratchae.message_catalogs` compiles it). A message the catalog does not hold is shown as
written, in English. Adding a language is adding one catalog: no code names the languages.

Which language, in this order:

1. a ``lang`` argument (``plots.loss_curves(history, lang="pt")``, ``scratchae demo --lang pt``);
2. :func:`use_language` (``scratchae.use_language("pt")``), for everything that follows in this process;
3. the environment, as gettext reads it: the first of ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that is
   set (``LANG=pt_BR.UTF-8``; ``LANGUAGE`` may list several, ``pt:en``).

A language is found by its full name (``pt_BR``) or by its language alone (``pt`` finds ``pt_BR``); ``en``, ``C``
and ``POSIX`` are English.

Numbers written into prose follow the catalog too: its translations of the decimal point and of the thousands
separator (the messages ``"."`` and ``","`` in the contexts ``decimal point`` and ``thousands separator``) turn
``0.0137`` and ``4,000`` into ``0,0137`` and ``4.000`` in Portuguese (see :func:`format_text`).
"""

from __future__ import annotations

import functools
import gettext as _gettext
import numbers
import os
import string
from pathlib import Path

#: The catalogs' name: ``scratchae.po`` / ``scratchae.mo``.
DOMAIN = "scratchae"

#: Where the catalogs are: ``LOCALE_DIR / LANG / "LC_MESSAGES" / "scratchae.mo"``.
LOCALE_DIR = Path(__file__).with_name("locale")

#: The environment variables gettext reads, in its order.
ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

#: The language of the message ids.
SOURCE_LANGUAGE = "en"

_chosen: str | None = None  # set by use_language


def gettext(message: str, lang: str | None = None) -> str:
    """``message`` in the language of ``lang`` (see the module's docstring), or as written if it has no translation."""
    return translation(lang).gettext(message)


def format_text(message: str, /, lang: str | None = None, **values) -> str:
    """Translate ``message``, then fill its ``{fields}`` with ``values``, numbers written in the language's style.

    >>> format_text("t = {t:.2f}", lang="pt", t=0.5)
    't = 0,50'
    >>> format_text("{n:,} test digits", lang="pt", n=1000)  # a message the catalog lacks keeps its words
    '1.000 test digits'
    """
    words = translation(lang)
    thousands_separator = words.pgettext("thousands separator", ",")
    return _NumberFormatter(decimal_point(lang), thousands_separator).format(words.gettext(message), **values)


def decimal_point(lang: str | None = None) -> str:
    """The language's decimal point: ``","`` in Portuguese, ``"."`` in English."""
    return translation(lang).pgettext("decimal point", ".")


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs without translating it here (a default argument, a table's entry): it is
    translated where it is shown, by :func:`gettext`."""
    return message


def use_language(lang: str | None) -> str:
    """Speak ``lang`` from now on in this process (``None``: the environment's again); returns the catalog's name
    (``"pt_BR"``) or ``"en"``.

    Raises
    ------
    ValueError
        If no catalog has ``lang``, naming those there are.
    """
    global _chosen
    resolved = SOURCE_LANGUAGE if lang is None else _find(lang)
    _chosen = None if lang is None else resolved
    return resolve()


def languages() -> list[str]:
    """The languages there is a catalog for (``["pt_BR"]``), English not included."""
    return list(_catalogs())


@functools.lru_cache(maxsize=1)
def _catalogs() -> tuple[str, ...]:
    """The folders of LOCALE_DIR that hold a compiled catalog, read once: every text of every figure asks."""
    if not LOCALE_DIR.is_dir():
        return ()
    return tuple(sorted(folder.name for folder in LOCALE_DIR.iterdir()
                        if (folder / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()))


def resolve(lang: str | None = None) -> str:
    """The catalog that ``lang``, :func:`use_language` or the environment choose (in that order): a name of
    :func:`languages`, or ``"en"``."""
    if lang is not None:
        return _find(lang)
    if _chosen is not None:
        return _chosen
    return _from_environment()


def translation(lang: str | None = None) -> _gettext.NullTranslations:
    """The gettext translation object of :func:`resolve` (``lang``): a catalog, or English as written."""
    return _translation(resolve(lang))


@functools.lru_cache(maxsize=None)
def _translation(name: str) -> _gettext.NullTranslations:
    if name == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    with open(LOCALE_DIR / name / "LC_MESSAGES" / f"{DOMAIN}.mo", "rb") as file:
        return _gettext.GNUTranslations(file)


def _from_environment() -> str:
    """The first language of gettext's environment variables that has a catalog; English if none has."""
    for variable in ENVIRONMENT:
        value = os.environ.get(variable)
        if value:
            for name in value.split(":"):
                found = _match(name)
                if found is not None:
                    return found
            break  # gettext reads the first variable that is set, and only that one
    return SOURCE_LANGUAGE


def _find(lang: str) -> str:
    """The catalog of ``lang``, or a ValueError naming the languages there are."""
    found = _match(str(lang))
    if found is None:
        raise ValueError(f"no message catalog for the language {lang!r}; there are: "
                         f"{', '.join([SOURCE_LANGUAGE, *languages()])}")
    return found


def _match(name: str) -> str | None:
    """``"pt_BR.UTF-8"``, ``"pt-BR"``, ``"pt"`` -> ``"pt_BR"`` (a catalog there is); English -> ``"en"``; else None."""
    name = name.split(".")[0].split("@")[0].replace("-", "_")  # drop the encoding and the modifier
    language = name.split("_")[0].lower()
    if name in ("C", "POSIX") or language == SOURCE_LANGUAGE:
        return SOURCE_LANGUAGE
    available = languages()
    for catalog in available:
        if catalog.lower() == name.lower():
            return catalog
    return next((catalog for catalog in available if catalog.split("_")[0].lower() == language), None)


class _NumberFormatter(string.Formatter):
    """``str.format`` that writes each number with the language's decimal point and thousands separator."""

    def __init__(self, decimal_point: str, thousands_separator: str):
        super().__init__()
        self.swap = {ord("."): decimal_point, ord(","): thousands_separator}

    def format_field(self, value, format_spec: str) -> str:
        text = format(value, format_spec)
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            return text.translate(self.swap)  # both at once: "4,000.5" -> "4.000,5"
        return text

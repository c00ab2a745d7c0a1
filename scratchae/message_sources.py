"""Where the messages are: every text that the figures, captions, pages and chapters show, found in the code.

- Python: the first argument of every call of ``_``, ``N_``, ``_f``, ``gettext`` and ``format_text`` (a number's
  format alone, ``"{value:.4f}"``, is not a message)
  (read with :mod:`ast`, so a message is found where it is written; a message built on the spot, an f-string or a
  ``+``, is an error: its words would change before the catalog could look them up);
- the explorer page: every ``{{_ text _}}`` of ``scratchae/cli/explorer.html`` (its words on one line);
- the chapters: the text of every markdown cell of ``demos/*.py``, as jupytext reads it (``scratchae notebooks
  --lang`` looks each cell up whole).

Plus the two messages of every language's number style (:mod:`scratchae.i18n`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

#: The functions whose first argument is a message.
MESSAGE_FUNCTIONS = {"_", "N_", "_f", "gettext", "format_text"}

#: A ``{field}`` of a message, with a format that may hold a field of its own (``{value:.{digits}f}``).
FIELD = re.compile(r"\{[^{}]*(\{[^{}]*\}[^{}]*)*\}")

#: A message of the explorer page's template.
PAGE_MESSAGE = re.compile(r"\{\{_ (.+?) _\}\}", re.DOTALL)

#: The number style, asked of every catalog (see scratchae.i18n.format_text).
NUMBER_MESSAGES = {("decimal point", "."): ["scratchae/i18n.py"], ("thousands separator", ","): ["scratchae/i18n.py"]}

Found = dict[tuple[str | None, str], list[str]]


class MessageError(ValueError):
    """A message the catalogs cannot hold (an f-string, a variable): the text names the file and line."""


def find_messages(root) -> Found:
    """(context, message) -> the files that use it, for the package, the page and the chapters of the source tree at
    ``root``, in the order they are found.

    A location is a file, without a line number: moving a line does not change the catalogs, only adding, changing or
    removing a message does."""
    root = Path(root)
    found: Found = {key: list(where) for key, where in NUMBER_MESSAGES.items()}
    for path in sorted((root / "scratchae").rglob("*.py")) + sorted((root / "demos").glob("*.py")):
        _add(found, python_messages(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix()))
    page = root / "scratchae" / "cli" / "explorer.html"
    _add(found, page_messages(page.read_text(encoding="utf-8"), page.relative_to(root).as_posix()))
    for path in sorted((root / "demos").glob("*.py")):
        _add(found, chapter_messages(path, path.relative_to(root).as_posix()))
    return found


def _add(found: Found, messages) -> None:
    for key, where in messages:
        files = found.setdefault(key, [])
        if where.rsplit(":", 1)[0] not in files:
            files.append(where.rsplit(":", 1)[0])


def python_messages(source: str, name: str) -> list[tuple[tuple[None, str], str]]:
    """``((None, message), "name:line")`` for every call of a message function in ``source``."""
    messages = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if function not in MESSAGE_FUNCTIONS or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, (ast.JoinedStr, ast.BinOp)):
            raise MessageError(f"{name}:{node.lineno}: {function}() needs a plain string, not "
                               f"{ast.unparse(first)}: put the values in {{fields}} and pass them by name")
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and has_words(first.value):
            messages.append(((None, first.value), f"{name}:{node.lineno}"))
        # any other argument is a text translated where it was written (a title passed to a figure)
    return sorted(messages, key=lambda item: int(item[1].rsplit(":", 1)[1]))


def has_words(message: str) -> bool:
    """Whether a message has words outside its ``{fields}``: ``"{value:.4f}"`` is a number's format, the same in
    every language (the catalog's number style applies to it), not a message to translate."""
    return any(character.isalpha() for character in FIELD.sub("", message))


def page_messages(template: str, name: str) -> list[tuple[tuple[None, str], str]]:
    """``((None, message), "name:line")`` for every ``{{_ text _}}`` of a page template, its whitespace made single
    spaces (as :func:`page_message` looks it up)."""
    return [((None, page_message(match.group(1))), f"{name}:{template.count(chr(10), 0, match.start()) + 1}")
            for match in PAGE_MESSAGE.finditer(template)]


def page_message(text: str) -> str:
    """A page message as the catalog holds it: its lines joined by single spaces."""
    return " ".join(text.split())


def chapter_messages(path: Path, name: str) -> list[tuple[tuple[None, str], str]]:
    """``((None, text), "name:N")`` for every markdown cell of a percent-format chapter, N its cell's index."""
    import jupytext  # a package of the notebooks' and the tests' extras: needed when the chapters are read

    notebook = jupytext.read(path)
    return [((None, cell.source), f"{name}:{index}") for index, cell in enumerate(notebook.cells)
            if cell.cell_type == "markdown" and cell.source.strip()]

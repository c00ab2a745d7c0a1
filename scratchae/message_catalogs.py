"""The two files of a message catalog: the ``.po`` a translator edits, and the ``.mo`` that Python's gettext reads.

A small reader and writer of GNU gettext's formats, so that neither building nor testing needs GNU gettext's tools:

- :func:`read_po` reads a ``.po`` (or ``.pot``) file into :class:`Message` entries (context, id, translation,
  flags such as ``fuzzy``, the translator's and the source's comments);
- :func:`write_po` writes them back;
- :func:`compile_mo` turns them into the bytes of a ``.mo`` file (fuzzy and untranslated entries left out, as
  ``msgfmt`` does), which :class:`gettext.GNUTranslations` reads.

``python -m scratchae.message_catalogs`` brings every catalog up to date with the code: it finds the messages
(:mod:`scratchae.message_sources`), writes the template ``locale/scratchae.pot``, adds the new messages to each
``locale/LANG/LC_MESSAGES/scratchae.po`` (untranslated) and drops those the code no longer uses, and compiles each
``.po`` to its ``.mo``. A translator then fills the empty ``msgstr`` entries and runs it again. A new language is a
new ``.po`` file: copy the template to ``locale/LANG/LC_MESSAGES/scratchae.po``.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: The ``.mo`` file's first four bytes, little-endian.
MO_MAGIC = 0x950412DE

#: The separator gettext puts between a message's context and its id in a ``.mo`` key.
CONTEXT_SEPARATOR = "\x04"

HEADER = ("Project-Id-Version: scratchae\n"
          "MIME-Version: 1.0\n"
          "Content-Type: text/plain; charset=UTF-8\n"
          "Content-Transfer-Encoding: 8bit\n")


class CatalogError(ValueError):
    """A ``.po`` file that cannot be read: the message names the file and the line."""


@dataclass
class Message:
    """One entry of a catalog: ``msgid`` (the English text), its ``msgstr`` (the translation, "" when missing)."""

    msgid: str
    msgstr: str = ""
    msgctxt: str | None = None
    flags: list[str] = field(default_factory=list)  # "#, fuzzy" -> ["fuzzy"]
    comments: list[str] = field(default_factory=list)  # lines of "# ...": the translator's own notes
    locations: list[str] = field(default_factory=list)  # "#: demos/vae.py:12" -> ["demos/vae.py:12"]

    @property
    def key(self) -> str:
        """What gettext looks the message up by: ``context \\x04 id``, or the id alone."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}{CONTEXT_SEPARATOR}{self.msgid}"

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and "fuzzy" not in self.flags


# --------------------------------------------------------------------------------------------------------------------
# .po files
# --------------------------------------------------------------------------------------------------------------------


def read_po(path) -> list[Message]:
    """The entries of a ``.po`` or ``.pot`` file, header included (the entry whose msgid is ``""``).

    Raises
    ------
    CatalogError
        On a line that is not a comment, a keyword with a quoted string, or a quoted string continuing one.
    """
    path = Path(path)
    messages: list[Message] = []
    current: Message | None = None
    keyword = None  # the field that a continued "..." line adds to
    pending = Message("")  # comments and flags seen before the next msgid

    def finish():
        nonlocal current
        if current is not None:
            messages.append(current)
        current = None

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        where = f"{path}:{number}"
        if not line:
            continue
        if line.startswith("#~"):  # an obsolete entry: kept by nobody
            continue
        if line.startswith("#"):
            if current is not None and keyword == "msgstr":
                finish()
            if line.startswith("#,"):
                pending.flags += [flag.strip() for flag in line[2:].split(",") if flag.strip()]
            elif line.startswith("#:"):
                pending.locations += line[2:].split()
            elif line.startswith("# ") or line == "#":
                pending.comments.append(line[2:])
            continue
        name, _, rest = line.partition(" ")
        if line.startswith('"'):
            if current is None or keyword is None:
                raise CatalogError(f"{where}: a quoted string that continues nothing")
            setattr(current, keyword, (getattr(current, keyword) or "") + _unquote(line, where))
            continue
        if name not in ("msgctxt", "msgid", "msgstr"):
            raise CatalogError(f"{where}: expected msgctxt, msgid, msgstr, a quoted string or a comment; got {line!r}"
                               + (" (plural forms are not used by scratchae)" if name.startswith("msgid_") else ""))
        value = _unquote(rest.strip(), where)
        if name == "msgctxt" or (name == "msgid" and (current is None or keyword == "msgstr")):
            finish()
            current = Message("", flags=pending.flags, comments=pending.comments, locations=pending.locations)
            pending = Message("")
        elif current is None:
            raise CatalogError(f"{where}: {name} before any msgid")
        setattr(current, name, value)
        keyword = name
    finish()
    return messages


def write_po(path, messages: list[Message], *, header_comment: str = "") -> Path:
    """Write ``messages`` as a ``.po`` file (its header first: the entry whose msgid is ``""``, made if missing)."""
    from scratchae.atomic_files import write_text_atomically

    header = next((message for message in messages if message.msgid == "" and message.msgctxt is None), None)
    if header is None:
        header = Message("", HEADER)
    lines = [f"# {line}".rstrip() for line in header_comment.splitlines()] if header_comment else []
    for message in [header, *(message for message in messages if message is not header)]:
        lines += [f"# {comment}".rstrip() for comment in message.comments]
        lines += [f"#: {location}" for location in message.locations]
        if message.flags:
            lines.append("#, " + ", ".join(message.flags))
        if message.msgctxt is not None:
            lines.append(f"msgctxt {_quote(message.msgctxt)}")
        lines.append(f"msgid {_quote(message.msgid)}")
        lines.append(f"msgstr {_quote(message.msgstr)}")
        lines.append("")
    return write_text_atomically(Path(path), "\n".join(lines))


def _quote(text: str) -> str:
    """A string as a .po file writes it: one quoted line, or "" then one quoted line per line of a long text."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = escaped.split("\n")
    if len(lines) == 1:
        return f'"{escaped}"'
    parts = [f"{line}\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{part}"' for part in parts)


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}


def _unquote(text: str, where: str) -> str:
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise CatalogError(f"{where}: expected a string in double quotes, got {text!r}")
    body, out, index = text[1:-1], [], 0
    while index < len(body):
        character = body[index]
        if character == "\\":
            escape = body[index + 1: index + 2]
            if escape not in _ESCAPES:
                raise CatalogError(f"{where}: unknown escape \\{escape} in {text!r}")
            out.append(_ESCAPES[escape])
            index += 2
        elif character == '"':
            raise CatalogError(f"{where}: a double quote inside a string must be written \\\" in {text!r}")
        else:
            out.append(character)
            index += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------------------------------
# .mo files
# --------------------------------------------------------------------------------------------------------------------


def compile_mo(messages: list[Message]) -> bytes:
    """The bytes of the ``.mo`` file of ``messages``: the header and every translated entry, sorted by key.

    The layout of GNU gettext's ``.mo`` (little-endian): a 28-byte header (magic, revision 0, the number of
    strings N, where the table of ids starts, where the table of translations starts, and an empty hash table),
    two tables of N (length, offset) pairs, then the strings themselves, each followed by a NUL byte.
    """
    entries = sorted(((message.key, message.msgstr) for message in messages
                      if message.translated or (message.msgid == "" and message.msgctxt is None)),
                     key=lambda entry: entry[0].encode("utf-8"))
    ids = [key.encode("utf-8") for key, _ in entries]
    translations = [text.encode("utf-8") for _, text in entries]
    n = len(entries)
    ids_table, translations_table = 28, 28 + 8 * n
    offset = 28 + 16 * n
    id_pairs, translation_pairs = [], []
    for strings, pairs in ((ids, id_pairs), (translations, translation_pairs)):
        for text in strings:
            pairs.append((len(text), offset))
            offset += len(text) + 1
    header = struct.pack("<7I", MO_MAGIC, 0, n, ids_table, translations_table, 0, 0)
    tables = b"".join(struct.pack("<2I", *pair) for pair in id_pairs + translation_pairs)
    return header + tables + b"".join(text + b"\0" for text in ids + translations)


# --------------------------------------------------------------------------------------------------------------------
# Bringing the catalogs up to date
# --------------------------------------------------------------------------------------------------------------------


def template(found: dict[tuple[str | None, str], list[str]]) -> list[Message]:
    """The template's entries: one untranslated message per (context, id) found, with where it was found."""
    return [Message(msgid, msgctxt=context, locations=locations) for (context, msgid), locations in found.items()]


def merge(catalog: list[Message], found: list[Message]) -> list[Message]:
    """The catalog with the template's messages: its translations kept, new ids added empty, unused ids dropped."""
    known = {message.key: message for message in catalog}
    header = known.get("", Message("", HEADER))
    merged = [header]
    for message in found:
        old = known.get(message.key)
        merged.append(Message(message.msgid, old.msgstr if old else "", message.msgctxt,
                              flags=old.flags if old else [], comments=old.comments if old else [],
                              locations=message.locations))
    return merged


def update(root=None, *, check: bool = False) -> list[str]:
    """Update the template, every ``.po`` and every ``.mo`` under ``root/scratchae/locale`` from the code.

    With ``check``, write nothing and return what is out of date (one line per file; none when all is well).
    """
    from scratchae.i18n import DOMAIN, LOCALE_DIR
    from scratchae.message_sources import find_messages

    root = Path(root) if root is not None else LOCALE_DIR.parents[1]
    locale = root / "scratchae" / "locale"
    found = template(find_messages(root))
    stale = []
    pot = locale / f"{DOMAIN}.pot"
    if _differs(pot, found):
        stale.append(f"{pot}: not the messages the code uses")
        if not check:
            write_po(pot, found, header_comment="The messages of scratchae's figures, captions, pages and chapters.")
    for po in sorted(locale.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        catalog = read_po(po)
        merged = merge(catalog, found)
        if [_entry(m) for m in merged] != [_entry(m) for m in catalog]:
            stale.append(f"{po}: not the messages the code uses")
            if not check:
                write_po(po, merged)
        mo = po.with_suffix(".mo")
        compiled = compile_mo(merged if not check else catalog)
        if not mo.is_file() or mo.read_bytes() != compiled:
            stale.append(f"{mo}: not compiled from {po.name}")
            if not check:
                from scratchae.atomic_files import write_atomically

                write_atomically(mo, lambda file, data=compiled: file.write(data))
    return stale


def _entry(message: Message) -> tuple:
    return message.key, message.msgstr, message.locations


def _differs(pot: Path, found: list[Message]) -> bool:
    if not pot.is_file():
        return True
    old = read_po(pot)
    return [(m.key, m.locations) for m in old if m.msgid] != [(m.key, m.locations) for m in found]


def main(argv: list[str] | None = None) -> int:
    """``python -m scratchae.message_catalogs [--check]``: update the catalogs, or say which are out of date."""
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = update(check=check)
    for line in stale:
        print(("out of date: " if check else "updated: ") + line)
    untranslated = [f"{po}: {sum(1 for m in read_po(po) if m.msgid and not m.translated)} untranslated"
                    for po in sorted(Path(__file__).with_name("locale").glob("*/LC_MESSAGES/*.po"))]
    for line in untranslated:
        print(line)
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

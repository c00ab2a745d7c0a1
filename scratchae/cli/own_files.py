"""Which files in a folder scratchae wrote, so that a command replaces only those: never a learner's own.

``scratchae explore``, ``notebooks``, ``evaluate`` and ``demo`` write files under names a learner may use too
(``explorer.html``, ``vae.ipynb``, ``index.html``). Each file they write is entered in the folder's list of its own,
``.scratchae-files.json``: its name, the SHA-256 of what was written, and the command. A file may then be replaced
only if it is not there, or is there as the list says it was written (same content); anything else is the learner's
(a file of theirs, or one of ours that they edited, a notebook with their new cell) and is refused with one line
that names it and says how to go on, unless the command is told ``--overwrite``.

The list is data anyone can edit: it only ever lets a command replace a file whose content is exactly what the list
says, and a name in it that is not a plain name in the folder (``../notes.txt``) is ignored.

This is the run folder's manifest (:mod:`scratchae.cli.run_folder`) for files written one at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path

from scratchae.atomic_files import write_text_atomically

#: The list of the files scratchae wrote into a folder.
LEDGER = ".scratchae-files.json"


class NotOursError(FileExistsError):
    """A file is there that scratchae did not write (or that was changed since): the message names it and what
    to do."""

    def __init__(self, message: str):
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0]


def check_replaceable(path, *, overwrite: bool = False, how: str | None = None) -> None:
    """Raise :class:`NotOursError` unless ``path`` may be written: it is absent, it is as scratchae wrote it, or
    ``overwrite`` says to replace it anyway. ``how`` is what the message suggests instead (default: ``--overwrite``
    or another name)."""
    path = Path(path)
    if not os.path.lexists(path) or overwrite or is_ours(path):
        return
    if path.is_dir() and not path.is_symlink():
        raise NotOursError(f"{path} is a folder; give a file name")
    changed = _listed(path) is not None
    why = "was changed since scratchae wrote it" if changed else "was not written by scratchae"
    raise NotOursError(f"{path} {why}; it is kept as it is and nothing was written: "
                       f"{how or 'give another name, or --overwrite to replace it'}")


def is_ours(path) -> bool:
    """Whether ``path`` is a plain file whose content is what scratchae wrote there, by the folder's list."""
    path = Path(path)
    listed = _listed(path)
    if listed is None or not _is_plain_file(path):
        return False
    try:
        return _sha256(path) == listed
    except OSError:
        return False


def record(path, command: str) -> Path:
    """Enter ``path`` (just written by ``command``) in its folder's list; returns ``path``. A list that cannot be
    written (a full disk) leaves the file unlisted: the next write of that name then asks for ``--overwrite``, never
    the other way round."""
    path = Path(path)
    with contextlib.suppress(OSError):
        ledger = _read(path.parent)
        ledger[path.name] = {"sha256": _sha256(path), "by": command}
        write_text_atomically(path.parent / LEDGER, json.dumps({"files": ledger}, indent=1, sort_keys=True) + "\n")
    return path


def remove_if_ours(path) -> bool:
    """Delete ``path`` if it is as scratchae wrote it (a result the new run does not make again, which would be
    taken for one of its own), and drop it from the list; a file of the learner's, or one they edited, stays.
    Returns whether it was deleted."""
    path = Path(path)
    if not is_ours(path):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        ledger = _read(path.parent)
        ledger.pop(path.name, None)
        write_text_atomically(path.parent / LEDGER, json.dumps({"files": ledger}, indent=1, sort_keys=True) + "\n")
    return True


def write_text(path, text: str, *, command: str, overwrite: bool = False, how: str | None = None) -> Path:
    """Write ``text`` to ``path`` atomically if it may be replaced (:func:`check_replaceable`), and list it."""
    check_replaceable(path, overwrite=overwrite, how=how)
    write_text_atomically(path, text)
    record(path, command)
    return Path(path)


def _listed(path: Path) -> str | None:
    """The SHA-256 the folder's list gives for ``path``, or None."""
    entry = _read(path.parent).get(path.name)
    return entry.get("sha256") if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) else None


def _read(folder: Path) -> dict:
    """The folder's list: file name -> entry, only plain names kept (empty if there is none or it cannot be read)."""
    if not _is_plain_file(folder / LEDGER):
        return {}
    try:
        files = json.loads((folder / LEDGER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError, RecursionError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {name: entry for name, entry in files.items()
            if isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _is_plain_file(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISREG(os.lstat(path).st_mode)
    return False

"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

Every file scratchae writes (checkpoints, histories, figures, the gallery page) goes through :func:`write_atomically`:
the content is written to a hidden temporary file in the same folder, flushed to the disk, and only then renamed over
the target in one step (``os.replace``, atomic within one file system). A reader therefore sees the old file or the
new one, never a mixture; an error half-way deletes the temporary file and leaves the old file as it was.

A process killed between writing and renaming cannot delete its temporary file. Those names end in
:data:`TEMPORARY_SUFFIX`, so :func:`remove_stale_temporaries` can clear them on the next start.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

#: The end of the name of every temporary file scratchae writes.
TEMPORARY_SUFFIX = ".scratchae-tmp"


def temporary_path(path: Path) -> Path:
    """A hidden, unique name next to ``path`` (``.model.npz.3f2a9c1e.scratchae-tmp``)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")


def write_atomically(path, write, *, text: bool = False) -> Path:
    """Create or replace the file ``path`` with what ``write(file)`` writes, all at once.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace. Missing parent folders are created.
    write : callable
        ``write(file)`` writes the content into the open file object it is given.
    text : bool
        Open the file in text mode (UTF-8) instead of binary mode.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    IsADirectoryError
        If ``path`` is an existing folder.
    OSError
        If the folder cannot be created or written; the old file at ``path``, if any, is left as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with open(temporary, "x" if text else "xb", **({"encoding": "utf-8"} if text else {})) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on the disk before the rename makes it visible
        os.chmod(temporary, 0o666 & ~_current_umask())  # the mode a plain open() would have given
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path


def write_text_atomically(path, text: str) -> Path:
    """Create or replace the text file ``path`` with ``text`` (UTF-8), all at once."""
    return write_atomically(path, lambda file: file.write(text), text=True)


def remove_stale_temporaries(folder, *, older_than: float = 60.0) -> list[Path]:
    """Delete the temporary files that killed scratchae processes left in ``folder``; returns what was deleted.

    Only files named ``*`` + :data:`TEMPORARY_SUFFIX` and not modified for ``older_than`` seconds are touched, so a
    write in progress in another process is left alone.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for candidate in folder.glob(f".*{TEMPORARY_SUFFIX}"):
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            if candidate.is_file() and now - candidate.stat().st_mtime >= older_than:
                candidate.unlink()
                removed.append(candidate)
    return removed


def _current_umask() -> int:
    umask = os.umask(0)  # the only way to read the umask is to set it, so set it straight back
    os.umask(umask)
    return umask

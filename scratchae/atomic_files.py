"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

Every file scratchae writes (checkpoints, histories, figures, the gallery page) goes through :func:`write_atomically`:
the content is written to a hidden temporary file in the same folder, flushed to the disk, and only then renamed over
the target in one step (``os.replace``, atomic within one file system). A reader therefore sees the old file or the
new one, never a mixture; an error half-way deletes the temporary file and leaves the old file as it was.

A process killed between writing and renaming cannot delete its temporary file. Its name is the target's, hidden,
with 8 random hex digits and :data:`TEMPORARY_SUFFIX` (``.model.npz.3f2a9c1e.scratchae-tmp``), cut short where a
long target name would pass the 255 bytes a file name may have. :func:`remove_stale_temporaries` clears them on the
next start, but only those it can prove are its own: the caller names the files it writes into the folder, and only
a plain file of this process's user, named exactly as a temporary of one of them, is removed. A file that merely
ends in ``.scratchae-tmp`` is never touched.

An error while writing is a :class:`WriteError` that names the file asked for (never the hidden temporary) and what
was kept: "cannot write runs/page.html: No space left on device; the page.html there is kept as it was".
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
import uuid
from pathlib import Path

#: The end of the name of every temporary file scratchae writes.
TEMPORARY_SUFFIX = ".scratchae-tmp"

#: The longest file name (in bytes, as Linux, macOS and Windows count them) a temporary may have.
MAX_NAME_BYTES = 255

#: What a temporary's name adds to the part of the target's name it keeps: a dot, a dot and 8 hex digits, the suffix.
_ADDED_BYTES = 1 + 1 + 8 + len(TEMPORARY_SUFFIX)

#: The errors of the file system (as opposed to those of whatever ``write`` reads from, such as a network) that a
#: failed write reports as a :class:`WriteError`.
FILE_SYSTEM_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                                errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EIO})


class WriteError(OSError):
    """A file could not be written: the message names the file asked for, why, and what was kept.

    ``errno`` and ``strerror`` are those of the failure (``errno.ENOSPC``, "No space left on device"); ``path`` is
    the file asked for.
    """

    def __init__(self, path, error: OSError, existed: bool):
        super().__init__(error.errno, error.strerror or str(error))
        self.path = Path(path)  # not ``filename``, which would make the message "path: reason" without the rest
        name = Path(path).name
        kept = f"the {name} that was there is kept as it was" if existed else "nothing was written"
        why = error.strerror or str(error)
        if isinstance(error, FileExistsError) and error.filename and not Path(error.filename).is_dir():
            why = f"{error.filename} is a file, not a folder"  # a folder on the way is a file (mkdir says "exists")
        self.message = f"cannot write {path}: {why}; {kept}"

    def __str__(self) -> str:
        return self.message


def temporary_path(path: Path) -> Path:
    """A hidden, unique name next to ``path`` (``.model.npz.3f2a9c1e.scratchae-tmp``), within 255 bytes."""
    return path.with_name(f".{_kept_part(path.name)}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")


def _kept_part(name: str) -> str:
    """As many of the bytes of ``name`` as a temporary's name can hold (a character cut in two keeps its first bytes,
    which the file system takes as they are)."""
    return os.fsdecode(os.fsencode(name)[:MAX_NAME_BYTES - _ADDED_BYTES])


def is_temporary_of(candidate: str, name: str) -> bool:
    """Whether the file name ``candidate`` is one that :func:`temporary_path` gives a temporary of ``name``."""
    pattern = re.escape(f".{_kept_part(name)}.") + "[0-9a-f]{8}" + re.escape(TEMPORARY_SUFFIX)
    return re.fullmatch(pattern, candidate) is not None


def _is_special(path: Path) -> bool:
    """Whether ``path`` is a device, a pipe or a socket (a link is not followed: a rename replaces the link)."""
    try:
        return not stat.S_ISREG(mode := os.lstat(path).st_mode) and not stat.S_ISLNK(mode)
    except OSError:  # nothing there (or nothing that can be looked at): a new file
        return False


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
    WriteError
        If the folder cannot be created or written, the disk is full or the name is too long: the message names
        ``path`` and says that the old file at ``path``, if any, is left as it was.
    """
    path = Path(path)
    existed = False
    try:
        if path.is_dir():
            raise IsADirectoryError(f"cannot write {path}: it is a folder")
        if _is_special(path):  # a rename would put a file where a device or a pipe was
            raise IsADirectoryError(f"cannot write {path}: it is not a plain file (a device, a pipe or a socket); it "
                                    f"is kept as it is")
        existed = path.exists()  # a name too long for the file system fails here
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if isinstance(error, IsADirectoryError) and error.errno is None:
            raise
        raise WriteError(path, error, existed) from None
    temporary = temporary_path(path)
    try:
        with open(temporary, "x" if text else "xb", **({"encoding": "utf-8"} if text else {})) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on the disk before the rename makes it visible
        os.chmod(temporary, 0o666 & ~_current_umask())  # the mode a plain open() would have given
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError) and not isinstance(error, WriteError) and error.errno in FILE_SYSTEM_ERRORS:
            raise WriteError(path, error, existed) from None
        raise
    return path


def write_text_atomically(path, text: str) -> Path:
    """Create or replace the text file ``path`` with ``text`` (UTF-8), all at once."""
    return write_atomically(path, lambda file: file.write(text), text=True)


def remove_stale_temporaries(folder, names, *, older_than: float = 60.0) -> list[Path]:
    """Delete the temporary files that killed scratchae processes left in ``folder``; returns what was deleted.

    Only what can be proved to be one: a plain file (not a link or a folder) of this process's user, named exactly
    as :func:`temporary_path` names a temporary of one of ``names`` (the files the caller writes into ``folder``),
    not modified for ``older_than`` seconds (so a write in progress in another process is left alone). A file that
    merely looks like a temporary of another name is never touched.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir() or folder.is_symlink():
        return removed
    now = time.time()
    for candidate in folder.iterdir():
        if not any(is_temporary_of(candidate.name, name) for name in names):
            continue
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            status = os.lstat(candidate)
            if stat.S_ISREG(status.st_mode) and status.st_uid == os.getuid() and now - status.st_mtime >= older_than:
                candidate.unlink()
                removed.append(candidate)
    return removed


def _current_umask() -> int:
    umask = os.umask(0)  # the only way to read the umask is to set it, so set it straight back
    os.umask(umask)
    return umask

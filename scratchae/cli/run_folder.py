"""A run folder: the checkpoint, history and figures of one training run, always of one and the same state.

Files are never written into the folder one by one. :meth:`RunFolder.commit` writes the new state into a hidden
staging folder inside it, writes a manifest (``run.json``: the files, the epochs, what was trained) last, and only
then moves the files into place, the manifest at the end. A kill at any moment leaves either a staging folder
without a manifest (the old state is untouched; the staging folder is deleted on the next start) or one with a
manifest (the new state is complete; the next start finishes moving it into place). Files of the old state that
the new one does not have are removed, so the folder never shows a new checkpoint beside old figures.

One process writes a folder at a time: :meth:`RunFolder.writing` holds an OS lock (``flock``) on the file
``.scratchae-lock`` in it, which the kernel releases when the process ends, however it ends (a killed run leaves
the file, never the lock; one that ends deletes it). A second process is refused before it changes anything, and
what a killed run left is finished or cleared only under the lock.

The folder's files are data, never instructions: recovery looks only at staging folders that are real folders
(never a symbolic link), moves and deletes only plain files of the names a run has (:data:`RUN_FILES`), and a
manifest that names anything else is not followed. A file of one of those names that the manifest does not list is
not this program's (:meth:`RunFolder.foreign_files`): the commands refuse to replace it unless told.

The same folder serves other commands that write a set of files together (``scratchae demo`` gives each chapter's
folder its figures' names): ``files`` names what the folder's state may hold, ``command`` names the writer in the
message that refuses a second one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import time
import uuid
from pathlib import Path

from scratchae.atomic_files import is_temporary_of, remove_stale_temporaries, write_text_atomically

MANIFEST = "run.json"
CHECKPOINT = "model.npz"
STAGING_PREFIX = ".staging-"
LOCK = ".scratchae-lock"

#: The files a run folder's state may have: all that a manifest may name, move or delete.
RUN_FILES = (CHECKPOINT, "history.json", "history.csv", "loss.png", "reconstructions.png", "samples.png")

#: The name of a staging folder that :meth:`RunFolder.commit` makes.
_STAGING_NAME = re.compile(re.escape(STAGING_PREFIX) + "[0-9a-f]{8}")

#: How long a refused process waits for the pid of the one that holds the lock (which writes it just after taking
#: the lock), so that two runs started together name each other.
_PID_WAIT_SECONDS = 1.0


class RunFolderError(OSError):
    """The folder cannot hold a run (it is a file, cannot be created, or cannot be written)."""


class RunFolderBusy(RunFolderError):
    """Another process is writing the folder."""


class RunFolder:
    """The folder ``path`` of one run."""

    def __init__(self, path, *, files: tuple[str, ...] = RUN_FILES, command: str = "scratchae train",
                 stopping: str = "saves its state"):
        self.path = Path(path)
        self.files = tuple(files)  # all that a manifest may name, move or delete
        self.command = command  # who writes the folder, for the message that refuses a second writer
        self.stopping = stopping  # what stopping that writer with SIGTERM does, for the same message
        self._lock = None  # the descriptor of the lock file while this object holds the lock

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @contextlib.contextmanager
    def writing(self):
        """The block runs as the folder's only writer: the folder is checked, created if needed, locked, and what a
        killed run left in it is finished or cleared; the lock is released at the end of the block.

        Entered before any data is loaded or any training starts, so that a run is never lost for want of a place
        to save it.

        Raises
        ------
        RunFolderError
            If ``path`` is a file, or the folder cannot be created or written.
        RunFolderBusy
            If another process holds the lock: nothing in the folder has been changed.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"--out {self.path} is a file, not a folder; give a folder for the run")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunFolderError(f"--out {self.path} cannot be used for the run: {error.strerror or error}") from None
        with self._locked():
            try:
                with tempfile.TemporaryFile(dir=self.path):  # the only sure test of writing is to write
                    pass
            except OSError as error:
                raise RunFolderError(f"--out {self.path} cannot be used for the run: {error.strerror or error}") \
                    from None
            self._recover()
            yield self

    def prepare(self) -> None:
        """Check, create and recover the folder as :meth:`writing` does, without keeping the lock."""
        with self.writing():
            pass

    @contextlib.contextmanager
    def _locked(self):
        if self._lock is not None:  # held already by this object
            yield
            return
        descriptor = self._acquire()
        self._lock = descriptor
        with contextlib.suppress(OSError):  # the pid only names the holder in others' messages; a full disk may
            os.ftruncate(descriptor, 0)      # refuse it
            os.write(descriptor, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            self._lock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path / LOCK)  # while still locked: no lock file is left in a folder at rest
            os.close(descriptor)  # releases the lock

    def _acquire(self) -> int:
        """Open the lock file and lock it; returns its descriptor.

        The holder deletes the file before it lets go, so a lock taken on a file that is no longer the folder's
        lock file (opened just before that deletion) is worthless: it is let go and taken again on the new file.
        """
        while True:
            try:
                descriptor = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise RunFolderError(f"--out {self.path} cannot be used for the run: {error.strerror or error}") \
                    from None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = _lock_holder(descriptor) if error.errno in (errno.EWOULDBLOCK, errno.EACCES) else None
                os.close(descriptor)
                raise self._refusal(error, holder) from None
            if _same_file(descriptor, self.path / LOCK):
                return descriptor
            os.close(descriptor)

    def _refusal(self, error: OSError, holder: int | None) -> RunFolderError:
        if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            return RunFolderError(f"--out {self.path} cannot be locked for the run: {error.strerror or error}")
        named, stop = (f"pid {holder}", f"kill -TERM {holder}") if holder else ("its pid is not known", "kill -TERM")
        return RunFolderBusy(f"--out {self.path} is being written by another {self.command} ({named}); nothing in "
                             f"it was changed: wait for that run to end, or stop it ({stop} {self.stopping}), then "
                             f"try again")

    def recover(self) -> None:
        """Finish moving a complete staged state into place, and delete incomplete ones and stale temporary files;
        under the folder's lock (:class:`RunFolderBusy` if another process holds it)."""
        with self._locked():
            self._recover()

    def _recover(self) -> None:
        for staging in sorted(self.path.iterdir()):
            if not _STAGING_NAME.fullmatch(staging.name) or not _is_real_folder(staging):
                continue  # a symbolic link, a file or a folder of another name: not this program's, left alone
            if _is_plain_file(staging / MANIFEST):
                self._move_into_place(staging)
            else:
                _remove_staging(staging, self.files)
        remove_stale_temporaries(self.path, (*self.files, MANIFEST))

    def holds_run(self) -> bool:
        return self.checkpoint.is_file()

    def manifest(self) -> dict:
        """What ``run.json`` says of the run in the folder (empty if it has none or it cannot be read)."""
        return _read_manifest(self.path / MANIFEST, self.files)

    def manifest_unreadable(self) -> bool:
        """Whether the folder has a ``run.json`` that cannot be read as a run's manifest (damaged, or not JSON)."""
        return os.path.lexists(self.path / MANIFEST) and not self.manifest()

    def foreign_files(self) -> list[str]:
        """The names of :attr:`files` that are in the folder but not of its run (its manifest does not list them):
        a learner's own ``loss.png``, say, which a commit would replace."""
        listed = set(self.manifest().get("files", []))
        return [name for name in self.files if name not in listed and os.path.lexists(self.path / name)]

    def commit(self, writers: dict, about: dict) -> list[str]:
        """Replace the folder's run with the files that ``writers`` write, all together (under the lock).

        Parameters
        ----------
        writers : dict[str, callable]
            File name (one of :data:`RUN_FILES`) -> ``write(path)``, which writes that file at ``path``.
        about : dict
            What the manifest says of the run besides its files (epochs, model, data set ...).

        Returns
        -------
        list of str
            The names of the files written.
        """
        unknown = [name for name in writers if name not in self.files]
        if unknown:
            raise ValueError(f"a run folder holds only {', '.join(self.files)}, not {', '.join(unknown)}")
        with self._locked(), self.staging() as staging:
            for name, write in writers.items():
                write(staging / name)
            self.place(staging, list(writers), about)
        return list(writers)

    @contextlib.contextmanager
    def staging(self):
        """A new, empty staging folder in the folder (under the lock), to fill and then :meth:`place`; deleted at
        the end of the block unless placed (an error, Ctrl-C: the folder's state is as it was)."""
        with self._locked():
            staging = self.path / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
            staging.mkdir()
            try:
                yield staging
            finally:
                _remove_staging(staging, self.files)

    def place(self, staging: Path, files: list[str], about: dict) -> None:
        """Make the files ``files`` of ``staging`` the folder's state, all together: the manifest (``about`` and
        the file names) is written into the staging folder last, then everything moves into place."""
        with self._locked():
            write_text_atomically(staging / MANIFEST, json.dumps({**about, "files": list(files)}, indent=2) + "\n")
            self._move_into_place(staging)

    def _move_into_place(self, staging: Path) -> None:
        """Move a complete staged state into the folder, the manifest last; remove the old state's other files.

        Only plain files of a run's names move or go: a manifest that names anything else, or a staged name that
        is a link or a folder, changes nothing outside the run's own files.
        """
        new = _read_manifest(staging / MANIFEST, self.files)
        old_files = set(self.manifest().get("files", []))
        for name in new.get("files", []):
            if _is_plain_file(staging / name):  # not yet moved (a commit that a kill stopped half-way moved some)
                os.replace(staging / name, self.path / name)
        for name in old_files - set(new.get("files", [])):
            _remove_plain_file(self.path / name)
        os.replace(staging / MANIFEST, self.path / MANIFEST)
        _remove_staging(staging, self.files)


def checkpoint_in(run_dir, hint: str = "") -> Path:
    """The checkpoint a command reads: ``run_dir`` itself when it names a file, else the run folder's
    :data:`CHECKPOINT`; a FileNotFoundError (one line, with ``hint``) when there is none."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}{hint}")
    return path


def _read_manifest(path: Path, allowed: tuple[str, ...]) -> dict:
    """A manifest, with only the file names it may name: those of ``allowed``. A manifest is a file on disk
    that anyone can edit, and a name such as ``../notes.txt`` or ``notes.txt`` must never make a commit move or
    delete a file that is not the run's. Empty if there is no manifest or it cannot be read (or is not a plain
    file)."""
    if not _is_plain_file(path):
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    files = manifest.get("files")
    manifest["files"] = [name for name in files if isinstance(name, str) and name in allowed] \
        if isinstance(files, list) else []
    return manifest


def _lock_holder(descriptor: int) -> int | None:
    """The pid of the process that holds the lock, as it wrote it (it writes just after taking the lock, so a
    moment's wait lets two runs started together name each other), or None."""
    deadline = time.monotonic() + _PID_WAIT_SECONDS
    while True:
        with contextlib.suppress(OSError, ValueError):
            text = os.pread(descriptor, 32, 0).decode("ascii").strip()
            if text.isdigit() and len(text) <= 10 and int(text) > 0:
                return int(text)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _same_file(descriptor: int, path: Path) -> bool:
    """Whether the open file ``descriptor`` is the file at ``path`` now."""
    with contextlib.suppress(OSError):
        here, there = os.fstat(descriptor), os.lstat(path)
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
    return False


def _is_real_folder(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISDIR(os.lstat(path).st_mode)
    return False


def _is_plain_file(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISREG(os.lstat(path).st_mode)
    return False


def _remove_plain_file(path: Path) -> None:
    if _is_plain_file(path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_staging(staging: Path, files: tuple[str, ...]) -> None:
    """Delete a staging folder this program made: its run files, manifest and temporary files, then the folder if
    that emptied it. Anything else in it is not this program's and is left, with the folder."""
    if not _is_real_folder(staging):
        return
    for entry in staging.iterdir():
        if entry.name in (*files, MANIFEST) or any(is_temporary_of(entry.name, name) for name in (*files, MANIFEST)):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                if not _is_real_folder(entry):
                    entry.unlink()  # a link itself, never what it points to
    with contextlib.suppress(OSError):
        staging.rmdir()

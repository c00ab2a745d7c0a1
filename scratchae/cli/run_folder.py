"""A run folder: the checkpoint, history and figures of one training run, always of one and the same state.

Files are never written into the folder one by one. :meth:`RunFolder.commit` writes the new state into a hidden
staging folder inside it, writes a manifest (``run.json``: the files, the epochs, what was trained) last, and only
then moves the files into place, the manifest at the end. A kill at any moment leaves either a staging folder
without a manifest (the old state is untouched; the staging folder is deleted on the next start) or one with a
manifest (the new state is complete; the next start finishes moving it into place). Files of the old state that
the new one does not have are removed, so the folder never shows a new checkpoint beside old figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from scratchae.files import remove_stale_temporaries, write_text_atomically

MANIFEST = "run.json"
CHECKPOINT = "model.npz"
STAGING_PREFIX = ".staging-"


class RunFolderError(OSError):
    """The folder cannot hold a run (it is a file, cannot be created, or cannot be written)."""


class RunFolder:
    """The folder ``path`` of one run."""

    def __init__(self, path):
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def prepare(self) -> None:
        """Make sure the folder exists and can be written, and finish or clear what a killed run left in it.

        Called before any data is loaded or any training starts, so that a run is never lost for want of a place
        to save it.

        Raises
        ------
        RunFolderError
            If ``path`` is a file, or the folder cannot be created or written.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"--out {self.path} is a file, not a folder; give a folder for the run")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):  # the only sure test of writing is to write
                pass
        except OSError as error:
            raise RunFolderError(f"--out {self.path} cannot be used for the run: {error.strerror or error}") from None
        self.recover()

    def recover(self) -> None:
        """Finish moving a complete staged state into place, and delete incomplete ones and stale temporary files."""
        for staging in sorted(self.path.glob(f"{STAGING_PREFIX}*")):
            if (staging / MANIFEST).is_file():
                self._move_into_place(staging)
            else:
                shutil.rmtree(staging, ignore_errors=True)
        remove_stale_temporaries(self.path)

    def holds_run(self) -> bool:
        return self.checkpoint.is_file()

    def manifest(self) -> dict:
        """What ``run.json`` says of the run in the folder (empty if it has none or it cannot be read)."""
        return _read_manifest(self.path / MANIFEST)

    def commit(self, writers: dict, about: dict) -> list[str]:
        """Replace the folder's run with the files that ``writers`` write, all together.

        Parameters
        ----------
        writers : dict[str, callable]
            File name -> ``write(path)``, which writes that file at ``path``.
        about : dict
            What the manifest says of the run besides its files (epochs, model, data set ...).

        Returns
        -------
        list of str
            The names of the files written.
        """
        staging = self.path / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            for name, write in writers.items():
                write(staging / name)
            write_text_atomically(staging / MANIFEST, json.dumps({**about, "files": list(writers)}, indent=2) + "\n")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._move_into_place(staging)
        return list(writers)

    def _move_into_place(self, staging: Path) -> None:
        """Move a complete staged state into the folder, the manifest last; remove the old state's other files."""
        new = _read_manifest(staging / MANIFEST)
        old_files = set(self.manifest().get("files", []))
        for name in new.get("files", []):
            if (staging / name).exists():  # not yet moved (a commit that a kill stopped half-way has moved some)
                os.replace(staging / name, self.path / name)
        for name in old_files - set(new.get("files", [])):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        os.replace(staging / MANIFEST, self.path / MANIFEST)
        shutil.rmtree(staging, ignore_errors=True)


def _read_manifest(path: Path) -> dict:
    """A manifest, with only the file names it may name: plain names inside the run folder. A manifest is a file on
    disk that anyone can edit, and a name such as ``../notes.txt`` must never make a commit move or delete a file
    outside the folder. Empty if there is no manifest or it cannot be read."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    files = manifest.get("files")
    manifest["files"] = [name for name in files if _plain_name(name)] if isinstance(files, list) else []
    return manifest


def _plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..", MANIFEST) and Path(name).name == name and \
        "\\" not in name

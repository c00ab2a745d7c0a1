"""What a person sees while training runs: a progress bar per epoch (tqdm) for ``fit`` and the command."""

from __future__ import annotations


def epoch_bar(n_batches: int, epoch: int, progress, done: int = 0):
    """A bar over the batches of epoch ``epoch`` (counted from 0), starting at ``done``. ``progress``: True shows it
    on a terminal only, "always" everywhere, False nowhere."""
    from tqdm.auto import tqdm  # imported here: importing the lesson (train_step) never loads a progress bar

    disable = {True: None, "always": False, False: True}[progress]  # None: tqdm shows it only on a terminal
    return tqdm(total=n_batches, initial=done, desc=f"epoch {epoch + 1}", leave=False, disable=disable, unit="batch")

"""``scratchae train`` and ``scratchae evaluate``: a run folder with a checkpoint, its history and its figures.

``train`` checks and locks ``--out`` before anything else (one process writes a run folder at a time), refuses to
replace a run it holds unless told (``--resume`` continues it exactly, ``--overwrite`` starts again), saves the run
after its first epoch, now and then while it trains and whenever it stops (at the end, on Ctrl-C, SIGTERM or SIGHUP,
or with the last finite state when the loss or the weights stop being numbers), and writes every state of the
folder at once (:mod:`scratchae.cli.run_folder`). A disk too full to take a state is named, with the state the
folder keeps and how to go on.
"""

from __future__ import annotations

import errno
import json
import math
import shlex
import signal
import sys
import time
from pathlib import Path

from scratchae import checkpoint, data
from scratchae.backend import DEVICES, resolve_device, to_device, to_numpy
from scratchae.validate import fits, require_float, require_int
from scratchae.cli.arguments import (add_run_options, add_threads_option, count, non_negative_float, path_name,
                                     positive_float)
from scratchae.cli import own_files
from scratchae.cli.run_folder import CHECKPOINT, MANIFEST as RUN_MANIFEST, RunFolder, checkpoint_in
from scratchae.atomic_files import write_text_atomically
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.models import Classifier, DenoisingAutoencoder, VariationalAutoencoder
from scratchae.sparse import SparseAutoencoder, SparseLoss
from scratchae.builders import BUILDERS, IMAGE_BUILDERS
from scratchae.engine.adam import FastAdam
from scratchae.training import History, StopRequest, TrainingDiverged, evaluate, fit
from scratchae.training_run import threads_for

LOSSES = {"mse": MSELoss, "bce": BCELoss}

#: The options that define what a run trains: ``--resume`` takes them from the checkpoint, and a different value
#: given with it is refused. Their defaults are filled in here rather than by argparse, so that "not given" shows.
RUN_DEFAULTS = {"model": "simple", "data": "mnist-5k", "data_dir": None, "train_size": None, "test_size": None,
                "seed": 0, "batch_size": 256, "latent_dim": None, "lr": 1e-3, "weight_decay": 0.0, "loss": None,
                "noise_factor": 0.5, "beta": 1.0, "kl_warmup": 0, "l1": 1e-4, "normal_class": None}

#: Settings that runs recorded before they existed, with the value those runs had.
ADDED_SETTINGS = {"l1": 1e-4, "normal_class": None}

#: Options that may change when a run resumes.
CHANGEABLE_ON_RESUME = ("data_dir", "lr")

#: At most this long between two saves of a running training (at the end of an epoch).
SAVE_EVERY_SECONDS = 30.0


class RunError(Exception):
    """Something the user asked of a run that cannot be done; the message says what to do instead."""


class RunInterrupted(Exception):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the training; its state is saved. ``status`` is the exit status
    that says which: 128 + the signal's number (130, 143, 129)."""

    def __init__(self, message: str, status: int = 128 + signal.SIGINT):
        super().__init__(message)
        self.status = status


def add_train_command(commands) -> None:
    train = commands.add_parser("train", help="train a model and save it with its figures")
    train.add_argument("--model", choices=sorted(BUILDERS), default=None, help="the network (default: simple)")
    add_run_options(train, epochs=20, min_epochs=0,
                    epochs_help="epochs to train; with --resume, the epochs of the run in total (default: 20)",
                    out=None, out_help="the run's folder (default: runs/MODEL-DATA)")
    _add_data_arguments(train)
    train.set_defaults(data=None, seed=None)  # not given: the run's own (see RUN_DEFAULTS)
    train.add_argument("--batch-size", type=count(1), default=None, help="default: 256")
    train.add_argument("--latent-dim", type=count(1), default=None,
                       help="size of the latent code (default: 32; 16 for linear-latent and classifier; 20 for vae; 2 "
                            "for conv-vae; conv and conv-denoising have codes of images, set by their layers)")
    train.add_argument("--lr", type=positive_float, default=None, help="Adam's learning rate (default: 1e-3)")
    train.add_argument("--weight-decay", type=non_negative_float, default=None, help="default: 0")
    train.add_argument("--loss", choices=sorted(LOSSES), default=None,
                       help="reconstruction loss of autoencoders (default: mse; bce for vae, sparse and the conv "
                            "models, as their sources train them)")
    train.add_argument("--noise-factor", type=non_negative_float, default=None,
                       help="for --model denoising and conv-denoising (default: 0.5)")
    train.add_argument("--beta", type=non_negative_float, default=None,
                       help="for --model vae and conv-vae: the weight of the KL term (default: 1)")
    train.add_argument("--kl-warmup", type=count(0), default=None,
                       help="for --model vae and conv-vae: epochs over which the KL term's weight rises from 0 "
                            "(default: 0)")
    train.add_argument("--l1", type=non_negative_float, default=None,
                       help="for --model sparse: the weight of the L1 penalty on the code (default: 1e-4)")
    train.add_argument("--normal-class", type=count(0), default=None, metavar="K",
                       help="train on the images of class K only (the test set stays whole), for anomaly detection "
                            "with 'scratchae anomaly'")
    again = train.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out to --epochs epochs in total")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out with a new one (and files of a run's names there that "
                            "scratchae did not write)")
    train.add_argument("--save-every", type=non_negative_float, default=SAVE_EVERY_SECONDS, metavar="SECONDS",
                       help="save the run at the end of an epoch at most this often, besides after its first "
                            f"epoch and when it stops (default: {SAVE_EVERY_SECONDS:g})")
    train.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    train.set_defaults(run=run_train)


def add_evaluate_command(commands) -> None:
    evaluate_ = commands.add_parser("evaluate", help="test loss (and accuracy) of a saved model")
    evaluate_.add_argument("checkpoint", type=path_name, help="a run folder or its model.npz")
    evaluate_.add_argument("--data", choices=data.DATASETS, default=None,
                           help="the data set (default: the one the model was trained on)")
    _add_data_arguments(evaluate_)
    evaluate_.add_argument("--seed", type=count(0), default=None, help="default: the run's")
    evaluate_.add_argument("--device", choices=DEVICES, default="auto")
    evaluate_.add_argument("--out", type=path_name, default=None,
                           help="folder for the figure (default: the checkpoint's folder)")
    evaluate_.add_argument("--overwrite", action="store_true",
                           help="replace a figure of the same name that scratchae did not write")
    add_threads_option(evaluate_)
    evaluate_.set_defaults(run=run_evaluate)


def _add_data_arguments(parser) -> None:
    parser.add_argument("--data-dir", default=None, help="where the data files are (or go)")
    parser.add_argument("--train-size", type=count(1), default=None, help="train on a stratified subset")
    parser.add_argument("--test-size", type=count(1), default=None, help="test on a stratified subset")


# ---------------------------------------------------------------------------------------------------------------
# train


def run_train(arguments) -> int:
    given = {name: getattr(arguments, name) for name in RUN_DEFAULTS if getattr(arguments, name) is not None}
    name = f"{given.get('model', 'simple')}-{given.get('data', 'mnist-5k')}"
    device = resolve_device(arguments.device)  # before the folder: a device that cannot be used leaves nothing
    folder = RunFolder(arguments.out or f"runs/{name}")
    with folder.writing():  # locked until the command ends: a second train into it is refused, changing nothing
        if folder.holds_run() and not (arguments.resume or arguments.overwrite):
            raise RunError(f"{folder.path} holds a run ({_describe(folder)}); continue it with --resume (to --epochs "
                           f"epochs in total) or start again with --overwrite")
        _refuse_foreign_files(folder, arguments)
        if arguments.resume and folder.holds_run():
            run = _resumed_run(folder, given, device)
        else:
            if arguments.resume:
                print(f"note: {folder.path} holds no run to resume; starting one")
            run = _new_run({**RUN_DEFAULTS, **given}, device)
        return _train(run, folder, arguments)


def _refuse_foreign_files(folder: RunFolder, arguments) -> None:
    """Files of a run's names in the folder that its run did not write (a learner's own ``loss.png``) are replaced
    only with --overwrite; the checkpoint that --resume continues is the run's, whatever its manifest says."""
    foreign = [name for name in folder.foreign_files() if not (arguments.resume and name == CHECKPOINT)]
    if foreign and not arguments.overwrite:
        files, them = ", ".join(foreign), "it" if len(foreign) == 1 else "them"
        why = (f"its {RUN_MANIFEST} cannot be read: damaged, or not scratchae's" if folder.manifest_unreadable()
               else f"its {RUN_MANIFEST} does not list {them}")
        raise RunError(f"{folder.path} holds {files}, which scratchae train did not write ({why}); nothing was "
                       f"changed: move {them} away, give another --out, or --overwrite to replace {them}")


class _Run:
    """What one training run needs: its settings, data, model, loss, optimizer and history (which ``fit`` fills in
    place, so that a save at any moment sees where the run is)."""

    def __init__(self, settings: dict, dataset, model, optimizer, history=None):
        self.settings, self.dataset, self.model, self.optimizer = settings, dataset, model, optimizer
        self.history = history if history is not None else History()
        self.loss = _loss(model, settings)
        self.resumed = False  # continues a run that the folder holds


def _new_run(settings: dict, device: str) -> _Run:
    _refuse_options_the_model_ignores(settings)
    dataset = _load_data(settings)
    model = _build_model(settings, dataset).to(device)
    optimizer = FastAdam(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    return _Run(settings, dataset, model, optimizer)


def _resumed_run(folder: RunFolder, given: dict, device: str) -> _Run:
    saved = checkpoint.load(folder.checkpoint, device=device, fast=True)
    settings = _recorded_settings(saved.meta)
    if settings is None or saved.optimizer is None:
        raise RunError(f"{folder.checkpoint} was not saved by scratchae train, so it cannot be resumed; start again "
                       f"with --overwrite")
    for option, value in given.items():
        if option not in CHANGEABLE_ON_RESUME and value != settings[option]:
            flag = "--" + option.replace("_", "-")
            trained = f"without {flag} (its default)" if settings[option] is None else f"with {flag} {settings[option]}"
            raise RunError(f"--resume continues the run as it was trained, {trained}, not {flag} {value}; start "
                           f"again with --overwrite to change it")
    if "lr" in given and given["lr"] != settings["lr"]:
        print(f"note: the learning rate changes from {settings['lr']:g} to {given['lr']:g}; from here on the run no "
              f"longer repeats one that was never stopped")
        saved.optimizer.lr = given["lr"]
    recorded_device = saved.meta.get("extra", {}).get("device")
    if recorded_device in ("cpu", "gpu") and recorded_device != saved.model.device:
        print(f"note: the run trained on the {recorded_device.upper()} and resumes on the "
              f"{saved.model.device.upper()}, "
              f"where random numbers come from another generator; from here on it no longer repeats a run that was "
              f"never stopped")
    recorded = saved.meta.get("extra", {})
    _say_if_threads_change(recorded.get("threads", recorded.get("blas_threads")), threads_for(saved.model),
                           saved.model.device)
    _say_if_versions_change(saved.meta.get("software"))
    settings = {**settings, **{option: given[option] for option in CHANGEABLE_ON_RESUME if option in given}}
    settings["data_dir"] = given.get("data_dir")  # a folder a file names is used only when the user names it again
    dataset = _load_data(settings)
    _check_unfinished_epoch(saved.history, settings["batch_size"], len(dataset.x_train), folder.checkpoint)
    run = _Run(settings, dataset, saved.model, saved.optimizer, saved.history)
    run.resumed = True
    return run


def _check_unfinished_epoch(history, batch_size: int, n_samples: int, path) -> None:
    """An interrupted epoch that the checkpoint records must be one of this data: at most the batches an epoch has
    (all of them when the stop came during the validation), each of them full but an epoch's last."""
    if history.unfinished is None:
        return
    batches, samples = history.unfinished["batches"], history.unfinished["samples"]
    n_batches = math.ceil(n_samples / batch_size)
    if batches > n_batches or samples != min(batches * batch_size, n_samples):
        raise RunError(f"{path} records an interrupted epoch of {batches:,} batches and {samples:,} samples, which "
                       f"is not part of an epoch of {n_batches:,} batches of {batch_size}; start again with "
                       f"--overwrite")


def _say_if_threads_change(recorded, now: int, device: str) -> None:
    """On the CPU, a run resumed with another training thread count than it trained with sums its gradients in
    another order: say that its bits may differ from here on (as for a change of device)."""
    if device != "cpu" or not fits(require_int, recorded, minimum=1) or recorded == now:
        return
    print(f"note: the run trained with {_plural(recorded, 'thread')} and resumes with {now}, which add up the "
          f"gradients in another order; from here on its last bits may differ from a run that was never "
          f"stopped (resume with --threads {recorded} to repeat it exactly)")


def _say_if_versions_change(recorded) -> None:
    """A run resumed under another scratchae or NumPy than it trained with may compute its last bits otherwise:
    say so, naming both (as for a change of thread count). A checkpoint that records no versions says nothing."""
    if not isinstance(recorded, dict):
        return
    now = checkpoint.software_versions()
    changed = [f"{name} {_shown(recorded[name])} to {now[name]}" for name in now
               if isinstance(recorded.get(name), str) and recorded[name] != now[name]]
    if changed:
        print(f"note: the run trained under other versions and resumes under these ({'; '.join(changed)}); from "
              f"here on its last bits may differ from a run that was never stopped")


def _train(run: _Run, folder: RunFolder, arguments) -> int:
    model, dataset, settings, history = run.model, run.dataset, run.settings, run.history
    done, unfinished = len(history), history.unfinished is not None
    epochs = arguments.epochs - done if arguments.resume else arguments.epochs
    if arguments.resume and epochs <= 0 and not unfinished:
        print(f"{folder.path}: the run has {_plural(done, 'epoch')} already, as many as --epochs {arguments.epochs}; "
              f"nothing to do (give a larger --epochs to train on)")
        return 0
    epochs = max(epochs, 1 if unfinished else 0)  # an interrupted epoch is finished in any case
    print(f"{settings['model']} on {dataset.name}: {len(dataset.x_train):,} training and {len(dataset.x_test):,} test "
          f"samples, {model.device}" + (f"; resuming after {_plural(done, 'epoch')}" if done or unfinished else ""))
    print(model.summary())
    saver = _Saver(run, folder, arguments.save_every, arguments.epochs, resumed=run.resumed)
    stop = StopRequest()
    started = time.perf_counter()
    with stop.on_signals():  # from here on Ctrl-C, SIGTERM and SIGHUP ask the training to stop after a batch, and a
        trained = _fit_and_save(run, saver, arguments, epochs, done, folder, stop)  # save to finish first
    seconds = time.perf_counter() - started
    if not trained:
        raise _interrupted(stop, "before the training started; nothing was saved")
    if history.interrupted:
        where = _where_stopped(history, settings["batch_size"], len(dataset.x_train))
        raise _interrupted(stop, f"{where}; the state is saved in {folder.path}: continue with {saver.resume_command}")
    if stop.requested:  # asked while the last state was being saved, which is done all the same
        raise _interrupted(stop, f"after the last epoch; the run is saved in {folder.path} "
                                 f"({_plural(len(history), 'epoch')}): continue with {saver.resume_command}")
    print(f"trained {_plural(len(history) - done, 'epoch')} in {seconds:.1f} s; {folder.path} holds "
          f"{_plural(len(history), 'epoch')}: {', '.join(saver.saved)}")
    return 0


def _interrupted(stop: StopRequest, what: str) -> RunInterrupted:
    """"interrupted [by SIGTERM] <what>", with the exit status of the signal that asked (Ctrl-C's is not named)."""
    signum = stop.signal or signal.SIGINT
    named = "" if signum == signal.SIGINT else f" by {signum.name}"
    return RunInterrupted(f"interrupted{named} {what}", status=128 + int(signum))


def _fit_and_save(run: _Run, saver, arguments, epochs: int, done: int, folder: RunFolder, stop) -> bool:
    """Train, then save the final state; on divergence, save the last finite state if it holds new epochs.

    Returns False, having saved nothing, when a stop was asked for before the first batch.
    """
    model, dataset, settings, history = run.model, run.dataset, run.settings, run.history
    before = (len(history), json.dumps(history.unfinished))
    try:
        fit(model, run.loss, run.optimizer, dataset.x_train, _targets(model, dataset), epochs=epochs,
            batch_size=settings["batch_size"], validation=_test_pair(model, dataset), seed=settings["seed"],
            progress="always" if arguments.progress else True, history=history, on_epoch_end=saver.after_epoch,
            stop=stop)
    except TrainingDiverged as error:  # fit has put the model back at its last finite state
        if len(history) > done:
            saver.save_last()
            raise TrainingDiverged(f"{error}; that state is saved in {folder.path}") from None
        raise TrainingDiverged(f"{error}; nothing new was saved") from None
    if history.interrupted and (len(history), json.dumps(history.unfinished)) == before:
        return False
    saver.save_last()
    return True


class _Saver:
    """Saves the run after its first epoch, then now and then at the end of an epoch, and whenever the training
    stops. A disk too full to take a state is said at once (the training goes on, and the save is tried again after
    each epoch); if it is still full when the training stops, the error names the state the folder keeps."""

    def __init__(self, run: _Run, folder: RunFolder, every: float, epochs: int, *, resumed: bool):
        self.run, self.folder, self.every = run, folder, every
        self.last_save = time.monotonic()
        self.saved: list[str] = []  # the files of the last save
        self.saved_once = False
        self.disk_full = False  # the last save found no room
        #: Where the state of this run that the folder holds stands ("after epoch 3"), None while it holds none.
        self.kept = self._where() if resumed else None
        self.resume_command = f"scratchae train --out {shlex.quote(str(folder.path))} --resume --epochs {epochs}"

    def after_epoch(self, epoch: int, logs: dict) -> None:
        _say(f"epoch {epoch:3d}  " + "  ".join(f"{name} {value:.4f}" for name, value in logs.items()))
        if not self.saved_once or self.disk_full or time.monotonic() - self.last_save >= self.every:
            try:
                self.save(final=False)
            except OSError as error:
                if not _is_disk_full(error):
                    raise
                if not self.disk_full:  # said once; the save is tried again silently
                    _say(f"warning: {self._problem(error)}; "
                         f"{'it keeps the state ' + self.kept if self.kept else 'it keeps no state of this run'}; "
                         f"the training goes on, and the save is tried again after each epoch: free some space",
                         file=sys.stderr)
                self.disk_full = True

    def save_last(self) -> None:
        """The save when the training stops (figures included); a full disk is a RunError that says what is kept."""
        try:
            self.save(final=True)
        except OSError as error:
            if not _is_disk_full(error):
                raise
            raise RunError(self._disk_full_message(error)) from None

    def _where(self) -> str:
        history = self.run.history
        if not len(history) and history.unfinished is None:
            return "before any epoch"
        return _where_stopped(history, self.run.settings["batch_size"], len(self.run.dataset.x_train))

    def _problem(self, error: OSError) -> str:
        return (f"{DISK_FULL[error.errno]}: {self.folder.path} could not take the state {self._where()} "
                f"({error.strerror or error})")

    def _disk_full_message(self, error: OSError) -> str:
        """Which folder, which state could not be saved, which one it keeps, and how to go on."""
        if self.kept is not None:
            return (f"{self._problem(error)}; it keeps the state {self.kept}: free some space, then continue with "
                    f"{self.resume_command}")
        epochs = len(self.run.history)
        lost = f"the {_plural(epochs, 'epoch')} trained {'is' if epochs == 1 else 'are'} lost"
        held = f" (it still holds the run it held before: {_describe(self.folder)})" if self.folder.holds_run() else ""
        return (f"{self._problem(error)}, and it keeps no state of this run{held}: {lost}; free some space or give "
                f"another --out, then start again")

    def save(self, *, final: bool) -> list[str]:
        """Commit the run's state: the checkpoint and history, and when the training stops the figures too."""
        run, history, settings = self.run, self.run.history, self.run.settings
        extra = {"settings": settings, "loss": _loss_name(run.model, settings), "data": run.dataset.name,
                 "image_shape": list(run.dataset.image_shape), "device": str(run.model.device),
                 "threads": threads_for(run.model)}
        writers = {CHECKPOINT: lambda path: checkpoint.save(path, run.model, run.optimizer, history, extra=extra),
                   "history.json": lambda path: write_text_atomically(path, json.dumps(history.to_dict(), indent=2)),
                   "history.csv": lambda path: write_text_atomically(path, history.to_csv())}
        if final:
            writers.update(_figures(run, history))
        about = {"model": settings["model"], "data": run.dataset.name, "epochs": len(history),
                 "unfinished": history.unfinished is not None, "threads": extra["threads"]}
        self.saved = self.folder.commit(writers, about)
        self.last_save, self.saved_once, self.disk_full, self.kept = time.monotonic(), True, False, self._where()
        return self.saved


#: The errors that say a file found no room, in words: a full disk, a full quota, a file larger than the process
#: may write (``ulimit -f``).
DISK_FULL = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is full",
             errno.EFBIG: "the file size limit is reached"}


def _is_disk_full(error: OSError) -> bool:
    return error.errno in DISK_FULL


def _say(*line, file=None) -> None:
    """Print a line of progress; a terminal that is gone (closed, with SIGHUP) does not stop the run or its save."""
    try:
        print(*line, file=file or sys.stdout, flush=True)
    except (OSError, ValueError):
        pass


def _figures(run: _Run, history) -> dict:
    from scratchae import plots  # matplotlib only when figures are made

    figures = {}
    if len(history):
        figures["loss.png"] = lambda path: plots.save_figure(history.plot(), path)
    if not isinstance(run.model, Classifier):
        figures["reconstructions.png"] = lambda path: _save_reconstructions(run.model, run.dataset, path)
    if isinstance(run.model, VariationalAutoencoder):
        figures["samples.png"] = lambda path: _save_samples(run.model, run.dataset, path)
    return figures


def _save_reconstructions(model, dataset, path) -> None:
    from scratchae import plots

    originals = dataset.x_test[:10].astype(model.dtype, copy=False)
    reconstructed = to_numpy(model.reconstruct(to_device(originals, model.device)))
    plots.save_figure(plots.reconstructions(originals, reconstructed, dataset.image_shape), path)


def _save_samples(model, dataset, path) -> None:
    from scratchae import plots

    images = to_numpy(model.sample(10, seed=0))
    plots.save_figure(plots.image_row(images, dataset.image_shape, title="Decoded from z ~ N(0, I)"), path)


# ---------------------------------------------------------------------------------------------------------------
# Settings, data, models and losses


def _refuse_options_the_model_ignores(settings: dict) -> None:
    model = settings["model"]
    denoisers, vaes = ("denoising", "conv-denoising"), ("vae", "conv-vae")
    ignored = {"loss": model == "classifier", "noise_factor": model not in denoisers,
               "beta": model not in vaes, "kl_warmup": model not in vaes, "l1": model != "sparse",
               "normal_class": model == "classifier",
               "latent_dim": model in ("conv", "conv-denoising")}
    reasons = {"loss": "the classifier is trained with softmax cross-entropy",
               "noise_factor": f"it is for --model {' and '.join(denoisers)}",
               "beta": f"it is for --model {' and '.join(vaes)}",
               "kl_warmup": f"it is for --model {' and '.join(vaes)}",
               "l1": "it is for --model sparse",
               "normal_class": "a classifier learns to tell every class apart, so it trains on all of them",
               "latent_dim": "its code is an image whose shape its layers set ((8, 4, 4) for conv, (32, 7, 7) for "
                             "conv-denoising on 28 x 28 images)"}
    for option, is_ignored in ignored.items():
        if is_ignored and settings[option] not in (None, RUN_DEFAULTS[option]):
            flag = "--" + option.replace("_", "-")
            raise RunError(f"{flag} does not apply to --model {model}: {reasons[option]}")


def _load_data(settings: dict) -> data.Dataset:
    """The run's data set; with a normal class, its training images of that class only (the test set whole)."""
    dataset = data.load(settings["data"], data_dir=settings["data_dir"], train_size=settings["train_size"],
                        test_size=settings["test_size"], seed=settings["seed"])
    if settings.get("normal_class") is None:
        return dataset
    from dataclasses import replace

    from scratchae.anomaly import AnomalyError, check_normal_class

    try:
        k = check_normal_class(settings["normal_class"], dataset.n_classes, dataset.name)
        keep = dataset.y_train == k
        if not keep.any():
            raise AnomalyError(f"the training set of {dataset.name} holds no image of class {k} (of "
                               f"{len(dataset.y_train):,} images); take a larger --train-size or another class")
    except AnomalyError as error:
        raise RunError(f"--normal-class {settings['normal_class']}: {error}") from None
    return replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep])


def _build_model(settings: dict, dataset):
    if settings["model"] in IMAGE_BUILDERS:  # one channel: every data set here holds grey images
        options = {"image_shape": (1, *dataset.image_shape), "seed": settings["seed"]}
    else:
        options = {"input_dim": dataset.n_features, "seed": settings["seed"]}
    if settings["latent_dim"] is not None:
        options["latent_dim"] = settings["latent_dim"]
    if settings["model"] in ("denoising", "conv-denoising"):
        options["noise_factor"] = settings["noise_factor"]
    if settings["model"] == "sparse":
        options["l1"] = settings["l1"]
    if settings["model"] == "classifier":
        options["n_classes"] = dataset.n_classes  # from the data set, not from the largest label in a subset
    try:
        return BUILDERS[settings["model"]](**options, fast=True)  # the engine's forms: the same numbers, faster
    except ValueError as error:  # images a convolutional network cannot give back
        raise RunError(f"--model {settings['model']} cannot train on {dataset.name}: {error}") from None


def _loss_name(model, settings: dict) -> str:
    if isinstance(model, Classifier):
        return "softmax-cross-entropy"
    # a VAE's reconstruction term is BCE, as pytorch/examples and keras-io; the conv and sparse models train with BCE
    # as the Keras blog trains them; the dense autoencoders with MSE, as the notebooks
    bce = isinstance(model, VariationalAutoencoder) or settings["model"] in (*IMAGE_BUILDERS, "sparse")
    return settings["loss"] or ("bce" if bce else "mse")


def _loss(model, settings: dict):
    name = _loss_name(model, settings)
    if isinstance(model, Classifier):
        return SoftmaxCrossEntropyLoss()
    if isinstance(model, VariationalAutoencoder):
        return VAELoss(name, beta=settings["beta"], warmup_epochs=settings["kl_warmup"])
    if isinstance(model, SparseAutoencoder):
        return SparseLoss(model.l1, name)  # the penalty's weight is the model's own (its checkpoint keeps it)
    return LOSSES[name]()


def _targets(model, dataset):
    return dataset.y_train if isinstance(model, Classifier) else None


def _test_pair(model, dataset):
    """Test inputs and targets: labels for a classifier; for a denoising model a fixed noisy copy of the test
    images against the clean ones, as in the notebook; otherwise the images themselves (targets None)."""
    import numpy

    if isinstance(model, Classifier):
        return dataset.x_test, dataset.y_test
    if isinstance(model, DenoisingAutoencoder):
        noisy = model.corrupt(dataset.x_test, numpy.random.default_rng(model.seed + 1))
        return noisy, dataset.x_test
    return dataset.x_test


#: What each recorded setting may be: a check that a checkpoint's settings (which a file could fake) are usable.
_SETTING_KINDS = {"model": lambda v: _one_of(v, BUILDERS), "data": lambda v: _one_of(v, data.DATASETS),
                  "data_dir": lambda v: v is None or isinstance(v, str),
                  "train_size": lambda v: v is None or _whole(v, 1), "test_size": lambda v: v is None or _whole(v, 1),
                  "seed": lambda v: _whole(v, 0), "batch_size": lambda v: _whole(v, 1),
                  "latent_dim": lambda v: v is None or _whole(v, 1), "lr": lambda v: _finite(v, above=0.0),
                  "weight_decay": lambda v: _finite(v, minimum=0.0), "loss": lambda v: v is None or _one_of(v, LOSSES),
                  "noise_factor": lambda v: _finite(v, minimum=0.0), "beta": lambda v: _finite(v, minimum=0.0),
                  "kl_warmup": lambda v: _whole(v, 0), "l1": lambda v: _finite(v, minimum=0.0),
                  "normal_class": lambda v: v is None or _whole(v, 0)}


def _recorded_settings(meta: dict) -> dict | None:
    """The settings ``scratchae train`` recorded in a checkpoint, or None if it recorded none that can be used."""
    extra = meta.get("extra")
    settings = extra.get("settings") if isinstance(extra, dict) else None
    if isinstance(settings, dict):
        settings = {**ADDED_SETTINGS, **settings}
    if not isinstance(settings, dict) or set(settings) != set(RUN_DEFAULTS):
        return None
    return settings if all(_SETTING_KINDS[name](value) for name, value in settings.items()) else None


def _shown(value) -> str:
    """A value read from a file, in a few words for a message: never more than 40 characters of it."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _one_of(value, names) -> bool:
    """Whether a value read from a file is one of ``names`` (a list there is not even a name to look up)."""
    return isinstance(value, str) and value in names


def _whole(value, minimum: int) -> bool:
    return fits(require_int, value, minimum=minimum)


def _finite(value, minimum: float | None = None, above: float | None = None) -> bool:
    return fits(require_float, value, minimum=minimum, above=above)


def _describe(folder: RunFolder) -> str:
    """What ``run.json`` says of the run in a folder, each field checked (the file is data anyone can edit): "simple
    on digits, 3 epochs", or "a checkpoint" when ``run.json`` is missing or says nothing usable."""
    manifest = folder.manifest()
    model, dataset, epochs = manifest.get("model"), manifest.get("data"), manifest.get("epochs")
    if not _one_of(model, BUILDERS) or not _one_of(dataset, data.DATASETS) or not _whole(epochs, 0) or \
            not isinstance(manifest.get("unfinished", False), bool):
        return "a checkpoint"
    partial = ", part of another" if manifest.get("unfinished") else ""
    return f"{model} on {dataset}, {_plural(epochs, 'epoch')}{partial}"


def _where_stopped(history, batch_size: int, n_samples: int) -> str:
    if history.unfinished is None:
        return f"after epoch {len(history)}"
    batches = math.ceil(n_samples / batch_size)
    return f"in epoch {len(history) + 1} after batch {history.unfinished['batches']} of {batches}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------------------------------------------------------
# evaluate


def run_evaluate(arguments) -> int:
    path = checkpoint_in(arguments.checkpoint)
    device = resolve_device(arguments.device)
    saved = checkpoint.load(path, device=device, fast=True)
    recorded = saved.meta.get("extra", {})
    settings = {**RUN_DEFAULTS, **(_recorded_settings(saved.meta) or {})}
    recorded_data = recorded.get("data") if _one_of(recorded.get("data"), data.DATASETS) else None
    settings["data"] = arguments.data or (settings["data"] if _recorded_settings(saved.meta) else recorded_data) \
        or "mnist-5k"
    for option in ("train_size", "test_size", "seed"):
        if getattr(arguments, option) is not None:
            settings[option] = getattr(arguments, option)
    settings["data_dir"] = arguments.data_dir  # a folder a file names is used only when the user names it again
    dataset = _load_data(settings)
    model = saved.model
    if dataset.n_features != model.input_features:
        raise data.DataError(f"the model takes {model.input_features} features but {dataset.name} has "
                             f"{dataset.n_features}; evaluate it on the data it was trained on")
    if recorded.get("loss") is not None and not _one_of(recorded.get("loss"), ("softmax-cross-entropy", *LOSSES)):
        raise RunError(f"{path} records an unknown loss {_shown(recorded.get('loss'))}")
    # a VAE is scored by its whole negative ELBO: the KL weight a warm-up gave its first epochs is over
    loss = _loss(model, {**settings, "loss": recorded.get("loss") if _one_of(recorded.get("loss"), LOSSES) else None,
                         "kl_warmup": 0})
    pair = _test_pair(model, dataset)
    x_test, y_test = pair if isinstance(pair, tuple) else (pair, None)
    x_test = x_test.astype(model.dtype, copy=False)  # a checkpoint may hold float64 weights (saved from Python)
    if y_test is not None and not isinstance(model, Classifier):
        y_test = y_test.astype(model.dtype, copy=False)
    results = evaluate(model, loss, x_test, y_test)
    print(f"{dataset.name} test set ({len(dataset.x_test):,} samples): "
          + "  ".join(f"{name} {value:.4f}" for name, value in results.items()))
    if not isinstance(model, Classifier):
        out = Path(arguments.out) if arguments.out else path.parent
        figure = out / f"reconstructions-{dataset.name}.png"
        own_files.check_replaceable(figure, overwrite=arguments.overwrite,
                                    how="give another --out, or --overwrite to replace it")
        _save_reconstructions(model, dataset, figure)
        own_files.record(figure, "scratchae evaluate")
        print(f"saved {figure}")
    return 0

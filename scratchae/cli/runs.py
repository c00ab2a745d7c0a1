"""``scratchae train`` and ``scratchae evaluate``: a run folder with a checkpoint, its history and its figures.

``train`` checks ``--out`` before anything else, refuses to replace a run it holds unless told (``--resume``
continues it exactly, ``--overwrite`` starts again), saves the run now and then while it trains and whenever it
stops (at the end, on Ctrl-C, or with the last finite state when the loss or the weights stop being numbers), and
writes every state of the folder at once (:mod:`scratchae.cli.run_folder`).
"""

from __future__ import annotations

import json
import math
import time

from scratchae import checkpoint, data
from scratchae.backend import DEVICES, resolve_device, to_device, to_numpy
from scratchae.checks import fits, require_float, require_int
from scratchae.cli.arguments import add_run_options, count, non_negative_float, positive_float
from scratchae.cli.run_folder import CHECKPOINT, RunFolder
from scratchae.files import write_text_atomically
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.models import BUILDERS, IMAGE_BUILDERS, Classifier, DenoisingAutoencoder, VariationalAutoencoder
from scratchae.optim import Adam
from scratchae.training import History, StopRequest, TrainingDiverged, evaluate, fit

LOSSES = {"mse": MSELoss, "bce": BCELoss}

#: The options that define what a run trains: ``--resume`` takes them from the checkpoint, and a different value
#: given with it is refused. Their defaults are filled in here rather than by argparse, so that "not given" shows.
RUN_DEFAULTS = {"model": "simple", "data": "mnist-5k", "data_dir": None, "train_size": None, "test_size": None,
                "seed": 0, "batch_size": 256, "latent_dim": None, "lr": 1e-3, "weight_decay": 0.0, "loss": None,
                "noise_factor": 0.5, "beta": 1.0, "kl_warmup": 0}

#: Options that may change when a run resumes.
CHANGEABLE_ON_RESUME = ("data_dir", "lr")

#: At most this long between two saves of a running training (at the end of an epoch).
SAVE_EVERY_SECONDS = 30.0


class RunError(Exception):
    """Something the user asked of a run that cannot be done; the message says what to do instead."""


class RunInterrupted(Exception):
    """Ctrl-C stopped the training; its state is saved."""


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
                       help="reconstruction loss of autoencoders (default: mse; bce for vae and the conv models, as "
                            "their sources train them)")
    train.add_argument("--noise-factor", type=non_negative_float, default=None,
                       help="for --model denoising and conv-denoising (default: 0.5)")
    train.add_argument("--beta", type=non_negative_float, default=None,
                       help="for --model vae and conv-vae: the weight of the KL term (default: 1)")
    train.add_argument("--kl-warmup", type=count(0), default=None,
                       help="for --model vae and conv-vae: epochs over which the KL term's weight rises from 0 "
                            "(default: 0)")
    again = train.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out to --epochs epochs in total")
    again.add_argument("--overwrite", action="store_true", help="replace the run in --out with a new one")
    train.add_argument("--save-every", type=non_negative_float, default=SAVE_EVERY_SECONDS, metavar="SECONDS",
                       help="save the run at the end of an epoch at most this often, besides when it stops "
                            f"(default: {SAVE_EVERY_SECONDS:g})")
    train.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    train.set_defaults(run=run_train)


def add_evaluate_command(commands) -> None:
    evaluate_ = commands.add_parser("evaluate", help="test loss (and accuracy) of a saved model")
    evaluate_.add_argument("checkpoint", help="a run folder or its model.npz")
    evaluate_.add_argument("--data", choices=data.DATASETS, default=None,
                           help="the data set (default: the one the model was trained on)")
    _add_data_arguments(evaluate_)
    evaluate_.add_argument("--seed", type=count(0), default=None, help="default: the run's")
    evaluate_.add_argument("--device", choices=DEVICES, default="auto")
    evaluate_.add_argument("--out", default=None, help="folder for the figure (default: the checkpoint's folder)")
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
    folder.prepare()
    if folder.holds_run() and not (arguments.resume or arguments.overwrite):
        raise RunError(f"{folder.path} holds a run ({_describe(folder)}); continue it with --resume (to --epochs "
                       f"epochs in total) or start again with --overwrite")
    if arguments.resume and folder.holds_run():
        run = _resumed_run(folder, given, device)
    else:
        if arguments.resume:
            print(f"note: {folder.path} holds no run to resume; starting one")
        run = _new_run({**RUN_DEFAULTS, **given}, device)
    return _train(run, folder, arguments)


class _Run:
    """What one training run needs: its settings, data, model, loss, optimizer and history (which ``fit`` fills in
    place, so that a save at any moment sees where the run is)."""

    def __init__(self, settings: dict, dataset, model, optimizer, history=None):
        self.settings, self.dataset, self.model, self.optimizer = settings, dataset, model, optimizer
        self.history = history if history is not None else History()
        self.loss = _loss(model, settings)


def _new_run(settings: dict, device: str) -> _Run:
    _refuse_options_the_model_ignores(settings)
    dataset = _load_data(settings)
    model = _build_model(settings, dataset).to(device)
    optimizer = Adam(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    return _Run(settings, dataset, model, optimizer)


def _resumed_run(folder: RunFolder, given: dict, device: str) -> _Run:
    saved = checkpoint.load(folder.checkpoint, device=device)
    settings = _recorded_settings(saved.meta)
    if settings is None or saved.optimizer is None:
        raise RunError(f"{folder.checkpoint} was not saved by scratchae train, so it cannot be resumed; start again "
                       f"with --overwrite")
    for option, value in given.items():
        if option not in CHANGEABLE_ON_RESUME and value != settings[option]:
            flag = "--" + option.replace("_", "-")
            raise RunError(f"--resume continues the run as it was trained, with {flag} {settings[option]}, not "
                           f"{value}; start again with --overwrite to change it")
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
    settings = {**settings, **{option: given[option] for option in CHANGEABLE_ON_RESUME if option in given}}
    return _Run(settings, _load_data(settings), saved.model, saved.optimizer, saved.history)


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
    saver = _Saver(run, folder, arguments.save_every)
    stop = StopRequest()
    started = time.perf_counter()
    with stop.on_ctrl_c():  # from here on Ctrl-C asks the training to stop after a batch, and a save to finish first
        trained = _fit_and_save(run, saver, arguments, epochs, done, folder, stop)
    seconds = time.perf_counter() - started
    if not trained:
        raise RunInterrupted("interrupted before the training started; nothing was saved")
    if history.interrupted:
        where = _where_stopped(history, settings["batch_size"], len(dataset.x_train))
        raise RunInterrupted(f"interrupted {where}; the state is saved in {folder.path}: continue with scratchae train "
                             f"--out {folder.path} --resume --epochs {arguments.epochs}")
    if stop.requested:  # pressed while the last state was being saved, which is done all the same
        raise RunInterrupted(f"interrupted; the run is saved in {folder.path} ({_plural(len(history), 'epoch')}): "
                             f"continue with scratchae train --out {folder.path} --resume --epochs {arguments.epochs}")
    print(f"trained {_plural(len(history) - done, 'epoch')} in {seconds:.1f} s; {folder.path} holds "
          f"{_plural(len(history), 'epoch')}: {', '.join(saver.saved)}")
    return 0


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
            saver.save(final=True)
            raise TrainingDiverged(f"{error}; that state is saved in {folder.path}") from None
        raise TrainingDiverged(f"{error}; nothing new was saved") from None
    if history.interrupted and (len(history), json.dumps(history.unfinished)) == before:
        return False
    saver.save(final=True)
    return True


class _Saver:
    """Saves the run now and then at the end of an epoch, and whenever the training stops."""

    def __init__(self, run: _Run, folder: RunFolder, every: float):
        self.run, self.folder, self.every = run, folder, every
        self.last_save = time.monotonic()
        self.saved: list[str] = []  # the files of the last save

    def after_epoch(self, epoch: int, logs: dict) -> None:
        print(f"epoch {epoch:3d}  " + "  ".join(f"{name} {value:.4f}" for name, value in logs.items()), flush=True)
        if time.monotonic() - self.last_save >= self.every:
            self.save(final=False)

    def save(self, *, final: bool) -> list[str]:
        """Commit the run's state: the checkpoint and history, and when the training stops the figures too."""
        run, history, settings = self.run, self.run.history, self.run.settings
        extra = {"settings": settings, "loss": _loss_name(run.model, settings), "data": run.dataset.name,
                 "image_shape": list(run.dataset.image_shape), "device": str(run.model.device)}
        writers = {CHECKPOINT: lambda path: checkpoint.save(path, run.model, run.optimizer, history, extra=extra),
                   "history.json": lambda path: write_text_atomically(path, json.dumps(history.to_dict(), indent=2)),
                   "history.csv": lambda path: write_text_atomically(path, history.to_csv())}
        if final:
            writers.update(_figures(run, history))
        about = {"model": settings["model"], "data": run.dataset.name, "epochs": len(history),
                 "unfinished": history.unfinished is not None}
        self.saved = self.folder.commit(writers, about)
        self.last_save = time.monotonic()
        return self.saved


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
               "beta": model not in vaes, "kl_warmup": model not in vaes,
               "latent_dim": model in ("conv", "conv-denoising")}
    reasons = {"loss": "the classifier is trained with softmax cross-entropy",
               "noise_factor": f"it is for --model {' and '.join(denoisers)}",
               "beta": f"it is for --model {' and '.join(vaes)}",
               "kl_warmup": f"it is for --model {' and '.join(vaes)}",
               "latent_dim": "its code is an image whose shape its layers set ((8, 4, 4) for conv, (32, 7, 7) for "
                             "conv-denoising on 28 x 28 images)"}
    for option, is_ignored in ignored.items():
        if is_ignored and settings[option] not in (None, RUN_DEFAULTS[option]):
            flag = "--" + option.replace("_", "-")
            raise RunError(f"{flag} does not apply to --model {model}: {reasons[option]}")


def _load_data(settings: dict) -> data.Dataset:
    return data.load(settings["data"], data_dir=settings["data_dir"], train_size=settings["train_size"],
                     test_size=settings["test_size"], seed=settings["seed"])


def _build_model(settings: dict, dataset):
    if settings["model"] in IMAGE_BUILDERS:  # one channel: every data set here holds grey images
        options = {"image_shape": (1, *dataset.image_shape), "seed": settings["seed"]}
    else:
        options = {"input_dim": dataset.n_features, "seed": settings["seed"]}
    if settings["latent_dim"] is not None:
        options["latent_dim"] = settings["latent_dim"]
    if settings["model"] in ("denoising", "conv-denoising"):
        options["noise_factor"] = settings["noise_factor"]
    if settings["model"] == "classifier":
        options["n_classes"] = dataset.n_classes  # from the data set, not from the largest label in a subset
    try:
        return BUILDERS[settings["model"]](**options)
    except ValueError as error:  # images a convolutional network cannot give back
        raise RunError(f"--model {settings['model']} cannot train on {dataset.name}: {error}") from None


def _loss_name(model, settings: dict) -> str:
    if isinstance(model, Classifier):
        return "softmax-cross-entropy"
    # a VAE's reconstruction term is BCE, as pytorch/examples and keras-io; the conv models train with BCE as the
    # Keras blog trains them; the dense autoencoders with MSE, as the notebooks
    bce = isinstance(model, VariationalAutoencoder) or settings["model"] in IMAGE_BUILDERS
    return settings["loss"] or ("bce" if bce else "mse")


def _loss(model, settings: dict):
    name = _loss_name(model, settings)
    if isinstance(model, Classifier):
        return SoftmaxCrossEntropyLoss()
    if isinstance(model, VariationalAutoencoder):
        return VAELoss(name, beta=settings["beta"], warmup_epochs=settings["kl_warmup"])
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
_SETTING_KINDS = {"model": lambda v: v in BUILDERS, "data": lambda v: v in data.DATASETS,
                  "data_dir": lambda v: v is None or isinstance(v, str),
                  "train_size": lambda v: v is None or _whole(v, 1), "test_size": lambda v: v is None or _whole(v, 1),
                  "seed": lambda v: _whole(v, 0), "batch_size": lambda v: _whole(v, 1),
                  "latent_dim": lambda v: v is None or _whole(v, 1), "lr": lambda v: _finite(v, above=0.0),
                  "weight_decay": lambda v: _finite(v, minimum=0.0), "loss": lambda v: v is None or v in LOSSES,
                  "noise_factor": lambda v: _finite(v, minimum=0.0), "beta": lambda v: _finite(v, minimum=0.0),
                  "kl_warmup": lambda v: _whole(v, 0)}


def _recorded_settings(meta: dict) -> dict | None:
    """The settings ``scratchae train`` recorded in a checkpoint, or None if it recorded none that can be used."""
    extra = meta.get("extra")
    settings = extra.get("settings") if isinstance(extra, dict) else None
    if not isinstance(settings, dict) or set(settings) != set(RUN_DEFAULTS):
        return None
    return settings if all(_SETTING_KINDS[name](value) for name, value in settings.items()) else None


def _whole(value, minimum: int) -> bool:
    return fits(require_int, value, minimum=minimum)


def _finite(value, minimum: float | None = None, above: float | None = None) -> bool:
    return fits(require_float, value, minimum=minimum, above=above)


def _describe(folder: RunFolder) -> str:
    manifest = folder.manifest()
    if not manifest:
        return "a checkpoint"
    partial = ", part of another" if manifest.get("unfinished") else ""
    epochs = _plural(manifest.get("epochs", 0), "epoch")
    return f"{manifest.get('model', '?')} on {manifest.get('data', '?')}, {epochs}{partial}"


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
    from pathlib import Path

    path = Path(arguments.checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    device = resolve_device(arguments.device)
    saved = checkpoint.load(path, device=device)
    recorded = saved.meta.get("extra", {})
    settings = {**RUN_DEFAULTS, **(_recorded_settings(saved.meta) or {})}
    recorded_data = recorded.get("data") if recorded.get("data") in data.DATASETS else None
    settings["data"] = arguments.data or (settings["data"] if _recorded_settings(saved.meta) else recorded_data) \
        or "mnist-5k"
    for option in ("data_dir", "train_size", "test_size", "seed"):
        if getattr(arguments, option) is not None:
            settings[option] = getattr(arguments, option)
    dataset = _load_data(settings)
    model = saved.model
    if dataset.n_features != model.input_features:
        raise data.DataError(f"the model takes {model.input_features} features but {dataset.name} has "
                             f"{dataset.n_features}; evaluate it on the data it was trained on")
    if recorded.get("loss") not in (None, "softmax-cross-entropy", *LOSSES):
        raise RunError(f"{path} records an unknown loss {recorded.get('loss')!r}")
    # a VAE is scored by its whole negative ELBO: the KL weight a warm-up gave its first epochs is over
    loss = _loss(model, {**settings, "loss": recorded.get("loss") if recorded.get("loss") in LOSSES else None,
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
        _save_reconstructions(model, dataset, figure)
        print(f"saved {figure}")
    return 0

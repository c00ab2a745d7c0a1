"""``scratchae train`` and ``scratchae evaluate``: a run folder with a checkpoint, its history and its figures."""

from __future__ import annotations

import json
import os
import time

import numpy

from scratchae import checkpoint, data
from scratchae.backend import resolve_device, to_device, to_numpy
from scratchae.cli.arguments import add_run_options, count, non_negative_float, positive_float
from scratchae.files import write_text_atomically
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from scratchae.models import BUILDERS, Classifier, DenoisingAutoencoder
from scratchae.optim import Adam
from scratchae.training import History, evaluate, fit

LOSSES = {"mse": MSELoss, "bce": BCELoss}


def add_train_command(commands) -> None:
    train = commands.add_parser("train", help="train a model and save it with its figures")
    train.add_argument("--model", choices=sorted(BUILDERS), default="simple")
    add_run_options(train, epochs=20, min_epochs=0, epochs_help="epochs to train (default: 20)",
                    out=None, out_help="output folder (default: runs/MODEL-DATA)")
    _add_data_arguments(train)
    train.add_argument("--batch-size", type=count(1), default=256)
    train.add_argument("--latent-dim", type=count(1), default=None,
                       help="size of the latent code (default: 32, or 16 for linear-latent and classifier)")
    train.add_argument("--lr", type=positive_float, default=1e-3)
    train.add_argument("--weight-decay", type=non_negative_float, default=0.0)
    train.add_argument("--loss", choices=sorted(LOSSES), default="mse", help="reconstruction loss of autoencoders")
    train.add_argument("--noise-factor", type=non_negative_float, default=0.5, help="for --model denoising")
    train.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    train.set_defaults(run=run_train)


def add_evaluate_command(commands) -> None:
    evaluate_ = commands.add_parser("evaluate", help="test loss (and accuracy) of a saved model")
    evaluate_.add_argument("checkpoint")
    evaluate_.add_argument("--data", choices=data.DATASETS, default="mnist-5k")
    _add_data_arguments(evaluate_)
    evaluate_.add_argument("--seed", type=int, default=0)
    evaluate_.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    evaluate_.add_argument("--out", default=None, help="folder for the figure (default: the checkpoint's folder)")
    evaluate_.set_defaults(run=run_evaluate)


def _add_data_arguments(parser) -> None:
    parser.add_argument("--data-dir", default=None, help="where the data files are (or go)")
    parser.add_argument("--train-size", type=count(1), default=None, help="train on a stratified subset")
    parser.add_argument("--test-size", type=count(1), default=None, help="test on a stratified subset")


def _load_data(arguments) -> data.Dataset:
    return data.load(arguments.data, data_dir=arguments.data_dir, train_size=arguments.train_size,
                     test_size=arguments.test_size, seed=arguments.seed)


def run_train(arguments) -> int:
    device = resolve_device(arguments.device)
    dataset = _load_data(arguments)
    model = _build_model(arguments, dataset).to(device)
    loss = SoftmaxCrossEntropyLoss() if isinstance(model, Classifier) else LOSSES[arguments.loss]()
    optimizer = Adam(model.parameters(), lr=arguments.lr, weight_decay=arguments.weight_decay)
    out = arguments.out or os.path.join("runs", f"{arguments.model}-{arguments.data}")
    print(f"{arguments.model} on {dataset.name}: {len(dataset.x_train)} training and {len(dataset.x_test)} test "
          f"samples, {device}")
    print(model.summary())
    targets = dataset.y_train if isinstance(model, Classifier) else None
    validation = _test_pair(model, dataset)
    started = time.perf_counter()
    history = fit(model, loss, optimizer, dataset.x_train, targets, epochs=arguments.epochs,
                  batch_size=arguments.batch_size, validation=validation, seed=arguments.seed,
                  progress="always" if arguments.progress else True, on_epoch_end=_print_epoch)
    print(f"trained {len(history)} epochs in {time.perf_counter() - started:.1f} s"
          + (" (interrupted)" if history.interrupted else ""))
    extra = {"loss": "softmax-cross-entropy" if isinstance(model, Classifier) else arguments.loss,
             "data": dataset.name, "image_shape": list(dataset.image_shape)}
    _save_run(out, model, optimizer, history, extra, dataset)
    return 0


def _build_model(arguments, dataset):
    options = {"input_dim": dataset.x_train.shape[1], "seed": arguments.seed}
    if arguments.latent_dim is not None:
        options["latent_dim"] = arguments.latent_dim
    if arguments.model == "denoising":
        options["noise_factor"] = arguments.noise_factor
    if arguments.model == "classifier":
        options["n_classes"] = int(dataset.y_train.max()) + 1
    return BUILDERS[arguments.model](**options)


def _test_pair(model, dataset):
    """Test inputs and targets: labels for a classifier; for a denoising model a fixed noisy copy of the test
    images against the clean ones, as in the notebook; otherwise the images themselves (targets None)."""
    if isinstance(model, Classifier):
        return dataset.x_test, dataset.y_test
    if isinstance(model, DenoisingAutoencoder):
        noisy = model.corrupt(dataset.x_test, numpy.random.default_rng(model.seed + 1))
        return noisy, dataset.x_test
    return dataset.x_test, None


def _print_epoch(epoch: int, logs: dict[str, float]) -> None:
    print(f"epoch {epoch:3d}  " + "  ".join(f"{name} {value:.4f}" for name, value in logs.items()), flush=True)


def _save_run(out: str, model, optimizer, history: History, extra: dict, dataset) -> None:
    from scratchae import plots  # matplotlib only when figures are made

    os.makedirs(out, exist_ok=True)
    path = checkpoint.save(os.path.join(out, "model.npz"), model, optimizer, history, extra=extra)
    write_text_atomically(os.path.join(out, "history.json"), json.dumps(history.to_dict(), indent=2))
    write_text_atomically(os.path.join(out, "history.csv"), history.to_csv())
    plots.save_figure(history.plot(), os.path.join(out, "loss.png"))
    saved = [path, "history.json", "history.csv", "loss.png"]
    if not isinstance(model, Classifier):
        _save_reconstructions(model, dataset, os.path.join(out, "reconstructions.png"))
        saved.append("reconstructions.png")
    print(f"saved to {out}: " + ", ".join(os.path.basename(name) for name in saved))


def _save_reconstructions(model, dataset, path: str) -> None:
    from scratchae import plots

    originals = dataset.x_test[:10]
    reconstructed = to_numpy(model.reconstruct(to_device(originals, model.device)))
    plots.save_figure(plots.reconstructions(originals, reconstructed, dataset.image_shape), path)


def run_evaluate(arguments) -> int:
    if not os.path.isfile(arguments.checkpoint):
        raise FileNotFoundError(f"no checkpoint at {arguments.checkpoint}")
    device = resolve_device(arguments.device)
    saved = checkpoint.load(arguments.checkpoint, device=device)
    dataset = _load_data(arguments)
    model = saved.model
    if dataset.x_test.shape[1] != model.input_features:
        raise data.DataError(f"the model takes {model.input_features} features but {dataset.name} has "
                             f"{dataset.x_test.shape[1]}; evaluate it on the data it was trained on")
    classifier = isinstance(model, Classifier)
    loss_name = saved.meta.get("extra", {}).get("loss", "mse")
    loss = SoftmaxCrossEntropyLoss() if classifier else LOSSES.get(loss_name, MSELoss)()
    x_test, y_test = _test_pair(model, dataset)
    results = evaluate(model, loss, x_test, y_test)
    print(f"{dataset.name} test set ({len(dataset.x_test)} samples): "
          + "  ".join(f"{name} {value:.4f}" for name, value in results.items()))
    if not classifier:
        out = arguments.out or os.path.dirname(os.path.abspath(arguments.checkpoint))
        path = os.path.join(out, f"reconstructions-{dataset.name}.png")
        _save_reconstructions(model, dataset, path)
        print(f"saved {path}")
    return 0

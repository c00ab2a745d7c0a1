"""The ``scratchae`` command (also ``python -m scratchae``).

    scratchae train --model simple --data mnist-5k --epochs 20 --out runs/simple
    scratchae evaluate runs/simple/model.npz --data mnist-5k
    scratchae gradcheck
    scratchae demo --quick

A wrong argument ends the command with status 2 and a one-line message; a failed gradient check with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy

from scratchae import checkpoint, data, gallery, gradcheck
from scratchae.arguments import count, non_negative_float, positive_float
from scratchae.backend import DEVICES, DeviceError, resolve_device, to_numpy, to_same_device
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from scratchae.models import BUILDERS, Autoencoder, Classifier, DenoisingAutoencoder
from scratchae.optim import Adam
from scratchae.training import History, TrainingDiverged, evaluate, fit

LOSSES = {"mse": MSELoss, "bce": BCELoss}

#: Errors that mean "the user asked for something that cannot be done": one line, exit status 2.
USER_ERRORS = (data.DataError, checkpoint.CheckpointError, DeviceError, FileNotFoundError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line (not the usage block) before exiting with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.run(arguments)
    except USER_ERRORS as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"scratchae: error: {message}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"scratchae: training stopped: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scratchae", description="Autoencoders from scratch on NumPy and CuPy.")
    commands = parser.add_subparsers(title="commands", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model and save it with its figures")
    train.add_argument("--model", choices=sorted(BUILDERS), default="simple")
    _add_data_arguments(train)
    train.add_argument("--epochs", type=count(0), default=20)
    train.add_argument("--batch-size", type=count(1), default=256)
    train.add_argument("--latent-dim", type=count(1), default=None,
                       help="size of the latent code (default: 32, or 16 for linear-latent and classifier)")
    train.add_argument("--lr", type=positive_float, default=1e-3)
    train.add_argument("--weight-decay", type=non_negative_float, default=0.0)
    train.add_argument("--loss", choices=sorted(LOSSES), default="mse", help="reconstruction loss of autoencoders")
    train.add_argument("--noise-factor", type=non_negative_float, default=0.5, help="for --model denoising")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", choices=DEVICES, default="auto")
    train.add_argument("--out", default=None, help="output folder (default: runs/MODEL-DATA)")
    train.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    train.set_defaults(run=run_train)

    evaluate_ = commands.add_parser("evaluate", help="test loss (and accuracy) of a saved model")
    evaluate_.add_argument("checkpoint")
    _add_data_arguments(evaluate_)
    evaluate_.add_argument("--seed", type=int, default=0)
    evaluate_.add_argument("--device", choices=DEVICES, default="auto")
    evaluate_.add_argument("--out", default=None, help="folder for the figure (default: the checkpoint's folder)")
    evaluate_.set_defaults(run=run_evaluate)

    check = commands.add_parser("gradcheck", help="check every hand-written gradient against numerical ones")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=run_gradcheck)

    gallery.add_demo_command(commands)
    return parser


def _add_data_arguments(parser) -> None:
    parser.add_argument("--data", choices=data.DATASETS, default="mnist-5k")
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
    _write_text(os.path.join(out, "history.json"), json.dumps(history.to_dict(), indent=2))
    _write_text(os.path.join(out, "history.csv"), history.to_csv())
    plots.save_figure(history.plot(), os.path.join(out, "loss.png"))
    saved = [path, "history.json", "history.csv", "loss.png"]
    if not isinstance(model, Classifier):
        _save_reconstructions(model, dataset, os.path.join(out, "reconstructions.png"))
        saved.append("reconstructions.png")
    print(f"saved to {out}: " + ", ".join(os.path.basename(name) for name in saved))


def _save_reconstructions(model, dataset, path: str) -> None:
    from scratchae import plots

    originals = dataset.x_test[:10]
    reference = model.parameters()[0].data
    reconstructed = to_numpy(model.reconstruct(to_same_device(originals, reference)))
    plots.save_figure(plots.reconstructions(originals, reconstructed, dataset.image_shape), path)


def _write_text(path: str, text: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)


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
    reference = model.parameters()[0].data
    x_test, y_test = _test_pair(model, dataset)
    results = evaluate(model, loss, to_same_device(x_test, reference),
                       None if y_test is None else to_same_device(y_test, reference))
    print(f"{dataset.name} test set ({len(dataset.x_test)} samples): "
          + "  ".join(f"{name} {value:.4f}" for name, value in results.items()))
    if not classifier:
        out = arguments.out or os.path.dirname(os.path.abspath(arguments.checkpoint))
        path = os.path.join(out, f"reconstructions-{dataset.name}.png")
        _save_reconstructions(model, dataset, path)
        print(f"saved {path}")
    return 0


def gradcheck_cases(rng) -> list[tuple[str, object, list]]:
    """Every layer, every loss and one whole autoencoder, in float64, as ``(what, kind, checks)`` rows."""
    f64 = numpy.float64
    x = _off_kinks(rng.standard_normal((4, 7)))
    cases = []
    for layer in (Dense(7, 5, rng=rng, dtype=f64), Dense(784, 128, rng=rng, dtype=f64), ReLU(), Sigmoid(),
                  Identity(), Sequential([Dense(7, 6, rng=rng, dtype=f64), ReLU(), Dense(6, 3, rng=rng, dtype=f64)])):
        layer_input = _off_kinks(rng.standard_normal((3, 784))) if getattr(layer, "in_features", 0) == 784 else x
        name = repr(layer).replace("\n", "").replace("  ", " ")
        cases.append((name, "layer", gradcheck.check_layer(layer, layer_input, rng)))
    probabilities, targets = rng.uniform(0.05, 0.95, (4, 7)), rng.uniform(0.0, 1.0, (4, 7))
    cases.append(("MSELoss", "layer", [gradcheck.check_loss(MSELoss(), probabilities.copy(), targets)]))
    cases.append(("BCELoss", "layer", [gradcheck.check_loss(BCELoss(), probabilities.copy(), targets)]))
    labels = rng.integers(0, 7, size=4)
    cases.append(("SoftmaxCrossEntropyLoss", "layer",
                  [gradcheck.check_loss(SoftmaxCrossEntropyLoss(), rng.standard_normal((4, 7)), labels)]))
    model = Autoencoder(Sequential([Dense(12, 8, rng=rng, dtype=f64), ReLU(), Dense(8, 6, rng=rng, dtype=f64), ReLU(),
                                    Dense(6, 4, rng=rng, dtype=f64), ReLU()]),
                        Sequential([Dense(4, 6, rng=rng, dtype=f64), ReLU(), Dense(6, 8, rng=rng, dtype=f64), ReLU(),
                                    Dense(8, 12, rng=rng, dtype=f64), Sigmoid()]))
    images = rng.uniform(0.0, 1.0, (5, 12))
    for loss in (MSELoss(), BCELoss()):
        cases.append((f"autoencoder 12-8-6-4-6-8-12 + {type(loss).__name__}", "model",
                      gradcheck.check_model(model, loss, images, images, rng)))
    return cases


def _off_kinks(x, margin: float = 0.05):
    """Move values away from 0, where ReLU has no derivative, so that x +- h never crosses the kink."""
    return x + numpy.where(x >= 0, margin, -margin)


def run_gradcheck(arguments) -> int:
    rng = numpy.random.default_rng(arguments.seed)
    failures = 0
    print(f"{'what':<58}{'parameter':<14}{'max rel error':>14}  {'method':<16}result")
    for what, kind, checks in gradcheck_cases(rng):
        tolerance = gradcheck.MODEL_TOLERANCE if kind == "model" else gradcheck.LAYER_TOLERANCE
        for check in checks:
            passed = check.passed(tolerance)
            failures += not passed
            print(f"{what[:57]:<58}{check.name:<14}{check.error:>14.2e}  {check.method:<16}"
                  f"{'pass' if passed else 'FAIL (> %.0e)' % tolerance}")
            if not passed:
                print(f"    {check}")
    print("all gradients match" if failures == 0 else f"{failures} gradient check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""``scratchae anomaly``: score a one-class run's test images (and a learner's own) by how unusual they are.

    scratchae train --model simple --normal-class 3 --out runs/threes
    scratchae anomaly runs/threes                       writes anomaly.json and three figures into runs/threes
    scratchae anomaly runs/threes my_images/            scores a folder of PNG images too
    scratchae anomaly runs/threes drawings.npy --out somewhere

The run must have been trained on one class (``train --normal-class K``): its test set, whole, then holds normal
images (class K) and anomalies (every other class). Every test image gets a score (:mod:`scratchae.anomaly`: the mean
squared reconstruction error, or a VAE's negative evidence lower bound), and the command writes

- ``anomaly.json``: the class, the score's name, the AUROC, the threshold that keeps 95 % of the normal images
  below it with what it costs (false alarms and misses), and every test image's score and label;
- ``anomaly_roc.png``: the ROC curve with its AUROC and the threshold's operating point;
- ``anomaly_histogram.png``: the scores of normal and anomalous images, with the threshold;
- ``anomaly_extremes.png``: the 32 most normal and the 32 most anomalous test images.

Given IMAGES (a folder of PNG files, or an ``.npy`` / ``.npz`` array, of the run's image size, values in [0, 1] or
0 to 255), it scores those too and writes ``anomaly_images.json``: each image's name, score and whether it is above
the threshold. The same run gives the same scores every time.

Each file is entered in the folder's list of scratchae's own files (:mod:`scratchae.cli.own_files`): a rerun replaces
what an earlier one wrote, but a file of these names that scratchae did not write is refused, before anything is
computed, unless ``--overwrite``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy

from scratchae import anomaly, checkpoint
from scratchae.cli import own_files
from scratchae.cli.run_folder import checkpoint_in
from scratchae.cli.train import RunError, _load_data, _recorded_settings
from scratchae.models import Classifier, VariationalAutoencoder

#: The share of normal images the threshold keeps below it (the rest are false alarms).
NORMAL_RECALL = 0.95

#: How many of the most normal and of the most anomalous test images the figure shows (as Ruff et al. show them).
EXTREMES = 32

COMMAND = "scratchae anomaly"

FILES = {"json": "anomaly.json", "roc": "anomaly_roc.png", "histogram": "anomaly_histogram.png",
         "extremes": "anomaly_extremes.png", "images": "anomaly_images.json"}


def add_anomaly_command(commands) -> None:
    """Register ``scratchae anomaly`` on the sub-command parsers of the ``scratchae`` command."""
    from scratchae.cli.arguments import add_threads_option, path_name

    command = commands.add_parser("anomaly", help="score a one-class run's test images (and your own) as normal or "
                                                  "anomalous",
                                  description="Score every test image of a run trained with --normal-class by its "
                                              "reconstruction error: AUROC, ROC curve, histogram, the most normal "
                                              "and most anomalous images.")
    command.add_argument("run_dir", metavar="RUN_DIR", type=path_name,
                         help="a run folder (or its model.npz) trained with --normal-class")
    command.add_argument("images", metavar="IMAGES", nargs="?", type=path_name, default=None,
                         help="also score these: a folder of PNG images or an .npy / .npz file")
    command.add_argument("--out", metavar="DIR", type=path_name, default=None,
                         help="where the files go (default: RUN_DIR)")
    command.add_argument("--data-dir", default=None, help="where the data files are")
    command.add_argument("--overwrite", action="store_true",
                         help="replace files of the same names that scratchae did not write")
    add_threads_option(command)
    command.set_defaults(run=run_anomaly)


def run_anomaly(arguments) -> int:
    path = checkpoint_in(arguments.run_dir, ": give a run folder that 'scratchae train' wrote")
    saved = checkpoint.load(path, fast=True)
    model = saved.model
    if isinstance(model, Classifier):
        raise RunError(f"{path} holds a classifier; anomaly scores come from an autoencoder's reconstructions")
    settings = _recorded_settings(saved.meta)
    if settings is None:  # another program's checkpoint, or settings edited into what train never records
        raise RunError(f"{path} holds no settings that scratchae train recorded (or they are damaged), so its normal "
                       f"class is not known: give a run folder that 'scratchae train --normal-class K' wrote")
    if settings["normal_class"] is None:
        raise RunError(f"{path} was trained on every class, so no class is normal: train one with --normal-class K "
                       f"(scratchae train --model {settings['model']} --normal-class 0)")
    out = Path(arguments.out) if arguments.out else path.parent
    keys = ["json", "roc", "histogram", "extremes"] + (["images"] if arguments.images is not None else [])
    for key in keys:  # before anything is computed: a learner's file of one of these names is never replaced
        own_files.check_replaceable(out / FILES[key], overwrite=arguments.overwrite,
                                    how="give another --out, or --overwrite to replace it")
    settings = {**settings, "data_dir": arguments.data_dir}
    dataset = _load_data(settings)
    # read the learner's images before the long part, so that a wrong file is said at once
    own = anomaly.read_images(arguments.images, dataset.image_shape) if arguments.images is not None else None
    report = score_test_set(model, dataset, settings["normal_class"], **_score_options(model, saved.meta))
    written = write_report(report, model, dataset, out, overwrite=arguments.overwrite)
    print(f"{settings['model']} on {dataset.name}, {_class_words(report)} as normal: AUROC {report['auroc']:.4f} "
          f"over {len(dataset.x_test):,} test images ({report['score']})")
    costs = report["threshold"]
    print(f"threshold {costs['threshold']:.6g} keeps {NORMAL_RECALL:.0%} of normal images below it: "
          f"{costs['false_alarms']:,} false alarms of {costs['normal']:,} normal images, {costs['misses']:,} "
          f"anomalies missed of {costs['anomalies']:,}")
    if own is not None:
        written.append(score_own_images(model, own, costs["threshold"], out, overwrite=arguments.overwrite,
                                        **_score_options(model, saved.meta)))
    elif own_files.remove_if_ours(out / FILES["images"]):  # an earlier run's scores, against another threshold
        print(f"removed {out / FILES['images']}, an earlier run's scores of images not given this time")
    print(f"saved {', '.join(str(file) for file in written)}")
    return 0


def _score_options(model, meta: dict) -> dict:
    """A VAE's evidence bound uses the reconstruction term it was trained with (BCE unless the run says MSE)."""
    loss = meta.get("extra", {}).get("loss") if isinstance(meta.get("extra"), dict) else None
    return {"reconstruction": loss} if isinstance(model, VariationalAutoencoder) and loss in ("bce", "mse") else {}


def score_test_set(model, dataset, normal_class: int, **options) -> dict:
    """Every test image's score and label, the AUROC, the ROC curve, and the 95 %-recall threshold's costs.
    ``options`` go to :func:`scratchae.anomaly.anomaly_scores`."""
    x_test = dataset.x_test.astype(model.dtype, copy=False)
    scores = anomaly.anomaly_scores(model, x_test, **options)
    is_anomaly = dataset.y_test != normal_class
    threshold = anomaly.threshold_for_recall(scores[~is_anomaly], NORMAL_RECALL)
    fpr, tpr, _ = anomaly.roc(scores, is_anomaly)
    return {"data": dataset.name, "normal_class": int(normal_class),
            "class_name": dataset.class_names[normal_class], "score": anomaly.score_name(model),
            "auroc": anomaly.auroc(scores, is_anomaly), "normal_recall": NORMAL_RECALL,
            "threshold": anomaly.threshold_costs(scores, is_anomaly, threshold),
            "roc": {"false_positive_rate": fpr.tolist(), "true_positive_rate": tpr.tolist()},
            "scores": scores.tolist(), "labels": dataset.y_test.tolist()}


def write_report(report: dict, model, dataset, out: Path, *, overwrite: bool = False) -> list[Path]:
    """anomaly.json and the three figures into ``out``, each listed as scratchae's own; returns their paths."""
    from scratchae import plots  # matplotlib only when figures are made

    scores, labels = numpy.asarray(report["scores"]), numpy.asarray(report["labels"])
    is_anomaly = labels != report["normal_class"]
    costs, name = report["threshold"], _class_words(report)
    operating = (costs["false_alarm_rate"], 1.0 - costs["miss_rate"])
    roc = plots.roc_curve(report["roc"]["false_positive_rate"], report["roc"]["true_positive_rate"],
                          auroc=report["auroc"], point=operating,
                          point_label=f"threshold: {NORMAL_RECALL:.0%} of normal images kept",
                          title=f"{dataset.name}, {name} as normal")
    histogram = plots.score_histogram(scores[~is_anomaly], scores[is_anomaly], threshold=costs["threshold"],
                                      score_label=report["score"], title=f"{dataset.name}, {name} as normal",
                                      threshold_label=f"threshold ({NORMAL_RECALL:.0%} of normal images below)")
    most_normal, most_anomalous = anomaly.extremes(scores, EXTREMES)
    columns = 8 if len(most_normal) % 8 == 0 else len(most_normal)
    extremes = plots.side_by_side_mosaics({f"the {len(most_normal)} most normal": dataset.x_test[most_normal],
                                           f"the {len(most_anomalous)} most anomalous": dataset.x_test[most_anomalous]},
                                          dataset.image_shape, columns=columns,
                                          title=f"{dataset.name} test images, {name} as normal")
    out.mkdir(parents=True, exist_ok=True)
    paths = [own_files.write_text(out / FILES["json"], json.dumps(report) + "\n", command=COMMAND,
                                  overwrite=overwrite)]
    for key, figure in (("roc", roc), ("histogram", histogram), ("extremes", extremes)):
        own_files.check_replaceable(out / FILES[key], overwrite=overwrite)
        paths.append(own_files.record(plots.save_figure(figure, out / FILES[key]), COMMAND))
    return paths


def _class_words(report: dict) -> str:
    """"class 3", or "class 0 (T-shirt/top)" where the class has a name of its own."""
    k, name = report["normal_class"], report["class_name"]
    return f"class {k}" if name == str(k) else f"class {k} ({name})"


def score_own_images(model, images: tuple, threshold: float, out: Path, *, overwrite: bool = False,
                     **options) -> Path:
    """Score the learner's images, print one line each, and write anomaly_images.json; returns its path."""
    x, names = images
    if x.shape[1] != model.input_features:
        raise RunError(f"the images have {x.shape[1]} pixels but the model takes {model.input_features}")
    scores = anomaly.anomaly_scores(model, x.astype(model.dtype, copy=False), **options)
    flagged = scores > threshold
    for name, score, is_flagged in zip(names, scores, flagged):
        print(f"  {name:<32} {score:12.6g}  {'anomalous' if is_flagged else 'normal'}")
    print(f"{int(flagged.sum()):,} of {len(names):,} images above the threshold {threshold:.6g}")
    record = {"threshold": threshold, "images": [{"name": name, "score": float(score), "anomalous": bool(flag)}
                                                 for name, score, flag in zip(names, scores, flagged)]}
    return own_files.write_text(out / FILES["images"], json.dumps(record, indent=1) + "\n", command=COMMAND,
                                overwrite=overwrite)

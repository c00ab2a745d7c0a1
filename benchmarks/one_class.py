"""One-class anomaly detection, the protocol of Ruff et al. (ICML 2018), for scratchae's autoencoders and three
classical baselines, all measured in the same run.

For every class K of a data set: train on the training images of class K only, score every test image (higher: more
anomalous), and report the area under the ROC curve with the test images of the other nine classes as the anomalies.
The autoencoders score an image by its mean squared reconstruction error, the variational autoencoder by its
negative evidence lower bound; the baselines, fit on the same images, are

- PCA reconstruction error (as many components as the dense autoencoder's code),
- scikit-learn's IsolationForest (its anomaly score, ``-score_samples``),
- scikit-learn's one-class SVM (RBF kernel, ``gamma="scale"``, ``nu=0.1``; ``-score_samples``).

Usage::

    python benchmarks/one_class.py                              # fashion-mnist and mnist-5k, every class
    python benchmarks/one_class.py --data mnist-5k --classes 0 1
    python benchmarks/one_class.py --readme benchmarks/README.md --json one_class.json
    python benchmarks/one_class.py --from-json one_class.json --readme benchmarks/README.md   # the table again

The training of each model is a number of gradient steps (Adam, lr 1e-3, batch 128), the same for every class and
both data sets; the epochs follow from the size of the class (6,000 images of a Fashion-MNIST class, about 400 of a
mnist-5k one). ``--readme`` writes the table between the markers ``<!-- one_class:start -->`` and
``<!-- one_class:end -->``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BATCH_SIZE = 128
LEARNING_RATE = 1e-3
LATENT_DIM = 32  # the dense autoencoder's code, and the PCA's components

#: Gradient steps of each autoencoder, for every class (the conv model's steps cost about 20 times a dense one's).
STEPS = {"dense": 1500, "conv": 500, "denoising": 1500, "vae": 1500}

#: Draws of z averaged in the VAE's negative ELBO.
ELBO_SAMPLES = 10

AUTOENCODERS = ("dense", "conv", "denoising", "vae")
#: Scores of the trained autoencoders reported as a column of their own: the VAE by its reconstruction error too.
SECOND_SCORES = {"vae": "vae-mse"}
BASELINES = ("pca", "isolation-forest", "one-class-svm")
LABELS = {"dense": "dense AE", "conv": "conv AE", "denoising": "denoising AE", "vae": "VAE (-ELBO)",
          "vae-mse": "VAE (reconstruction MSE)",
          "pca": f"PCA ({LATENT_DIM})", "isolation-forest": "IsolationForest", "one-class-svm": "one-class SVM"}
COLUMNS = ("dense", "conv", "denoising", "vae", "vae-mse") + BASELINES
START, END = "<!-- one_class:start -->", "<!-- one_class:end -->"


def build(kind: str, seed: int):
    """The scratchae model of ``kind``, its training loss, and its architecture in words."""
    from scratchae import builders
    from scratchae.losses import BCELoss, MSELoss, VAELoss

    if kind == "dense":
        return builders.simple_autoencoder(LATENT_DIM, seed=seed), MSELoss()
    if kind == "conv":
        return builders.conv_autoencoder(seed=seed), BCELoss()
    if kind == "denoising":
        return builders.denoising_autoencoder(LATENT_DIM, noise_factor=0.5, seed=seed), MSELoss()
    return builders.variational_autoencoder(20, seed=seed), VAELoss("bce")


def train_and_score(kind: str, x_normal, x_test, seed: int) -> tuple[dict, int, int, float]:
    """Train ``kind`` on ``x_normal`` for its steps; returns ({column: test scores}, epochs, steps, seconds)."""
    from scratchae import anomaly
    from scratchae.optim import Adam
    from scratchae.training import fit

    model, loss = build(kind, seed)
    per_epoch = math.ceil(len(x_normal) / BATCH_SIZE)
    epochs = max(1, round(STEPS[kind] / per_epoch))
    started = time.perf_counter()
    fit(model, loss, Adam(model.parameters(), lr=LEARNING_RATE), x_normal, epochs=epochs, batch_size=BATCH_SIZE,
        seed=seed, progress=False)
    options = {"samples": ELBO_SAMPLES} if kind == "vae" else {}
    scores = {kind: anomaly.anomaly_scores(model, x_test, **options)}
    if kind in SECOND_SCORES:
        scores[SECOND_SCORES[kind]] = anomaly.reconstruction_errors(model, x_test)
    return scores, epochs, epochs * per_epoch, time.perf_counter() - started


def baseline_scores(kind: str, x_normal, x_test, seed: int):
    """The test scores of a scikit-learn baseline fit on ``x_normal`` (higher: more anomalous), and its seconds."""
    import numpy
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.svm import OneClassSVM

    started = time.perf_counter()
    if kind == "pca":
        pca = PCA(LATENT_DIM, random_state=seed).fit(x_normal)
        rebuilt = pca.inverse_transform(pca.transform(x_test))
        scores = numpy.mean((rebuilt - x_test) ** 2, axis=1)
    elif kind == "isolation-forest":
        scores = -IsolationForest(n_estimators=100, random_state=seed).fit(x_normal).score_samples(x_test)
    else:
        scores = -OneClassSVM(kernel="rbf", gamma="scale", nu=0.1).fit(x_normal).score_samples(x_test)
    return {kind: scores}, time.perf_counter() - started


def run(data_name: str, classes, seed: int, log) -> dict:
    """Every model and baseline on every class of ``data_name``: {"auroc": {model: [per class]}, ...}."""
    from scratchae import anomaly, data

    dataset = data.load(data_name, seed=seed)
    classes = list(range(dataset.n_classes)) if classes is None else classes
    result = {"data": data_name, "classes": classes, "class_names": [dataset.class_names[k] for k in classes],
              "train_images": [], "test_images": len(dataset.x_test), "auroc": {}, "epochs": {}, "steps": {},
              "seconds": {}}
    for k in classes:
        x_normal = anomaly.one_class(dataset.x_train, dataset.y_train, k)
        is_anomaly = dataset.y_test != k
        result["train_images"].append(len(x_normal))
        for kind in AUTOENCODERS + BASELINES:
            if kind in AUTOENCODERS:
                scores, epochs, steps, seconds = train_and_score(kind, x_normal, dataset.x_test, seed)
                result["epochs"].setdefault(kind, []).append(epochs)
                result["steps"].setdefault(kind, []).append(steps)
            else:
                scores, seconds = baseline_scores(kind, x_normal, dataset.x_test, seed)
            result["seconds"].setdefault(kind, []).append(round(seconds, 2))
            for column, values in scores.items():
                value = anomaly.auroc(values, is_anomaly)
                result["auroc"].setdefault(column, []).append(value)
                log(f"{data_name} class {k} {LABELS[column]:<25} AUROC {value:.4f}  ({seconds:.1f} s)")
    return result


def machine() -> dict:
    """The processor, the BLAS kernel in use and its threads (threadpoolctl), the environment that forces one."""
    import numpy  # noqa: F401  (loads the BLAS, so that threadpoolctl finds it)
    from threadpoolctl import threadpool_info

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout if sys.platform == "linux" else ""
    fields = dict(line.split(":", 1) for line in cpu.splitlines() if ":" in line)
    blas = [{"api": info.get("internal_api"), "architecture": info.get("architecture"),
             "threads": info.get("num_threads")} for info in threadpool_info()]
    return {"cpu": fields.get("Model name", platform.processor()).strip(), "cores": os.cpu_count(),
            "family/model": f"{fields.get('CPU family', '?').strip()}/{fields.get('Model', '?').strip()}",
            "blas": blas, "forced": {name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                                     if name in os.environ}}


def table(results: list[dict], info: dict, seconds: float, cpu_seconds: float | None = None) -> str:
    """The Markdown section: per class and mean AUROC, the steps of each model, the machine."""
    lines = []
    for result in results:
        kinds = COLUMNS
        low, high = min(result["train_images"]), max(result["train_images"])
        sizes = f"{low:,}" if low == high else f"{low:,} to {high:,}"
        lines.append(f"**{result['data']}**: train on the {sizes} training images of one class, score all "
                     f"{result['test_images']:,} test images.\n")
        lines.append("| normal class | " + " | ".join(LABELS[kind] for kind in kinds) + " |")
        lines.append("| --- " * (len(kinds) + 1) + "|")
        for i, (k, name) in enumerate(zip(result["classes"], result["class_names"])):
            row = [result["auroc"][kind][i] for kind in kinds]
            best = max(row)
            label = k if name == str(k) else f"{k} {name}"
            lines.append(f"| {label} | " + " | ".join(_cell(value, best) for value in row) + " |")
        means = [sum(result["auroc"][kind]) / len(result["auroc"][kind]) for kind in kinds]
        lines.append("| **mean** | " + " | ".join(_cell(value, max(means)) for value in means) + " |")
        trained = {column: kind for kind in AUTOENCODERS for column in (kind, SECOND_SCORES.get(kind))}
        steps = [_steps(result, trained[kind]) if kind in trained else "fit once" for kind in kinds]
        lines.append("| training | " + " | ".join(steps) + " |")
        seconds_of = [result["seconds"][trained.get(kind, kind)] for kind in kinds]
        lines.append("| seconds per class (train + score) | " + " | ".join(
            f"{sum(values) / len(values):.1f}" for values in seconds_of) + " |\n")
        lines.append(verdict(result) + "\n")
    blas = ", ".join(f"{b['api']} {b['architecture']}, {b['threads']} threads" for b in info["blas"])
    forced = ", ".join(f"{name}={value}" for name, value in info["forced"].items()) or "none"
    lines.append(f"Measured on {info['cpu']} (family/model {info['family/model']}, {info['cores']} cores, shared with "
                 f"other work), BLAS: {blas} (1 while scratchae trains, its default); forced kernel variables: "
                 f"{forced}; the whole run took {seconds / 60:.1f} min"
                 + ("" if cpu_seconds is None else f" ({cpu_seconds / 60:.1f} min of CPU)")
                 + f". Batch {BATCH_SIZE}, Adam lr {LEARNING_RATE:g}, seed 0; the VAE's score "
                 f"averages {ELBO_SAMPLES} draws of z.")
    return "\n".join(lines)


def _steps(result: dict, kind: str) -> str:
    steps, epochs = result["steps"][kind], result["epochs"][kind]
    return (f"{min(steps):,}-{max(steps):,} steps ({min(epochs)}-{max(epochs)} epochs)" if min(steps) != max(steps)
            else f"{steps[0]:,} steps ({epochs[0]} epochs)")


def _cell(value: float, best: float) -> str:
    return f"**{value:.3f}**" if value == best else f"{value:.3f}"


def verdict(result: dict) -> str:
    """One sentence: the best scratchae model's mean against the best baseline's, and the target of 0.93."""
    means = {kind: sum(values) / len(values) for kind, values in result["auroc"].items()}
    ours = max([column for column in COLUMNS if column not in BASELINES], key=means.get)
    theirs = max(BASELINES, key=means.get)
    ahead = means[ours] > means[theirs]
    text = (f"Best scratchae model: {LABELS[ours]}, mean AUROC {means[ours]:.3f}; best baseline: {LABELS[theirs]}, "
            f"{means[theirs]:.3f}: scratchae is {'ahead' if ahead else 'behind'}.")
    if result["data"] == "fashion-mnist":
        text += (" The target (at least 0.93, ahead of every baseline) is "
                 + ("met." if ahead and means[ours] >= 0.93 else "not met."))
    return text


def write_readme(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    body = f"{START}\n{section}\n{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + body + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## `one_class.py`: anomaly detection, one class as normal\n\n" + body + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["fashion-mnist", "mnist-5k"])
    parser.add_argument("--classes", nargs="+", type=int, default=None, help="default: every class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readme", type=Path, default=None, help="write the table into this Markdown file")
    parser.add_argument("--json", type=Path, default=None, help="write every figure into this file")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="measure nothing: write the table of a run saved with --json")
    arguments = parser.parse_args(argv)
    if arguments.from_json:
        saved = json.loads(arguments.from_json.read_text())
        section = table(saved["results"], saved["machine"], saved["seconds"], saved.get("cpu_seconds"))
        print(section)
        if arguments.readme:
            write_readme(arguments.readme, section)
        return 0
    info = machine()
    print(json.dumps(info), flush=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    results = [run(name, arguments.classes, arguments.seed, lambda line: print(line, flush=True))
               for name in arguments.data]
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    section = table(results, info, seconds, cpu_seconds)
    print(section)
    if arguments.json:
        arguments.json.write_text(json.dumps({"machine": info, "seconds": seconds, "cpu_seconds": cpu_seconds,
                                              "results": results}, indent=1))
    if arguments.readme:
        write_readme(arguments.readme, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Anomaly detection by reconstruction error: train on one class, score everything, see what does not belong.

An autoencoder trained only on images of one kind (one class of a data set, the *normal* class) learns to rebuild
that kind well and everything else badly. The reconstruction error of an image is then a score of how unusual it
is: low for the normal class, high for the rest. This is the protocol of Ruff et al., "Deep One-Class
Classification" (ICML 2018): train on one class, score every test image, and report the area under the ROC curve
(AUROC) with the other classes as the anomalies.

Scores are NumPy arrays, one number per image, higher meaning more anomalous:

- :func:`reconstruction_errors`: the mean squared error between an image and its reconstruction;
- :func:`negative_elbo`: for a variational autoencoder, the negative evidence lower bound of each image (its
  reconstruction term summed over the pixels plus its KL term), the VAE's own measure of how unlikely an image is;
- :func:`anomaly_scores` picks the one that fits the model.

AUROC and the ROC curve come from scikit-learn (:func:`auroc`, :func:`roc`), and :func:`threshold_for_recall` gives
the score below which a chosen fraction of the normal images fall (95 % by default): the threshold of a detector that
raises a false alarm on 5 % of normal images.
"""

from __future__ import annotations

import math
import zipfile

import numpy

from scratchae.backend import random_generator, standard_normal_like, to_device, to_numpy
from scratchae.models import VariationalAutoencoder

#: Images scored per forward pass: enough to keep the BLAS busy, few enough to keep the memory small.
SCORE_BATCH = 1000

#: The seed of the draws of eps when a VAE's evidence bound is estimated (the same draws on every rerun).
ELBO_SEED = 0


class AnomalyError(ValueError):
    """A normal class or images that cannot be used; the message says which and why."""


# ---------------------------------------------------------------------------------------------------------------
# One class as normal


def check_normal_class(normal_class, n_classes: int, data_name: str) -> int:
    """``normal_class`` as an int if the data set has it; an :class:`AnomalyError` naming the classes otherwise."""
    if isinstance(normal_class, bool) or not isinstance(normal_class, (int, numpy.integer)) or \
            not 0 <= int(normal_class) < n_classes:
        raise AnomalyError(f"{data_name} has no class {normal_class!r}: its classes are 0 to {n_classes - 1}")
    return int(normal_class)


def one_class(x: numpy.ndarray, labels: numpy.ndarray, normal_class: int, *, what: str = "training set"):
    """The rows of ``x`` (N, D) whose label is ``normal_class``: (n, D). An :class:`AnomalyError` when there are
    none (a small subset can leave a class empty)."""
    rows = x[labels == normal_class]
    if len(rows) == 0:
        raise AnomalyError(f"the {what} holds no image of class {normal_class} (of {len(x):,} images); take a larger "
                           f"subset or another class")
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Scores


def reconstruction_errors(model, x: numpy.ndarray, *, batch_size: int = SCORE_BATCH) -> numpy.ndarray:
    """x: (N, D) -> the mean squared reconstruction error of each image: (N,) float64, on the CPU.

    The model reconstructs in evaluation mode (no training noise, a VAE decodes its mean code), so the same model
    gives the same scores every time.
    """
    model.eval()
    scores = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        rebuilt = to_numpy(model.reconstruct(to_device(batch, model.device)))  # (n, D)
        diff = rebuilt.astype(numpy.float64) - batch  # (n, D), in float64 so that the mean is not rounded twice
        scores.append(numpy.mean(diff * diff, axis=1))  # (n,)
    return numpy.concatenate(scores) if scores else numpy.zeros(0)


def negative_elbo(vae, x: numpy.ndarray, *, samples: int = 1, reconstruction: str = "bce", seed: int = ELBO_SEED,
                  batch_size: int = SCORE_BATCH, epsilon: float = 1e-7) -> numpy.ndarray:
    """x: (N, D) -> each image's negative evidence lower bound, in nats: (N,) float64, on the CPU.

    ``-ELBO(x) = sum_i l(x_hat_i, x_i) + KL(N(mu, sigma^2) || N(0, I))``, with ``l`` the binary cross-entropy
    (clipped to ``[epsilon, 1 - epsilon]`` as :class:`~scratchae.losses.BCELoss` clips it) or the squared error,
    summed over the pixels; the reconstruction term is averaged over ``samples`` draws of ``z`` (from ``seed``,
    so that a rerun gives the same scores). It is :class:`~scratchae.losses.VAELoss` per image instead of per batch.
    """
    vae.eval()
    scores = []
    for start in range(0, len(x), batch_size):
        batch = to_device(x[start:start + batch_size], vae.device)
        rebuilt_terms = 0.0
        for draw in range(samples):
            rng = random_generator((seed, start, draw), like=batch)
            eps = standard_normal_like(batch, rng, shape=(len(batch), vae.latent_dim))  # (n, Z) ~ N(0, I)
            x_hat, mu, logvar = (to_numpy(array).astype(numpy.float64) for array in vae.forward(batch, eps=eps))
            rebuilt_terms = rebuilt_terms + _pixel_losses(x_hat, to_numpy(batch), reconstruction, epsilon) / samples
        kl = -0.5 * numpy.sum(1.0 + logvar - mu * mu - numpy.exp(logvar), axis=1)  # (n,)
        scores.append(rebuilt_terms + kl)
    return numpy.concatenate(scores) if scores else numpy.zeros(0)


def _pixel_losses(x_hat: numpy.ndarray, x: numpy.ndarray, reconstruction: str, epsilon: float) -> numpy.ndarray:
    """(n, D) reconstructions and images -> the reconstruction term of each image, summed over its pixels: (n,)."""
    if reconstruction == "mse":
        return numpy.sum((x_hat - x) ** 2, axis=1)
    p = numpy.clip(x_hat, epsilon, 1.0 - epsilon)
    return -numpy.sum(x * numpy.log(p) + (1.0 - x) * numpy.log(1.0 - p), axis=1)


def anomaly_scores(model, x: numpy.ndarray, **options) -> numpy.ndarray:
    """The score that fits ``model``: the negative ELBO for a variational autoencoder (``options`` go to
    :func:`negative_elbo`), the mean squared reconstruction error for any other autoencoder. (N, D) -> (N,)
    float64."""
    if isinstance(model, VariationalAutoencoder):
        return negative_elbo(model, x, **options)
    return reconstruction_errors(model, x, **options)


def score_name(model) -> str:
    """Words for the score :func:`anomaly_scores` gives ``model``, for axes and captions."""
    if isinstance(model, VariationalAutoencoder):
        return "negative ELBO (nats)"
    return "reconstruction MSE"


# ---------------------------------------------------------------------------------------------------------------
# How well the scores separate the classes (scikit-learn's ROC), and a threshold


def auroc(scores: numpy.ndarray, is_anomaly: numpy.ndarray) -> float:
    """The area under the ROC curve: the probability that a random anomaly scores above a random normal image
    (0.5: no better than chance, 1: every anomaly above every normal image). scikit-learn's ``roc_auc_score``."""
    from sklearn.metrics import roc_auc_score

    _check_both_kinds(is_anomaly)
    return float(roc_auc_score(numpy.asarray(is_anomaly, dtype=bool), scores))


def roc(scores: numpy.ndarray, is_anomaly: numpy.ndarray):
    """(false positive rates, true positive rates, thresholds) of scikit-learn's ``roc_curve``, anomalies being
    the positives."""
    from sklearn.metrics import roc_curve

    _check_both_kinds(is_anomaly)
    return roc_curve(numpy.asarray(is_anomaly, dtype=bool), scores)


def _check_both_kinds(is_anomaly) -> None:
    flags = numpy.asarray(is_anomaly, dtype=bool)
    if flags.all() or not flags.any():
        raise AnomalyError(f"an ROC curve needs normal and anomalous images, but all {flags.size:,} are "
                           f"{'anomalies' if flags.all() else 'normal'}")


def threshold_for_recall(normal_scores: numpy.ndarray, recall: float = 0.95) -> float:
    """The score t at or below which ``recall`` of the normal images fall: flag an image as anomalous when its score
    is above t, and at most ``1 - recall`` of the normal images raise a false alarm.

    t is one of the normal scores (the ceil(recall * n)-th smallest), so that the recall is at least the one asked.
    """
    ordered = numpy.sort(numpy.asarray(normal_scores, dtype=numpy.float64))
    if ordered.size == 0:
        raise AnomalyError("a threshold needs at least one normal image")
    rank = math.ceil(recall * ordered.size - 1e-9)  # 0.95 * 100 may be 95.00000000000001 in floating point
    return float(ordered[max(rank, 1) - 1])


def threshold_costs(scores: numpy.ndarray, is_anomaly: numpy.ndarray, threshold: float) -> dict:
    """What a threshold costs: ``false_alarms`` (normal images above it) and ``misses`` (anomalies at or below it),
    each as a count and as a fraction of its kind."""
    flags = numpy.asarray(is_anomaly, dtype=bool)
    flagged = numpy.asarray(scores) > threshold
    false_alarms, misses = int(numpy.sum(flagged & ~flags)), int(numpy.sum(~flagged & flags))
    normal, anomalous = int(numpy.sum(~flags)), int(numpy.sum(flags))
    return {"threshold": float(threshold), "false_alarms": false_alarms, "normal": normal,
            "false_alarm_rate": false_alarms / normal if normal else 0.0, "misses": misses, "anomalies": anomalous,
            "miss_rate": misses / anomalous if anomalous else 0.0}


def extremes(scores: numpy.ndarray, n: int = 32) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The indices of the ``n`` lowest scores (most normal first) and of the ``n`` highest (most anomalous first).
    Ties keep the images' order (a stable sort), so reruns pick the same images."""
    order = numpy.argsort(numpy.asarray(scores), kind="stable")  # lowest first
    n = min(n, order.size)
    return order[:n], order[order.size - n:][::-1]


# ---------------------------------------------------------------------------------------------------------------
# A learner's own images


def read_images(path, image_shape: tuple[int, int]) -> tuple[numpy.ndarray, list[str]]:
    """Images from a folder of PNG files or an ``.npy`` / ``.npz`` file -> ((N, H * W) float32 in [0, 1], names).

    PNG files are read as grey levels (colour is averaged by Pillow's "L" conversion) and divided by 255 (a 16-bit
    PNG by 65535). An array
    holds (N, H, W) or (N, H * W) images (one (H, W) image too): floats in [0, 1], or whole numbers 0 to 255. An
    ``.npz`` file holds one array, or names it ``images`` or ``x``.

    Raises
    ------
    AnomalyError
        For a missing path, an empty folder, a file of another kind, images of another size than ``image_shape``,
        or values outside [0, 1] (0 to 255 for whole numbers), NaN or infinity. The message names the file.
    """
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        return _read_png_folder(path, image_shape)
    if not path.exists():
        raise AnomalyError(f"{path}: no such file or folder (give a folder of PNG images or an .npy / .npz file)")
    if not path.is_file():
        raise AnomalyError(f"{path}: not a plain file (a pipe or a device?): give a folder of PNG images or an .npy "
                           f"/ .npz file")
    if path.suffix.lower() == ".png":
        return _read_png_files([path], image_shape), [path.name]
    if path.suffix.lower() not in (".npy", ".npz"):
        raise AnomalyError(f"{path}: not a folder of PNG images nor an .npy / .npz file")
    array = _read_array(path)
    images = _as_rows(array, image_shape, str(path))
    return images, [f"{path.name}[{i}]" for i in range(len(images))]


def _read_png_folder(folder, image_shape) -> tuple[numpy.ndarray, list[str]]:
    files = sorted(file for file in folder.iterdir() if file.suffix.lower() == ".png")
    if not files:
        raise AnomalyError(f"{folder}: the folder holds no PNG images")
    for file in files:
        if not file.is_file():  # a pipe named like an image would block the read forever
            raise AnomalyError(f"{file}: not a plain file (a folder, a pipe or a device named .png)")
    return _read_png_files(files, image_shape), [file.name for file in files]


def _read_png_files(files, image_shape) -> numpy.ndarray:
    from PIL import Image, UnidentifiedImageError  # matplotlib's own dependency

    rows = []
    for file in files:
        try:
            with Image.open(file) as image:
                grey = _grey_levels(image)  # (H, W) in [0, 1]
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
            raise AnomalyError(f"{file}: not a readable PNG image ({error})") from None
        if grey.shape != tuple(image_shape):
            raise AnomalyError(f"{file}: the image is {grey.shape[1]} x {grey.shape[0]} pixels, but the model takes "
                               f"{image_shape[1]} x {image_shape[0]}")
        rows.append(grey.reshape(-1))
    return numpy.stack(rows)


def _grey_levels(image) -> numpy.ndarray:
    """A Pillow image -> (H, W) float32 grey levels in [0, 1]: 16-bit grey divided by 65535 (Pillow's "L" conversion
    would clip it to black and white), everything else converted to 8-bit grey and divided by 255."""
    if image.mode.startswith("I"):  # "I;16", "I;16B", "I": PNG's 16-bit grey
        return numpy.clip(numpy.asarray(image, dtype=numpy.float32) / 65535.0, 0.0, 1.0)
    return numpy.asarray(image.convert("L"), dtype=numpy.float32) / 255.0


def _read_array(path) -> numpy.ndarray:
    """The images of an ``.npy`` file or an ``.npz`` archive (whatever its suffix says: NumPy reads which it is)."""
    try:
        with open(path, "rb") as file:  # closed here whatever NumPy makes of it
            loaded = numpy.load(file, allow_pickle=False)
            if isinstance(loaded, numpy.ndarray):
                return loaded
            with loaded as archive:
                return _images_of_archive(path, archive)
    except AnomalyError:
        raise
    except MemoryError:
        raise AnomalyError(f"{path}: the array its header announces does not fit in memory (a damaged file?)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if "allow_pickle" in str(error):  # NumPy's words for a file of Python objects, or of text
            raise AnomalyError(f"{path}: not an array of numbers (it holds text or pickled Python objects, which "
                               f"scratchae does not load); save the images with numpy.save") from None
        raise AnomalyError(f"{path}: not a readable NumPy file ({str(error).splitlines()[0]})") from None


def _images_of_archive(path, archive) -> numpy.ndarray:
    """The array of an ``.npz`` archive that holds the images: ``images``, ``x``, or its only one."""
    names = list(archive.files)
    chosen = next((name for name in ("images", "x") if name in names), names[0] if len(names) == 1 else None)
    if chosen is None:
        raise AnomalyError(f"{path}: the archive holds {len(names)} arrays ({', '.join(names[:5])}); name the images "
                           f"'images' or 'x', or save one array")
    return archive[chosen]


def _as_rows(array: numpy.ndarray, image_shape, what: str) -> numpy.ndarray:
    """An array of images -> (N, H * W) float32 in [0, 1], or an AnomalyError that says what is wrong with it."""
    height, width = image_shape
    pixels = height * width
    if array.dtype.kind not in "fiub":
        raise AnomalyError(f"{what}: the images must be numbers, got an array of {array.dtype}")
    if array.size == 0:
        raise AnomalyError(f"{what}: holds no images (an array of shape {array.shape})")
    if array.ndim == 2 and array.shape == (height, width) and array.shape[1] != pixels:
        array = array[None]  # one image
    if array.ndim == 3 and array.shape[1:] == (height, width):
        array = array.reshape(len(array), pixels)
    if array.ndim != 2 or array.shape[1] != pixels:
        raise AnomalyError(f"{what}: images of shape {array.shape} do not fit the model, which takes {height} x "
                           f"{width} images: give (N, {height}, {width}) or (N, {pixels})")
    if array.dtype.kind == "f" and not numpy.isfinite(array).all():
        raise AnomalyError(f"{what}: the images contain NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if array.dtype.kind == "f":
        if low < 0.0 or high > 1.0:
            raise AnomalyError(f"{what}: pixel values range from {low:g} to {high:g}, but must lie in [0, 1] (divide "
                               f"0-255 images by 255)")
        return array.astype(numpy.float32)
    if low < 0 or high > 255:
        raise AnomalyError(f"{what}: whole-number pixel values range from {low:g} to {high:g}, but must lie in 0 to "
                           f"255")
    return array.astype(numpy.float32) / 255.0

"""``scratchae explore``: a page to walk through a 2-d latent space in the browser.

    scratchae explore runs/vae-mnist-5k                 writes runs/vae-mnist-5k/explorer.html
    scratchae explore runs/vae-mnist-5k --out vae.html

The page is one HTML file that opens from the disk, with no server and no network. On the left, the codes of the
run's test images (``mu`` for a VAE), coloured by label; on the right, the image that the decoder makes of the code
under the pointer, redrawn as the pointer moves; below, the images along the segment between two clicked codes.

The decoder runs in the page: the lesson's forward pass (``Dense``: x W + b, ``ReLU``, ``Sigmoid``, ``Identity``,
``Sequential``) written out in plain JavaScript, with the weights embedded as base64 float32. A model whose latent
space has another size than 2, or whose decoder has other layers, is refused with a one-line message; so is one
whose weights give codes or images that are not finite numbers (the page would be blank).

The page never replaces a file that scratchae did not write (a learner's own page, or one they edited) unless told
``--overwrite``, and never a run's own files (its checkpoint, history, figures) at all. The data set is the one the
run recorded; a ``data_dir`` the checkpoint records is used only when given again (``--data-dir``), as for
``evaluate`` and ``train --resume``.
"""

from __future__ import annotations

import base64
import html
import importlib.resources
import json
import os
import re
from pathlib import Path

import numpy

from scratchae import checkpoint
from scratchae.backend import to_device, to_numpy
from scratchae.cli import own_files
from scratchae.cli.run_folder import MANIFEST, RUN_FILES, checkpoint_in
from scratchae.cli.train import RUN_DEFAULTS, RunError, _load_data, _recorded_settings
from scratchae.data import DATASETS, DIGIT_NAMES, DataError
from scratchae.i18n import format_text, gettext, resolve
from scratchae.engine.forms import LESSON_FORMS
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.message_sources import PAGE_MESSAGE, page_message
from scratchae.models import VariationalAutoencoder

#: The page's file name in a run folder, when ``--out`` is not given.
PAGE = "explorer.html"

#: Test images drawn on the plane by default: enough to see the classes, few enough to keep the page small.
DEFAULT_POINTS = 1000

#: Images in the row of a walk between two clicks.
WALK_STEPS = 10

#: The layers the page's JavaScript decoder knows.
DECODER_LAYERS = (Dense, ReLU, Sigmoid, Identity)

#: The plane: its size and the margins that hold its axes, in CSS pixels.
PLOT = {"width": 540, "height": 540, "left": 54, "right": 14, "top": 12, "bottom": 44}

#: How far the plane reaches beyond the codes, as a fraction of their spread.
PADDING = 0.08


class ExploreError(RunError):
    """A model the page cannot show (the message says why)."""


# --------------------------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------------------------


def add_explore_command(commands) -> None:
    """Register ``scratchae explore`` on the sub-command parsers of the ``scratchae`` command."""
    from scratchae.cli.arguments import add_language_option, count, path_name

    explore = commands.add_parser("explore", help="write a page to explore a 2-d latent space in the browser",
                                  description="Write one HTML file that opens from the disk: the codes of the run's "
                                              "test images, and the image the decoder makes of the code under the "
                                              "pointer.")
    explore.add_argument("run_dir", metavar="RUN_DIR", type=path_name,
                         help="a run folder (or its model.npz) whose model has a 2-d code")
    explore.add_argument("--out", metavar="FILE", type=path_name, default=None,
                         help=f"the page (default: RUN_DIR/{PAGE})")
    explore.add_argument("--points", type=count(1), default=DEFAULT_POINTS,
                         help=f"test images to draw on the plane (default: {DEFAULT_POINTS:,})")
    explore.add_argument("--data-dir", default=None,
                         help="where the run's data files are (a folder the checkpoint records is not used unless "
                              "given here again)")
    explore.add_argument("--overwrite", action="store_true",
                         help="replace a page at --out that scratchae did not write (never a run's own files)")
    add_language_option(explore)
    explore.set_defaults(run=run_explore)


def run_explore(arguments) -> int:
    path = checkpoint_in(arguments.run_dir)
    saved = checkpoint.load(path)
    decoder = explorable_decoder(saved.model, what=str(path))  # refuse before loading any data
    out = Path(arguments.out) if arguments.out else path.parent / PAGE
    _check_page_target(out, path, overwrite=arguments.overwrite)  # and before loading any data
    dataset = _recorded_dataset(saved.meta, arguments.data_dir)
    if dataset.n_features != decoder.output_features(2):
        raise DataError(f"{path}: the decoder draws {decoder.output_features(2)} pixels but {dataset.name} has "
                        f"{dataset.n_features}")
    n = min(arguments.points, len(dataset.x_test))
    settings = _recorded_settings(saved.meta)  # None for a checkpoint saved from Python
    model_name = settings["model"] if settings else type(saved.model).__name__
    title = format_text("{model} on {data}", arguments.lang, model=model_name, data=dataset.name)
    if saved.history:
        epochs = len(saved.history)
        title += ", " + (gettext("1 epoch", arguments.lang) if epochs == 1
                         else format_text("{n} epochs", arguments.lang, n=epochs))
    page = explorer_page(saved.model, dataset.x_test[:n], dataset.y_test[:n], image_shape=dataset.image_shape,
                         class_names=dataset.class_names, title=title, lang=arguments.lang)
    own_files.write_text(out, page, command="scratchae explore", overwrite=arguments.overwrite)
    print(f"saved {out} ({format_size(len(page.encode()))}, {n:,} test images): open it in a browser")
    return 0


def _check_page_target(out: Path, checkpoint_path: Path, *, overwrite: bool) -> None:
    """Refuse a page's name that is a run's own file (always) or a file scratchae did not write (unless
    ``overwrite``), before anything is computed."""
    own = out.name in (*RUN_FILES, MANIFEST, own_files.LEDGER) or out.suffix == ".npz"
    if own or (os.path.lexists(out) and out.resolve() == checkpoint_path.resolve()):
        raise ExploreError(f"--out {out} is a run's own file, which the page never replaces; give a name such as "
                           f"{out.with_name(PAGE)}")
    own_files.check_replaceable(out, overwrite=overwrite,
                                how="give another --out, or --overwrite to replace it")


def _recorded_dataset(meta: dict, data_dir=None):
    """The test set of the run: the data set its checkpoint records, loaded as ``scratchae train`` loaded it, from
    ``data_dir`` (a folder the checkpoint records is never used: a file must not choose where to search, download
    or delete)."""
    recorded = _recorded_settings(meta)
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    if recorded is None:  # a checkpoint saved from Python: the data set it names, or the embedded digits
        name = extra.get("data") if extra.get("data") in DATASETS else "mnist-5k"
        recorded = {**RUN_DEFAULTS, "data": name}
    return _load_data({**recorded, "data_dir": data_dir})


# --------------------------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------------------------


def explorable_decoder(model, *, what: str = "the model") -> Sequential:
    """The decoder of ``model`` if the page can run it: a 2-d code, and only Dense, ReLU, Sigmoid, Identity layers.

    Raises
    ------
    ExploreError
        Naming what the page cannot show.
    """
    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, Sequential) or not hasattr(model, "encode"):
        raise ExploreError(f"{what}: a {type(model).__name__} has no decoder; the page shows what an autoencoder's "
                           f"decoder makes of a code")
    for index, layer in enumerate(decoder.layers):
        if lesson_class(layer) not in DECODER_LAYERS:
            raise ExploreError(f"{what}: the page's decoder knows {', '.join(t.__name__ for t in DECODER_LAYERS)} "
                               f"layers; this decoder's layer {index} is a {type(layer).__name__}")
    first = next((layer for layer in decoder.layers if isinstance(layer, Dense)), None)
    if first is None:
        raise ExploreError(f"{what}: the decoder has no Dense layer")
    if first.in_features != 2:
        raise ExploreError(f"{what}: the page draws a 2-d latent space, and this model's codes have "
                           f"{first.in_features} numbers; train one with --latent-dim 2")
    return decoder


def explorer_page(model, images, labels, *, image_shape, class_names=DIGIT_NAMES, title: str,
                  lang: str | None = None) -> str:
    """The explorer page of ``model`` as HTML text, with the codes of ``images`` on its plane.

    Parameters
    ----------
    model : Autoencoder or VariationalAutoencoder
        With a 2-d code and a decoder of Dense, ReLU, Sigmoid and Identity layers, on any device.
    images : numpy.ndarray, shape (n, D)
        Test images; their codes (``encode``: ``mu`` for a VAE) are the dots of the plane. 1,000 keep the page small.
    labels : numpy.ndarray, shape (n,)
        The class of each image, 0 <= label < len(class_names): the dots' colours.
    image_shape : tuple of int
        (rows, columns), with rows * columns = D.
    class_names : sequence of str
        The legend's name for each label.
    title : str
        What the model is, for the page's heading.
    lang : str, optional
        The page's language (see :mod:`scratchae.i18n`): its every ``{{_ text _}}`` is looked up in the catalogs.
    """
    lang = resolve(lang)
    decoder = explorable_decoder(model)
    rows, columns = (int(size) for size in image_shape)
    if decoder.output_features(2) != rows * columns:
        raise ExploreError(f"the decoder draws {decoder.output_features(2)} pixels, not {rows} x {columns}")
    labels = numpy.asarray(labels)
    if len(class_names) > 256:
        raise ValueError(f"the page colours at most 256 classes (one byte per label), not {len(class_names)}")
    if len(labels) != len(images) or (len(labels) and not 0 <= labels.min() <= labels.max() < len(class_names)):
        raise ValueError(f"expected one label in [0, {len(class_names)}) per image; got {len(labels)} labels for "
                         f"{len(images)} images")
    with numpy.errstate(over="ignore", invalid="ignore"):  # codes past float32 are refused just below
        codes = to_numpy(model.encode(to_device(numpy.asarray(images, dtype=model.dtype), model.device)))  # (n, 2)
    _refuse_non_finite(decoder, codes, model.device)
    layers = [_layer_description(layer) for layer in decoder.layers]
    words = {"walk": gettext("From A = ({from}) to B = ({to}), {steps} codes z(t) = (1 - t) A + t B, decoded. Click "
                             "again to start another walk.", lang),
             "second": gettext("Now click a second point: the end of the walk.", lang)}
    data = {"decoder": layers, "image_shape": [rows, columns], "class_names": [str(name) for name in class_names],
            "codes": _base64(codes.astype("<f4")), "labels": _base64(labels.astype(numpy.uint8)),
            "view": _view(codes), "plot": PLOT, "steps": WALK_STEPS, "words": words}
    weights = sum(len(layer.get("W", "")) + len(layer.get("b", "")) for layer in layers)  # bytes of base64 text
    points = len(data["codes"]) + len(data["labels"])
    n_weights = sum(parameter.size for parameter in decoder.parameters())
    code_words = gettext("its mean code mu", lang) if isinstance(model, VariationalAutoencoder) \
        else gettext("its code z", lang)
    fields = {"TITLE": html.escape(title), "CODE_WORDS": html.escape(code_words), "STEPS": str(WALK_STEPS),
              "ARCHITECTURE": html.escape(_architecture(decoder, lang)), "LANG": lang.replace("_", "-"),
              "DATA": script_safe_json(data)}

    def size_words(page_bytes: int) -> str:
        return format_text("This page is {size} ({bytes:,} bytes), all in this one file: nothing is loaded from "
                           "elsewhere. The decoder's {n_weights:,} weights take {weights_size} of it (float32, "
                           "base64), the {n_codes:,} codes and their labels {codes_size}.", lang,
                           size=format_size(page_bytes, lang), bytes=page_bytes, n_weights=n_weights,
                           weights_size=format_size(weights, lang), n_codes=len(codes),
                           codes_size=format_size(points, lang))

    return _with_its_own_size(_translated(_template(), lang), fields, size_words)


def script_safe_json(data) -> str:
    """``data`` as JSON text that can sit inside a ``<script>`` element whatever its strings hold: ``<``, ``>`` and
    ``&`` are written as ``\\u003c``, ``\\u003e``, ``\\u0026`` (the same JSON), so no ``</script``, ``<!--`` or
    ``<script`` in a class name or title can end or change the element. NaN and infinities are refused."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _refuse_non_finite(decoder: Sequential, codes: numpy.ndarray, device: str) -> None:
    """The page cannot draw codes, or images of codes, that are not finite numbers: say so rather than write a
    blank page."""
    if not numpy.all(numpy.isfinite(codes)):
        raise ExploreError("the encoder's weights give codes that are not finite numbers (inf or NaN); the page "
                           "cannot draw them: train the model again, with a smaller --lr")
    view = _view(codes)
    if not all(numpy.isfinite(view[axis]).all() for axis in view):
        raise ExploreError("the encoder's codes spread too far for the page to draw (beyond float32); train the "
                           "model again, with a smaller --lr")
    corners = numpy.array([[x, y] for x in view["z1"] for y in view["z2"]], dtype=codes.dtype)  # (4, 2)
    probes = numpy.concatenate([codes[:256], corners]) if len(codes) else corners
    with numpy.errstate(all="ignore"):  # an overflow is what this looks for
        images = to_numpy(decoder.forward(to_device(probes, device)))  # (n + 4, D)
    if not numpy.all(numpy.isfinite(images)):
        raise ExploreError("the decoder's weights give images that are not finite numbers (inf or NaN) for codes on "
                           "the plane; the page would be blank: train the model again, with a smaller --lr")


def lesson_class(layer) -> type:
    """The lesson's class of ``layer``: its own, or the one an engine form stands in for (the page runs the
    lesson's forward, and both floors compute the same numbers)."""
    return LESSON_FORMS.get(type(layer), type(layer))


def _layer_description(layer) -> dict:
    """A layer as the page's ``decoderFromLayers`` reads it; a Dense layer's W and b as base64 float32."""
    description = {"type": lesson_class(layer).__name__}
    if isinstance(layer, Dense):
        description.update(in_features=layer.in_features, out_features=layer.out_features,
                           W=_base64(to_numpy(layer.W.data).astype("<f4")),  # (D_in, D_out), row after row
                           b=_base64(to_numpy(layer.b.data).astype("<f4")))  # (D_out,)
    return description


def _base64(array: numpy.ndarray) -> str:
    return base64.b64encode(numpy.ascontiguousarray(array).tobytes()).decode("ascii")


def _view(codes: numpy.ndarray) -> dict:
    """The codes at the plane's edges: those of the dots, and a margin around them."""
    view = {}
    for axis, name in enumerate(("z1", "z2")):
        low, high = (float(v) for v in (codes[:, axis].min(), codes[:, axis].max())) if len(codes) else (-1.0, 1.0)
        spread = high - low if high > low else 1.0
        view[name] = [low - PADDING * spread, high + PADDING * spread]
    return view


def _architecture(decoder: Sequential, lang: str | None = None) -> str:
    features, parts = 2, []
    for layer in decoder.layers:
        if isinstance(layer, Dense):
            parts.append(f"Dense({features} \u2192 {layer.out_features})")
            features = layer.out_features
        else:
            parts.append(lesson_class(layer).__name__)
    return gettext("Decoder: ", lang) + " \u2192 ".join(parts)


def _template() -> str:
    return importlib.resources.files("scratchae.cli").joinpath("explorer.html").read_text(encoding="utf-8")


def _translated(template: str, lang: str) -> str:
    """The template with each ``{{_ text _}}`` replaced by the text in ``lang`` (its lines joined by spaces)."""
    return PAGE_MESSAGE.sub(lambda match: gettext(page_message(match.group(1)), lang), template)


def _fill(template: str, fields: dict) -> str:
    """Put each field's text where the template says ``{{NAME}}``, in one pass (a field's text is never read again)."""
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda match: fields[match.group(1)], template)


def _with_its_own_size(template: str, fields: dict, size_words) -> str:
    """Fill the template, with ``size_words(bytes)`` saying how many bytes the filled page has: the words change the
    size, so fill again until the size they state is the page's."""
    page_bytes = 0
    for _ in range(10):
        page = _fill(template, {**fields, "SIZE": html.escape(size_words(page_bytes))})
        if len(page.encode()) == page_bytes:
            return page
        page_bytes = len(page.encode())
    raise RuntimeError("the page's size did not settle")  # the digits of the size settle in two or three rounds


def format_size(n_bytes: int, lang: str | None = "en") -> str:
    """1234567 -> '1.23 MB', 45678 -> '45.7 kB' (decimal units, as browsers and file managers show them); in
    ``lang``'s number style (English by default: the command's own messages are English)."""
    if n_bytes >= 1_000_000:
        return format_text("{size:.2f} MB", lang, size=n_bytes / 1_000_000)
    if n_bytes >= 1_000:
        return format_text("{size:.1f} kB", lang, size=n_bytes / 1_000)
    return format_text("{size} bytes", lang, size=n_bytes)

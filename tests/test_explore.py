"""``scratchae explore``: the page's JavaScript decoder against NumPy's (under Node), the page in headless Chromium
(pointer, touch, click-click walk, no console error, no network), its size, and the models it refuses."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy
import pytest

from scratchae import builders, data, models
from scratchae.cli import main
from scratchae.cli.explore import PLOT, WALK_STEPS, ExploreError, explorable_decoder, explorer_page
from scratchae.layers import Dense, Identity, Layer, ReLU, Sequential, Sigmoid
from scratchae.losses import MSELoss, VAELoss
from scratchae.optim import Adam
from scratchae.training import fit

#: Flags that keep a headless Chromium, run as root, off the network and away from the user's profile.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1100")


def run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.fixture(scope="module")
def vae(digits):
    """A 2-d VAE, 64-32-(2, 2), decoder 2-32-64, trained a few epochs on the 8 x 8 digits."""
    model = builders.variational_autoencoder(2, hidden_dim=32, input_dim=64, seed=0)
    fit(model, VAELoss("bce"), Adam(model.parameters(), lr=3e-3), digits.x_train, epochs=5, batch_size=64,
        progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def autoencoder(digits):
    """The simple autoencoder with a 2-number code, trained a few epochs on the 8 x 8 digits."""
    model = builders.simple_autoencoder(2, input_dim=64, hidden_dim=32, seed=1)
    fit(model, MSELoss(), Adam(model.parameters(), lr=3e-3), digits.x_train, epochs=5, batch_size=64, progress=False)
    return model


def with_identity():
    """An untrained autoencoder whose decoder holds every layer the page knows: Dense, Identity, ReLU, Sigmoid."""
    rng = numpy.random.default_rng(3)
    encoder = Sequential([Dense(64, 2, rng=rng)])
    decoder = Sequential([Dense(2, 24, rng=rng), Identity(), Dense(24, 16, rng=rng), ReLU(), Dense(16, 64, rng=rng),
                          Sigmoid()])
    return models.Autoencoder(encoder, decoder)


def page_for(model, digits, n=300) -> str:
    return explorer_page(model, digits.x_test[:n], digits.y_test[:n], image_shape=digits.image_shape,
                         class_names=digits.class_names, title="a test model")


def script(page: str, script_id: str) -> str:
    """The text of the page's ``<script id=...>``."""
    match = re.search(rf'<script[^>]*id="{script_id}"[^>]*>(.*?)</script>', page, flags=re.DOTALL)
    assert match, f"the page has no script {script_id}"
    return match.group(1)


def numpy_decode(model, codes) -> numpy.ndarray:
    """codes (N, 2) -> the NumPy decoder's images (N, D), in float32 as the model computes."""
    return model.decode(numpy.asarray(codes, dtype=numpy.float32))


FIXED_CODES = numpy.concatenate([numpy.random.default_rng(7).normal(0.0, 1.5, size=(47, 2)),
                                 [[0.0, 0.0], [9.0, -9.0], [-40.0, 25.0]]]).astype(numpy.float32)  # (50, 2)


# --------------------------------------------------------------------------------------------------------------------
# The JavaScript decoder against NumPy's, under Node
# --------------------------------------------------------------------------------------------------------------------


def decode_in_node(page: str, codes, tmp_path) -> numpy.ndarray:
    """Run the page's decoder script, as it is in the page, under Node on ``codes`` (N, 2) -> images (N, D)."""
    layers = json.loads(script(page, "page-data"))["decoder"]
    program = (script(page, "decoder")
               + f"\nconst codes = {json.dumps(numpy.asarray(codes).tolist())};\n"
               + f"const decoder = decoderFromLayers({json.dumps(layers)});\n"
               + "const images = decoder.forward({shape: [codes.length, 2], data: Float64Array.from(codes.flat())});\n"
               + "process.stdout.write(JSON.stringify({shape: images.shape, data: Array.from(images.data)}));\n")
    path = tmp_path / "decode.js"
    path.write_text(program)
    done = subprocess.run(["node", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    images = json.loads(done.stdout)
    return numpy.array(images["data"]).reshape(images["shape"])


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed (apt-get install "
                                                                     "nodejs): the page's decoder cannot be run")


@needs_node
@pytest.mark.parametrize("name", ["vae", "autoencoder", "with_identity"])
def test_the_pages_javascript_decoder_draws_what_numpy_draws(name, request, digits, tmp_path):
    model = with_identity() if name == "with_identity" else request.getfixturevalue(name)
    page = page_for(model, digits)
    from_javascript = decode_in_node(page, FIXED_CODES, tmp_path)
    from_numpy = numpy_decode(model, FIXED_CODES)
    assert from_javascript.shape == from_numpy.shape == (50, 64)
    assert numpy.abs(from_javascript - from_numpy).max() < 1e-5
    assert from_numpy.std(axis=0).max() > 0.05  # the codes draw different images: the comparison is not of constants


def test_the_page_holds_the_codes_and_labels_of_the_test_images(vae, digits):
    page = page_for(vae, digits, n=120)
    page_data = json.loads(script(page, "page-data"))
    codes = numpy.frombuffer(base64.b64decode(page_data["codes"]), dtype="<f4").reshape(-1, 2)
    labels = numpy.frombuffer(base64.b64decode(page_data["labels"]), dtype=numpy.uint8)
    numpy.testing.assert_array_equal(codes, vae.encode(digits.x_test[:120]))  # mu, with no sampling
    numpy.testing.assert_array_equal(labels, digits.y_test[:120])
    assert page_data["class_names"] == list(digits.class_names) and page_data["image_shape"] == [8, 8]
    low, high = page_data["view"]["z1"]
    assert low < codes[:, 0].min() and codes[:, 0].max() < high  # every dot is on the plane
    assert "its mean code mu" in page


def test_the_chapters_page_is_under_2_mb_states_its_own_size_and_needs_no_network():
    mnist = data.load("mnist-5k")
    model = builders.variational_autoencoder(2, seed=0)  # the chapter's 784-400-2 VAE: its decoder has 315,584 weights
    page = explorer_page(model, mnist.x_test, mnist.y_test, image_shape=mnist.image_shape, title="the VAE chapter")
    size = len(page.encode())
    assert size < 2_000_000
    stated = re.search(r"This page is ([\d.]+) MB \(([\d,]+) bytes\)", page)
    assert stated and int(stated.group(2).replace(",", "")) == size and stated.group(1) == f"{size / 1e6:.2f}"
    assert "315,584 weights" in page and "1,000 codes" in page
    assert not re.search(r"https?://|<link|\ssrc=|@import|fetch\(|XMLHttpRequest", page)


# --------------------------------------------------------------------------------------------------------------------
# The command, and what it refuses
# --------------------------------------------------------------------------------------------------------------------


def test_explore_writes_the_page_of_a_run_from_its_own_test_set(tmp_path, capsys, digits):
    out = tmp_path / "vae"
    assert run(["train", "--model", "vae", "--latent-dim", "2", "--data", "digits", "--epochs", "2",
                "--device", "cpu", "--out", str(out)]) == 0
    assert run(["explore", str(out), "--points", "100"]) == 0
    assert f"saved {out / 'explorer.html'}" in capsys.readouterr().out
    page = (out / "explorer.html").read_text(encoding="utf-8")
    assert '<p class="subtitle">vae on digits, 2 epochs &middot; Decoder: Dense(2 \u2192 400) \u2192 ReLU' in page
    labels = base64.b64decode(json.loads(script(page, "page-data"))["labels"])
    assert list(labels) == list(digits.y_test[:100])

    elsewhere = tmp_path / "pages" / "mine.html"
    assert run(["explore", str(out / "model.npz"), "--out", str(elsewhere)]) == 0
    assert len(base64.b64decode(json.loads(script(elsewhere.read_text(), "page-data"))["labels"])) == len(digits.y_test)


@pytest.mark.parametrize("model, message", [
    ("simple", "this model's codes have 32 numbers; train one with --latent-dim 2"),
    ("classifier", "a Classifier has no decoder"),
])
def test_explore_refuses_a_model_it_cannot_show_in_one_line(model, message, tmp_path, capsys):
    out = tmp_path / model
    assert run(["train", "--model", model, "--data", "digits", "--epochs", "1", "--device", "cpu",
                "--train-size", "100", "--out", str(out)]) == 0
    capsys.readouterr()
    assert run(["explore", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not (out / "explorer.html").exists()


def test_explore_of_a_folder_without_a_run_says_so(tmp_path, capsys):
    assert run(["explore", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"scratchae: error: no checkpoint at {tmp_path / 'model.npz'}"


def test_a_decoder_with_a_layer_the_page_does_not_know_is_refused():
    class Tanh(Layer):
        def forward(self, x):
            return numpy.tanh(x)

    model = with_identity()
    model.decoder.layers[1] = Tanh()
    with pytest.raises(ExploreError, match="layer 1 is a Tanh"):
        explorable_decoder(model)


# --------------------------------------------------------------------------------------------------------------------
# In a real browser: Debian's Chromium, headless, driven by Selenium through the system's chromedriver
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A headless Chromium that keeps its console log; skipped where none is installed."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    yield session
    session.quit()


def open_page(chromium, path):
    """Open ``path`` from the disk and wait for the page to draw itself."""
    from selenium.webdriver.support.ui import WebDriverWait

    chromium.get(path.as_uri())
    WebDriverWait(chromium, 20).until(lambda b: b.execute_script("return document.body.dataset.ready === 'true'"))
    chromium.get_log("browser")  # from here on, the log holds this page's messages only


def canvas_pixels(chromium, selector: str) -> list[numpy.ndarray]:
    """The gray level (0-255) of every pixel drawn in each canvas matching ``selector``, as (rows, columns)."""
    found = chromium.execute_script("""
        return Array.from(document.querySelectorAll(arguments[0]), canvas => ({
            rows: canvas.height, columns: canvas.width, code: JSON.parse(canvas.dataset.code),
            rgba: Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data)}));
    """, selector)
    images = []
    for canvas in found:
        rgba = numpy.array(canvas["rgba"]).reshape(canvas["rows"], canvas["columns"], 4)
        assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 3] == 255).all()  # gray and opaque
        images.append((numpy.array(canvas["code"]), rgba[..., 0]))
    return images


def place(fraction_right: float, fraction_up: float) -> tuple[int, int]:
    """A pixel of the plane (from its top left corner) at these fractions of the axes' box."""
    width = PLOT["width"] - PLOT["left"] - PLOT["right"]
    height = PLOT["height"] - PLOT["top"] - PLOT["bottom"]
    return round(PLOT["left"] + fraction_right * width), round(PLOT["top"] + (1 - fraction_up) * height)


def code_at(view: dict, pixel: tuple[int, int]) -> numpy.ndarray:
    """The code that the axes put at a pixel of the plane (worked out here, not by the page)."""
    width = PLOT["width"] - PLOT["left"] - PLOT["right"]
    height = PLOT["height"] - PLOT["top"] - PLOT["bottom"]
    (left, right), (bottom, top) = view["z1"], view["z2"]
    return numpy.array([left + (pixel[0] - PLOT["left"]) / width * (right - left),
                        top - (pixel[1] - PLOT["top"]) / height * (top - bottom)])


def one_pixel(view: dict) -> numpy.ndarray:
    """How far apart the codes of two neighbouring pixels are, on each axis."""
    width = PLOT["width"] - PLOT["left"] - PLOT["right"]
    height = PLOT["height"] - PLOT["top"] - PLOT["bottom"]
    return numpy.array([(view["z1"][1] - view["z1"][0]) / width, (view["z2"][1] - view["z2"][0]) / height])


def gray_levels(model, code, shape) -> numpy.ndarray:
    """The NumPy decoding of ``code`` as the page should draw it: 0-255, (rows, columns)."""
    return numpy.round(255 * numpy_decode(model, [code])[0].astype(numpy.float64)).reshape(shape)


def console_errors(chromium) -> list[str]:
    return [entry["message"] for entry in chromium.get_log("browser") if entry["level"] == "SEVERE"]


def offset_from_centre(pixel):
    """Selenium moves to an offset from an element's centre; the plane's pixel as such an offset."""
    return pixel[0] - PLOT["width"] // 2, pixel[1] - PLOT["height"] // 2


def assert_every_dot_sits_on_its_code(chromium, view):
    """Each test image's dot is drawn where the axes put its code, and the last one drawn has its label's colour."""
    found = chromium.execute_script("""
        const canvas = document.getElementById("points");
        return {ratio: canvas.width / parseFloat(canvas.style.width),
                rgba: Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data)};
    """)
    assert found["ratio"] == 1
    plane = numpy.array(found["rgba"]).reshape(PLOT["height"], PLOT["width"], 4)
    page_data = json.loads(chromium.execute_script("return document.getElementById('page-data').textContent"))
    codes = numpy.frombuffer(base64.b64decode(page_data["codes"]), dtype="<f4").reshape(-1, 2)
    pixel = numpy.floor([code_to_pixel(view, code) for code in codes]).astype(int)  # (n, 2): column, row
    colours = plane[pixel[:, 1], pixel[:, 0], :3]  # (n, 3)
    assert (colours.min(axis=1) < 200).all()  # no dot's place is left white
    last_label = numpy.frombuffer(base64.b64decode(page_data["labels"]), dtype=numpy.uint8)[-1]
    tab10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
             "#17becf"]
    expected = numpy.array([int(tab10[last_label][i:i + 2], 16) for i in (1, 3, 5)])
    # drawn at alpha 0.75 over whatever was there: 0.75 of the colour, plus up to 0.25 of white
    assert (0.75 * expected - 2 <= colours[-1]).all() and (colours[-1] <= 0.75 * expected + 0.25 * 255 + 2).all()


def code_to_pixel(view: dict, code) -> tuple[float, float]:
    width = PLOT["width"] - PLOT["left"] - PLOT["right"]
    height = PLOT["height"] - PLOT["top"] - PLOT["bottom"]
    (left, right), (bottom, top) = view["z1"], view["z2"]
    return (PLOT["left"] + (code[0] - left) / (right - left) * width,
            PLOT["top"] + (top - code[1]) / (top - bottom) * height)


def test_in_chromium_the_pointer_draws_the_decoders_image_of_the_code_under_it(chromium, vae, digits, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path = tmp_path / "explorer.html"
    path.write_text(page_for(vae, digits), encoding="utf-8")
    open_page(chromium, path)
    view = json.loads(chromium.find_element(By.ID, "page-data").get_attribute("textContent"))["view"]
    overlay = chromium.find_element(By.ID, "overlay")
    drawn = []
    for fractions in [(0.2, 0.3), (0.5, 0.5), (0.85, 0.7)]:
        pixel = place(*fractions)
        ActionChains(chromium).move_to_element_with_offset(overlay, *offset_from_centre(pixel)).perform()
        [(code, image)] = canvas_pixels(chromium, "#digit")
        assert numpy.all(numpy.abs(code - code_at(view, pixel)) <= one_pixel(view))  # the code under the pointer
        assert image.shape == (8, 8)
        assert numpy.abs(image - gray_levels(vae, code, (8, 8))).max() <= 1  # 1: float64 against float32 rounding
        readout = chromium.find_element(By.ID, "code-readout").text
        assert readout == f"z = ({code[0]:.2f}, {code[1]:.2f})"
        drawn.append(image)
    assert not numpy.array_equal(drawn[0], drawn[2])  # the image follows the pointer
    assert_every_dot_sits_on_its_code(chromium, view)
    assert console_errors(chromium) == []
    assert chromium.execute_script("return performance.getEntriesByType('resource').length") == 0  # no fetches


def test_in_chromium_two_clicks_draw_the_walk_between_them(chromium, autoencoder, digits, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path = tmp_path / "explorer.html"
    path.write_text(page_for(autoencoder, digits), encoding="utf-8")
    open_page(chromium, path)
    view = json.loads(chromium.find_element(By.ID, "page-data").get_attribute("textContent"))["view"]
    assert canvas_pixels(chromium, "#walk-row canvas") == []
    overlay = chromium.find_element(By.ID, "overlay")
    start, end = place(0.1, 0.15), place(0.9, 0.8)
    (ActionChains(chromium).move_to_element_with_offset(overlay, *offset_from_centre(start)).click()
     .move_to_element_with_offset(overlay, *offset_from_centre(end)).click().perform())

    row = canvas_pixels(chromium, "#walk-row canvas")
    assert len(row) == WALK_STEPS
    first, last = row[0][0], row[-1][0]
    assert numpy.all(numpy.abs(first - code_at(view, start)) <= one_pixel(view))
    assert numpy.all(numpy.abs(last - code_at(view, end)) <= one_pixel(view))
    for step, (code, image) in enumerate(row):
        t = step / (WALK_STEPS - 1)
        numpy.testing.assert_allclose(code, (1 - t) * first + t * last, atol=1e-12)  # evenly spaced on the segment
        assert numpy.abs(image - gray_levels(autoencoder, code, (8, 8))).max() <= 1
    assert not numpy.array_equal(row[0][1], row[-1][1])
    assert "From A = " in chromium.find_element(By.ID, "walk-help").text
    assert console_errors(chromium) == []


def test_in_chromium_a_finger_moving_on_the_plane_draws_as_the_pointer_does(chromium, vae, digits, tmp_path):
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    path = tmp_path / "explorer.html"
    path.write_text(page_for(vae, digits), encoding="utf-8")
    open_page(chromium, path)
    view = json.loads(chromium.find_element(By.ID, "page-data").get_attribute("textContent"))["view"]
    overlay = chromium.find_element(By.ID, "overlay")
    touched, lifted = place(0.3, 0.6), place(0.7, 0.25)
    finger = ActionBuilder(chromium, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
    (finger.pointer_action.move_to(overlay, *offset_from_centre(touched)).pointer_down()
     .move_to(overlay, *offset_from_centre(lifted)).pointer_up())
    finger.perform()
    [(code, image)] = canvas_pixels(chromium, "#digit")
    assert numpy.all(numpy.abs(code - code_at(view, lifted)) <= one_pixel(view))
    assert numpy.abs(image - gray_levels(vae, code, (8, 8))).max() <= 1
    assert console_errors(chromium) == []


# --------------------------------------------------------------------------------------------------------------------
# The demos' pages in the gallery
# --------------------------------------------------------------------------------------------------------------------


def test_the_gallery_links_a_demos_explorer_page_and_the_check_wants_it(tmp_path):
    from scratchae.cli import demo as demo_command, gallery

    out = tmp_path / "outputs"
    (out / "vae").mkdir(parents=True)
    page = "18_vae_explorer.html"
    metrics = {"demo": "vae", "figures": [], "pages": [{"file": page, "caption": "Walk <through> the plane"}]}
    (out / "vae" / "metrics.json").write_text(json.dumps(metrics))
    text = gallery.write_index(out).read_text()
    assert f'<a href="vae/{page}">' in text and "Walk &lt;through&gt; the plane" in text
    assert f"{out / 'vae' / page}: missing or not an HTML page" in demo_command.check_outputs(out, ["vae"])

    (out / "vae" / page).write_text("<!DOCTYPE html>\n<html></html>\n")
    assert not [problem for problem in demo_command.check_outputs(out, ["vae"]) if page in problem]

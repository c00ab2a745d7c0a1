"""The README's picture of ``scratchae explore``, taken by a headless Chromium from the page itself.

    scratchae train --model vae --latent-dim 2 --kl-warmup 5 --epochs 60 --out runs/vae-2d
    python docs/explorer_screenshot.py runs/vae-2d docs/explorer.png

Writes the run's page, opens it from the disk in Debian's Chromium (through Selenium and the system's
chromedriver), rests the pointer on the median code of the 0s, clicks the median codes of the 1s and of the 7s to draw
the walk between them, and saves what the browser shows.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import tempfile
from pathlib import Path

import numpy
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from scratchae.cli import main
from scratchae.cli.explore import PLOT

#: As in tests/test_explore.py: a headless Chromium, run as root, kept off the network and away from any profile.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1150,1220")


def offset_of(code, view) -> tuple[int, int]:
    """The offset from the plane's centre of the pixel where the axes put ``code``."""
    width = PLOT["width"] - PLOT["left"] - PLOT["right"]
    height = PLOT["height"] - PLOT["top"] - PLOT["bottom"]
    (left, right), (bottom, top) = view["z1"], view["z2"]
    x = PLOT["left"] + (code[0] - left) / (right - left) * width
    y = PLOT["top"] + (top - code[1]) / (top - bottom) * height
    return round(x - PLOT["width"] / 2), round(y - PLOT["height"] / 2)


def main_(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out", nargs="?", default="docs/explorer.png")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "explorer.html"
        if main(["explore", arguments.run_dir, "--out", str(page)]) != 0:
            raise SystemExit(1)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={folder}/profile"):
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options,
                                   service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
        try:
            browser.get(page.as_uri())
            WebDriverWait(browser, 20).until(lambda b: b.execute_script("return document.body.dataset.ready"))
            data = json.loads(browser.find_element(By.ID, "page-data").get_attribute("textContent"))
            codes = numpy.frombuffer(base64.b64decode(data["codes"]), dtype="<f4").reshape(-1, 2)
            labels = numpy.frombuffer(base64.b64decode(data["labels"]), dtype=numpy.uint8)
            middle = {label: numpy.median(codes[labels == label], axis=0) for label in (0, 1, 7)}
            overlay = browser.find_element(By.ID, "overlay")
            (ActionChains(browser).move_to_element_with_offset(overlay, *offset_of(middle[1], data["view"])).click()
             .move_to_element_with_offset(overlay, *offset_of(middle[7], data["view"])).click()
             .move_to_element_with_offset(overlay, *offset_of(middle[0], data["view"])).perform())
            browser.save_screenshot(arguments.out)
            picture = Image.open(arguments.out).convert("RGB").quantize(256, dither=Image.Dither.NONE)  # a small file
            picture.save(arguments.out, optimize=True)
        finally:
            browser.quit()
    print(f"saved {arguments.out}")


if __name__ == "__main__":
    main_()

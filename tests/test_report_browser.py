"""The report of a demo run in headless Chromium: no console errors, every image loaded, the time
slider changes the frame, the movie has a duration, and the screenshot is not blank.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it when missing), driven by
Playwright without a downloaded browser. The test skips, saying why, only where either is absent.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import invoke
from tomotime.demo import run_demo

pytestmark = pytest.mark.slow


def _chromium() -> str:
    for candidate in (os.environ.get("TOMOTIME_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    pytest.skip("no Chromium found (install Debian's 'chromium' package, as .ci/run does, "
                "or set TOMOTIME_CHROMIUM)")


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "demo"
    run_demo(out, size=16, steps=12, window=6, iterations=3, dipster_steps=60, progress=False, echo=lambda _: None)
    return out


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:80]}"))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, problems


def test_demo_report_renders_in_headless_chromium(browser, demo_run, tmp_path):
    report = demo_run / "report.html"
    assert report.is_file()
    page, problems = _open(browser, report)

    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(images) >= 8
    assert all(complete and width > 0 for complete, width, _ in images), images

    frame = page.locator("img.slider-frame").first
    label = page.locator("#time-label")
    first_src, first_label = frame.get_attribute("src"), label.text_content()
    page.eval_on_selector("#time-slider", "s => { s.value = s.max; s.dispatchEvent(new Event('input')); }")
    assert frame.get_attribute("src") != first_src
    assert label.text_content() != first_label and label.text_content().startswith("t = 11 s")
    assert page.evaluate("document.querySelector('img.slider-frame').naturalWidth") > 0

    page.wait_for_function("document.getElementById('movie').readyState >= 1", timeout=15000)
    assert page.evaluate("document.getElementById('movie').duration") > 0

    shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L")
    pixels = np.asarray(shot)
    assert shot.size[1] > 2000  # every section laid out, one under the other
    assert pixels.std() > 20 and len(np.unique(pixels)) > 64
    shot.save(tmp_path / "report.png")
    page.close()
    assert problems == []


def test_movie_command_output_plays_in_chromium(browser, demo_run, tmp_path):
    movie = tmp_path / "movie.mp4"
    result = invoke("movie", demo_run / "volumes_sirt.h5", "--slice", "xz", "--out", movie)
    assert result.exit_code == 0, result.output
    page_file = tmp_path / "movie.html"
    page_file.write_text(f'<!DOCTYPE html><video id="movie" muted src="{movie.name}"></video>')
    page, problems = _open(browser, page_file)
    page.wait_for_function("document.getElementById('movie').readyState >= 1", timeout=15000)
    duration = page.evaluate("document.getElementById('movie').duration")
    assert duration == pytest.approx(12 / 10, abs=0.15)  # 12 time points at 10 frames per second
    page.close()
    assert problems == []

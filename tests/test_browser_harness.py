"""The browser harness can fail: each check is shown to catch what it is for, on tiny local pages.

One headless Chromium serves the whole module (the ``browser`` fixture); a test that needs it is skipped,
saying how to enable it, where Chromium, ChromeDriver or selenium is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.browser import VIEWPORT, missing_reason


def page(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>")
    return path


def test_clean_page_has_no_errors_and_no_requests(browser, tmp_path):
    browser.open(page(tmp_path, "<h1>Hello</h1><img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='>"))
    assert browser.console_errors() == []
    assert browser.network_requests() == []
    assert browser.find("h1").text == "Hello"


def test_console_error_and_uncaught_exception_are_severe(browser, tmp_path):
    body = "<script>console.error('x-logged-error'); throw new Error('y-thrown-error');</script>"
    browser.open(page(tmp_path, body))
    errors = browser.console_errors()
    assert any("x-logged-error" in e for e in errors), errors
    assert any("y-thrown-error" in e for e in errors), errors
    # a new page starts with an empty log
    browser.open(page(tmp_path, "<p>fine</p>", name="clean.html"))
    assert browser.console_errors() == []


def test_network_requests_count_failed_ones(browser, tmp_path):
    image, script = "http://127.0.0.1:9/x.png", "https://cdn.example.invalid/lib.js"
    browser.open(page(tmp_path, f"<img src='{image}'><script src='{script}'></script>"))
    requests = browser.network_requests()
    assert image in requests and script in requests, requests
    # asking again does not lose them
    assert set(browser.network_requests()) >= {image, script}


def test_wait_for_returns_or_fails_naming_the_expression(browser, tmp_path):
    browser.open(page(tmp_path, "<script>setTimeout(() => { window.ready = 42; }, 100);</script>"))
    assert browser.wait_for("window.ready", timeout=5) == 42
    with pytest.raises(AssertionError, match="window.neverSet === true"):
        browser.wait_for("window.neverSet === true", timeout=0.3)


def test_first_paint_and_load_times(browser, tmp_path):
    browser.open(page(tmp_path, "<h1>Visible text</h1>"))
    first_paint = browser.first_paint_ms()
    assert first_paint is not None and first_paint > 0
    assert browser.load_ms() > 0


def test_hover_and_click_on_a_canvas(browser, tmp_path):
    body = """<canvas id="c" width="200" height="100" style="margin: 30px"></canvas><script>
      const c = document.getElementById('c');
      c.addEventListener('mousemove', e => { window.at = [e.offsetX, e.offsetY]; });
      c.addEventListener('click', e => { window.clicked = [e.offsetX, e.offsetY]; });
    </script>"""
    browser.open(page(tmp_path, body))
    browser.hover("#c", x=20, y=70)
    assert browser.wait_for("window.at") == [20, 70]
    browser.click(browser.find("#c"), x=150, y=10)
    assert browser.wait_for("window.clicked") == [150, 10]


def test_screenshots_are_pngs_of_the_viewport_or_the_whole_page(browser, tmp_path):
    browser.open(page(tmp_path, "<div style='height: 3000px; background: rgb(255, 0, 0)'></div>"))
    scale = browser.execute("return window.devicePixelRatio")
    viewport = Image.open(browser.screenshot(tmp_path / "viewport.png"))
    assert viewport.format == "PNG"
    assert viewport.size == (VIEWPORT[0] * scale, VIEWPORT[1] * scale)
    assert viewport.convert("RGB").getpixel((100, 100)) == (255, 0, 0)
    whole = Image.open(browser.screenshot(tmp_path / "whole.png", full_page=True))
    assert whole.format == "PNG"
    # the body's default 8 px margin above and below the 3000 px block
    assert whole.size == (VIEWPORT[0], 3016)


def test_missing_browser_says_how_to_enable_it(monkeypatch, tmp_path):
    monkeypatch.setenv("RDX_CHROMIUM", str(tmp_path / "no-chromium"))
    reason = missing_reason()
    assert reason is not None and "no-chromium" in reason
    assert "apt-get install chromium chromium-driver" in reason and "pip install selenium" in reason

"""A headless Chromium for end-to-end tests of the pages rdx writes (report.html, opened from file://).

Tests take the ``browser`` fixture (tests/conftest.py): one browser per test module, marked ``browser``
automatically, skipped with a line saying how to enable it when Chromium, ChromeDriver or selenium is
missing. The wrapper answers what a page test asks: did the page log errors, did it reach the network,
how fast did it paint, what does it look like; and it drives the page (find, run JS, hover, click, wait).

Selenium never downloads anything here: the driver and the browser are always given by path (found on
PATH as ``chromedriver`` / ``chromium``, or set with ``RDX_CHROMEDRIVER`` / ``RDX_CHROMIUM``), which
skips Selenium Manager.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

try:
    from selenium import webdriver
    from selenium.common.exceptions import JavascriptException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
except ImportError:  # the fixture skips, saying how to install it
    webdriver = None

log = logging.getLogger(__name__)

ENABLE_HINT = (
    "to run the browser tests: apt-get install chromium chromium-driver, and pip install selenium "
    "(or `make test`, which installs selenium); RDX_CHROMIUM / RDX_CHROMEDRIVER point at other binaries"
)
# The viewport (CSS pixels) every page is shown in, so screenshots and layouts are comparable.
VIEWPORT = (1400, 1000)
# Schemes that stay on this machine; any other request is the page reaching the network.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--hide-scrollbars",  # the page lays out in the full viewport width; screenshots carry no scrollbar
    # containers often have a 64 MB /dev/shm, too small for Chromium's shared memory; /tmp is fine
    "--disable-dev-shm-usage",
    f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
)


def find_binaries() -> tuple[str | None, str | None]:
    """(chromium, chromedriver): the env vars RDX_CHROMIUM / RDX_CHROMEDRIVER if set, else PATH."""
    chromium = os.environ.get("RDX_CHROMIUM") or shutil.which("chromium")
    chromedriver = os.environ.get("RDX_CHROMEDRIVER") or shutil.which("chromedriver")
    return chromium, chromedriver


def missing_reason() -> str | None:
    """Why browser tests cannot run here (with how to enable them), or None when they can."""
    chromium, chromedriver = find_binaries()
    missing = []
    if webdriver is None:
        missing.append("selenium is not installed")
    if not chromium or not Path(chromium).is_file():
        missing.append(f"no Chromium ({chromium or 'chromium not on PATH'})")
    if not chromedriver or not Path(chromedriver).is_file():
        missing.append(f"no ChromeDriver ({chromedriver or 'chromedriver not on PATH'})")
    return f"{'; '.join(missing)}; {ENABLE_HINT}" if missing else None


class Browser:
    """One headless Chromium tab. ``open`` a local file, then ask about or drive the page.

    Logs (console, network) cover everything since the last ``open``; ``driver`` is the selenium
    driver for anything not wrapped here.
    """

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self._console: list[str] = []
        self._requests: list[str] = []

    @classmethod
    def start(cls, chromium: str, chromedriver: str) -> Browser:
        """Start headless Chromium through the given ChromeDriver, with a ``VIEWPORT``-sized page area."""
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        # console messages and the DevTools network events, read back with driver.get_log
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        started = time.perf_counter()
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        browser = cls(driver)
        browser._fit_viewport()
        log.info("headless Chromium started in %.2f s", time.perf_counter() - started)
        return browser

    def _fit_viewport(self) -> None:
        # --window-size sizes the window, not the page area inside it; grow the window by the difference
        inner = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        outer = self.driver.get_window_size()
        self.driver.set_window_size(
            outer["width"] + VIEWPORT[0] - inner[0], outer["height"] + VIEWPORT[1] - inner[1]
        )

    def quit(self) -> None:
        self.driver.quit()

    # --- loading a page and what it did -------------------------------------------------------------

    def open(self, path: str | Path) -> None:
        """Load a local file as ``file://`` and wait until ``document.readyState == "complete"``."""
        url = Path(path).resolve(strict=True).as_uri()
        # leave the previous page first so that its late log entries are dropped, not counted here
        self.driver.get("about:blank")
        self.driver.get_log("browser")
        self.driver.get_log("performance")
        self._console, self._requests = [], []
        self.driver.get(url)
        self.wait_for("document.readyState === 'complete'")

    def console_errors(self) -> list[str]:
        """Messages of the browser log's SEVERE entries since the last ``open``: console.error calls,
        uncaught exceptions, resources that failed to load."""
        for entry in self.driver.get_log("browser"):
            if entry["level"] == "SEVERE":
                self._console.append(entry["message"])
        return list(self._console)

    def network_requests(self) -> list[str]:
        """Every URL the page asked for since the last ``open`` outside file:, data:, blob: and about:,
        in order; a request that failed (refused, unresolvable, blocked port) counts too, since it is
        recorded when it is sent."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
            elif message["method"] == "Network.webSocketCreated":
                url = message["params"]["url"]
            else:
                continue
            if not url.startswith(LOCAL_SCHEMES):
                self._requests.append(url)
        return list(self._requests)

    def first_paint_ms(self, timeout: float = 2.0) -> float | None:
        """First-contentful-paint of the open page in ms after navigation start, or None when the page
        painted no content within ``timeout`` seconds (the entry appears a frame after load)."""
        script = (
            "const e = performance.getEntriesByType('paint')"
            ".find(p => p.name === 'first-contentful-paint'); return e ? e.startTime : null;"
        )
        deadline = time.monotonic() + timeout
        while (value := self.driver.execute_script(script)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return value

    def load_ms(self) -> float:
        """The open page's load event end in ms after navigation start (navigation timing)."""
        # 0 until the load event has finished
        return float(self.wait_for("performance.getEntriesByType('navigation')[0].loadEventEnd"))

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        """Write a PNG of the viewport, or with ``full_page`` of the whole document (its scroll size)."""
        path = Path(path)
        if not full_page:
            self.driver.save_screenshot(str(path))
            return path
        width, height = self.driver.execute_script(
            "const d = document.documentElement;"
            "return [Math.max(d.scrollWidth, innerWidth), Math.max(d.scrollHeight, innerHeight)]"
        )
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    # --- driving the page ---------------------------------------------------------------------------

    def find(self, css: str) -> WebElement:
        """The first element matching a CSS selector (NoSuchElementException when none)."""
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def execute(self, script: str, *args: Any) -> Any:
        """Run JS in the page (``return`` gives a value back; ``arguments[i]`` are ``args``)."""
        return self.driver.execute_script(script, *args)

    def hover(self, target: str | WebElement, x: float | None = None, y: float | None = None) -> None:
        """Move the mouse over an element (a CSS selector or an element): its centre, or the point
        (x, y) in CSS pixels from its top-left corner, e.g. a point on a canvas."""
        self._pointer(target, x, y).perform()

    def click(self, target: str | WebElement, x: float | None = None, y: float | None = None) -> None:
        """Click an element at its centre, or at (x, y) CSS pixels from its top-left corner."""
        self._pointer(target, x, y).click().perform()

    def drag(self, target: str | WebElement, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Press the mouse at ``start`` and release it at ``end`` (CSS pixels from the element's top-left
        corner), moving in a few steps as a hand would: a rectangle drawn on a canvas."""
        actions = self._pointer(target, *start).click_and_hold()
        steps = 4
        for _ in range(steps):
            actions = actions.move_by_offset(
                round((end[0] - start[0]) / steps), round((end[1] - start[1]) / steps)
            )
        actions.release().perform()

    def _pointer(self, target: str | WebElement, x: float | None, y: float | None) -> ActionChains:
        element = self.find(target) if isinstance(target, str) else target
        actions = ActionChains(self.driver)
        if x is None and y is None:
            return actions.move_to_element(element)
        # selenium's offsets start at the element's centre
        size = element.size
        dx = round((x or 0) - size["width"] / 2)
        dy = round((y or 0) - size["height"] / 2)
        return actions.move_to_element_with_offset(element, dx, dy)

    def wait_for(self, js_condition: str, timeout: float = 10.0) -> Any:
        """Poll a JS expression until it is truthy and return its value; AssertionError naming the
        expression after ``timeout`` seconds. An expression that throws counts as not yet true."""
        deadline = time.monotonic() + timeout
        error = None
        while True:
            try:
                value = self.driver.execute_script(f"return ({js_condition});")
                error = None
                if value:
                    return value
            except JavascriptException as exc:
                error = exc.msg
            if time.monotonic() >= deadline:
                detail = f" (last error: {error})" if error else ""
                raise AssertionError(f"timed out after {timeout} s waiting for JS: {js_condition}{detail}")
            time.sleep(0.05)

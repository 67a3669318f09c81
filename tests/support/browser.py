"""Headless Chromium through Selenium, for looking at what reportgen made.

Used by the real-browser test (tests/test_browser.py) and the visual review script
(scripts/review.py); no part of reportgen imports it, and it is not in the wheel. It drives
Debian's ``chromium`` through Debian's ``chromium-driver`` (``/usr/bin/chromedriver``, the same
build as the browser). The driver's path is handed to Selenium's ``Service``, so Selenium Manager
never runs: nothing is looked up or downloaded, and the machine needs no network.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

# The flags the project settled on: no sandbox (CI runs as root), no GPU, nothing fetched in
# the background, no first-run UI; no scrollbars in the screenshots; /tmp rather than a small
# /dev/shm (containers give it 64 MB, and a long report page crashes the renderer there).
# No host name resolves: the pages are local files that fetch nothing, and Chromium's own
# lookups at start (its start page, accounts, updates: ~50 DNS queries a session, seen with
# strace even with --disable-background-networking) never leave the machine.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--hide-scrollbars", "--disable-dev-shm-usage",
         "--host-resolver-rules=MAP * ~NOTFOUND")
CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium", "chromium-browser")
DRIVERS = ("/usr/bin/chromedriver", "chromedriver")
# chromedriver's names for the levels of the browser log, in the words the callers use
LEVELS = {"SEVERE": "error", "WARNING": "warning", "INFO": "info", "DEBUG": "debug"}


class BrowserError(RuntimeError):
    """Chromium or chromedriver is missing, or would not start."""


def _first(names: tuple[str | None, ...]) -> str | None:
    for name in names:
        if name and (path := shutil.which(name)):
            return path
    return None


def find_chromium() -> str | None:
    """The Chromium executable: $REPORTGEN_CHROMIUM, else the Debian package's, else None."""
    return _first((os.environ.get("REPORTGEN_CHROMIUM"), *CHROMIUMS))


def find_chromedriver() -> str | None:
    """chromedriver: $REPORTGEN_CHROMEDRIVER, else Debian's chromium-driver, else None."""
    return _first((os.environ.get("REPORTGEN_CHROMEDRIVER"), *DRIVERS))


def missing() -> str | None:
    """What is missing to drive a browser (a sentence for a skip message), or None."""
    if find_chromium() is None:
        return "Chromium is not installed (apt-get install chromium)"
    if find_chromedriver() is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


class Chromium:
    """One headless Chromium with one page. Use as a context manager.

    ``console`` is every console message, uncaught exception and browser log entry (CSP
    violations, failed loads) so far, as ``(level, text)`` pairs; level is error, warning, info
    or debug.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        chromium, driver = find_chromium(), find_chromedriver()
        if chromium is None or driver is None:
            raise BrowserError(missing())
        self._profile = tempfile.mkdtemp(prefix="reportgen-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*FLAGS, f"--user-data-dir={self._profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=driver, log_output=subprocess.DEVNULL)
        try:
            self.driver = webdriver.Chrome(options=options, service=service)
        except WebDriverException as exc:
            shutil.rmtree(self._profile, ignore_errors=True)
            raise BrowserError(f"Chromium would not start: {exc.msg}") from exc
        self.driver.set_page_load_timeout(timeout)
        self.driver.set_script_timeout(timeout)
        self._console: list[tuple[str, str]] = []

    @property
    def console(self) -> list[tuple[str, str]]:
        # chromedriver hands each log entry out once: keep them all
        for entry in self.driver.get_log("browser"):
            self._console.append((LEVELS.get(entry["level"], entry["level"].lower()),
                                  entry["message"]))
        return list(self._console)

    def cdp(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A DevTools command to the page, through chromedriver (what WebDriver has no word for:
        viewport emulation, colour scheme, full-page screenshots)."""
        return dict(self.driver.execute_cdp_cmd(method, params or {}))

    def open(self, path: Path | str, *, width: int = 1200, height: int = 900,
             dark: bool = False) -> None:
        """Load a local file at a viewport size, in light or dark colour scheme; returns when
        the page's load event has fired."""
        self.cdp("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.cdp("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})
        self.driver.get(Path(path).resolve().as_uri())

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        return self.driver.execute_script(f"return ({expression});")

    def hover(self, css: str) -> None:
        """Move the mouse onto the middle of the first element matching a CSS selector, then one
        pixel on (Vega shows a tooltip on the second move)."""
        element = self.driver.find_element(By.CSS_SELECTOR, css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        ActionChains(self.driver).move_to_element(element).move_by_offset(1, 0).perform()

    def screenshot(self, path: Path | str, *, full_page: bool = True) -> Path:
        """A PNG of the page (the whole length of it with full_page)."""
        out = Path(path)
        if not full_page:
            self.driver.save_screenshot(str(out))
            return out
        size = self.cdp("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.cdp("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}})
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def close(self) -> None:
        try:
            self.driver.quit()  # ends chromedriver and the browser
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

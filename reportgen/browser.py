"""Headless Chromium driven over the DevTools protocol, for looking at what reportgen made.

Used by the visual review script (scripts/review.py) and the real-browser test; a report run
never imports it. It talks to the Debian ``chromium`` package over ``--remote-debugging-pipe``
(commands on the child's fd 3, answers on its fd 4, one JSON message per NUL byte), so it needs
no port, no websocket library and no downloaded browser.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The flags the project settled on: no sandbox (CI runs as root), no GPU, nothing fetched in
# the background, no first-run UI.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-extensions", "--hide-scrollbars",
         "--mute-audio", "--disable-dev-shm-usage")
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium", "chromium-browser")


class BrowserError(RuntimeError):
    """Chromium could not be started, or did not answer in time."""


def find_chromium() -> str | None:
    """The Chromium executable: $REPORTGEN_CHROMIUM, else the Debian package's, else None."""
    for name in (os.environ.get("REPORTGEN_CHROMIUM"), *CANDIDATES):
        if name and (path := shutil.which(name)):
            return path
    return None


class Chromium:
    """One headless Chromium with one page. Use as a context manager.

    ``console`` collects console messages, uncaught exceptions and browser log entries (CSP
    violations, failed loads) as ``(level, text)`` pairs.
    """

    def __init__(self, executable: str | None = None, timeout: float = 60.0) -> None:
        exe = executable or find_chromium()
        if exe is None:
            raise BrowserError("Chromium not found (apt-get install chromium)")
        self.timeout = timeout
        self.console: list[tuple[str, str]] = []
        self._profile = tempfile.mkdtemp(prefix="reportgen-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child, before exec: the pipes become fds 3 and 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self._proc = subprocess.Popen(
            [exe, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=wire,  # before any thread of ours starts
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self._call("Target.attachToTarget",
                                       {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    # -- plumbing

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._from_child, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buf += chunk
                *messages, buf = buf.split(b"\0")
                for raw in messages:
                    self._inbox.put(json.loads(raw))
        self._inbox.put(None)  # the browser went away

    def _take(self, deadline: float) -> dict[str, Any]:
        try:
            msg = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise BrowserError("Chromium did not answer in time") from None
        if msg is None:
            raise BrowserError("Chromium exited")
        return msg

    def _note(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method", ""), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console.append((params["type"], text))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.console.append(("error", text))
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.console.append((entry["level"], entry.get("text", "")))
        self._events.append(msg)

    def _call(self, method: str, params: dict[str, Any] | None = None,
              session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._take(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return dict(reply.get("result", {}))
            self._note(reply)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a DevTools command to the page and return its result."""
        return self._call(method, params, self._session)

    def wait_for(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for an event of the page (``Page.loadEventFired``...)."""
        for i, event in enumerate(self._events):
            if event.get("method") == method:
                return dict(self._events.pop(i).get("params", {}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._take(deadline)
            self._note(msg)
            if msg.get("method") == method:
                self._events.remove(msg)
                return dict(msg.get("params", {}))

    # -- what the callers use

    def open(self, path: Path | str, *, width: int = 1200, height: int = 900,
             dark: bool = False) -> None:
        """Load a local file at a window size, in light or dark colour scheme."""
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.call("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})
        self._events.clear()
        self.call("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression,
                                                "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def screenshot(self, path: Path | str, *, full_page: bool = True) -> Path:
        """A PNG of the page (the whole length of it with full_page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        out = Path(path)
        out.write_bytes(data)
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._to_child)  # Chromium exits when its command pipe closes
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

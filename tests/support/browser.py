"""Headless Chromium driven over the DevTools protocol, for tests that watch a page change over time.

``chromium --dump-dom`` (what the dashboard page's test uses) reads a page once; a live page must be
read at several moments while it runs, its console checked and screenshots taken at set sizes. So
this starts Chromium with ``--remote-debugging-port=0``, reads the port it chose from its profile
folder, and speaks the protocol's JSON messages over the ``websockets`` client.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
T = TypeVar("T")


def require_chromium() -> str:
    """Chromium's path; skips the test without it (fails in CI, which installs it)."""
    if CHROMIUM:
        return CHROMIUM
    reason = "chromium is not installed (apt-get install chromium; .ci/run does it)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test")
    pytest.skip(reason)


class Browser:
    """One headless Chromium with one page (tab), closed by :meth:`close`."""

    def __init__(self, profile: Path, *, width: int = 1280, height: int = 900, timeout_s: float = 30) -> None:
        """Start Chromium on ``about:blank`` and attach to its page."""
        profile.mkdir(parents=True, exist_ok=True)
        port_file = profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        self.console: list[dict[str, Any]] = []  # console calls and uncaught exceptions of the page
        self._ids = itertools.count(1)
        self._process = subprocess.Popen(
            [
                require_chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = wait_for(
                lambda: (
                    port_file.read_text().split()[0]
                    if port_file.is_file() and port_file.read_text()
                    else None
                ),
                timeout_s,
                "Chromium's DevTools port",
            )
            targets = json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read()
            )
            page = next(t for t in targets if t["type"] == "page")
            self._socket: ClientConnection = connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024)
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def call(self, method: str, timeout_s: float = 30, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are recorded)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            raw = self._socket.recv(timeout=max(0.1, deadline - time.monotonic()))
            message = json.loads(raw)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._record(message)

    def _record(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append({"level": params.get("type"), "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.console.append({"level": "exception", "text": text})
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append(
                {"level": entry.get("level"), "text": entry.get("text", ""), "url": entry.get("url")}
            )

    def errors(self) -> list[dict[str, Any]]:
        """Console errors and uncaught exceptions so far."""
        self.evaluate("0")  # drain events that arrived since the last command
        return [c for c in self.console if c["level"] in ("error", "exception", "assert")]

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.call("Page.navigate", url=url)
        wait_for(lambda: self.evaluate("document.readyState") == "complete" or None, 30, f"{url} to load")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, width: int, height: int, mobile: bool = False) -> Path:
        """A PNG of the page at ``width`` CSS pixels (the whole page's height, at least ``height``)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2 if mobile else 1,
            mobile=mobile,
        )
        try:
            # Let layout settle at the new width before measuring the page.
            time.sleep(0.5)  # not an assertion: a screenshot is taken whatever the timing
            full = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
            shot = self.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": width, "height": max(height, full), "scale": 1},
            )
        finally:
            self.call("Emulation.clearDeviceMetricsOverride")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        """Close the connection and end Chromium."""
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.25) -> T:
    """``probe()``'s first non-None answer, or a TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except (OSError, ValueError):
            value = None
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(every_s)

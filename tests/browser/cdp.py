"""A headless Chromium driven over the DevTools protocol, for the operator's page tests.

Debian's ``chromium`` (scripts/install-browser) speaks the protocol itself, so no
WebDriver, no selenium and nothing downloaded: the browser is started with
``--remote-debugging-port=0``, its port read from ``DevToolsActivePort``, and one page
driven over aiohttp's WebSocket client on a loop of its own (a thread), behind a
blocking API for the tests. Console errors (``console.error``, uncaught exceptions, and
the browser's own error entries: a refused script, a failed load) are collected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp
from harness import wait_until

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CALL_TIMEOUT_S = 30.0


def chromium_path() -> str:
    """The browser to run; scripts/install-browser installs Debian's ``chromium``."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("no chromium on PATH: run scripts/install-browser")


class Browser:
    """One headless Chromium with one page (tab), closed by ``close``."""

    def __init__(self, width: int = 1280, height: int = 1000) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="ledgerd-chromium-")
        self._process = subprocess.Popen(
            [
                chromium_path(),
                "--headless=new",
                "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
                "--disable-gpu",
                # Screenshots lay the page out again without a viewport: with no scrollbar
                # its width stays the same.
                "--hide-scrollbars",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A group of its own, so that close can end the renderer and GPU children
            # too: they can outlive the main process and still write to the profile
            # (its "Default" folder) while it is being removed.
            start_new_session=True,
        )
        active = Path(self._profile.name) / "DevToolsActivePort"
        wait_until(
            lambda: active.exists() and len(active.read_text().splitlines()) >= 2,
            30.0,
            "chromium's DevTools port",
        )
        self.port = int(active.read_text().splitlines()[0])
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._run(self._connect())
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    # -- the protocol ----------------------------------------------------------------
    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(CALL_TIMEOUT_S + 5)

    async def _connect(self) -> None:
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{self.port}/json/list") as answer:
            targets = await answer.json()
        page = next(t for t in targets if t["type"] == "page")
        self._socket = await self._session.ws_connect(
            page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024
        )
        self._loop.create_task(self._receive())

    async def _receive(self) -> None:
        assert self._socket is not None
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._on_event(data["method"], data.get("params", {}))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            exception = details.get("exception", {}).get("description", "")
            self.errors.append(f"exception: {details.get('text')} {exception}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            self.errors.append("console.error: " + " ".join(texts))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._socket is not None
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[call_id] = future
        await self._socket.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, CALL_TIMEOUT_S)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result."""
        result: dict[str, Any] = self._run(self._call(method, params))
        return result

    # -- what tests do ---------------------------------------------------------------
    def open(self, url: str, timeout_s: float = 20.0) -> None:
        """Navigate and wait until the document and its scripts have loaded."""
        self.call("Page.navigate", url=url)
        wait_until(
            lambda: (
                self.evaluate("document.readyState") == "complete"
                and self.evaluate("location.href") == url
            ),
            timeout_s,
            f"{url} loaded",
        )

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression in the page (awaited if it is a promise)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float, what: str) -> Any:
        """Until the JS expression is truthy; its value."""
        return wait_until(lambda: self.evaluate(expression), timeout_s, what, interval_s=0.1)

    def text(self, selector: str) -> str:
        value = self.evaluate(
            f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"
        )
        return str(value)

    def fill(self, selector: str, value: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def submit(self, form_selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(form_selector)}).requestSubmit()")

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (its full height)."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        width = int(self.evaluate("document.documentElement.scrollWidth"))
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self._run(self._disconnect())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            _end_browser(self._process.pid, self._profile.name)
            self._profile.cleanup()

    async def _disconnect(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        # Let the receive task see the close.
        await asyncio.sleep(0)


def _browser_processes(group: int, profile: str) -> list[int]:
    """The browser's processes that still run: its group, and any process naming the
    profile in its arguments should one have left the group (a zombie writes nothing).
    The crash handlers leave the group too, but write to ~/.config, not the profile."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            arguments = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        # pid (comm) state ppid pgrp …: comm may hold spaces, so split after its ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        ours = int(fields[2]) == group or profile.encode() in arguments
        if ours and fields[0] != "Z":
            found.append(int(proc.name))
    return found


def _end_browser(group: int, profile: str) -> None:
    """Kill what is left of the browser and wait until none of it runs."""
    for pid in _browser_processes(group, profile):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _browser_processes(group, profile), 10.0, "chromium's processes to exit")

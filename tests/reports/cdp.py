"""Headless Chromium driven over the DevTools protocol on a pipe: no driver, no port, no library.

Chromium started with ``--remote-debugging-pipe`` reads protocol commands from fd 3 and writes
replies and events to fd 4, each a JSON message ended by a NUL byte. That is all a test needs to
open a page, see every request it makes, evaluate an expression and take a screenshot, so this
helper uses the standard library only (no Playwright, chromedriver, Selenium or websocket client).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

#: Flags for a closed network and a throwaway profile: nothing phones home, nothing persists.
QUIET_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """``MOQWK_CHROMIUM`` if set, else the first Chromium-like binary on PATH."""
    env = os.environ.get("MOQWK_CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with one page; use as a context manager (the process is ended)."""

    def __init__(self, binary: str, user_data_dir: Path, *, width: int = 1280,
                 height: int = 900, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._buf = b""
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def to_fds_3_and_4() -> None:  # runs in the child before exec
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [binary, *QUIET_FLAGS, "--remote-debugging-pipe",
                f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}",
                # Belt and braces: any host but this machine resolves to nothing. Requests still
                # show up as events, which is how a test sees an attempt to leave the machine.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        args.append("about:blank")
        # close_fds=False: Python's own descriptors are close-on-exec anyway, and closing "all
        # but 3 and 4" would run after the dup2 above only by an implementation detail.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=to_fds_3_and_4,
                                     close_fds=False)
        os.close(cmd_r)
        os.close(out_w)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width,
                  height=height, deviceScaleFactor=1, mobile=False)

    # ---------------------------------------------------------------- protocol

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._out_r], [], [], left)
            if ready:
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    raise CDPError(f"Chromium exited: {self._stderr_tail()}")
                self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self._send(msg)
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._next_id:
                if "error" in m:
                    raise CDPError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event named ``method`` (already received or still to come)."""
        for e in self.events:
            if e["method"] == method:
                return e
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if "method" in m:
                self.events.append(m)
                if m["method"] == method:
                    return m

    # ---------------------------------------------------------------- page

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """An expression's value (promises awaited), as JSON."""
        r = self.call("Runtime.evaluate", session=True, expression=expression,
                      returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CDPError(f"evaluate failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent"]

    def blocked(self) -> dict[str, str]:
        """URL -> why Chromium stopped it (``blockedReason``, e.g. "csp"), for blocked requests."""
        url = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in self.events
               if e["method"] == "Network.requestWillBeSent"}
        return {url.get(e["params"]["requestId"], "?"): e["params"]["blockedReason"]
                for e in self.events if e["method"] == "Network.loadingFailed"
                and e["params"].get("blockedReason")}

    def log_entries(self) -> list[dict[str, Any]]:
        return [e["params"]["entry"] for e in self.events if e["method"] == "Log.entryAdded"]

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (not only the viewport)."""
        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        r = self.call("Page.captureScreenshot", session=True, format="png",
                      captureBeyondViewport=True,
                      clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                            "scale": 1})
        path.write_bytes(base64.b64decode(r["data"]))
        return path

    # ---------------------------------------------------------------- lifetime

    def _stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return f"exit status {self.proc.poll()}"
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            self._send({"id": self._next_id + 1, "method": "Browser.close", "params": {}})
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

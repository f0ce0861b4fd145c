"""Chromium showing a local page, and the page's live DOM read through the DevTools protocol:
the target and the oracle of browser scenarios.

``PageServer`` serves a directory over HTTP on 127.0.0.1 (a real ``http.server``, in a thread).
``ChromiumApp`` starts Debian's ``chromium`` on the X display as a user would run it: a
normal, maximised browser window with its tabs and address bar, a fresh profile in the app's
temporary HOME, ``--no-first-run --disable-background-networking --disable-component-update
--disable-sync``; as root it needs ``--no-sandbox``, and ``--test-type`` then hides the
"unsupported command-line flag" bar that would otherwise push the page down by 45 px.

The DOM is read over the Chrome DevTools Protocol: ``--remote-debugging-port=0`` (loopback
only; Chromium writes the port it picked to ``DevToolsActivePort`` in its profile) and one
WebSocket to the page (websocket-client), ``Runtime.evaluate`` with ``returnByValue``. That is
lighter than chromedriver/Selenium (no second binary whose version must match, no automation
mode: no "controlled by automated test software" bar, no ``navigator.webdriver``) and reads the
page without acting on it: every input still comes from the agent's real pointer and keys.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import DeviceError
from pixelpilot.scenarios.launch import LaunchedApp
from pixelpilot.scenarios.spec import MISSING
from pixelpilot.tools.x11_windows import X11Windows

__all__ = ["ChromiumApp", "PageServer"]

FLAGS = (
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--password-store=basic", "--start-maximized", "--remote-debugging-port=0",
)  # fmt: skip


_NEXT_FRAME_JS = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"
"""Resolves once the page has produced a frame after the call (two animation frames)."""


class PageServer:
    """``root`` over HTTP on 127.0.0.1 (a free port); a context manager."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    def __enter__(self) -> PageServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


class ChromiumApp(LaunchedApp):
    """Chromium on ``url``, ready once its window is shown and the page has loaded."""

    label = "chromium"

    def __init__(self, url: str, *, display: str | None = None, timeout: float = 60.0) -> None:
        argv = ["chromium", *FLAGS, "--user-data-dir={home}/chromium-profile"]
        if os.geteuid() == 0:
            argv += ["--no-sandbox", "--test-type"]
        super().__init__([*argv, url], "class=chromium", display=display, timeout=timeout)
        self.url = url
        self._ws: Any = None
        self._next_id = 0

    def start(self) -> ChromiumApp:
        """Start Chromium sized to the whole screen: maximised under a window manager, placed
        at (0, 0) with the screen's size without one (where it ends one pixel short)."""
        display = self.display or os.environ.get("DISPLAY") or ""
        windows = X11Windows(display)
        try:
            width, height = windows.screen_size()
            managed = windows.wm_running()
        finally:
            windows.close()
        if not managed:  # nothing would maximise it
            self.argv[1:1] = ["--window-position=0,0", f"--window-size={width},{height}"]
        super().start()
        return self

    def _ready(self, t0: float) -> None:
        super()._ready(t0)
        assert self.root is not None
        port_file = self.root / "home" / "chromium-profile" / "DevToolsActivePort"
        while True:
            with contextlib.suppress(OSError, ValueError, DeviceError):
                if self._ws is None:
                    self._connect(int(port_file.read_text().split()[0]))
                if self.evaluate(self._loaded_js) and self.evaluate(_NEXT_FRAME_JS, wait=True):
                    return
            self._check_running()
            if time.perf_counter() - t0 > self.timeout:
                raise DeviceError(
                    f"chromium did not load {self.url} within {self.timeout:g} s: {self.output()}"
                )
            time.sleep(0.05)

    @property
    def _loaded_js(self) -> str:
        """True once the page itself (not the blank document before it) has loaded in the
        full-screen window: Chromium maps its window at a default size and maximises it a
        moment later, re-laying the page out."""
        return (
            f"document.readyState === 'complete' && location.href === {json.dumps(self.url)} "
            "&& outerWidth >= screen.availWidth - 1 && outerHeight >= screen.availHeight - 1"
        )

    def _connect(self, port: int) -> None:
        import websocket  # websocket-client

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            targets = json.load(r)
        pages = [t for t in targets if t.get("type") == "page" and t.get("url") == self.url]
        if not pages:
            raise DeviceError(f"chromium has no tab on {self.url} yet")
        self._ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=10, suppress_origin=True
        )

    def evaluate(self, expression: str, *, wait: bool = False) -> Any:
        """The JSON value of a JavaScript expression in the page (DeviceError if it throws);
        ``wait``: the expression is a promise, its resolved value."""
        if self._ws is None:
            raise DeviceError("chromium: not connected to the page")
        self._next_id += 1
        msg_id = self._next_id
        self._ws.send(json.dumps({
            "id": msg_id, "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": True, "awaitPromise": wait},
        }))  # fmt: skip
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == msg_id:
                break
        if "error" in reply:
            raise DeviceError(f"chromium: {reply['error'].get('message')}")
        result = reply["result"]
        if "exceptionDetails" in result:
            raise DeviceError(f"chromium: {result['exceptionDetails'].get('text', 'exception')}")
        return result["result"].get("value")

    def dom(self, selector: str, prop: str = "value") -> Any:
        """Property ``prop`` of the first element matching ``selector``; MISSING if none."""
        expr = (
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            f"return e === null ? {{missing: true}} : {{value: e[{json.dumps(prop)}]}}; }})()"
        )
        got = self.evaluate(expr)
        return MISSING if got.get("missing") else got.get("value")

    def viewport_origin(self) -> tuple[int, int]:
        """Where the page's (0, 0) is on the screen, in pixels: the window's position plus the
        browser's own bars above the page (tabs, address bar), for a window without side
        borders (maximised, as started here)."""
        x, y = self.evaluate("[screenX + outerWidth - innerWidth, screenY + outerHeight - innerHeight]")
        return int(x), int(y)

    def rect(self, selector: str) -> tuple[int, int, int, int]:
        """The element's box [x, y, w, h] on the screen (for deriving points)."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()"
        )
        ox, oy = self.viewport_origin()
        return round(box[0]) + ox, round(box[1]) + oy, round(box[2]), round(box[3])

    def stop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()
        super().stop()


def page_dir_and_name(page: str) -> tuple[Path, str]:
    """The directory to serve and the file's name in it."""
    path = Path(page)
    return path.parent, path.name

"""A real, non-headless Chromium on an X display, driven by Selenium's chromedriver.

Debian's ``chromium`` and ``chromium-driver`` packages work under Xvfb. As root Chromium refuses
to start without ``--no-sandbox``. The binaries are found on PATH, or named by the variables the
``miniwob`` package itself reads, ``MINIWOB_CHROME_BINARY`` and ``MINIWOB_CHROMEDRIVER`` (set
together). ``write_wrapper`` writes the small script that gives miniwob's own gymnasium
environments, which take no extra flags, a binary that adds ``--no-sandbox``.

Selenium is used for what a browser benchmark must read (the DOM, the task's reward) and, in the
benchmark's ``--direct`` mode only, for input; an agent acting through pixels never uses it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import ConfigError, DeviceError

__all__ = ["INSTALL_HINT", "Browser", "BrowserConfig", "find_binaries", "write_wrapper"]

INSTALL_HINT = "install them with: apt-get install chromium chromium-driver"

FLAGS = (
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
    "--password-store=basic",  # no keyring prompt
    "--force-device-scale-factor=1",  # CSS px = screen px
    "--disable-smooth-scrolling",  # a wheel click scrolls at once: the screen settles at once
    "--disable-features=Translate,MediaRouter,OptimizationHints",
)
"""Flags for a quiet, reproducible browser: no first-run UI, no network, no animation of scroll."""


def find_binaries() -> tuple[str, str]:
    """(chromium, chromedriver): MINIWOB_CHROME_BINARY/MINIWOB_CHROMEDRIVER, else from PATH."""
    binary = os.environ.get("MINIWOB_CHROME_BINARY")
    driver = os.environ.get("MINIWOB_CHROMEDRIVER")
    if bool(binary) != bool(driver):
        raise ConfigError("set MINIWOB_CHROME_BINARY and MINIWOB_CHROMEDRIVER together, or neither")
    if binary and driver:
        return binary, driver
    binary = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        missing = " and ".join(
            n for n, p in (("chromium", binary), ("chromedriver", driver)) if not p
        )
        raise ConfigError(f"{missing} not found; {INSTALL_HINT}")
    return binary, driver


def write_wrapper(binary: str, folder: str | os.PathLike[str]) -> Path:
    """A script in ``folder`` that runs ``binary`` with ``--no-sandbox`` (needed as root): point
    MINIWOB_CHROME_BINARY at it to use miniwob's own environments."""
    path = Path(folder) / "chromium-no-sandbox"
    path.write_text(f'#!/bin/sh\nexec {_quote(binary)} --no-sandbox "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


@dataclass(frozen=True)
class BrowserConfig:
    """Where the window goes (screen px; nothing manages windows on a bare Xvfb) and its size."""

    x: int = 0
    y: int = 0
    width: int = 400
    height: int = 400


class Browser:
    """One Chromium window in app mode (no tabs, no address bar) on ``display``; a context
    manager. ``driver`` is the Selenium WebDriver once started."""

    def __init__(self, display: str, config: BrowserConfig | None = None) -> None:
        self.display = display
        self.config = config or BrowserConfig()
        self.driver: Any = None
        self._profile: str | None = None

    def start(self, url: str, *, window_class: str | None = None) -> Browser:
        """Start Chromium showing ``url`` (its X window's WM_CLASS ``window_class`` if given);
        DeviceError with chromedriver's reason on failure."""
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service

        binary, driver_path = find_binaries()
        self._profile = tempfile.mkdtemp(prefix="pixelpilot-chromium-")
        c = self.config
        opts = webdriver.ChromeOptions()
        opts.binary_location = binary
        args = [*FLAGS, f"--user-data-dir={self._profile}", f"--app={url}",
                f"--window-position={c.x},{c.y}", f"--window-size={c.width},{c.height}"]  # fmt: skip
        if window_class:
            args.append(f"--class={window_class}")
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        for a in args:
            opts.add_argument(a)
        # no "controlled by automated software" bar: it would push the page down
        opts.add_experimental_option("excludeSwitches", ["enable-automation"])
        env = {**os.environ, "DISPLAY": self.display}
        try:
            self.driver = webdriver.Chrome(
                service=Service(executable_path=driver_path, env=env), options=opts
            )
        except WebDriverException as exc:
            self.close()
            first = (exc.msg or str(exc)).strip().splitlines()[0]
            raise DeviceError(f"Chromium did not start on display {self.display}: {first}") from exc
        return self

    def close(self) -> None:
        """Quit Chromium and chromedriver, remove the profile. Safe to call twice."""
        driver, self.driver = self.driver, None
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        profile, self._profile = self._profile, None
        if profile is not None:
            shutil.rmtree(profile, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """chromedriver's process id (Chromium is its child)."""
        service = getattr(self.driver, "service", None)
        proc = getattr(service, "process", None)
        return getattr(proc, "pid", None)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

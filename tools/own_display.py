"""A worker's own X display: a private Xvfb (with the window manager) that this process uses
for everything (``DISPLAY`` and ``XAUTHORITY`` point at it: pyautogui binds the display it
finds when first imported, once per process), held under a lock so no other pixelpilot process
acts on it (``pixelpilot.tools.locks``)."""

from __future__ import annotations

import os

from pixelpilot.tools import locks
from pixelpilot.tools.xvfb import VirtualDisplay, default_wm

__all__ = ["OwnDisplay"]


class OwnDisplay:
    """``width`` x ``height``; ``holder`` says who holds it in the lock (``pixelpilot worker 1
    (miniwob)``). ``start`` returns the display name; ``stop`` is safe to call twice."""

    def __init__(self, width: int, height: int, holder: str) -> None:
        self.size, self.holder = (width, height), holder
        self._vd: VirtualDisplay | None = None
        self._key: str | None = None

    def start(self) -> str:
        if self._vd is None:
            vd = VirtualDisplay(*self.size, wm=default_wm()).start()
            self._vd = vd
            os.environ.update(vd.env)
            self._key = locks.display_key(vd.display)
            locks.claim(self._key, self.holder)
        return self._vd.display

    @property
    def display(self) -> str:
        return self.start() if self._vd is None else self._vd.display

    @property
    def running(self) -> bool:
        return self._vd is not None and self._vd.running

    def stop(self) -> None:
        vd, self._vd = self._vd, None
        if vd is not None:
            vd.stop()
        if self._key is not None:
            locks.release(self._key)
            self._key = None

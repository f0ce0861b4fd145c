"""The simulated phone's data model, shared by the app (phone_app) and its drawing
(phone_render): the installed apps and one on-screen widget."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["APPS", "LAUNCHER", "SCREEN_PACKAGES", "Widget"]

APPS: dict[str, tuple[str, str]] = {
    "com.pixelpilot.signin": ("Sign in", "signin"),
    "com.pixelpilot.shop": ("Shop", "shop"),
    "com.android.settings": ("Settings", "settings"),
    "com.pixelpilot.notes": ("Notes", "notes"),
}
"""Installed apps: package -> (launcher label, first screen)."""
LAUNCHER = "com.android.launcher3"
SCREEN_PACKAGES = {
    **{screen: pkg for pkg, (_, screen) in APPS.items()},
    "home": LAUNCHER, "about": "com.android.settings", "note": "com.pixelpilot.notes",
}  # fmt: skip
"""The package whose activity shows each screen (what ``dumpsys window`` reports in focus)."""


@dataclass(frozen=True)
class Widget:
    """One on-screen element: id, Android class, text and box [x, y, w, h] in screen pixels."""

    id: str
    cls: str
    text: str
    box: tuple[int, int, int, int]
    clickable: bool = True
    long_clickable: bool = False
    checkable: bool = False
    checked: bool = False
    focused: bool = False
    password: bool = False

    def contains(self, x: float, y: float) -> bool:
        bx, by, bw, bh = self.box
        return bx <= x < bx + bw and by <= y < by + bh

    @property
    def center(self) -> tuple[int, int]:
        bx, by, bw, bh = self.box
        return bx + bw // 2, by + bh // 2

"""MiniWoB++ tasks (the ``miniwob`` package, Farama) in one real Chromium window.

The package's own episode control (``SeleniumInstance``: seed, start, utterance, the reward
globals) and reward functions run on a browser this module starts once and reuses for every
task: the package's gymnasium environments start one Chromium per task and take no Chromium
flags. Every episode loads its task page afresh, so an episode depends only on (task, seed), not
on the episodes before it (several tasks leak state across resets on one page).

The task area (instruction on yellow, then the task; 160x210 CSS px) is at the page's top-left.
Where the page lies on the screen is measured, not assumed: the pointer is moved to a known
screen pixel and the page reports where the event landed (``clientX``), which holds whatever the
window manager and Chromium's own bars do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pixelpilot.agent.errors import ConfigError, DeviceError
from pixelpilot.envs.chromium import Browser, BrowserConfig

__all__ = ["Episode", "MiniWoBEnv", "Outcome", "all_tasks", "task_url"]

TASK_SIZE = (160, 210)
WINDOW_CLASS = "pixelpilot-miniwob"
"""The X WM_CLASS of the benchmark's Chromium window (``--class``)."""


def _miniwob() -> Any:
    try:
        import miniwob
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise ConfigError("the miniwob package is missing; run: bash scripts/setup.sh") from exc
    return miniwob


def all_tasks() -> list[str]:
    """Every MiniWoB++ task name the installed package registers (no FlightWoB)."""
    _miniwob()
    import gymnasium

    names = [
        k.split("/", 1)[1].rsplit("-v", 1)[0]
        for k in gymnasium.registry
        if k.startswith("miniwob/")
    ]
    return sorted(n for n in names if not n.startswith("flight."))


def task_url(task: str) -> str:
    """The file:// URL of a task's page in the installed package."""
    from miniwob.selenium_instance import DEFAULT_BASE_URL

    return f"{DEFAULT_BASE_URL}{task}.html"


@dataclass(frozen=True)
class Episode:
    """A started episode: its instruction as the page shows it and the package's fields."""

    task: str
    seed: int
    utterance: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The task's own verdict. ``reward`` is MiniWoB's reward (positive rewards scaled by the
    time left, in most tasks); ``raw_reward`` the same without the time penalty; both 0 until
    ``done``. Success is ``raw_reward > 0``, as the MiniWoB++ papers count it."""

    done: bool
    reward: float
    raw_reward: float
    reason: str | None = None

    @property
    def success(self) -> bool:
        return self.done and self.raw_reward > 0


_PROBE_JS = """
window.__ppProbe = null;
if (!window.__ppProbing) {
  window.__ppProbing = true;
  document.addEventListener('mousemove', function (e) {
    window.__ppProbe = [e.clientX, e.clientY];
  }, {capture: true});
}
return [window.screenX, window.screenY, window.outerHeight - window.innerHeight];
"""


class MiniWoBEnv:
    """MiniWoB++ episodes in one Chromium window on ``display``; a context manager.

    ``episode_seconds`` replaces each task's own time limit (default: keep it, mostly 10 s);
    models slower than a person need more. ``driver`` is the Selenium WebDriver (for reading
    the DOM; the direct mode also acts through it).
    """

    def __init__(
        self,
        display: str,
        *,
        browser: BrowserConfig | None = None,
        episode_seconds: float | None = None,
        data_mode: str = "train",
    ) -> None:
        if episode_seconds is not None and episode_seconds <= 0:
            raise ConfigError(f"episode_seconds must be positive, got {episode_seconds:g}")
        self.display = display
        self.browser = Browser(display, browser or BrowserConfig())
        self.episode_seconds = episode_seconds
        self.data_mode = data_mode
        self.episode: Episode | None = None
        self._instance: Any = None
        self._origin: tuple[int, int] | None = None
        self._window_at: tuple[int, int] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> MiniWoBEnv:
        if self.browser.driver is None:
            self.browser.start(task_url("click-test"), window_class=WINDOW_CLASS)
            self._wait_loaded()
        return self

    def close(self) -> None:
        self.browser.close()
        self._instance = None

    def __enter__(self) -> MiniWoBEnv:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def driver(self) -> Any:
        if self.browser.driver is None:
            raise DeviceError(
                "the MiniWoB browser is not open; use MiniWoBEnv as a context manager"
            )
        return self.browser.driver

    # -- episodes --------------------------------------------------------------------------------
    def reset(self, task: str, seed: int) -> Episode:
        """Load ``task`` afresh, seed it and start an episode; returns its instruction."""
        from miniwob.selenium_instance import SeleniumInstance

        driver = self.driver
        inst = SeleniumInstance(index=0, subdomain=task, headless=False, data_mode=self.data_mode)
        inst.driver = driver  # the package's episode control, on this browser
        inst.record_screenshots = False
        driver.get(inst.url)
        self._wait_loaded()
        if self.episode_seconds is not None:
            driver.execute_script(f"core.EPISODE_MAX_TIME = {int(self.episode_seconds * 1000)};")
        inst.begin_task(seed=seed)
        # once the episode ends, the page shows a START cover whose click starts a new episode
        # (and resets the reward): an agent that acts on after the end must not do that
        driver.execute_script("if (core.cover_div) { core.cover_div.onclick = null; }")
        obs, _ = inst.get_observation(use_cached_fields=False)
        self._instance = inst
        self.episode = Episode(task, seed, obs["utterance"], dict(obs["fields"]))
        return self.episode

    def outcome(self) -> Outcome:
        """The current episode's verdict, read from the page."""
        from miniwob.reward import get_original_reward, get_raw_reward

        if self._instance is None:
            raise DeviceError("no episode has started; call reset(task, seed) first")
        meta = self._instance.get_metadata()
        return Outcome(
            done=bool(meta["done"]),
            reward=get_original_reward(meta),
            raw_reward=get_raw_reward(meta),
            reason=None if meta.get("reason") is None else str(meta["reason"]),
        )

    def _wait_loaded(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.driver.execute_script(
                "return document.readyState === 'complete' && typeof core !== 'undefined' "
                "&& core.cover_div !== null;"
            ):
                return
            time.sleep(0.02)
        raise DeviceError(f"the MiniWoB page did not load within {timeout:g} s")

    # -- where the page is on the screen ---------------------------------------------------------
    def page_origin(self, probe: Any = None) -> tuple[int, int]:
        """Screen pixel of the page's (0, 0). Measured once with ``probe(x, y)`` (moves the real
        pointer to screen pixel (x, y); default: an XTEST warp), again if the window moved."""
        sx, sy, bars = self.driver.execute_script(_PROBE_JS)
        if self._origin is not None and self._window_at == (sx, sy):
            self.driver.execute_script("window.__ppProbe = null;")
            return self._origin
        x, y = sx + 40, sy + bars + 40
        (probe or self._warp)(x, y)
        start = time.monotonic()
        deadline, again, seen = start + 6.0, start + 1.0, None
        while True:  # the last motion event the page saw, once it stops changing
            time.sleep(0.03)
            got = self.driver.execute_script("return window.__ppProbe;")
            if got is not None and got == seen:
                break
            now = time.monotonic()
            if now > deadline:
                raise DeviceError(
                    "the page saw no pointer motion; is the Chromium window covered or unmapped?"
                )
            if got is None and now > again:  # a busy machine: the page may not have been ready
                (probe or self._warp)(x, y)
                again = now + 1.0
            seen = got
        self._origin = (int(x - got[0]), int(y - got[1]))
        self._window_at = (sx, sy)
        return self._origin

    def _warp(self, x: int, y: int) -> None:
        from Xlib import X, display
        from Xlib.ext import xtest

        d = display.Display(self.display)
        try:
            # a little motion first: an event at the pointer's current spot is not reported
            for dx in (1, 0):
                xtest.fake_input(d, X.MotionNotify, x=x + dx, y=y)
                d.sync()
        finally:
            d.close()

    def task_rect(self, probe: Any = None) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the task area on the screen, in screen pixels."""
        ox, oy = self.page_origin(probe)
        return ox, oy, *TASK_SIZE

    def element_boxes(self, view: tuple[int, int] = (0, 0)) -> dict[str, list[int]]:
        """The task area's visible elements a person acts on (buttons, fields, links, labels,
        clickable shapes), ``{name: [x, y, w, h]}`` in the pixels of a view whose top-left is
        screen pixel ``view`` (what a device observing that view calls screen pixels): noted on
        each observation (``Device.boxes``) so a trajectory can be scored offline by "the point
        is inside the element" and a model trained on where its target is. One script call."""
        if self._origin is None:
            self.page_origin()
        assert self._origin is not None
        dx, dy = self._origin[0] - view[0], self._origin[1] - view[1]
        got = self.driver.execute_script(_BOXES_JS)
        return {str(name): [int(dx + x), int(dy + y), int(w), int(h)] for name, x, y, w, h in got}

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        """Screen pixel of page CSS point (x, y) (device scale factor 1)."""
        if self._origin is None:
            self.page_origin()
        assert self._origin is not None
        return int(self._origin[0] + x), int(self._origin[1] + y)


_BOXES_JS = """
var out = [], seen = {}, area = document.getElementById('wrap') || document.body;
var sel = 'button, input, textarea, select, a, label, [onclick], svg *, canvas, '
        + '.ui-widget-content, [tabindex], span, td';
[].slice.call(area.querySelectorAll(sel)).forEach(function (e, i) {
  var r = e.getBoundingClientRect();
  if (r.width < 1 || r.height < 1 || r.left >= 160 || r.top >= 210) return;
  var s = window.getComputedStyle(e);
  if (s.visibility === 'hidden' || s.display === 'none') return;
  var text = (e.value || e.textContent || e.getAttribute('id') || '').trim().slice(0, 24);
  var name = e.tagName.toLowerCase() + ':' + text + '#' + i;
  if (seen[name]) return;
  seen[name] = 1;
  out.push([name, r.left, r.top, r.width, r.height]);
});
return out;
"""

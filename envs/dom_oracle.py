"""``dom-oracle``: a reference policy that reads the DOM and acts the way a person would.

FOR TESTING ONLY, never a default: it proves that the pixel path (screenshot geometry, a
dialect's call format and coordinate space, real pointer and keyboard events) loses nothing,
by solving MiniWoB++ tasks two ways with the same per-task steps (``dom_solvers``):

- ``DomOracle``, a ``VisionModel``: each step it reads the page through Selenium, picks the next
  intent and writes it as the dialect's own call (``dialect.format``), its points converted from
  the element's position on the screen into the dialect's space for the view the agent observes.
  The agent loop parses and executes that call like any model's.
- ``SeleniumActor``: the same intents carried out directly with Selenium actions.

Where a dialect cannot express an intent in one call (Qwen2.5-VL's ``left_click_drag`` drags
from the pointer), it is written as the family's own sequence (``mouse_move``, then the drag).
"""

from __future__ import annotations

from typing import Any

from pixelpilot.agent.actions import Click, Drag, Finish, Hotkey, Move, Point, Scroll, TypeText
from pixelpilot.agent.dialects import Dialect, StepContext, get_dialect
from pixelpilot.agent.errors import PixelPilotError, PointOutOfBounds
from pixelpilot.agent.geometry import from_screen
from pixelpilot.envs.dom_page import (
    Done,
    DragTo,
    Hover,
    Intent,
    Keys,
    OracleStuck,
    Page,
    Press,
    Wheel,
    Write,
)
from pixelpilot.envs.dom_solvers import solver_for
from pixelpilot.envs.miniwob_env import MiniWoBEnv
from pixelpilot.vlm.base import Prompt, VisionModel

__all__ = ["DomOracle", "DomPolicy", "SeleniumActor", "prompt_context"]

DRAG_STEPS = 10
WHEEL_PX = 53
"""CSS pixels one wheel notch scrolls in Chromium on X11 (measured), for the direct mode."""


def prompt_context(prompt: Prompt) -> tuple[str, StepContext]:
    """(dialect name, step context) of a prompt: the one place that reads them."""
    try:
        return prompt.meta["dialect"], prompt.meta["ctx"]
    except KeyError as exc:
        raise OracleStuck(f"the prompt does not say its {exc.args[0]}") from None


class DomPolicy:
    """The per-task solvers with their per-episode memory."""

    def __init__(self, env: MiniWoBEnv) -> None:
        self.env = env
        self._episode: object = None
        self.memory: dict[str, Any] = {}

    def next(self) -> Intent:
        """The next step for the current episode; Done once the page has its verdict."""
        ep = self.env.episode
        if ep is None:
            raise OracleStuck("no episode has started")
        if ep is not self._episode:
            self._episode, self.memory = ep, {}
        if self.env.outcome().done:
            return Done()
        page = Page(self.env.driver)
        page.wait_still(pause=0.0)
        intent = solver_for(ep.task)(page, ep, self.memory)
        # press where the element itself gets the click (another may overlap its centre)
        if isinstance(intent, Press) and intent.at is None:
            return Press(intent.target, at=page.hit_point(intent.target), count=intent.count)
        if isinstance(intent, DragTo) and intent.start is None:
            return DragTo(intent.source, intent.end, start=page.hit_point(intent.source))
        return intent


class DomOracle(VisionModel):
    """The DOM policy as a model: answers every prompt with the correct call in the prompt's
    dialect. Testing only; selectable as ``--model dom-oracle`` in ``pixelpilot bench miniwob``."""

    name = "dom-oracle"

    def __init__(self, env: MiniWoBEnv) -> None:
        self.env = env
        self.policy = DomPolicy(env)
        self._pending: list[str] = []
        self._pending_for: object = None
        self._dialects: dict[str, Dialect] = {}

    def _generate(self, prompt: Prompt) -> str:
        name, ctx = prompt_context(prompt)
        dialect = self._dialects.get(name) or self._dialects.setdefault(name, get_dialect(name))
        if self._pending and self._pending_for is self.env.episode:
            return self._pending.pop(0)
        try:
            intent = self.policy.next()
            if isinstance(intent, Done):
                won = self.env.outcome().success
                return _finish(dialect, ctx, "success" if won else "failure", "")
            calls = [dialect.format(a, ctx) for a in self._lower(intent, dialect, ctx)]
        except OracleStuck as exc:  # give up the way a model does, saying why
            return _finish(dialect, ctx, "failure", f"stuck: {exc}"[:4000])
        self._pending, self._pending_for = calls[1:], self.env.episode
        return calls[0]

    # -- intents -> the dialect's actions (points in its space) ----------------------------------
    def _lower(self, intent: Intent, dialect: Dialect, ctx: StepContext) -> list[Any]:
        def at(css: tuple[float, float]) -> Point:
            return self._point(css, dialect, ctx)

        if isinstance(intent, Press):
            return [Click(point=at(intent.point), count=intent.count)]
        if isinstance(intent, Hover):
            return [Move(point=at(intent.target.center))]
        if isinstance(intent, Write):
            return [TypeText(text=intent.text)]
        if isinstance(intent, Keys):
            return [Hotkey(keys=list(intent.keys))]
        if isinstance(intent, DragTo):
            start, end = at(intent.start_point), at(intent.end)
            drag = Drag(start=start, end=end)
            if _expressible(dialect, drag, ctx):
                return [drag]
            return [Move(point=start), Drag(end=end)]  # drag from where the pointer is
        if isinstance(intent, Wheel):
            point = at(intent.target.center)
            for amount in (intent.clicks, 5):  # UI-TARS scrolls a fixed 5 notches
                scroll = Scroll(direction=intent.direction, amount=amount, point=point)
                if _expressible(dialect, scroll, ctx):
                    return [scroll]
            raise OracleStuck(f"{dialect.name} cannot express a scroll")
        raise OracleStuck(f"cannot lower {intent!r}")

    def _point(self, css: tuple[float, float], dialect: Dialect, ctx: StepContext) -> Point:
        """Page CSS point -> the pixel of the observed image -> the dialect's space."""
        sx, sy = self.env.to_screen(*css)
        g = ctx.geometry
        x, y = int((sx - g.origin[0]) * g.scale), int((sy - g.origin[1]) * g.scale)
        try:
            return from_screen(x, y, dialect.space, g, ctx.resized)
        except PointOutOfBounds:
            raise OracleStuck(
                f"page point ({css[0]:.0f}, {css[1]:.0f}) is outside the observed "
                f"{g.width}x{g.height} view"
            ) from None


def _finish(dialect: Dialect, ctx: StepContext, status: Any, answer: str) -> str:
    """The dialect's finish call, with as much of status and answer as it can carry."""
    for action in (Finish(status=status, answer=answer), Finish(status=status), Finish()):
        if _expressible(dialect, action, ctx):
            return dialect.format(action, ctx)
    return dialect.format(Finish(), ctx)


def _expressible(dialect: Dialect, action: Any, ctx: StepContext) -> bool:
    try:
        return dialect.parse(dialect.format(action, ctx), ctx) == action
    except (ValueError, PixelPilotError):
        return False


# -- the direct mode -------------------------------------------------------------------------------
_SELENIUM_KEYS = {
    "ctrl": "CONTROL", "shift": "SHIFT", "alt": "ALT", "enter": "ENTER", "space": "SPACE",
    "tab": "TAB", "esc": "ESCAPE", "backspace": "BACKSPACE", "delete": "DELETE", "up": "ARROW_UP",
    "down": "ARROW_DOWN", "left": "ARROW_LEFT", "right": "ARROW_RIGHT", "home": "HOME",
    "end": "END", "pageup": "PAGE_UP", "pagedown": "PAGE_DOWN",
}  # fmt: skip


class SeleniumActor:
    """Carries out intents directly with Selenium actions (W3C input through chromedriver)."""

    def __init__(self, driver: Any, *, settle_timeout: float = 1.0) -> None:
        self.driver = driver
        self.settle_timeout = settle_timeout

    def perform(self, intent: Intent) -> None:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

        chain = ActionChains(self.driver, duration=0)
        if isinstance(intent, Press):
            self._move(chain, intent.target, intent.point)
            (chain.double_click() if intent.count == 2 else chain.click()).perform()
        elif isinstance(intent, Hover):
            self._move(chain, intent.target, intent.target.center).perform()
        elif isinstance(intent, Write):
            chain.send_keys(intent.text).perform()
        elif isinstance(intent, Keys):
            *mods, last = (self._key(k) for k in intent.keys)
            for m in mods:
                chain.key_down(m)
            chain.send_keys(last)
            for m in reversed(mods):
                chain.key_up(m)
            chain.perform()
        elif isinstance(intent, DragTo):
            (sx, sy), (ex, ey) = intent.start_point, intent.end
            self._move(chain, intent.source, (sx, sy)).click_and_hold()
            for i in range(1, DRAG_STEPS + 1):
                nx, ny = sx + (ex - sx) * i / DRAG_STEPS, sy + (ey - sy) * i / DRAG_STEPS
                px, py = (
                    sx + (ex - sx) * (i - 1) / DRAG_STEPS,
                    sy + (ey - sy) * (i - 1) / DRAG_STEPS,
                )
                chain.move_by_offset(round(nx) - round(px), round(ny) - round(py))
            chain.release().perform()
        elif isinstance(intent, Wheel):
            sign = 1 if intent.direction == "down" else -1
            origin = ScrollOrigin.from_element(intent.target.handle)
            chain.scroll_from_origin(origin, 0, sign * intent.clicks * WHEEL_PX).perform()
        elif not isinstance(intent, Done):
            raise OracleStuck(f"cannot perform {intent!r}")
        Page(self.driver).wait_still(self.settle_timeout)

    @staticmethod
    def _move(chain: Any, target: Any, point: tuple[float, float]) -> Any:
        cx, cy = target.center  # Selenium offsets are from the element's centre
        return chain.move_to_element_with_offset(
            target.handle, int(point[0] - cx), int(point[1] - cy)
        )

    @staticmethod
    def _key(name: str) -> str:
        from selenium.webdriver.common.keys import Keys as SK

        attr = _SELENIUM_KEYS.get(name)
        return getattr(SK, attr) if attr else name

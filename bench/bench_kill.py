"""Kill-to-stop latency of the X11 kill hotkey, on Xvfb with the Tk fixture app.

    python bench/bench_kill.py [--trials 10]

Each trial runs the agent (scripted model, real DesktopDevice) on a fresh fixture app and
presses ctrl+alt+shift+k through XTEST, as a keyboard would:

- typing: during a 1,500-character ``type``, once the field shows 200 characters. Reported:
  key press -> the switch flipped (the hotkey thread got the key), key press -> ``Agent.run``
  returned (status error, "stopped by user"), and the characters that still reached the field
  after the key press (keys already sent when the switch flipped; at most one chunk).
- waiting: during a 10 s ``wait`` action, 0.5 s into it.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from Xlib import XK, X
from Xlib import display as xdisplay
from Xlib.ext import xtest

from pixelpilot.agent.actions import Click, TypeText, Wait
from pixelpilot.agent.control import RunControl
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.tools.x11_hotkeys import KILL_KEY, HotkeyListener
from pixelpilot.tools.xvfb import ensure_display
from pixelpilot.vlm.scripted import ScriptedModel

GEOM = ScreenGeometry(1280, 800)
CTX = StepContext("desktop", frozenset({"click", "type", "wait"}), GEOM, HUB_PIXELS.resize(1280, 800))
LONG = ("pixelpilot types this " * 80)[:1500]
FINISH = "✿FUNCTION✿: finish\n✿ARGS✿: {}"


def fmt(action: object) -> str:
    return get_dialect("qwen2vl").format(action, CTX)


def press(display: str, combo: str) -> None:
    names = {"ctrl": "Control_L", "alt": "Alt_L", "shift": "Shift_L"}
    d = xdisplay.Display(display)
    codes = [d.keysym_to_keycode(XK.string_to_keysym(names.get(k, k))) for k in combo.split("+")]
    for c in codes:
        xtest.fake_input(d, X.KeyPress, c)
    for c in reversed(codes):
        xtest.fake_input(d, X.KeyRelease, c)
    d.sync()
    d.close()


def trial(display: str, kind: str) -> dict[str, float]:
    control = RunControl()
    flipped: list[float] = []

    def kill() -> None:
        flipped.append(time.monotonic())
        control.stop()

    click = fmt(Click(point=from_screen(600, 125, "norm1000", GEOM)))
    act = fmt(TypeText(text=LONG)) if kind == "typing" else fmt(Wait(seconds=10))
    with (
        FixtureApp(display=display) as app,
        DesktopDevice(display=display) as dev,
        HotkeyListener(display, {KILL_KEY: kill}),
    ):
        box: dict[str, float] = {}

        def killer() -> None:
            if kind == "typing":
                while len(app.state()["name"]) < 200:
                    time.sleep(0.002)
                box["chars"] = len(app.state()["name"])
            else:
                while not box.get("acting"):
                    time.sleep(0.002)
                time.sleep(0.5)
            box["t0"] = time.monotonic()
            press(display, KILL_KEY)

        def on_step(step: object) -> None:
            box["acting"] = 1.0

        thread = threading.Thread(target=killer)
        thread.start()
        agent = Agent(model=ScriptedModel([click, act, FINISH]), device=dev, dialect="qwen2vl",
                      control=control, on_step=on_step, budgets=Budgets(max_seconds=60))  # fmt: skip
        result = agent.run("bench")
        returned = time.monotonic()
        thread.join()
        assert result.status == "error" and result.reason == "stopped by user", result.reason
        out = {"flip": flipped[0] - box["t0"], "stop": returned - box["t0"]}
        if kind == "typing":
            time.sleep(0.5)  # let the app draw what it had received
            out["chars_after"] = len(app.state()["name"]) - box["chars"]
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    with ensure_display(1280, 800) as display:
        for kind in ("typing", "waiting"):
            rows = [trial(display, kind) for _ in range(args.trials)]
            print(f"{kind}: {args.trials} trials")
            for key in rows[0]:
                v = sorted(r[key] for r in rows)
                scale, unit = (1e3, "ms") if key != "chars_after" else (1, "chars")
                print(f"  {key:<12} median {statistics.median(v) * scale:7.1f} {unit}   "
                      f"max {v[-1] * scale:7.1f} {unit}")  # fmt: skip


if __name__ == "__main__":
    main()

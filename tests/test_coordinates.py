"""Coordinates land: a model's point, through the real processor's resize, hits its target.

For every dialect space (norm1000: qwen2vl, uitars; resized_px: qwen25vl, uitars-1.5), two
pixel budgets (the hub checkpoints' and 1280*28*28, which really downscales) and three screens,
the Tk target app draws coloured squares at known places; the screenshot goes through the REAL
``Qwen2VLImageProcessor`` (budget set explicitly) and each target is found by its colour in the
image the vision tower gets (un-patchified ``pixel_values``), exactly where a model would see it.
Its centre there is written in the dialect's space as a model would write it (integers),
``dialect.format`` -> ``dialect.parse`` -> ``geometry.to_device`` -> ``DesktopDevice.execute``
clicks it for real on Xvfb, and the app reports where the click landed.

Screens: 1920x1080; a portrait phone-sized 1080x2400; and 2560x1440 at HiDPI scale 2. Xvfb has
no HiDPI, so scale 2 is simulated the way a Retina Mac presents it: the X screen is 1280x720
(logical points, what pyautogui moves in) and the device's observation is that capture
upscaled 2x (nearest) to 2560x1440 physical pixels with ``ScreenGeometry(2560, 1440, scale=2)``.
The model sees 2560x1440; its point becomes a physical pixel (``to_device``) and then a logical
point (``to_logical``, in the real planner) for the real click.

pyautogui binds one X display per process, so each screen runs in its own subprocess (this file
run as a script, with its own VirtualDisplay); the test checks the JSON report it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCREENS: dict[str, tuple[int, int, int]] = {
    "1920x1080": (1920, 1080, 1),
    "2560x1440@2x": (1280, 720, 2),  # X screen in logical points, scale
    "1080x2400": (1080, 2400, 1),
}
DIALECTS = ("qwen2vl", "uitars", "qwen25vl", "uitars-1.5")
BUDGETS = {"hub": (3136, 12845056), "1280 tokens": (3136, 1280 * 28 * 28)}
COLOURS = ("#e53935", "#43a047", "#1e88e5", "#fdd835", "#8e24aa")
PLACES = ((0.5, 0.5), (0.06, 0.1), (0.93, 0.91), (0.37, 0.71), (0.81, 0.23))
"""Target centres as fractions of the screen: middle, near corners, odd spots."""
SIZE = 16
"""Target side in X pixels (logical points on the HiDPI screen)."""


def targets(width: int, height: int) -> list[list[Any]]:
    return [
        [round(fx * width) - SIZE // 2, round(fy * height) - SIZE // 2, SIZE, colour]
        for (fx, fy), colour in zip(PLACES, COLOURS, strict=True)
    ]


# -- the test (parent process) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run every screen's subprocess at once; their JSON reports by screen name."""
    from pixelpilot.tools.xvfb import xvfb_available

    if not xvfb_available():
        pytest.skip("Xvfb is not installed; install it with: apt-get install xvfb xauth")
    out = tmp_path_factory.mktemp("coords")
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, name, str(out / f"{name}.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in SCREENS
    }
    logs = {
        name: p.communicate(timeout=120)[0].decode(errors="replace") for name, p in procs.items()
    }
    for name, p in procs.items():
        assert p.returncode == 0, f"{name}: exit {p.returncode}\n{logs[name][-3000:]}"
    return {name: json.loads((out / f"{name}.json").read_text()) for name in SCREENS}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_clicks_land_on_their_targets(reports: dict[str, dict[str, Any]], screen: str) -> None:
    report = reports[screen]
    w, h, scale = SCREENS[screen]
    assert report["geometry"] == {"width": w * scale, "height": h * scale, "scale": scale}
    for name, sizes in report["resize"].items():
        # the real processor's resize is exactly the one the geometry module assumes
        assert sizes["processor"] == sizes["pixel_budget"], name
    cases, clicks = report["cases"], report["clicks"]
    assert len(cases) == len(DIALECTS) * len(BUDGETS) * len(PLACES) == len(clicks)
    misses = []
    for case, (cx, cy) in zip(cases, clicks, strict=True):
        x, y, size, _ = report["targets"][case["target"]]
        if not (x <= cx < x + size and y <= cy < y + size):
            misses.append(f"{case} landed at ({cx}, {cy}), target {x},{y} +{size}")
    assert not misses, "\n".join(misses)
    # and close to the centre: within a model unit's worth of pixels of rounding
    worst = max(abs(cx - (t[0] + SIZE / 2)) + abs(cy - (t[1] + SIZE / 2))
                for case, (cx, cy) in zip(cases, clicks, strict=True)
                for t in [report["targets"][case["target"]]])  # fmt: skip
    assert worst <= 4, worst
    spaces = {c["dialect"]: c["space"] for c in cases}
    assert spaces == {"qwen2vl": "norm1000", "uitars": "norm1000",
                      "qwen25vl": "resized_px", "uitars-1.5": "resized_px"}  # fmt: skip


# -- one screen (subprocess) -------------------------------------------------------------------
def model_view(image: Any, min_pixels: int, max_pixels: int) -> Any:
    """The RGB image (H x W x 3, 0..255) that Qwen2-VL's vision tower receives, rebuilt from
    the real processor's patchified ``pixel_values`` (rescale and normalisation switched off)."""
    from transformers import Qwen2VLImageProcessor

    proc = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    out = proc(images=[image], do_rescale=False, do_normalize=False, return_tensors="pt")
    _, gh, gw = (int(v) for v in out["image_grid_thw"][0])
    m, p, tp = proc.merge_size, proc.patch_size, proc.temporal_patch_size
    x = out["pixel_values"].reshape(gh // m, gw // m, m, m, 3, tp, p, p)[:, :, :, :, :, 0]
    # rows were (h/m, w/m, m_h, m_w) and features (C, T, P_h, P_w): undo that permutation
    x = x.permute(4, 0, 2, 5, 1, 3, 6).reshape(3, gh * p, gw * p)
    return x.permute(1, 2, 0).float().numpy()


def find(view: Any, colour: str) -> tuple[float, float]:
    """Centre (x, y) of the pixels of ``colour`` in ``view``, in its pixel coordinates."""
    import numpy as np

    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)
    ys, xs = np.nonzero(np.abs(view - rgb).max(axis=2) < 40)
    assert len(xs), f"target {colour} not found in the model's view"
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def run_screen(name: str, out: str) -> None:
    from PIL import Image

    from pixelpilot.agent.actions import DESKTOP_KINDS, Click, Point
    from pixelpilot.agent.dialects import get_dialect
    from pixelpilot.agent.dialects.base import StepContext
    from pixelpilot.agent.geometry import PixelBudget, ScreenGeometry, to_device
    from pixelpilot.scenarios.fixture import FixtureApp
    from pixelpilot.tools.base import Observation
    from pixelpilot.tools.desktop import DesktopDevice
    from pixelpilot.tools.xvfb import VirtualDisplay

    class ScaledDesktop(DesktopDevice):
        """The X screen presented as a HiDPI monitor: observations ``scale`` x larger."""

        def __init__(self, scale: int, **kw: Any) -> None:
            super().__init__(**kw)
            self.scale = scale

        def _observe(self) -> Observation:
            obs = super()._observe()
            g = obs.geometry
            geom = ScreenGeometry(g.width * self.scale, g.height * self.scale, self.scale, g.origin)
            self._geometry = geom
            image = obs.image.resize((geom.width, geom.height), Image.Resampling.NEAREST)
            return Observation(image=image, geometry=geom, extra=obs.extra)

    width, height, scale = SCREENS[name]
    tgts = targets(width, height)
    report: dict[str, Any] = {"screen": name, "targets": tgts, "cases": [], "resize": {}}
    with VirtualDisplay(width, height) as vd:
        os.environ.update(vd.env)  # this process and the app use this server only
        cmd = [sys.executable, "-m", "pixelpilot.scenarios.target_app", "--state", "{state}",
               "--width", "{width}", "--height", "{height}", "--targets", json.dumps(tgts)]  # fmt: skip
        with (
            FixtureApp(display=vd.display, width=width, height=height, command=cmd) as app,
            ScaledDesktop(scale, display=vd.display) as device,
        ):
            obs = device.observe()
            geom = obs.geometry
            report["geometry"] = {"width": geom.width, "height": geom.height, "scale": geom.scale}
            for budget_name, (lo, hi) in BUDGETS.items():
                budget = PixelBudget(lo, hi)
                view = model_view(obs.image, lo, hi)
                resized = budget.resize(geom.width, geom.height)  # what the loop computes
                report["resize"][budget_name] = {
                    "processor": [view.shape[1], view.shape[0]],
                    "pixel_budget": list(resized),
                }
                ctx = StepContext("desktop", DESKTOP_KINDS, geom, resized)
                centres = [find(view, t[3]) for t in tgts]
                for dialect_name in DIALECTS:
                    dialect = get_dialect(dialect_name)
                    for i, (cx, cy) in enumerate(centres):
                        if dialect.space == "norm1000":
                            px, py = cx / view.shape[1] * 1000, cy / view.shape[0] * 1000
                        else:
                            px, py = cx, cy
                        asked = Click(point=Point(x=round(px), y=round(py), space=dialect.space))
                        text = dialect.format(asked, ctx)
                        parsed = dialect.parse(text, ctx)
                        assert parsed == asked, (text, parsed, asked)
                        done = device.execute(to_device(parsed, geom, resized))
                        n = len(report["cases"]) + 1
                        app.wait_for(lambda s, n=n: len(s["clicks"]) == n, timeout=5)
                        report["cases"].append({
                            "dialect": dialect_name, "space": dialect.space, "budget": budget_name,
                            "target": i, "text": text, "command": done.commands[0],
                        })  # fmt: skip
            report["clicks"] = app.state()["clicks"]
    Path(out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    run_screen(sys.argv[1], sys.argv[2])

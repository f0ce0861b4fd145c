"""Write scenarios/robot/*.yaml: scripted pick-and-place runs on the pybullet scenes.

Every point is derived from the rendered camera: the scene is opened as the scenario will open
it (same scene, seed and image size), each object's top-face centre is projected through the
camera's matrices to a pixel, and the pixel is checked to show that object in the rendered
frame (segmentation) before it is written, in each dialect's own coordinate space and format.
Rerun after changing a scene, the camera or the image size:

    python scripts/make_robot_scenarios.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pixelpilot.agent.actions import ROBOT_KINDS, Finish, Home, Pick, Place, Point
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ActionRejected
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.tools.robot import TRAY_FLOOR_Z, TRAY_XY, RobotDevice
from pixelpilot.tools.robot_plan import plan_pick

OUT = Path(__file__).resolve().parents[1] / "scenarios" / "robot"
SCREEN = (640, 480)
GEOM = ScreenGeometry(*SCREEN)
CTX = StepContext("robot", ROBOT_KINDS, GEOM, HUB_PIXELS.resize(*SCREEN))
MAIN = ("qwen2vl", "qwen25vl")
ALL = ("qwen2vl", "qwen25vl", "osatlas", "showui")


def pixels(scene: str, seed: int = 0) -> dict[str, tuple[int, int]]:
    """Pixels of every object, the tray's floor and an unreachable table point, verified."""
    out: dict[str, tuple[int, int]] = {}
    with RobotDevice(scene, width=SCREEN[0], height=SCREEN[1], seed=seed) as dev:
        dev.observe()
        for thing in dev.things:
            out[thing.name] = xy = dev.locate(thing.name)
            hit, _ = dev.look(*xy)
            assert hit == thing.name, f"{scene}: pixel {xy} shows {hit}, not {thing.name}"
        if dev.has_tray:
            x, y, _ = dev.camera.world_to_pixel((*TRAY_XY, TRAY_FLOOR_Z))
            out["tray"] = xy = (round(x), round(y))
            assert dev.look(*xy)[0] == "tray", f"{scene}: pixel {xy} misses the tray"
        # the table at the image's bottom edge, in front of everything: beyond the arm's reach
        out["far"] = xy = (SCREEN[0] // 2, SCREEN[1] - 8)
        hit, world = dev.look(*xy)
        assert hit == "table", f"{scene}: pixel {xy} shows {hit}, not the table"
        try:
            plan_pick(world, dev.workspace)
        except ActionRejected:
            pass
        else:
            raise AssertionError(f"{scene}: pixel {xy} ({world}) is within reach")
    return out


def at(dialect: str, xy: tuple[int, int]) -> Point:
    return from_screen(xy[0], xy[1], get_dialect(dialect).space, GEOM, CTX.resized)


def script(dialect: str, steps: list[Any]) -> list[str]:
    d = get_dialect(dialect)
    return [d.format(a, CTX) for a in steps]


def pick_place(dialect: str, px: dict[str, tuple[int, int]], obj: str, dest: str) -> list[Any]:
    return [Pick(point=at(dialect, px[obj])), Place(point=at(dialect, px[dest])), Home(), Finish()]


def scenarios() -> dict[str, dict[str, Any]]:
    tray, stack, objects = pixels("tray"), pixels("stack"), pixels("objects")
    return {
        "red_cube_in_tray": dict(
            description="Pick the red cube among distractors and put it in the tray.",
            scene="tray",
            task="Put the red cube in the tray.",
            scripts={d: script(d, pick_place(d, tray, "red_cube", "tray")) for d in ALL},
            checks=[
                {"path": "objects.red_cube.in_tray", "equals": True},
                {"path": "objects.blue_cube.in_tray", "equals": False},
                {"path": "objects.green_cylinder.in_tray", "equals": False},
                {"path": "holding", "equals": None},
            ],
        ),
        "stack_blocks": dict(
            description="Stack one block on another: place at the pixel of the lower block's top.",
            scene="stack",
            task="Stack the red block on top of the blue block.",
            scripts={d: script(d, pick_place(d, stack, "red_cube", "blue_cube")) for d in MAIN},
            checks=[
                {"path": "objects.red_cube.on", "equals": "blue_cube"},
                {"path": "stacked", "equals": [["red_cube", "blue_cube"]]},
                {"path": "holding", "equals": None},
            ],
        ),
        "pick_named_object": dict(
            description="Five named objects: pick the one the task names and put it in the tray.",
            scene="objects",
            task="Put the green cylinder in the tray.",
            scripts={d: script(d, pick_place(d, objects, "green_cylinder", "tray")) for d in MAIN},
            checks=[
                {"path": "in_tray", "equals": ["green_cylinder"]},
                {"path": "objects.green_cylinder.on_table", "equals": False},
                {"path": "holding", "equals": None},
            ],
        ),
        "recover_out_of_reach": dict(
            description="A pick beyond the arm's reach is refused and goes back to the model; "
            "the retry picks the cube.",
            scene="tray",
            task="Put the red cube in the tray.",
            scripts={
                d: script(
                    d, [Pick(point=at(d, tray["far"])), *pick_place(d, tray, "red_cube", "tray")]
                )
                for d in MAIN
            },  # fmt: skip
            expect={"status": "success", "retries": 1},
            checks=[{"path": "objects.red_cube.in_tray", "equals": True}],
        ),
    }


def _literal(dumper: yaml.Dumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def main() -> None:
    yaml.add_representer(str, _literal)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in scenarios().items():
        doc = {"name": name, "description": spec["description"],
               "target": {"kind": "robot", "scene": spec["scene"], "screen": list(SCREEN)},
               "task": spec["task"], "budgets": {"max_steps": 8, "max_seconds": 120},
               "scripts": spec["scripts"], "expect": spec.get("expect", {"status": "success"}),
               "checks": spec["checks"]}  # fmt: skip
        text = yaml.dump(doc, allow_unicode=True, sort_keys=False, width=100)
        (OUT / f"{name}.yaml").write_text(
            "# Written by scripts/make_robot_scenarios.py; edit there.\n" + text, encoding="utf-8"
        )
        print("wrote", OUT / f"{name}.yaml")


if __name__ == "__main__":
    main()

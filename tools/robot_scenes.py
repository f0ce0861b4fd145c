"""The robot device's scenes as data: named objects, where they start, the tray and the camera.

Pure (no simulator), so a scene's layout for a seed is known without pybullet. Objects are named
``colour_shape`` (``red_cube``, ``green_cylinder``) so a task can name them. Each scene places
its objects in fixed slots, shuffled and jittered (+-2 cm, cubes turned up to +-14 degrees) by
a ``random.Random`` seeded with the scene's name and the seed: deterministic per seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pixelpilot.agent.errors import ConfigError
from pixelpilot.tools.robot_plan import Camera

__all__ = [
    "COLOURS",
    "SCENES",
    "TRAY_FLOOR_Z",
    "TRAY_XY",
    "Thing",
    "default_camera",
    "scene_objects",
]

COLOURS = {
    "red": (0.85, 0.12, 0.12, 1.0),
    "blue": (0.12, 0.3, 0.9, 1.0),
    "green": (0.1, 0.7, 0.25, 1.0),
    "yellow": (0.95, 0.8, 0.1, 1.0),
    "purple": (0.6, 0.2, 0.75, 1.0),
}
CUBE_HALF = 0.02
CYLINDER = (0.02, 0.025)  # radius, half height
TRAY_XY = (0.45, 0.3)
TRAY_FLOOR_Z = 0.003
"""Height of the tray's floor as the camera sees it (its mesh); objects rest on its collision box
4.5 mm higher (0.0075), so a pixel aimed at 0.0075 lands ~3.6 mm off on the image's floor."""
TRAY_SCALE, TRAY_INNER_HALF, TRAY_RIM = 0.5, 0.12, 0.07


@dataclass(frozen=True)
class Thing:
    """An object of a scene: its name (colour_shape), shape, colour and where it starts."""

    name: str
    shape: Literal["cube", "cylinder"]
    colour: str
    xy: tuple[float, float]
    yaw: float = 0.0

    @property
    def half_height(self) -> float:
        return CUBE_HALF if self.shape == "cube" else CYLINDER[1]


def _thing(
    colour: str, shape: Literal["cube", "cylinder"], xy: tuple[float, float], rng: random.Random
) -> Thing:
    jitter = (xy[0] + rng.uniform(-0.02, 0.02), xy[1] + rng.uniform(-0.02, 0.02))
    yaw = rng.uniform(-0.25, 0.25) if shape == "cube" else 0.0
    return Thing(f"{colour}_{shape}", shape, colour, jitter, yaw)


def _tray(rng: random.Random) -> tuple[list[Thing], bool]:
    slots = [(0.55, -0.15), (0.4, -0.05), (0.62, 0.08)]
    rng.shuffle(slots)
    kinds: list[tuple[str, Literal["cube", "cylinder"]]] = [
        ("red", "cube"), ("blue", "cube"), ("green", "cylinder")]  # fmt: skip
    return [_thing(c, s, xy, rng) for (c, s), xy in zip(kinds, slots, strict=True)], True


def _stack(rng: random.Random) -> tuple[list[Thing], bool]:
    slots = [(0.5, -0.15), (0.5, 0.12)]
    rng.shuffle(slots)
    return [_thing("red", "cube", slots[0], rng), _thing("blue", "cube", slots[1], rng)], False


def _objects(rng: random.Random) -> tuple[list[Thing], bool]:
    slots = [(0.38, -0.2), (0.52, -0.12), (0.66, -0.2), (0.62, 0.06), (0.38, 0.05)]
    rng.shuffle(slots)
    kinds: list[tuple[str, Literal["cube", "cylinder"]]] = [
        ("red", "cube"), ("blue", "cube"), ("green", "cylinder"), ("yellow", "cube"),
        ("purple", "cylinder")]  # fmt: skip
    return [_thing(c, s, xy, rng) for (c, s), xy in zip(kinds, slots, strict=True)], True


SCENES = {"tray": _tray, "stack": _stack, "objects": _objects}
"""Scene name -> builder(rng) -> (objects, has a tray)."""


def scene_objects(scene: str, seed: int = 0) -> tuple[list[Thing], bool]:
    """The objects of ``scene`` for ``seed`` (and whether it has a tray), without a simulator."""
    if scene not in SCENES:
        raise ConfigError(f"unknown robot scene {scene!r}; use one of: {', '.join(SCENES)}")
    return SCENES[scene](random.Random(f"{scene}:{seed}"))


def default_camera(width: int, height: int) -> Camera:
    """In front of the table, looking back at the arm and down at the objects."""
    return Camera(eye=(1.0, 0.06, 0.75), target=(0.5, 0.06, 0.0), fov_deg=45.0,
                  near=0.1, far=3.0, width=width, height=height)  # fmt: skip

"""Pure coordinate conversions: the only place where model coordinates become pixels.

Spaces (see ``actions.Space``):
- ``norm1000``: 0..1000 of the image on each axis (Qwen2-VL, UI-TARS v1, OS-Atlas);
- ``resized_px``: pixels of the image after Qwen2-VL's ``smart_resize`` (Qwen2.5-VL, UI-TARS-1.5);
- ``screen_px``: physical pixels of the captured monitor, origin at its top-left;
- ``logical_pt``: OS points, ``screen_px / scale`` (what pyautogui uses on HiDPI macOS).

x and y are always rescaled separately: smart_resize changes the aspect ratio slightly
(1920x1080 -> 1932x1092). A point outside its space is refused with PointOutOfBounds, never
clamped; only the far edge itself (1000, or the resized width) maps to the last pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pixelpilot.agent.actions import A, Point, Space, map_points
from pixelpilot.agent.errors import PointOutOfBounds

__all__ = [
    "HUB_PIXELS",
    "PROCESSOR_DEFAULT_PIXELS",
    "PixelBudget",
    "ScreenGeometry",
    "from_screen",
    "smart_resize",
    "to_device",
    "to_logical",
    "to_screen",
    "visual_tokens",
]

FACTOR = 28  # Qwen2-VL: 14-px patches merged 2x2
MAX_RATIO = 200


@dataclass(frozen=True)
class PixelBudget:
    """min/max pixels of the resized image fed to a Qwen2-VL-family vision tower."""

    min_pixels: int
    max_pixels: int

    def resize(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the model sees for a width x height screenshot."""
        h, w = smart_resize(height, width, min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return w, h


HUB_PIXELS = PixelBudget(min_pixels=3136, max_pixels=12845056)
"""The hub checkpoints' preprocessor_config (Qwen/Qwen2-VL-*-Instruct): 4*28*28 .. 16384*28*28."""
PROCESSOR_DEFAULT_PIXELS = PixelBudget(min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
"""What a bare ``Qwen2VLImageProcessor()`` uses: NOT what the hub checkpoints use."""


def smart_resize(
    height: int,
    width: int,
    factor: int = FACTOR,
    min_pixels: int = HUB_PIXELS.min_pixels,
    max_pixels: int = HUB_PIXELS.max_pixels,
) -> tuple[int, int]:
    """Qwen2-VL's resize: each side a multiple of ``factor``, area within [min, max] pixels.

    Same arithmetic as qwen-vl-utils' ``smart_resize``; returns (height, width).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_RATIO}, "
            f"got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, _round_by(height, factor))
    w_bar = max(factor, _round_by(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _round_by(n: float, factor: int) -> int:
    return round(n / factor) * factor


def visual_tokens(width: int, height: int, budget: PixelBudget = HUB_PIXELS) -> int:
    """LLM visual tokens (without the two vision markers) for a screenshot of this size."""
    w, h = budget.resize(width, height)
    return (w // FACTOR) * (h // FACTOR)


@dataclass(frozen=True)
class ScreenGeometry:
    """What a device's observation covers.

    ``width``/``height`` are the captured image's physical pixels. ``scale`` is physical pixels
    per logical point (2 on a HiDPI 'Retina' monitor). ``origin`` is the monitor's top-left in
    the OS's global logical coordinates (non-zero on a second monitor).
    """

    width: int
    height: int
    scale: float = 1.0
    origin: tuple[float, float] = (0.0, 0.0)

    @property
    def logical_size(self) -> tuple[float, float]:
        return self.width / self.scale, self.height / self.scale

    def contains(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height


def _extent(
    space: Space, geom: ScreenGeometry, resized: tuple[int, int] | None
) -> tuple[float, float]:
    if space == "norm1000":
        return 1000.0, 1000.0
    if space == "resized_px":
        if resized is None:
            raise ValueError("resized_px needs the resized image size")
        return float(resized[0]), float(resized[1])
    if space == "logical_pt":
        return geom.logical_size
    return float(geom.width), float(geom.height)


def to_screen(
    point: Point, geom: ScreenGeometry, resized: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Physical pixel (relative to the monitor) that ``point`` designates.

    Raises PointOutOfBounds, with a message for the model, when the point is off the image.
    """
    ex, ey = _extent(point.space, geom, resized)
    if point.space == "screen_px":
        ok = 0 <= point.x < ex and 0 <= point.y < ey
    else:
        ok = 0 <= point.x <= ex and 0 <= point.y <= ey
    if not ok:
        hi = f"{ex:g}x{ey:g}" if point.space != "norm1000" else "0..1000 on both axes"
        raise PointOutOfBounds(
            f"point ({point.x:g}, {point.y:g}) is outside the screen; "
            f"{point.space} coordinates must lie within {hi}"
        )
    x = min(math.floor(point.x * geom.width / ex), geom.width - 1)
    y = min(math.floor(point.y * geom.height / ey), geom.height - 1)
    return x, y


def from_screen(
    x: int, y: int, space: Space, geom: ScreenGeometry, resized: tuple[int, int] | None = None
) -> Point:
    """The point in ``space`` that designates pixel (x, y): the inverse of ``to_screen``.

    Uses the pixel's centre, so ``to_screen(from_screen(x, y, ...)) == (x, y)``; integer
    spaces (norm1000, resized_px) are rounded as a model would write them.
    """
    if not geom.contains(x, y):
        raise PointOutOfBounds(f"pixel ({x}, {y}) is outside {geom.width}x{geom.height}")
    ex, ey = _extent(space, geom, resized)
    fx = (x + 0.5) * ex / geom.width
    fy = (y + 0.5) * ey / geom.height
    if space in ("norm1000", "resized_px"):
        fx, fy = float(round(fx)), float(round(fy))
    elif space == "screen_px":
        fx, fy = float(x), float(y)
    return Point(x=fx, y=fy, space=space)


def to_logical(x: int, y: int, geom: ScreenGeometry) -> tuple[float, float]:
    """Global logical coordinates (what pyautogui takes) of monitor pixel (x, y)."""
    return geom.origin[0] + x / geom.scale, geom.origin[1] + y / geom.scale


def to_device(action: A, geom: ScreenGeometry, resized: tuple[int, int] | None = None) -> A:
    """A copy of ``action`` with every point converted to ``screen_px``."""

    def convert(p: Point) -> Point:
        x, y = to_screen(p, geom, resized)
        return Point(x=x, y=y, space="screen_px")

    return map_points(action, convert)

"""Pure coordinate conversions: edges, odd sizes, HiDPI, offset monitors, and smart_resize
compared against qwen-vl-utils on hundreds of sizes."""

from __future__ import annotations

import random

import pytest

from pixelpilot.agent.actions import Click, Drag, Point, Scroll
from pixelpilot.agent.errors import PointOutOfBounds
from pixelpilot.agent.geometry import (
    HUB_PIXELS,
    PROCESSOR_DEFAULT_PIXELS,
    PixelBudget,
    ScreenGeometry,
    from_screen,
    smart_resize,
    to_device,
    to_logical,
    to_screen,
    visual_tokens,
)

FHD = ScreenGeometry(1920, 1080)


def P(x: float, y: float, space: str = "norm1000") -> Point:
    return Point(x=x, y=y, space=space)


@pytest.mark.parametrize(
    ("point", "geom", "resized", "expected"),
    [
        (P(0, 0), FHD, None, (0, 0)),
        (P(1000, 1000), FHD, None, (1919, 1079)),  # the far edge is the last pixel
        (P(500, 500), FHD, None, (960, 540)),
        (P(999, 999), FHD, None, (1918, 1078)),
        (P(1000, 1000), ScreenGeometry(7, 3), None, (6, 2)),  # odd, tiny
        (P(500, 500), ScreenGeometry(1081, 2401), None, (540, 1200)),  # odd portrait
        (P(1932, 1092, "resized_px"), FHD, (1932, 1092), (1919, 1079)),
        (P(966, 546, "resized_px"), FHD, (1932, 1092), (960, 540)),
        (P(197, 525, "resized_px"), FHD, (1932, 1092), (195, 519)),  # UI-TARS README example
        (P(1919, 1079, "screen_px"), FHD, None, (1919, 1079)),
        (P(100, 50, "logical_pt"), ScreenGeometry(2560, 1440, scale=2.0), None, (200, 100)),
        (P(1280, 720, "logical_pt"), ScreenGeometry(2560, 1440, scale=2.0), None, (2559, 1439)),
    ],
)
def test_to_screen(point, geom, resized, expected):
    assert to_screen(point, geom, resized) == expected


@pytest.mark.parametrize(
    ("point", "resized"),
    [
        (P(1000.5, 10), None),
        (P(-1, 10), None),
        (P(10, 1001), None),
        (P(1933, 10, "resized_px"), (1932, 1092)),
        (P(1920, 0, "screen_px"), None),  # screen pixels end at width - 1
        (P(0, -0.5, "screen_px"), None),
    ],
)
def test_off_screen_is_refused_not_clamped(point, resized):
    with pytest.raises(PointOutOfBounds, match="outside the screen"):
        to_screen(point, FHD, resized)


def test_x_and_y_rescale_separately():
    # smart_resize changes the aspect ratio (1920x1080 -> 1932x1092): a shared factor would
    # put the bottom edge off by 7 px.
    assert to_screen(P(0, 1092, "resized_px"), FHD, (1932, 1092)) == (0, 1079)
    assert to_screen(P(1932, 0, "resized_px"), FHD, (1932, 1092)) == (1919, 0)


def test_hidpi_and_offset_monitor_to_logical():
    right_monitor = ScreenGeometry(2560, 1440, scale=2.0, origin=(1920.0, 0.0))
    x, y = to_screen(P(500, 500), right_monitor)
    assert (x, y) == (1280, 720)
    assert to_logical(x, y, right_monitor) == (1920 + 640, 360)
    above = ScreenGeometry(1920, 1080, origin=(0.0, -1080.0))
    assert to_logical(*to_screen(P(1000, 1000), above), above) == (1919, -1)


@pytest.mark.parametrize("space", ["norm1000", "resized_px", "screen_px", "logical_pt"])
@pytest.mark.parametrize(
    "geom", [FHD, ScreenGeometry(2560, 1440, scale=2.0), ScreenGeometry(1080, 2400), ScreenGeometry(7, 3)]
)
def test_from_screen_round_trips_every_pixel_sampled(space, geom):
    resized = HUB_PIXELS.resize(geom.width, geom.height) if geom.width > 28 else (28, 28)
    rng = random.Random(0)
    pixels = [(0, 0), (geom.width - 1, geom.height - 1)] + [
        (rng.randrange(geom.width), rng.randrange(geom.height)) for _ in range(200)
    ]
    for x, y in pixels:
        p = from_screen(x, y, space, geom, resized)
        back = to_screen(p, geom, resized)
        # integer model spaces are coarser than the screen: within one model unit
        tol_x = max(0, geom.width / (1000 if space == "norm1000" else resized[0])) if space in (
            "norm1000",
            "resized_px",
        ) else 0
        tol_y = geom.height / (1000 if space == "norm1000" else resized[1]) if space in (
            "norm1000",
            "resized_px",
        ) else 0
        assert abs(back[0] - x) <= tol_x and abs(back[1] - y) <= tol_y, (space, x, y, p, back)


def test_to_device_converts_every_point():
    drag = Drag(start=P(0, 0), end=P(1000, 1000))
    assert to_device(drag, FHD) == Drag(start=P(0, 0, "screen_px"), end=P(1919, 1079, "screen_px"))
    assert to_device(Scroll(direction="down"), FHD) == Scroll(direction="down")
    with pytest.raises(PointOutOfBounds):
        to_device(Click(point=P(500, 1200)), FHD)


def test_smart_resize_known_values():
    assert smart_resize(1080, 1920) == (1092, 1932)
    assert visual_tokens(1920, 1080) == 2691
    assert PROCESSOR_DEFAULT_PIXELS.resize(1920, 1080) == (1316, 728)
    assert visual_tokens(1920, 1080, PROCESSOR_DEFAULT_PIXELS) == 1222
    assert visual_tokens(224, 224) == 64  # + 2 vision markers = 66, as in the paper
    assert smart_resize(10, 10) == (56, 56)  # scaled up to min_pixels
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2010)


def _sizes(n: int) -> list[tuple[int, int]]:
    rng = random.Random(1234)
    fixed = [(1080, 1920), (1440, 2560), (2400, 1080), (800, 1280), (3, 7), (28, 28), (29, 27),
             (4320, 7680), (1, 150), (150, 1), (2160, 3840), (1092, 1932)]  # fmt: skip
    while len(fixed) < n:
        h, w = rng.randint(1, 5000), rng.randint(1, 5000)
        if max(h, w) / min(h, w) <= 200:
            fixed.append((h, w))
    return fixed


@pytest.mark.parametrize(
    "budget", [HUB_PIXELS, PROCESSOR_DEFAULT_PIXELS, PixelBudget(256 * 28 * 28, 1280 * 28 * 28)]
)
def test_smart_resize_matches_qwen_vl_utils(budget):
    from qwen_vl_utils import vision_process  # a test dependency: missing is a failure

    sizes = _sizes(300)
    for h, w in sizes:
        # qwen-vl-utils >= 0.0.14 takes factor as a required positional argument
        ref = vision_process.smart_resize(h, w, 28, budget.min_pixels, budget.max_pixels)
        assert smart_resize(h, w, 28, budget.min_pixels, budget.max_pixels) == ref, (h, w)

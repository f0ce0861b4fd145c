"""The robot's pure math: camera matrices, pixel <-> world through the depth buffer, the arm's
reach, pick/place/move waypoints and the scene predicates, checked on exact values and edges."""

from __future__ import annotations

import math
import random

import pytest

from pixelpilot.agent.errors import ActionRejected, ModelRetry
from pixelpilot.tools.robot_plan import (
    APPROACH,
    CARRY,
    DROP_GAP,
    FINGER_CLEARANCE,
    Camera,
    Waypoint,
    Workspace,
    grasp_height,
    in_tray,
    linear_depth,
    pixel_to_world,
    plan_move,
    plan_pick,
    plan_place,
    projection_matrix,
    resting_on,
    view_matrix,
    world_to_pixel,
)

# Looking straight down from 1 m with a 90-degree field of view on a 4x4 image: at 1 m the
# image spans [-1, 1] on both axes, image right is +x and image up is +y, so pixel centres
# land on exact quarters.
TOP = Camera(eye=(0.0, 0.0, 1.0), target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), fov_deg=90.0,
             near=0.1, far=3.0, width=4, height=4)  # fmt: skip


def depth_at(distance: float, near: float = 0.1, far: float = 3.0) -> float:
    """The depth-buffer value of a point ``distance`` metres along the camera axis."""
    return (far - far * near / distance) / (far - near)


def test_view_matrix_top_down_exact() -> None:
    assert view_matrix((0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)) == (
        1.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 0.0, 0.0,
        0.0, 0.0, 1.0, 0.0,
        0.0, 0.0, -1.0, 1.0,
    )  # fmt: skip


def test_projection_matrix_exact() -> None:
    m = projection_matrix(90.0, 2.0, 1.0, 3.0)
    assert m[0] == pytest.approx(0.5) and m[5] == pytest.approx(1.0)
    assert m[10] == pytest.approx(-2.0) and m[11] == -1.0 and m[14] == pytest.approx(-3.0)
    assert [m[i] for i in (1, 2, 3, 4, 6, 7, 8, 9, 12, 13, 15)] == [0.0] * 11


@pytest.mark.parametrize(
    ("fov", "aspect", "near", "far"),
    [(0.0, 1.0, 0.1, 1.0), (180.0, 1.0, 0.1, 1.0), (60.0, 0.0, 0.1, 1.0), (60.0, 1.0, 1.0, 1.0),
     (60.0, 1.0, 0.0, 1.0)],
)  # fmt: skip
def test_projection_matrix_rejects_bad_frustums(fov, aspect, near, far) -> None:
    with pytest.raises(ValueError, match="bad perspective"):
        projection_matrix(fov, aspect, near, far)


def test_linear_depth_ends_and_inverse() -> None:
    assert linear_depth(0.0, 0.1, 3.0) == pytest.approx(0.1)
    assert linear_depth(1.0, 0.1, 3.0) == pytest.approx(3.0)
    assert linear_depth(depth_at(1.0), 0.1, 3.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("pixel", "world"),
    [
        ((0, 0), (-0.75, 0.75, 0.0)),  # top-left pixel centre
        ((3, 3), (0.75, -0.75, 0.0)),  # bottom-right (last) pixel centre
        ((1, 2), (-0.25, -0.25, 0.0)),
        ((1.5, 1.5), (0.0, 0.0, 0.0)),  # the image centre is the optical axis
    ],
)
def test_pixel_to_world_exact(pixel, world) -> None:
    got = TOP.pixel_to_world(pixel[0], pixel[1], depth_at(1.0))
    assert got == pytest.approx(world, abs=1e-12)


def test_pixel_to_world_depth_ends_are_the_clip_planes() -> None:
    assert TOP.pixel_to_world(1.5, 1.5, 0.0) == pytest.approx((0.0, 0.0, 0.9), abs=1e-12)
    assert TOP.pixel_to_world(1.5, 1.5, 1.0) == pytest.approx((0.0, 0.0, -2.0), abs=1e-12)
    # the last pixel at the far plane: the frustum widens with distance
    assert TOP.pixel_to_world(3, 0, 1.0) == pytest.approx((2.25, 2.25, -2.0), abs=1e-12)


def test_world_to_pixel_exact_and_behind() -> None:
    assert TOP.world_to_pixel((0.75, 0.75, 0.0)) == pytest.approx((3.0, 0.0, depth_at(1.0)))
    assert TOP.world_to_pixel((0.0, 0.0, 0.5)) == pytest.approx((1.5, 1.5, depth_at(0.5)))
    with pytest.raises(ValueError, match="behind the camera"):
        TOP.world_to_pixel((0.0, 0.0, 2.0))


def test_round_trip_oblique_odd_size() -> None:
    cam = Camera(eye=(1.0, 0.06, 0.75), target=(0.5, 0.06, 0.0), fov_deg=45.0, width=641,
                 height=479)  # fmt: skip
    rng = random.Random(7)
    for _ in range(200):
        p = (rng.uniform(0.2, 0.8), rng.uniform(-0.3, 0.4), rng.uniform(0.0, 0.3))
        x, y, d = cam.world_to_pixel(p)
        assert 0 <= d <= 1
        assert cam.pixel_to_world(x, y, d) == pytest.approx(p, abs=1e-9)


def test_pixel_to_world_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TOP.pixel_to_world(0, 0, 1.5)
    ortho = (1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, -1.0, 0, 0, 0, 0, 1.0)
    with pytest.raises(ValueError, match="not a perspective"):
        pixel_to_world(0, 0, 0.5, TOP.view, ortho, 4, 4)
    with pytest.raises(ValueError, match="zero vector"):
        view_matrix((0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))  # up along the axis


def test_non_square_uses_aspect() -> None:
    cam = Camera(eye=(0.0, 0.0, 1.0), target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), fov_deg=90.0,
                 width=8, height=4)  # fmt: skip
    # x spans [-2, 2] at 1 m: the last pixel centre (7.5 of 8) is at 1.75
    assert cam.pixel_to_world(7, 0, depth_at(1.0)) == pytest.approx((1.75, 0.75, 0.0))
    assert world_to_pixel((1.75, 0.75, 0.0), cam.view, cam.projection, 8, 4)[:2] == pytest.approx(
        (7.0, 0.0)
    )


# -- workspace ---------------------------------------------------------------------------------
WS = Workspace()


def test_reachable_points_pass() -> None:
    for p in [(0.5, 0.0, 0.02), (0.3, -0.3, 0.1), (0.45, 0.3, 0.15), (0.0, 0.4, 0.3)]:
        WS.check(p, "pick")


def test_reach_edge_at_table_height() -> None:
    dz = 0.02 + WS.wrist_offset - WS.shoulder
    limit = math.sqrt(WS.reach**2 - dz**2)  # 0.7126 m
    WS.check((limit - 1e-4, 0.0, 0.02), "pick")
    with pytest.raises(ActionRejected, match=r"out of the arm's reach \(0\.71 m from its base; "
                       r"it reaches 0\.71 m at that height\)"):  # fmt: skip
        WS.check((limit + 1e-4, 0.0, 0.02), "pick")


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (
            (0.5, 0.0, -0.625),
            r"pick: that point is off the table \(the floor, at \(500, 0, -625\) mm\)",
        ),
        ((1.3, 0.0, 0.0), r"off the table \(beyond the table's edge, at \(1300, 0, 0\) mm\)"),
        ((0.5, 0.6, 0.0), "off the table"),
        ((0.1, 0.1, 0.02), r"0\.14 m from the arm's base: too close"),
        ((0.4, 0.0, 0.55), r"0\.55 m above the table; it goes at most 0\.50 m high"),
        ((0.7, 0.3, 0.05), "out of the arm's reach"),
    ],
)
def test_refusals_go_back_to_the_model(point, message) -> None:
    with pytest.raises(ActionRejected, match=message) as err:
        WS.check(point, "pick")
    assert isinstance(err.value, ModelRetry)
    assert "\n" not in str(err.value)


def test_on_table_edges() -> None:
    assert WS.on_table((1.25, 0.5, 0.0)) and WS.on_table((-0.25, -0.5, -0.01))
    assert not WS.on_table((1.2501, 0.0, 0.0)) and not WS.on_table((0.5, 0.0, -0.0101))


# -- plans -------------------------------------------------------------------------------------
def test_grasp_height() -> None:
    assert grasp_height(0.04, 0.0) == pytest.approx(0.02)  # a 4 cm block: its middle
    assert grasp_height(0.0, 0.0) == FINGER_CLEARANCE  # nothing there: stay off the table
    assert grasp_height(0.1, 0.05) == pytest.approx(0.08)


def test_plan_pick_exact() -> None:
    plan = plan_pick((0.5, 0.1, 0.04), WS)
    assert plan == [
        Waypoint("above", (0.5, 0.1, pytest.approx(0.02 + APPROACH)), "open"),
        Waypoint("grasp", (0.5, 0.1, pytest.approx(0.02)), "close"),
        Waypoint("lift", (0.5, 0.1, pytest.approx(0.02 + APPROACH)), None),
        Waypoint("carry", CARRY, None),
    ]
    assert plan_pick((0.5, 0.1, 0.04), WS, carry=None) == plan[:3]
    WS.check(CARRY, "carry")  # the carry pose is itself reachable


def test_plan_place_exact() -> None:
    plan = plan_place((0.45, 0.3, 0.0075), 0.02, WS)
    rz = 0.0075 + 0.02 + DROP_GAP
    assert [w.name for w in plan] == ["above", "release", "retreat", "clear"]
    assert [w.gripper for w in plan] == [None, "open", None, None]
    assert plan[1].position == pytest.approx((0.45, 0.3, rz))
    assert plan[0].position == plan[2].position == pytest.approx((0.45, 0.3, rz + APPROACH))
    assert plan[3].position == CARRY
    # a surface below the table top (a hole in the depth) is lifted to the table
    low = plan_place((0.45, 0.3, -0.004), 0.02, WS, carry=None)
    assert len(low) == 3 and low[1].position[2] == pytest.approx(0.03)


def test_plan_move_exact_and_refused() -> None:
    assert plan_move((0.5, 0.0, 0.04), 0.15, WS) == [
        Waypoint("target", (0.5, 0.0, pytest.approx(0.19)))
    ]
    with pytest.raises(ActionRejected, match=r"^move_effector at pixel \(1, 2\): the gripper "
                       r"would go to \(500, 0, 540\) mm"):  # fmt: skip
        plan_move((0.5, 0.0, 0.04), 0.5, WS, "move_effector at pixel (1, 2)")


def test_plans_refuse_the_floor_by_its_own_height() -> None:
    # the floor point is refused as such, not after being lifted to the table's height
    with pytest.raises(ActionRejected, match=r"the floor, at \(-900, 0, -625\) mm"):
        plan_pick((-0.9, 0.0, -0.625), WS)
    with pytest.raises(ActionRejected, match="out of the arm's reach"):
        plan_place((0.85, 0.0, 0.0), 0.02, WS)


# -- predicates --------------------------------------------------------------------------------
def test_in_tray_edges() -> None:
    tray = (0.45, 0.3, 0.0)
    assert in_tray((0.45, 0.3, 0.03), tray, 0.12, 0.07)
    assert in_tray((0.57, 0.18, 0.07), tray, 0.12, 0.07)
    assert not in_tray((0.5701, 0.3, 0.03), tray, 0.12, 0.07)
    assert not in_tray((0.45, 0.3, 0.0701), tray, 0.12, 0.07)  # held above the rim


def test_resting_on() -> None:
    bottom = ((0.48, -0.02, 0.0), (0.52, 0.02, 0.04))
    assert resting_on((0.49, -0.01, 0.04), (0.53, 0.03, 0.08), *bottom)
    assert resting_on((0.49, -0.01, 0.045), (0.53, 0.03, 0.085), *bottom)  # within 6 mm
    assert not resting_on((0.49, -0.01, 0.047), (0.53, 0.03, 0.087), *bottom)  # hovering
    assert not resting_on((0.51, 0.0, 0.04), (0.55, 0.04, 0.08), *bottom)  # centre off the face
    assert not resting_on((0.48, -0.02, 0.0), (0.52, 0.02, 0.04), *bottom)  # side by side
